// The userspace dataplane on real loopback sockets. Backends are small servers that send
// their name on a line and then echo what they receive; clients connect from chosen
// addresses in 127.0.0.0/8 so source hashing and persistence see distinct clients.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "Reconciler.hpp"
#include "UserspaceDataplane.hpp"

namespace {

using namespace shoal::lvs;
using namespace std::chrono_literals;

sockaddr_in socketAddress(const std::string& address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  return sa;
}

// A port free on `address` right now (the kernel's choice for an ephemeral bind).
std::uint16_t freePort(const std::string& address = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa = socketAddress(address, 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

bool sendAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Answers every connection with "<name>\n", then echoes until the client half-closes.
class Backend {
 public:
  Backend(std::string name, std::string address, std::uint16_t port = 0)
      : name_(std::move(name)), address_(std::move(address)) {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = socketAddress(address_, port);
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listenFd_, 128) != 0)
      throw std::runtime_error("backend " + name_ + " cannot listen");
    socklen_t len = sizeof sa;
    ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }

  ~Backend() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connections_) t.join();
    ::close(listenFd_);
  }

  std::uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  int accepted() const { return accepted_; }

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd p{listenFd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      open_.insert(fd);
      connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    const std::string hello = name_ + "\n";
    if (sendAll(fd, hello.data(), hello.size())) {
      std::vector<char> buffer(1 << 16);
      for (;;) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0 || !sendAll(fd, buffer.data(), static_cast<std::size_t>(n))) break;
      }
    }
    ::shutdown(fd, SHUT_WR);
    std::lock_guard lock(mutex_);
    open_.erase(fd);
    ::close(fd);
  }

  std::string name_, address_;
  std::uint16_t port_ = 0;
  int listenFd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::set<int> open_;
  std::vector<std::thread> connections_;
};

// A client connection from `source`; closed on destruction.
class Client {
 public:
  Client(const std::string& source, const std::string& address, std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in from = socketAddress(source, 0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from);
    sockaddr_in to = socketAddress(address, port);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  // One line without its newline; empty when the connection ends first.
  std::string line() {
    std::string text;
    char c;
    while (::recv(fd_, &c, 1, 0) == 1) {
      if (c == '\n') return text;
      text += c;
    }
    return {};
  }
  bool send(const std::string& text) { return sendAll(fd_, text.data(), text.size()); }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The name of the backend a new connection from `source` reaches ("" when none answers).
std::string nameVia(const std::string& source, const std::string& address, std::uint16_t port) {
  Client c(source, address, port);
  return c.connected() ? c.line() : std::string();
}

RealServer real(const Backend& b, std::uint32_t weight = 1) {
  RealServer r;
  r.address = b.address();
  r.port = b.port();
  r.weight = weight;
  return r;
}

VirtualService service(std::uint16_t port, const std::string& scheduler,
                       std::vector<RealServer> reals) {
  VirtualService s;
  s.address = "127.0.0.1";
  s.port = port;
  s.scheduler = scheduler;
  s.reals = std::move(reals);
  return s;
}

template <typename Predicate>
bool eventually(Predicate p, std::chrono::milliseconds within = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return p();
}

std::uint64_t fnv1a(const std::string& data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

class UserspaceDataplaneTest : public ::testing::Test {
 protected:
  UserspaceDataplane plane{[] {
    UserspaceSettings s;
    s.threads = 2;
    s.connectTimeout = 1000ms;
    return s;
  }()};
  std::uint16_t vip = freePort();
};

TEST_F(UserspaceDataplaneTest, RoundRobinTakesRealServersInTurn) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6"), c("c", "127.0.0.7");
  plane.apply({service(vip, "rr", {real(a), real(b), real(c)})});
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(nameVia("127.0.0.2", "127.0.0.1", vip));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "a", "b", "c"}));
}

