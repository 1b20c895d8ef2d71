#pragma once
// Rolling events: restart a service on nodes a few at a time, never more than `batch`
// (max-unavailable) out at once, stopping at the first failure with the remaining nodes
// left pending and visible. Rollouts are kept in the store (the kernel's own document
// namespace "shoal.rollouts"), so a manager restart resumes them.
//
// A restart stops a daemon, and with it every service the daemon serves: the services whose
// probes name the same daemon (ABI 1.3 `daemon`: http and https share nginx) and that the
// node has as roles. These are the node's "services" below, the restarted one first.
//
// Drain first: when the service is health-probed, each node goes
//   pending -> draining   (maintenance on for each of its services: health.changed tells
//                          the balancer to drain them; the commands hooks enqueued for that
//                          are awaited)
//           -> running    (the restart command is delivered and applied)
//           -> recovering (waits until every one of them has had `rise` successful probes
//                          since the restart)
//           -> restoring  (maintenance off for all of them; the balancer's commands are
//                          awaited)
//           -> done
// Without a probe for the service (or with drain off) a node goes pending -> running -> done.
//
// A rollout document:
//   {"id": 3, "service": "http", "kind": "http.restart", "batch": 1, "drain": true,
//    "health_timeout_seconds": 120, "state": "running" | "done" | "failed", "message": "...",
//    "nodes": [{"id": 1, "hostname": "web1", "state": "...", "services": ["http", "https"],
//               "command_id": 17, "wait_commands": [..], "restarted_at_ms": ..,
//               "checks_at_restart": {"http": 12, "https": 12}}, ...],
//    "created_at_ms": ...}
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace shoal::store {
class Store;
class DocumentStore;
}  // namespace shoal::store
namespace shoal::cluster {
class CommandQueue;
class NodeRegistry;
}  // namespace shoal::cluster
namespace shoal::host {
class Registries;
}

namespace shoal::manager {

class DeliveryNotifier;
class HealthService;

struct RolloutOptions {
  int batch = 1;              // at most this many nodes out of service at once (1..100)
  bool drain = true;          // drain in the balancer before restarting (when probed)
  int healthTimeoutSeconds = 120;  // how long a restarted node may take to be healthy (5..3600)
};

class RolloutRunner {
 public:
  // `registries` (may be null: no plugin shares a daemon) says which services share one.
  RolloutRunner(store::Store& store, cluster::CommandQueue& queue, cluster::NodeRegistry& nodes,
                DeliveryNotifier& notifier, HealthService& health, const host::Registries* registries);
  ~RolloutRunner();  // stop()

  // Creates a rollout of command `kind` (payload {"service": service}) over every online or
  // offline node having `role` (empty = every node).
  // Error(InvalidArgument) when no node matches or an option is out of range.
  Poco::JSON::Object::Ptr create(const std::string& service, const std::string& kind,
                                 const std::string& role, const RolloutOptions& options);
  Poco::JSON::Object::Ptr find(std::int64_t id);
  // The newest `limit` rollouts, newest first.
  Poco::JSON::Array::Ptr list(std::size_t limit);

  void start();
  void stop();

  // Advances every running rollout by what its deliveries report. Called by the runner's
  // thread; public so tests can drive it step by step.
  void advance();

 private:
  bool commandsApplied(const Poco::JSON::Array::Ptr& ids, std::string& failure);

  store::Store& store_;
  std::unique_ptr<store::DocumentStore> documents_;
  cluster::CommandQueue& queue_;
  cluster::NodeRegistry& nodes_;
  DeliveryNotifier& notifier_;
  HealthService& health_;
  const host::Registries* registries_;
  std::mutex mutex_;  // one advance or create at a time
  std::atomic<bool> running_{false};
  std::thread worker_;
};

}  // namespace shoal::manager
