#pragma once
// Internal helpers of the auth classes: checking and cleaning the text they store.
#include <cstddef>
#include <string>
#include <string_view>

namespace shoal::auth::detail {

// Throws Error(InvalidArgument) naming `field` unless value has minLength..maxLength bytes, all
// printable ASCII (blanks only when allowBlank).
void requirePrintableAscii(std::string_view value, std::size_t minLength, std::size_t maxLength,
                           bool allowBlank, const char* field);

// Valid UTF-8 (each invalid byte becomes U+FFFD) of at most maxChars characters; a longer text
// keeps its first maxChars - 1 characters followed by "…".
std::string cleanText(std::string_view in, std::size_t maxChars);

}  // namespace shoal::auth::detail
