#pragma once
// Auth tests that need the store run against both backends through the store's BackendTest
// (SQLite in a temporary file; MariaDB at SHOAL_TEST_MYSQL_URL, and without it the MariaDB
// instantiation fails). Time is a hand-moved clock, so expiry is exact.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "BackendTest.hpp"
#include "cluster/Clock.hpp"

namespace shoal::auth::test {

using cluster::Clock;
using cluster::TimePoint;
using store::test::errorMessageOf;

TimePoint atMillis(std::int64_t ms);

// A clock the test moves by hand, starting at 2024-05-01T12:00:00Z.
class ManualClock {
 public:
  static constexpr std::int64_t kStartMs = 1714564800000;

  Clock clock() const {
    auto ms = ms_;
    return [ms] { return atMillis(ms->load()); };
  }
  TimePoint now() const { return atMillis(ms_->load()); }
  void advance(std::chrono::milliseconds by) { ms_->fetch_add(by.count()); }

 private:
  std::shared_ptr<std::atomic<std::int64_t>> ms_ =
      std::make_shared<std::atomic<std::int64_t>>(kStartMs);
};

class AuthTest : public store::test::BackendTest {
 protected:
  void SetUp() override;

  store::Store& store() { return *store_; }
  Clock clock() const { return clock_.clock(); }
  TimePoint now() const { return clock_.now(); }
  void advance(std::chrono::milliseconds by) { clock_.advance(by); }

  std::int64_t countRows(const std::string& table);

 private:
  std::unique_ptr<store::Store> store_;
  ManualClock clock_;
};

}  // namespace shoal::auth::test
