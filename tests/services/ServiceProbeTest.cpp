// The service plugins' health probes, loaded through the kernel's plugin host and run by
// the health engine: against the real daemons (nginx, postfix, dovecot, vsftpd, started by
// run_service_probes.py, which passes their address and ports in the environment) and
// against peers that fail the ways a node's service fails: nothing listening, a wrong
// answer, no answer at all. Also the plugins' refusal of bad configuration values.
#include <Poco/AutoPtr.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "LoopbackServer.hpp"
#include "health/HealthEngine.hpp"
#include "host/HostObjects.hpp"
#include "host/PluginHost.hpp"

namespace {

using shoal::health::HealthEngine;
using shoal::health::HealthTarget;
using shoal::health::test::Behaviour;
using shoal::health::test::LoopbackServer;
using shoal::host::PluginHost;
using shoal::host::PluginRecord;
using shoal::host::PluginState;
using shoal::host::ProbeEntry;

const std::map<std::string, std::string> kPluginFiles = {{"http", SHOAL_PLUGIN_FILE_HTTP},
                                                         {"smtp", SHOAL_PLUGIN_FILE_SMTP},
                                                         {"imap", SHOAL_PLUGIN_FILE_IMAP},
                                                         {"pop3", SHOAL_PLUGIN_FILE_POP3},
                                                         {"ftp", SHOAL_PLUGIN_FILE_FTP}};

// The six probed services and the plugin that owns each.
const std::vector<std::pair<std::string, std::string>> kServices = {
    {"http", "http"}, {"https", "http"}, {"smtp", "smtp"},
    {"imap", "imap"}, {"pop3", "pop3"},  {"ftp", "ftp"}};

// A plugin host with the given [plugin.*] settings ("plugin.smtp.port" -> "2525") that has
// loaded the named plugins. One at a time per process: the libraries are shared.
class LoadedPlugins {
 public:
  LoadedPlugins(const std::map<std::string, std::string>& settings,
                const std::vector<std::string>& plugins) {
    config_ = new Poco::Util::MapConfiguration;
    for (const auto& [key, value] : settings) config_->setString(key, value);
    host_ = std::make_unique<PluginHost>(shoal::host::HostServices{config_.get(), nullptr});
    for (const auto& name : plugins) records_[name] = host_->load(kPluginFiles.at(name));
  }

  const PluginRecord& record(const std::string& plugin) const { return records_.at(plugin); }

  // Runs a queue handler the way a node does; returns the status and the output or error.
  std::pair<shoal_status, std::string> apply(const std::string& kind, const std::string& payload) const {
    auto handler = host_->registries().queueHandler(kind);
    if (!handler) throw std::runtime_error("no handler for " + kind);
    shoal_reply reply;
    auto status = handler->onApply(handler->user, shoal_str{payload.data(), payload.size()}, &reply);
    return {status, status == SHOAL_OK ? reply.output : reply.error};
  }

  // The registered probe of `service`, as the engine will get it from the registries.
  ProbeEntry probe(const std::string& service) const {
    for (const auto& p : host_->registries().probes())
      if (p.service == service) return p;
    throw std::runtime_error("no probe registered for service " + service);
  }

