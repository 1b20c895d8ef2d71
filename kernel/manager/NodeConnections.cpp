#include "manager/NodeConnections.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

#include "host/HostObjects.hpp"
#include "host/Registries.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// A non-negative whole number in `o[key]`, or -1.
std::int64_t count(const Object::Ptr& o, const std::string& key) {
  if (!o->has(key)) return -1;
  const auto& v = o->get(key);
  if (!v.isInteger()) return -1;
  const auto n = v.convert<std::int64_t>();
  return n < 0 ? -1 : n;
}

}  // namespace

Object::Ptr countNodeConnections(const host::Registries* registries, const cluster::Node& node,
                                 const std::vector<std::string>& servingServices) {
  Object query;
  query.set("id", node.id);
  query.set("address", node.address);
  query.set("hostname", node.hostname);
  std::ostringstream text;
  query.stringify(text);
  const std::string nodeJson = text.str();

  std::int64_t total = 0;
  Array::Ptr detail = new Array, unknown = new Array;
  auto cannotTell = [&](const std::string& plugin, const std::string& reason) {
    Object::Ptr u = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    u->set("plugin", plugin);
    u->set("reason", reason);
    unknown->add(u);
  };
  const auto counters = registries ? registries->connectionCounters() : std::vector<host::ConnectionsEntry>{};
  if (counters.empty()) cannotTell("", "no loaded plugin counts connections");
  for (const auto& entry : counters) {
    shoal_reply reply;
    const auto status = entry.onNodeConnections(entry.user, shoal_str{nodeJson.data(), nodeJson.size()}, &reply);
    if (status != SHOAL_OK) {
      cannotTell(entry.plugin, reply.error.empty() ? "it answered status " + std::to_string(status) : reply.error);
      continue;
    }
    Object::Ptr answer;
    try {
      answer = Poco::JSON::Parser().parse(reply.output).extract<Object::Ptr>();
    } catch (const std::exception&) {
      cannotTell(entry.plugin, "its answer is not a JSON object");
      continue;
    }
    if (answer->has("connections") && answer->get("connections").isEmpty()) {
      cannotTell(entry.plugin, answer->optValue<std::string>("reason", "it cannot count them"));
      continue;
    }
    const auto connections = count(answer, "connections");
    if (connections < 0) {
      cannotTell(entry.plugin, "\"connections\" is not a whole number");
      continue;
    }
    total += connections;
    if (auto items = answer->getArray("detail")) {
      for (std::size_t i = 0; i < items->size(); ++i) {
        auto item = items->getObject(static_cast<unsigned>(i));
        if (!item) continue;
        Object::Ptr d = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
        d->set("plugin", entry.plugin);
        d->set("service", item->optValue<std::string>("service", ""));
        d->set("where", item->optValue<std::string>("where", ""));
        d->set("active", std::max<std::int64_t>(0, count(item, "active")));
        d->set("inactive", std::max<std::int64_t>(0, count(item, "inactive")));
        detail->add(d);
      }
    }
  }

  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("node_id", node.id);
  o->set("draining", node.state == cluster::NodeState::Draining);
  Array::Ptr serving = new Array;
  for (const auto& service : servingServices) serving->add(service);
  o->set("serving", serving);
  if (unknown->size() == 0) {
    o->set("connections", total);
  } else {
    o->set("connections", Poco::Dynamic::Var());
  }
  o->set("detail", detail);
  o->set("unknown", unknown);
  return o;
}

}  // namespace shoal::manager
