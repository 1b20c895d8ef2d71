#pragma once
// What an account becomes on a web node: the text of its nginx server blocks and of its
// php-fpm pool, and where each file lives. Pure functions of the account and the settings,
// so the same account always renders the same bytes (the digest of a put says so).
#include <optional>
#include <string>

#include "Account.hpp"
#include "SiteSettings.hpp"

namespace shoal::http {

std::string vhostPath(const SiteSettings& s, const Account& a);      // <sites_dir>/<name>.conf
std::string poolPath(const SiteSettings& s, const Account& a);       // <pools_dir>/shoal-<name>.conf
std::string certFolder(const std::string& certDir, const Account& a);  // <cert_dir>/<name>
std::string socketPath(const SiteSettings& s, const Account& a);     // <php_run_dir>/<name>.sock
std::string docroot(const Account& a, const Domain& site);           // <home>/<domain>/public_html
std::string suspendedPagePath(const SiteSettings& s);                // <static_dir>/suspended.html
std::string accountTmp(const Account& a);                            // <home>/tmp

// The server blocks of every site of the account. `certDir` is where the certificate files are
// named from: the settings' cert_dir for the installed file, a staging folder for its check.
std::string renderVhost(const Account& a, const SiteSettings& s, const std::string& certDir);

// The account's pool; none while the account is suspended (its PHP must not run).
std::optional<std::string> renderPool(const Account& a, const SiteSettings& s);

// The page every server of a suspended account answers with (HTTP 503).
std::string suspendedPage();

}  // namespace shoal::http
