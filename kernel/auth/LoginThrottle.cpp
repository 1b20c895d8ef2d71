#include "auth/LoginThrottle.hpp"

#include <algorithm>
#include <iterator>

#include "common/Error.hpp"

namespace shoal::auth {

namespace {

// Keys are cut to this many bytes: a hostile peer cannot make one entry large.
constexpr std::size_t kMaxKeyLength = 256;

std::string keyOf(std::string_view value) {
  return std::string(value.substr(0, kMaxKeyLength));
}

}  // namespace

void LoginThrottle::Tracker::add(const std::string& key, cluster::TimePoint at,
                                 std::size_t maxKeys) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    while (entries_.size() >= maxKeys && !order_.empty()) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    it = entries_.emplace(key, Entry{{}, std::prev(order_.end())}).first;
  } else {
    order_.splice(order_.end(), order_, it->second.order);
  }
  auto& failures = it->second.failures;
  failures.push_back(at);
  while (failures.size() > limit_) failures.pop_front();
}

void LoginThrottle::Tracker::clear(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  order_.erase(it->second.order);
  entries_.erase(it);
}

std::optional<cluster::TimePoint> LoginThrottle::Tracker::lockedUntil(const std::string& key,
                                                                      cluster::TimePoint now,
                                                                      std::chrono::seconds window) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  auto& failures = it->second.failures;
  while (!failures.empty() && failures.front() + window <= now) failures.pop_front();
  if (failures.empty()) {
    clear(key);
    return std::nullopt;
  }
  if (failures.size() < limit_) return std::nullopt;
  return failures.front() + window;
}

LoginThrottle::LoginThrottle(ThrottlePolicy policy, cluster::Clock clock)
    : policy_(policy),
      clock_(std::move(clock)),
      users_(policy.maxFailures),
      peers_(policy.maxFailuresPerPeer) {
  if (policy_.maxFailures == 0 || policy_.maxFailuresPerPeer == 0 || policy_.window.count() <= 0 ||
      policy_.maxTrackedKeys == 0)
    throw Error(ErrorCode::InvalidArgument,
                "throttle policy: maxFailures, maxFailuresPerPeer, window and maxTrackedKeys must "
                "be positive");
}

cluster::TimePoint LoginThrottle::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

std::optional<std::chrono::seconds> LoginThrottle::retryAfter(std::string_view peerAddress,
                                                              std::string_view userName) {
  const cluster::TimePoint now = currentTime();
  std::optional<cluster::TimePoint> until;
  {
    std::lock_guard lock(mutex_);
    if (!userName.empty()) until = users_.lockedUntil(keyOf(userName), now, policy_.window);
    if (!peerAddress.empty()) {
      auto peerUntil = peers_.lockedUntil(keyOf(peerAddress), now, policy_.window);
      if (peerUntil && (!until || *peerUntil > *until)) until = peerUntil;
    }
  }
  if (!until) return std::nullopt;
  const auto wait = std::chrono::ceil<std::chrono::seconds>(*until - now);
  return std::max(wait, std::chrono::seconds(1));
}

void LoginThrottle::recordFailure(std::string_view peerAddress, std::string_view userName) {
  const cluster::TimePoint now = currentTime();
  std::lock_guard lock(mutex_);
  if (!userName.empty()) users_.add(keyOf(userName), now, policy_.maxTrackedKeys);
  if (!peerAddress.empty()) peers_.add(keyOf(peerAddress), now, policy_.maxTrackedKeys);
}

void LoginThrottle::recordSuccess(std::string_view /*peerAddress*/, std::string_view userName) {
  std::lock_guard lock(mutex_);
  if (!userName.empty()) users_.clear(keyOf(userName));
}

std::size_t LoginThrottle::trackedUsers() const {
  std::lock_guard lock(mutex_);
  return users_.size();
}

std::size_t LoginThrottle::trackedPeers() const {
  std::lock_guard lock(mutex_);
  return peers_.size();
}

}  // namespace shoal::auth
