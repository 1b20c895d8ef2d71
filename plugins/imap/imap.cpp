// imap — the IMAP mailbox service (dovecot) of every node.
//
// Registers the health probe "imap" on port (143): the untagged "* OK" greeting, then a
// LOGOUT answered with "* BYE", so the server is seen to process a command, and the
// session ends cleanly instead of being dropped (no error lines in the server's log).
// Configuration, section [plugin.imap]: port, interval_ms, timeout_ms, rise, fall,
// daemon (dovecot: the daemon serving it, drained with what shares it in a rolling restart).
//
// Client addresses behind the userspace balancer: with proxy_protocol_port and
// proxy_protocol_from set, the plugin writes, at start, a dovecot file to
// proxy_protocol_config (/etc/dovecot/conf.d/95-shoal-proxy-protocol-imap.conf) with
// haproxy_trusted_networks and a second imap-login listener with haproxy = yes, checked by
// proxy_protocol_check ("doveconf -n"); see common/ProxyProtocolConfig.hpp.
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"
#include "common/ProxyProtocolConfig.hpp"
#include "common/ServicePanel.hpp"

class Imap final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    shoal::plugins::registerServicePanel(reg, {"imap"}, "Mail access (IMAP)");
    const shoal::plugins::ProbeConfig config(reg.host(), "imap");
    const auto timing = config.timing();
    reg.probe(shoal::ProbeSpec::tcp("imap", config.port("port", 143))
                  .step("", "* OK")
                  .step("a1 LOGOUT\r\n", "* BYE")
                  .timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall)
                  .daemon(config.daemon("dovecot")));
    shoal::plugins::configureDovecotProxyProtocol(reg.host(), "imap", config.port("port", 143));
  }
};

SHOAL_PLUGIN(Imap, "imap", "0.1.0", "Mailbox access: IMAP health probe")
