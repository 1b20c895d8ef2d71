#pragma once
// Rolling events: run a command on nodes one batch at a time, waiting for every delivery of
// a batch to succeed before the next, and stopping at the first failure with the remaining
// nodes left pending and visible. Rollouts are kept in the store (the kernel's own document
// namespace "shoal.rollouts"), so a manager restart resumes them.
//
// A rollout document:
//   {"id": 3, "service": "http", "kind": "http.restart", "batch": 1,
//    "state": "running" | "done" | "failed", "message": "...",
//    "nodes": [{"id": 1, "hostname": "web1", "state": "pending" | "running" | "done" | "failed",
//               "command_id": 17}, ...], "created_at_ms": ...}
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

namespace shoal::manager {

class DeliveryNotifier;

class RolloutRunner {
 public:
  RolloutRunner(store::Store& store, cluster::CommandQueue& queue, cluster::NodeRegistry& nodes,
                DeliveryNotifier& notifier);
  ~RolloutRunner();  // stop()

  // Creates a rollout of command `kind` (payload {"service": service}) over every online or
  // offline node having `role` (empty = every node), `batch` nodes at a time (1..100).
  // Error(InvalidArgument) when no node matches or batch is out of range.
  Poco::JSON::Object::Ptr create(const std::string& service, const std::string& kind,
                                 const std::string& role, int batch);
  Poco::JSON::Object::Ptr find(std::int64_t id);
  // The newest `limit` rollouts, newest first.
  Poco::JSON::Array::Ptr list(std::size_t limit);

  void start();
  void stop();

  // Advances every running rollout by what its deliveries report. Called by the runner's
  // thread; public so tests can drive it step by step.
  void advance();

 private:
  store::Store& store_;
  std::unique_ptr<store::DocumentStore> documents_;
  cluster::CommandQueue& queue_;
  cluster::NodeRegistry& nodes_;
  DeliveryNotifier& notifier_;
  std::mutex mutex_;  // one advance or create at a time
  std::atomic<bool> running_{false};
  std::thread worker_;
};

}  // namespace shoal::manager