TEST_F(UserspaceDataplaneTest, WeightedRoundRobinFollowsWeights) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  plane.apply({service(vip, "wrr", {real(a, 3), real(b, 1)})});
  std::map<std::string, int> count;
  for (int i = 0; i < 12; ++i) ++count[nameVia("127.0.0.2", "127.0.0.1", vip)];
  EXPECT_EQ(count["a"], 9);
  EXPECT_EQ(count["b"], 3);
}

// Three connections are held on `a` while `b` is drained; then `b` comes back and the least
// loaded real server takes the next ones.
TEST_F(UserspaceDataplaneTest, LeastConnectionPrefersTheLeastLoaded) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  plane.apply({service(vip, "lc", {real(a), real(b, 0)})});
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>("127.0.0.2", "127.0.0.1", vip));
    ASSERT_EQ(held.back()->line(), "a");
  }
  plane.apply({service(vip, "lc", {real(a), real(b, 1)})});
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>("127.0.0.2", "127.0.0.1", vip));
    seen.push_back(held.back()->line());
  }
  // b: 0, 1, 2 active < a's 3; at 3 against 3 the tie goes to the first listed.
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "b", "b", "a"}));
}

TEST_F(UserspaceDataplaneTest, WeightedLeastConnectionWeighsTheLoad) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  plane.apply({service(vip, "wlc", {real(a, 1), real(b, 0)})});
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<Client>("127.0.0.2", "127.0.0.1", vip));
    ASSERT_EQ(held.back()->line(), "a");
  }
  plane.apply({service(vip, "wlc", {real(a, 1), real(b, 2)})});
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<Client>("127.0.0.2", "127.0.0.1", vip));
    seen.push_back(held.back()->line());
  }
  // b with weight 2 takes connections until 4/2 equals a's 2/1.
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "b", "b", "b", "a"}));
  const auto state = plane.read();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].reals[0].activeConnections, 3u);
  EXPECT_EQ(state[0].reals[1].activeConnections, 4u);
}

TEST_F(UserspaceDataplaneTest, SourceHashingKeepsEachSourceOnOneServerAndSpreadsSources) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6"), c("c", "127.0.0.7");
  plane.apply({service(vip, "sh", {real(a), real(b), real(c)})});
  std::set<std::string> used;
  for (int host = 10; host < 30; ++host) {
    const std::string source = "127.0.1." + std::to_string(host);
    const std::string first = nameVia(source, "127.0.0.1", vip);
    ASSERT_FALSE(first.empty());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(nameVia(source, "127.0.0.1", vip), first) << source;
    used.insert(first);
  }
  EXPECT_GE(used.size(), 2u);
}

// A firewall-mark group listening on two ports; each real server (port 0) is reached on the
// port the client used, and a persistent client stays on one real server across both.
TEST_F(UserspaceDataplaneTest, PersistenceHoldsAClientAcrossConnectionsAndListeners) {
  Backend aHttp("a-http", "127.0.0.5"), aHttps("a-https", "127.0.0.5");
  const std::uint16_t http = aHttp.port(), https = aHttps.port();
  Backend bHttp("b-http", "127.0.0.6", http), bHttps("b-https", "127.0.0.6", https);
  VirtualService s;
  s.fwmark = 7;
  s.listeners = {{"127.0.0.1", http}, {"127.0.0.1", https}};
  s.scheduler = "rr";
  s.persistenceSeconds = 60;
  s.reals = {RealServer{"127.0.0.5", 0, 1, Forwarding::DirectRouting},
             RealServer{"127.0.0.6", 0, 1, Forwarding::DirectRouting}};
  plane.apply({s});

  const std::string first = nameVia("127.0.0.2", "127.0.0.1", http);
  ASSERT_TRUE(first == "a-http" || first == "b-http") << first;
  const std::string host = first.substr(0, 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", http), host + "-http");
    EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", https), host + "-https");
  }
  // Round robin moves on for the next client, who then sticks to the other real server.
  const std::string other = host == "a" ? "b" : "a";
  EXPECT_EQ(nameVia("127.0.0.3", "127.0.0.1", https), other + "-https");
  EXPECT_EQ(nameVia("127.0.0.3", "127.0.0.1", http), other + "-http");

  // Drained, the remembered real server is given up for a new client connection.
  s.reals[host == "a" ? 0 : 1].weight = 0;
  plane.apply({s});
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", http), other + "-http");
}

