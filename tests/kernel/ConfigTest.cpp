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
