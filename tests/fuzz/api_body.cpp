// Request bodies as the manager reads them: ApiRequest::json, then the validators the routes
// run on the object (the enqueue request of POST /v1/commands and callback_enqueue) and on
// the text (the lvs plugin's policies and members, as its routes parse them). A body is
// either accepted or refused by the parser's promised error; nothing else may escape, since
// anything else answers 500.
#include <Poco/JSON/JSONException.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "FuzzSupport.hpp"
#include "Policy.hpp"
#include "api/ApiServer.hpp"
#include "manager/EnqueueRequest.hpp"

namespace {

// What the lvs plugin's routes refuse with 400 (LvsPlugin.cpp, checked()).
template <typename Parse>
void lvsParse(Parse&& parse) {
  try {
    parse();
  } catch (const shoal::lvs::PolicyError&) {
  } catch (const Poco::JSON::JSONException&) {
  } catch (const Poco::BadCastException&) {
  }
}

const shoal::lvs::Policy& examplePolicy() {
  static const auto policy = shoal::lvs::parsePolicy(
      R"({"protocol": "tcp", "address": "192.0.2.10", "port": 80, "service": "http", "scheduler": "wrr",
          "members": [{"address": "10.77.0.11", "port": 80, "weight": 1}]})");
  return policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  shoal::api::ApiRequest request;
  request.body.assign(reinterpret_cast<const char*>(data), size);

  Poco::JSON::Object::Ptr body;
  try {
    body = request.json();
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
  }
  if (body) {
    try {
      const auto enqueue = shoal::manager::parseEnqueueRequest(body);
      FUZZ_CHECK(!enqueue.commands.empty(), "an accepted enqueue request holds no command");
      for (const auto& c : enqueue.commands)
        FUZZ_CHECK(!c.kind.empty() && !c.orderingKey.empty(), "an accepted command lacks its kind or key");
    } catch (const shoal::Error& e) {
      shoal::fuzz::expectRefusal(e);
    }
  }

  lvsParse([&] {
    const auto policy = shoal::lvs::parsePolicy(request.body);
    // What the plugin stores it reads back as the same policy.
    const std::string stored = shoal::lvs::toJson(policy);
    FUZZ_CHECK(shoal::lvs::toJson(shoal::lvs::parseStoredPolicy(stored)) == stored,
               "a stored policy does not read back as itself");
  });
  lvsParse([&] { shoal::lvs::parseMember(request.body, examplePolicy()); });
  lvsParse([&] { shoal::lvs::editPolicy(examplePolicy(), request.body); });
  return 0;
}
