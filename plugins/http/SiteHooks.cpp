#include "SiteHooks.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>
#include <stdexcept>

#include "Account.hpp"

namespace shoal::http {

const std::vector<std::string>& siteEvents() {
  static const std::vector<std::string> events{"account.created",     "account.changed", "account.suspended",
                                               "account.unsuspended", "domain.added",    "domain.removed",
                                               "account.removed"};
  return events;
}

std::optional<std::string> siteCommandForEvent(std::string_view event, std::string_view payloadJson, int staggerMs) {
  bool known = false;
  for (const auto& e : siteEvents()) known = known || e == event;
  if (!known) return std::nullopt;
  Poco::JSON::Object::Ptr payload;
  try {
    auto parsed = Poco::JSON::Parser().parse(std::string(payloadJson));
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) payload = parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument("event " + std::string(event) + ": the payload is not JSON: " + e.displayText());
  }
  if (!payload || !payload->has("account") || payload->get("account").type() != typeid(Poco::JSON::Object::Ptr))
    throw std::invalid_argument("event " + std::string(event) + ": the payload has no account object");
  auto account = payload->getObject("account");
  std::ostringstream accountText;
  account->stringify(accountText);
  const Account parsed = parseAccount(accountText.str());

  Poco::JSON::Object::Ptr commandPayload = new Poco::JSON::Object;
  commandPayload->set("account", account);
  Poco::JSON::Object::Ptr target = new Poco::JSON::Object;
  target->set("role", "http");
  Poco::JSON::Object request;
  request.set("kind", event == "account.removed" ? "http.site.remove" : "http.site.put");
  request.set("payload", commandPayload);
  request.set("key", "account:" + parsed.name);
  request.set("target", target);
  if (staggerMs > 0) request.set("stagger_ms", staggerMs);
  std::ostringstream text;
  request.stringify(text);
  return text.str();
}

}  // namespace shoal::http
