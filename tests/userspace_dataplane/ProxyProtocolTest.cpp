// PROXY protocol v2 from the userspace dataplane, on real loopback sockets: a real server
// that records every byte it receives, read back by tests/support's reader, written from
// haproxy's proxy-protocol.txt (section 2.2) independently of the dataplane's own writer. The client
// connects from its own address (127.0.0.5, or ::1 for IPv6), so the header is seen to carry
// the client's address rather than the dataplane's.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "ProxyProtocolV2Reader.hpp"
#include "ProxySession.hpp"
#include "UserspaceDataplane.hpp"

namespace {

using namespace shoal::lvs;
using namespace std::chrono_literals;

// An IPv4 or IPv6 socket address of `address`:`port`.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;

  SocketAddress(const std::string& address, std::uint16_t port) {
    if (address.find(':') != std::string::npos) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&storage);
      sa->sin6_family = family = AF_INET6;
      sa->sin6_port = htons(port);
      inet_pton(AF_INET6, address.c_str(), &sa->sin6_addr);
      length = sizeof *sa;
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&storage);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(port);
      inet_pton(AF_INET, address.c_str(), &sa->sin_addr);
      length = sizeof *sa;
    }
  }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

std::uint16_t boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

std::uint16_t freePort(const std::string& address) {
  SocketAddress sa(address, 0);
  int fd = ::socket(sa.family, SOCK_STREAM, 0);
  ::bind(fd, sa.get(), sa.length);
  const auto port = boundPort(fd);
  ::close(fd);
  return port;
}

// Accepts one connection, sends `greeting` at once (as SMTP, POP3 and IMAP servers speak
// first), then keeps everything it receives until the client half-closes.
class RecordingServer {
 public:
  RecordingServer(const std::string& address, std::string greeting) : address_(address) {
    SocketAddress sa(address, 0);
    listenFd_ = ::socket(sa.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(listenFd_, sa.get(), sa.length) != 0 || ::listen(listenFd_, 16) != 0)
      throw std::runtime_error("the recording server cannot listen on " + address);
    port_ = boundPort(listenFd_);
    thread_ = std::thread([this, greeting = std::move(greeting)] {
      pollfd p{listenFd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return received_.set_value({});
      const int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
      ::send(fd, greeting.data(), greeting.size(), MSG_NOSIGNAL);
      std::string all;
      char buffer[4096];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) all.append(buffer, static_cast<std::size_t>(n));
      ::close(fd);
      received_.set_value(all);
    });
  }
  ~RecordingServer() {
    thread_.join();
    ::close(listenFd_);
  }
  std::uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  // Every byte of the one connection, once the client has finished sending.
  std::string received() {
    auto f = received_.get_future();
    return f.wait_for(5s) == std::future_status::ready ? f.get() : std::string("(nothing within 5 s)");
  }

 private:
  std::string address_;
  int listenFd_ = -1;
  std::uint16_t port_ = 0;
  std::promise<std::string> received_;
  std::thread thread_;
};

