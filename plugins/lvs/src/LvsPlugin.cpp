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

#include <atomic>
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

  // Declarative, like every panel: the panel's own code renders it and escapes every value.
  void registerPanel(shoal::Registrar& reg) {
    static const char* definition = R"json({
      "title": "Balancer",
      "sections": [
        {"id": "services", "type": "table", "title": "Virtual services", "columns": [
          {"key": "key", "label": "Virtual service"}, {"key": "service", "label": "Balances"},
          {"key": "scheduler", "label": "Scheduler"}, {"key": "persistence", "label": "Persistence (s)"},
          {"key": "forwarding", "label": "Forwarding"}, {"key": "members", "label": "Real servers"},
          {"key": "connections", "label": "Connections"}]},
        {"id": "members", "type": "table", "title": "Real servers", "columns": [
          {"key": "virtual_service", "label": "Virtual service"}, {"key": "real_server", "label": "Real server"},
          {"key": "weight", "label": "Weight"}, {"key": "effective_weight", "label": "In force"},
          {"key": "health", "label": "Health"}, {"key": "active_connections", "label": "Active"},
          {"key": "connections", "label": "Connections"}]},
        {"id": "traffic", "type": "graph", "title": "Connections per virtual service", "metric": "lvs.service"},
        {"id": "sync", "type": "action", "title": "Director", "action": "sync",
         "label": "Send the table to the director again",
         "confirm": "Send the whole balancer table to the director now?"}]})json";
    reg.panel(
        "balancer", definition,
        [this](std::string_view section, std::string_view) { return checked([&] { return panelData(section); }); },
        [this](std::string_view action, std::string_view) -> std::string {
          if (action != "sync") throw PluginError("no action '" + std::string(action) + "'", SHOAL_ERR_NOT_FOUND);
          auto apply = pushTable(true);
          Object answer;
          answer.set("message", apply->has("command")
                                    ? "the table went to the director as command " + apply->get("command").toString()
                                    : apply->optValue<std::string>("pending", "nothing to send"));
          return stringify(answer);
        });
  }

  std::string panelData(std::string_view section) {
    if (section != "services" && section != "members" && section != "traffic")
      throw PluginError("no section '" + std::string(section) + "'", SHOAL_ERR_NOT_FOUND);
    const auto described = describeAll();
    Array::Ptr rows = new Array;
    Array::Ptr graphs = new Array;
    for (const auto& d : described) {
      const auto key = d->getValue<std::string>("key");
      auto members = d->getArray("members");
      if (section == "services") {
        Object::Ptr row = new Object;
        for (const char* field : {"key", "service", "scheduler", "persistence", "forwarding"}) row->set(field, d->get(field));
        row->set("members", static_cast<std::int64_t>(members ? members->size() : 0));
        if (auto counters = d->getObject("counters")) row->set("connections", counters->get("connections"));
        rows->add(row);
      } else if (section == "members") {
        for (std::size_t i = 0; members && i < members->size(); ++i) {
          auto m = members->getObject(static_cast<unsigned>(i));
          Object::Ptr row = new Object;
          row->set("virtual_service", key);
          row->set("real_server", Member{m->getValue<std::string>("address"),
                                         static_cast<std::uint16_t>(m->getValue<int>("port")), 0, std::nullopt}
                                      .key());
          for (const char* field : {"weight", "effective_weight", "health", "active_connections"})
            if (m->has(field)) row->set(field, m->get(field));
          if (auto counters = m->getObject("counters")) row->set("connections", counters->get("connections"));
          rows->add(row);
        }
      } else {
        Object::Ptr g = new Object;
        g->set("series", d->get("stats_series"));
        g->set("title", key);
        graphs->add(g);
      }
    }
    Object answer;
    if (section == "traffic") answer.set("graphs", graphs);
    else answer.set("rows", rows);
    return stringify(answer);
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
    return dataplane_->name() + ": " + std::to_string(table.size()) + " virtual service(s); " + shoal::lvs::describe(report);
  }

  // Shortly after start, a director that held a table before its restart applies it again.
  void restoreLoop() {
    {
      std::unique_lock lock(stopMutex_);
      if (stopChanged_.wait_for(lock, std::chrono::milliseconds(200), [this] { return !running_; })) return;
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
      director().apply(table);
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
    for (const auto& doc : txn.list(kPolicies)) policies.push_back(parsePolicy(doc.json));
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

  // Sends the table the policies and health make to the director, unless it is what was
  // last sent. Returns {"command": id} or {"pending": "why not"}.
  Object::Ptr pushTable(bool force) {
    std::lock_guard lock(managerMutex_);
    seedServing();
    const auto table = tableToJson(desiredTable(loadPolicies(), serving_));
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
                       const std::optional<std::vector<VirtualServiceState>>& state) {
    auto o = parse(toJson(p)).extract<Object::Ptr>();
    const auto table = desiredTable({p}, serving_);
    o->set("key", p.key());
    o->set("stats_series", "lvs." + serviceSeries(table.front().key()));
    const VirtualServiceState* live = nullptr;
    if (state)
      for (const auto& s : *state)
        if (s.spec.key() == table.front().key()) live = &s;
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
    std::vector<Object::Ptr> described;
    std::lock_guard lock(managerMutex_);
    seedServing();
    for (const auto& p : loadPolicies()) described.push_back(describe(p, health, state));
    return described;
  }

  std::optional<Policy> findPolicy(const std::string& key) {
    auto txn = host().transaction();
    auto doc = txn.get(kPolicies, key);
    if (!doc) return std::nullopt;
    return parsePolicy(doc->json);
  }
  Policy requirePolicy(const std::string& key) {
    auto p = findPolicy(key);
    if (!p) throw PluginError("no virtual service " + key, SHOAL_ERR_NOT_FOUND);
    return *p;
  }

  // Stores `p` (expected revision semantics: create = must not exist) and pushes the table.
  std::string store(const Policy& p, bool create, const std::string& previousKey = {}) {
    {
      std::lock_guard lock(managerMutex_);
      auto txn = host().transaction();
      if (create && txn.get(kPolicies, p.key()))
        throw PluginError("virtual service " + p.key() + " already exists; edit it instead", SHOAL_ERR_CONFLICT);
      if (!previousKey.empty() && previousKey != p.key()) txn.remove(kPolicies, previousKey);
      txn.put(kPolicies, p.key(), toJson(p));
      txn.commit();
    }
    Object answer;
    answer.set("service", parse(toJson(p)));
    answer.set("apply", pushTable(false));
    return stringify(answer);
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
        if (method == "POST") return store(parsePolicy(std::string(r.body)), true);
        return bad();
      }
      const auto key = normalizedKey(parts[1]);
      if (parts.size() == 2) {
        if (method == "GET") {
          auto p = requirePolicy(key);
          auto health = healthByMember();
          auto state = localState();
          std::lock_guard lock(managerMutex_);
          seedServing();
          return stringify(describe(p, health, state));
        }
        if (method == "PUT") return store(editPolicy(requirePolicy(key), std::string(r.body)), false);
        if (method == "DELETE") {
          auto p = requirePolicy(key);
          {
            std::lock_guard lock(managerMutex_);
            auto txn = host().transaction();
            txn.remove(kPolicies, key);
            txn.commit();
          }
          Object answer;
          answer.set("deleted", key);
          answer.set("apply", pushTable(false));
          return stringify(answer);
        }
        return bad();
      }
      if (parts[2] != "members" || parts.size() > 4) return bad();
      auto p = requirePolicy(key);
      if (parts.size() == 3) {
        if (method != "POST") return bad();
        // Checked alone first, so a duplicate is reported as such rather than as a list error.
        Policy alone = p;
        alone.members.clear();
        auto m = parseMember(std::string(r.body), alone);
        for (const auto& existing : p.members)
          if (existing.key() == m.key())
            throw PluginError("real server " + m.key() + " is already in " + key + "; edit it instead", SHOAL_ERR_CONFLICT);
        p.members.push_back(m);
        validatePolicy(p);
        return store(p, false);
      }
      const auto memberKey = parts[3];
      auto it = std::find_if(p.members.begin(), p.members.end(), [&](const Member& m) { return m.key() == memberKey; });
      if (it == p.members.end()) throw PluginError("no real server " + memberKey + " in " + key, SHOAL_ERR_NOT_FOUND);
      if (method == "DELETE") {
        p.members.erase(it);
        return store(p, false);
      }
      if (method == "PUT") {
        // An edit names only what changes; the address and port stay.
        auto edit = parse(r.body).extract<Object::Ptr>();
        if (!edit) throw PluginError("the edit must be a JSON object", SHOAL_ERR_INVALID_ARGUMENT);
        Object::Ptr merged = parse(toJson(*it, p)).extract<Object::Ptr>();
        for (const auto& [name, value] : *edit) {
          if (name == "address" || name == "port")
            throw PluginError("'" + name + "' identifies the real server; delete it and add another", SHOAL_ERR_INVALID_ARGUMENT);
          merged->set(name, value);
        }
        Policy without = p;
        without.members.erase(without.members.begin() + (it - p.members.begin()));
        auto m = parseMember(stringify(merged), without);
        *it = m;
        return store(p, false);
      }
      return bad();
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
  std::string directorRole_;

  std::mutex dataplaneMutex_;
  std::unique_ptr<Dataplane> dataplane_;
  std::unique_ptr<Reconciler> reconciler_;

  std::mutex managerMutex_;
  ServingMap serving_;
  bool seeded_ = false;
  std::string lastPushed_;

  std::mutex stopMutex_;
  std::condition_variable stopChanged_;
  bool running_ = false;
  std::thread restorer_;
  std::thread sampler_;
};

}  // namespace

SHOAL_PLUGIN(Lvs, "lvs", "0.1.0", "Load balancer: virtual services on IPVS or a userspace dataplane, drained by health")