TEST_F(UserspaceDataplaneTest, PersistenceNetmaskGroupsClients) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  VirtualService s = service(vip, "rr", {real(a), real(b)});
  s.persistenceSeconds = 60;
  s.persistenceNetmask = "255.255.255.0";
  plane.apply({s});
  const std::string first = nameVia("127.0.2.1", "127.0.0.1", vip);
  for (int host = 2; host < 6; ++host)
    EXPECT_EQ(nameVia("127.0.2." + std::to_string(host), "127.0.0.1", vip), first);
  EXPECT_NE(nameVia("127.0.3.1", "127.0.0.1", vip), first);
}

TEST_F(UserspaceDataplaneTest, WeightZeroTakesNoNewConnectionsWhileAnOpenOneContinues) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  plane.apply({service(vip, "rr", {real(a), real(b)})});
  Client held("127.0.0.2", "127.0.0.1", vip);
  ASSERT_EQ(held.line(), "a");
  const auto report = plane.apply({service(vip, "rr", {real(a, 0), real(b)})});
  EXPECT_EQ(report.realsEdited, 1u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "b");
  ASSERT_TRUE(held.send("still there\n"));
  EXPECT_EQ(held.line(), "still there");
  EXPECT_EQ(plane.read()[0].reals[0].activeConnections, 1u);
}

TEST_F(UserspaceDataplaneTest, NoRealServerTakingConnectionsClosesTheClientAtOnce) {
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "wlc", {real(a, 0)})});
  Client c("127.0.0.2", "127.0.0.1", vip);
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.line(), "");
  EXPECT_EQ(a.accepted(), 0);
}

TEST_F(UserspaceDataplaneTest, AFailedConnectIsRetriedOnAnotherRealServer) {
  Backend b("b", "127.0.0.6");
  RealServer dead{"127.0.0.9", freePort("127.0.0.9"), 1, Forwarding::DirectRouting};
  plane.apply({service(vip, "rr", {dead, real(b)})});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "b");

  // With every real server refusing, the client is closed after the retry.
  plane.apply({service(vip, "rr", {dead})});
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "");
}

// A real server whose accept queue is full drops the SYN: the connect times out and the
// client is served by the other real server.
TEST(UserspaceDataplaneTimeout, AConnectThatTimesOutIsRetriedOnAnotherRealServer) {
  UserspaceSettings settings;
  settings.threads = 1;
  settings.connectTimeout = 300ms;
  UserspaceDataplane plane(settings);
  const std::uint16_t vip = freePort();
  Backend b("b", "127.0.0.6");
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = socketAddress("127.0.0.9", 0);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(silent, 0), 0);
  socklen_t len = sizeof sa;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::uint16_t silentPort = ntohs(sa.sin_port);
  // Fill the accept queue (backlog 0 holds one) so that further SYNs are dropped.
  Client filler("127.0.0.2", "127.0.0.9", silentPort);
  ASSERT_TRUE(filler.connected());

  plane.apply(
      {service(vip, "rr", {RealServer{"127.0.0.9", silentPort, 1, Forwarding::Nat}, real(b)})});
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "b");
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 250ms);  // the first real server was tried and given up on
  EXPECT_LT(took, 3s);
  ::close(silent);
}