 private:
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<PluginHost> host_;
  std::map<std::string, PluginRecord> records_;
};

std::vector<std::string> allPlugins() {
  std::vector<std::string> names;
  for (const auto& [name, file] : kPluginFiles) names.push_back(name);
  return names;
}

HealthTarget targetOf(const ProbeEntry& probe, std::string address, std::uint16_t port = 0) {
  HealthTarget t;
  t.nodeId = "1";
  t.address = std::move(address);
  t.port = port;  // 0: the probe's own (configured) port
  t.probe = probe;
  return t;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// SHOAL_SERVICE_PORT_HTTP etc., set by run_service_probes.py.
std::uint16_t daemonPort(const std::string& service) {
  std::string name = "SHOAL_SERVICE_PORT_";
  for (char c : service) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string value = env(name.c_str());
  if (value.empty())
    throw std::runtime_error(name +
                             " is not set: run this through run_service_probes.py, "
                             "which starts the daemons and passes their ports");
  return static_cast<std::uint16_t>(std::stoul(value));
}

std::string daemonAddress() {
  const std::string value = env("SHOAL_SERVICE_ADDRESS");
  return value.empty() ? "127.0.0.1" : value;
}

// Loaded with default settings except a short timeout: failing peers answer fast.
std::unique_ptr<LoadedPlugins> quickPlugins() {
  std::map<std::string, std::string> settings;
  for (const auto& name : allPlugins()) settings["plugin." + name + ".timeout_ms"] = "600";
  return std::make_unique<LoadedPlugins>(settings, allPlugins());
}

#define EXPECT_CONTAINS(text, part)                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "\"" << (text) << "\" lacks \"" << (part) << "\""

// ---- what the plugins register ---------------------------------------------------------

TEST(ServicePlugins, DefaultsRegisterEachServicesProbeOnItsWellKnownPort) {
  LoadedPlugins plugins({}, allPlugins());
  for (const auto& name : allPlugins())
    ASSERT_EQ(plugins.record(name).state, PluginState::Loaded)
        << name << ": " << plugins.record(name).reason;

  const std::map<std::string, std::uint16_t> ports = {{"http", 80},  {"https", 443}, {"smtp", 25},
                                                      {"imap", 143}, {"pop3", 110},  {"ftp", 21}};
  for (const auto& [service, plugin] : kServices) {
    const auto p = plugins.probe(service);
    EXPECT_EQ(p.plugin, plugin);
    EXPECT_EQ(p.port, ports.at(service)) << service;
    EXPECT_EQ(p.intervalMs, 2000u) << service;
    EXPECT_EQ(p.timeoutMs, 1000u) << service;
    EXPECT_EQ(p.rise, 2u) << service;
    EXPECT_EQ(p.fall, 3u) << service;
  }
  for (const char* service : {"http", "https"}) {
    const auto p = plugins.probe(service);
    EXPECT_EQ(p.kind, SHOAL_PROBE_HTTP);
    EXPECT_EQ(p.httpMethod, "GET");
    EXPECT_EQ(p.httpPath, "/");
    EXPECT_EQ(p.httpExpectStatus, 200u);
    EXPECT_EQ(p.httpHost, "");
  }
  EXPECT_FALSE(plugins.probe("http").tls);
  EXPECT_TRUE(plugins.probe("https").tls);

  using Steps = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(plugins.probe("smtp").steps,
            (Steps{{"", "220"}, {"EHLO shoal-health.invalid\r\n", "250"}, {"QUIT\r\n", "221"}}));
  EXPECT_EQ(plugins.probe("imap").steps, (Steps{{"", "* OK"}, {"a1 LOGOUT\r\n", "* BYE"}}));
  EXPECT_EQ(plugins.probe("pop3").steps, (Steps{{"", "+OK"}, {"QUIT\r\n", "+OK"}}));
  EXPECT_EQ(plugins.probe("ftp").steps, (Steps{{"", "220"}, {"QUIT\r\n", "221"}}));
  for (const char* service : {"smtp", "imap", "pop3", "ftp"}) {
    EXPECT_EQ(plugins.probe(service).kind, SHOAL_PROBE_TCP) << service;
    EXPECT_FALSE(plugins.probe(service).tls) << service;
  }
}

TEST(ServicePlugins, ConfiguredValuesReachTheRegisteredProbes) {
  LoadedPlugins plugins({{"plugin.http.port", "8080"},
                         {"plugin.http.https_port", "8443"},
                         {"plugin.http.path", "/healthz?full=1"},
                         {"plugin.http.expect_status", "204"},
                         {"plugin.http.host", "www.example.test"},
                         {"plugin.http.interval_ms", "500"},
                         {"plugin.http.timeout_ms", "499"},
                         {"plugin.http.rise", "1"},
                         {"plugin.http.fall", "100"},
                         {"plugin.ftp.port", "2121"}},
                        {"http", "ftp"});
  ASSERT_EQ(plugins.record("http").state, PluginState::Loaded) << plugins.record("http").reason;
  ASSERT_EQ(plugins.record("ftp").state, PluginState::Loaded) << plugins.record("ftp").reason;
  const auto http = plugins.probe("http"), https = plugins.probe("https");
  EXPECT_EQ(http.port, 8080);
  EXPECT_EQ(https.port, 8443);
  for (const auto& p : {http, https}) {
    EXPECT_EQ(p.httpPath, "/healthz?full=1");
    EXPECT_EQ(p.httpExpectStatus, 204u);
    EXPECT_EQ(p.httpHost, "www.example.test");
    EXPECT_EQ(p.intervalMs, 500u);
    EXPECT_EQ(p.timeoutMs, 499u);
    EXPECT_EQ(p.rise, 1u);
    EXPECT_EQ(p.fall, 100u);
  }
  EXPECT_EQ(plugins.probe("ftp").port, 2121);
}

struct BadValue {
  std::string plugin, key, value;
  std::string shown;    // how the value appears in the reason
  std::string allowed;  // the part of the reason that says what is allowed
};

TEST(ServicePlugins, BadValueRefusesThePluginNamingKeyValueAndWhatIsAllowed) {
  const std::vector<BadValue> cases = {
      {"smtp", "port", "0", "0", "from 1 to 65535"},
      {"imap", "port", "70000", "70000", "from 1 to 65535"},
      {"pop3", "port", "11O", "11O", "whole number from 1 to 65535"},
      {"ftp", "port", "-21", "-21", "whole number from 1 to 65535"},
      {"ftp", "port", "", "", "whole number from 1 to 65535"},
      {"http", "https_port", "65536", "65536", "from 1 to 65535"},
      {"http", "interval_ms", "50", "50", "from 100 to"},
      {"smtp", "timeout_ms", "2000", "2000", "must be less than interval_ms (2000)"},
      {"imap", "rise", "0", "0", "from 1 to 100"},
      {"pop3", "fall", "101", "101", "from 1 to 100"},
      {"http", "path", "health", "health", "must start with \"/\""},
      {"http", "path", "/a b", "/a b", "no spaces, CR, LF"},
      {"http", "path", "/a\r\nX-Injected: 1", "/a\\r\\nX-Injected: 1", "no spaces, CR, LF"},
      {"http", "expect_status", "99", "99", "from 100 to 599"},
      {"http", "expect_status", "600", "600", "from 100 to 599"},
      {"http", "host", "bad host", "bad host", "must be a host name"},
      {"http", "host", "-web.example", "-web.example", "must be a host name"},
      {"http", "host", "web..example", "web..example", "must be a host name"},
      {"http", "host", "web_1.example", "web_1.example", "must be a host name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plugin + "." + c.key + " = \"" + c.value + "\"");
    LoadedPlugins plugins({{"plugin." + c.plugin + "." + c.key, c.value}}, {c.plugin});
    const auto& r = plugins.record(c.plugin);
    EXPECT_EQ(r.state, PluginState::Refused);
    EXPECT_TRUE(r.contributions.probes.empty());
    EXPECT_CONTAINS(r.reason, "[plugin." + c.plugin + "] " + c.key + " = \"" + c.shown + "\"");
    EXPECT_CONTAINS(r.reason, c.allowed);
  }
}

// http.restart runs restart_command by argv (never a shell) and reports how it ended.
TEST(ServicePlugins, HttpRestartRunsTheConfiguredCommandByArgv) {
  {
    LoadedPlugins plugins({{"plugin.http.restart_command", "/bin/echo restarted nginx"}}, {"http"});
    auto [status, output] = plugins.apply("http.restart", R"({"service":"http"})");
    EXPECT_EQ(status, SHOAL_OK) << output;
    EXPECT_CONTAINS(output, "/bin/echo restarted nginx succeeded: restarted nginx");
  }
  {
    LoadedPlugins plugins({{"plugin.http.restart_command", "/bin/false"}}, {"http"});
    auto [status, output] = plugins.apply("http.restart", "{}");
    EXPECT_EQ(status, SHOAL_ERR_FAILED);
    EXPECT_CONTAINS(output, "/bin/false exited with status 1");
  }
  {
    LoadedPlugins plugins({{"plugin.http.restart_command", "/bin/sleep 5"}, {"plugin.http.restart_timeout_ms", "1000"}},
                          {"http"});
    auto [status, output] = plugins.apply("http.restart", "{}");
    EXPECT_EQ(status, SHOAL_ERR_FAILED);
    EXPECT_CONTAINS(output, "timed out");
  }
  {
    LoadedPlugins plugins({{"plugin.http.restart_command", "/no/such/program"}}, {"http"});
    auto [status, output] = plugins.apply("http.restart", "{}");
    EXPECT_NE(status, SHOAL_OK);
    EXPECT_CONTAINS(output, "/no/such/program");
  }
  for (const char* shell : {"systemctl restart nginx; rm -rf /", "nginx -s reload && true", "echo $HOME"}) {
    LoadedPlugins plugins({{"plugin.http.restart_command", shell}}, {"http"});
    EXPECT_EQ(plugins.record("http").state, PluginState::Refused) << shell;
    EXPECT_CONTAINS(plugins.record("http").reason, "contains shell syntax");
  }
}

// ---- against the real daemons ------------------------------------------------------------

TEST(ServiceProbes, EveryProbePassesAgainstTheRealDaemon) {
  std::map<std::string, std::string> settings;
  for (const auto& [service, plugin] : kServices)
    settings["plugin." + plugin + "." + (service == "https" ? "https_port" : "port")] =
        std::to_string(daemonPort(service));
  LoadedPlugins plugins(settings, allPlugins());
  HealthEngine engine;
  for (const auto& [service, plugin] : kServices) {
    ASSERT_EQ(plugins.record(plugin).state, PluginState::Loaded) << plugins.record(plugin).reason;
    const auto probe = plugins.probe(service);
    EXPECT_EQ(probe.port, daemonPort(service)) << service;
    EXPECT_EQ(engine.probeOnce(targetOf(probe, daemonAddress())), "") << service;
  }
}

TEST(ServiceProbes, HttpProbeFailsWhenTheRealServerAnswersAnotherStatus) {
  // nginx answers 200 on every path; a probe expecting 204 must see the difference.
  LoadedPlugins plugins({{"plugin.http.port", std::to_string(daemonPort("http"))},
                         {"plugin.http.https_port", std::to_string(daemonPort("https"))},
                         {"plugin.http.expect_status", "204"}},
                        {"http"});
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(targetOf(plugins.probe("http"), daemonAddress())),
            "HTTP status 200, expected 204");
  EXPECT_EQ(engine.probeOnce(targetOf(plugins.probe("https"), daemonAddress())),
            "HTTP status 200, expected 204");
}

TEST(ServiceProbes, HttpProbeFailsWhenRealNginxAnswers503) {
  // A second nginx whose every answer is "503 Service Temporarily Unavailable".
  LoadedPlugins plugins({{"plugin.http.port", std::to_string(daemonPort("http_503"))}}, {"http"});
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(targetOf(plugins.probe("http"), daemonAddress())),
            "HTTP status 503, expected 200");
}

