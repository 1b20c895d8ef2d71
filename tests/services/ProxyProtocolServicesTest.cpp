// Client addresses through the userspace dataplane, end to end on one host: the service
// plugins (loaded through the kernel's plugin host) write their daemons' PROXY protocol
// configuration and check it with the daemons' own checkers; the daemons (real nginx,
// postfix, dovecot, started by run_proxy_protocol_services.py) are reloaded; a client bound
// to 127.0.0.5 goes through the real userspace dataplane, and each daemon's own log names
// 127.0.0.5 rather than the dataplane's 127.0.0.1. Also what is refused, and why.
#include <Poco/AutoPtr.h>
#include <Poco/Util/MapConfiguration.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "UserspaceDataplane.hpp"
#include <shoal/process.hpp>
#include "host/HostObjects.hpp"
#include "host/PluginHost.hpp"

namespace {

using namespace std::chrono_literals;
using shoal::host::PluginHost;
using shoal::host::PluginRecord;
using shoal::host::PluginState;
using shoal::lvs::ProxyProtocol;
using shoal::lvs::RealServer;
using shoal::lvs::UserspaceDataplane;
using shoal::lvs::VirtualService;

const std::map<std::string, std::string> kPluginFiles = {{"http", SHOAL_PLUGIN_FILE_HTTP},
                                                         {"smtp", SHOAL_PLUGIN_FILE_SMTP},
                                                         {"imap", SHOAL_PLUGIN_FILE_IMAP},
                                                         {"pop3", SHOAL_PLUGIN_FILE_POP3}};

#define EXPECT_CONTAINS(text, part)                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "\"" << (text) << "\" lacks \"" << (part) << "\""

std::string env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value)
    throw std::runtime_error(name + " is not set: run this through run_proxy_protocol_services.py, which starts "
                                    "the daemons and passes their paths and ports");
  return value;
}
std::uint16_t envPort(const std::string& name) { return static_cast<std::uint16_t>(std::stoul(env(name))); }

// One plugin loaded through a plugin host with the given [plugin.*] settings.
class LoadedPlugin {
 public:
  LoadedPlugin(const std::string& plugin, const std::map<std::string, std::string>& settings) {
    config_ = new Poco::Util::MapConfiguration;
    for (const auto& [key, value] : settings) config_->setString("plugin." + plugin + "." + key, value);
    host_ = std::make_unique<PluginHost>(shoal::host::HostServices{config_.get(), nullptr});
    record_ = host_->load(kPluginFiles.at(plugin));
  }
  const PluginRecord& record() const { return record_; }

 private:
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<PluginHost> host_;
  PluginRecord record_;
};

