#pragma once
// The health engine: asynchronous probes (Boost.Asio) of every balanced service on every
// node, each with interval, timeout, rise and fall.
//
// One probe runs per (node, service) target however many policies use it. Probe
// descriptions come from plugins (host::ProbeEntry, registered through the ABI); the
// engine runs them: connect, optional TLS, then either send/expect steps (TCP) or one HTTP
// request with an expected status. State changes are handed to subscribers, which the
// manager turns into `health.changed` events.
//
// State machine per target: Unknown until the first probe completes (one result decides,
// so a starting cluster comes up at once); Healthy -> Unhealthy after `fall` consecutive
// failures; Unhealthy -> Healthy after `rise` consecutive successes. A target that keeps
// flapping has its rise threshold raised (damped) so the balancer does not thrash.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/Registries.hpp"

namespace shoal::health {

enum class HealthState { Unknown, Healthy, Unhealthy };
const char* healthStateName(HealthState s);  // "unknown" / "healthy" / "unhealthy"

struct HealthDefaults {
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds timeout{1000};
  std::uint32_t rise = 2;
  std::uint32_t fall = 3;
};

// What to probe: a service on a node. `probe` is the plugin's description; its zero
// fields (interval, timeout, rise, fall) take the engine's defaults. `port` overrides the
// probe's port when non-zero.
struct HealthTarget {
  std::string nodeId;   // the node's id in the registry, as text
  std::string address;  // where the node's service listens (IPv4/IPv6 text or host name)
  std::uint16_t port = 0;
  host::ProbeEntry probe;
};

struct HealthStatus {
  std::string nodeId, address, service;
  std::uint16_t port = 0;
  HealthState state = HealthState::Unknown;
  std::uint32_t consecutiveSuccesses = 0, consecutiveFailures = 0;
  std::uint64_t checks = 0;           // probes completed
  std::string lastError;              // why the last failed probe failed; empty after a success
  std::chrono::system_clock::time_point lastChange{};  // when `state` last changed
  std::chrono::system_clock::time_point lastCheck{};   // when the last probe completed
  std::chrono::milliseconds lastDuration{0};           // how long the last probe took
  std::uint32_t effectiveRise = 0;    // rise in force now (raised while the target flaps)
};

struct HealthChange {
  HealthStatus status;      // after the change
  HealthState previous = HealthState::Unknown;
};

class HealthEngine {
 public:
  // `threads` event-loop threads run every probe (one is enough for thousands of targets).
  explicit HealthEngine(HealthDefaults defaults = {}, unsigned threads = 1);
  ~HealthEngine();  // stops
  HealthEngine(const HealthEngine&) = delete;
  HealthEngine& operator=(const HealthEngine&) = delete;

  void start();
  // Cancels every probe and joins the threads. No subscriber runs after stop() returns.
  void stop();

  // Replace the set of targets. Targets whose (nodeId, service) key stays keep their state
  // and counts (their description/address/port is updated); new ones start Unknown and are
  // probed at once (spread over the first interval); removed ones stop.
  void setTargets(std::vector<HealthTarget> targets);

  std::vector<HealthStatus> snapshot() const;
  std::optional<HealthStatus> status(const std::string& nodeId, const std::string& service) const;

  // Called on the engine's thread for every state change, in order per target. A
  // subscriber must not block for long; it may call snapshot()/status().
  using Subscriber = std::function<void(const HealthChange&)>;
  void subscribe(Subscriber subscriber);

  // Run one probe now, outside the schedule (for `shoalctl` and tests); returns "" on
  // success or the reason it failed. Blocks up to the probe's timeout.
  std::string probeOnce(const HealthTarget& target);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::health
