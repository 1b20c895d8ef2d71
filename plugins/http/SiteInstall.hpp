#pragma once
// Applying an account's websites on a web node (http.site.put and http.site.remove).
//
// put: renders the account's vhost file, its php-fpm pool and its certificate files; creates
// every folder and file they name (docroots with the account's uid/gid, logs, sockets' folder,
// the suspended page) first; checks the staged vhost with nginx's own checker and the staged
// pool with php-fpm's, each alone; moves the files into place; checks the whole live nginx
// configuration; reloads (never restarts) what changed. A failed check leaves the old files
// serving, keeps the refused file as <file>.rejected and fails with the checker's message; a
// failed live check or reload puts the old files back. Replaying a put changes nothing.
//
// remove: deletes the vhost, the pool and the certificate files, then reloads. The docroots
// stay: they are the customer's files, on storage other nodes share.
//
// Both return the delivery's output: what changed, then "digest sha256:<hex>" of the rendered
// files. Both throw shoal::PluginError with the message the delivery fails with.
#include <string>

#include "Account.hpp"
#include "SiteSettings.hpp"

namespace shoal::http {

std::string putSite(const Account& account, const SiteSettings& settings);
std::string removeSite(const Account& account, const SiteSettings& settings);

}  // namespace shoal::http