TEST_F(UserspaceDataplaneTest, CountersRiseAndZeroCountersZeroesThem) {
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "rr", {real(a)})});
  for (int i = 0; i < 3; ++i) {
    Client c("127.0.0.2", "127.0.0.1", vip);
    ASSERT_EQ(c.line(), "a");
    ASSERT_TRUE(c.send("hello\n"));
    ASSERT_EQ(c.line(), "hello");
  }
  ASSERT_TRUE(eventually([&] { return plane.read()[0].reals[0].activeConnections == 0; }));
  auto state = plane.read()[0];
  EXPECT_EQ(state.counters.connections, 3u);
  EXPECT_EQ(state.counters.bytesIn, 3u * 6);         // "hello\n" client to server
  EXPECT_EQ(state.counters.bytesOut, 3u * (2 + 6));  // "a\n" and the echo
  EXPECT_GE(state.counters.packetsIn, 3u);
  EXPECT_GE(state.counters.packetsOut, 3u);
  EXPECT_EQ(state.reals[0].counters.connections, 3u);
  EXPECT_EQ(state.reals[0].counters.bytesIn, state.counters.bytesIn);

  plane.zeroCounters();
  state = plane.read()[0];
  EXPECT_EQ(state.counters.connections, 0u);
  EXPECT_EQ(state.counters.bytesIn, 0u);
  EXPECT_EQ(state.counters.bytesOut, 0u);
  EXPECT_EQ(state.counters.packetsIn, 0u);
  EXPECT_EQ(state.reals[0].counters.bytesOut, 0u);
}

TEST_F(UserspaceDataplaneTest, RatesAppearWithinTheEstimatorWindow) {
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "rr", {real(a)})});
  for (int i = 0; i < 10; ++i) ASSERT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  EXPECT_TRUE(eventually(
      [&] {
        const auto s = plane.read()[0];
        return s.rates.connectionsPerSecond > 0 && s.rates.bytesOutPerSecond > 0 &&
               s.reals[0].rates.connectionsPerSecond > 0;
      },
      3000ms));
}

TEST_F(UserspaceDataplaneTest, ApplyingTheSameTableTwiceChangesNothing) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  const std::uint16_t other = freePort();
  std::vector<VirtualService> table{service(vip, "rr", {real(a), real(b)}),
                                    service(other, "wlc", {real(a)})};
  auto first = plane.apply(table);
  EXPECT_EQ(first.servicesAdded, 2u);
  EXPECT_EQ(first.realsAdded, 3u);
  ASSERT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  auto second = plane.apply(table);
  EXPECT_FALSE(second.changedAnything());
  EXPECT_EQ(second.servicesUnchanged, 2u);
  EXPECT_EQ(plane.read()[0].counters.connections, 1u);  // kept

  table[0].scheduler = "wrr";
  table[0].reals.pop_back();
  table[1].reals[0].weight = 5;
  auto third = plane.apply(table);
  EXPECT_EQ(third.servicesEdited, 1u);
  EXPECT_EQ(third.realsRemoved, 1u);
  EXPECT_EQ(third.realsEdited, 1u);
  EXPECT_EQ(third.servicesUnchanged, 0u);
  const auto state = plane.read();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].spec.scheduler, "wrr");
  EXPECT_EQ(state[0].reals.size(), 1u);
  EXPECT_EQ(state[0].counters.connections, 1u);
  EXPECT_EQ(state[1].reals[0].spec.weight, 5u);
}

TEST_F(UserspaceDataplaneTest, AFirewallMarkGroupGainsAndLosesListenersInPlace) {
  Backend a("a", "127.0.0.5");
  const std::uint16_t second = freePort(), third = freePort();
  VirtualService s;
  s.fwmark = 3;
  s.scheduler = "rr";
  s.listeners = {{"127.0.0.1", vip}, {"127.0.0.1", second}};
  s.reals = {real(a)};
  plane.apply({s});
  ASSERT_EQ(nameVia("127.0.0.2", "127.0.0.1", second), "a");

  s.listeners = {{"127.0.0.1", vip}, {"127.0.0.1", third}};
  const auto report = plane.apply({s});
  EXPECT_EQ(report.servicesEdited, 1u);
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", third), "a");
  EXPECT_FALSE(Client("127.0.0.2", "127.0.0.1", second).connected());
  EXPECT_EQ(plane.read()[0].counters.connections, 3u);  // one service throughout
}