void run(const std::vector<std::string>& argv) {
  const auto result = shoal::runProgram(argv, 30s);
  ASSERT_TRUE(result.succeeded()) << argv[0] << " " << result.describe() << ": " << result.output;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
bool exists(const std::string& path) { return std::ifstream(path).good(); }

sockaddr_in socketAddress(const std::string& address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  return sa;
}

// A TCP client from `source`; -1 when the connect fails.
int connectFrom(const std::string& source, const std::string& address, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in from = socketAddress(source, 0), to = socketAddress(address, port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t freePort(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa = socketAddress(address, 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

void sendText(int fd, const std::string& text) { ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }

// Reads until `expected` has arrived (or the connection ends, or 5 s pass).
std::string readUntil(int fd, const std::string& expected) {
  std::string got;
  char buffer[1024];
  while (got.find(expected) == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return got;
}

// A conversation from `source`: for each (send, expect) pair, send then read to `expect`.
// Returns everything the server said.
std::string converse(const std::string& source, const std::string& address, std::uint16_t port,
                     const std::vector<std::pair<std::string, std::string>>& steps) {
  const int fd = connectFrom(source, address, port);
  if (fd < 0) return "(no connection)";
  std::string said;
  for (const auto& [send, expect] : steps) {
    if (!send.empty()) sendText(fd, send);
    said += readUntil(fd, expect);
  }
  ::close(fd);
  return said;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds within = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

bool accepts(std::uint16_t port) {
  const int fd = connectFrom("127.0.0.1", "127.0.0.1", port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// The director: a userspace dataplane with one virtual service on 127.0.0.3 whose only
// member is the daemon's port on 127.0.0.1. Connections to the member come from 127.0.0.1.
struct Director {
  UserspaceDataplane plane;
  std::uint16_t port = freePort("127.0.0.3");
  Director(std::uint16_t memberPort, ProxyProtocol proxy) {
    VirtualService s;
    s.address = "127.0.0.3";
    s.port = port;
    s.scheduler = "rr";
    s.proxyProtocol = proxy;
    RealServer r;
    r.address = "127.0.0.1";
    r.port = memberPort;
    s.reals = {r};
    plane.apply({s});
  }
};

// ---- nginx --------------------------------------------------------------------------------

std::map<std::string, std::string> nginxSettings(const std::string& snippetDirectory) {
  const auto prefix = env("SHOAL_PROXY_NGINX_PREFIX");
  return {{"port", env("SHOAL_PROXY_PORT_HTTP")},
          {"proxy_protocol_port", env("SHOAL_PROXY_PROXIED_PORT_HTTP")},
          {"proxy_protocol_from", "127.0.0.1"},
          {"proxy_protocol_snippet", prefix + "/" + snippetDirectory + "/shoal-proxy-protocol.conf"},
          {"proxy_protocol_check", "nginx -t -p " + prefix + "/ -c " + env("SHOAL_PROXY_NGINX_CONF")}};
}

// The access-log line of a request for `path` (nginx's combined format starts with the
// client's address).
std::string accessLogLine(const std::string& path) {
  std::string found;
  eventually([&] {
    std::istringstream log(readFile(env("SHOAL_PROXY_NGINX_ACCESS_LOG")));
    for (std::string line; std::getline(log, line);)
      if (line.find("GET " + path + " ") != std::string::npos) found = line;
    return !found.empty();
  }, 3s);
  return found;
}

std::string get(const std::string& source, std::uint16_t port, const std::string& path) {
  return converse(source, "127.0.0.3", port, {{"GET " + path + " HTTP/1.0\r\n\r\n", "\r\n\r\nshoal\n"}});
}

TEST(ProxyProtocolServices, NginxLogsTheClientsAddressThroughTheUserspaceDataplane) {
  const auto proxied = envPort("SHOAL_PROXY_PROXIED_PORT_HTTP");
  LoadedPlugin http("http", nginxSettings("snippets"));
  ASSERT_EQ(http.record().state, PluginState::Loaded) << http.record().reason;
  const auto snippet = readFile(env("SHOAL_PROXY_NGINX_PREFIX") + "/snippets/shoal-proxy-protocol.conf");
  EXPECT_CONTAINS(snippet, "listen " + std::to_string(proxied) + " proxy_protocol;");
  EXPECT_CONTAINS(snippet, "set_real_ip_from 127.0.0.1;");
  EXPECT_CONTAINS(snippet, "real_ip_header proxy_protocol;");
  run({"nginx", "-p", env("SHOAL_PROXY_NGINX_PREFIX") + "/", "-c", env("SHOAL_PROXY_NGINX_CONF"), "-s", "reload"});
  ASSERT_TRUE(eventually([&] { return accepts(proxied); })) << "nginx never listened on " << proxied;

  // Through a PROXY policy to the proxied port: nginx sees the client.
  {
    Director director(proxied, ProxyProtocol::V2);
    EXPECT_CONTAINS(get("127.0.0.5", director.port, "/through-proxy-protocol"), "200 OK");
  }
  EXPECT_EQ(accessLogLine("/through-proxy-protocol").rfind("127.0.0.5 ", 0), 0u)
      << accessLogLine("/through-proxy-protocol");

  // Without it, to the plain port (what the probes use, unchanged): only the director.
  {
    Director director(envPort("SHOAL_PROXY_PORT_HTTP"), ProxyProtocol::None);
    EXPECT_CONTAINS(get("127.0.0.5", director.port, "/without-proxy-protocol"), "200 OK");
  }
  EXPECT_EQ(accessLogLine("/without-proxy-protocol").rfind("127.0.0.1 ", 0), 0u)
      << accessLogLine("/without-proxy-protocol");

  // A header from anyone but the director is not believed: nginx logs the sender itself.
  const unsigned char forged[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
                                  0x00, 0x0C, 203,  0,    113,  9,    127,  0,    0,    1,    0x10, 0x00, 0x00, 0x50};
  const int fd = connectFrom("127.0.0.9", "127.0.0.1", proxied);
  ASSERT_GE(fd, 0);
  ::send(fd, forged, sizeof forged, MSG_NOSIGNAL);
  sendText(fd, "GET /forged-header HTTP/1.0\r\n\r\n");
  readUntil(fd, "\r\n\r\nshoal\n");
  ::close(fd);
  EXPECT_EQ(accessLogLine("/forged-header").rfind("127.0.0.9 ", 0), 0u) << accessLogLine("/forged-header");
}

// The snippet in the wrong place (http {} takes no `listen`): nginx -t fails, the plugin
// refuses with nginx's words and removes the file, so nginx's next start is not broken.
TEST(ProxyProtocolServices, NginxRefusalByItsCheckerRemovesTheSnippet) {
  LoadedPlugin http("http", nginxSettings("http-snippets"));
  EXPECT_EQ(http.record().state, PluginState::Refused);
  EXPECT_CONTAINS(http.record().reason, "nginx -t");
  EXPECT_CONTAINS(http.record().reason, "\"listen\" directive is not allowed here");
  EXPECT_CONTAINS(http.record().reason, "was removed");
  EXPECT_FALSE(exists(env("SHOAL_PROXY_NGINX_PREFIX") + "/http-snippets/shoal-proxy-protocol.conf"));
  run({"nginx", "-t", "-p", env("SHOAL_PROXY_NGINX_PREFIX") + "/", "-c", env("SHOAL_PROXY_NGINX_CONF")});
}

// ---- postfix ------------------------------------------------------------------------------

TEST(ProxyProtocolServices, PostfixSmtpdLogsTheClientsAddressThroughTheUserspaceDataplane) {
  const auto proxied = envPort("SHOAL_PROXY_PROXIED_PORT_SMTP");
  const auto conf = env("SHOAL_PROXY_POSTFIX_CONF");
  LoadedPlugin smtp("smtp", {{"port", env("SHOAL_PROXY_PORT_SMTP")},
                             {"proxy_protocol_port", std::to_string(proxied)},
                             {"postfix_config_directory", conf}});
  ASSERT_EQ(smtp.record().state, PluginState::Loaded) << smtp.record().reason;
  const auto master = readFile(conf + "/master.cf");
  EXPECT_CONTAINS(master, std::to_string(proxied) + " ");
  EXPECT_CONTAINS(master, "smtpd_upstream_proxy_protocol=haproxy");
  run({"postfix", "-c", conf, "reload"});
  ASSERT_TRUE(eventually([&] { return accepts(proxied); })) << "postfix never listened on " << proxied;

  Director director(proxied, ProxyProtocol::V2);
  const auto said = converse("127.0.0.5", "127.0.0.3", director.port,
                             {{"", "220 "}, {"EHLO client.invalid\r\n", "250 "}, {"QUIT\r\n", "221 "}});
  EXPECT_CONTAINS(said, "221 ");
  const std::regex connect(R"(smtpd\[\d+\]: connect from [^ ]*\[127\.0\.0\.5\])");
  EXPECT_TRUE(eventually([&] { return std::regex_search(readFile(env("SHOAL_PROXY_POSTFIX_LOG")), connect); }, 5s))
      << readFile(env("SHOAL_PROXY_POSTFIX_LOG"));
}

// ---- dovecot ------------------------------------------------------------------------------

std::map<std::string, std::string> dovecotSettings(const std::string& protocol) {
  std::string upper = protocol == "imap" ? "IMAP" : "POP3";
  return {{"port", env("SHOAL_PROXY_PORT_" + upper)},
          {"proxy_protocol_port", env("SHOAL_PROXY_PROXIED_PORT_" + upper)},
          {"proxy_protocol_from", "127.0.0.1"},
          {"proxy_protocol_config", env("SHOAL_PROXY_DOVECOT_DIR") + "/conf.d/95-shoal-" + protocol + ".conf"},
          {"proxy_protocol_check", "doveconf -n -c " + env("SHOAL_PROXY_DOVECOT_CONF")}};
}

TEST(ProxyProtocolServices, DovecotLogsTheClientsAddressForImapAndPop3) {
  LoadedPlugin imap("imap", dovecotSettings("imap"));
  ASSERT_EQ(imap.record().state, PluginState::Loaded) << imap.record().reason;
  LoadedPlugin pop3("pop3", dovecotSettings("pop3"));
  ASSERT_EQ(pop3.record().state, PluginState::Loaded) << pop3.record().reason;
  run({"dovecot", "-c", env("SHOAL_PROXY_DOVECOT_CONF"), "reload"});
  const auto imapPort = envPort("SHOAL_PROXY_PROXIED_PORT_IMAP"), pop3Port = envPort("SHOAL_PROXY_PROXIED_PORT_POP3");
  ASSERT_TRUE(eventually([&] { return accepts(imapPort) && accepts(pop3Port); })) << "dovecot never listened";

  {
    Director director(imapPort, ProxyProtocol::V2);
    EXPECT_CONTAINS(converse("127.0.0.5", "127.0.0.3", director.port, {{"", "* OK"}, {"a1 LOGOUT\r\n", "a1 OK"}}),
                    "* BYE");
  }
  {
    Director director(pop3Port, ProxyProtocol::V2);
    EXPECT_CONTAINS(converse("127.0.0.6", "127.0.0.3", director.port, {{"", "+OK"}, {"QUIT\r\n", "+OK Logging out"}}),
                    "+OK Logging out");
  }
  auto logged = [](const std::string& what) {
    return eventually([&] { return readFile(env("SHOAL_PROXY_DOVECOT_LOG")).find(what) != std::string::npos; }, 5s);
  };
  EXPECT_TRUE(logged("imap-login: Info: Disconnected: Aborted login by logging out")) << readFile(env("SHOAL_PROXY_DOVECOT_LOG"));
  EXPECT_TRUE(logged("rip=127.0.0.5")) << readFile(env("SHOAL_PROXY_DOVECOT_LOG"));
  EXPECT_TRUE(logged("rip=127.0.0.6")) << readFile(env("SHOAL_PROXY_DOVECOT_LOG"));

  // The proxied listener takes no connection from outside haproxy_trusted_networks.
  EXPECT_EQ(converse("127.0.0.9", "127.0.0.1", imapPort, {{"", "* OK"}}).find("* OK"), std::string::npos);
}

// ---- refusals -----------------------------------------------------------------------------

TEST(ProxyProtocolServices, BadSettingsAreRefusedNamingTheKeyAndWhy) {
  struct Case {
    std::string plugin;
    std::map<std::string, std::string> settings;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"http", {{"proxy_protocol_port", "8080"}, {"proxy_protocol_from", "10.0.0.300"}},
       "[plugin.http] proxy_protocol_from: '10.0.0.300' is not an IPv4 or IPv6 address"},
      {"http", {{"proxy_protocol_port", "8080"}, {"proxy_protocol_from", "10.0.0.0/33"}},
       "'10.0.0.0/33' is not an IPv4 or IPv6 address (optionally with a /prefix)"},
      {"http", {{"proxy_protocol_port", "8080"}}, "[plugin.http] proxy_protocol_from: is required with proxy_protocol_port"},
      {"http", {{"proxy_protocol_from", "10.0.0.1"}}, "is set without proxy_protocol_port"},
      {"http", {{"proxy_protocol_port", "80"}, {"proxy_protocol_from", "10.0.0.1"}},
       "[plugin.http] proxy_protocol_port: 80 is the plain port"},
      {"http", {{"proxy_protocol_port", "8080"}, {"proxy_protocol_from", "10.0.0.1"}, {"proxy_protocol_snippet", "snippet.conf"}},
       "[plugin.http] proxy_protocol_snippet: 'snippet.conf' must be an absolute file path"},
      {"http", {{"proxy_protocol_port", "8080"}, {"proxy_protocol_from", "10.0.0.1"}, {"proxy_protocol_check", "nginx -t; reboot"}},
       "[plugin.http] proxy_protocol_check: 'nginx -t; reboot' contains shell syntax"},
      {"imap", {{"proxy_protocol_port", "143"}, {"proxy_protocol_from", "10.0.0.1"}}, "[plugin.imap] proxy_protocol_port: 143 is the plain port"},
      {"pop3", {{"proxy_protocol_port", "99999"}, {"proxy_protocol_from", "10.0.0.1"}},
       "[plugin.pop3] proxy_protocol_port = \"99999\": must be a whole number from 1 to 65535"},
      {"smtp", {{"proxy_protocol_port", "10025"}, {"proxy_protocol_from", "10.0.0.1"}},
       "[plugin.smtp] proxy_protocol_from: Postfix cannot limit who sends the PROXY header"},
      {"smtp", {{"proxy_protocol_port", "25"}}, "[plugin.smtp] proxy_protocol_port: 25 is the plain port"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plugin + " " + c.expected);
    LoadedPlugin plugin(c.plugin, c.settings);
    EXPECT_EQ(plugin.record().state, PluginState::Refused);
    EXPECT_CONTAINS(plugin.record().reason, c.expected);
  }
}

}  // namespace
