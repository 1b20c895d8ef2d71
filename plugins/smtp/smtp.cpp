// smtp — the mail transfer service (postfix) of every node.
//
// Registers the health probe "smtp": a full, harmless SMTP conversation on port (25) —
// greeting 220, EHLO answered 250, QUIT answered 221 — so a server that accepts
// connections but cannot talk (a stuck smtpd, a refusing 554 greeting) counts as failed.
// The EHLO name is in the reserved .invalid domain: it can never be anyone's real host.
// Configuration, section [plugin.smtp]: port, interval_ms, timeout_ms, rise, fall,
// daemon (postfix: the daemon serving it, drained with what shares it in a rolling restart).
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"
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
  }
};

SHOAL_PLUGIN(Smtp, "smtp", "0.1.0", "Mail transfer: SMTP health probe")
