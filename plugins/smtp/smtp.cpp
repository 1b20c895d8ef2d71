// smtp — the mail transfer service (postfix) of every node.
//
// Registers the health probe "smtp": a full, harmless SMTP conversation on port (25) —
// greeting 220, EHLO answered 250, QUIT answered 221 — so a server that accepts
// connections but cannot talk (a stuck smtpd, a refusing 554 greeting) counts as failed.
// The EHLO name is in the reserved .invalid domain: it can never be anyone's real host.
// Configuration, section [plugin.smtp]: port, interval_ms, timeout_ms, rise, fall,
// daemon (postfix: the daemon serving it, drained with what shares it in a rolling restart).
//
// Client addresses behind the userspace balancer: with proxy_protocol_port set, the plugin
// adds, at start, a second smtpd to master.cf on that port, reading the PROXY header
// (-o smtpd_upstream_proxy_protocol=haproxy), with Postfix's own `postconf -M` and
// `postconf -P` (by argv; -c postfix_config_directory when set), and checks the result with
// `postfix check`; a failed check removes the entry again (`postconf -MX`), and so must the
// admin for a port no longer configured (`postconf -MX PORT/inet`). Postfix keeps
// no list of trusted PROXY senders: whoever reaches that port can claim any address, so it
// must be reachable from the director only (a firewall rule, which shoal does not write),
// and proxy_protocol_from is refused here rather than taken for a protection it is not.
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"
#include "common/ProxyProtocolConfig.hpp"
#include "common/ServicePanel.hpp"

class Smtp final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    shoal::plugins::registerServicePanel(reg, {"smtp"}, "Mail transfer (SMTP)");
    const shoal::plugins::ProbeConfig config(reg.host(), "smtp");
    const auto timing = config.timing();
    reg.probe(shoal::ProbeSpec::tcp("smtp", config.port("port", 25))
                  .step("", "220")
                  .step("EHLO shoal-health.invalid\r\n", "250")
                  .step("QUIT\r\n", "221")
                  .timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall)
                  .daemon(config.daemon("postfix")));
    configureProxyProtocol(reg.host(), config.port("port", 25));
  }

 private:
  // The master.cf entry of the PROXY protocol smtpd; nothing without proxy_protocol_port.
  static void configureProxyProtocol(const shoal::Host& host, std::uint16_t plainPort) {
    if (host.config("proxy_protocol_from"))
      shoal::plugins::refuseSetting("smtp", "proxy_protocol_from",
                                    "Postfix cannot limit who sends the PROXY header; leave this out and let "
                                    "only the director reach proxy_protocol_port (a firewall rule)");
    if (!host.config("proxy_protocol_port")) return;
    const auto port = shoal::plugins::ProbeConfig(host, "smtp").port("proxy_protocol_port", 0);
    if (port == plainPort)
      shoal::plugins::refuseSetting("smtp", "proxy_protocol_port",
                                    std::to_string(port) + " is the plain port; it must be another one, since "
                                    "the health probes connect to the plain port without a PROXY header");
    std::vector<std::string> configDirectory;
    if (host.config("postfix_config_directory"))
      configDirectory = {"-c", shoal::plugins::configFilePath(host, "smtp", "postfix_config_directory", "")};
    auto tool = [&](std::string program, std::vector<std::string> arguments) {
      std::vector<std::string> argv{std::move(program)};
      argv.insert(argv.end(), configDirectory.begin(), configDirectory.end());
      argv.insert(argv.end(), arguments.begin(), arguments.end());
      return argv;
    };
    const std::string service = std::to_string(port) + "/inet";
    shoal::plugins::runConfigTool("smtp", tool("postconf", {"-M", service + "=" + std::to_string(port) +
                                                                      " inet n - - - - smtpd"}));
    shoal::plugins::runConfigTool("smtp", tool("postconf", {"-P", service + "/smtpd_upstream_proxy_protocol=haproxy"}));
    try {
      shoal::plugins::runConfigTool("smtp", tool("postfix", {"check"}));
    } catch (const shoal::PluginError& e) {
      shoal::runProgram(tool("postconf", {"-MX", service}), shoal::plugins::kCheckerTimeout);
      throw shoal::PluginError(std::string(e.what()) + " (the master.cf entry " + service + " was removed)",
                               SHOAL_ERR_INVALID_ARGUMENT);
    }
    host.info("postfix accepts the PROXY protocol on port " + std::to_string(port) + " (master.cf " + service +
              ", checked by postfix check); only the director may reach that port");
  }
};

SHOAL_PLUGIN(Smtp, "smtp", "0.1.0", "Mail transfer: SMTP health probe")
