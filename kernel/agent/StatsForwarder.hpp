#pragma once
// Carries a node's statistics samples (ABI 1.2 callback_stats_emit) to the manager, which
// keeps the RRD files: POST /v1/node/stats in batches, from a thread of its own so a plugin
// that emits never waits on the network. Samples wait in a bounded queue while the manager
// is unreachable; when it overflows the oldest go first (a gap in a graph, said once in
// the log) rather than the node's memory.
//
// While the manager cannot take a batch (unreachable, or 5xx) the forwarder backs off:
// the wait between tries doubles from `flushEvery` up to `maxBackoff`, and is `flushEvery`
// again after a batch is taken. When the manager refuses the node's credential (401: the
// node was removed, and its credential revoked for good) the forwarder says so once in the
// log, drops what is queued and sends nothing more; later samples are dropped.
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
  std::chrono::milliseconds maxBackoff{60000};
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
  // Requests sent to the manager so far.
  std::size_t attempts() const;
  // Whether the manager refused this node's credential, so nothing more is sent.
  bool refused() const;

 private:
  enum class Outcome { Sent, Retry, Refused };
  void run();
  Outcome flush();

  std::unique_ptr<ManagerClient> client_;
  StatsForwarderSettings settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<host::StatsSample> queue_;
  bool running_ = false;
  bool refused_ = false;
  bool overflowWarned_ = false;
  std::size_t attempts_ = 0;
  std::thread worker_;
};

}  // namespace shoal::agent
