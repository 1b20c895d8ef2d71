#include "agent/Journal.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/Error.hpp"

namespace shoal::agent {
namespace {

std::string encode(const std::string& text) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out, Poco::BASE64_NO_PADDING);
  encoder.rdbuf()->setLineLength(0);
  encoder << text;
  encoder.close();
  return out.str();
}

std::string decode(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in, Poco::BASE64_NO_PADDING);
  return std::string((std::istreambuf_iterator<char>(decoder)), std::istreambuf_iterator<char>());
}

std::string recordLine(std::int64_t deliveryId, const JournalEntry& entry) {
  return std::to_string(deliveryId) + " " + (entry.succeeded ? "1" : "0") + " " + encode(entry.output) + ";\n";
}

std::string ackLine(std::int64_t deliveryId) { return std::to_string(deliveryId) + " ack;\n"; }

}  // namespace

Journal::Journal(std::filesystem::path file, std::size_t compactAfter)
    : file_(std::move(file)), compactAfter_(compactAfter == 0 ? 1 : compactAfter) {
  std::string text;
  {
    std::ifstream in(file_, std::ios::binary);
    text.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.back() != ';') continue;
    std::istringstream fields(line.substr(0, line.size() - 1));
    std::int64_t id = 0;
    std::string state, output;
    if (!(fields >> id >> state)) continue;
    if (state == "ack") {
      entries_.erase(id);
    } else if (state == "0" || state == "1") {
      fields >> output;
      entries_[id] = JournalEntry{state == "1", decode(output)};
    }
  }
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error(ErrorCode::Failed, "cannot open journal " + file_.string() + ": " + std::strerror(errno));
  // A torn record (a crash mid-write) is cut off, so the next record starts on a line of its own.
  if (!text.empty() && text.back() != '\n') {
    const auto lastLine = text.rfind('\n');
    const off_t keep = lastLine == std::string::npos ? 0 : static_cast<off_t>(lastLine + 1);
    if (::ftruncate(fd_, keep) != 0) {
      const int error = errno;
      ::close(fd_);
      throw Error(ErrorCode::Failed, "cannot cut the torn last record of journal " + file_.string() + ": " +
                                         std::strerror(error));
    }
  }
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<JournalEntry> Journal::find(std::int64_t deliveryId) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(deliveryId);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void Journal::append(const std::string& line) {
  struct stat before {};
  if (::fstat(fd_, &before) != 0) throw Error(ErrorCode::Failed, std::strerror(errno));
  std::size_t written = 0;
  while (written < line.size()) {
    const auto n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      // A record cut short by a full disk would run into the next one: cut it off again.
      if (written > 0 && ::ftruncate(fd_, before.st_size) != 0) {
        // The torn record stays; it has no ';' and is ignored when the journal is read.
      }
      throw Error(ErrorCode::Failed, std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
}

void Journal::record(std::int64_t deliveryId, const JournalEntry& entry) {
  const std::string line = recordLine(deliveryId, entry);
  std::lock_guard lock(mutex_);
  try {
    append(line);
  } catch (const Error& e) {
    throw Error(ErrorCode::Failed, "cannot record the result in the journal " + file_.string() + ": " + e.what());
  }
  entries_[deliveryId] = entry;
}

void Journal::sync() {
  if (::fdatasync(fd_) != 0)
    throw Error(ErrorCode::Failed, "cannot sync the journal " + file_.string() + ": " + std::strerror(errno));
}

std::size_t Journal::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::vector<std::pair<std::int64_t, JournalEntry>> Journal::unreported() const {
  std::lock_guard lock(mutex_);
  return {entries_.begin(), entries_.end()};
}

void Journal::acknowledge(const std::vector<std::int64_t>& deliveryIds) {
  std::lock_guard lock(mutex_);
  std::string acks;
  for (auto id : deliveryIds)
    if (entries_.erase(id) > 0) {
      ++acknowledgedSinceCompaction_;
      acks += ackLine(id);
    }
  if (acks.empty()) return;
  if (acknowledgedSinceCompaction_ >= compactAfter_) {
    try {
      compact();
      return;
    } catch (const Error&) {
      // The old file is intact and still open: record the acknowledgements in it instead.
    }
  }
  try {
    append(acks);
  } catch (const Error&) {
    // Without the records a restart reports these results again, which the manager answers
    // as repeats: nothing is applied twice.
  }
}

void Journal::compact() {
  std::string text;
  for (const auto& [id, entry] : entries_) text += recordLine(id, entry);
  auto temp = file_;
  temp += ".compact";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::Failed, "cannot compact journal " + file_.string() + ": " + std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), file_.c_str()) != 0) {
    ::unlink(temp.c_str());
    throw Error(ErrorCode::Failed, "cannot compact journal " + file_.string() + ": " + std::strerror(errno));
  }
  // The rename must survive a crash too, or the old file comes back with it.
  const int dir = ::open(file_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  const int appended = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (appended < 0) throw Error(ErrorCode::Failed, "cannot reopen journal " + file_.string() + ": " + std::strerror(errno));
  ::close(fd_);
  fd_ = appended;
  acknowledgedSinceCompaction_ = 0;
}

std::size_t Journal::recordsInFile() const {
  std::lock_guard lock(mutex_);
  std::ifstream in(file_);
  std::size_t records = 0;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.back() == ';' && line.find(" ack;") == std::string::npos) ++records;
  return records;
}

}  // namespace shoal::agent
