#include "AuthTest.hpp"

#include <Poco/Data/Session.h>

using Poco::Data::Keywords::into;

namespace shoal::auth::test {

TimePoint atMillis(std::int64_t ms) {
  return TimePoint(std::chrono::milliseconds(ms));
}

void AuthTest::SetUp() {
  BackendTest::SetUp();
  if (HasFatalFailure()) return;
  if (GetParam() == store::Backend::MySql) {
    // BackendTest empties the store's own tables; these are the panel's and the hosting
    // accounts owners are bound to (children first).
    auto raw = openStore();
    auto session = raw->session();
    for (const char* table : {"panel_sessions", "panel_users", "audit_log", "hosting_certificates", "hosting_domains",
                              "hosting_accounts", "hosting_plans", "hosting_counters", "hosting_outbox"})
      session << std::string("DROP TABLE IF EXISTS ") + table, Poco::Data::Keywords::now;
  }
  store_ = openMigratedStore();
}

std::int64_t AuthTest::countRows(const std::string& table) {
  auto session = store().session();
  Poco::Int64 count = 0;
  session << "SELECT COUNT(*) FROM " + table, into(count), Poco::Data::Keywords::now;
  return count;
}

}  // namespace shoal::auth::test
