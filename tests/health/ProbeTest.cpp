// One probe at a time (HealthEngine::probeOnce) against real peers on 127.0.0.1.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <thread>

#include "LoopbackServer.hpp"
#include "health/HealthEngine.hpp"
#include "health/Probe.hpp"

namespace shoal::health {
namespace {

using namespace std::chrono_literals;
using test::Behaviour;
using test::LoopbackServer;
using Clock = std::chrono::steady_clock;

HealthTarget tcpTarget(std::uint16_t port, std::vector<std::pair<std::string, std::string>> steps,
                       std::uint32_t timeoutMs = 2000, std::string address = "127.0.0.1") {
  HealthTarget t;
  t.nodeId = "1";
  t.address = std::move(address);
  t.port = port;
  t.probe.service = "smtp";
  t.probe.kind = SHOAL_PROBE_TCP;
  t.probe.timeoutMs = timeoutMs;
  t.probe.steps = std::move(steps);
  return t;
}

HealthTarget httpTarget(std::uint16_t port, std::uint32_t expectStatus) {
  HealthTarget t;
  t.nodeId = "1";
  t.address = "127.0.0.1";
  t.port = port;
  t.probe.service = "http";
  t.probe.kind = SHOAL_PROBE_HTTP;
  t.probe.timeoutMs = 2000;
  t.probe.httpMethod = "GET";
  t.probe.httpPath = "/health";
  t.probe.httpExpectStatus = expectStatus;
  return t;
}

Behaviour banner(std::string greeting) {
  Behaviour b;
  b.greeting = std::move(greeting);
  return b;
}

// An SMTP-like exchange: the EHLO reply is multi-line and goes out in two segments.
Behaviour smtpLike() {
  Behaviour b;
  b.greeting = "220 mail.example ESMTP\r\n";
  b.reply = [](const std::string& line) -> std::vector<std::string> {
    if (line.rfind("EHLO ", 0) == 0) return {"250-mail.example\r\n", "250-PIPELINING\r\n250 8BITMIME\r\n"};
    if (line == "QUIT") return {"221 2.0.0 Bye\r\n"};
    return {"500 what?\r\n"};
  };
  return b;
}

const std::vector<std::pair<std::string, std::string>> kSmtpSteps = {
    {"", "220"}, {"EHLO shoal\r\n", "250"}, {"QUIT\r\n", "221"}};

TEST(Probe, BannerThatMatchesSucceeds) {
  LoopbackServer server(banner("220 ready\r\n"));
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), {{"", "220"}})), "");
  EXPECT_EQ(server.accepted(), 1);
}

TEST(Probe, ConnectOnlyProbeSucceedsOnASilentPeer) {
  Behaviour silent;
  silent.silent = true;
  LoopbackServer server(silent);
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), {})), "");
}

TEST(Probe, DeadPortIsRefused) {
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(tcpTarget(test::deadPort(), {{"", "220"}})), "connection refused");
}

TEST(Probe, WrongBannerFailsFastNamingBoth) {
  LoopbackServer server(banner("554 go away\r\n"));
  HealthEngine engine;
  const auto start = Clock::now();
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), {{"", "220"}}, 5000)), R"(expected "220" but got "554 go away")");
  EXPECT_LT(Clock::now() - start, 1s) << "a reply that cannot match must not wait for the timeout";
}

TEST(Probe, SilentPeerTimesOutAtTheTimeoutNotLater) {
  Behaviour silent;
  silent.silent = true;
  LoopbackServer server(silent);
  HealthEngine engine;
  const auto start = Clock::now();
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), {{"", "220"}}, 300)), R"(timed out after 300 ms waiting for "220")");
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 800ms);
}

TEST(Probe, PeerThatClosesAtOnceIsReported) {
  Behaviour closing;
  closing.closeAtOnce = true;
  LoopbackServer server(closing);
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), {{"", "+OK"}})), R"(connection closed by peer before "+OK")");
}

TEST(Probe, MultiStepExchangeReadsMultiLineRepliesWhole) {
  LoopbackServer server(smtpLike());
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), kSmtpSteps)), "");
}

TEST(Probe, MultiStepExchangeFailsOnTheStepThatDoesNotMatch) {
  LoopbackServer server(smtpLike());
  HealthEngine engine;
  auto steps = kSmtpSteps;
  steps[1] = {"HELO shoal\r\n", "250"};
  EXPECT_EQ(engine.probeOnce(tcpTarget(server.port(), steps)), R"(expected "250" but got "500 what?")");
}

TEST(Probe, TlsBannerSucceedsWithoutVerificationAndSendsSniForNames) {
  LoopbackServer server(banner("+OK ready\r\n"), test::makeSelfSignedServerContext());
  HealthEngine engine;
  auto target = tcpTarget(server.port(), {{"", "+OK"}});
  target.probe.tls = true;
  EXPECT_EQ(engine.probeOnce(target), "");
  EXPECT_EQ(server.lastServerName(), "") << "no SNI for an IP literal";

  target.address = "localhost";
  EXPECT_EQ(engine.probeOnce(target), "");
  EXPECT_EQ(server.lastServerName(), "localhost");
}

