#pragma once
// Wakes long-polling nodes when work may be ready for them. A generation counter, so a
// wake-up that happens between a node's empty claim and its wait is never lost.
//
// Waiters are callbacks, not threads: one timer thread serves every deadline, and
// notifyAll() calls the waiters it wakes on the caller's thread. A callback runs once,
// outside the notifier's lock, and must be quick (hand the work to a pool); it may register
// a new waiter.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace shoal::manager {

class DeliveryNotifier {
 public:
  enum class Wake {
    Changed,   // the generation moved past the one seen
    Deadline,  // the deadline passed first
    Shutdown   // shutdown(): answer now, wait no more
  };
  using Waiter = std::function<void(Wake)>;

  DeliveryNotifier() : timer_([this] { runTimer(); }) {}
  ~DeliveryNotifier() {
    shutdown();
    {
      std::lock_guard lock(mutex_);
      ending_ = true;
    }
    changed_.notify_all();
    timer_.join();
  }
  DeliveryNotifier(const DeliveryNotifier&) = delete;
  DeliveryNotifier& operator=(const DeliveryNotifier&) = delete;

  std::uint64_t generation() {
    std::lock_guard lock(mutex_);
    return generation_;
  }

  void notifyAll() {
    std::multimap<Clock::time_point, Waiter> woken;
    {
      std::lock_guard lock(mutex_);
      ++generation_;
      woken.swap(waiters_);
    }
    changed_.notify_all();
    for (auto& [deadline, waiter] : woken) waiter(Wake::Changed);
  }

  // Calls `waiter` once: when the generation differs from `seen`, when `deadline` passes, or
  // at shutdown(). At once (on this thread) if one of those is already so.
  void waitPast(std::uint64_t seen, std::chrono::steady_clock::time_point deadline, Waiter waiter) {
    Wake now;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        now = Wake::Shutdown;
      } else if (generation_ != seen) {
        now = Wake::Changed;
      } else if (deadline <= Clock::now()) {
        now = Wake::Deadline;
      } else {
        const bool earliest = waiters_.empty() || deadline < waiters_.begin()->first;
        waiters_.emplace(deadline, std::move(waiter));
        if (earliest) changed_.notify_all();
        return;
      }
    }
    waiter(now);
  }

  // Wakes every waiter with Wake::Shutdown, and so every later one at once.
  void shutdown() {
    std::multimap<Clock::time_point, Waiter> woken;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      woken.swap(waiters_);
    }
    changed_.notify_all();
    for (auto& [deadline, waiter] : woken) waiter(Wake::Shutdown);
  }

 private:
  using Clock = std::chrono::steady_clock;

  void runTimer() {
    std::unique_lock lock(mutex_);
    while (!ending_) {
      if (waiters_.empty()) {
        changed_.wait(lock);
        continue;
      }
      const auto next = waiters_.begin()->first;
      if (Clock::now() < next) {
        changed_.wait_until(lock, next);
        continue;
      }
      std::vector<Waiter> due;
      while (!waiters_.empty() && waiters_.begin()->first <= Clock::now()) {
        due.push_back(std::move(waiters_.begin()->second));
        waiters_.erase(waiters_.begin());
      }
      lock.unlock();
      for (auto& waiter : due) waiter(Wake::Deadline);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  bool ending_ = false;
  std::multimap<Clock::time_point, Waiter> waiters_;  // by deadline
  std::thread timer_;  // last: started once the rest is built
};

}  // namespace shoal::manager
