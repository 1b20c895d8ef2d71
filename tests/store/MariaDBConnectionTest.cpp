// MySQL-only behaviour, run against the MariaDB server of the ctest fixture.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <Poco/Data/Session.h>

#include "BackendTest.hpp"
#include "store/ConnectionSetting.hpp"
#include "store/DocumentStore.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store::test {
namespace {

class MariaDBConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    if (mysqlTestUrl().empty()) GTEST_FAIL() << kHowToRunMariaDB;
  }
};

TEST_F(MariaDBConnection, DescribeNamesUserHostPortAndDatabaseButNotThePassword) {
  auto store = Store::open({mysqlTestUrl(), {}});
  EXPECT_EQ(store->backend(), Backend::MySql);
  const std::string description = store->describe();
  EXPECT_EQ(description.rfind("mysql ", 0), 0u) << description;
  const std::string password = ConnectionSetting::parse(mysqlTestUrl(), {}).password();
  ASSERT_FALSE(password.empty());
  EXPECT_EQ(description.find(password), std::string::npos) << description;
}

TEST_F(MariaDBConnection, AWrongPasswordIsInternalWithoutThePassword) {
  auto setting = ConnectionSetting::parse(mysqlTestUrl(), {});
  const std::string url = "mysql://" + setting.user() + ":Wr0ngPassw0rd@" + setting.host() + ":" +
                          std::to_string(setting.port()) + "/" + setting.database();
  const std::string message = errorMessageOf(ErrorCode::Internal, [&] { Store::open({url, {}}); });
  EXPECT_NE(message.find("Access denied"), std::string::npos) << message;
  EXPECT_EQ(message.find("Wr0ngPassw0rd"), std::string::npos) << message;
}

TEST_F(MariaDBConnection, ASessionTheServerDroppedIsReconnectedBeforeUse) {
  auto store = Store::open({mysqlTestUrl(), {}});
  Poco::Int64 victimId = 0;
  {
    auto victim = store->session();
    victim << "SELECT CONNECTION_ID()", into(victimId), now;
    {
      auto killer = store->session();
      killer << "KILL " + std::to_string(victimId), now;
    }
    // victim goes back to the pool last, so it is the next one handed out
  }
  auto session = store->session();
  Poco::Int64 id = 0;
  session << "SELECT CONNECTION_ID()", into(id), now;
  EXPECT_NE(id, 0);
  EXPECT_NE(id, victimId);
  // The reconnected session keeps utf8mb4.
  std::string charset;
  session << "SELECT @@character_set_connection", into(charset), now;
  EXPECT_EQ(charset, "utf8mb4");
}

TEST_F(MariaDBConnection, DocumentsAreStoredAsUtf8mb4WithByteKeys) {
  auto store = Store::open({mysqlTestUrl(), {}});
  {
    auto session = store->session();
    for (const char* table : {"plugin_documents", "cluster_meta", "schema_migrations"})
      session << std::string("DROP TABLE IF EXISTS ") + table, now;
  }
  store->migrate();
  auto session = store->session();
  std::string bodyCharset, keyType;
  session << "SELECT CHARACTER_SET_NAME FROM information_schema.columns WHERE"
             " table_schema = DATABASE() AND table_name = 'plugin_documents'"
             " AND column_name = 'body'",
      into(bodyCharset), now;
  session << "SELECT DATA_TYPE FROM information_schema.columns WHERE"
             " table_schema = DATABASE() AND table_name = 'plugin_documents'"
             " AND column_name = 'doc_key'",
      into(keyType), now;
  EXPECT_EQ(bodyCharset, "utf8mb4");
  EXPECT_EQ(keyType, "varbinary");
}

// Opens the store at url, writes and reads a document; 0 when that worked. The Store is gone
// before this returns: Poco's pool janitor thread must stop before exit().
int socketRoundTrip(const std::string& url) {
  try {
    auto store = Store::open({url, {}});
    {
      auto session = store->session();
      for (const char* table : {"plugin_documents", "cluster_meta", "schema_migrations"})
        session << std::string("DROP TABLE IF EXISTS ") + table, now;
    }
    store->migrate();
    DocumentStore docs(*store);
    auto tx = docs.begin("socket-test");
    tx->put("checks", "socket", R"({"via":"socket"})");
    const auto doc = tx->get("checks", "socket");
    tx->rollback();
    std::cerr << "described as " << store->describe() << "; read "
              << (doc ? doc->json : std::string("nothing")) << std::endl;
    return doc && doc->json == R"({"via":"socket"})" ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "failed: " << e.what() << std::endl;
    return 2;
  }
}

// The client library takes its socket path once per process, so this runs in a fresh child
// process (gtest's "threadsafe" death-test style re-executes the test binary).
TEST_F(MariaDBConnection, TheSocketFormConnectsThroughTheSocket) {
  const char* socketUrl = std::getenv("SHOAL_TEST_MYSQL_SOCKET_URL");
  if (socketUrl == nullptr || *socketUrl == '\0')
    GTEST_FAIL() << "SHOAL_TEST_MYSQL_SOCKET_URL is not set; " << kHowToRunMariaDB;
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(socketRoundTrip(socketUrl)), ::testing::ExitedWithCode(0),
              "described as mysql .*\\?socket=/.*read \\{\"via\":\"socket\"\\}");
}

}  // namespace
}  // namespace shoal::store::test
