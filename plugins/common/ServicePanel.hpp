#pragma once
// The panel every service plugin shows: the state of its service on each node, as the
// manager's health engine sees it (probe state, whether the balancer sends it traffic,
// maintenance, and why the last probe failed). Declarative, like every panel: the panel's
// own code renders the table and escapes every value.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <shoal/sdk.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace shoal::plugins {

// Registers panel "status" titled `title` for the plugin's probed services ({"http", "https"}).
inline void registerServicePanel(Registrar& reg, const std::vector<std::string>& services, const std::string& title) {
  std::string names;
  for (const auto& s : services) names += (names.empty() ? "" : " and ") + s;
  const std::string definition =
      R"({"title": ")" + title + R"(", "sections": [)"
      R"({"id": "nodes", "type": "table", "title": "On each node", "columns": [)"
      R"({"key": "node_id", "label": "Node"}, {"key": "service", "label": "Service"}, {"key": "address", "label": "Address"},)"
      R"({"key": "port", "label": "Port"}, {"key": "state", "label": "Probe"},)"
      R"({"key": "serving", "label": "Receives traffic"}, {"key": "maintenance", "label": "Maintenance"},)"
      R"({"key": "reason", "label": "Last failure"}]},)"
      R"({"id": "about", "type": "text", "title": "How it is checked", "body": "The manager probes )" +
      names +
      R"( on every node whose roles include them. A node that fails the probe is taken out of the balancer until it passes again; maintenance takes it out by hand (Dashboard, or shoalctl health maintenance)."}]})";
  const Host host = reg.host();
  reg.panel("status", definition, [host, services](std::string_view section, std::string_view) -> std::string {
    if (section != "nodes") throw PluginError("no section '" + std::string(section) + "'", SHOAL_ERR_NOT_FOUND);
    Poco::JSON::Array::Ptr rows = new Poco::JSON::Array;
    if (host.offersAbi11()) {
      auto all = Poco::JSON::Parser().parse(host.healthJson()).extract<Poco::JSON::Array::Ptr>();
      for (std::size_t i = 0; all && i < all->size(); ++i) {
        auto o = all->getObject(static_cast<unsigned>(i));
        const auto service = o->optValue<std::string>("service", "");
        if (std::find(services.begin(), services.end(), service) != services.end()) rows->add(o);
      }
    }
    Poco::JSON::Object answer;
    answer.set("rows", rows);
    std::ostringstream out;
    Poco::JSON::Stringifier::condense(answer, out);
    return out.str();
  });
}

}  // namespace shoal::plugins
