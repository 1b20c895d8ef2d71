#include "api/NodeQueueMessages.hpp"

#include <Poco/JSON/Array.h>

#include <limits>

#include "common/Error.hpp"

namespace shoal::api {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, where + ": " + what);
}

// The objects of the array `body[field]`; refuses anything else, naming the place.
std::vector<Object::Ptr> objectsOf(const Object::Ptr& body, const std::string& field) {
  if (!body || !body->has(field) || body->get(field).type() != typeid(Array::Ptr))
    refuse(field, "must be an array");
  const auto items = body->getArray(field);
  std::vector<Object::Ptr> objects;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const auto& item = items->get(static_cast<unsigned>(i));
    if (item.type() != typeid(Object::Ptr)) refuse(field + "[" + std::to_string(i) + "]", "must be an object");
    objects.push_back(item.extract<Object::Ptr>());
  }
  return objects;
}

// An integer field in [min, max]; a number too large for 64 bits is refused like any other.
std::int64_t integer(const Object::Ptr& o, const std::string& where, const std::string& field,
                     std::int64_t min, std::int64_t max, const std::string& what) {
  if (!o->has(field)) refuse(where + field, "is missing; it " + what);
  const auto& value = o->get(field);
  std::int64_t n = 0;
  try {
    // Poco counts a boolean as an integer; JSON does not.
    if (!value.isInteger() || value.isBoolean()) refuse(where + field, what);
    n = value.convert<std::int64_t>();
  } catch (const Poco::Exception&) {
    refuse(where + field, what);
  }
  if (n < min || n > max) refuse(where + field, what);
  return n;
}

std::string text(const Object::Ptr& o, const std::string& where, const std::string& field, bool required) {
  if (!o->has(field)) {
    if (required) refuse(where + field, "is missing; it must be a string");
    return {};
  }
  const auto& value = o->get(field);
  if (!value.isString()) refuse(where + field, "must be a string");
  return value.extract<std::string>();
}

constexpr std::int64_t kMaxId = std::numeric_limits<std::int64_t>::max();

}  // namespace

std::vector<OfferedDelivery> parseDeliveryList(const Object::Ptr& body) {
  std::vector<OfferedDelivery> list;
  const auto items = objectsOf(body, "deliveries");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Object::Ptr& d = items[i];
    const std::string where = "deliveries[" + std::to_string(i) + "].";
    OfferedDelivery o;
    o.id = integer(d, where, "id", 1, kMaxId, "must be a positive integer");
    o.commandId = integer(d, where, "command_id", 1, kMaxId, "must be a positive integer");
    o.kind = text(d, where, "kind", true);
    if (o.kind.empty()) refuse(where + "kind", "must be a non-empty string");
    o.payload = text(d, where, "payload", true);
    o.orderingKey = text(d, where, "ordering_key", false);
    if (d->has("attempts"))
      o.attempts = static_cast<std::uint32_t>(integer(d, where, "attempts", 1, std::numeric_limits<std::uint32_t>::max(),
                                                      "must be an integer from 1"));
    list.push_back(std::move(o));
  }
  return list;
}

std::vector<cluster::DeliveryResult> parseResultsBatch(const Object::Ptr& body) {
  std::vector<cluster::DeliveryResult> batch;
  const auto items = objectsOf(body, "results");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Object::Ptr& r = items[i];
    const std::string where = "results[" + std::to_string(i) + "].";
    cluster::DeliveryResult result;
    result.deliveryId = integer(r, where, "delivery_id", 1, kMaxId, "must be a positive integer");
    if (!r->has("succeeded") || !r->get("succeeded").isBoolean())
      refuse(where + "succeeded", "must be true or false");
    result.succeeded = r->get("succeeded").extract<bool>();
    result.output = text(r, where, "output", false);
    batch.push_back(std::move(result));
  }
  return batch;
}

}  // namespace shoal::api
