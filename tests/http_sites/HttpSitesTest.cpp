// The http plugin's websites (http.site.put / http.site.remove) with real nginx and php-fpm:
// the plugin is loaded by the kernel's PluginHost and its handlers are called as a node's agent
// calls them; nginx and a php-fpm master run with their own configuration on 127.0.0.1 and
// are reloaded by the commands the settings name; the accounts' Unix users are real (useradd).
#include <Poco/AutoPtr.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Util/MapConfiguration.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <shoal/process.hpp>
#include "host/HostObjects.hpp"
#include "host/PluginHost.hpp"
#include "http/SiteHooks.hpp"

namespace {

namespace fs = std::filesystem;
using shoal::runProgram;

std::string run(const std::vector<std::string>& argv) {
  const auto r = runProgram(argv, std::chrono::seconds(30));
  if (!r.succeeded()) throw std::runtime_error(argv[0] + " " + r.describe() + ": " + r.output);
  return r.output;
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct Response {
  int status = 0;
  std::string body;
};

// A Unix user of the test, removed with the test.
struct TestUser {
  std::string name;
  std::uint32_t uid = 0;
};

std::string jsonString(const std::string& text) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(Poco::Dynamic::Var(text), out);
  return out.str();
}

class HttpSites : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/shoal-http-sites-XXXXXX";
    root_ = ::mkdtemp(pattern);
    fs::permissions(root_, fs::perms(0755));  // nginx's workers (www-data) reach the docroots
    for (const char* dir : {"nginx", "php", "home"}) fs::create_directories(root_ + "/" + dir);
    port_ = freePort();
    tlsPort_ = freePort();
    while (tlsPort_ == port_) tlsPort_ = freePort();
    adminPort_ = freePort();
    while (adminPort_ == port_ || adminPort_ == tlsPort_) adminPort_ = freePort();
    for (int i = 0; i < 2; ++i) users_.push_back(makeUser());

    const std::string n = root_ + "/nginx";
    writeText(n + "/nginx.conf",
              "user www-data;\nworker_processes 1;\npid " + n + "/nginx.pid;\nerror_log " + n + "/error.log;\n"
              "events { worker_connections 64; }\nhttp {\n    access_log off;\n"
              "    include " + root_ + "/sites/*.conf;\n"
              "    server { listen 127.0.0.1:" + std::to_string(port_) + " default_server; return 404; }\n"
              "    # The admin's own site, which an account's nginx_extra may clash with.\n"
              "    server { listen 127.0.0.1:" + std::to_string(adminPort_) + " default_server; return 204; }\n}\n");
    fs::create_directories(root_ + "/sites");
    fs::create_directories(root_ + "/pools");
    const std::string p = root_ + "/php";
    // A pool of its own keeps the master up when the accounts have none (suspended, removed).
    writeText(p + "/php-fpm.conf",
              "[global]\npid = " + p + "/php-fpm.pid\nerror_log = " + p + "/php-fpm.log\n"
              "include = " + root_ + "/pools/*.conf\n"
              "[keeper]\nuser = www-data\ngroup = www-data\nlisten = " + p + "/keeper.sock\npm = ondemand\npm.max_children = 1\n");
    nginxArgv_ = {"nginx", "-p", n + "/", "-c", n + "/nginx.conf"};
    run(nginxArgv_);
    run({"php-fpm8.2", "-y", p + "/php-fpm.conf"});