TEST(ServiceProbes, HttpsProbeFailsInTheHandshakeOnThePlainHttpPort) {
  // A port mix-up in the configuration must not look healthy: nginx's plain port answers
  // the TLS ClientHello with an HTTP 400 and closes.
  LoadedPlugins plugins({{"plugin.http.https_port", std::to_string(daemonPort("http"))}}, {"http"});
  HealthEngine engine;
  EXPECT_CONTAINS(engine.probeOnce(targetOf(plugins.probe("https"), daemonAddress())),
                  "TLS handshake failed");
}

// ---- against peers that fail ---------------------------------------------------------------

TEST(ServiceProbes, DeadPortFailsAsConnectionRefused) {
  auto plugins = quickPlugins();
  HealthEngine engine;
  for (const auto& [service, plugin] : kServices)
    EXPECT_EQ(engine.probeOnce(
                  targetOf(plugins->probe(service), "127.0.0.1", shoal::health::test::deadPort())),
              "connection refused")
        << service;
}

Behaviour greeting(std::string text) {
  Behaviour b;
  b.greeting = std::move(text);
  return b;
}

Behaviour httpAnswer(std::string statusLine) {
  Behaviour b;
  b.httpResponse = statusLine + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  return b;
}

TEST(ServiceProbes, WrongGreetingFailsNamingWhatWasExpectedAndWhatCame) {
  auto plugins = quickPlugins();
  HealthEngine engine;
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"smtp", "554 go away\r\n", R"(expected "220" but got "554 go away)"},
      {"imap", "* BYE go away\r\n", R"(expected "* OK" but got "* BYE go away)"},
      {"pop3", "-ERR go away\r\n", R"(expected "+OK" but got "-ERR go away)"},
      {"ftp", "421 go away\r\n", R"(expected "220" but got "421 go away)"},
  };
  for (const auto& [service, banner, reason] : cases) {
    LoopbackServer server(greeting(banner));
    EXPECT_CONTAINS(engine.probeOnce(targetOf(plugins->probe(service), "127.0.0.1", server.port())),
                    reason);
    EXPECT_EQ(server.accepted(), 1) << service;
  }
}

