#pragma once
// The manager's view of service health: which service is probed on which node, the health
// engine that probes them, maintenance (a service taken out on purpose, as a rolling
// restart does), and the `health.changed` events plugins hook.
//
// A node is probed for service S when one of its roles is S and a plugin registered a
// probe for S (the http plugin's "http" and "https", smtp's "smtp", ...). The probe
// connects to the node's address (what it reported when it joined).
//
// A service on a node is *serving* unless its probe says unhealthy, it is in maintenance,
// or the whole node is draining. `health.changed` is published whenever state,
// maintenance or serving changes; the lvs plugin turns serving=false into weight 0.
//
// Delivery: every state change the engine reports is published exactly once, in the order
// the engine reported it for that (node, service), with the state of that change (not
// whatever the engine says by the time it is published). The engine's thread only queues
// the change; one worker publishes the queue in order and is woken by a condition variable
// that nothing else waits on. Maintenance and draining changes are published on the
// caller's thread, under the same lock as the worker's publications, and use the last
// state the worker published, so an event never overtakes a change still queued.
#include <Poco/JSON/Array.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "health/HealthEngine.hpp"

namespace shoal::cluster {
class NodeRegistry;
}
namespace shoal::host {
class Registries;
class EventBus;
}  // namespace shoal::host

namespace shoal::manager {

struct ServiceHealth {
  health::HealthStatus status;
  bool maintenance = false;
  bool nodeDraining = false;
  bool serving() const {
    return status.state != health::HealthState::Unhealthy && !maintenance && !nodeDraining;
  }
};

// Error(InvalidArgument) naming `field` unless `name` is a service name as plugins register
// probes under it: [a-z][a-z0-9_-]{0,31}. The message shows the name with control bytes escaped.
void checkServiceName(const std::string& name, const std::string& field);

class HealthService {
 public:
  HealthService(cluster::NodeRegistry& nodes, const host::Registries* registries, host::EventBus* events,
                health::HealthDefaults defaults = {});
  ~HealthService();  // stop()

  void start();
  void stop();

  // Re-reads nodes and probes now (also done every 2 s). Calls are serialised, so a slower
  // call can never install an older view of which nodes are draining.
  void refreshTargets();

  // Takes (node, service) out of rotation, or puts it back. Publishes health.changed at
  // once, on this thread, and returns the ids of the commands hooks enqueued for it.
  // Error(InvalidArgument) for a name checkServiceName refuses.
  std::vector<std::int64_t> setMaintenance(std::int64_t nodeId, const std::string& service, bool on);

  std::vector<ServiceHealth> list() const;
  std::optional<ServiceHealth> find(std::int64_t nodeId, const std::string& service) const;
  // Whether some plugin registered a probe for `service`.
  bool isProbed(const std::string& service) const;

  // The JSON array of callback_health_list / GET /v1/health/services.
  Poco::JSON::Array::Ptr toJson() const;

 private:
  using Key = std::pair<std::string, std::string>;  // node id text, service
  struct Published {
    health::HealthState state = health::HealthState::Unknown;
    bool maintenance = false, serving = true;
  };
  ServiceHealth view(const health::HealthStatus& status) const;
  // Publishes health.changed for `key` if what subscribers last saw differs; returns the
  // commands the hooks enqueued. `change` is the engine's change being published (the
  // worker); without it (maintenance, draining) the state last published is used.
  std::vector<std::int64_t> publishIfChanged(const Key& key, const health::HealthStatus* change = nullptr);
  void runWorker();

  cluster::NodeRegistry& nodes_;
  const host::Registries* registries_;
  host::EventBus* events_;
  health::HealthEngine engine_;

  mutable std::mutex mutex_;
  std::set<Key> maintenance_;
  std::set<std::string> drainingNodes_;
  std::map<Key, Published> published_;

  // One publication at a time, so `published_` and `engineState_` follow event order.
  std::mutex publishMutex_;
  // [publishMutex_] the engine status of the last change the worker published, per key.
  std::map<Key, health::HealthStatus> engineState_;
  std::mutex refreshMutex_;  // one refreshTargets() at a time

  std::mutex queueMutex_;
  std::condition_variable workQueued_;   // the worker's alone: a change was queued, or stop
  std::condition_variable stopRequested_;  // the refresher's alone
  std::deque<health::HealthChange> pending_;  // changes the engine reported, published by `worker_`
  bool running_ = false;      // the refresher runs
  bool workerStop_ = false;   // set once the engine has stopped: the worker drains and ends
  std::thread worker_, refresher_;
};

}  // namespace shoal::manager
