// http — the web service (nginx, apache) of every node.
//
// Registers the health probes of its two balanced services:
//   - "http":  GET path on port (80), expecting expect_status (200);
//   - "https": the same request over TLS on https_port (443).
// Configuration, section [plugin.http]: port, https_port, path, expect_status, host (the
// Host header; empty = the node's address), interval_ms, timeout_ms, rise, fall.
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"

class Http final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    const shoal::plugins::ProbeConfig config(reg.host(), "http");
    const auto timing = config.timing();
    const auto path = config.httpPath("path", "/");
    const auto status = config.number("expect_status", 200, 100, 599);
    const auto hostHeader = config.hostName("host", "");

    auto plain = shoal::ProbeSpec::http("http", config.port("port", 80), path, status);
    auto tls =
        shoal::ProbeSpec::http("https", config.port("https_port", 443), path, status).withTls();
    for (auto* spec : {&plain, &tls}) {
      spec->httpHost = hostHeader;
      spec->timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall);
      reg.probe(*spec);
    }
  }
};

SHOAL_PLUGIN(Http, "http", "0.1.0", "Web service: HTTP and HTTPS health probes")
