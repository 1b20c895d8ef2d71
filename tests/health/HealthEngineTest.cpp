// The engine's schedule and state machine against real peers on 127.0.0.1.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "LoopbackServer.hpp"
#include "health/HealthEngine.hpp"

namespace shoal::health {
namespace {

using namespace std::chrono_literals;
using test::Behaviour;
using test::LoopbackServer;
using Clock = std::chrono::steady_clock;

constexpr const char* kGood = "220 ready\r\n";
constexpr const char* kBad = "554 go away\r\n";

HealthDefaults fastDefaults(std::uint32_t fall = 3, std::uint32_t rise = 2) {
  HealthDefaults d;
  d.interval = 50ms;
  d.timeout = 1000ms;
  d.fall = fall;
  d.rise = rise;
  return d;
}

HealthTarget bannerTarget(const std::string& nodeId, std::uint16_t port) {
  HealthTarget t;
  t.nodeId = nodeId;
  t.address = "127.0.0.1";
  t.port = port;
  t.probe.service = "smtp";
  t.probe.kind = SHOAL_PROBE_TCP;
  t.probe.steps = {{"", "220"}};
  return t;
}

// Collects every change a subscriber sees.
class Recorder {
 public:
  void attach(HealthEngine& engine) {
    engine.subscribe([this](const HealthChange& change) {
      std::lock_guard lock(mutex_);
      changes_.push_back(change);
      cv_.notify_all();
    });
  }
  // Waits until `count` changes arrived (or `limit` passed); returns them all.
  std::vector<HealthChange> waitFor(std::size_t count, std::chrono::milliseconds limit = 5000ms) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return changes_.size() >= count; });
    return changes_;
  }
  std::vector<HealthChange> all() {
    std::lock_guard lock(mutex_);
    return changes_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<HealthChange> changes_;
};

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit = 5000ms) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
}

TEST(HealthEngine, StateNamesAreStable) {
  EXPECT_STREQ(healthStateName(HealthState::Unknown), "unknown");
  EXPECT_STREQ(healthStateName(HealthState::Healthy), "healthy");
  EXPECT_STREQ(healthStateName(HealthState::Unhealthy), "unhealthy");
}

// The same schedule on one event-loop thread and on two (per-target order holds on both).
class HealthEngineThreads : public ::testing::TestWithParam<unsigned> {};
INSTANTIATE_TEST_SUITE_P(Threads, HealthEngineThreads, ::testing::Values(1u, 2u));

TEST_P(HealthEngineThreads, FallThreeRiseTwoGivesExactTransitionsInOrder) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer server(b);
  HealthEngine engine(fastDefaults(3, 2), GetParam());
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("7", server.port())});
  ASSERT_EQ(engine.status("7", "smtp")->state, HealthState::Unknown);
  engine.start();

  auto changes = recorder.waitFor(1);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].previous, HealthState::Unknown);
  EXPECT_EQ(changes[0].status.state, HealthState::Healthy);
  EXPECT_EQ(changes[0].status.checks, 1u) << "the first result decides";
  EXPECT_EQ(changes[0].status.nodeId, "7");
  EXPECT_EQ(changes[0].status.service, "smtp");
  EXPECT_EQ(changes[0].status.port, server.port());

  std::this_thread::sleep_for(200ms);  // a few more good probes: no change
  EXPECT_EQ(recorder.all().size(), 1u);

  server.setGreeting(kBad);
  changes = recorder.waitFor(2);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].previous, HealthState::Healthy);
  EXPECT_EQ(changes[1].status.state, HealthState::Unhealthy);
  EXPECT_EQ(changes[1].status.consecutiveFailures, 3u);
  EXPECT_EQ(changes[1].status.consecutiveSuccesses, 0u);
  EXPECT_EQ(changes[1].status.lastError, R"(expected "220" but got "554 go away")");

  server.setGreeting(kGood);
  changes = recorder.waitFor(3);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].previous, HealthState::Unhealthy);
  EXPECT_EQ(changes[2].status.state, HealthState::Healthy);
  EXPECT_EQ(changes[2].status.consecutiveSuccesses, 2u);
  EXPECT_EQ(changes[2].status.effectiveRise, 2u);
  EXPECT_EQ(changes[2].status.lastError, "");
  EXPECT_GT(changes[2].status.checks, changes[1].status.checks + 1);

  std::this_thread::sleep_for(200ms);
  engine.stop();
  EXPECT_EQ(recorder.all().size(), 3u) << "no change without a cause";
  const auto status = engine.status("7", "smtp");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->state, HealthState::Healthy);
  EXPECT_GE(status->checks, changes[2].status.checks + 2);
  // Probes are spaced by the interval: ~20 per second at 50 ms.
  EXPECT_LE(status->checks, static_cast<std::uint64_t>(server.accepted()));
}

