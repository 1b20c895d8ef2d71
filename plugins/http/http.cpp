// http — the web service (nginx, apache) of every node.
//
// Registers the health probes of its two balanced services:
//   - "http":  GET path on port (80), expecting expect_status (200);
//   - "https": the same request over TLS on https_port (443).
// Configuration, section [plugin.http]: port, https_port, path, expect_status, host (the
// Host header; empty = the node's address), interval_ms, timeout_ms, rise, fall, daemon
// (nginx: the daemon serving both, so a rolling restart drains http and https together).
//
// Queue handler "http.restart" (what `shoalctl service restart http --all` sends to each
// node, after draining it from the balancer): runs restart_command, by argv and never
// through a shell (default "systemctl restart nginx"), within restart_timeout_ms (60000).
//
// Client addresses behind the userspace balancer (common/ProxyProtocolConfig.hpp): with
// proxy_protocol_port and proxy_protocol_from set, the plugin writes, at start, an nginx
// snippet to proxy_protocol_snippet (/etc/nginx/snippets/shoal-proxy-protocol.conf):
//   listen PORT proxy_protocol;  set_real_ip_from DIRECTOR;  real_ip_header proxy_protocol;
// to be included in every server {} the PROXY policy's members reach, and checks it with
// proxy_protocol_check ("nginx -t"). nginx believes the header only from the director; a
// connection from elsewhere on that port must still send one, and is logged under its own
// address.
//
// Websites of hosting accounts (Sites.hpp; docs/adr/0013-hosting-accounts.md): queue handlers
// http.site.put and http.site.remove render an account's nginx server blocks, php-fpm pool and
// certificate on each web node; on the manager, the account events enqueue them (role http,
// key account:<name>, staggered by reload_stagger_ms). Settings: README.md, [plugin.http].
//
// Limits of hosting accounts (ABI 1.5; an older shoald gets none): http.domains ("Domains",
// the account's domains, which the kernel counts and refuses itself) and http.disk_mb ("Disk
// space (MB)", counted by this plugin).
#include <shoal/sdk.hpp>

#include <stdexcept>
#include <vector>

#include "common/ProbeConfig.hpp"
#include "common/ProxyProtocolConfig.hpp"
#include "common/ServicePanel.hpp"
#include <shoal/process.hpp>
#include "Sites.hpp"

class Http final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    shoal::plugins::registerServicePanel(reg, {"http", "https"}, "Web (HTTP and HTTPS)");
    const shoal::plugins::ProbeConfig config(reg.host(), "http");
    const auto timing = config.timing();
    const auto path = config.httpPath("path", "/");
    const auto status = config.number("expect_status", 200, 100, 599);
    const auto hostHeader = config.hostName("host", "");
    // One web server answers both ports, so a restart drains http and https together.
    const auto daemon = config.daemon("nginx");

    auto plain = shoal::ProbeSpec::http("http", config.port("port", 80), path, status);
    auto tls =
        shoal::ProbeSpec::http("https", config.port("https_port", 443), path, status).withTls();
    for (auto* spec : {&plain, &tls}) {
      spec->httpHost = hostHeader;
      spec->timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall);
      spec->daemon(daemon);
      reg.probe(*spec);
    }

    const std::string command = reg.host().config("restart_command", "systemctl restart nginx");
    try {
      restartArgv_ = shoal::splitCommand(command);
    } catch (const std::invalid_argument& e) {
      throw shoal::PluginError(std::string("[plugin.http] restart_command: ") + e.what(), SHOAL_ERR_INVALID_ARGUMENT);
    }
    restartTimeout_ = std::chrono::milliseconds(config.number("restart_timeout_ms", 60000, 1000, 3600000));
    configureProxyProtocol(reg.host(), config.port("port", 80));
    reg.queueHandler("http.restart", "Restart the web server (restart_command)",
                     [this](std::string_view, shoal::Reply& reply) { restart(reply); });
    declareLimits(reg);
    sites_.registerWith(reg);
  }

 private:
  // The kernel owns every limit's value and every refusal; the plugin names what it offers.
  // A host older than ABI 1.5 knows no limits (and would refuse the call, and the plugin).
  static void declareLimits(shoal::Registrar& reg) {
    if (!reg.host().offersLimits()) return;
    reg.limit("domains", "Domains", shoal::kLimitCountsDomains);
    reg.limit("disk_mb", "Disk space (MB)");
  }

  // nginx's snippet for the PROXY protocol listener; nothing without the settings.
  static void configureProxyProtocol(const shoal::Host& host, std::uint16_t plainPort) {
    const auto listener = shoal::plugins::readProxyProtocolListener(host, "http", plainPort);
    if (!listener) return;
    const auto snippet = shoal::plugins::configFilePath(host, "http", "proxy_protocol_snippet",
                                                        "/etc/nginx/snippets/shoal-proxy-protocol.conf");
    const auto check = shoal::plugins::commandSetting(host, "http", "proxy_protocol_check", "nginx -t");
    const std::string port = std::to_string(listener->port);
    std::string text =
        "# Written by shoal's http plugin at each start, from [plugin.http] proxy_protocol_port and\n"
        "# proxy_protocol_from. Include it in every server {} that a PROXY policy's members reach.\n"
        "listen " + port + " proxy_protocol;\n";
    if (listener->anyIpv6) text += "listen [::]:" + port + " proxy_protocol;\n";
    for (const auto& from : listener->trustedFrom) text += "set_real_ip_from " + from + ";\n";
    text += "real_ip_header proxy_protocol;\n";
    shoal::plugins::installCheckedFile("http", snippet, text, check);
    host.info("nginx accepts the PROXY protocol on port " + port + " from " + host.config("proxy_protocol_from", "") +
              " (" + snippet + ", checked by " + shoal::plugins::commandLine(check) + ")");
  }

  void restart(shoal::Reply& reply) {
    const auto result = shoal::runProgram(restartArgv_, restartTimeout_);
    std::string line;
    for (const auto& word : restartArgv_) line += (line.empty() ? "" : " ") + word;
    if (!result.succeeded())
      throw shoal::PluginError(line + " " + result.describe() + (result.output.empty() ? "" : ": " + result.output));
    reply.append(line + " succeeded" + (result.output.empty() ? "" : ": " + result.output));
  }

  std::vector<std::string> restartArgv_;
  std::chrono::milliseconds restartTimeout_{60000};
  shoal::http::Sites sites_;
};

SHOAL_PLUGIN(Http, "http", "0.1.0", "Web service: HTTP and HTTPS health probes, restarts, hosting accounts' websites")
