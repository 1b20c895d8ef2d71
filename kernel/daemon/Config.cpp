#include "daemon/Config.hpp"

#include <Poco/Exception.h>
#include <Poco/Util/IniFileConfiguration.h>
#include <Poco/Util/MapConfiguration.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/Error.hpp"
#include "shoal/BuildInfo.hpp"

namespace shoal::daemon {
namespace {

const std::set<std::string> kRoles{"manager", "node"};
const std::set<std::string> kLogLevels{"error", "warning", "information", "debug"};
const std::set<std::string> kDaemonKeys{"role", "data_dir", "plugin_dir", "store", "log_level",
                                          "api_listen", "api_port", "advertise_address",
                                          "queue_lease_seconds", "app_server", "web_dir",
                                          "panel_idle_timeout_minutes", "metrics_listen",
                                          "stats_step_seconds", "join_token_file",
                                          "stats_max_series_per_plugin", "audit_retention_days",
                                          "audit_max_rows", "account_uid_base", "storage_root",
                                          "acme_directory", "acme_email", "acme_ca_file", "acme_webroot",
                                          "acme_renew_days", "acme_check_seconds"};

[[noreturn]] void invalid(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, where + ": " + what);
}

std::string join(const std::set<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + v;
  return out;
}

}  // namespace

