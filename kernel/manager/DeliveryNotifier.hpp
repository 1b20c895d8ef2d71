#pragma once
// Wakes long-polling nodes when work may be ready for them. A generation counter, so a
// wake-up that happens between a node's empty claim and its wait is never lost.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace shoal::manager {

class DeliveryNotifier {
 public:
  std::uint64_t generation() {
    std::lock_guard lock(mutex_);
    return generation_;
  }
  void notifyAll() {
    {
      std::lock_guard lock(mutex_);
      ++generation_;
    }
    changed_.notify_all();
  }
  // Waits until the generation differs from `seen`, `deadline` passes or shutdown().
  void waitPast(std::uint64_t seen, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline, [&] { return generation_ != seen || stopping_; });
  }
  void shutdown() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace shoal::manager
