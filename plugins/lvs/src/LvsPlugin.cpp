// The lvs plugin: the cluster's load balancer.
//
// On the manager it keeps the balancer policies (document store, collection "policies"),
// serves them at /v1/plugins/lvs/ (shoalctl lb), follows health.changed to drain members
// whose service does not serve, and sends the resulting table to the director as an
// `lvs.apply` command (ordering key "lvs", target role `director_role`).
//
// On the director (any node given that role; usually the manager itself as AppServer0)
// `lvs.apply` programmes the dataplane — kernel IPVS when the generic-netlink family
// resolves, else the userspace balancer — and remembers the table (collection
// "director"), which a reconcile loop re-applies every `reconcile_interval_ms` so drift
// (a service deleted with ipvsadm behind shoal's back) is repaired.
//
// Configuration, section [plugin.lvs]:
//   dataplane = auto | ipvs | userspace   (auto)
//   reconcile_interval_ms = 5000          (500..3600000)
//   director_role = director
//   userspace_threads = 2                 (1..64)
//   nft = nft                             the nftables program that marks packets of
//                                         firewall-mark groups (ipvs dataplane only)
//   stats_interval_ms = 10000             how often the director samples its counters for
//                                         the manager's RRD files (1000..3600000)
//   tcpfin_timeout = 120                  seconds a closed TCP connection still counts as
//                                         inactive on its real server (1..86400), as
//                                         `ipvsadm --set TCP TCPFIN UDP` sets IPVS's; the
//                                         userspace dataplane's (IPVS keeps its own setting)
//
// One policy the director cannot hold (a port in use, a protocol its dataplane lacks, a
// change the kernel rejects) never stops the others: the director applies every service
// it can, the delivery of lvs.apply succeeds, and the reconcile loop retries the failed
// ones every interval, so a freed port heals by itself. What is knowable on the manager is
// refused at the API instead: udp when the manager runs the director's userspace dataplane
// or is configured with `dataplane = userspace` (a setting only a director reads).
//
// The output of lvs.apply is a line for people, then one line of JSON for programs (a
// manager whose director is another node reads the failures from it):
//   {"lvs_apply": {"dataplane": "userspace", "services": 3, "applied": 2,
//                  "failed": [{"virtual_service": "tcp:192.0.2.10:21",
//                              "error": "cannot listen on 192.0.2.10:21: Address already in use"}]}}
// `virtual_service` is the dataplane key (tcp:ADDRESS:PORT, udp:..., fwm:MARK:v4|v6);
// "failed" is empty when every service was applied.
//
// GET /v1/plugins/lvs/services gives each policy "status": "applied" | "failed" | "pending"
// (sent, not yet held) | "unknown", and with "failed" an "error" saying why. A director in
// this process is asked directly; one on another node is known by the report in its
// delivery of the last lvs.apply this manager sent (ABI 1.3 command_get), and is "unknown"
// until this manager has sent one. /metrics carries the same as shoal_lvs_service_failed
// (ABI 1.3 plugin metrics), with shoal_lvs_services counting the policies.
//
// Every edit of a stored policy (PUT, DELETE, the members routes) is one read-modify-write
// in one store transaction, written with the revision it read as the expected one, so
// concurrent edits never lose each other's changes: the one overtaken is done again on
// the newer policy (modifyPolicy), and answered 409 if it keeps being overtaken.
//
// Statistics (ABI 1.2): the director samples every virtual service and real server and
// hands the totals to the kernel as series "lvs.service.<key>" and
// "lvs.member.<key>.<real server>" (keys made file-name safe, see seriesId). A series is
// named by what it measures, not by a row of the store: deleting a policy leaves its
// history in place, and a policy made again for the same virtual service continues it.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <shoal/sdk.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "Dataplane.hpp"
#include "Policy.hpp"
#include "Reconciler.hpp"
#include "ipvs/FirewallMarks.hpp"
#include "ipvs/IpvsDataplane.hpp"
#include "userspace/UserspaceDataplane.hpp"

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;
using shoal::PluginError;
using namespace shoal::lvs;

const char* kPolicies = "policies";
const char* kDirector = "director";
const char* kDesiredKey = "desired";

std::string stringify(const Poco::Dynamic::Var& v) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(v, out);
  return out.str();
}

Poco::Dynamic::Var parse(std::string_view json) { return Poco::JSON::Parser().parse(std::string(json)); }

Object::Ptr countersJson(const Counters& c, const Rates& r) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("connections", c.connections);
  o->set("packets_in", c.packetsIn);
  o->set("packets_out", c.packetsOut);
  o->set("bytes_in", c.bytesIn);
  o->set("bytes_out", c.bytesOut);
  o->set("cps", r.connectionsPerSecond);
  o->set("packets_in_per_second", r.packetsInPerSecond);
  o->set("packets_out_per_second", r.packetsOutPerSecond);
  o->set("bytes_in_per_second", r.bytesInPerSecond);
  o->set("bytes_out_per_second", r.bytesOutPerSecond);
  return o;
}

// A key as a statistics series name: [A-Za-z0-9._:-] kept, anything else (IPv6 brackets) '_'.
std::string seriesId(const std::string& text) {
  std::string out = text;
  for (auto& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-') c = '_';
  return out;
}
std::string serviceSeries(const std::string& serviceKey) { return "service." + seriesId(serviceKey); }
std::string memberSeries(const std::string& serviceKey, const std::string& memberKey) {
  return "member." + seriesId(serviceKey) + "." + seriesId(memberKey);
}

std::uint32_t configNumber(const shoal::Host& host, const char* key, std::uint32_t fallback, std::uint32_t min,
                           std::uint32_t max) {
  auto value = host.config(key);
  if (!value) return fallback;
  try {
    std::size_t used = 0;
    unsigned long n = std::stoul(*value, &used);
    if (used == value->size() && n >= min && n <= max) return static_cast<std::uint32_t>(n);
  } catch (const std::exception&) {
  }
  throw PluginError("[plugin.lvs] " + std::string(key) + " = '" + *value + "' must be a whole number from " +
                        std::to_string(min) + " to " + std::to_string(max),
                    SHOAL_ERR_INVALID_ARGUMENT);
}

// Turns model errors into the SDK's 400, and a body that is not a JSON object into one too.
template <typename Body>
auto checked(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const PolicyError& e) {
    throw PluginError(e.what(), SHOAL_ERR_INVALID_ARGUMENT);
  } catch (const Poco::JSON::JSONException& e) {
    throw PluginError("the request body is not valid JSON: " + e.displayText(), SHOAL_ERR_INVALID_ARGUMENT);
  } catch (const Poco::BadCastException&) {
    throw PluginError("the request body must be a JSON object", SHOAL_ERR_INVALID_ARGUMENT);
  }
}

