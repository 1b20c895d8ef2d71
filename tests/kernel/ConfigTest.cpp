#include "daemon/Config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/Error.hpp"

namespace fs = std::filesystem;
using shoal::daemon::loadConfig;

namespace {
fs::path writeConfig(const std::string& name, const std::string& text) {
  fs::path file = fs::temp_directory_path() / ("shoal-config-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(file) << text;
  return file;
}
std::string errorOf(const fs::path& file, std::map<std::string, std::string> overrides = {}) {
  try {
    loadConfig(file, true, overrides);
  } catch (const shoal::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, ReadsFileAndCommandLineOverridesWin) {
  auto file = writeConfig("ok.conf",
                          "[shoald]\nrole = manager\ndata_dir = /tmp/shoal-a\nstore = sqlite\n"
                          "log_level = debug\n[plugin.hello]\ngreeting = Hi\n");
  auto loaded = loadConfig(file, true, {{"shoald.data_dir", "/tmp/shoal-b"}});
  EXPECT_EQ(loaded.settings.role, "manager");
  EXPECT_EQ(loaded.settings.dataDir, "/tmp/shoal-b");
  EXPECT_EQ(loaded.settings.logLevel, "debug");
  EXPECT_EQ(loaded.layers->getString("plugin.hello.greeting"), "Hi");
  EXPECT_EQ(loaded.settings.configFile, file);
  fs::remove(file);
}

TEST(Config, MissingDefaultFileMeansDefaultsButMissingExplicitFileIsAnError) {
  auto loaded = loadConfig("/nonexistent/shoald.conf", false, {});
  EXPECT_EQ(loaded.settings.role, "manager");
  EXPECT_EQ(loaded.settings.store, "sqlite");
  EXPECT_TRUE(loaded.settings.configFile.empty());
  EXPECT_NE(errorOf("/nonexistent/shoald.conf").find("does not exist"), std::string::npos);
}

TEST(Config, UnknownDaemonSettingIsNamed) {
  auto file = writeConfig("typo.conf", "[shoald]\nplugin_dri = /x\n");
  EXPECT_NE(errorOf(file).find("unknown setting shoald.plugin_dri"), std::string::npos);
  fs::remove(file);
}

TEST(Config, BadRoleAndLogLevelAreNamed) {
  auto file = writeConfig("bad.conf", "[shoald]\nrole = director\n");
  EXPECT_NE(errorOf(file).find("shoald.role 'director' is not one of: manager, node"), std::string::npos);
  EXPECT_NE(errorOf(file, {{"shoald.role", "manager"}, {"shoald.log_level", "loud"}})
                .find("shoald.log_level 'loud'"),
            std::string::npos);
  fs::remove(file);
}

TEST(Config, MalformedOverrideKeyIsRefused) {
  auto file = writeConfig("plain.conf", "");
  EXPECT_NE(errorOf(file, {{"nodot", "1"}}).find("expected SECTION.KEY=VALUE"), std::string::npos);
  fs::remove(file);
}

TEST(Config, AppServerIsABooleanForTheManagerOnly) {
  auto file = writeConfig("appserver.conf", "[shoald]\napp_server = yes\n");
  EXPECT_TRUE(loadConfig(file, true, {}).settings.appServer);
  EXPECT_NE(errorOf(file, {{"shoald.app_server", "maybe"}}).find("shoald.app_server 'maybe' must be true or false"),
            std::string::npos);
  EXPECT_NE(errorOf(file, {{"shoald.role", "node"}}).find("app_server is for the manager role"), std::string::npos);
  fs::remove(file);
}

TEST(Config, AuditRetentionAndTheSeriesCapAreBoundedNumbers) {
  auto file = writeConfig("bounds.conf", "[shoald]\naudit_retention_days = 30\naudit_max_rows = 5000\n"
                                         "stats_max_series_per_plugin = 200\n");
  const auto loaded = loadConfig(file, true, {});
  EXPECT_EQ(loaded.settings.auditRetentionDays, 30);
  EXPECT_EQ(loaded.settings.auditMaxRows, 5000);
  EXPECT_EQ(loaded.settings.statsMaxSeriesPerPlugin, 200);
  const auto defaults = loadConfig("/nonexistent/shoald.conf", false, {});
  EXPECT_EQ(defaults.settings.auditRetentionDays, 90);
  EXPECT_EQ(defaults.settings.auditMaxRows, 1000000);
  EXPECT_EQ(defaults.settings.statsMaxSeriesPerPlugin, 10000);
  EXPECT_NE(errorOf(file, {{"shoald.audit_retention_days", "0"}}).find("shoald.audit_retention_days '0' must be 1-36500"),
            std::string::npos);
  EXPECT_NE(errorOf(file, {{"shoald.audit_retention_days", "90d"}}).find("shoald.audit_retention_days '90d'"),
            std::string::npos);
  EXPECT_NE(errorOf(file, {{"shoald.audit_max_rows", "10"}}).find("shoald.audit_max_rows '10' must be 1000-"),
            std::string::npos);
  EXPECT_NE(errorOf(file, {{"shoald.stats_max_series_per_plugin", "-1"}}).find("shoald.stats_max_series_per_plugin"),
            std::string::npos);
  fs::remove(file);
}
