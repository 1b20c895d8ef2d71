#include "Account.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace shoal::http {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

[[noreturn]] void refuse(const std::string& field, const std::string& what) {
  throw std::invalid_argument(field + ": " + what);
}

Object::Ptr asObject(const Poco::Dynamic::Var& value) {
  return value.type() == typeid(Object::Ptr) ? value.extract<Object::Ptr>() : nullptr;
}

std::string stringField(const Object::Ptr& object, const std::string& key, const std::string& where,
                        bool required = true) {
  if (!object->has(key) || object->get(key).isEmpty()) {
    if (required) refuse(where + key, "is missing");
    return "";
  }
  const auto& value = object->get(key);
  if (!value.isString()) refuse(where + key, "must be a string");
  return value.extract<std::string>();
}

std::int64_t integerField(const Object::Ptr& object, const std::string& key, const std::string& where,
                          std::int64_t low, std::int64_t high) {
  if (!object->has(key)) refuse(where + key, "is missing");
  const auto& value = object->get(key);
  if (!value.isInteger()) refuse(where + key, "must be an integer");
  const auto number = value.convert<std::int64_t>();
  if (number < low || number > high)
    refuse(where + key, "must be between " + std::to_string(low) + " and " + std::to_string(high));
  return number;
}

// Names Debian's base-passwd and common packages reserve; an account must never become one.
const std::set<std::string>& reservedNames() {
  static const std::set<std::string> names{
      "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
      "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "systemd-network",
      "systemd-resolve", "systemd-timesync", "messagebus", "sshd", "_apt", "mysql", "postfix",
      "dovecot", "dovenull", "ftp", "nginx", "shoal", "staff", "adm", "sudo", "users", "tty",
      "disk", "kmem", "dialout", "operator", "shadow", "utmp", "video", "audio", "plugdev"};
  return names;
}

