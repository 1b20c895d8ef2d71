// ftp — the FTP service (vsftpd, pure-ftpd) of every node.
//
// Registers the health probe "ftp" on port (21): the "220" greeting, then QUIT answered
// with "221", so the server is seen to process a command and the session ends cleanly.
// Configuration, section [plugin.ftp]: port, interval_ms, timeout_ms, rise, fall,
// daemon (vsftpd: the daemon serving it, drained with what shares it in a rolling restart).
#include <shoal/sdk.hpp>

#include "common/ProbeConfig.hpp"
#include "common/ServicePanel.hpp"

class Ftp final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    shoal::plugins::registerServicePanel(reg, {"ftp"}, "File transfer (FTP)");
    const shoal::plugins::ProbeConfig config(reg.host(), "ftp");
    const auto timing = config.timing();
    reg.probe(shoal::ProbeSpec::tcp("ftp", config.port("port", 21))
                  .step("", "220")
                  .step("QUIT\r\n", "221")
                  .timing(timing.intervalMs, timing.timeoutMs, timing.rise, timing.fall)
                  .daemon(config.daemon("vsftpd")));
  }
};

SHOAL_PLUGIN(Ftp, "ftp", "0.1.0", "File transfer: FTP health probe")
