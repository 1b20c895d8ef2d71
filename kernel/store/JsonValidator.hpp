#pragma once
#include <string_view>

namespace shoal::store {

// Checks that a text is exactly one JSON value as Poco::JSON::Parser reads it (objects, arrays
// and scalars; nesting up to the parser's default depth of 128), without building a tree.
class JsonValidator {
 public:
  // Throws Error(InvalidArgument, "document is not valid JSON: <parser's reason>").
  static void check(std::string_view json);
};

}  // namespace shoal::store
