// A damaged SQLite file is refused when the store is opened, with the way to recover in the
// message, rather than failing later at the first query that happens to read a bad page.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "BackendTest.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store::test {
namespace {

class SqliteIntegrity : public BackendTest {
 protected:
  std::filesystem::path file() const { return settings().connection.substr(std::string("sqlite:").size()); }

  // A real store with enough rows to span many pages, its WAL folded into the main file.
  void makeStoreWithData() {
    auto store = openMigratedStore();
    auto s = store->session();
    for (int i = 0; i < 400; ++i) {
      std::string key = "key-" + std::to_string(i), body = "{\"v\":\"" + std::string(200, 'x') + "\"}";
      s << "INSERT INTO plugin_documents (plugin, collection, doc_key, body, revision, updated_at)"
           " VALUES ('test', 'c', ?, ?, 1, '2026-01-01T00:00:00.000Z')",
          use(key), use(body), now;
    }
    s << "PRAGMA wal_checkpoint(TRUNCATE)", now;
  }

  // Overwrites pages (1-based, of `pageSize` bytes) of the file with a pattern.
  void overwritePages(const std::vector<int>& pages, std::size_t pageSize = 4096) {
    std::fstream f(file(), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << file();
    const std::string garbage(pageSize, '\xa5');
    for (int page : pages) {
      f.seekp(static_cast<std::streamoff>((page - 1) * pageSize));
      f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    ASSERT_TRUE(f.good());
  }

  std::streamoff pageCount() {
    return static_cast<std::streamoff>(std::filesystem::file_size(file()) / 4096);
  }
};

TEST_P(SqliteIntegrity, ASoundStoreOpensAfterItsCheck) {
  makeStoreWithData();
  auto store = openStore();
  EXPECT_EQ(store->schemaVersion(), store->latestSchemaVersion());
}

TEST_P(SqliteIntegrity, DamagedPagesAreRefusedAtOpenWithTheRecoverySteps) {
  makeStoreWithData();
  ASSERT_GT(pageCount(), 20);
  overwritePages({static_cast<int>(pageCount() / 2), static_cast<int>(pageCount() / 2 + 1)});
  const std::string message = errorMessageOf(ErrorCode::Failed, [&] { openStore(); });
  EXPECT_NE(message.find("the store " + file().string() + " is damaged"), std::string::npos) << message;
  EXPECT_NE(message.find("quick_check"), std::string::npos) << message;
  EXPECT_NE(message.find("restore " + file().string() + " from a backup"), std::string::npos) << message;
  EXPECT_NE(message.find("sqlite3 " + file().string() + " \".recover\""), std::string::npos) << message;
}

TEST_P(SqliteIntegrity, AnOverwrittenHeaderIsRefusedAsDamagedNotAsUnreachable) {
  makeStoreWithData();
  overwritePages({1});
  const std::string message = errorMessageOf(ErrorCode::Failed, [&] { openStore(); });
  EXPECT_NE(message.find("is damaged"), std::string::npos) << message;
  EXPECT_NE(message.find(".recover"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteIntegrity, ::testing::Values(Backend::Sqlite), backendParamName);

}  // namespace
}  // namespace shoal::store::test
