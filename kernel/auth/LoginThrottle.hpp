#pragma once
// Slows down password guessing at the panel's login, in memory (per process; a restart forgets).
//
// A login attempt is refused while, within the sliding window, the user name has had
// maxFailures failed attempts (from anywhere) or the peer address has had maxFailuresPerPeer
// (for any names). The refusal lasts until the oldest of those failures leaves the window.
// A successful login clears the name's failures but not the peer's: an attacker holding one
// valid account cannot use it to reset its own address's count.
//
// Usage: retryAfter() before checking the password (refuse with 429 and Retry-After when it
// returns a value), then recordFailure() or recordSuccess().
//
// Memory is bounded: at most maxTrackedKeys names and as many addresses are tracked, each with
// at most its limit of timestamps. A full tracker makes room by forgetting the key whose last
// failure is oldest among those that hold no lock, so a flood of fresh names (or addresses)
// never releases a locked account: a live lock is only forgotten once it has run out. When
// every tracked key holds a live lock, a new key's failure is not tracked by name (its
// address still counts it). Every failure counts for its address whatever the name, so one
// address cycling through cheap names is locked after maxFailuresPerPeer of them.
// Thread-safe.
#include <chrono>
#include <cstddef>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cluster/Clock.hpp"

namespace shoal::auth {

struct ThrottlePolicy {
  std::size_t maxFailures = 5;          // per user name
  std::size_t maxFailuresPerPeer = 20;  // per peer address
  std::chrono::seconds window{5 * 60};
  std::size_t maxTrackedKeys = 10000;  // of each kind
};

class LoginThrottle {
 public:
  // Throws Error(InvalidArgument) unless every limit of the policy is positive.
  explicit LoginThrottle(ThrottlePolicy policy = {}, cluster::Clock clock = {});

  // nullopt when an attempt may proceed, else how long to wait (whole seconds, at least 1).
  std::optional<std::chrono::seconds> retryAfter(std::string_view peerAddress,
                                                 std::string_view userName);
  void recordFailure(std::string_view peerAddress, std::string_view userName);
  void recordSuccess(std::string_view peerAddress, std::string_view userName);

  // How many names and addresses are tracked now (for tests and metrics).
  std::size_t trackedUsers() const;
  std::size_t trackedPeers() const;

  const ThrottlePolicy& policy() const { return policy_; }

 private:
  // Failure times per key. Keys below their limit are in `open_`, those that reached it
  // (locked, or locked until recently) in `locked_`; each list in order of the last failure,
  // least recent first, so eviction takes the front of `open_` and only scans `locked_`
  // when `open_` is empty.
  class Tracker {
   public:
    explicit Tracker(std::size_t limit) : limit_(limit) {}
    void add(const std::string& key, cluster::TimePoint at, std::size_t maxKeys,
             std::chrono::seconds window);
    void clear(const std::string& key);
    // When the key may try again; nullopt when it may now.
    std::optional<cluster::TimePoint> lockedUntil(const std::string& key, cluster::TimePoint now,
                                                  std::chrono::seconds window);
    std::size_t size() const { return entries_.size(); }

   private:
    struct Entry {
      std::deque<cluster::TimePoint> failures;  // the last `limit_`, oldest first
      bool inLocked = false;                    // which list `order` points into
      std::list<std::string>::iterator order;
    };
    // Forgets one key that holds no live lock at `now`; false when every key holds one.
    bool evictOne(cluster::TimePoint now, std::chrono::seconds window);
    void erase(std::unordered_map<std::string, Entry>::iterator it);
    // Moves the entry to the back of the list its failure count puts it in.
    void place(Entry& entry);

    std::size_t limit_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> open_;
    std::list<std::string> locked_;
  };

  cluster::TimePoint currentTime() const;

  ThrottlePolicy policy_;
  cluster::Clock clock_;
  mutable std::mutex mutex_;
  Tracker users_;
  Tracker peers_;
};

}  // namespace shoal::auth