TEST_F(UserspaceDataplaneTest, RemovingAServiceClosesItsListener) {
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "rr", {real(a)})});
  ASSERT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  const auto report = plane.apply({});
  EXPECT_EQ(report.servicesRemoved, 1u);
  EXPECT_TRUE(plane.read().empty());
  Client c("127.0.0.2", "127.0.0.1", vip);
  EXPECT_FALSE(c.connected());
}

TEST_F(UserspaceDataplaneTest, ForwardingMethodsAreKeptAndReadBack) {
  Backend a("a", "127.0.0.5");
  RealServer r = real(a);
  r.forwarding = Forwarding::Tunnel;
  plane.apply({service(vip, "rr", {r})});
  EXPECT_EQ(plane.read()[0].reals[0].spec.forwarding, Forwarding::Tunnel);
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
}

TEST_F(UserspaceDataplaneTest, UdpIsReportedFailedNamingTheServiceAndTheProtocol) {
  VirtualService s = service(vip, "rr", {});
  s.protocol = Protocol::Udp;
  const ApplyReport report = plane.apply({s});
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].service, "udp:127.0.0.1:" + std::to_string(vip));
  EXPECT_NE(report.failures[0].reason.find("udp is not supported by the userspace dataplane"),
            std::string::npos)
      << report.failures[0].reason;
  EXPECT_TRUE(plane.read().empty());
}

TEST_F(UserspaceDataplaneTest, AnUnknownSchedulerIsNamedWithTheSupportedOnes) {
  const ApplyReport report = plane.apply({service(vip, "lblc", {})});
  ASSERT_EQ(report.failures.size(), 1u);
  const std::string& message = report.failures[0].reason;
  EXPECT_NE(message.find("'lblc'"), std::string::npos) << message;
  EXPECT_NE(message.find("rr, wrr, lc, wlc, sh"), std::string::npos) << message;
}

TEST_F(UserspaceDataplaneTest, AnAddressInUseIsNamedAndTheOtherServicesAreApplied) {
  Backend a("a", "127.0.0.5");
  Backend squatter("squatter", "127.0.0.1");
  const std::uint16_t taken = squatter.port();
  const ApplyReport report =
      plane.apply({service(taken, "rr", {real(a)}), service(vip, "rr", {real(a)})});
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].service, "tcp:127.0.0.1:" + std::to_string(taken));
  const std::string& message = report.failures[0].reason;
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(taken)), std::string::npos) << message;
  EXPECT_NE(message.find("Address already in use"), std::string::npos) << message;
  EXPECT_EQ(report.servicesAdded, 1u);
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  ASSERT_EQ(plane.read().size(), 1u);
  EXPECT_EQ(plane.read()[0].spec.port, vip);
}

