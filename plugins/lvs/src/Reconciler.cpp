#include "Reconciler.hpp"

namespace shoal::lvs {

std::string describe(const ApplyReport& r) {
  return "services added " + std::to_string(r.servicesAdded) + ", edited " + std::to_string(r.servicesEdited) +
         ", removed " + std::to_string(r.servicesRemoved) + "; real servers added " + std::to_string(r.realsAdded) +
         ", edited " + std::to_string(r.realsEdited) + ", removed " + std::to_string(r.realsRemoved);
}

Reconciler::Reconciler(Dataplane& dataplane, std::chrono::milliseconds interval, Log log)
    : dataplane_(dataplane), interval_(interval), log_(std::move(log)) {}

Reconciler::~Reconciler() { stop(); }

ApplyReport Reconciler::apply(const std::vector<VirtualService>& table) {
  std::lock_guard lock(mutex_);
  desired_ = table;
  return dataplane_.apply(table);
}

bool Reconciler::holdsTable() const {
  std::lock_guard lock(mutex_);
  return desired_.has_value();
}

std::size_t Reconciler::repairs() const {
  std::lock_guard lock(mutex_);
  return repairs_;
}

void Reconciler::start() {
  std::lock_guard lock(stopMutex_);
  if (running_) return;
  running_ = true;
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(stopMutex_);
        if (stopChanged_.wait_for(lock, interval_, [this] { return !running_; })) return;
      }
      pass();
    }
  });
}

void Reconciler::stop() {
  {
    std::lock_guard lock(stopMutex_);
    running_ = false;
  }
  stopChanged_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::pass() {
  std::lock_guard lock(mutex_);
  if (!desired_) return;
  try {
    const auto report = dataplane_.apply(*desired_);
    if (report.changedAnything()) {
      ++repairs_;
      log_(true, "reconcile: the " + dataplane_.name() + " dataplane had drifted from the policies and was repaired (" +
                     describe(report) + ")");
    }
    lastError_.clear();
  } catch (const std::exception& e) {
    // Once per distinct failure, not every interval.
    if (e.what() != lastError_) log_(true, std::string("reconcile: ") + e.what());
    lastError_ = e.what();
  }
}

}  // namespace shoal::lvs
