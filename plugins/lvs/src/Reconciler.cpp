#include "Reconciler.hpp"

#include <map>
#include <set>

namespace shoal::lvs {

std::string describe(const ApplyReport& r) {
  return "services added " + std::to_string(r.servicesAdded) + ", edited " + std::to_string(r.servicesEdited) +
         ", removed " + std::to_string(r.servicesRemoved) + "; real servers added " + std::to_string(r.realsAdded) +
         ", edited " + std::to_string(r.realsEdited) + ", removed " + std::to_string(r.realsRemoved);
}

Reconciler::Reconciler(Dataplane& dataplane, std::chrono::milliseconds interval, Log log)
    : dataplane_(dataplane), interval_(interval), log_(std::move(log)) {}

Reconciler::~Reconciler() { stop(); }

namespace {

std::vector<ServiceFailure> everyService(const std::vector<VirtualService>& table, const std::string& error) {
  std::vector<ServiceFailure> all;
  for (const auto& s : table) all.push_back({s.key(), error});
  return all;
}

}  // namespace

ApplyReport Reconciler::apply(const std::vector<VirtualService>& table) {
  std::lock_guard lock(mutex_);
  desired_ = table;
  try {
    auto report = dataplane_.apply(table);
    noteFailures(report.failures, false);
    return report;
  } catch (const DataplaneError& e) {
    noteFailures(everyService(table, e.what()), false);
    throw;
  }
}

std::vector<ServiceFailure> Reconciler::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

void Reconciler::noteFailures(std::vector<ServiceFailure> now, bool fromLoop) {
  if (fromLoop) {
    // apply()'s caller reports its own outcome; the loop says what changed since.
    std::map<std::string, std::string> before;
    for (const auto& f : failures_) before[f.service] = f.reason;
    std::set<std::string> failing;
    for (const auto& f : now) {
      failing.insert(f.service);
      auto was = before.find(f.service);
      if (was == before.end() || was->second != f.reason)
        log_(true, "reconcile: " + f.service + " cannot be applied: " + f.reason);
    }
    for (const auto& [service, reason] : before)
      if (!failing.count(service) && desired_)
        for (const auto& s : *desired_)
          if (s.key() == service) log_(false, "reconcile: " + service + " is applied now");
  }
  failures_ = std::move(now);
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
    // A service that failed before and is added now healed (noteFailures says so); only
    // other changes are drift.
    std::set<std::string> failingNow, failedBefore;
    for (const auto& f : report.failures) failingNow.insert(f.service);
    for (const auto& f : failures_) failedBefore.insert(f.service);
    std::size_t healed = 0, healedReals = 0;
    for (const auto& s : *desired_)
      if (failedBefore.count(s.key()) && !failingNow.count(s.key())) ++healed, healedReals += s.reals.size();
    const bool onlyHealed = report.servicesAdded == healed && report.realsAdded == healedReals &&
                            report.servicesEdited + report.servicesRemoved + report.realsEdited + report.realsRemoved == 0;
    if (report.changedAnything() && !onlyHealed) {
      ++repairs_;
      log_(true, "reconcile: the " + dataplane_.name() + " dataplane had drifted from the policies and was repaired (" +
                     describe(report) + ")");
    }
    noteFailures(report.failures, true);
    lastError_.clear();
  } catch (const DataplaneError& e) {
    // Once per distinct failure, not every interval.
    if (e.what() != lastError_) log_(true, std::string("reconcile: ") + e.what());
    lastError_ = e.what();
    failures_ = everyService(*desired_, e.what());
  } catch (const std::exception& e) {
    if (e.what() != lastError_) log_(true, std::string("reconcile: ") + e.what());
    lastError_ = e.what();
  }
}

}  // namespace shoal::lvs