void checkDomainName(const std::string& name, const std::string& field) {
  static const std::regex label("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  if (name.empty() || name.size() > 253) refuse(field, "must be a domain name of 1 to 253 characters");
  std::size_t start = 0;
  int labels = 0;
  while (true) {
    const auto dot = name.find('.', start);
    const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!std::regex_match(part, label))
      refuse(field, "'" + name + "' is not a lower-case RFC 1123 domain name (label '" + part + "')");
    ++labels;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (labels < 2) refuse(field, "'" + name + "' must have at least two labels");
}

void checkHome(const std::string& home) {
  if (home.size() < 2 || home.front() != '/') refuse("account.home", "must be an absolute path");
  if (home.back() == '/') refuse("account.home", "must not end with '/'");
  if (home.size() > 1024) refuse("account.home", "must be at most 1024 characters");
  static const std::regex allowed("[A-Za-z0-9._/@+-]+");
  if (!std::regex_match(home, allowed))
    refuse("account.home", "may hold only letters, digits and . _ / @ + -");
  for (std::size_t start = 1;;) {
    const auto slash = home.find('/', start);
    const auto part = home.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..")
      refuse("account.home", "must be a normalized path (no empty, '.' or '..' parts)");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

Domain parseDomain(const Object::Ptr& object, const std::string& where) {
  Domain d;
  d.name = stringField(object, "name", where);
  checkDomainName(d.name, where + "name");
  d.kind = stringField(object, "kind", where);
  if (d.kind != "primary" && d.kind != "secondary" && d.kind != "alias" && d.kind != "subdomain")
    refuse(where + "kind", "must be primary, secondary, alias or subdomain, not '" + d.kind + "'");
  d.parent = stringField(object, "parent", where, false);
  d.nginxExtra = stringField(object, "nginx_extra", where, false);
  if (d.nginxExtra.find('\0') != std::string::npos) refuse(where + "nginx_extra", "must not contain NUL");
  if (d.nginxExtra.size() > kMaxNginxExtraBytes)
    refuse(where + "nginx_extra", "must be at most " + std::to_string(kMaxNginxExtraBytes) + " bytes");
  return d;
}

std::optional<Certificate> parseCertificate(const Object::Ptr& account) {
  if (!account->has("certificate") || account->get("certificate").isEmpty()) return std::nullopt;
  auto object = asObject(account->get("certificate"));
  if (!object) refuse("account.certificate", "must be an object or null");
  Certificate c;
  c.certificatePem = stringField(object, "certificate_pem", "account.certificate.");
  c.keyPem = stringField(object, "key_pem", "account.certificate.");
  if (c.certificatePem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    refuse("account.certificate.certificate_pem", "must hold a PEM certificate");
  if (c.keyPem.find("PRIVATE KEY-----") == std::string::npos)
    refuse("account.certificate.key_pem", "must hold a PEM private key");
  if (c.certificatePem.find('\0') != std::string::npos || c.keyPem.find('\0') != std::string::npos)
    refuse("account.certificate", "must not contain NUL");
  return c;
}

}  // namespace

std::vector<const Domain*> Account::sites() const {
  std::vector<const Domain*> out;
  for (const auto& d : domains)
    if (d.kind != "alias") out.push_back(&d);
  return out;
}

std::vector<std::string> Account::serverNames(const Domain& site) const {
  std::vector<std::string> names{site.name};
  for (const auto& d : domains)
    if (d.kind == "alias" && d.parent == site.name) names.push_back(d.name);
  return names;
}

Account parseAccount(std::string_view json) {
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(json));
  } catch (const Poco::Exception& e) {
    refuse("account", "is not JSON: " + e.displayText());
  }
  auto object = asObject(parsed);
  if (!object) refuse("account", "must be an object");
  Account a;
  a.name = stringField(object, "name", "account.");
  static const std::regex userName("[a-z_][a-z0-9_-]{0,31}");
  if (!std::regex_match(a.name, userName))
    refuse("account.name", "'" + a.name + "' is not a user name ([a-z_][a-z0-9_-]{0,31})");
  if (reservedNames().count(a.name)) refuse("account.name", "'" + a.name + "' is reserved for the system");
  // 1000 and up: never a system account; 2^32-1 is (uid_t)-1, "no user".
  a.uid = static_cast<std::uint32_t>(integerField(object, "uid", "account.", 1000, 4294967294LL));
  a.gid = static_cast<std::uint32_t>(integerField(object, "gid", "account.", 1000, 4294967294LL));
  a.home = stringField(object, "home", "account.");
  checkHome(a.home);
  const auto state = stringField(object, "state", "account.");
  if (state != "active" && state != "suspended")
    refuse("account.state", "must be active or suspended, not '" + state + "'");
  a.suspended = state == "suspended";
  if (object->has("revision")) a.revision = integerField(object, "revision", "account.", 0, std::numeric_limits<std::int64_t>::max());

  if (!object->has("domains")) refuse("account.domains", "is missing");
  auto domains = object->get("domains").type() == typeid(Array::Ptr) ? object->getArray("domains") : nullptr;
  if (!domains) refuse("account.domains", "must be an array");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < domains->size(); ++i) {
    const std::string where = "account.domains[" + std::to_string(i) + "].";
    auto item = asObject(domains->get(static_cast<unsigned>(i)));
    if (!item) refuse("account.domains[" + std::to_string(i) + "]", "must be an object");
    auto d = parseDomain(item, where);
    if (!seen.insert(d.name).second) refuse(where + "name", "'" + d.name + "' is listed twice");
    a.domains.push_back(std::move(d));
  }
  int primaries = 0;
  for (std::size_t i = 0; i < a.domains.size(); ++i) {
    const auto& d = a.domains[i];
    const std::string where = "account.domains[" + std::to_string(i) + "].";
    if (d.kind == "primary") ++primaries;
    const bool needsParent = d.kind == "alias" || d.kind == "subdomain";
    if (!needsParent && !d.parent.empty()) refuse(where + "parent", "must be empty for a " + d.kind + " domain");
    if (!needsParent) continue;
    if (d.parent.empty() || !seen.count(d.parent))
      refuse(where + "parent", "must name another domain of the account, not '" + d.parent + "'");
    if (d.parent == d.name) refuse(where + "parent", "must not be the domain itself");
    if (d.kind == "alias") {
      for (const auto& other : a.domains)
        if (other.name == d.parent && other.kind == "alias")
          refuse(where + "parent", "'" + d.parent + "' is an alias itself; an alias's parent has a site");
    } else if (d.name.size() <= d.parent.size() + 1 ||
               d.name.compare(d.name.size() - d.parent.size() - 1, std::string::npos, "." + d.parent) != 0) {
      refuse(where + "name", "'" + d.name + "' is not a name under its parent '" + d.parent + "'");
    }
  }
  if (!a.domains.empty() && primaries != 1) refuse("account.domains", "must hold exactly one primary domain");
  a.certificate = parseCertificate(object);
  return a;
}

Account parseSitePayload(std::string_view json) {
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(json));
  } catch (const Poco::Exception& e) {
    refuse("payload", "is not JSON: " + e.displayText());
  }
  auto object = asObject(parsed);
  if (!object) refuse("payload", "must be an object {\"account\": ...}");
  for (const auto& [key, value] : *object)
    if (key != "account") refuse("payload." + key, "is not a field (account)");
  if (!object->has("account") || !asObject(object->get("account"))) refuse("payload.account", "must be an account object");
  std::ostringstream text;
  object->getObject("account")->stringify(text);
  return parseAccount(text.str());
}

}  // namespace shoal::http
