#include "manager/EnqueueRequest.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <set>
#include <sstream>

#include "common/Error.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// ---- the enqueue request: one format for POST /v1/commands and ABI callback_enqueue ----
// (abi.h documents it.) Every field is checked; an error names the field, prefixed with the
// request's place in a batch ("commands[2].target: ...").

[[noreturn]] void refuseField(const std::string& where, const std::string& field, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, "enqueue request: " + where + field + ": " + what);
}

// {"all": true} | {"role": NAME} | {"node": ID}, exactly one of them.
cluster::Target parseEnqueueTarget(const Object::Ptr& item, const std::string& where) {
  const std::string forms = "must be {\"all\": true}, {\"role\": NAME} or {\"node\": ID}";
  if (!item->has("target")) refuseField(where, "target", "is missing; it " + forms);
  auto target = item->get("target").type() == typeid(Object::Ptr) ? item->getObject("target") : nullptr;
  if (!target || target->size() != 1) refuseField(where, "target", forms);
  const std::string form = target->begin()->first;
  const auto& value = target->begin()->second;
  if (form == "all") {
    if (!value.isBoolean() || !value.extract<bool>())
      refuseField(where, "target.all", "must be true (to reach some nodes, name a role or a node)");
    return cluster::Target::all();
  }
  if (form == "role") {
    if (!value.isString() || value.extract<std::string>().empty())
      refuseField(where, "target.role", "must be a non-empty role name");
    return cluster::Target::withRole(value.extract<std::string>());
  }
  if (form == "node") {
    if (!value.isInteger() || value.convert<std::int64_t>() <= 0)
      refuseField(where, "target.node", "must be a positive integer node id");
    return cluster::Target::node(value.convert<std::int64_t>());
  }
  refuseField(where, "target." + form, "is not a target form; the target " + forms);
}

cluster::CommandRequest parseEnqueueItem(const Object::Ptr& item, const std::string& where) {
  static const std::set<std::string> known{"kind", "payload", "key", "target", "stagger_ms"};
  for (const auto& [field, value] : *item)
    if (!known.count(field))
      refuseField(where, field, field == "ordering_key" ? "is not a field; the ordering key is 'key'"
                                                         : "is not a field (kind, payload, key, target, stagger_ms)");
  cluster::CommandRequest c;
  if (!item->has("kind") || !item->get("kind").isString() || item->getValue<std::string>("kind").empty())
    refuseField(where, "kind", "must be a non-empty string");
  c.kind = item->getValue<std::string>("kind");
  c.payloadJson = "{}";
  if (item->has("payload")) {
    const auto& payload = item->get("payload");
    if (payload.isString()) {
      // The JSON text of the payload; it must be JSON, or every node would fail on it.
      c.payloadJson = payload.extract<std::string>();
      try {
        Poco::JSON::Parser().parse(c.payloadJson);
      } catch (const Poco::Exception& e) {
        refuseField(where, "payload", "is a string but not the text of a JSON value: " + e.displayText());
      }
    } else if (payload.isEmpty()) {
      refuseField(where, "payload", "must be a JSON value or its text, not null");
    } else {
      std::ostringstream text;
      Poco::JSON::Stringifier::condense(payload, text);
      c.payloadJson = text.str();
    }
  }
  c.orderingKey = c.kind;
  if (item->has("key")) {
    if (!item->get("key").isString() || item->getValue<std::string>("key").empty())
      refuseField(where, "key", "must be a non-empty string");
    c.orderingKey = item->getValue<std::string>("key");
  }
  c.target = parseEnqueueTarget(item, where);
  if (item->has("stagger_ms")) {
    const auto& stagger = item->get("stagger_ms");
    const auto limit = cluster::CommandQueue::kMaxStagger.count();
    if (!stagger.isInteger() || stagger.convert<std::int64_t>() < 0 || stagger.convert<std::int64_t>() > limit)
      refuseField(where, "stagger_ms", "must be an integer from 0 to " + std::to_string(limit) + " (milliseconds)");
    c.stagger = std::chrono::milliseconds(stagger.convert<std::int64_t>());
  }
  return c;
}

}  // namespace

EnqueueRequest parseEnqueueRequest(const Object::Ptr& body) {
  EnqueueRequest request;
  if (!body->has("commands")) {
    request.commands.push_back(parseEnqueueItem(body, ""));
    return request;
  }
  request.batch = true;
  if (body->size() != 1) refuseField("", "commands", "a batch holds nothing but 'commands'");
  auto items = body->get("commands").type() == typeid(Array::Ptr) ? body->getArray("commands") : nullptr;
  if (!items || items->size() == 0 || items->size() > cluster::CommandQueue::kMaxLimit)
    refuseField("", "commands", "must be an array of 1 to 1000 enqueue requests");
  for (std::size_t i = 0; i < items->size(); ++i) {
    const std::string where = "commands[" + std::to_string(i) + "].";
    auto item = items->get(static_cast<unsigned>(i)).type() == typeid(Object::Ptr)
                    ? items->getObject(static_cast<unsigned>(i)) : nullptr;
    if (!item) refuseField("", "commands[" + std::to_string(i) + "]", "must be an object");
    request.commands.push_back(parseEnqueueItem(item, where));
  }
  return request;
}

}  // namespace shoal::manager
