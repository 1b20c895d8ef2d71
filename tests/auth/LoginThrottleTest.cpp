#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "AuthTest.hpp"
#include "auth/LoginThrottle.hpp"

using namespace std::chrono_literals;

namespace shoal::auth::test {
namespace {

class Throttle : public ::testing::Test {
 protected:
  ManualClock time;
  LoginThrottle throttle{ThrottlePolicy{}, time.clock()};

  void fail(const std::string& peer, const std::string& user, int times = 1) {
    for (int i = 0; i < times; ++i) throttle.recordFailure(peer, user);
  }
};

TEST_F(Throttle, FiveFailuresLockTheUserNameFromEveryAddress) {
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  fail("192.0.2.7", "alice", 4);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  fail("192.0.2.7", "alice");
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 300s);
  EXPECT_EQ(throttle.retryAfter("198.51.100.1", "alice"), 300s)
      << "the name is locked, not the address";
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "bob"), std::nullopt) << "other names still may try";
  time.advance(100s);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 200s);
}

TEST_F(Throttle, TwentyFailuresFromOneAddressLockItForEveryName) {
  for (int i = 0; i < 19; ++i) fail("192.0.2.7", "user" + std::to_string(i));
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "user3"), std::nullopt) << "one failure each";
  time.advance(10s);
  fail("192.0.2.7", "user19");
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 290s) << "until the first failure leaves";
  EXPECT_EQ(throttle.retryAfter("198.51.100.1", "alice"), std::nullopt) << "other addresses may";
  time.advance(290s);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
}

TEST_F(Throttle, TheWindowSlides) {
  for (int i = 0; i < 5; ++i) {
    if (i > 0) time.advance(60s);
    fail("192.0.2.7", "alice");
  }
  // Failures at 0, 60, 120, 180 and 240 s: locked until the one at 0 s is 300 s old.
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 60s);
  time.advance(59s);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 1s);
  time.advance(500ms);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 1s) << "rounded up";
  time.advance(500ms);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  // One more failure makes five in the window again, locked until the one at 60 s leaves.
  fail("192.0.2.7", "alice");
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 60s);
  time.advance(10min);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  EXPECT_EQ(throttle.trackedUsers(), 0u) << "forgotten once out of the window";
}

TEST_F(Throttle, ASuccessClearsTheNameButNotTheAddress) {
  fail("192.0.2.7", "alice", 4);
  throttle.recordSuccess("192.0.2.7", "alice");
  fail("192.0.2.7", "alice", 4);
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), std::nullopt);
  fail("192.0.2.7", "alice");
  EXPECT_EQ(throttle.retryAfter("192.0.2.7", "alice"), 300s);

  // An attacker with one valid account cannot reset its address's count with it.
  for (int i = 0; i < 19; ++i) {
    fail("203.0.113.5", "victim" + std::to_string(i));
    throttle.recordSuccess("203.0.113.5", "mallory");
  }
  EXPECT_EQ(throttle.retryAfter("203.0.113.5", "victim0"), std::nullopt);
  fail("203.0.113.5", "victim0");
  EXPECT_EQ(throttle.retryAfter("203.0.113.5", "mallory"), 300s);
}

TEST_F(Throttle, EmptyNamesAndAddressesAreNotTracked) {
  fail("", "", 50);
  EXPECT_EQ(throttle.retryAfter("", ""), std::nullopt);
  EXPECT_EQ(throttle.trackedUsers(), 0u);
  EXPECT_EQ(throttle.trackedPeers(), 0u);
  fail("", "alice", 5);
  EXPECT_EQ(throttle.retryAfter("", "alice"), 300s);
}

TEST(ThrottleMemory, TrackedKeysAreCappedForgettingTheOldestThatHoldNoLock) {
  ManualClock time;
  LoginThrottle throttle(ThrottlePolicy{2, 1000, 300s, 100}, time.clock());
  for (int i = 0; i < 1000; ++i) {
    throttle.recordFailure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                           "user" + std::to_string(i));
    time.advance(1ms);
  }
  EXPECT_EQ(throttle.trackedUsers(), 100u);
  EXPECT_EQ(throttle.trackedPeers(), 100u);
  throttle.recordFailure("", "user999");
  EXPECT_NE(throttle.retryAfter("", "user999"), std::nullopt);
  throttle.recordFailure("", "user899");
  EXPECT_EQ(throttle.retryAfter("", "user899"), std::nullopt) << "its first failure was forgotten";

  // Names that each hold a lock (one failure is a lock at limit 1) are all kept: a new name
  // finds no room rather than releasing one of them.
  LoginThrottle locks(ThrottlePolicy{1, 1000, 300s, 100}, time.clock());
  for (int i = 0; i < 1000; ++i) locks.recordFailure("", "user" + std::to_string(i));
  EXPECT_EQ(locks.trackedUsers(), 100u);
  EXPECT_NE(locks.retryAfter("", "user0"), std::nullopt) << "the oldest lock is still held";
  EXPECT_NE(locks.retryAfter("", "user99"), std::nullopt);
  EXPECT_EQ(locks.retryAfter("", "user100"), std::nullopt) << "no room for it";
  // Once the locks run out they make room again.
  time.advance(301s);
  locks.recordFailure("", "late");
  EXPECT_NE(locks.retryAfter("", "late"), std::nullopt);
  EXPECT_EQ(locks.trackedUsers(), 100u);

  LoginThrottle defaults(ThrottlePolicy{}, time.clock());
  for (int i = 0; i < 20000; ++i) defaults.recordFailure("192.0.2.7", "u" + std::to_string(i));
  EXPECT_EQ(defaults.trackedUsers(), 10000u);
  EXPECT_EQ(defaults.trackedPeers(), 1u);
  // A huge name is tracked by its first 256 bytes only.
  LoginThrottle small(ThrottlePolicy{}, time.clock());
  for (int i = 0; i < 5; ++i) small.recordFailure("", std::string(100000, 'a') + std::to_string(i));
  EXPECT_NE(small.retryAfter("", std::string(256, 'a')), std::nullopt);
}

