// pop3 — the POP3 mailbox service (dovecot) of every node.
//
// Registers the health probe "pop3" on port (110): the "+OK" greeting, then QUIT answered
// with "+OK", so the server is seen to process a command and the session ends cleanly.
// Configuration, section [plugin.pop3]: port, interval_ms, timeout_ms, rise, fall,
// daemon (dovecot: the daemon serving it, drained with what shares it in a rolling restart).
//
// Client addresses behind the userspace balancer: with proxy_protocol_port and
// proxy_protocol_from set, the plugin writes, at start, a dovecot file to
// proxy_protocol_config (/etc/dovecot/conf.d/95-shoal-proxy-protocol-pop3.conf) with
// haproxy_trusted_networks and a second pop3-login listener with haproxy = yes, checked by
// proxy_protocol_check ("doveconf -n"); see common/ProxyProtocolConfig.hpp.
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"
#include "common/ProxyProtocolConfig.hpp"
#include "common/ServicePanel.hpp"

class Pop3 final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    shoal::plugins::registerServicePanel(reg, {"pop3"}, "Mail access (POP3)");
    const shoal::plugins::ProbeConfig config(reg.host(), "pop3");
    const auto timing = config.timing();
    reg.probe(shoal::ProbeSpec::tcp("pop3", config.port("port", 110))
                  .step("", "+OK")
                  .step("QUIT\r\n", "+OK")
                  .timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall)
                  .daemon(config.daemon("dovecot")));
    shoal::plugins::configureDovecotProxyProtocol(reg.host(), "pop3", config.port("port", 110));
  }
};

SHOAL_PLUGIN(Pop3, "pop3", "0.1.0", "Mailbox access: POP3 health probe")
