#pragma once
// The node side of the cluster: enrols with a join token (pinning the manager's CA in the
// TLS handshake), then pulls its deliveries by long-poll, applies each through the queue
// handler a plugin registered, journals the result and reports it. Results the manager has
// not taken (kept in the journal across restarts) are reported before `started` and before
// each pull; a result the journal cannot record (a full disk) is reported as that failure and
// held in memory, so a redelivery never runs the handler a second time.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/Journal.hpp"
#include "api/NodeQueueMessages.hpp"
#include "host/StatsSample.hpp"

namespace Poco::JSON {
class Object;
}

namespace shoal::host {
class Registries;
}

namespace shoal::agent {

class ManagerClient;
class StatsForwarder;

struct NodeIdentity {
  std::int64_t nodeId = 0;
  std::string credential;
  std::string manager;  // "host:port"
  std::filesystem::path caFile;
};

struct NodeAgentSettings {
  std::filesystem::path dataDir;
  std::chrono::milliseconds pollWait{5000};  // long-poll duration; keeps the node "online"
  std::size_t batchLimit = 200;
};

class NodeAgent {
 public:
  NodeAgent(const host::Registries& registries, NodeAgentSettings settings);
  ~NodeAgent();  // stop()

  // <data_dir>/node-identity.json, written at enrolment.
  static std::filesystem::path identityFile(const std::filesystem::path& dataDir);
  static std::optional<NodeIdentity> loadIdentity(const std::filesystem::path& dataDir);

  // Enrols with `joinToken` and stores the identity. Error(Conflict) if already enrolled;
  // Error(Failed/InvalidArgument) with the manager's reason when it refuses.
  static NodeIdentity enrol(const std::filesystem::path& dataDir, const std::string& joinToken,
                            const std::string& advertiseAddress);

  // Starts pulling with the stored identity; Error(Failed) when there is none.
  void start();
  void stop();

  std::int64_t nodeId() const { return identity_.nodeId; }
  // Queues statistics samples for the manager (see agent/StatsForwarder.hpp); returns at
  // once. Error(Unsupported) before start().
  void forwardStats(std::vector<host::StatsSample> samples);

 private:
  void run();
  // Runs the delivery's queue handler.
  JournalEntry apply(const api::OfferedDelivery& delivery) const;

  const host::Registries& registries_;
  NodeAgentSettings settings_;
  NodeIdentity identity_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<ManagerClient> client_;
  std::unique_ptr<StatsForwarder> stats_;
  std::atomic<bool> running_{false};
  std::thread worker_;
};

}  // namespace shoal::agent