TEST(Probe, TlsProbeOfAPlainServerFailsInTheHandshake) {
  LoopbackServer server(banner("220 plain text here\r\n"));
  HealthEngine engine;
  auto target = tcpTarget(server.port(), {{"", "220"}});
  target.probe.tls = true;
  const auto error = engine.probeOnce(target);
  EXPECT_EQ(error.rfind("TLS handshake failed: ", 0), 0u) << error;
}

TEST(Probe, TlsHandshakeWithASilentPeerTimesOut) {
  Behaviour silent;
  silent.silent = true;
  LoopbackServer server(silent);
  HealthEngine engine;
  auto target = tcpTarget(server.port(), {{"", "220"}}, 200);
  target.probe.tls = true;
  EXPECT_EQ(engine.probeOnce(target), "timed out after 200 ms in the TLS handshake");
}

TEST(Probe, Http200SucceedsAndTheRequestIsWellFormed) {
  Behaviour http;
  http.httpResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  LoopbackServer server(http);
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(httpTarget(server.port(), 200)), "");
  const auto request = server.lastRequest();
  EXPECT_EQ(request.rfind("GET /health HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nConnection: close\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nUser-Agent: shoal-health/1"), std::string::npos) << request;
}

TEST(Probe, HttpHostHeaderComesFromTheProbeWhenSet) {
  Behaviour http;
  http.httpResponse = "HTTP/1.0 200 OK\r\n\r\n";
  LoopbackServer server(http);
  HealthEngine engine;
  auto target = httpTarget(server.port(), 200);
  target.probe.httpHost = "www.example.com";
  EXPECT_EQ(engine.probeOnce(target), "");
  EXPECT_NE(server.lastRequest().find("\r\nHost: www.example.com\r\n"), std::string::npos);
}

TEST(Probe, Http503FailsWithBothStatuses) {
  Behaviour http;
  http.httpResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
  LoopbackServer server(http);
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(httpTarget(server.port(), 200)), "HTTP status 503, expected 200");
  EXPECT_EQ(engine.probeOnce(httpTarget(server.port(), 0)), "HTTP status 503, expected 2xx or 3xx");
}

TEST(Probe, HttpGarbageIsAMalformedStatusLine) {
  Behaviour http;
  http.httpResponse = "garbage\r\n\r\n";
  LoopbackServer server(http);
  HealthEngine engine;
  EXPECT_EQ(engine.probeOnce(httpTarget(server.port(), 200)), R"(malformed HTTP status line: "garbage")");
}

TEST(Probe, HttpOverTls) {
  Behaviour http;
  http.httpResponse = "HTTP/1.1 204 No Content\r\n\r\n";
  LoopbackServer server(http, test::makeSelfSignedServerContext());
  HealthEngine engine;
  auto target = httpTarget(server.port(), 204);
  target.probe.tls = true;
  EXPECT_EQ(engine.probeOnce(target), "");
}

TEST(Probe, UnresolvableNameIsReported) {
  HealthEngine engine;
  const auto error = engine.probeOnce(tcpTarget(25, {}, 2000, "no-such-host.invalid"));
  EXPECT_EQ(error.rfind(R"(cannot resolve "no-such-host.invalid": )", 0), 0u) << error;
}

// The deadline can expire in the same turn of the event loop that completes the last step:
// the reply's handler runs first and finishes the probe, and the timer's completion, already
// taken off the timer queue, runs after it with no error. That late completion is not a
// timeout: the probe succeeded, once, and nothing reads past the last step (the timeout
// message used to index the steps with a step count one past the end, reading freed or
// foreign memory, which crashed the manager with SIGSEGV or SIGBUS when slow greetings made
// the race frequent).
TEST(Probe, DeadlineExpiringInTheTurnThatCompletesTheLastStepIsNotATimeout) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto tls = makeProbeTlsContext();
  ProbeSpec spec;
  spec.host = "127.0.0.1";
  spec.port = acceptor.local_endpoint().port();
  spec.steps = {{"", "+OK"}};
  spec.timeout = 200ms;
  int calls = 0;
  std::string result = "not called";
  const auto started = Clock::now();
  auto run = ProbeRun::start(io.get_executor(), tls, spec, [&](const std::string& error) {
    ++calls;
    result = error;
  });
  tcp::socket peer = acceptor.accept();  // the loopback handshake needs no event loop
  // Connected and waiting for the greeting, well before the deadline.
  for (int i = 0; i < 20; ++i) {
    io.poll();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(calls, 0) << result;
  ASSERT_LT(Clock::now() - started, 150ms) << "too slow to set up the race";
  asio::write(peer, asio::buffer(std::string("+OK ready\r\n")));
  // The greeting is in and the deadline has passed before the loop looks again, so one
  // wake-up sees both: the socket first, then the expired timer.
  std::this_thread::sleep_until(started + 350ms);
  io.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result, "");
}

}  // namespace
}  // namespace shoal::health
