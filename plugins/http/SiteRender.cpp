#include "SiteRender.hpp"

namespace shoal::http {
namespace {

std::string listenLine(const SiteSettings& s, std::uint16_t port, bool tls) {
  const std::string where = s.listenAddress.empty() ? std::to_string(port) : s.listenAddress + ":" + std::to_string(port);
  return "    listen " + where + (tls ? " ssl" : "") + ";\n";
}

// The FastCGI parameters PHP needs, written out rather than included from the distribution's
// fastcgi_params so the file checks the same under any nginx prefix.
const char* kFastcgiParams =
    "        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
    "        fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n"
    "        fastcgi_param DOCUMENT_ROOT $document_root;\n"
    "        fastcgi_param QUERY_STRING $query_string;\n"
    "        fastcgi_param REQUEST_METHOD $request_method;\n"
    "        fastcgi_param CONTENT_TYPE $content_type;\n"
    "        fastcgi_param CONTENT_LENGTH $content_length;\n"
    "        fastcgi_param REQUEST_URI $request_uri;\n"
    "        fastcgi_param DOCUMENT_URI $document_uri;\n"
    "        fastcgi_param SERVER_PROTOCOL $server_protocol;\n"
    "        fastcgi_param REQUEST_SCHEME $scheme;\n"
    "        fastcgi_param HTTPS $https if_not_empty;\n"
    "        fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n"
    "        fastcgi_param REMOTE_ADDR $remote_addr;\n"
    "        fastcgi_param REMOTE_PORT $remote_port;\n"
    "        fastcgi_param SERVER_ADDR $server_addr;\n"
    "        fastcgi_param SERVER_PORT $server_port;\n"
    "        fastcgi_param SERVER_NAME $server_name;\n"
    "        fastcgi_param HTTP_PROXY \"\";\n";

std::string serverBlock(const Account& a, const SiteSettings& s, const std::string& certDir, const Domain& site) {
  std::string names;
  for (const auto& n : a.serverNames(site)) names += " " + n;
  std::string out = "server {\n" + listenLine(s, s.sitePort, false);
  if (a.certificate) {
    out += listenLine(s, s.siteTlsPort, true);
    out += "    ssl_certificate " + certFolder(certDir, a) + "/fullchain.pem;\n";
    out += "    ssl_certificate_key " + certFolder(certDir, a) + "/privkey.pem;\n";
  }
  out += "    server_name" + names + ";\n";
  out += "    access_log " + s.logDir + "/" + site.name + ".access.log;\n";
  out += "    error_log " + s.logDir + "/" + site.name + ".error.log;\n";
  // Certificates are issued while an account is suspended too.
  out += "    location ^~ /.well-known/acme-challenge/ { root " + s.acmeChallengeRoot + "; }\n";
  if (a.suspended) {
    out += "    root " + s.staticDir + ";\n";
    out += "    error_page 503 /suspended.html;\n";
    out += "    location = /suspended.html { internal; }\n";
    out += "    location / { return 503; }\n";
    return out + "}\n";
  }
  out += "    root " + docroot(a, site) + ";\n";
  out += "    index index.php index.html;\n";
  out += "    location ~ \\.php$ {\n";
  out += "        try_files $uri =404;\n";
  out += "        fastcgi_pass unix:" + socketPath(s, a) + ";\n";
  out += kFastcgiParams;
  out += "    }\n";
  if (!site.nginxExtra.empty()) {
    out += "    # nginx_extra of " + site.name + "\n" + site.nginxExtra;
    if (site.nginxExtra.back() != '\n') out += "\n";
  }
  return out + "}\n";
}

}  // namespace

std::string vhostPath(const SiteSettings& s, const Account& a) { return s.sitesDir + "/" + a.name + ".conf"; }
std::string poolPath(const SiteSettings& s, const Account& a) { return s.poolsDir + "/shoal-" + a.name + ".conf"; }
std::string certFolder(const std::string& certDir, const Account& a) { return certDir + "/" + a.name; }
std::string socketPath(const SiteSettings& s, const Account& a) { return s.phpRunDir + "/" + a.name + ".sock"; }
std::string docroot(const Account& a, const Domain& site) { return a.home + "/" + site.name + "/public_html"; }
std::string suspendedPagePath(const SiteSettings& s) { return s.staticDir + "/suspended.html"; }
std::string accountTmp(const Account& a) { return a.home + "/tmp"; }

std::string renderVhost(const Account& a, const SiteSettings& s, const std::string& certDir) {
  std::string out = "# Written by shoal's http plugin for account " + a.name + " (revision " +
                    std::to_string(a.revision) + "); every change here is replaced on the next put.\n";
  for (const Domain* site : a.sites()) out += serverBlock(a, s, certDir, *site);
  return out;
}

std::optional<std::string> renderPool(const Account& a, const SiteSettings& s) {
  if (a.suspended) return std::nullopt;
  const std::string tmp = accountTmp(a);
  return "; Written by shoal's http plugin for account " + a.name + " (revision " + std::to_string(a.revision) + ").\n"
         "[" + a.name + "]\n"
         "user = " + a.name + "\n"
         "group = " + a.name + "\n"
         "listen = " + socketPath(s, a) + "\n"
         "listen.owner = " + s.nginxUser + "\n"
         "listen.group = " + s.nginxUser + "\n"
         "listen.mode = 0660\n"
         "pm = ondemand\n"
         "pm.max_children = 10\n"
         "pm.process_idle_timeout = 30s\n"
         "pm.max_requests = 500\n"
         "chdir = /\n"
         "php_admin_value[open_basedir] = " + a.home + "/\n"
         "php_admin_value[session.save_path] = " + tmp + "\n"
         "php_admin_value[upload_tmp_dir] = " + tmp + "\n"
         "php_admin_value[sys_temp_dir] = " + tmp + "\n";
}

std::string suspendedPage() {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Site suspended</title></head>\n"
         "<body><h1>This site is suspended</h1><p>The account that hosts this site is suspended. "
         "Its owner can contact the hosting provider.</p></body></html>\n";
}

}  // namespace shoal::http
