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

}  // namespace

// Record: "<delivery id> <0|1> <base64 output>;\n" — the ';' marks a complete record.
Journal::Journal(std::filesystem::path file) : file_(std::move(file)) {
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
  std::string line = std::to_string(deliveryId) + " " + (entry.succeeded ? "1" : "0") + " " +
                     encode(entry.output) + ";\n";
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

}  // namespace shoal::agent
