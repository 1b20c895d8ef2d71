#include "auth/Fields.hpp"

#include "common/Error.hpp"
#include "common/Text.hpp"
#include "store/Utf8.hpp"

namespace shoal::auth::detail {

void requirePrintableAscii(std::string_view value, std::size_t minLength, std::size_t maxLength,
                           bool allowBlank, const char* field) {
  bool ok = value.size() >= minLength && value.size() <= maxLength;
  for (std::size_t i = 0; ok && i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    ok = (c > 0x20 && c < 0x7f) || (allowBlank && c == 0x20);
  }
  if (ok) return;
  throw Error(ErrorCode::InvalidArgument,
              std::string(field) + " \"" + shownValue(value) + "\" is invalid: use " +
                  std::to_string(minLength) + " to " + std::to_string(maxLength) +
                  " printable ASCII characters" + (allowBlank ? "" : " without blanks"));
}

std::string cleanText(std::string_view in, std::size_t maxChars) {
  static const std::string_view replacement = "\xEF\xBF\xBD";
  static const std::string_view ellipsis = "\xE2\x80\xA6";
  std::string out;
  out.reserve(in.size() < 4 * maxChars ? in.size() : 4 * maxChars);
  std::size_t chars = 0;
  std::size_t cutAt = 0;  // out.size() after maxChars - 1 characters
  std::size_t i = 0;
  while (i < in.size()) {
    if (chars == maxChars) {
      out.resize(cutAt);
      out += ellipsis;
      return out;
    }
    if (chars + 1 == maxChars) cutAt = out.size();
    const auto c = static_cast<unsigned char>(in[i]);
    const std::size_t length = c < 0x80           ? 1
                               : (c >> 5) == 0x6  ? 2
                               : (c >> 4) == 0xE  ? 3
                               : (c >> 3) == 0x1E ? 4
                                                  : 0;
    if (length == 0 || i + length > in.size() || !store::isValidUtf8(in.substr(i, length))) {
      out += replacement;
      ++i;
    } else {
      out.append(in.substr(i, length));
      i += length;
    }
    ++chars;
  }
  return out;
}

}  // namespace shoal::auth::detail
