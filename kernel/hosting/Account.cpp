#include "hosting/Account.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <limits>
#include <sstream>

#include "common/Error.hpp"
#include "common/Text.hpp"

namespace shoal::hosting {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, field + ": " + why);
}

bool isLower(char c) { return c >= 'a' && c <= 'z'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// "<plugin>.<dimension>": the plugin-name grammar of abi.h, then [a-z][a-z0-9_]{0,31}.
bool isLimitName(const std::string& name) {
  const auto dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 64 || name.size() - dot - 1 > 32 || dot + 1 >= name.size())
    return false;
  if (!isLower(name[0]) || !isLower(name[dot + 1])) return false;
  for (std::size_t i = 1; i < dot; ++i)
    if (!(isLower(name[i]) || isDigit(name[i]) || name[i] == '_' || name[i] == '-')) return false;
  for (std::size_t i = dot + 2; i < name.size(); ++i)
    if (!(isLower(name[i]) || isDigit(name[i]) || name[i] == '_')) return false;
  return true;
}

}  // namespace

std::string jsonText(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(value, out);
  return out.str();
}

const Domain* Account::domain(const std::string& asciiName) const {
  for (const auto& d : domains)
    if (d.name == asciiName) return &d;
  return nullptr;
}

Poco::JSON::Object::Ptr limitsToJson(const Limits& limits) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [name, value] : limits) {
    if (value)
      o->set(name, *value);
    else
      o->set(name, Poco::Dynamic::Var());
  }
  return o;
}

std::string limitsToText(const Limits& limits) { return jsonText(limitsToJson(limits)); }

Poco::JSON::Object::Ptr toJson(const Account& a, bool withPrivateKey) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("name", a.name);
  o->set("uid", static_cast<std::int64_t>(a.uid));
  o->set("gid", static_cast<std::int64_t>(a.gid));
  o->set("home", a.home);
  o->set("state", a.state);
  o->set("suspend_reason", a.suspendReason);
  o->set("plan", a.plan);
  o->set("limits", limitsToJson(a.limits));
  Array::Ptr domains = new Array;
  for (const auto& d : a.domains) {
    Object::Ptr j = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    j->set("name", d.name);
    j->set("unicode", d.unicode);
    j->set("kind", d.kind);
    j->set("parent", d.parent);
    j->set("nginx_extra", d.nginxExtra);
    domains->add(j);
  }
  o->set("domains", domains);
  if (a.certificate) {
    const auto& c = *a.certificate;
    Object::Ptr j = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    j->set("issuer", c.issuer);
    Array::Ptr names = new Array;
    for (const auto& n : c.names) names->add(n);
    j->set("names", names);
    j->set("certificate_pem", c.certificatePem);
    if (withPrivateKey) j->set("key_pem", c.keyPem);
    j->set("not_after_ms", c.notAfterMs);
    j->set("fingerprint", c.fingerprint);
    o->set("certificate", j);
  } else {
    o->set("certificate", Poco::Dynamic::Var());
  }
  o->set("revision", a.revision);
  o->set("created_at_ms", a.createdAtMs);
  o->set("updated_at_ms", a.updatedAtMs);
  return o;
}

std::string toJsonText(const Account& account, bool withPrivateKey) {
  return jsonText(toJson(account, withPrivateKey));
}

Poco::JSON::Object::Ptr toJson(const Plan& p) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("name", p.name);
  o->set("description", p.description);
  o->set("limits", limitsToJson(p.limits));
  o->set("accounts", p.accounts);
  o->set("created_at_ms", p.createdAtMs);
  o->set("updated_at_ms", p.updatedAtMs);
  return o;
}

Limits parseLimits(const Poco::Dynamic::Var& value, const std::string& field) {
  if (value.type() != typeid(Object::Ptr)) invalid(field, "must be an object of limit names to a number or null");
  const auto object = value.extract<Object::Ptr>();
  Limits limits;
  for (const auto& [name, v] : *object) {
    const std::string where = field + "." + shownValue(name);
    if (!isLimitName(name)) invalid(where, "is not a limit name: use <plugin>.<dimension>, as in http.domains");
    if (v.isEmpty()) {
      limits[name] = std::nullopt;
      continue;
    }
    if (!v.isInteger() || v.isBoolean()) invalid(where, "must be a whole number from 0, or null for unlimited");
    std::int64_t n = 0;
    try {
      n = v.convert<std::int64_t>();
    } catch (const Poco::Exception&) {
      invalid(where, "must be a whole number from 0, or null for unlimited");
    }
    if (n < 0 || n > (std::int64_t{1} << 53)) invalid(where, "must be a whole number from 0 to 2^53, or null");
    limits[name] = n;
  }
  return limits;
}

Limits parseLimitsText(const std::string& json, const std::string& field) {
  try {
    Poco::JSON::Parser parser;
    return parseLimits(parser.parse(json), field);
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::Internal, field + " as stored is not JSON: " + e.displayText());
  }
}

void validatePlanName(const std::string& name, const std::string& field) {
  if (name.empty() || name.size() > 64) invalid(field, "must be 1 to 64 characters");
  if (!(isLower(name[0]) || isDigit(name[0]))) invalid(field, "must start with a-z or 0-9");
  for (char c : name)
    if (!(isLower(c) || isDigit(c) || c == '_' || c == '-')) invalid(field, "may contain only a-z, 0-9, '_' and '-'");
}

}  // namespace shoal::hosting
