#pragma once
// The kernel's one error type. Inside the kernel errors travel as exceptions of this type;
// at the plugin boundary the code maps one to one onto shoal_status.
#include <stdexcept>
#include <string>

namespace shoal {

enum class ErrorCode {
  InvalidArgument,  // bad input; the message names the field and what is wrong with it
  NotFound,
  Conflict,         // the name is taken, or a concurrent change won
  Unsupported,
  Failed,           // ran and failed
  Internal          // a fault of ours or of something we depend on (store unreachable)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace shoal
