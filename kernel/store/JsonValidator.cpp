#include "store/JsonValidator.hpp"

#include <string>

#include <Poco/JSON/Handler.h>
#include <Poco/JSON/Parser.h>

#include "common/Error.hpp"

namespace shoal::store {

namespace {

// Parser events go nowhere: the parser alone decides validity, and the default handler cannot
// take a scalar at the top level.
class DiscardingHandler : public Poco::JSON::Handler {
 public:
  void reset() override {}
  void startObject() override {}
  void endObject() override {}
  void startArray() override {}
  void endArray() override {}
  void key(const std::string&) override {}
  void null() override {}
  void value(int) override {}
  void value(unsigned) override {}
  void value(Poco::Int64) override {}
  void value(Poco::UInt64) override {}
  void value(const std::string&) override {}
  void value(double) override {}
  void value(bool) override {}
};

}  // namespace

void JsonValidator::check(std::string_view json) {
  try {
    Poco::JSON::Parser parser(Poco::JSON::Handler::Ptr(new DiscardingHandler));
    parser.parse(std::string(json));
  } catch (const Poco::Exception& e) {
    throw Error(
        ErrorCode::InvalidArgument,
        "document is not valid JSON: " + (e.message().empty() ? e.displayText() : e.message()));
  }
}

}  // namespace shoal::store
