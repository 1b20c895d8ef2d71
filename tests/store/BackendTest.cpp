#include "BackendTest.hpp"

#include <atomic>
#include <cstdlib>
#include <random>

#include <unistd.h>

using namespace Poco::Data::Keywords;

namespace shoal::store::test {

std::string mysqlTestUrl() {
  const char* url = std::getenv("SHOAL_TEST_MYSQL_URL");
  return url ? url : "";
}

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "InvalidArgument";
    case ErrorCode::NotFound:
      return "NotFound";
    case ErrorCode::Conflict:
      return "Conflict";
    case ErrorCode::Unsupported:
      return "Unsupported";
    case ErrorCode::Failed:
      return "Failed";
    case ErrorCode::Internal:
      return "Internal";
  }
  return "?";
}

std::string backendParamName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::Sqlite ? "sqlite" : "mariadb";
}

void BackendTest::SetUp() {
  if (GetParam() == Backend::Sqlite) {
    static std::atomic<int> counter{0};
    tempDir_ = std::filesystem::temp_directory_path() /
               ("shoal-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(tempDir_);
    return;
  }
  if (mysqlTestUrl().empty()) GTEST_FAIL() << kHowToRunMariaDB;
  // Every test starts from an empty database.
  auto store = openStore();
  auto session = store->session();
  for (const char* table : {"plugin_documents", "cluster_meta", "schema_migrations"})
    session << std::string("DROP TABLE IF EXISTS ") + table, now;
}

void BackendTest::TearDown() {
  if (!tempDir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tempDir_, ec);
  }
}

StoreSettings BackendTest::settings() const {
  if (GetParam() == Backend::Sqlite)
    return StoreSettings{"sqlite:" + (tempDir_ / "shoal.db").string(), tempDir_};
  return StoreSettings{mysqlTestUrl(), {}};
}

std::unique_ptr<Store> BackendTest::openStore() {
  return Store::open(settings());
}

std::unique_ptr<Store> BackendTest::openMigratedStore() {
  auto store = openStore();
  store->migrate();
  return store;
}

}  // namespace shoal::store::test
