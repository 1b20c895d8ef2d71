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
// Probe semantics (see shoal_probe_desc in sdk/include/shoal/abi.h):
// - The timeout covers the whole probe: name resolution, connect, TLS handshake, exchange.
// - TLS: the certificate is not verified; SNI is sent when the address is a host name.
// - TCP steps run in order: `send` is written when non-empty; then, when `expect` is
//   non-empty, bytes are read until the text received for this step starts with `expect`.
//   The probe fails as soon as the received bytes cannot match (`expected "220" but got
//   "554 go away"`). When a later step follows, the reply is read to the end of its line,
//   and multi-line replies in the SMTP/FTP style (`250-...` lines up to `250 ...`) are read
//   whole, so the next step's text starts with the next reply; anything else received
//   before the next send is discarded. A probe with no steps is a plain connect check; its
//   connection is closed with a reset, as HAProxy's checks are (no TIME_WAIT left behind,
//   nothing for the service to log). Connections that exchanged data close normally.
// - HTTP: `METHOD path HTTP/1.1` with Host (http_host, else the address, with the port
//   when it is not 80/443), `Connection: close`, `User-Agent: shoal-health/1`; only the
//   status line is read. Empty method = GET, empty path = "/"; an expected status of 0
//   accepts any 2xx or 3xx.
// - Failure reasons are short sentences for people: `connection refused`, `timed out after
//   1000 ms waiting for "220"`, `TLS handshake failed: ...`, `connection closed by peer
//   before "+OK"`, `HTTP status 503, expected 200`.
//
// Scheduling: every target is probed every interval (fixed rate: the next probe starts one
// interval after the previous one started, or at once if that probe took longer). Targets
// added together have their first probes spread evenly over their first interval. Starts
// are rounded up to a 5 ms grid, so the targets due in one slot cost one wake-up of the
// event loop (this cut the engine's CPU per probe by about a fifth at 2,000 probes/s).
//
// Threads: probes run on one io_context served by `threads` threads; each target's work is
// serialised on its own strand. The engine owns its sockets and timers; callers own
// nothing the engine keeps except the subscribers they hand over.
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

  // Flap damping. State changes of a target are counted over the last `flapWindow`; the
  // first result (leaving Unknown) does not count. While more than `flapThreshold` changes
  // are in the window, the rise needed to come back is multiplied by
  // 1 + (changes - flapThreshold), at most by `flapMaxFactor`. As changes age out of the
  // window the factor decays back to 1: a target that stays stable for `flapWindow` is
  // undamped again. Defaults: 4 changes tolerated per 60 s, rise at most x4 (with rise 2
  // and a 2 s interval a flapping service waits up to 16 s before it serves again).
  std::chrono::milliseconds flapWindow{60000};
  std::uint32_t flapThreshold = 4;
  std::uint32_t flapMaxFactor = 4;
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

  // Starts the threads and probes every target. start() after stop() resumes probing; the
  // targets keep their state.
  void start();
  // Cancels every probe and joins the threads. No subscriber runs after stop() returns.
  // Targets and their state stay (snapshot() still answers). Returns within milliseconds,
  // except that a host-name lookup in progress is waited for (getaddrinfo cannot be
  // interrupted); addresses given as IP literals are never looked up.
  void stop();

  // Replace the set of targets. Targets whose (nodeId, service) key stays keep their state
  // and counts (their description/address/port is updated); new ones start Unknown and are
  // probed at once (spread over the first interval); removed ones stop.
  void setTargets(std::vector<HealthTarget> targets);

  std::vector<HealthStatus> snapshot() const;
  std::optional<HealthStatus> status(const std::string& nodeId, const std::string& service) const;

  // Called on the engine's thread for every state change, in order per target. A
  // subscriber must not block for long; it may call snapshot()/status() and setTargets(),
  // not stop(). An exception from a subscriber is swallowed. Subscribe before start().
  // A target removed by setTargets() reports no change that it had not begun reporting
  // before setTargets() returned.
  using Subscriber = std::function<void(const HealthChange&)>;
  void subscribe(Subscriber subscriber);

  // Run one probe now, outside the schedule (for `shoalctl` and tests); returns "" on
  // success or the reason it failed. Blocks up to the probe's timeout. Runs on the calling
  // thread with its own event loop: works whether or not the engine is started, and
  // changes no target's state.
  std::string probeOnce(const HealthTarget& target);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::health
