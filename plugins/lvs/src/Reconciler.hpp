#pragma once
// Keeps a dataplane holding the table it was last given: apply() programmes it at once and
// remembers the table; a thread re-applies the remembered table every `interval`, so what
// changed behind shoal's back (a service deleted with ipvsadm, a real server edited) is put
// back within one interval. Each repair is reported through `log` as a warning. A service
// the dataplane could not hold (a port in use) is tried again on every pass, so it is
// applied by itself once the cause is gone; failures() says which fail now and why.
//
// The dataplane must outlive the reconciler; both its apply() callers (apply() here and the
// loop) are serialized by the reconciler's mutex.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

class Reconciler {
 public:
  // `warning` is true for a repair or a failure, false for information.
  using Log = std::function<void(bool warning, const std::string& message)>;

  Reconciler(Dataplane& dataplane, std::chrono::milliseconds interval, Log log);
  ~Reconciler();  // stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Applies `table` now and keeps it as the table to hold. The report lists the services
  // that could not be applied. Throws DataplaneError when the dataplane cannot be used at
  // all; the table is kept even then, so the loop finishes what failed once the cause is
  // gone.
  ApplyReport apply(const std::vector<VirtualService>& table);
  bool holdsTable() const;
  // The services of the held table that the last apply or pass could not apply, with the
  // reason (empty when all hold). After a DataplaneError, every service of the table, each
  // with that error.
  std::vector<ServiceFailure> failures() const;

  void start();
  void stop();

  // Passes that found drift and repaired it.
  std::size_t repairs() const;

 private:
  void pass();
  // Records the outcome of one apply (mutex_ held); logs what newly fails or heals.
  void noteFailures(std::vector<ServiceFailure> now, bool fromLoop);

  Dataplane& dataplane_;
  const std::chrono::milliseconds interval_;
  Log log_;
  mutable std::mutex mutex_;
  std::optional<std::vector<VirtualService>> desired_;
  std::size_t repairs_ = 0;
  std::string lastError_;
  std::vector<ServiceFailure> failures_;

  std::mutex stopMutex_;
  std::condition_variable stopChanged_;
  bool running_ = false;
  std::thread thread_;
};

// "services added 1, edited 0, removed 0; real servers added 2, edited 0, removed 0"
std::string describe(const ApplyReport& report);

}  // namespace shoal::lvs
