// eventlog — a test plugin that records every kernel event its hooks receive, and
// registers probes for the services the health tests serve on loopback addresses.
//
// [plugin.eventlog] file = PATH: each event is appended as one line,
//   <milliseconds since the epoch, when the hook ran> <event> <payload JSON>
// [plugin.eventlog] http_port / https_port / imap_port / pop3_port: each one set registers
// that service's probe (HTTP, HTTP over TLS, "* OK" banner, "+OK" banner); the timing is
// the engine's defaults.
#include <fcntl.h>
#include <shoal/sdk.hpp>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>

class EventLog final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    file_ = reg.host().config("file", "");
    if (file_.empty()) throw shoal::PluginError("[plugin.eventlog] file is not set");
    auto port = [&](const char* key) -> std::uint16_t {
      return static_cast<std::uint16_t>(std::stoul(reg.host().config(key, "0")));
    };
    if (auto p = port("http_port")) reg.probe(shoal::ProbeSpec::http("http", p));
    if (auto p = port("https_port")) reg.probe(shoal::ProbeSpec::http("https", p).withTls());
    if (auto p = port("imap_port")) reg.probe(shoal::ProbeSpec::tcp("imap", p).step("", "* OK"));
    if (auto p = port("pop3_port")) reg.probe(shoal::ProbeSpec::tcp("pop3", p).step("", "+OK"));
    for (const char* event : {"health.changed", "node.joined", "node.left"})
      reg.hook(event, [this](std::string_view name, std::string_view payload) { record(name, payload); });
  }

 private:
  void record(std::string_view event, std::string_view payload) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string line = std::to_string(now) + " " + std::string(event) + " " + std::string(payload) + "\n";
    std::lock_guard lock(mutex_);
    int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw shoal::PluginError("cannot open " + file_);
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw shoal::PluginError("cannot write " + file_);
  }

  std::string file_;
  std::mutex mutex_;
};

SHOAL_PLUGIN(EventLog, "eventlog", "1.0.0", "Test plugin: records the kernel events its hooks receive")
