#pragma once
// One run of one probe, asynchronous on a given executor: connect, optional TLS, then TCP
// steps or one HTTP request (semantics in HealthEngine.hpp). Internal to the health engine.
//
// Every handler of a run executes on the executor it was started with (the target's
// strand), so a run needs no lock. The run keeps itself alive until it has finished and
// called `done` exactly once; cancel() makes it finish soon with "cancelled".
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "host/Registries.hpp"

namespace shoal::health {

// A probe with every default resolved.
struct ProbeSpec {
  std::string host;  // IPv4/IPv6 literal or a name to resolve
  std::uint16_t port = 0;
  bool tls = false;
  shoal_probe_kind kind = SHOAL_PROBE_TCP;
  std::vector<std::pair<std::string, std::string>> steps;  // {send, expect}
  std::string httpMethod = "GET", httpPath = "/", httpHost;
  std::uint32_t httpExpectStatus = 0;  // 0 = any 2xx or 3xx
  std::chrono::milliseconds timeout{1000};
};

class ProbeRun {
 public:
  // Called once, on the executor: "" for success, else why the probe failed.
  using Done = std::function<void(const std::string& error)>;

  // `tls` must outlive the run (the engine owns it). Starts at once; `done` is never called
  // inside start().
  static std::shared_ptr<ProbeRun> start(boost::asio::any_io_executor executor,
                                         boost::asio::ssl::context& tls, ProbeSpec spec, Done done);

  // Must be called on the run's executor. Idempotent; no effect once finished.
  virtual void cancel() = 0;
  virtual ~ProbeRun() = default;
};

// A client TLS context that verifies nothing (probes check liveness, not identity).
boost::asio::ssl::context makeProbeTlsContext();

}  // namespace shoal::health
