#include "manager/HealthService.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>

#include <algorithm>
#include <regex>
#include <sstream>

#include "cluster/NodeRegistry.hpp"
#include "common/Error.hpp"
#include "common/Text.hpp"
#include "host/EventBus.hpp"
#include "host/Registries.hpp"

namespace shoal::manager {
namespace {

Poco::JSON::Object::Ptr healthJson(const ServiceHealth& h) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("node_id", h.status.nodeId);
  o->set("address", h.status.address);
  o->set("service", h.status.service);
  o->set("port", static_cast<int>(h.status.port));
  o->set("state", std::string(health::healthStateName(h.status.state)));
  o->set("maintenance", h.maintenance);
  o->set("node_draining", h.nodeDraining);
  o->set("serving", h.serving());
  o->set("reason", h.status.lastError);
  o->set("checks", h.status.checks);
  o->set("consecutive_successes", h.status.consecutiveSuccesses);
  o->set("consecutive_failures", h.status.consecutiveFailures);
  o->set("last_check_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                              h.status.lastCheck.time_since_epoch()).count());
  o->set("last_change_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                               h.status.lastChange.time_since_epoch()).count());
  return o;
}

std::string text(const Poco::JSON::Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

}  // namespace

HealthService::HealthService(cluster::NodeRegistry& nodes, const host::Registries* registries,
                             host::EventBus* events, health::HealthDefaults defaults)
    : nodes_(nodes), registries_(registries), events_(events), engine_(defaults) {
  engine_.subscribe([this](const health::HealthChange& change) {
    auto& log = Poco::Logger::get("shoald.health");
    const auto& s = change.status;
    std::string line = "service " + s.service + " on node " + s.nodeId + " (" + s.address + ":" +
                       std::to_string(s.port) + ") is " + health::healthStateName(s.state) + ", was " +
                       health::healthStateName(change.previous);
    if (s.state == health::HealthState::Unhealthy) {
      log.warning(line + ": " + s.lastError);
    } else {
      log.information(line);
    }
    {
      std::lock_guard lock(queueMutex_);
      pending_.push_back(change);
    }
    workQueued_.notify_one();
  });
}

HealthService::~HealthService() { stop(); }

void HealthService::start() {
  {
    std::lock_guard lock(queueMutex_);
    if (running_) return;
    running_ = true;
    workerStop_ = false;
  }
  try {
    refreshTargets();
  } catch (const std::exception& e) {
    Poco::Logger::get("shoald.health").error(std::string("reading probe targets: ") + e.what());
  }
  engine_.start();
  worker_ = std::thread([this] { runWorker(); });
  refresher_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(queueMutex_);
        if (stopRequested_.wait_for(lock, std::chrono::seconds(2), [this] { return !running_; })) return;
      }
      try {
        refreshTargets();
      } catch (const std::exception& e) {
        Poco::Logger::get("shoald.health").error(std::string("reading probe targets: ") + e.what());
      }
    }
  });
}

