#include "tls/AtomicFile.hpp"

#include "common/Error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace shoal::tls::detail {

namespace {

std::string describeErrno(int error) { return std::generic_category().message(error); }

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the result (close can report a deferred write error).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

void syncDirectory(const std::filesystem::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

}  // namespace

std::string readWholeFile(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw Error(ErrorCode::Failed, "cannot read " + path.string() + ": it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::Failed, "cannot read " + path.string() + ": " + describeErrno(errno));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    throw Error(ErrorCode::Failed, "cannot read " + path.string() + ": read error");
  }
  return content.str();
}

void writeFileAtomically(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  static std::atomic<unsigned> sequence{0};
  std::filesystem::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(sequence++);

  auto fail = [&](const std::string& what, int error) {
    ::unlink(temporary.c_str());
    throw Error(ErrorCode::Failed, "cannot write " + path.string() + ": " + what + ": " + describeErrno(error));
  };

  FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (fd.get() < 0) {
    const int error = errno;
    throw Error(ErrorCode::Failed, "cannot write " + path.string() + ": cannot create " +
                                       temporary.string() + ": " + describeErrno(error));
  }
  if (::fchmod(fd.get(), mode) != 0) fail("chmod", errno);
  const char* data = content.data();
  std::size_t remaining = content.size();
  while (remaining > 0) {
    const ssize_t written = ::write(fd.get(), data, remaining);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("write", errno);
    }
    data += written;
    remaining -= static_cast<std::size_t>(written);
  }
  if (::fsync(fd.get()) != 0) fail("fsync", errno);
  if (fd.close() != 0) fail("close", errno);
  if (::rename(temporary.c_str(), path.c_str()) != 0) fail("rename", errno);
  syncDirectory(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

void createPrivateDirectory(const std::filesystem::path& dir) {
  std::error_code error;
  if (std::filesystem::is_directory(dir, error)) return;
  if (!dir.parent_path().empty() && dir.parent_path() != dir) createPrivateDirectory(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const int mkdirError = errno;
    throw Error(ErrorCode::Failed, "cannot create directory " + dir.string() + ": " + describeErrno(mkdirError));
  }
  if (!std::filesystem::is_directory(dir, error)) {
    throw Error(ErrorCode::Failed, "cannot create directory " + dir.string() + ": a file of that name exists");
  }
}

}  // namespace shoal::tls::detail
