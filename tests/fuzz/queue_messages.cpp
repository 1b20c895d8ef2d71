// The Command Queue on the wire between manager and node: the delivery list the agent reads
// from GET /v1/node/deliveries and the results batch the manager reads from POST
// /v1/node/results. The input is a body as ApiRequest::json and the agent's client read it;
// each parser accepts it or refuses it with Error(InvalidArgument), never anything else.
#include <Poco/JSON/Parser.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "FuzzSupport.hpp"
#include "api/NodeQueueMessages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Poco::JSON::Object::Ptr body;
  try {
    auto parsed = Poco::JSON::Parser().parse(std::string(reinterpret_cast<const char*>(data), size));
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) return 0;
    body = parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    return 0;  // not JSON: refused before either parser runs
  }
  try {
    for (const auto& d : shoal::api::parseDeliveryList(body)) {
      FUZZ_CHECK(d.id > 0 && d.commandId > 0, "a delivery accepted with an id that is not positive");
      FUZZ_CHECK(!d.kind.empty() && d.attempts >= 1, "a delivery accepted without kind or attempt");
    }
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
  }
  try {
    for (const auto& r : shoal::api::parseResultsBatch(body))
      FUZZ_CHECK(r.deliveryId > 0, "a result accepted for a delivery id that is not positive");
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
  }
  return 0;
}