void HealthService::runWorker() {
  for (;;) {
    std::deque<health::HealthChange> batch;
    {
      std::unique_lock lock(queueMutex_);
      workQueued_.wait(lock, [this] { return workerStop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and nothing is left to publish
      batch.swap(pending_);
    }
    for (const auto& change : batch) {
      try {
        publishIfChanged({change.status.nodeId, change.status.service}, &change.status);
      } catch (const std::exception& e) {
        Poco::Logger::get("shoald.health").error(std::string("publishing health.changed: ") + e.what());
      }
    }
  }
}

void HealthService::stop() {
  {
    std::lock_guard lock(queueMutex_);
    if (!running_) return;
    running_ = false;
  }
  stopRequested_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  // After this no change is reported; the worker publishes what is queued, then ends.
  engine_.stop();
  {
    std::lock_guard lock(queueMutex_);
    workerStop_ = true;
  }
  workQueued_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void HealthService::refreshTargets() {
  if (registries_ == nullptr) return;
  std::lock_guard refreshing(refreshMutex_);
  const auto probes = registries_->probes();
  std::vector<health::HealthTarget> targets;
  std::set<std::string> draining;
  for (const auto& node : nodes_.list(false)) {
    if (node.state == cluster::NodeState::Draining) draining.insert(std::to_string(node.id));
    for (const auto& probe : probes) {
      if (std::find(node.roles.begin(), node.roles.end(), probe.service) == node.roles.end()) continue;
      health::HealthTarget target;
      target.nodeId = std::to_string(node.id);
      target.address = node.address;
      target.probe = probe;
      targets.push_back(std::move(target));
    }
  }
  engine_.setTargets(std::move(targets));
  std::set<std::string> changedNodes;
  {
    std::lock_guard lock(mutex_);
    std::set_symmetric_difference(draining.begin(), draining.end(), drainingNodes_.begin(), drainingNodes_.end(),
                                  std::inserter(changedNodes, changedNodes.end()));
    drainingNodes_ = std::move(draining);
  }
  if (changedNodes.empty()) return;
  for (const auto& status : engine_.snapshot())
    if (changedNodes.count(status.nodeId)) publishIfChanged({status.nodeId, status.service});
}

void checkServiceName(const std::string& name, const std::string& field) {
  static const std::regex pattern("[a-z][a-z0-9_-]{0,31}");
  if (!std::regex_match(name, pattern))
    throw Error(ErrorCode::InvalidArgument,
                "field '" + field + "': service '" + shownValue(name) + "' must match [a-z][a-z0-9_-]{0,31}");
}

std::vector<std::int64_t> HealthService::setMaintenance(std::int64_t nodeId, const std::string& service, bool on) {
  // The name goes into the log and to every plugin's hook: only a real service name does.
  checkServiceName(service, "service");
  Key key{std::to_string(nodeId), service};
  {
    std::lock_guard lock(mutex_);
    if (on) {
      maintenance_.insert(key);
    } else {
      maintenance_.erase(key);
    }
  }
  Poco::Logger::get("shoald.health")
      .information("service " + service + " on node " + key.first + (on ? " enters" : " leaves") + " maintenance");
  return publishIfChanged(key);
}

ServiceHealth HealthService::view(const health::HealthStatus& status) const {
  ServiceHealth h;
  h.status = status;
  std::lock_guard lock(mutex_);
  h.maintenance = maintenance_.count({status.nodeId, status.service}) > 0;
  h.nodeDraining = drainingNodes_.count(status.nodeId) > 0;
  return h;
}

std::vector<std::int64_t> HealthService::publishIfChanged(const Key& key, const health::HealthStatus* change) {
  std::lock_guard publishing(publishMutex_);
  std::optional<health::HealthStatus> status;
  if (change != nullptr) {
    status = engineState_[key] = *change;
  } else if (auto it = engineState_.find(key); it != engineState_.end()) {
    status = it->second;
  } else if ((status = engine_.status(key.first, key.second))) {
    // Probed, but its first result is not published yet: that change will say the state.
    status->state = health::HealthState::Unknown;
  }
  if (!status) {
    // Not probed (no role, no probe): maintenance alone decides whether it serves.
    status = health::HealthStatus{};
    status->nodeId = key.first;
    status->service = key.second;
    if (auto node = nodes_.find(std::stoll(key.first))) status->address = node->address;
  }
  const auto current = view(*status);
  Published before;
  {
    std::lock_guard lock(mutex_);
    auto it = published_.find(key);
    if (it != published_.end()) before = it->second;
    Published now{current.status.state, current.maintenance, current.serving()};
    if (it != published_.end() && now.state == before.state && now.maintenance == before.maintenance &&
        now.serving == before.serving)
      return {};
    published_[key] = now;
  }
  if (events_ == nullptr) return {};
  auto payload = healthJson(current);
  payload->set("previous", std::string(health::healthStateName(before.state)));
  return events_->dispatch("health.changed", text(payload));
}

std::vector<ServiceHealth> HealthService::list() const {
  std::vector<ServiceHealth> out;
  for (const auto& status : engine_.snapshot()) out.push_back(view(status));
  std::sort(out.begin(), out.end(), [](const ServiceHealth& a, const ServiceHealth& b) {
    return std::make_pair(std::stoll(a.status.nodeId), a.status.service) <
           std::make_pair(std::stoll(b.status.nodeId), b.status.service);
  });
  return out;
}

std::optional<ServiceHealth> HealthService::find(std::int64_t nodeId, const std::string& service) const {
  auto status = engine_.status(std::to_string(nodeId), service);
  if (!status) return std::nullopt;
  return view(*status);
}

bool HealthService::isProbed(const std::string& service) const {
  if (registries_ == nullptr) return false;
  for (const auto& probe : registries_->probes())
    if (probe.service == service) return true;
  return false;
}

Poco::JSON::Array::Ptr HealthService::toJson() const {
  Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
  for (const auto& h : list()) a->add(healthJson(h));
  return a;
}

}  // namespace shoal::manager