    config_ = new Poco::Util::MapConfiguration;
    const std::string nginxLine = "nginx -p " + n + "/ -c " + n + "/nginx.conf";
    const std::vector<std::pair<std::string, std::string>> settings{
        {"site_port", std::to_string(port_)},
        {"site_tls_port", std::to_string(tlsPort_)},
        {"site_listen_address", "127.0.0.1"},
        {"sites_dir", root_ + "/sites"},
        {"pools_dir", root_ + "/pools"},
        {"cert_dir", root_ + "/certs"},
        {"log_dir", root_ + "/logs"},
        {"php_run_dir", root_ + "/run"},
        {"acme_challenge_root", root_ + "/acme"},
        {"static_dir", root_ + "/static"},
        {"nginx_command", nginxLine},
        {"nginx_reload_command", nginxLine + " -s reload"},
        // SIGUSR2 is php-fpm's graceful reload.
        {"php_fpm_reload_command", "pkill --signal USR2 --pidfile " + p + "/php-fpm.pid"},
    };
    for (const auto& [key, value] : settings) config_->setString("plugin.http." + key, value);
    host_ = new shoal::host::PluginHost(shoal::host::HostServices{config_.get(), nullptr});
    const auto record = host_->load(SHOAL_PLUGIN_FILE_HTTP);
    ASSERT_TRUE(host_->registries().queueHandler("http.site.put")) << "the http plugin did not load";
  }

  static void TearDownTestSuite() {
    delete host_;
    host_ = nullptr;
    config_ = nullptr;
    auto stop = [](const std::string& pidfile) {
      const auto pid = std::atoi(readText(pidfile).c_str());
      if (pid > 0) ::kill(pid, SIGQUIT);
    };
    stop(root_ + "/nginx/nginx.pid");
    stop(root_ + "/php/php-fpm.pid");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (const auto& u : users_) {
      runProgram({"userdel", u.name}, std::chrono::seconds(10));
      runProgram({"groupdel", u.name}, std::chrono::seconds(10));
    }
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  static TestUser makeUser() {
    std::mt19937 random(std::random_device{}());
    for (int attempt = 0; attempt < 50; ++attempt) {
      TestUser u;
      u.name = "shoalt";
      for (int i = 0; i < 6; ++i) u.name += static_cast<char>('a' + random() % 26);
      u.uid = 29000 + random() % 10000;
      if (::getpwuid(u.uid) || ::getpwnam(u.name.c_str())) continue;
      run({"groupadd", "--gid", std::to_string(u.uid), u.name});
      run({"useradd", "--uid", std::to_string(u.uid), "--gid", std::to_string(u.uid), "--home-dir",
           root_ + "/home/" + u.name, "--no-create-home", "--shell", "/usr/sbin/nologin", u.name});
      return u;
    }
    throw std::runtime_error("no free test user name and uid");
  }

  static std::string home(const TestUser& u) { return root_ + "/home/" + u.name; }

  // The account JSON of docs/adr/0013-hosting-accounts.md.
  static std::string account(const TestUser& u, const std::string& domain, const std::string& state = "active",
                             const std::string& nginxExtra = "", const std::string& certificate = "null") {
    return R"({"name": ")" + u.name + R"(", "uid": )" + std::to_string(u.uid) + R"(, "gid": )" +
           std::to_string(u.uid) + R"(, "home": ")" + home(u) + R"(", "state": ")" + state +
           R"(", "suspend_reason": "", "plan": "basic", "limits": {"http.domains": 10},
             "domains": [{"name": ")" + domain + R"(", "unicode": ")" + domain + R"(", "kind": "primary",
                          "parent": "", "nginx_extra": )" + jsonString(nginxExtra) + R"(},
                         {"name": "www.)" + domain + R"(", "unicode": "www.)" + domain + R"(", "kind": "alias",
                          "parent": ")" + domain + R"(", "nginx_extra": ""}],
             "certificate": )" + certificate + R"(, "revision": 3, "created_at_ms": 1764000000000,
             "updated_at_ms": 1764000000000})";
  }

  static std::pair<shoal_status, std::string> apply(const std::string& kind, const std::string& accountJson) {
    const auto handler = host_->registries().queueHandler(kind);
    if (!handler) throw std::runtime_error("no handler for " + kind);
    const std::string payload = R"({"account": )" + accountJson + "}";
    shoal_reply reply;
    const auto status = handler->onApply(handler->user, shoal_str{payload.data(), payload.size()}, &reply);
    return {status, status == SHOAL_OK ? reply.output : reply.error};
  }

  static std::pair<shoal_status, std::string> validate(const std::string& kind, const std::string& payload) {
    const auto handler = host_->registries().queueHandler(kind);
    shoal_reply reply;
    const auto status = handler->onValidate(handler->user, shoal_str{payload.data(), payload.size()}, &reply);
    return {status, reply.error};
  }

  static Response get(const std::string& host, const std::string& path, bool tls = false, const std::string& ca = "") {
    std::vector<std::string> argv{"curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}"};
    std::string url;
    if (tls) {
      const std::string port = std::to_string(tlsPort_);
      argv.insert(argv.end(), {"--cacert", ca, "--resolve", host + ":" + port + ":127.0.0.1"});
      url = "https://" + host + ":" + port + path;
    } else {
      argv.insert(argv.end(), {"-H", "Host: " + host});
      url = "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    argv.push_back(url);
    const auto r = runProgram(argv, std::chrono::seconds(10));
    Response out;
    const auto cut = r.output.rfind('\n');
    if (cut == std::string::npos) return out;
    out.status = std::atoi(r.output.substr(cut + 1).c_str());
    out.body = r.output.substr(0, cut);
    return out;
  }

  // Reloads take effect a moment later, worker by worker: wait for the answer expected.
  static Response waitFor(const std::string& host, const std::string& path, int status, const std::string& part,
                          bool tls = false, const std::string& ca = "") {
    Response r;
    for (int i = 0; i < 100; ++i) {
      r = get(host, path, tls, ca);
      if (r.status == status && contains(r.body, part)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }

  static void writeAs(const TestUser& u, const std::string& path, const std::string& text, mode_t mode = 0644) {
    writeText(path, text);
    ::chown(path.c_str(), u.uid, u.uid);
    ::chmod(path.c_str(), mode);
  }

  static inline std::string root_;
  static inline std::uint16_t port_ = 0, tlsPort_ = 0, adminPort_ = 0;
  static inline std::vector<TestUser> users_;
  static inline std::vector<std::string> nginxArgv_;
  static inline Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  static inline shoal::host::PluginHost* host_ = nullptr;
};

const std::string kAcme = "acme-site.test";
const std::string kBeta = "beta-site.test";

TEST_F(HttpSites, APutServesTheDefaultIndexAndPhpRunsAsTheAccount) {
  const auto& acme = users_[0];
  const auto [status, output] = apply("http.site.put", account(acme, kAcme));
  ASSERT_EQ(status, SHOAL_OK) << output;
  EXPECT_TRUE(contains(output, "wrote " + root_ + "/sites/" + acme.name + ".conf")) << output;
  EXPECT_TRUE(contains(output, "digest sha256:")) << output;

  const auto docroot = home(acme) + "/" + kAcme + "/public_html";
  struct stat st{};
  ASSERT_EQ(::stat(docroot.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, acme.uid);
  EXPECT_EQ(st.st_gid, acme.uid);
  EXPECT_TRUE(contains(waitFor(kAcme, "/", 200, kAcme).body, kAcme));
  // The alias is served by its parent's server block.
  EXPECT_TRUE(contains(waitFor("www." + kAcme, "/", 200, kAcme).body, kAcme));
  // Another name reaches the default server, not the account's.
  EXPECT_EQ(get("other.test", "/").status, 404);

  writeAs(acme, docroot + "/id.php", "<?php echo 'uid=' . posix_getuid();\n");
  const auto php = waitFor(kAcme, "/id.php", 200, "uid=");
  EXPECT_EQ(php.body, "uid=" + std::to_string(acme.uid));

  // A replay changes nothing and says so, with the same digest.
  const auto digestOf = [](const std::string& out) { return out.substr(out.find("digest ")); };
  const auto [again, replay] = apply("http.site.put", account(acme, kAcme));
  ASSERT_EQ(again, SHOAL_OK) << replay;
  EXPECT_TRUE(contains(replay, "unchanged")) << replay;
  EXPECT_EQ(digestOf(replay), digestOf(output));
  // The index a customer replaced is never overwritten.
  writeAs(acme, docroot + "/index.html", "the customer's own page\n");
  ASSERT_EQ(apply("http.site.put", account(acme, kAcme)).first, SHOAL_OK);
  EXPECT_EQ(readText(docroot + "/index.html"), "the customer's own page\n");
}

TEST_F(HttpSites, AnotherAccountsPhpCannotReadTheFirstsFiles) {
  const auto& acme = users_[0];
  const auto& beta = users_[1];
  ASSERT_EQ(apply("http.site.put", account(acme, kAcme)).first, SHOAL_OK);
  const auto [status, output] = apply("http.site.put", account(beta, kBeta));
  ASSERT_EQ(status, SHOAL_OK) << output;
  const auto secret = home(acme) + "/" + kAcme + "/public_html/secret.txt";
  // World-readable: only open_basedir stands between beta's PHP and the file.
  writeAs(acme, secret, "acme's secret", 0644);
  const std::string reader = "<?php $r = @file_get_contents('" + secret + "'); echo $r === false ? 'denied' : 'read:' . $r;\n";
  writeAs(acme, home(acme) + "/" + kAcme + "/public_html/read.php", reader);
  writeAs(beta, home(beta) + "/" + kBeta + "/public_html/read.php", reader);
  EXPECT_EQ(waitFor(kAcme, "/read.php", 200, "read:").body, "read:acme's secret");
  EXPECT_EQ(waitFor(kBeta, "/read.php", 200, "denied").body, "denied");
  writeAs(beta, home(beta) + "/" + kBeta + "/public_html/id.php", "<?php echo 'uid=' . posix_getuid();\n");
  EXPECT_EQ(waitFor(kBeta, "/id.php", 200, "uid=").body, "uid=" + std::to_string(beta.uid));
}

TEST_F(HttpSites, ACertificateInThePayloadIsServedWithSni) {
  const auto& acme = users_[0];
  const std::string dir = root_ + "/selfmade";
  fs::create_directories(dir);
  run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "2", "-subj", "/CN=" + kAcme, "-addext",
       "subjectAltName=DNS:" + kAcme + ",DNS:www." + kAcme});
  const std::string certificate = R"({"issuer": "cluster-ca", "names": [")" + kAcme + R"("], "certificate_pem": )" +
                                  jsonString(readText(dir + "/cert.pem")) + R"(, "key_pem": )" +
                                  jsonString(readText(dir + "/key.pem")) +
                                  R"(, "not_after_ms": 1790000000000, "fingerprint": "sha256:00"})";
  const auto [status, output] = apply("http.site.put", account(acme, kAcme, "active", "", certificate));
  ASSERT_EQ(status, SHOAL_OK) << output;
  // curl checks the name against the certificate it was sent for the SNI name it asked.
  const auto r = waitFor(kAcme, "/id.php", 200, "uid=", true, dir + "/cert.pem");
  EXPECT_EQ(r.body, "uid=" + std::to_string(acme.uid));
  EXPECT_EQ(waitFor("www." + kAcme, "/id.php", 200, "uid=", true, dir + "/cert.pem").status, 200);
  struct stat st{};
  ASSERT_EQ(::stat((root_ + "/certs/" + acme.name + "/privkey.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(readText(root_ + "/certs/" + acme.name + "/fullchain.pem"), readText(dir + "/cert.pem"));
  // Without a certificate the TLS listener and the files are gone.
  ASSERT_EQ(apply("http.site.put", account(acme, kAcme)).first, SHOAL_OK);
  EXPECT_FALSE(fs::exists(root_ + "/certs/" + acme.name + "/privkey.pem"));
}

TEST_F(HttpSites, SuspensionAnswers503AndUnsuspensionRestoresTheSameRender) {
  const auto& acme = users_[0];
  ASSERT_EQ(apply("http.site.put", account(acme, kAcme)).first, SHOAL_OK);
  const auto vhost = root_ + "/sites/" + acme.name + ".conf";
  const auto pool = root_ + "/pools/shoal-" + acme.name + ".conf";
  const auto normal = readText(vhost);
  ASSERT_TRUE(fs::exists(pool));

  const auto [status, output] = apply("http.site.put", account(acme, kAcme, "suspended"));
  ASSERT_EQ(status, SHOAL_OK) << output;
  EXPECT_TRUE(contains(output, "removed " + pool)) << output;
  const auto r = waitFor(kAcme, "/id.php", 503, "suspended");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(contains(r.body, "This site is suspended")) << r.body;
  EXPECT_EQ(waitFor("www." + kAcme, "/", 503, "suspended").status, 503);
  EXPECT_FALSE(fs::exists(pool));

  ASSERT_EQ(apply("http.site.put", account(acme, kAcme, "active")).first, SHOAL_OK);
  EXPECT_EQ(readText(vhost), normal);
  EXPECT_TRUE(fs::exists(pool));
  EXPECT_EQ(waitFor(kAcme, "/id.php", 200, "uid=").body, "uid=" + std::to_string(acme.uid));
}

TEST_F(HttpSites, ABadNginxExtraFailsWithNginxsMessageAndTheOldConfigKeepsServing) {
  const auto& acme = users_[0];
  ASSERT_EQ(apply("http.site.put", account(acme, kAcme)).first, SHOAL_OK);
  const auto vhost = root_ + "/sites/" + acme.name + ".conf";
  const auto before = readText(vhost);

  const auto [status, output] = apply("http.site.put", account(acme, kAcme, "active", "no_such_directive on;\n"));
  EXPECT_NE(status, SHOAL_OK);
  EXPECT_TRUE(contains(output, "unknown directive \"no_such_directive\"")) << output;
  EXPECT_TRUE(contains(output, ".rejected")) << output;
  EXPECT_EQ(readText(vhost), before);
  ASSERT_TRUE(fs::exists(vhost + ".rejected"));
  EXPECT_TRUE(contains(readText(vhost + ".rejected"), "no_such_directive on;"));
  EXPECT_EQ(waitFor(kAcme, "/id.php", 200, "uid=").body, "uid=" + std::to_string(acme.uid));

  // Accepted alone but not beside the admin's own server blocks (a second default server for
  // the admin's port): the live check after the rename refuses it and the old file is back.
  ::unlink((vhost + ".rejected").c_str());
  const auto [clash, clashOutput] = apply(
      "http.site.put", account(acme, kAcme, "active", "listen 127.0.0.1:" + std::to_string(adminPort_) + " default_server;"));
  EXPECT_NE(clash, SHOAL_OK);
  EXPECT_TRUE(contains(clashOutput, "refused the whole configuration")) << clashOutput;
  EXPECT_TRUE(contains(clashOutput, "duplicate default server")) << clashOutput;
  EXPECT_EQ(readText(vhost), before);
  EXPECT_TRUE(fs::exists(vhost + ".rejected"));
  EXPECT_EQ(waitFor(kAcme, "/id.php", 200, "uid=").body, "uid=" + std::to_string(acme.uid));

  // A good nginx_extra goes in, in the domain's server block, and the rejected file goes.
  const auto [good, goodOutput] =
      apply("http.site.put", account(acme, kAcme, "active", "add_header X-Shoal-Extra yes always;"));
  ASSERT_EQ(good, SHOAL_OK) << goodOutput;
  EXPECT_FALSE(fs::exists(vhost + ".rejected"));
  std::string headers;
  for (int i = 0; i < 100 && !contains(headers, "X-Shoal-Extra"); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    headers = run({"curl", "-s", "-m", "5", "-D", "-", "-o", "/dev/null", "-H", "Host: " + kAcme,
                   "http://127.0.0.1:" + std::to_string(port_) + "/"});
  }
  EXPECT_TRUE(contains(headers, "X-Shoal-Extra: yes")) << headers;
}

TEST_F(HttpSites, WithoutTheAccountsUserOnTheNodeNothingIsWritten) {
  TestUser ghost{"shoalnouser" + std::to_string(::getpid() % 100000), 39999};
  ASSERT_EQ(::getpwnam(ghost.name.c_str()), nullptr);
  const auto [status, output] = apply("http.site.put", account(ghost, "ghost-site.test"));
  EXPECT_NE(status, SHOAL_OK);
  EXPECT_TRUE(contains(output, "the user " + ghost.name + " does not exist on this node")) << output;
  EXPECT_FALSE(fs::exists(home(ghost)));
  EXPECT_FALSE(fs::exists(root_ + "/sites/" + ghost.name + ".conf"));
  // The name with another uid: both are named.
  TestUser impostor{users_[0].name, users_[0].uid + 1};
  const auto [mismatch, mismatchOutput] = apply("http.site.put", account(impostor, "ghost-site.test"));
  EXPECT_NE(mismatch, SHOAL_OK);
  EXPECT_TRUE(contains(mismatchOutput, "has uid " + std::to_string(users_[0].uid))) << mismatchOutput;
  EXPECT_TRUE(contains(mismatchOutput, "the account has uid " + std::to_string(impostor.uid))) << mismatchOutput;
}

TEST_F(HttpSites, APoolPhpFpmRefusesFailsWithItsMessageAndNothingIsInstalled) {
  // A user whose primary group is another account's and no group of its own name: the pool's
  // "group = NAME" is refused by php-fpm's own checker, and neither pool nor vhost goes in.
  const TestUser& other = users_[0];
  TestUser loner{"shoalgrp" + std::to_string(::getpid() % 100000), other.uid + 1};
  while (::getpwuid(loner.uid)) ++loner.uid;
  run({"useradd", "--uid", std::to_string(loner.uid), "--gid", std::to_string(other.uid), "--home-dir",
       home(loner), "--no-create-home", "--shell", "/usr/sbin/nologin", loner.name});
  std::string json = account(loner, "loner-site.test");
  const std::string gid = "\"gid\": " + std::to_string(loner.uid);
  json.replace(json.find(gid), gid.size(), "\"gid\": " + std::to_string(other.uid));
  const auto [status, output] = apply("http.site.put", json);
  runProgram({"userdel", loner.name}, std::chrono::seconds(10));
  EXPECT_NE(status, SHOAL_OK);
  EXPECT_TRUE(contains(output, "php-fpm refused the pool")) << output;
  EXPECT_TRUE(contains(output, "cannot get gid for group '" + loner.name + "'")) << output;
  EXPECT_TRUE(fs::exists(root_ + "/pools/shoal-" + loner.name + ".conf.rejected"));
  EXPECT_FALSE(fs::exists(root_ + "/pools/shoal-" + loner.name + ".conf"));
  EXPECT_FALSE(fs::exists(root_ + "/sites/" + loner.name + ".conf"));
  EXPECT_EQ(get("loner-site.test", "/").status, 404);
}

TEST_F(HttpSites, OnValidateRefusesBadAccountsNamingTheField) {
  const auto& acme = users_[0];
  const auto payload = [](const std::string& account) { return R"({"account": )" + account + "}"; };
  std::string good = account(acme, kAcme);
  EXPECT_EQ(validate("http.site.put", payload(good)).first, SHOAL_OK);
  EXPECT_EQ(validate("http.site.remove", payload(good)).first, SHOAL_OK);
  const auto refused = [&](std::string from, const std::string& to, const std::string& field) {
    from.replace(from.find(to.substr(0, to.find('|'))), to.find('|'), to.substr(to.find('|') + 1));
    const auto [status, error] = validate("http.site.put", payload(from));
    EXPECT_EQ(status, SHOAL_ERR_INVALID_ARGUMENT) << from;
    EXPECT_TRUE(contains(error, field)) << error;
  };
  refused(good, "\"name\": \"" + acme.name + "|\"name\": \"root", "account.name");
  refused(good, "\"name\": \"" + acme.name + "|\"name\": \"Bad", "account.name");
  refused(good, "\"uid\": " + std::to_string(acme.uid) + "|\"uid\": 0", "account.uid");
  refused(good, "\"home\": \"/|\"home\": \"", "account.home");
  refused(good, "\"home\": \"" + home(acme) + "|\"home\": \"/srv/../etc", "account.home");
  refused(good, "\"kind\": \"primary|\"kind\": \"parked", "account.domains[0].kind");
  refused(good, "\"name\": \"" + kAcme + "|\"name\": \"Acme.Test", "account.domains[0].name");
  refused(good, "\"state\": \"active|\"state\": \"paused", "account.state");
  EXPECT_EQ(validate("http.site.put", payload(account(acme, kAcme, "active", std::string(4096, '#')))).first, SHOAL_OK);
  const auto [status, error] = validate("http.site.put", payload(account(acme, kAcme, "active", std::string(4097, '#'))));
  EXPECT_EQ(status, SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(error, "account.domains[0].nginx_extra")) << error;
  const auto [nul, nulError] = validate("http.site.put", payload(account(acme, kAcme, "active", std::string("a\0b", 3))));
  EXPECT_EQ(nul, SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(nulError, "NUL")) << nulError;
  EXPECT_EQ(validate("http.site.put", R"({"account": {}, "extra": 1})").first, SHOAL_ERR_INVALID_ARGUMENT);
}

TEST_F(HttpSites, RemoveLeavesNoVhostPoolOrCertificateButTheDocroot) {
  const auto& beta = users_[1];
  ASSERT_EQ(apply("http.site.put", account(beta, kBeta)).first, SHOAL_OK);
  const auto [status, output] = apply("http.site.remove", account(beta, kBeta));
  ASSERT_EQ(status, SHOAL_OK) << output;
  EXPECT_FALSE(fs::exists(root_ + "/sites/" + beta.name + ".conf"));
  EXPECT_FALSE(fs::exists(root_ + "/pools/shoal-" + beta.name + ".conf"));
  EXPECT_FALSE(fs::exists(root_ + "/certs/" + beta.name));
  EXPECT_TRUE(fs::exists(home(beta) + "/" + kBeta + "/public_html/read.php"));
  EXPECT_EQ(waitFor(kBeta, "/", 404, "").status, 404);
  // Removing again is a replay: nothing to do.
  const auto [again, replay] = apply("http.site.remove", account(beta, kBeta));
  ASSERT_EQ(again, SHOAL_OK) << replay;
  EXPECT_TRUE(contains(replay, "unchanged")) << replay;
}

// Loaded by a 1.5 kernel, the plugin declares its two limit dimensions and subscribes to
// every account and domain event, on the same load that serves the sites above.
TEST_F(HttpSites, DeclaresItsLimitsAndSubscribesToTheAccountEvents) {
  const auto domains = host_->registries().limit("http.domains");
  ASSERT_TRUE(domains);
  EXPECT_EQ(domains->label, "Domains");
  EXPECT_EQ(domains->counts, "domains");
  const auto disk = host_->registries().limit("http.disk_mb");
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->label, "Disk space (MB)");
  EXPECT_EQ(disk->counts, "");
  EXPECT_EQ(host_->registries().limits().size(), 2u);
  for (const auto& event : shoal::http::siteEvents()) {
    const auto hooks = host_->registries().hooks(event);
    ASSERT_EQ(hooks.size(), 1u) << event;
    EXPECT_EQ(hooks[0].plugin, "http") << event;
  }
}

// The manager's hooks turn account events into commands: which kind, key, target and stagger.
TEST(HttpSiteHooks, AccountEventsBecomeCommandsForEveryWebNode) {
  const std::string state = R"({"name": "acme", "uid": 20001, "gid": 20001, "home": "/srv/shoal/acme",
    "state": "active", "plan": "basic", "limits": {"http.domains": 10},
    "domains": [{"name": "acme.test", "unicode": "acme.test", "kind": "primary", "parent": "", "nginx_extra": ""}],
    "certificate": null, "revision": 7})";
  const auto parse = [](const std::string& text) {
    return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
  };
  for (const std::string event : {"account.created", "account.changed", "account.suspended", "account.unsuspended",
                                  "domain.added", "domain.removed", "account.removed"}) {
    const std::string payload = R"({"account": )" + state + (event.rfind("domain.", 0) == 0 ? R"(, "domain": "acme.test"})" : "}");
    const auto request = shoal::http::siteCommandForEvent(event, payload, 1000);
    ASSERT_TRUE(request) << event;
    const auto r = parse(*request);
    EXPECT_EQ(r->getValue<std::string>("kind"), event == "account.removed" ? "http.site.remove" : "http.site.put");
    EXPECT_EQ(r->getValue<std::string>("key"), "account:acme");
    EXPECT_EQ(r->getObject("target")->getValue<std::string>("role"), "http");
    EXPECT_EQ(r->getValue<int>("stagger_ms"), 1000);
    // The account travels whole, as the event gave it; nothing but the account.
    const auto commandPayload = r->getObject("payload");
    EXPECT_EQ(commandPayload->size(), 1u);
    EXPECT_EQ(commandPayload->getObject("account")->getValue<int>("revision"), 7);
    EXPECT_EQ(commandPayload->getObject("account")->getObject("limits")->getValue<int>("http.domains"), 10);
  }
  EXPECT_FALSE(shoal::http::siteCommandForEvent("node.joined", "{}", 1000));
  EXPECT_FALSE(parse(*shoal::http::siteCommandForEvent("account.created", R"({"account": )" + state + "}", 0))->has("stagger_ms"));
  EXPECT_THROW(shoal::http::siteCommandForEvent("account.created", R"({"domain": "x"})", 0), std::invalid_argument);
  EXPECT_THROW(shoal::http::siteCommandForEvent("account.created", R"({"account": {"name": "root"}})", 0), std::invalid_argument);
}

}  // namespace
