#pragma once
// [plugin.http] settings of the websites (http.site.put / http.site.remove and their hooks),
// read once at init. Paths are absolute; commands are argv lines (shoal/process.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include <shoal/sdk.hpp>

namespace shoal::http {

struct SiteSettings {
  std::uint16_t sitePort = 80;        // site_port: every site's plain listener
  std::uint16_t siteTlsPort = 443;    // site_tls_port: the TLS listener of accounts with a certificate
  std::string listenAddress;          // site_listen_address: empty = every address
  std::string sitesDir = "/etc/nginx/shoal-sites";     // sites_dir: <account>.conf
  std::string poolsDir = "/etc/php/8.2/fpm/pool.d";    // pools_dir: shoal-<account>.conf
  std::string certDir = "/etc/shoal/certs";            // cert_dir: <account>/fullchain.pem, privkey.pem
  std::string logDir = "/var/log/nginx/shoal";         // log_dir: <domain>.access.log, .error.log
  std::string phpRunDir = "/run/shoal-php";            // php_run_dir: <account>.sock
  std::string acmeChallengeRoot = "/srv/shoal/.acme";  // acme_challenge_root
  std::string staticDir = "/var/lib/shoal/http";       // static_dir: the suspended page
  std::string nginxUser = "www-data";                  // nginx_user: owns the PHP sockets
  std::vector<std::string> nginxCommand{"nginx"};
  std::vector<std::string> phpFpmCommand{"php-fpm8.2"};
  std::vector<std::string> nginxReloadCommand{"nginx", "-s", "reload"};
  std::vector<std::string> phpFpmReloadCommand{"systemctl", "reload", "php8.2-fpm"};
  int reloadStaggerMs = 1000;  // reload_stagger_ms: between the web nodes' deliveries
  int commandTimeoutMs = 60000;  // site_command_timeout_ms: each check or reload
};

// Throws shoal::PluginError naming the [plugin.http] key on a bad value.
SiteSettings readSiteSettings(const shoal::Host& host);

}  // namespace shoal::http
