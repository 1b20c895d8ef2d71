#pragma once
// Small text helpers shared by the kernel's libraries.
#include <string>
#include <string_view>

namespace shoal {

// A value as it may appear in an error message: control bytes escaped as \xNN, cut after 80
// bytes, so a hostile or binary value cannot garble a log line or a terminal.
inline std::string shownValue(std::string_view value) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < value.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > 80) out += "...";
  return out;
}

}  // namespace shoal