LoadedConfig loadConfig(const std::filesystem::path& file, bool fileRequired,
                        const std::map<std::string, std::string>& overrides) {
  LoadedConfig loaded;
  loaded.layers = new Poco::Util::LayeredConfiguration;

  std::error_code ec;
  const bool exists = std::filesystem::exists(file, ec);
  std::string source = "command line";
  if (exists) {
    try {
      loaded.layers->add(new Poco::Util::IniFileConfiguration(file.string()), 0);
    } catch (const Poco::Exception& e) {
      invalid(file.string(), "cannot read configuration: " + e.displayText());
    }
    loaded.settings.configFile = std::filesystem::absolute(file);
    source = file.string();
  } else if (fileRequired) {
    invalid(file.string(), "configuration file does not exist");
  }

  auto overrideLayer = Poco::AutoPtr<Poco::Util::MapConfiguration>(new Poco::Util::MapConfiguration);
  for (const auto& [key, value] : overrides) {
    auto dot = key.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == key.size())
      invalid("--set " + key, "expected SECTION.KEY=VALUE, e.g. shoald.log_level=debug");
    overrideLayer->setString(key, value);
  }
  loaded.layers->add(overrideLayer, -1);  // overrides win over the file

  // A misspelt key in [shoald] would otherwise be silently ignored.
  Poco::Util::AbstractConfiguration::Keys keys;
  loaded.layers->keys("shoald", keys);
  for (const auto& key : keys) {
    if (!kDaemonKeys.count(key))
      invalid(source, "unknown setting shoald." + key + " (known: " + join(kDaemonKeys) + ")");
  }

  auto& c = *loaded.layers;
  DaemonSettings& s = loaded.settings;
  s.role = c.getString("shoald.role", "manager");
  if (!kRoles.count(s.role))
    invalid(source, "shoald.role '" + s.role + "' is not one of: " + join(kRoles));
  s.logLevel = c.getString("shoald.log_level", "information");
  if (!kLogLevels.count(s.logLevel))
    invalid(source, "shoald.log_level '" + s.logLevel + "' is not one of: " + join(kLogLevels));
  s.store = c.getString("shoald.store", "sqlite");
  if (s.store.empty()) invalid(source, "shoald.store must not be empty");

  auto path = [&](const char* key, const char* fallback) {
    std::string value = c.getString(std::string("shoald.") + key, fallback);
    if (value.empty()) invalid(source, std::string("shoald.") + key + " must not be empty");
    return std::filesystem::absolute(value).lexically_normal();
  };
  s.dataDir = path("data_dir", build::kDefaultDataDir);
  s.apiListen = c.getString("shoald.api_listen", "0.0.0.0");
  const std::string port = c.getString("shoald.api_port", "7443");
  try {
    std::size_t used = 0;
    int value = std::stoi(port, &used);
    if (used != port.size() || value < 0 || value > 65535) throw std::out_of_range(port);
    s.apiPort = static_cast<std::uint16_t>(value);
  } catch (const std::exception&) {
    invalid(source, "shoald.api_port '" + port + "' must be a port number 0-65535");
  }
  s.advertiseAddress = c.getString("shoald.advertise_address", "");
  const std::string appServer = c.getString("shoald.app_server", "false");
  if (appServer == "true" || appServer == "yes" || appServer == "1") {
    s.appServer = true;
  } else if (appServer == "false" || appServer == "no" || appServer == "0") {
    s.appServer = false;
  } else {
    invalid(source, "shoald.app_server '" + appServer + "' must be true or false");
  }
  const std::string tokenFile = c.getString("shoald.join_token_file", "");
  if (!tokenFile.empty()) {
    if (s.role != "node") invalid(source, "shoald.join_token_file is for the node role");
    s.joinTokenFile = std::filesystem::absolute(tokenFile).lexically_normal();
  }
  if (s.appServer && s.role != "manager")
    invalid(source, "shoald.app_server is for the manager role (a node is an app server already)");
  auto number = [&](const char* key, const char* fallback, int min, int max) {
    const std::string text = c.getString(std::string("shoald.") + key, fallback);
    try {
      std::size_t used = 0;
      int value = std::stoi(text, &used);
      if (used == text.size() && value >= min && value <= max) return value;
    } catch (const std::exception&) {
    }
    invalid(source, std::string("shoald.") + key + " '" + text + "' must be " + std::to_string(min) + "-" +
                        std::to_string(max));
  };
  s.queueLeaseSeconds = number("queue_lease_seconds", "60", 1, 3600);
  s.pluginDir = path("plugin_dir", build::kDefaultPluginDir);
  s.webDir = path("web_dir", build::kDefaultWebDir);
  s.panelIdleTimeoutMinutes = number("panel_idle_timeout_minutes", "30", 1, 1440);
  s.statsStepSeconds = number("stats_step_seconds", "10", 1, 60);
  s.statsMaxSeriesPerPlugin = number("stats_max_series_per_plugin", "10000", 1, 1000000);
  s.auditRetentionDays = number("audit_retention_days", "90", 1, 36500);
  s.auditMaxRows = number("audit_max_rows", "1000000", 1000, 1000000000);
  s.accountUidBase = number("account_uid_base", "20000", 1000, 2000000000);
  s.storageRoot = c.getString("shoald.storage_root", "/srv/shoal");
  if (s.storageRoot.empty() || s.storageRoot[0] != '/' || (s.storageRoot.size() > 1 && s.storageRoot.back() == '/') ||
      s.storageRoot.find("/../") != std::string::npos || s.storageRoot.find_first_of(" \t\n") != std::string::npos)
    invalid(source, "shoald.storage_root '" + s.storageRoot + "' must be an absolute path without blanks or a trailing '/'");
  s.acmeDirectory = c.getString("shoald.acme_directory", "");
  s.acmeEmail = c.getString("shoald.acme_email", "");
  s.acmeCaFile = c.getString("shoald.acme_ca_file", "");
  s.acmeWebroot = c.getString("shoald.acme_webroot", s.storageRoot + "/.acme");
  s.acmeRenewDays = number("acme_renew_days", "30", 1, 89);
  s.acmeCheckSeconds = number("acme_check_seconds", "3600", 1, 86400);
  if (!s.acmeDirectory.empty() && s.acmeEmail.empty())
    invalid(source, "shoald.acme_email is required with acme_directory (the ACME account's contact)");
  const std::string metrics = c.getString("shoald.metrics_listen", "");
  if (!metrics.empty()) {
    // ADDRESS:PORT, an IPv6 address in brackets.
    const auto colon = metrics.rfind(':');
    const bool shaped = colon != std::string::npos && colon > 0 && colon + 1 < metrics.size() &&
                        metrics.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                        metrics.size() - colon <= 6 && std::stoi(metrics.substr(colon + 1)) <= 65535;
    if (!shaped)
      invalid(source, "shoald.metrics_listen '" + metrics +
                          "' must be ADDRESS:PORT, e.g. 127.0.0.1:9717 (unauthenticated plain HTTP: bind it to a "
                          "trusted network only)");
    s.metricsAddress = metrics.substr(0, colon);
    if (s.metricsAddress.size() > 2 && s.metricsAddress.front() == '[' && s.metricsAddress.back() == ']')
      s.metricsAddress = s.metricsAddress.substr(1, s.metricsAddress.size() - 2);
    s.metricsPort = static_cast<std::uint16_t>(std::stoi(metrics.substr(colon + 1)));
  }
  return loaded;
}

std::string readJoinTokenFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) invalid(file.string(), "cannot read the join token file");
  std::ostringstream content;
  content << in.rdbuf();
  std::string token = content.str();
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) invalid(file.string(), "the join token file is empty");
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  if (token.find_first_of(" \t\r\n") != std::string::npos)
    invalid(file.string(), "the join token file must hold one token and nothing else");
  return token;
}

}  // namespace shoal::daemon
