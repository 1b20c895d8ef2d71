#pragma once
// The hosting account as the kernel holds it (docs/adr/0013-hosting-accounts.md): one
// representation, turned into the one JSON that the API answers, events carry and plugins
// put into their commands. The kernel owns every field; plugins only read them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <Poco/JSON/Object.h>

#include "tls/SiteCertificates.hpp"

namespace shoal::hosting {

// Limit name ("http.domains") -> a whole number >= 0, or nullopt for unlimited. A limit the
// map does not name is unlimited too.
using Limits = std::map<std::string, std::optional<std::int64_t>>;

struct Domain {
  std::string name;     // ASCII (punycode), lower case: the key
  std::string unicode;  // as it displays
  std::string kind;     // primary, secondary, alias, subdomain
  std::string parent;   // alias and subdomain: another domain of the account; else ""
  std::string nginxExtra;
};

// The account's certificate: what the cluster CA or the ACME client issued, as they return it.
using Certificate = tls::SiteCertificate;

struct Account {
  std::string name;
  std::uint32_t uid = 0, gid = 0;
  std::string home;
  std::string state = "active";  // "active" or "suspended"
  std::string suspendReason;
  std::string plan;  // "" when the limits were set by hand
  Limits limits;
  std::vector<Domain> domains;  // the primary first, then in the order they were added
  std::optional<Certificate> certificate;
  std::int64_t revision = 0;
  std::int64_t createdAtMs = 0, updatedAtMs = 0;

  bool suspended() const { return state == "suspended"; }
  const Domain* domain(const std::string& asciiName) const;
};

struct Plan {
  std::string name;
  std::string description;
  Limits limits;
  std::int64_t createdAtMs = 0, updatedAtMs = 0;
  std::int64_t accounts = 0;  // how many accounts are on it (read, never written)
};

// A limit dimension some plugin declared (ABI 1.5 callback_register_limit).
struct LimitDimension {
  std::string name;    // "<plugin>.<dimension>"
  std::string label;   // "Domains"
  std::string counts;  // "domains": the kernel counts the account's domains; "": the plugin counts
};

// The account's JSON. The private key of its certificate is in it only with
// `withPrivateKey` (events and commands); the API never shows it.
Poco::JSON::Object::Ptr toJson(const Account& account, bool withPrivateKey);
std::string toJsonText(const Account& account, bool withPrivateKey);
Poco::JSON::Object::Ptr toJson(const Plan& plan);
Poco::JSON::Object::Ptr limitsToJson(const Limits& limits);

// `value` must be an object of limit names to a whole number >= 0 or null. Names are checked
// for their form only ("<plugin>.<dimension>"); whether a plugin declared them is the
// service's check. Throws Error(InvalidArgument) naming `field`.
Limits parseLimits(const Poco::Dynamic::Var& value, const std::string& field);
Limits parseLimitsText(const std::string& json, const std::string& field);
std::string limitsToText(const Limits& limits);

// A JSON value as one line of text: how the hosting layer stores and sends its JSON.
std::string jsonText(const Poco::Dynamic::Var& value);

// Throws Error(InvalidArgument) naming `field` unless `name` is [a-z0-9][a-z0-9_-]{0,63}.
void validatePlanName(const std::string& name, const std::string& field = "name");

}  // namespace shoal::hosting
