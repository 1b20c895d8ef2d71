#include "auth/LoginThrottle.hpp"

#include <algorithm>
#include <iterator>
#include <list>

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
                                 std::size_t maxKeys, std::chrono::seconds window) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    // Every key holds a live lock: dropping one would hand its account fresh guesses.
    if (entries_.size() >= maxKeys && !evictOne(at, window)) return;
    open_.push_back(key);
    it = entries_.emplace(key, Entry{{}, false, std::prev(open_.end())}).first;
  }
  auto& failures = it->second.failures;
  failures.push_back(at);
  while (failures.size() > limit_) failures.pop_front();
  place(it->second);
}

void LoginThrottle::Tracker::place(Entry& entry) {
  auto& target = entry.failures.size() >= limit_ ? locked_ : open_;
  auto& source = entry.inLocked ? locked_ : open_;
  target.splice(target.end(), source, entry.order);
  entry.inLocked = &target == &locked_;
}

bool LoginThrottle::Tracker::evictOne(cluster::TimePoint now, std::chrono::seconds window) {
  if (!open_.empty()) {
    erase(entries_.find(open_.front()));
    return true;
  }
  // Only locks here; one whose oldest counted failure has left the window has run out.
  for (const auto& key : locked_) {
    auto it = entries_.find(key);
    const auto& failures = it->second.failures;
    if (failures.size() < limit_ || failures.front() + window <= now) {
      erase(it);
      return true;
    }
  }
  return false;
}

void LoginThrottle::Tracker::erase(std::unordered_map<std::string, Entry>::iterator it) {
  (it->second.inLocked ? locked_ : open_).erase(it->second.order);
  entries_.erase(it);
}

void LoginThrottle::Tracker::clear(const std::string& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) erase(it);
}

std::optional<cluster::TimePoint> LoginThrottle::Tracker::lockedUntil(const std::string& key,
                                                                      cluster::TimePoint now,
                                                                      std::chrono::seconds window) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  auto& failures = it->second.failures;
  while (!failures.empty() && failures.front() + window <= now) failures.pop_front();
  if (failures.empty()) {
    erase(it);
    return std::nullopt;
  }
  if (failures.size() < limit_) {
    if (it->second.inLocked) place(it->second);  // its lock ran out: evictable again
    return std::nullopt;
  }
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
  if (!userName.empty()) users_.add(keyOf(userName), now, policy_.maxTrackedKeys, policy_.window);
  if (!peerAddress.empty()) peers_.add(keyOf(peerAddress), now, policy_.maxTrackedKeys, policy_.window);
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