TEST(ServiceProbes, HttpErrorStatusFailsNamingTheStatus) {
  auto plugins = quickPlugins();
  HealthEngine engine;
  LoopbackServer plain(httpAnswer("HTTP/1.1 503 Service Unavailable"));
  EXPECT_EQ(engine.probeOnce(targetOf(plugins->probe("http"), "127.0.0.1", plain.port())),
            "HTTP status 503, expected 200");
  EXPECT_CONTAINS(plain.lastRequest(), "GET / HTTP/1.1\r\n");

  LoopbackServer tls(httpAnswer("HTTP/1.1 503 Service Unavailable"),
                     shoal::health::test::makeSelfSignedServerContext());
  EXPECT_EQ(engine.probeOnce(targetOf(plugins->probe("https"), "127.0.0.1", tls.port())),
            "HTTP status 503, expected 200");
  EXPECT_CONTAINS(tls.lastRequest(), "GET / HTTP/1.1\r\n");
}

TEST(ServiceProbes, SmtpServerRefusingEhloFailsAtThatStep) {
  auto plugins = quickPlugins();
  HealthEngine engine;
  Behaviour refusing = greeting("220 mx.example ESMTP\r\n");
  refusing.reply = [](const std::string&) -> std::vector<std::string> {
    return {"554 5.7.1 not you\r\n"};
  };
  LoopbackServer server(refusing);
  EXPECT_CONTAINS(engine.probeOnce(targetOf(plugins->probe("smtp"), "127.0.0.1", server.port())),
                  R"(expected "250" but got "554 5.7.1 not you)");
}

TEST(ServiceProbes, SilentPeerTimesOutNamingWhatItWaitedFor) {
  auto plugins = quickPlugins();
  HealthEngine engine;
  Behaviour silent;
  silent.silent = true;
  const std::map<std::string, std::string> waitedFor = {
      {"http", "waiting for the HTTP status line"},
      {"https", "in the TLS handshake"},
      {"smtp", R"(waiting for "220")"},
      {"imap", R"(waiting for "* OK")"},
      {"pop3", R"(waiting for "+OK")"},
      {"ftp", R"(waiting for "220")"}};
  for (const auto& [service, plugin] : kServices) {
    LoopbackServer server(silent);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(engine.probeOnce(targetOf(plugins->probe(service), "127.0.0.1", server.port())),
              "timed out after 600 ms " + waitedFor.at(service))
        << service;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3)) << service;
  }
}

}  // namespace