class Lvs final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    dataplaneMode_ = host().config("dataplane", "auto");
    if (dataplaneMode_ != "auto" && dataplaneMode_ != "ipvs" && dataplaneMode_ != "userspace")
      throw PluginError("[plugin.lvs] dataplane = '" + dataplaneMode_ + "' must be auto, ipvs or userspace",
                        SHOAL_ERR_INVALID_ARGUMENT);
    reconcileInterval_ = std::chrono::milliseconds(configNumber(host(), "reconcile_interval_ms", 5000, 500, 3600000));
    userspaceThreads_ = configNumber(host(), "userspace_threads", 2, 1, 64);
    statsInterval_ = std::chrono::milliseconds(configNumber(host(), "stats_interval_ms", 10000, 1000, 3600000));
    finTimeout_ = std::chrono::seconds(configNumber(host(), "tcpfin_timeout", 120, 1, 86400));
    directorRole_ = host().config("director_role", "director");
    const bool roleOk = !directorRole_.empty() && directorRole_.size() <= 32 && directorRole_[0] >= 'a' &&
                        directorRole_[0] <= 'z' &&
                        directorRole_.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
    if (!roleOk)
      throw PluginError("[plugin.lvs] director_role = '" + directorRole_ + "' must be a role name ([a-z][a-z0-9_-]{0,31})",
                        SHOAL_ERR_INVALID_ARGUMENT);

    reg.queueHandler(
        "lvs.apply", "Programme the balancer's dataplane with the cluster's virtual services",
        [this](std::string_view payload, shoal::Reply& reply) { reply.append(applyTable(tableFromJson(std::string(payload)))); },
        [](std::string_view payload) { checked([&] { tableFromJson(std::string(payload)); }); });
    reg.queueHandler("lvs.zero", "Zero the balancer's counters", [this](std::string_view, shoal::Reply& reply) {
      std::lock_guard lock(dataplaneMutex_);
      if (!dataplane_) throw PluginError("this node runs no balancer dataplane (it never received lvs.apply)");
      dataplane_->zeroCounters();
      reply.append("counters zeroed on the " + dataplane_->name() + " dataplane");
    });
    reg.hook("health.changed", [this](std::string_view, std::string_view payload) { onHealthChanged(payload); });
    if (host().offersAbi11()) reg.api([this](const shoal::ApiRequest& r) { return checked([&] { return serve(r); }); });
    if (host().offersConnections()) reg.connections([this](std::string_view node) { return nodeConnections(node); });
    if (host().offersAbi13()) reg.metrics([this] { return metricsJson(); });

    registerPanel(reg);

    running_ = true;
    restorer_ = std::thread([this] { restoreLoop(); });
    if (host().offersStats()) sampler_ = std::thread([this] { sampleLoop(); });
  }

  void shutdown() override {
    {
      std::lock_guard lock(stopMutex_);
      running_ = false;
    }
    stopChanged_.notify_all();
    if (restorer_.joinable()) restorer_.join();
    if (sampler_.joinable()) sampler_.join();
    std::lock_guard lock(dataplaneMutex_);
    reconciler_.reset();  // before the dataplane it holds
    dataplane_.reset();
  }

 private:
  // ---- the panel ---------------------------------------------------------------------

  // The schedulers and forwarding methods as select options, from Policy's one list.
  static std::string choicesJson(const std::vector<Choice>& choices, const char* noneLabel = nullptr) {
    Array options;
    auto add = [&](const std::string& value, const std::string& label) {
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("value", value);
      o->set("label", label);
      options.add(o);
    };
    if (noneLabel) add("", noneLabel);
    for (const auto& c : choices) add(c.name, c.name + " — " + c.label);
    return stringify(options);
  }
  static std::vector<Choice> forwardingChoices() {
    std::vector<Choice> out;
    for (const auto& f : forwardingMethods()) out.push_back(f.choice);
    return out;
  }

  // GET /v1/plugins/lvs/schema: the lists a client offers and checks against (shoalctl lb).
  static std::string schemaJson() {
    auto list = [](const std::vector<Choice>& choices) {
      Array::Ptr out = new Array;
      for (const auto& c : choices) {
        Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
        o->set("name", c.name);
        o->set("label", c.label);
        out->add(o);
      }
      return out;
    };
    Object answer(Poco::JSON_PRESERVE_KEY_ORDER);
    answer.set("schedulers", list(schedulers()));
    answer.set("default_scheduler", std::string(kDefaultScheduler));
    answer.set("forwarding", list(forwardingChoices()));
    answer.set("default_forwarding", std::string(kDefaultForwarding));
    return stringify(answer);
  }

  // Declarative, like every panel: the panel's own code renders it and escapes every value.
  // It is the only balancer UI; each of its actions runs the same code as the API route
  // it names (panelAction).
  void registerPanel(shoal::Registrar& reg) {
    const std::string schedulerOptions = choicesJson(schedulers());
    const std::string forwardingOptions = choicesJson(forwardingChoices());
    const std::string memberForwardingOptions = choicesJson(forwardingChoices(), "as the virtual service");
    const std::string definition = R"json({
      "title": "Balancer",
      "sections": [
        {"id": "services", "type": "table", "title": "Virtual services", "row_key": "key", "refresh_seconds": 2,
         "empty": "No virtual service yet: add one with the form below.",
         "columns": [
          {"key": "key", "label": "Virtual service"}, {"key": "service", "label": "Balances"},
          {"key": "scheduler", "label": "Scheduler"}, {"key": "persistence", "label": "Persistence (s)"},
          {"key": "forwarding", "label": "Forwarding"},
          {"key": "connections", "label": "Connections", "live": true}, {"key": "cps", "label": "Conn/s", "live": true},
          {"key": "bytes_in", "label": "Bytes in", "live": true}, {"key": "bytes_out", "label": "Bytes out", "live": true},
          {"key": "status", "label": "Status", "live": true}, {"key": "error", "label": "Problem", "live": true}],
         "row_actions": [
          {"label": "Edit", "form": "edit-service"}, {"label": "Add real server", "form": "add-server"},
          {"label": "Delete", "action": "delete-service",
           "confirm": "Delete this virtual service and all its real servers?"}],
         "nested": {"key": "servers", "row_key": "server", "open": true, "empty": "No real server yet.",
          "columns": [
           {"key": "server", "label": "Real server"}, {"key": "weight", "label": "Weight"},
           {"key": "effective_weight", "label": "In force", "live": true}, {"key": "health", "label": "Health", "live": true},
           {"key": "active_connections", "label": "Active", "live": true},
           {"key": "inactive_connections", "label": "Inactive", "live": true},
           {"key": "connections", "label": "Connections", "live": true},
           {"key": "forwarding_in_force", "label": "Forwarding"}],
          "row_actions": [
           {"label": "Edit", "form": "edit-server"},
           {"label": "Remove", "action": "delete-server", "confirm": "Remove this real server from its virtual service?"}]}},
        {"id": "add-service", "type": "form", "title": "Add a virtual service", "action": "add-service",
         "submit": "Add virtual service", "fields": [
          {"name": "kind", "label": "Protocol", "type": "select", "default": "tcp", "required": true, "options": [
            {"value": "tcp", "label": "TCP"}, {"value": "udp", "label": "UDP"},
            {"value": "fwm", "label": "Firewall-mark group (several ports)"}]},
          {"name": "address", "label": "Virtual IP address", "type": "text", "required": true,
           "show_when": {"field": "kind", "equals": ["tcp", "udp"]}},
          {"name": "port", "label": "Port", "type": "number", "min": 1, "max": 65535, "default": 80, "required": true,
           "show_when": {"field": "kind", "equals": ["tcp", "udp"]}},
          {"name": "fwmark", "label": "Firewall mark", "type": "number", "min": 1, "max": 4294967295, "required": true,
           "help": "A number naming the group.", "show_when": {"field": "kind", "equals": "fwm"}},
          {"name": "listeners", "label": "Listeners", "type": "list", "required": true,
           "help": "The ADDRESS:PORT pairs the mark covers, separated by spaces or commas.",
           "show_when": {"field": "kind", "equals": "fwm"}},
          {"name": "service", "label": "Balanced service", "type": "text", "default": "http", "required": true,
           "help": "Its health probe decides which real servers get traffic."},
          {"name": "scheduler", "label": "Scheduler", "type": "select", "default": ")json" +
                                   std::string(kDefaultScheduler) + R"json(", "options": )json" + schedulerOptions + R"json(},
          {"name": "persistence", "label": "Persistence (seconds)", "type": "number", "min": 0, "max": 31536000,
           "default": 300, "help": "0 turns persistence off; a client then may reach any real server."},
          {"name": "netmask", "label": "Persistence netmask", "type": "text",
           "help": "Empty: one client address. 255.255.255.0 keeps a /24 on one server."},
          {"name": "forwarding", "label": "Forwarding", "type": "select", "default": ")json" +
                                   std::string(kDefaultForwarding) + R"json(", "options": )json" + forwardingOptions + R"json(},
           {"name": "proxy_protocol", "label": "PROXY protocol", "type": "select", "default": "none",
            "help": "v2: the userspace dataplane tells each real server the client's address (IPVS refuses it).",
            "options": ["none", "v2"]}]},
        {"id": "edit-service", "type": "form", "title": "Edit a virtual service", "action": "edit-service",
         "submit": "Save changes", "hidden": true, "fields": [
          {"name": "kind", "label": "Protocol", "type": "select", "readonly": true, "options": ["tcp", "udp", "fwm"]},
          {"name": "listeners", "label": "Listeners", "type": "list", "required": true,
           "show_when": {"field": "kind", "equals": "fwm"}},
          {"name": "service", "label": "Balanced service", "type": "text", "required": true},
          {"name": "scheduler", "label": "Scheduler", "type": "select", "options": )json" + schedulerOptions + R"json(},
          {"name": "persistence", "label": "Persistence (seconds)", "type": "number", "min": 0, "max": 31536000},
          {"name": "netmask", "label": "Persistence netmask", "type": "text"},
          {"name": "forwarding", "label": "Forwarding", "type": "select", "options": )json" + forwardingOptions + R"json(},
           {"name": "proxy_protocol", "label": "PROXY protocol", "type": "select", "help": "v2: the userspace dataplane tells each real server the client's address (IPVS refuses it).",
            "options": ["none", "v2"]}]},
        {"id": "add-server", "type": "form", "title": "Add a real server", "action": "add-server",
         "submit": "Add real server", "hidden": true, "fields": [
          {"name": "address", "label": "Address", "type": "text", "required": true, "help": "The node's IP address."},
          {"name": "port", "label": "Port", "type": "number", "min": 0, "max": 65535,
           "help": "Empty: the virtual service's port. In a firewall-mark group 0 keeps the client's port."},
          {"name": "weight", "label": "Weight", "type": "number", "min": 0, "max": 65535, "default": 1,
           "help": "0 sends it no new connections."},
          {"name": "forwarding", "label": "Forwarding", "type": "select", "default": "",
           "options": )json" + memberForwardingOptions + R"json(}]},
        {"id": "edit-server", "type": "form", "title": "Edit a real server", "action": "edit-server",
         "submit": "Save changes", "hidden": true, "fields": [
          {"name": "weight", "label": "Weight", "type": "number", "min": 0, "max": 65535, "required": true},
          {"name": "forwarding", "label": "Forwarding", "type": "select",
           "options": )json" + memberForwardingOptions + R"json(}]},
        {"id": "traffic", "type": "graph", "title": "Connections per virtual service", "metric": "lvs.service"},
        {"id": "sync", "type": "action", "title": "Director", "action": "sync",
         "label": "Send the table to the director again"},
        {"id": "zero", "type": "action", "title": "Counters", "action": "zero", "label": "Zero the counters",
         "confirm": "Zero the balancer's counters on the director?"}]})json";
    reg.panel(
        "balancer", definition,
        [this](std::string_view section, std::string_view) { return checked([&] { return panelData(section); }); },
        [this](std::string_view action, std::string_view input) {
          return checked([&] { return panelAction(action, input); });
        });
  }

  std::string panelData(std::string_view section) {
    if (section != "services" && section != "traffic")
      throw PluginError("no section '" + std::string(section) + "'", SHOAL_ERR_NOT_FOUND);
    const auto described = describeAll();
    Array::Ptr rows = new Array;
    Array::Ptr graphs = new Array;
    for (const auto& d : described) {
      const auto key = d->getValue<std::string>("key");
      if (section == "traffic") {
        Object::Ptr g = new Object;
        g->set("series", d->get("stats_series"));
        g->set("title", key);
        graphs->add(g);
        continue;
      }
      Object::Ptr row = new Object;
      for (const char* field : {"key", "service", "scheduler", "persistence", "netmask", "forwarding", "listeners",
                                "proxy_protocol", "status", "error"})
        if (d->has(field)) row->set(field, d->get(field));
      row->set("kind", d->has("fwmark") ? std::string("fwm") : d->getValue<std::string>("protocol"));
      if (auto counters = d->getObject("counters"))
        for (const char* field : {"connections", "cps", "bytes_in", "bytes_out"}) row->set(field, counters->get(field));
      Array::Ptr servers = new Array;
      auto members = d->getArray("members");
      for (std::size_t i = 0; members && i < members->size(); ++i) {
        auto m = members->getObject(static_cast<unsigned>(i));
        Object::Ptr server = new Object;
        server->set("server", Member{m->getValue<std::string>("address"),
                                     static_cast<std::uint16_t>(m->getValue<int>("port")), 0, std::nullopt}
                                  .key());
        for (const char* field : {"weight", "effective_weight", "health", "active_connections", "inactive_connections"})
          if (m->has(field)) server->set(field, m->get(field));
        // The real server's own method (empty: the virtual service's), and the one in force.
        server->set("forwarding", m->optValue<std::string>("forwarding", ""));
        server->set("forwarding_in_force", m->optValue<std::string>("forwarding", d->getValue<std::string>("forwarding")));
        if (auto counters = m->getObject("counters")) server->set("connections", counters->get("connections"));
        servers->add(server);
      }
      row->set("servers", servers);
      rows->add(row);
    }
    Object answer;
    if (section == "traffic") {
      answer.set("graphs", graphs);
    } else {
      answer.set("rows", rows);
      std::lock_guard lock(dataplaneMutex_);
      answer.set("note", dataplane_ ? "Dataplane in the manager: " + dataplane_->name() + "; counters are live."
                                    : std::string("No dataplane runs in the manager, so no live counters are shown here."));
    }
    return stringify(answer);
  }

  // A panel action is the API route it stands for, run through serve(), so the panel and
  // shoalctl share every check. The answer's "message" says what happened.
  std::string panelAction(std::string_view action, std::string_view inputJson) {
    auto input = parse(inputJson.empty() ? "{}" : inputJson).extract<Object::Ptr>();
    auto text = [&](const char* name) { return input->optValue<std::string>(name, ""); };
    auto row = [&](const char* name) {
      auto value = text(name);
      if (value.empty()) throw PluginError(std::string("'") + name + "' (the row) is missing", SHOAL_ERR_INVALID_ARGUMENT);
      return value;
    };
    auto copy = [&](Object& to, std::initializer_list<const char*> names) {
      for (const char* name : names)
        if (input->has(name) && !(input->get(name).isString() && input->getValue<std::string>(name).empty()))
          to.set(name, input->get(name));
    };
    auto call = [&](const std::string& method, const std::string& path, const Object* body) {
      const std::string json = body ? stringify(*body) : std::string();
      return parse(serve(shoal::ApiRequest{method, path, "", json})).extract<Object::Ptr>();
    };
    const std::string name(action);
    Object body;
    Object::Ptr answer;
    std::string done;
    if (name == "add-service") {
      const auto kind = text("kind");
      if (kind == "fwm") {
        copy(body, {"fwmark", "listeners"});
      } else {
        body.set("protocol", kind);
        copy(body, {"address", "port"});
      }
      copy(body, {"service", "scheduler", "persistence", "netmask", "forwarding", "proxy_protocol"});
      answer = call("POST", "services", &body);
      done = "Added " + answer->getObject("service")->getValue<std::string>("key") + ".";
    } else if (name == "edit-service") {
      const auto key = row("row");
      copy(body, {"listeners", "service", "scheduler", "persistence", "forwarding", "proxy_protocol"});
      if (input->has("netmask")) body.set("netmask", input->get("netmask"));
      answer = call("PUT", "services/" + key, &body);
      done = "Saved " + key + ".";
    } else if (name == "delete-service") {
      const auto key = row("row");
      answer = call("DELETE", "services/" + key, nullptr);
      done = "Deleted " + key + ".";
    } else if (name == "add-server") {
      const auto key = row("row");
      copy(body, {"address", "port", "weight", "forwarding"});
      if (!body.has("port")) {
        // Empty: the virtual service's port (a firewall-mark group's: the client's, 0).
        const auto p = requirePolicy(normalizedKey(key));
        body.set("port", static_cast<std::int64_t>(p.fwmark != 0 ? 0 : p.port));
      }
      answer = call("POST", "services/" + key + "/members", &body);
      done = "Added a real server to " + key + ".";
    } else if (name == "edit-server") {
      const auto server = row("row");
      const auto key = row("parent");
      copy(body, {"weight", "forwarding"});
      answer = call("PUT", "services/" + key + "/members/" + server, &body);
      done = "Saved " + server + " in " + key + ".";
    } else if (name == "delete-server") {
      const auto server = row("row");
      const auto key = row("parent");
      answer = call("DELETE", "services/" + key + "/members/" + server, nullptr);
      done = "Removed " + server + " from " + key + ".";
    } else if (name == "sync") {
      answer = call("POST", "sync", &body);
      done = "Table sent.";
    } else if (name == "zero") {
      answer = call("POST", "zero", &body);
      return stringify(messageObject("Counters are being zeroed (command " + answer->get("command").toString() + ")."));
    } else {
      throw PluginError("no action '" + name + "'", SHOAL_ERR_NOT_FOUND);
    }
    auto apply = answer->getObject("apply");
    if (apply && apply->has("pending")) done += " Not yet on the balancer: " + apply->getValue<std::string>("pending");
    else if (apply && apply->has("command")) done += " Sent to the director as command " + apply->get("command").toString() + ".";
    else if (apply && apply->has("unchanged")) done += " The balancer table did not change.";
    return stringify(messageObject(done));
  }

  static Object messageObject(const std::string& message) {
    Object o;
    o.set("message", message);
    return o;
  }

  // ---- the director ----------------------------------------------------------------

  // Creates the dataplane and its reconciler on first use. Called with dataplaneMutex_ held.
  Reconciler& director() {
    if (reconciler_) return *reconciler_;
    std::string why;
    const bool ipvs = dataplaneMode_ == "ipvs" || (dataplaneMode_ == "auto" && ipvsAvailable(&why));
    if (ipvs) {
      // Firewall-mark groups need their packets marked: nft, beside IPVS.
      dataplane_ = std::make_unique<FirewallMarkedDataplane>(openIpvsDataplane(), host().config("nft", "nft"));
      host().info("balancing with the kernel's IPVS");
    } else {
      if (dataplaneMode_ == "auto")
        host().warning("IPVS is not available (" + why + "); balancing with the userspace dataplane instead");
      UserspaceSettings settings;
      settings.threads = userspaceThreads_;
      settings.finTimeout = finTimeout_;
      dataplane_ = std::make_unique<UserspaceDataplane>(settings);
      if (dataplaneMode_ == "userspace") host().info("balancing with the userspace dataplane, as configured");
    }
    reconciler_ = std::make_unique<Reconciler>(*dataplane_, reconcileInterval_, [this](bool warning, const std::string& m) {
      if (warning) host().warning(m);
      else host().info(m);
    });
    reconciler_->start();
    return *reconciler_;
  }

  std::string applyTable(const std::vector<VirtualService>& table) {
    std::lock_guard lock(dataplaneMutex_);
    auto& reconciler = director();
    // Remembered first: a restarted director takes it up again before the manager says more.
    {
      auto txn = host().transaction();
      txn.put(kDirector, kDesiredKey, tableToJson(table));
      txn.commit();
    }
    const auto report = reconciler.apply(table);
    std::string summary = dataplane_->name() + ": " + std::to_string(table.size()) + " virtual service(s); " +
                          shoal::lvs::describe(report);
    Array::Ptr failed = new Array;
    for (const auto& f : report.failures) {
      host().warning("balancer: " + f.service + " cannot be applied: " + f.reason +
                     "; the other virtual services are applied, and it is tried again every reconcile interval");
      summary += "; " + f.service + " NOT applied: " + f.reason;
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("virtual_service", f.service);
      o->set("error", f.reason);
      failed->add(o);
    }
    Object::Ptr outcome = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    outcome->set("dataplane", dataplane_->name());
    outcome->set("services", static_cast<std::int64_t>(table.size()));
    std::size_t applied = 0;
    for (const auto& service : table)
      applied += std::none_of(report.failures.begin(), report.failures.end(),
                              [&](const ServiceFailure& f) { return f.service == service.key(); });
    outcome->set("applied", static_cast<std::int64_t>(applied));
    outcome->set("failed", failed);
    Object line;
    line.set("lvs_apply", outcome);
    return summary + "\n" + stringify(line);
  }

 public:
  // The virtual services the director in this process cannot apply now, each with the
  // reason, by dataplane key (tcp:ADDRESS:PORT, fwm:MARK:v4); nullopt when this process
  // directs nothing. For GET services, the panel and the metrics.
  std::optional<std::vector<ServiceFailure>> failingServices() {
    std::lock_guard lock(dataplaneMutex_);
    if (!reconciler_) return std::nullopt;
    return reconciler_->failures();
  }

  // What the manager knows of the director's hold on the table. `local`: the director runs
  // in this process and `failures` is its reconciler's current list. Otherwise the last
  // lvs.apply this manager enqueued tells (ABI 1.3 command_get): `settled` once a director's
  // delivery of it is done, with the failures its output reported. nullopt when neither is
  // known (no table sent since this manager started, or an older host).
  struct DirectorView {
    bool local = false;
    bool settled = false;
    std::vector<ServiceFailure> failures;
  };
  std::optional<DirectorView> directorView() {
    if (auto local = failingServices()) return DirectorView{true, true, std::move(*local)};
    const std::int64_t id = lastApplyCommand_;
    if (id <= 0 || !host().offersAbi13()) return std::nullopt;
    auto json = host().commandJson(id);
    if (!json) return std::nullopt;
    DirectorView view;
    auto deliveries = parse(*json).extract<Object::Ptr>()->getArray("deliveries");
    for (std::size_t i = 0; deliveries && i < deliveries->size(); ++i) {
      auto d = deliveries->getObject(static_cast<unsigned>(i));
      if (d->optValue<std::string>("state", "") != "done") continue;
      view.settled = true;
      const auto output = d->optValue<std::string>("output", "");
      const auto lastLine = output.substr(output.rfind('\n') == std::string::npos ? 0 : output.rfind('\n') + 1);
      try {
        auto report = parse(lastLine).extract<Object::Ptr>()->getObject("lvs_apply");
        auto failed = report ? report->getArray("failed") : nullptr;
        for (std::size_t j = 0; failed && j < failed->size(); ++j) {
          auto f = failed->getObject(static_cast<unsigned>(j));
          view.failures.push_back({f->getValue<std::string>("virtual_service"), f->getValue<std::string>("error")});
        }
      } catch (const Poco::Exception&) {
        // A director older than the report: its delivery says nothing of single services.
      }
    }
    return view;
  }

  // ABI 1.3 plugin metrics: shoal_lvs_services, and shoal_lvs_service_failed per virtual
  // service whenever the director's view is known (1: it cannot hold it; lb list says why).
  std::string metricsJson() {
    const auto policies = loadPolicies();
    const auto view = directorView();
    Array samples;
    Object::Ptr count = new Object;
    count->set("name", "services");
    count->set("type", "gauge");
    count->set("help", "Virtual services (policies) the balancer is given.");
    count->set("value", static_cast<std::int64_t>(policies.size()));
    samples.add(count);
    if (view && view->settled) {
      std::set<std::string> failed;
      for (const auto& f : view->failures) failed.insert(f.service);
      for (const auto& p : policies) {
        const auto key = desiredTable({p}, {}).front().key();
        Object::Ptr sample = new Object;
        sample->set("name", "service_failed");
        sample->set("type", "gauge");
        sample->set("help", "1 when the director cannot apply the virtual service (shoalctl lb list says why), else 0.");
        Object::Ptr labels = new Object;
        labels->set("virtual_service", key);
        sample->set("labels", labels);
        sample->set("value", failed.count(key) ? 1 : 0);
        samples.add(sample);
      }
    }
    return stringify(samples);
  }

 private:

  // Shortly after start, a director that held a table before its restart applies it again.
  void restoreLoop() {
    {
      std::unique_lock lock(stopMutex_);
      if (stopChanged_.wait_for(lock, std::chrono::milliseconds(200), [this] { return !running_; })) return;
    }
    try {
      // A manager declares its directors' series from the start, not only once a table is sent.
      if (host().offersStatsDeclare() &&
          parse(host().hostInfoJson()).extract<Object::Ptr>()->optValue<std::string>("role", "") == "manager") {
        std::lock_guard lock(managerMutex_);
        seedServing();
        declareSeries(desiredTable(loadPolicies(), serving_));
      }
    } catch (const std::exception& e) {
      host().warning(std::string("declaring the balancer's statistics series: ") + e.what());
    }
    try {
      std::lock_guard lock(dataplaneMutex_);
      if (reconciler_) return;  // lvs.apply came first
      auto txn = host().transaction();
      auto doc = txn.get(kDirector, kDesiredKey);
      if (!doc) return;
      const auto table = tableFromJson(doc->json);
      host().info("re-applying the balancer table kept from before the restart (" + std::to_string(table.size()) +
                  " virtual service(s))");
      for (const auto& f : director().apply(table).failures)
        host().warning("balancer: " + f.service + " cannot be applied: " + f.reason +
                       "; the other virtual services are applied, and it is tried again every reconcile interval");
    } catch (const std::exception& e) {
      // The reconciler holds the table and keeps trying.
      host().error(std::string("re-applying the kept balancer table: ") + e.what());
    }
  }

  // Every stats_interval the director hands its counters to the kernel (manager: RRD
  // files; a separate director forwards them to the manager).
  void sampleLoop() {
    for (;;) {
      {
        std::unique_lock lock(stopMutex_);
        if (stopChanged_.wait_for(lock, statsInterval_, [this] { return !running_; })) return;
      }
      try {
        std::optional<std::vector<VirtualServiceState>> state = localState();
        if (!state) continue;  // not a director (yet)
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        Array samples;
        auto add = [&](const std::string& series, const std::string& title, const Counters& c, Object::Ptr labels) {
          Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
          o->set("series", series);
          o->set("time", static_cast<std::int64_t>(now));
          o->set("title", title);
          o->set("labels", labels);
          o->set("conns", Poco::UInt64(c.connections));
          o->set("packets_in", Poco::UInt64(c.packetsIn));
          o->set("packets_out", Poco::UInt64(c.packetsOut));
          o->set("bytes_in", Poco::UInt64(c.bytesIn));
          o->set("bytes_out", Poco::UInt64(c.bytesOut));
          samples.add(o);
        };
        for (const auto& vs : *state) {
          const auto key = vs.spec.key();
          Object::Ptr labels = new Object;
          labels->set("virtual_service", key);
          add(serviceSeries(key), key, vs.counters, labels);
          for (const auto& r : vs.reals) {
            const auto member = Member{r.spec.address, r.spec.port, 0, std::nullopt}.key();
            Object::Ptr memberLabels = new Object;
            memberLabels->set("virtual_service", key);
            memberLabels->set("real_server", member);
            add(memberSeries(key, member), member + " in " + key, r.counters, memberLabels);
          }
        }
        if (samples.size() > 0) host().emitStats(stringify(samples));
      } catch (const std::exception& e) {
        // A sample lost is a gap in a graph; the next interval tries again.
        host().warning(std::string("sampling the balancer's counters: ") + e.what());
      }
    }
  }

  // ---- the manager -------------------------------------------------------------------

  std::vector<Policy> loadPolicies() {
    std::vector<Policy> policies;
    auto txn = host().transaction();
    for (const auto& doc : txn.list(kPolicies)) policies.push_back(parseStoredPolicy(doc.json));
    return policies;
  }

  // (address, service) → health object, from the kernel's view.
  std::map<std::pair<std::string, std::string>, Object::Ptr> healthByMember() {
    std::map<std::pair<std::string, std::string>, Object::Ptr> out;
    auto list = parse(host().healthJson()).extract<Array::Ptr>();
    for (std::size_t i = 0; list && i < list->size(); ++i) {
      auto o = list->getObject(static_cast<unsigned>(i));
      out[{o->getValue<std::string>("address"), o->getValue<std::string>("service")}] = o;
    }
    return out;
  }

  void onHealthChanged(std::string_view payload) {
    auto o = parse(payload).extract<Object::Ptr>();
    const auto address = o->getValue<std::string>("address");
    const auto service = o->getValue<std::string>("service");
    const bool serving = o->getValue<bool>("serving");
    {
      std::lock_guard lock(managerMutex_);
      seedServing();
      serving_[{address, service}] = serving;
    }
    pushTable(false);
  }

  // Called with managerMutex_ held.
  void seedServing() {
    if (seeded_) return;
    for (const auto& [key, o] : healthByMember()) serving_[key] = o->getValue<bool>("serving");
    seeded_ = true;
  }

  // ABI 1.4: tells the manager which series a director may report, the virtual services and
  // real servers of the policies (named as sampleLoop names them), so that a node cannot make
  // it record others. Called with managerMutex_ held; only when the list changes.
  template <typename Table>
  void declareSeries(const Table& desired) {
    if (!host().offersStatsDeclare()) return;
    Array names;
    for (const auto& vs : desired) {
      names.add(serviceSeries(vs.key()));
      for (const auto& real : vs.reals)
        names.add(memberSeries(vs.key(), Member{real.address, real.port, 0, std::nullopt}.key()));
    }
    const auto json = stringify(names);
    if (json == lastDeclared_) return;
    try {
      host().declareStats(json);
      lastDeclared_ = json;
    } catch (const shoal::HostError& e) {
      host().warning(std::string("declaring the balancer's statistics series: ") + e.what());
    }
  }

  // Sends the table the policies and health make to the director, unless it is what was
  // last sent. Returns {"command": id} or {"pending": "why not"}.
  Object::Ptr pushTable(bool force) {
    std::lock_guard lock(managerMutex_);
    seedServing();
    const auto desired = desiredTable(loadPolicies(), serving_);
    declareSeries(desired);
    const auto table = tableToJson(desired);
    Object::Ptr result = new Object;
    if (!force && table == lastPushed_) {
      result->set("unchanged", true);
      return result;
    }
    Object request;
    request.set("kind", "lvs.apply");
    request.set("payload", parse(table));
    request.set("key", "lvs");
    Object::Ptr target = new Object;
    target->set("role", directorRole_);
    request.set("target", target);
    try {
      auto answer = parse(host().enqueue(stringify(request))).extract<Object::Ptr>();
      lastPushed_ = table;
      lastApplyCommand_ = answer->getValue<std::int64_t>("id");
      result->set("command", answer->get("id"));
    } catch (const shoal::HostError& e) {
      result->set("pending", std::string("not sent to a director: ") + e.what() +
                                 "; give a node the role '" + directorRole_ + "', then POST /v1/plugins/lvs/sync");
    }
    return result;
  }

  // The dataplane's view, when it runs in this process (AppServer0 as director).
  std::optional<std::vector<VirtualServiceState>> localState() {
    std::lock_guard lock(dataplaneMutex_);
    if (!dataplane_) return std::nullopt;
    return dataplane_->read();
  }

  // ABI 1.3: active + inactive connections of every real server at the node's address,
  // from the dataplane when it runs in this process; otherwise explicitly unknown.
  std::string nodeConnections(std::string_view nodeJson) {
    const auto address = parse(nodeJson).extract<Object::Ptr>()->getValue<std::string>("address");
    const auto state = localState();
    Object answer;
    if (!state) {
      answer.set("connections", Poco::Dynamic::Var());
      answer.set("reason", "the balancer's dataplane does not run in this process (the director is another node)");
      return stringify(answer);
    }
    std::map<std::string, std::string> serviceOf;  // virtual service key -> balanced service
    for (const auto& p : loadPolicies())
      for (const auto& vs : desiredTable({p}, {})) serviceOf[vs.key()] = p.service;
    Array::Ptr detail = new Array;
    std::uint64_t total = 0;
    for (const auto& vs : *state) {
      for (const auto& r : vs.reals) {
        if (r.spec.address != address) continue;
        Object::Ptr d = new Object;
        d->set("service", serviceOf.count(vs.spec.key()) ? serviceOf[vs.spec.key()] : std::string());
        d->set("where", vs.spec.key());
        d->set("active", r.activeConnections);
        d->set("inactive", r.inactiveConnections);
        total += std::uint64_t{r.activeConnections} + r.inactiveConnections;
        detail->add(d);
      }
    }
    answer.set("connections", total);
    answer.set("detail", detail);
    return stringify(answer);
  }

  Object::Ptr describe(const Policy& p, const std::map<std::pair<std::string, std::string>, Object::Ptr>& health,
                       const std::optional<std::vector<VirtualServiceState>>& state,
                       const std::optional<DirectorView>& director) {
    auto o = parse(toJson(p)).extract<Object::Ptr>();
    const auto table = desiredTable({p}, serving_);
    o->set("key", p.key());
    o->set("stats_series", "lvs." + serviceSeries(table.front().key()));
    const VirtualServiceState* live = nullptr;
    if (state)
      for (const auto& s : *state)
        if (s.spec.key() == table.front().key()) live = &s;
    const ServiceFailure* failure = nullptr;
    if (director)
      for (const auto& f : director->failures)
        if (f.service == table.front().key()) failure = &f;
    // Held by a local director is seen in its state; a remote one's done delivery says so.
    const bool applied = director && (director->local ? live != nullptr : director->settled);
    o->set("status", failure ? "failed" : applied ? "applied" : director ? "pending" : "unknown");
    if (failure) o->set("error", failure->reason);
    if (live) o->set("counters", countersJson(live->counters, live->rates));
    auto members = o->getArray("members");
    for (std::size_t i = 0; i < members->size(); ++i) {
      auto m = members->getObject(static_cast<unsigned>(i));
      const auto& real = table.front().reals[i];
      m->set("effective_weight", static_cast<std::int64_t>(real.weight));
      m->set("stats_series", "lvs." + memberSeries(table.front().key(), Member{real.address, real.port, 0, std::nullopt}.key()));
      auto h = health.find({real.address, p.service});
      m->set("health", h == health.end() ? std::string("unchecked") : h->second->getValue<std::string>("state"));
      m->set("serving", h == health.end() ? true : h->second->getValue<bool>("serving"));
      if (h != health.end()) m->set("reason", h->second->get("reason"));
      if (live) {
        for (const auto& r : live->reals) {
          if (r.spec.address != real.address || r.spec.port != real.port) continue;
          m->set("active_connections", static_cast<std::int64_t>(r.activeConnections));
          m->set("inactive_connections", static_cast<std::int64_t>(r.inactiveConnections));
          m->set("counters", countersJson(r.counters, r.rates));
        }
      }
    }
    return o;
  }

  // Every policy as GET services shows it: members, health and, where the dataplane runs
  // here, counters.
  std::vector<Object::Ptr> describeAll() {
    auto health = healthByMember();
    auto state = localState();
    auto director = directorView();
    std::vector<Object::Ptr> described;
    std::lock_guard lock(managerMutex_);
    seedServing();
    for (const auto& p : loadPolicies()) described.push_back(describe(p, health, state, director));
    return described;
  }

  std::optional<Policy> findPolicy(const std::string& key) {
    auto txn = host().transaction();
    auto doc = txn.get(kPolicies, key);
    if (!doc) return std::nullopt;
    return parseStoredPolicy(doc->json);
  }
  Policy requirePolicy(const std::string& key) {
    auto p = findPolicy(key);
    if (!p) throw PluginError("no virtual service " + key, SHOAL_ERR_NOT_FOUND);
    return *p;
  }

  // IPVS forwards packets and cannot write a PROXY header; it is knowably the dataplane when
  // configured so, or when it is the one running here (AppServer0 as director).
  void refuseProxyProtocolOnIpvs(const Policy& p) {
    if (p.proxyProtocol == ProxyProtocol::None) return;
    bool ipvs = dataplaneMode_ == "ipvs";
    {
      std::lock_guard lock(dataplaneMutex_);
      ipvs = ipvs || (dataplane_ && dataplane_->name() == "ipvs");
    }
    if (ipvs)
      throw PluginError("'proxy_protocol' needs the userspace dataplane, and this balancer runs IPVS, which "
                        "forwards packets and cannot add a PROXY header; with IPVS (dr, tun or nat) the real "
                        "servers see the client's address anyway, so leave 'proxy_protocol' out",
                        SHOAL_ERR_INVALID_ARGUMENT);
  }

  // A protocol the director's dataplane lacks is refused where that is knowable here: this
  // process runs the dataplane (the manager directs, AppServer0), or its configuration says
  // `dataplane = userspace`, a setting only a director reads. With `auto` and no dataplane
  // running here, the director is another node or not chosen yet: the policy is stored, and
  // a director that cannot hold it reports it failed while it applies the others.
  void refuseUnsupportedProtocol(const Policy& p) {
    if (p.protocol != Protocol::Udp) return;
    std::string dataplane;
    {
      std::lock_guard lock(dataplaneMutex_);
      if (dataplane_) dataplane = dataplane_->name();
    }
    const bool configured = dataplane.empty() && dataplaneMode_ == "userspace";
    if (dataplane != "userspace" && !configured) return;
    throw PluginError(std::string("udp is not supported by the userspace dataplane, which balances TCP only; ") +
                          (configured ? "this manager is configured with [plugin.lvs] dataplane = userspace"
                                      : "the director in this manager runs it because the kernel has no IPVS") +
                          ". " + p.key() + " is refused: balance it on a director with kernel IPVS",
                      SHOAL_ERR_INVALID_ARGUMENT);
  }

  // Creates policy `p` (the store refuses it if the key exists) and pushes the table.
  std::string create(const Policy& p) {
    refuseUnsupportedProtocol(p);
    refuseProxyProtocolOnIpvs(p);
    try {
      auto txn = host().transaction();
      txn.put(kPolicies, p.key(), toJson(p), 0);
      txn.commit();
    } catch (const shoal::HostError& e) {
      if (e.status() != SHOAL_ERR_CONFLICT) throw;
      throw PluginError("virtual service " + p.key() + " already exists; edit it instead", SHOAL_ERR_CONFLICT);
    }
    return stored(p);
  }

  std::string stored(const Policy& p) {
    Object answer;
    answer.set("service", parse(toJson(p)));
    answer.set("apply", pushTable(false));
    return stringify(answer);
  }

  // One read-modify-write of the stored policy `key`, in one store transaction: `edit`
  // changes the policy read, or returns false to delete it, and the result is written
  // only while the document still has the revision that was read (expected revision). An
  // edit that a concurrent one overtook is done again on what that one wrote, up to
  // kEditAttempts times, then answered 409. A delete needs no revision (the whole policy
  // goes, whatever it holds) but reads and removes in the same transaction.
  static constexpr int kEditAttempts = 8;
  template <typename Edit>
  std::optional<Policy> modifyPolicy(const std::string& key, Edit edit) {
    for (int attempt = 1;; ++attempt) {
      try {
        auto txn = host().transaction();
        auto doc = txn.get(kPolicies, key);
        if (!doc) throw PluginError("no virtual service " + key, SHOAL_ERR_NOT_FOUND);
        Policy p = parseStoredPolicy(doc->json);
        const bool keep = edit(p);
        if (keep) refuseProxyProtocolOnIpvs(p);
        if (keep)
          txn.put(kPolicies, key, toJson(p), doc->revision);
        else
          txn.remove(kPolicies, key);
        txn.commit();
        if (!keep) return std::nullopt;
        return p;
      } catch (const shoal::HostError& e) {
        if (e.status() != SHOAL_ERR_CONFLICT) throw;
        if (attempt >= kEditAttempts)
          throw PluginError("virtual service " + key + " kept changing under " + std::to_string(attempt) +
                                " concurrent edits; this one was not applied, try it again (" + e.what() + ")",
                            SHOAL_ERR_CONFLICT);
        // Spread the retries of edits that collided, so they do not collide again.
        std::this_thread::sleep_for(std::chrono::milliseconds(attempt * (1 + std::rand() % 5)));
      }
    }
  }

  std::string serve(const shoal::ApiRequest& r) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in{std::string(r.path)};
    while (std::getline(in, part, '/'))
      if (!part.empty()) parts.push_back(part);
    const std::string method(r.method);
    auto bad = [&]() -> std::string {
      throw PluginError("no such lvs endpoint: " + method + " /v1/plugins/lvs/" + std::string(r.path) +
                            " (see docs/api.md)",
                        SHOAL_ERR_NOT_FOUND);
    };

    if (parts.size() == 1 && parts[0] == "schema" && method == "GET") return schemaJson();
    if (parts.empty() || parts[0] == "services") {
      if (parts.size() <= 1) {
        if (method == "GET") {
          Array::Ptr list = new Array;
          for (const auto& d : describeAll()) list->add(d);
          Object answer;
          answer.set("services", list);
          {
            std::lock_guard dl(dataplaneMutex_);
            answer.set("dataplane", dataplane_ ? Poco::Dynamic::Var(dataplane_->name()) : Poco::Dynamic::Var());
          }
          return stringify(answer);
        }
        if (method == "POST") return create(parsePolicy(std::string(r.body)));
        return bad();
      }
      const auto key = normalizedKey(parts[1]);
      const std::string body(r.body);
      if (parts.size() == 2) {
        if (method == "GET") {
          auto p = requirePolicy(key);
          auto health = healthByMember();
          auto state = localState();
          auto director = directorView();
          std::lock_guard lock(managerMutex_);
          seedServing();
          return stringify(describe(p, health, state, director));
        }
        if (method == "PUT") return stored(*modifyPolicy(key, [&](Policy& p) {
          p = editPolicy(p, body);
          return true;
        }));
        if (method == "DELETE") {
          modifyPolicy(key, [](Policy&) { return false; });
          Object answer;
          answer.set("deleted", key);
          answer.set("apply", pushTable(false));
          return stringify(answer);
        }
        return bad();
      }
      if (parts[2] != "members" || parts.size() > 4) return bad();
      if (parts.size() == 3) {
        if (method != "POST") return bad();
        return stored(*modifyPolicy(key, [&](Policy& p) {
          // Checked alone first, so a duplicate is reported as such rather than as a list error.
          Policy alone = p;
          alone.members.clear();
          auto m = parseMember(body, alone);
          for (const auto& existing : p.members)
            if (existing.key() == m.key())
              throw PluginError("real server " + m.key() + " is already in " + key + "; edit it instead", SHOAL_ERR_CONFLICT);
          p.members.push_back(m);
          validatePolicy(p);
          return true;
        }));
      }
      const auto memberKey = parts[3];
      if (method != "DELETE" && method != "PUT") {
        requirePolicy(key);  // 404 for a missing policy before 404 for the endpoint
        return bad();
      }
      return stored(*modifyPolicy(key, [&](Policy& p) {
        auto it = std::find_if(p.members.begin(), p.members.end(), [&](const Member& m) { return m.key() == memberKey; });
        if (it == p.members.end()) throw PluginError("no real server " + memberKey + " in " + key, SHOAL_ERR_NOT_FOUND);
        if (method == "DELETE") {
          p.members.erase(it);
          return true;
        }
        // An edit names only what changes; the address and port stay.
        auto edit = parse(body).extract<Object::Ptr>();
        if (!edit) throw PluginError("the edit must be a JSON object", SHOAL_ERR_INVALID_ARGUMENT);
        Object::Ptr merged = parse(toJson(*it, p)).extract<Object::Ptr>();
        for (const auto& [name, value] : *edit) {
          if (name == "address" || name == "port")
            throw PluginError("'" + name + "' identifies the real server; delete it and add another", SHOAL_ERR_INVALID_ARGUMENT);
          merged->set(name, value);
        }
        Policy without = p;
        without.members.erase(without.members.begin() + (it - p.members.begin()));
        *it = parseMember(stringify(merged), without);
        return true;
      }));
    }
    if (parts.size() == 1 && parts[0] == "sync" && method == "POST") {
      Object answer;
      answer.set("apply", pushTable(true));
      return stringify(answer);
    }
    if (parts.size() == 1 && parts[0] == "zero" && method == "POST") {
      Object request;
      request.set("kind", "lvs.zero");
      request.set("payload", Object::Ptr(new Object));
      request.set("key", "lvs");
      Object::Ptr target = new Object;
      target->set("role", directorRole_);
      request.set("target", target);
      auto answer = parse(host().enqueue(stringify(request))).extract<Object::Ptr>();
      Object out;
      out.set("command", answer->get("id"));
      return stringify(out);
    }
    return bad();
  }

  std::string dataplaneMode_;
  std::chrono::milliseconds reconcileInterval_{5000};
  std::uint32_t userspaceThreads_ = 2;
  std::chrono::milliseconds statsInterval_{10000};
  std::chrono::seconds finTimeout_{120};
  std::string directorRole_;

  std::mutex dataplaneMutex_;
  std::unique_ptr<Dataplane> dataplane_;
  std::unique_ptr<Reconciler> reconciler_;

  std::mutex managerMutex_;
  ServingMap serving_;
  bool seeded_ = false;
  std::string lastPushed_;
  std::string lastDeclared_;  // the series list last declared (declareSeries)
  // The last lvs.apply this manager enqueued: a director in another process reports what it
  // could not apply in that command's delivery output.
  std::atomic<std::int64_t> lastApplyCommand_{0};

  std::mutex stopMutex_;
  std::condition_variable stopChanged_;
  bool running_ = false;
  std::thread restorer_;
  std::thread sampler_;
};

}  // namespace

SHOAL_PLUGIN(Lvs, "lvs", "0.1.0", "Load balancer: virtual services on IPVS or a userspace dataplane, drained by health")