TEST(HealthEngine, HttpProbesFollowTheStatus) {
  Behaviour ok, unavailable;
  ok.httpResponse = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  unavailable.httpResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
  LoopbackServer good(ok), bad(unavailable);
  HealthEngine engine(fastDefaults(2, 2));
  Recorder recorder;
  recorder.attach(engine);
  auto target = [](const std::string& node, std::uint16_t port) {
    HealthTarget t;
    t.nodeId = node;
    t.address = "127.0.0.1";
    t.port = port;
    t.probe.service = "http";
    t.probe.kind = SHOAL_PROBE_HTTP;
    t.probe.httpPath = "/";
    t.probe.httpExpectStatus = 200;
    return t;
  };
  engine.setTargets({target("1", good.port()), target("2", bad.port())});
  engine.start();
  ASSERT_EQ(recorder.waitFor(2).size(), 2u);
  EXPECT_EQ(engine.status("1", "http")->state, HealthState::Healthy);
  EXPECT_EQ(engine.status("2", "http")->state, HealthState::Unhealthy);
  EXPECT_EQ(engine.status("2", "http")->lastError, "HTTP status 503, expected 200");
}

TEST(HealthEngine, ProbesOfOneTargetNeverOverlapWhenTheTimeoutExceedsTheInterval) {
  Behaviour silent;
  silent.silent = true;
  LoopbackServer server(silent);
  auto defaults = fastDefaults(1, 1);
  defaults.interval = 20ms;
  defaults.timeout = 150ms;
  HealthEngine engine(defaults);
  engine.setTargets({bannerTarget("1", server.port())});
  engine.start();
  std::this_thread::sleep_for(1000ms);
  engine.stop();
  const auto status = engine.status("1", "smtp");
  EXPECT_EQ(status->state, HealthState::Unhealthy);
  EXPECT_EQ(status->lastError, R"(timed out after 150 ms waiting for "220")");
  EXPECT_GE(status->lastDuration, 150ms);
  // About 1000 / 150 probes, one after another: never one per 20 ms interval.
  EXPECT_GE(status->checks, 4u);
  EXPECT_LE(status->checks, 7u);
  EXPECT_LE(server.accepted(), static_cast<int>(status->checks) + 1);
}

TEST(HealthEngine, FirstFailureDecidesFromUnknown) {
  HealthEngine engine(fastDefaults(3, 2));
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("1", test::deadPort())});
  engine.start();
  auto changes = recorder.waitFor(1);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].previous, HealthState::Unknown);
  EXPECT_EQ(changes[0].status.state, HealthState::Unhealthy);
  EXPECT_EQ(changes[0].status.checks, 1u);
  EXPECT_EQ(changes[0].status.lastError, "connection refused");
}

