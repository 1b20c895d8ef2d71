#pragma once
// Writing small files that must never be seen half-written.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/Error.hpp"

namespace shoal {

// Writes `text` to `file` with permissions `mode` (0600 for secrets): a temporary file in the
// same directory, synced, then renamed over `file`. Creates the directory if missing.
// Error(Failed) naming the file when any step fails; `file` is then untouched.
inline void writeFileAtomically(const std::filesystem::path& file, const std::string& text, mode_t mode = 0600) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  auto temp = file;
  temp += ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw Error(ErrorCode::Failed, "cannot write " + temp.string() + ": " + std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), file.c_str()) != 0) {
    ::unlink(temp.c_str());
    throw Error(ErrorCode::Failed, "cannot write " + file.string() + ": " + std::strerror(errno));
  }
}

}  // namespace shoal