// What a client sees: connects from `source` to `address`:`port`, reads the greeting,
// sends `payload`, half-closes. Returns the client's own port and the greeting.
struct ClientRun {
  std::uint16_t sourcePort = 0;
  std::string greeting;
};
ClientRun runClient(const std::string& source, const std::string& address, std::uint16_t port,
                    const std::string& expectGreeting, const std::string& payload) {
  SocketAddress from(source, 0), to(address, port);
  const int fd = ::socket(to.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ClientRun run;
  if (::bind(fd, from.get(), from.length) != 0 || ::connect(fd, to.get(), to.length) != 0) {
    ::close(fd);
    return run;
  }
  run.sourcePort = boundPort(fd);
  std::vector<char> buffer(expectGreeting.size());
  std::size_t got = 0;
  while (got < buffer.size()) {
    const ssize_t n = ::recv(fd, buffer.data() + got, buffer.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  run.greeting.assign(buffer.data(), got);
  ::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  char rest[64];
  while (::recv(fd, rest, sizeof rest, 0) > 0) {
  }
  ::close(fd);
  return run;
}

VirtualService proxiedService(const std::string& address, std::uint16_t port, const RecordingServer& real,
                              ProxyProtocol proxy = ProxyProtocol::V2) {
  VirtualService s;
  s.address = address;
  s.family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  s.port = port;
  s.scheduler = "rr";
  s.proxyProtocol = proxy;
  RealServer r;
  r.address = real.address();
  r.port = real.port();
  s.reals = {r};
  return s;
}

// Bytes no text protocol would send, a NUL and CR LF among them, so the payload is seen to
// pass byte for byte after the header.
const std::string kPayload = std::string("EHLO client\r\n\0\x01\xff tail", 21);

TEST(ProxyProtocolV2, HeaderCarriesTheIpv4ClientAndVirtualServiceThenTheClientsBytes) {
  UserspaceDataplane plane;
  RecordingServer real("127.0.0.1", "220 hello\r\n");
  const auto vip = freePort("127.0.0.3");
  plane.apply({proxiedService("127.0.0.3", vip, real)});

  const auto client = runClient("127.0.0.5", "127.0.0.3", vip, "220 hello\r\n", kPayload);
  ASSERT_NE(client.sourcePort, 0) << "the client could not connect through the dataplane";
  EXPECT_EQ(client.greeting, "220 hello\r\n") << "the real server's bytes reach the client unchanged";
  const auto h = shoal::test::parseProxyProtocolV2(real.received());
  ASSERT_TRUE(h.valid) << h.error;
  EXPECT_EQ(h.family, AF_INET);
  EXPECT_EQ(h.source, "127.0.0.5");
  EXPECT_EQ(h.sourcePort, client.sourcePort);
  EXPECT_EQ(h.destination, "127.0.0.3");
  EXPECT_EQ(h.destinationPort, vip);
  EXPECT_EQ(h.rest, kPayload);
}

TEST(ProxyProtocolV2, HeaderCarriesTheIpv6ClientAndVirtualService) {
  UserspaceDataplane plane;
  RecordingServer real("::1", "+OK\r\n");
  const auto vip = freePort("::1");
  plane.apply({proxiedService("::1", vip, real)});

  const auto client = runClient("::1", "::1", vip, "+OK\r\n", kPayload);
  ASSERT_NE(client.sourcePort, 0);
  const auto h = shoal::test::parseProxyProtocolV2(real.received());
  ASSERT_TRUE(h.valid) << h.error;
  EXPECT_EQ(h.family, AF_INET6);
  EXPECT_EQ(h.source, "::1");
  EXPECT_EQ(h.sourcePort, client.sourcePort);
  EXPECT_EQ(h.destination, "::1");
  EXPECT_EQ(h.destinationPort, vip);
  EXPECT_EQ(h.rest, kPayload);
}

TEST(ProxyProtocolV2, WithoutTheSettingTheRealServerGetsOnlyTheClientsBytes) {
  UserspaceDataplane plane;
  RecordingServer real("127.0.0.1", "220 hello\r\n");
  const auto vip = freePort("127.0.0.3");
  plane.apply({proxiedService("127.0.0.3", vip, real, ProxyProtocol::None)});
  runClient("127.0.0.5", "127.0.0.3", vip, "220 hello\r\n", kPayload);
  EXPECT_EQ(real.received(), kPayload);
}

// Turned on by an edit of a service that keeps its listeners: the next connection has it.
TEST(ProxyProtocolV2, AnEditTurnsItOnForTheNextConnection) {
  UserspaceDataplane plane;
  const auto vip = freePort("127.0.0.3");
  {
    RecordingServer real("127.0.0.1", "");
    plane.apply({proxiedService("127.0.0.3", vip, real, ProxyProtocol::None)});
    runClient("127.0.0.5", "127.0.0.3", vip, "", "plain");
    EXPECT_EQ(real.received(), "plain");
  }
  RecordingServer real("127.0.0.1", "");
  const auto report = plane.apply({proxiedService("127.0.0.3", vip, real)});
  EXPECT_EQ(report.servicesEdited, 1u);
  const auto client = runClient("127.0.0.5", "127.0.0.3", vip, "", "proxied");
  const auto h = shoal::test::parseProxyProtocolV2(real.received());
  ASSERT_TRUE(h.valid) << h.error;
  EXPECT_EQ(h.source, "127.0.0.5");
  EXPECT_EQ(h.sourcePort, client.sourcePort);
  EXPECT_EQ(h.rest, "proxied");
}

TEST(ProxyProtocolV2, MappedAndMixedFamiliesAreWrittenAsTheSpecificationAsks) {
  using boost::asio::ip::make_address;
  using boost::asio::ip::tcp;
  const auto mapped = userspace::proxyProtocolV2Header({make_address("::ffff:192.0.2.7"), 4000},
                                                       {make_address("::ffff:192.0.2.10"), 25});
  const auto h = shoal::test::parseProxyProtocolV2(std::string(mapped.begin(), mapped.end()));
  ASSERT_TRUE(h.valid) << h.error;
  EXPECT_EQ(h.family, AF_INET);
  EXPECT_EQ(h.source, "192.0.2.7");
  EXPECT_EQ(h.destination, "192.0.2.10");
  EXPECT_EQ(mapped.size(), 16u + 12u);

  const auto mixed = userspace::proxyProtocolV2Header({make_address("192.0.2.7"), 4000},
                                                      {make_address("2001:db8::10"), 25});
  const auto m = shoal::test::parseProxyProtocolV2(std::string(mixed.begin(), mixed.end()));
  ASSERT_TRUE(m.valid) << m.error;
  EXPECT_EQ(m.family, AF_INET6);
  EXPECT_EQ(m.source, "::ffff:192.0.2.7");
  EXPECT_EQ(m.destination, "2001:db8::10");
  EXPECT_EQ(m.sourcePort, 4000);
  EXPECT_EQ(m.destinationPort, 25);
  EXPECT_EQ(mixed.size(), 16u + 36u);
}

}  // namespace