TEST(HealthEngine, SetTargetsKeepsStateOfKeptKeysAndStopsRemovedOnes) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer kept(b), removed(b), added(b);
  HealthEngine engine(fastDefaults(3, 2));
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("1", kept.port()), bannerTarget("2", removed.port())});
  engine.start();
  ASSERT_TRUE(eventually([&] { return recorder.all().size() == 2; }));
  ASSERT_TRUE(eventually([&] { return engine.status("1", "smtp")->checks >= 4; }));
  const auto before = *engine.status("1", "smtp");

  engine.setTargets({bannerTarget("1", kept.port()), bannerTarget("3", added.port())});
  EXPECT_FALSE(engine.status("2", "smtp").has_value());
  const auto after = engine.status("1", "smtp");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, HealthState::Healthy);
  EXPECT_GE(after->checks, before.checks);
  EXPECT_EQ(after->lastChange, before.lastChange);
  EXPECT_EQ(engine.status("3", "smtp")->state, HealthState::Unknown);

  // The removed target's probes stop (one may have been in flight).
  std::this_thread::sleep_for(100ms);
  const int removedAccepts = removed.accepted();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(removed.accepted(), removedAccepts);

  ASSERT_TRUE(eventually([&] { return engine.status("3", "smtp")->state == HealthState::Healthy; }));
  EXPECT_GT(engine.status("1", "smtp")->checks, before.checks);
  engine.stop();
  const auto changes = recorder.all();
  ASSERT_EQ(changes.size(), 3u) << "kept target reported no new change";
  EXPECT_EQ(changes[2].status.nodeId, "3");
  EXPECT_EQ(engine.snapshot().size(), 2u);
}

TEST(HealthEngine, SetTargetsUpdatesTheDescriptionOfAKeptKey) {
  Behaviour good, bad;
  good.greeting = kGood;
  bad.greeting = kBad;
  LoopbackServer first(good), second(bad);
  HealthEngine engine(fastDefaults(1, 1));
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("1", first.port())});
  engine.start();
  ASSERT_EQ(recorder.waitFor(1).size(), 1u);
  engine.setTargets({bannerTarget("1", second.port())});
  EXPECT_EQ(engine.status("1", "smtp")->port, second.port());
  const auto changes = recorder.waitFor(2);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].status.state, HealthState::Unhealthy);
  EXPECT_EQ(changes[1].status.port, second.port());
}

TEST(HealthEngine, FlappingRaisesEffectiveRiseAndItDecaysWhenStable) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer server(b);
  auto defaults = fastDefaults(1, 1);
  defaults.interval = 20ms;
  defaults.flapWindow = 1500ms;
  defaults.flapThreshold = 4;
  defaults.flapMaxFactor = 4;
  HealthEngine engine(defaults);
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("1", server.port())});
  engine.start();
  ASSERT_EQ(recorder.waitFor(1).size(), 1u);  // Unknown -> Healthy: not a flap

  // Five changes within the window: bad, good, bad, good, bad.
  for (std::size_t i = 0; i < 5; ++i) {
    server.setGreeting(i % 2 == 0 ? kBad : kGood);
    ASSERT_EQ(recorder.waitFor(i + 2).size(), i + 2);
  }
  auto status = engine.status("1", "smtp");
  EXPECT_EQ(status->state, HealthState::Unhealthy);
  EXPECT_EQ(status->effectiveRise, 2u) << "5 changes, threshold 4: rise x2";

  server.setGreeting(kGood);
  auto changes = recorder.waitFor(7);
  ASSERT_EQ(changes.size(), 7u);
  EXPECT_EQ(changes[6].status.state, HealthState::Healthy);
  EXPECT_EQ(changes[6].status.consecutiveSuccesses, 2u) << "the damped rise was needed to come back";
  EXPECT_EQ(changes[6].status.effectiveRise, 3u) << "6 changes: rise x3";

  // Stable for longer than the window: the damping decays back to the plain rise.
  ASSERT_TRUE(eventually([&] { return engine.status("1", "smtp")->effectiveRise == 1u; }, 3000ms));
  engine.stop();
}

