#include <thread>
#include <vector>

#include <Poco/Data/Session.h>

#include "BackendTest.hpp"
#include "store/DocumentStore.hpp"
#include "store/Migrations.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store::test {
namespace {

class StoreMigrations : public BackendTest {};

// Every migration this build knows, as MigrationReport::applied lists them.
std::vector<std::string> allMigrationLabels() {
  std::vector<std::string> labels;
  for (const Migration& m : migrations()) labels.push_back(std::to_string(m.version) + " " + m.name);
  return labels;
}

TEST_P(StoreMigrations, AnEmptyDatabaseIsAtSchemaVersionZero) {
  auto store = openStore();
  EXPECT_EQ(store->schemaVersion(), 0);
  EXPECT_EQ(store->latestSchemaVersion(), static_cast<int>(migrations().size()));
  EXPECT_GE(store->latestSchemaVersion(), 5);  // 3 cluster_nodes, 4 command_queue, 5 panel_auth
}

TEST_P(StoreMigrations, MigrateAppliesEveryMigrationInOrderToAnEmptyDatabase) {
  auto store = openStore();
  const MigrationReport report = store->migrate();
  EXPECT_EQ(report.fromVersion, 0);
  EXPECT_EQ(report.toVersion, store->latestSchemaVersion());
  EXPECT_EQ(report.applied, allMigrationLabels());
  EXPECT_EQ(std::vector<std::string>(report.applied.begin(), report.applied.begin() + 5),
            (std::vector<std::string>{"1 plugin_documents", "2 cluster_meta", "3 cluster_nodes",
                                      "4 command_queue", "5 panel_auth"}));
  EXPECT_EQ(store->schemaVersion(), store->latestSchemaVersion());

  auto session = store->session();
  std::vector<int> versions;
  std::vector<std::string> names, appliedAt;
  session << "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
      into(versions), into(names), into(appliedAt), now;
  ASSERT_EQ(versions.size(), migrations().size());
  for (std::size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i], migrations()[i].version);
    EXPECT_EQ(names[i], migrations()[i].name);
  }
  ASSERT_EQ(appliedAt.size(), migrations().size());
  EXPECT_EQ(appliedAt[0].size(), std::string("2024-05-01T12:00:00.123Z").size()) << appliedAt[0];
  EXPECT_EQ(appliedAt[0].back(), 'Z');
}

TEST_P(StoreMigrations, MigratingAgainAfterReopeningAppliesNothingAndKeepsTheData) {
  {
    auto store = openMigratedStore();
    DocumentStore docs(*store);
    auto tx = docs.begin("plugin-a");
    tx->put("sites", "example.org", R"({"php":"8.2"})");
    tx->commit();
    store->setMeta("cluster_id", "c-1");
  }
  auto reopened = openStore();
  const MigrationReport report = reopened->migrate();
  EXPECT_TRUE(report.applied.empty());
  EXPECT_EQ(report.fromVersion, reopened->latestSchemaVersion());
  EXPECT_EQ(report.toVersion, reopened->latestSchemaVersion());
  EXPECT_EQ(reopened->schemaVersion(), reopened->latestSchemaVersion());

  DocumentStore docs(*reopened);
  auto tx = docs.begin("plugin-a");
  auto doc = tx->get("sites", "example.org");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->json, R"({"php":"8.2"})");
  EXPECT_EQ(doc->revision, 1);
  EXPECT_EQ(reopened->meta("cluster_id"), std::optional<std::string>("c-1"));
}

TEST_P(StoreMigrations, TwoStoresMigratingAtOnceApplyEachMigrationExactlyOnce) {
  auto first = openStore();
  auto second = openStore();
  MigrationReport a, b;
  std::string errorA, errorB;
  std::thread ta([&] {
    try {
      a = first->migrate();
    } catch (const std::exception& e) {
      errorA = e.what();
    }
  });
  std::thread tb([&] {
    try {
      b = second->migrate();
    } catch (const std::exception& e) {
      errorB = e.what();
    }
  });
  ta.join();
  tb.join();
  ASSERT_EQ(errorA, "");
  ASSERT_EQ(errorB, "");
  EXPECT_EQ(a.applied.size() + b.applied.size(), migrations().size());
  EXPECT_EQ(a.toVersion, first->latestSchemaVersion());
  EXPECT_EQ(b.toVersion, first->latestSchemaVersion());

  auto session = first->session();
  Poco::Int64 rows = 0;
  session << "SELECT COUNT(*) FROM schema_migrations", into(rows), now;
  EXPECT_EQ(rows, static_cast<Poco::Int64>(migrations().size()));
}

TEST_P(StoreMigrations, ADatabaseWithANewerSchemaIsRefused) {
  auto store = openMigratedStore();
  const int latest = store->latestSchemaVersion();
  int future = latest + 1;
  {
    auto session = store->session();
    session << "INSERT INTO schema_migrations (version, name, applied_at)"
               " VALUES (?, 'from_the_future', '2099-01-01T00:00:00.000Z')",
        use(future), now;
  }
  const std::string message = errorMessageOf(ErrorCode::Failed, [&] { store->migrate(); });
  EXPECT_EQ(message, "the store is at schema version " + std::to_string(future) +
                         " but this shoald knows only up to " + std::to_string(latest) +
                         "; upgrade shoald");
  EXPECT_EQ(store->schemaVersion(), future);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(StoreMigrations);

}  // namespace
}  // namespace shoal::store::test