// The attack that flushed the old tracker: with one account locked, 500 addresses send
// invalid names until each address is refused. Every failure counts for its address, so each
// is locked after 20; the names fill the tracker but never push the lock out.
TEST(ThrottleFlush, FiveHundredAddressesOfFreshNamesLeaveTheAccountLocked) {
  ManualClock time;
  LoginThrottle throttle(ThrottlePolicy{}, time.clock());
  for (int i = 0; i < 5; ++i) throttle.recordFailure("192.0.2.7", "alice");
  ASSERT_NE(throttle.retryAfter("203.0.113.9", "alice"), std::nullopt);

  const auto& policy = throttle.policy();
  std::size_t refused = 0, recorded = 0, maxUsers = 0;
  // The old tracker forgot the lock after maxTrackedKeys fresh names: send twice as many.
  for (int round = 0; round < 2; ++round)
    for (int peer = 0; peer < 500; ++peer) {
      const auto address = "10." + std::to_string(round) + "." + std::to_string(peer / 250) + "." +
                           std::to_string(peer % 250);
      for (std::size_t n = 0; n < policy.maxFailuresPerPeer + 5; ++n) {
        const auto name = "x" + std::to_string(round) + "-" + std::to_string(peer) + "-" + std::to_string(n);
        if (throttle.retryAfter(address, name)) {
          ++refused;
          continue;
        }
        throttle.recordFailure(address, name);
        ++recorded;
        maxUsers = std::max(maxUsers, throttle.trackedUsers());
      }
    }
  EXPECT_EQ(recorded, 2u * 500u * policy.maxFailuresPerPeer) << "each address is locked after 20 names";
  EXPECT_EQ(refused, 2u * 500u * 5u);
  EXPECT_GE(recorded, policy.maxTrackedKeys) << "as many fresh names as flushed the old tracker";
  EXPECT_NE(throttle.retryAfter("203.0.113.9", "alice"), std::nullopt) << "the lock survived the flood";
  EXPECT_LE(maxUsers, policy.maxTrackedKeys);
  EXPECT_LE(throttle.trackedPeers(), policy.maxTrackedKeys);
  time.advance(policy.window);
  EXPECT_EQ(throttle.retryAfter("203.0.113.9", "alice"), std::nullopt) << "and it runs out as usual";
}

TEST(ThrottlePolicyCheck, LimitsMustBePositive) {
  errorMessageOf(ErrorCode::InvalidArgument, [] {
    LoginThrottle(ThrottlePolicy{0, 20, 300s, 10});
  });
  errorMessageOf(ErrorCode::InvalidArgument, [] { LoginThrottle(ThrottlePolicy{5, 0, 300s, 10}); });
  errorMessageOf(ErrorCode::InvalidArgument, [] { LoginThrottle(ThrottlePolicy{5, 20, 0s, 10}); });
  errorMessageOf(ErrorCode::InvalidArgument, [] { LoginThrottle(ThrottlePolicy{5, 20, 300s, 0}); });
}

TEST(ThrottleThreads, ConcurrentCallsCountEveryFailure) {
  ManualClock time;
  LoginThrottle throttle(ThrottlePolicy{1000, 100000, 300s, 10000}, time.clock());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 249; ++i) {
        throttle.recordFailure("192.0.2." + std::to_string(t), "alice");
        throttle.retryAfter("192.0.2." + std::to_string(t), "user" + std::to_string(i));
        throttle.recordFailure("192.0.2." + std::to_string(t), "user" + std::to_string(i));
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(throttle.retryAfter("", "alice"), std::nullopt) << "996 failures, limit 1000";
  throttle.recordFailure("", "alice");
  throttle.recordFailure("", "alice");
  throttle.recordFailure("", "alice");
  EXPECT_EQ(throttle.retryAfter("", "alice"), std::nullopt);
  throttle.recordFailure("", "alice");
  EXPECT_EQ(throttle.retryAfter("", "alice"), 300s);
  EXPECT_EQ(throttle.trackedUsers(), 250u);
  EXPECT_EQ(throttle.trackedPeers(), 4u);
}

}  // namespace
}  // namespace shoal::auth::test