TEST(HealthEngine, EffectiveRiseIsCapped) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer server(b);
  auto defaults = fastDefaults(1, 1);
  defaults.interval = 10ms;
  defaults.flapThreshold = 1;
  defaults.flapMaxFactor = 3;
  HealthEngine engine(defaults);
  Recorder recorder;
  recorder.attach(engine);
  engine.setTargets({bannerTarget("1", server.port())});
  engine.start();
  ASSERT_EQ(recorder.waitFor(1).size(), 1u);
  for (std::size_t i = 0; i < 8; ++i) {
    server.setGreeting(i % 2 == 0 ? kBad : kGood);
    ASSERT_EQ(recorder.waitFor(i + 2).size(), i + 2);
  }
  EXPECT_EQ(engine.status("1", "smtp")->effectiveRise, 3u);
  engine.stop();
}

TEST(HealthEngine, StopWithManyProbesInFlightReturnsPromptlyAndSilencesSubscribers) {
  Behaviour silent;
  silent.silent = true;
  LoopbackServer server(silent);
  auto defaults = fastDefaults();
  defaults.interval = 200ms;
  defaults.timeout = 10s;
  HealthEngine engine(defaults, 2);
  std::atomic<int> calls{0};
  std::atomic<bool> stopped{false};
  std::atomic<int> callsAfterStop{0};
  engine.subscribe([&](const HealthChange&) {
    calls++;
    if (stopped) callsAfterStop++;
  });
  std::vector<HealthTarget> targets;
  for (int i = 0; i < 500; ++i) targets.push_back(bannerTarget(std::to_string(i), server.port()));
  engine.setTargets(targets);
  engine.start();
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 500; })) << server.accepted();

  const auto start = Clock::now();
  engine.stop();
  stopped = true;
  EXPECT_LT(Clock::now() - start, 1s);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(calls.load(), 0) << "every probe was still waiting";
  EXPECT_EQ(callsAfterStop.load(), 0);
  for (const auto& s : engine.snapshot()) EXPECT_EQ(s.state, HealthState::Unknown);
}

TEST(HealthEngine, ThousandTargetsAreSpreadOverTheFirstInterval) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer server(b);
  auto defaults = fastDefaults();
  defaults.interval = 1000ms;
  HealthEngine engine(defaults);
  std::vector<HealthTarget> targets;
  for (int i = 0; i < 1000; ++i) targets.push_back(bannerTarget(std::to_string(i), server.port()));
  engine.setTargets(targets);
  engine.start();
  std::this_thread::sleep_for(250ms);
  const int early = server.accepted();
  EXPECT_GT(early, 100);
  EXPECT_LT(early, 450) << "first probes spread over the interval, not fired together";
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : engine.snapshot())
      if (s.state != HealthState::Healthy) return false;
    return true;
  }));
  engine.stop();
}

TEST(HealthEngine, RestartsAfterStopKeepingState) {
  Behaviour b;
  b.greeting = kGood;
  LoopbackServer server(b);
  HealthEngine engine(fastDefaults());
  engine.setTargets({bannerTarget("1", server.port())});
  engine.start();
  ASSERT_TRUE(eventually([&] { return engine.status("1", "smtp")->checks >= 2; }));
  engine.stop();
  const auto checks = engine.status("1", "smtp")->checks;
  engine.start();
  ASSERT_TRUE(eventually([&] { return engine.status("1", "smtp")->checks >= checks + 2; }));
  EXPECT_EQ(engine.status("1", "smtp")->state, HealthState::Healthy);
}

TEST(HealthEngine, ProbeOnceChangesNoState) {
  Behaviour b;
  b.greeting = kBad;
  LoopbackServer server(b);
  HealthEngine engine(fastDefaults());
  engine.setTargets({bannerTarget("1", server.port())});
  EXPECT_NE(engine.probeOnce(bannerTarget("1", server.port())), "");
  EXPECT_EQ(engine.status("1", "smtp")->checks, 0u);
  EXPECT_EQ(engine.status("1", "smtp")->state, HealthState::Unknown);
}

}  // namespace
}  // namespace shoal::health