// One service whose port another socket holds must not hold back the table: the others
// carry traffic, a later table (a drain) still takes effect, and once the port is free the
// reconcile loop applies the failed service by itself.
TEST_F(UserspaceDataplaneTest, APortInUseFailsOnlyItsServiceAndTheReconcilerHealsItOnceFreed) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6"), c("c", "127.0.0.7");
  auto squatter = std::make_unique<Backend>("squatter", "127.0.0.1");
  const std::uint16_t taken = squatter->port();
  const std::uint16_t other = freePort();
  std::mutex logMutex;
  std::vector<std::string> logged;
  Reconciler reconciler(plane, 200ms, [&](bool, const std::string& m) {
    std::lock_guard lock(logMutex);
    logged.push_back(m);
  });
  reconciler.start();

  auto table = [&](std::uint32_t weightOfA) {
    return std::vector<VirtualService>{service(vip, "rr", {real(a, weightOfA), real(b)}),
                                       service(taken, "rr", {real(c)}),
                                       service(other, "rr", {real(c)})};
  };
  const ApplyReport first = reconciler.apply(table(1));
  ASSERT_EQ(first.failures.size(), 1u);
  const std::string takenKey = "tcp:127.0.0.1:" + std::to_string(taken);
  EXPECT_EQ(first.failures[0].service, takenKey);
  EXPECT_NE(first.failures[0].reason.find("Address already in use"), std::string::npos)
      << first.failures[0].reason;
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(nameVia("127.0.0.2", "127.0.0.1", vip));
  EXPECT_EQ(seen, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", other), "c");
  ASSERT_EQ(reconciler.failures().size(), 1u);
  EXPECT_EQ(reconciler.failures()[0].service, takenKey);

  // A drain sent after the failure takes effect at once.
  const ApplyReport drain = reconciler.apply(table(0));
  EXPECT_EQ(drain.realsEdited, 1u);
  ASSERT_EQ(drain.failures.size(), 1u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "b");
  std::this_thread::sleep_for(500ms);  // passes that still fail change nothing else
  EXPECT_EQ(reconciler.repairs(), 0u);
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", squatter->port()), "squatter");

  squatter.reset();
  EXPECT_TRUE(eventually([&] { return reconciler.failures().empty(); }, 3s));
  EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", taken), "c");
  EXPECT_EQ(plane.read().size(), 3u);
  reconciler.stop();
  EXPECT_EQ(reconciler.repairs(), 0u) << "a healed service is not drift";
  std::lock_guard lock(logMutex);
  const bool toldHealed = std::any_of(logged.begin(), logged.end(), [&](const std::string& m) {
    return m.find(takenKey + " is applied now") != std::string::npos;
  });
  EXPECT_TRUE(toldHealed);
}

TEST_F(UserspaceDataplaneTest, ANonLocalAddressIsNamed) {
  VirtualService s = service(vip, "rr", {});
  s.address = "192.0.2.77";
  const ApplyReport report = plane.apply({s});
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_NE(report.failures[0].reason.find("192.0.2.77:" + std::to_string(vip)), std::string::npos)
      << report.failures[0].reason;
}

// Waits until no connection through `plane` is open any more (active and half-closed: 0,
// lingering ones counted as inactive), so the next connection is scheduled on counts that
// include every earlier one.
bool allClosed(UserspaceDataplane& plane, std::uint32_t lingering) {
  return eventually([&] {
    std::uint32_t active = 0, inactive = 0;
    for (const auto& s : plane.read())
      for (const auto& r : s.reals) active += r.activeConnections, inactive += r.inactiveConnections;
    return active == 0 && inactive == lingering;
  });
}

// IPVS keeps a closed TCP connection as an inactive entry for its FIN timeout and wlc weighs
// it (active * 256 + inactive): sequential short connections spread evenly instead of all
// going to the first real server.
TEST_F(UserspaceDataplaneTest, SequentialShortConnectionsSpreadEvenlyUnderWlc) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6"), c("c", "127.0.0.7");
  plane.apply({service(vip, "wlc", {real(a), real(b), real(c)})});
  std::map<std::string, int> seen;
  for (std::uint32_t i = 0; i < 30; ++i) {
    ++seen[nameVia("127.0.0.2", "127.0.0.1", vip)];
    ASSERT_TRUE(allClosed(plane, i + 1)) << "connection " << i << " did not close";
  }
  EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 10}, {"b", 10}, {"c", 10}}));
}

TEST(UserspaceDataplaneFinTimeout, InactiveConnectionsRiseAndFallAfterTheFinTimeout) {
  UserspaceSettings settings;
  settings.finTimeout = 1500ms;
  UserspaceDataplane plane(settings);
  const std::uint16_t vip = freePort();
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "lc", {real(a)})});
  auto counts = [&] {
    const auto r = plane.read().at(0).reals.at(0);
    return std::make_pair(r.activeConnections, r.inactiveConnections);
  };
  {
    Client open("127.0.0.2", "127.0.0.1", vip);
    ASSERT_EQ(open.line(), "a");
    EXPECT_EQ(counts(), std::make_pair(1u, 0u));
    // Half-closed: IPVS has left ESTABLISHED, so the entry is inactive.
    ::shutdown(open.fd(), SHUT_WR);
    EXPECT_TRUE(eventually([&] { return counts() == std::make_pair(0u, 1u); }));
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(nameVia("127.0.0.2", "127.0.0.1", vip), "a");
  EXPECT_TRUE(eventually([&] { return counts() == std::make_pair(0u, 4u); }));
  const auto closed = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return counts() == std::make_pair(0u, 0u); }, 5s));
  const auto took = std::chrono::steady_clock::now() - closed;
  EXPECT_GE(took, 1000ms) << "inactive entries expired before the FIN timeout";
}

