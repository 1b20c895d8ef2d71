#include "SiteSettings.hpp"

#include <regex>

#include "common/ProbeConfig.hpp"
#include "common/ProxyProtocolConfig.hpp"

namespace shoal::http {

SiteSettings readSiteSettings(const shoal::Host& host) {
  using namespace shoal::plugins;
  const ProbeConfig numbers(host, "http");
  SiteSettings s;
  s.sitePort = numbers.port("site_port", s.sitePort);
  s.siteTlsPort = numbers.port("site_tls_port", s.siteTlsPort);
  if (s.sitePort == s.siteTlsPort) refuseSetting("http", "site_tls_port", "must differ from site_port");
  s.listenAddress = host.config("site_listen_address", "");
  static const std::regex address(R"([0-9.]{7,15}|\[[0-9a-fA-F:.]+\])");
  if (!s.listenAddress.empty() && !std::regex_match(s.listenAddress, address))
    refuseSetting("http", "site_listen_address", "'" + s.listenAddress + "' must be an IPv4 address or [IPv6]");
  s.sitesDir = configFilePath(host, "http", "sites_dir", s.sitesDir);
  s.poolsDir = configFilePath(host, "http", "pools_dir", s.poolsDir);
  s.certDir = configFilePath(host, "http", "cert_dir", s.certDir);
  s.logDir = configFilePath(host, "http", "log_dir", s.logDir);
  s.phpRunDir = configFilePath(host, "http", "php_run_dir", s.phpRunDir);
  s.acmeChallengeRoot = configFilePath(host, "http", "acme_challenge_root", s.acmeChallengeRoot);
  s.staticDir = configFilePath(host, "http", "static_dir", s.staticDir);
  s.nginxUser = host.config("nginx_user", s.nginxUser);
  static const std::regex user("[a-z_][a-z0-9_-]{0,31}");
  if (!std::regex_match(s.nginxUser, user)) refuseSetting("http", "nginx_user", "'" + s.nginxUser + "' is not a user name");
  s.nginxCommand = commandSetting(host, "http", "nginx_command", "nginx");
  s.phpFpmCommand = commandSetting(host, "http", "php_fpm_command", "php-fpm8.2");
  s.nginxReloadCommand = commandSetting(host, "http", "nginx_reload_command", "nginx -s reload");
  s.phpFpmReloadCommand = commandSetting(host, "http", "php_fpm_reload_command", "systemctl reload php8.2-fpm");
  s.reloadStaggerMs = static_cast<int>(numbers.number("reload_stagger_ms", 1000, 0, 60000));
  s.commandTimeoutMs = static_cast<int>(numbers.number("site_command_timeout_ms", 60000, 1000, 600000));
  return s;
}

}  // namespace shoal::http
