#pragma once
// Carries a node's statistics samples (ABI 1.2 callback_stats_emit) to the manager, which
// keeps the RRD files: POST /v1/node/stats in batches, from a thread of its own so a plugin
// that emits never waits on the network. Samples wait in a bounded queue while the manager
// is unreachable; when it overflows the oldest go first (a gap in a graph, said once in
// the log) rather than the node's memory.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/StatsSample.hpp"

namespace shoal::agent {

class ManagerClient;

struct StatsForwarderSettings {
  std::chrono::milliseconds flushEvery{2000};
  std::size_t maxQueued = 50000;
  std::size_t maxBatch = 5000;
};

class StatsForwarder {
 public:
  // Owns `client` (its own connection, beside the agent's long-poll).
  StatsForwarder(std::unique_ptr<ManagerClient> client, StatsForwarderSettings settings = {});
  ~StatsForwarder();  // stop()
  StatsForwarder(const StatsForwarder&) = delete;
  StatsForwarder& operator=(const StatsForwarder&) = delete;

  void start();
  // Sends what is queued (one last try), then stops.
  void stop();
  // Queues samples; returns at once.
  void submit(std::vector<host::StatsSample> samples);
  std::size_t queued() const;

 private:
  void run();
  bool flush();  // false when the manager could not take a batch

  std::unique_ptr<ManagerClient> client_;
  StatsForwarderSettings settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<host::StatsSample> queue_;
  bool running_ = false;
  bool overflowWarned_ = false;
  std::thread worker_;
};

}  // namespace shoal::agent
