#include "agent/Journal.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <fcntl.h>
#include <unistd.h>

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

}  // namespace

// Record: "<delivery id> <0|1> <base64 output>;\n" — the ';' marks a complete record.
Journal::Journal(std::filesystem::path file, std::size_t compactAfter)
    : file_(std::move(file)), compactAfter_(compactAfter == 0 ? 1 : compactAfter) {
  {
    std::ifstream in(file_);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line.back() != ';') continue;
      std::istringstream fields(line.substr(0, line.size() - 1));
      std::int64_t id = 0;
      int ok = 0;
      std::string output;
      if (!(fields >> id >> ok)) continue;
      fields >> output;
      entries_[id] = JournalEntry{ok == 1, decode(output)};
    }
  }
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error(ErrorCode::Failed, "cannot open journal " + file_.string() + ": " + std::strerror(errno));
  // A torn record gets a line of its own ending so the next record starts clean.
  if (::write(fd_, "\n", 1) != 1) throw Error(ErrorCode::Failed, "cannot write journal " + file_.string());
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

void Journal::record(std::int64_t deliveryId, const JournalEntry& entry) {
  const std::string line = recordLine(deliveryId, entry);
  std::lock_guard lock(mutex_);
  if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw Error(ErrorCode::Failed, "cannot write journal " + file_.string() + ": " + std::strerror(errno));
  entries_[deliveryId] = entry;
}

void Journal::sync() {
  if (::fdatasync(fd_) != 0)
    throw Error(ErrorCode::Failed, "cannot sync journal " + file_.string() + ": " + std::strerror(errno));
}

std::size_t Journal::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void Journal::acknowledge(const std::vector<std::int64_t>& deliveryIds) {
  std::lock_guard lock(mutex_);
  for (auto id : deliveryIds)
    if (entries_.erase(id) > 0) ++acknowledgedSinceCompaction_;
  if (acknowledgedSinceCompaction_ >= compactAfter_) compact();
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
    // The old file is intact and still open: keep appending to it, try again later.
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
    if (!line.empty() && line.back() == ';') ++records;
  return records;
}

}  // namespace shoal::agent