// Several megabytes each way on two connections at once, echoed back: what arrives is
// exactly what was sent, and the half-close travels through (the echo ends with EOF).
void transferSeveralMegabytesBothWays(UserspaceDataplane& plane, std::uint16_t vip) {
  Backend a("a", "127.0.0.5");
  plane.apply({service(vip, "rr", {real(a)})});
  constexpr std::size_t kSize = 8 << 20;
  auto transfer = [&](unsigned seed, std::uint64_t* sentHash, std::uint64_t* gotHash,
                      std::size_t* gotSize) {
    std::string data(kSize, '\0');
    std::mt19937 random(seed);
    for (auto& ch : data) ch = static_cast<char>(random());
    *sentHash = fnv1a(data);
    Client c("127.0.0.2", "127.0.0.1", vip);
    if (c.line() != "a") return;
    std::thread writer([&] {
      sendAll(c.fd(), data.data(), data.size());
      ::shutdown(c.fd(), SHUT_WR);
    });
    std::string got;
    std::vector<char> buffer(1 << 16);
    for (;;) {
      const ssize_t n = ::recv(c.fd(), buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      got.append(buffer.data(), static_cast<std::size_t>(n));
    }
    writer.join();
    *gotHash = fnv1a(got);
    *gotSize = got.size();
  };
  std::uint64_t sent[2] = {0, 0}, got[2] = {1, 1};
  std::size_t size[2] = {0, 0};
  std::thread one(transfer, 1, &sent[0], &got[0], &size[0]);
  std::thread two(transfer, 2, &sent[1], &got[1], &size[1]);
  one.join();
  two.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(size[i], kSize);
    EXPECT_EQ(got[i], sent[i]);
  }
  const auto state = plane.read()[0];
  EXPECT_EQ(state.counters.bytesIn, 2 * kSize);
  EXPECT_EQ(state.counters.bytesOut, 2 * (kSize + 2));
}

TEST_F(UserspaceDataplaneTest, LargeTransfersArriveIntactBothWays) {
  transferSeveralMegabytesBothWays(plane, vip);
}

TEST(UserspaceDataplaneCopy, LargeTransfersArriveIntactThroughTheBufferCopy) {
  UserspaceSettings settings;
  settings.splice = false;
  UserspaceDataplane plane(settings);
  transferSeveralMegabytesBothWays(plane, freePort());
}

TEST_F(UserspaceDataplaneTest, ApplyIsSafeWhileTrafficFlows) {
  Backend a("a", "127.0.0.5"), b("b", "127.0.0.6");
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, unanswered{0};
  plane.apply({service(vip, "rr", {real(a), real(b)})});
  std::thread traffic([&] {
    while (!stop) {
      const std::string name = nameVia("127.0.0.2", "127.0.0.1", vip);
      ++(name == "a" || name == "b" ? answered : unanswered);
    }
  });
  // Every table keeps b taking connections, so every client must be answered.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int applies = 0;
  while ((applies < 50 || answered < 50) && std::chrono::steady_clock::now() < deadline) {
    plane.apply({service(vip, applies % 2 ? "wlc" : "rr", {real(a, applies % 3), real(b)})});
    plane.read();
    ++applies;
  }
  stop = true;
  traffic.join();
  EXPECT_GE(answered.load(), 50);
  EXPECT_EQ(unanswered.load(), 0);
}

}  // namespace
