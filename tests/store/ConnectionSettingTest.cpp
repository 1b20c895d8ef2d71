#include <filesystem>
#include <random>

#include "BackendTest.hpp"
#include "store/ConnectionSetting.hpp"

namespace shoal::store::test {
namespace {

std::filesystem::path freshTempDir() {
  return std::filesystem::temp_directory_path() /
         ("shoal-store-setting-" + std::to_string(std::random_device{}()));
}

TEST(StoreSetting, PlainSqliteUsesShoalDbInTheDataDirectoryAndCreatesIt) {
  const auto base = freshTempDir();
  const auto dataDir = base / "var" / "lib" / "shoal";
  {
    auto store = Store::open({"sqlite", dataDir});
    EXPECT_EQ(store->backend(), Backend::Sqlite);
    EXPECT_EQ(store->describe(), "sqlite " + (dataDir / "shoal.db").string());
    EXPECT_TRUE(std::filesystem::exists(dataDir / "shoal.db"));
  }
  std::filesystem::remove_all(base);
}

TEST(StoreSetting, SqliteWithAnAbsolutePathUsesThatFile) {
  const auto dir = freshTempDir();
  std::filesystem::create_directories(dir);
  {
    auto store = Store::open({"sqlite:" + (dir / "custom.db").string(), "/nonexistent"});
    EXPECT_EQ(store->describe(), "sqlite " + (dir / "custom.db").string());
    store->migrate();
    EXPECT_TRUE(std::filesystem::exists(dir / "custom.db"));
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreSetting, MysqlUrlGivesUserPasswordHostPortAndDatabase) {
  const auto s =
      ConnectionSetting::parse("mysql://shoal:p%40ss%3Aw%2Frd@db.example.net:3307/shoal", {});
  EXPECT_EQ(s.backend(), Backend::MySql);
  EXPECT_EQ(s.user(), "shoal");
  EXPECT_EQ(s.password(), "p@ss:w/rd");
  EXPECT_EQ(s.host(), "db.example.net");
  EXPECT_EQ(s.port(), 3307u);
  EXPECT_EQ(s.database(), "shoal");
  EXPECT_EQ(s.socket(), "");
  EXPECT_EQ(s.describe(), "mysql shoal@db.example.net:3307/shoal");
}

TEST(StoreSetting, MysqlPortDefaultsTo3306AndTheDescriptionNeverShowsThePassword) {
  const auto s = ConnectionSetting::parse("mysql://admin:Secr3tPw@10.0.0.5/cluster", {});
  EXPECT_EQ(s.port(), 3306u);
  EXPECT_EQ(s.describe(), "mysql admin@10.0.0.5:3306/cluster");
  const auto noPassword = ConnectionSetting::parse("mysql://admin@10.0.0.5/cluster", {});
  EXPECT_EQ(noPassword.password(), "");
}

TEST(StoreSetting, MysqlAcceptsABracketedIpv6Host) {
  const auto s = ConnectionSetting::parse("mysql://shoal:pw@[::1]:3310/shoal", {});
  EXPECT_EQ(s.host(), "::1");
  EXPECT_EQ(s.port(), 3310u);
  EXPECT_EQ(s.describe(), "mysql shoal@[::1]:3310/shoal");
}

TEST(StoreSetting, MysqlSocketFormNamesTheSocket) {
  const auto s = ConnectionSetting::parse(
      "mysql://shoal:pw@localhost/shoal?socket=/run/mysqld/mysqld.sock", {});
  EXPECT_EQ(s.host(), "localhost");
  EXPECT_EQ(s.socket(), "/run/mysqld/mysqld.sock");
  EXPECT_EQ(s.describe(), "mysql shoal@localhost/shoal?socket=/run/mysqld/mysqld.sock");
}

TEST(StoreSetting, MalformedSettingsAreInvalidArgumentNamingTheValueAndTheAcceptedForms) {
  const std::vector<std::string> malformed = {
      "",
      "postgres://shoal:Secr3tPw@host/db",
      "SQLite",
      "sqlite:",
      "sqlite:relative/shoal.db",
      "sqlite:/var/lib/shoal/",
      "mysql://",
      "mysql://host/db",
      "mysql://:Secr3tPw@host/db",
      "mysql://shoal:Secr3tPw@host",
      "mysql://shoal:Secr3tPw@host/",
      "mysql://shoal:Secr3tPw@/db",
      "mysql://shoal:Secr3tPw@host:0/db",
      "mysql://shoal:Secr3tPw@host:65536/db",
      "mysql://shoal:Secr3tPw@host:33o6/db",
      "mysql://shoal:Secr3tPw@host:/db",
      "mysql://shoal:Secr3tPw%zz@host/db",
      "mysql://shoal:Secr3tPw;x=1@host/db",
      "mysql://shoal:Secr3tPw@[::1/db",
      "mysql://shoal:Secr3tPw@db.example.net/db?socket=/run/mysqld/mysqld.sock",
      "mysql://shoal:Secr3tPw@localhost:3306/db?socket=/run/mysqld/mysqld.sock",
      "mysql://shoal:Secr3tPw@localhost/db?socket=relative.sock",
      "mysql://shoal:Secr3tPw@localhost/db?sock=/run/mysqld/mysqld.sock",
      "mysql://shoal:Secr3tPw@localhost/db?socket",
  };
  for (const auto& value : malformed) {
    SCOPED_TRACE(value);
    const std::string message = errorMessageOf(ErrorCode::InvalidArgument, [&] {
      Store::open({value, freshTempDir()});
    });
    EXPECT_NE(message.find("invalid store connection setting \""), std::string::npos) << message;
    EXPECT_NE(message.find("sqlite:/absolute/path.db"), std::string::npos) << message;
    EXPECT_NE(message.find("mysql://user:password@host[:port]/database"), std::string::npos)
        << message;
    EXPECT_EQ(message.find("Secr3tPw"), std::string::npos) << "password leaked: " << message;
  }
}

TEST(StoreSetting, PlainSqliteWithoutADataDirectoryIsInvalidArgument) {
  const std::string message = errorMessageOf(ErrorCode::InvalidArgument, [] {
    Store::open({"sqlite", {}});
  });
  EXPECT_NE(message.find("data directory"), std::string::npos) << message;
}

TEST(StoreSetting, AnUnreachableMysqlServerIsInternalWithTheTargetButNotThePassword) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const std::string message = errorMessageOf(ErrorCode::Internal, [] {
    Store::open({"mysql://shoal:Secr3tPw@127.0.0.1:1/shoal", {}});
  });
  EXPECT_NE(message.find("mysql shoal@127.0.0.1:1/shoal"), std::string::npos) << message;
  EXPECT_NE(message.find("Can't connect"), std::string::npos) << "driver reason: " << message;
  EXPECT_EQ(message.find("Secr3tPw"), std::string::npos) << "password leaked: " << message;
}

TEST(StoreSetting, AnSqliteFileThatCannotBeOpenedIsInternal) {
  const std::string message = errorMessageOf(ErrorCode::Internal, [] {
    Store::open({"sqlite:/nonexistent-shoal-dir/sub/shoal.db", {}});
  });
  EXPECT_NE(message.find("sqlite /nonexistent-shoal-dir/sub/shoal.db"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace shoal::store::test
