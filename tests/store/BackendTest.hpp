#pragma once
// Tests that run against both backends: SQLite in a temporary file, and MariaDB at the URL in
// SHOAL_TEST_MYSQL_URL (ctest starts a server for it; see tests/store/CMakeLists.txt).
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "common/Error.hpp"
#include "store/Store.hpp"

namespace shoal::store {
// For gtest's messages: "GetParam() = mariadb".
inline void PrintTo(Backend backend, std::ostream* out) {
  *out << (backend == Backend::Sqlite ? "sqlite" : "mariadb");
}
}  // namespace shoal::store

namespace shoal::store::test {

inline constexpr const char* kHowToRunMariaDB =
    "SHOAL_TEST_MYSQL_URL is not set, so the MariaDB tests cannot run. Run them through ctest "
    "(ctest -R store.mariadb starts a throwaway MariaDB server with tests/support/mariadb.sh), "
    "or set SHOAL_TEST_MYSQL_URL=mysql://user:password@host:port/database to a scratch database "
    "whose tables the tests may drop.";

// The URL from the environment, or "" when unset.
std::string mysqlTestUrl();

const char* errorCodeName(ErrorCode code);

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A new Store (its own pool) on this test's database.
  std::unique_ptr<Store> openStore();
  std::unique_ptr<Store> openMigratedStore();
  StoreSettings settings() const;

 private:
  std::filesystem::path tempDir_;
};

std::string backendParamName(const ::testing::TestParamInfo<Backend>& info);

#define SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(Suite)                                            \
  INSTANTIATE_TEST_SUITE_P(Sqlite, Suite, ::testing::Values(::shoal::store::Backend::Sqlite), \
                           ::shoal::store::test::backendParamName);                           \
  INSTANTIATE_TEST_SUITE_P(MariaDB, Suite, ::testing::Values(::shoal::store::Backend::MySql), \
                           ::shoal::store::test::backendParamName)

// Runs f, expects a shoal::Error with the code, and returns its message ("" otherwise).
template <typename F>
std::string errorMessageOf(ErrorCode expected, F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const Error& e) {
    EXPECT_EQ(errorCodeName(e.code()), std::string(errorCodeName(expected))) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected shoal::Error(" << errorCodeName(expected)
                  << "), got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected shoal::Error(" << errorCodeName(expected) << "), nothing was thrown";
  return {};
}

}  // namespace shoal::store::test
