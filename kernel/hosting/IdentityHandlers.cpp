#include "hosting/IdentityHandlers.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstdint>
#include <exception>

#include "common/Error.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "hosting/AccountNames.hpp"

namespace shoal::hosting {
namespace {

// Below 1000 are the system's users (Debian's SYS_UID_MAX is 999); 4294967295 is (uid_t)-1,
// which chown and setuid read as "no change".
constexpr std::int64_t kLowestId = 1000;
constexpr std::int64_t kHighestId = 4294967294;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, field + ": " + why);
}

Poco::JSON::Object::Ptr parseAccount(const std::string& json) {
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(json);
  } catch (const Poco::Exception& e) {
    invalid("payload", "not JSON: " + e.message());
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) invalid("payload", "must be a JSON object (the account)");
  return parsed.extract<Poco::JSON::Object::Ptr>();
}

std::string requireName(const Poco::JSON::Object& account) {
  if (!account.has("name")) invalid("name", "missing");
  const auto value = account.get("name");
  if (!value.isString()) invalid("name", "must be a string");
  const std::string name = value.extract<std::string>();
  validateAccountName(name, "name");
  return name;
}

std::uint32_t requireId(const Poco::JSON::Object& account, const std::string& field) {
  const std::string range = "must be a whole number from " + std::to_string(kLowestId) + " to " +
                            std::to_string(kHighestId);
  if (!account.has(field)) invalid(field, "missing");
  const auto value = account.get(field);
  if (!value.isInteger() || value.isBoolean()) invalid(field, range);
  std::int64_t id = 0;
  try {
    id = value.convert<std::int64_t>();
  } catch (const Poco::Exception&) {
    invalid(field, range);  // beyond 64 bits
  }
  if (id < kLowestId || id > kHighestId) invalid(field, range + ", not " + std::to_string(id));
  return static_cast<std::uint32_t>(id);
}

std::string requireHome(const Poco::JSON::Object& account) {
  if (!account.has("home")) invalid("home", "missing");
  const auto value = account.get("home");
  if (!value.isString()) invalid("home", "must be a string");
  const std::string home = value.extract<std::string>();
  if (home.empty() || home.front() != '/') invalid("home", "'" + home + "' is not an absolute path");
  for (unsigned char c : home) {
    if (c == ':' || c < 0x20 || c == 0x7f) invalid("home", "must not contain ':' or control characters");
  }
  return home;
}

std::string describeUser(const UnixIdentity& identity) {
  return "user " + identity.name + " uid " + std::to_string(identity.uid);
}

// Runs `body` as a handler's answer: its text is the output, a thrown Error the status and
// the message. Nothing escapes to the caller.
template <typename Body>
shoal_status answer(shoal_reply* reply, Body&& body) {
  try {
    reply->output += body();
    return SHOAL_OK;
  } catch (const Error& e) {
    reply->error = e.what();
    return host::toStatus(e.code());
  } catch (const std::exception& e) {
    reply->error = e.what();
    return SHOAL_ERR_INTERNAL;
  }
}

std::string text(shoal_str s) { return s.data == nullptr ? std::string() : std::string(s.data, s.len); }

shoal_status validatePut(void*, shoal_str payload, shoal_reply* reply) {
  return answer(reply, [&] {
    identityToPut(text(payload));
    return std::string();
  });
}

shoal_status applyPut(void*, shoal_str payload, shoal_reply* reply) {
  return answer(reply, [&] {
    const UnixIdentity identity = identityToPut(text(payload));
    switch (putIdentity(identity)) {
      case IdentityChange::Created: return "created " + describeUser(identity);
      case IdentityChange::HomeChanged: return describeUser(identity) + " present, home changed to " + identity.home;
      default: return describeUser(identity) + " already present";
    }
  });
}

shoal_status validateRemove(void*, shoal_str payload, shoal_reply* reply) {
  return answer(reply, [&] {
    identityToRemove(text(payload));
    return std::string();
  });
}

shoal_status applyRemove(void*, shoal_str payload, shoal_reply* reply) {
  return answer(reply, [&] {
    const UnixIdentity identity = identityToRemove(text(payload));
    if (removeIdentity(identity.name, identity.uid) == IdentityChange::Removed) {
      return "removed " + describeUser(identity);
    }
    return describeUser(identity) + " already absent";
  });
}

}  // namespace

UnixIdentity identityToPut(const std::string& accountJson) {
  const auto account = parseAccount(accountJson);
  UnixIdentity identity;
  identity.name = requireName(*account);
  identity.uid = requireId(*account, "uid");
  identity.gid = requireId(*account, "gid");
  identity.home = requireHome(*account);
  return identity;
}

UnixIdentity identityToRemove(const std::string& accountJson) {
  const auto account = parseAccount(accountJson);
  UnixIdentity identity;
  identity.name = requireName(*account);
  identity.uid = requireId(*account, "uid");
  return identity;
}

host::Contributions identityQueueHandlers() {
  host::Contributions builtIns;
  host::QueueHandlerEntry put;
  put.plugin = host::kKernelContributorName;
  put.kind = "account.identity.put";
  put.description = "create the account's group and user with the cluster's uid and gid";
  put.onValidate = &validatePut;
  put.onApply = &applyPut;
  builtIns.queueHandlers.push_back(put);
  host::QueueHandlerEntry remove;
  remove.plugin = host::kKernelContributorName;
  remove.kind = "account.identity.remove";
  remove.description = "remove the account's user and group (its files stay)";
  remove.onValidate = &validateRemove;
  remove.onApply = &applyRemove;
  builtIns.queueHandlers.push_back(remove);
  return builtIns;
}

}  // namespace shoal::hosting
