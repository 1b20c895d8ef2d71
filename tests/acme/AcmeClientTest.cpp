// AcmeClient and AcmeRenewer against real pebble, pebble-challtestsrv, lego and nginx, all on
// 127.0.0.1 with free ports picked here. pebble validates http-01 by asking challtestsrv's DNS
// (every name is 127.0.0.1) and fetching http://NAME:httpPort/.well-known/acme-challenge/T
// from nginx, which serves the webroot lego writes the token into.
#include "tls/AcmeClient.hpp"

#include "common/Error.hpp"
#include "tls/CertificateAuthority.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

namespace shoal::tls {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const fs::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// The program's absolute path from PATH (plus /usr/sbin, where nginx lives), or empty.
std::string findProgram(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  path += ":/usr/sbin:/sbin";
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path candidate = fs::path(dir) / name;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

// A port on 127.0.0.1 free for TCP and UDP at the time of asking.
int freePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(tcp, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(tcp, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(tcp);
      continue;
    }
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    const bool udpFree = ::bind(udp, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(udp);
    ::close(tcp);
    if (udpFree) return ntohs(address.sin_port);
  }
  throw std::runtime_error("no free port on 127.0.0.1");
}

bool canConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

// A daemon of the test: its output in a log file, SIGKILLed when the test process dies
// (PR_SET_PDEATHSIG), SIGTERMed then SIGKILLed when destroyed.
class Daemon {
 public:
  Daemon(std::string name, const std::vector<std::string>& argv, const std::vector<std::string>& extraEnvironment,
         const fs::path& log)
      : name_(std::move(name)), log_(log) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      const int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      // pebble fetches http://acme.test:PORT/ itself: never through a proxy of the machine's.
      for (const char* proxy : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
        ::unsetenv(proxy);
      }
      for (const auto& variable : extraEnvironment) ::putenv(const_cast<char*>(variable.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  bool running() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

  // Waits until 127.0.0.1:port accepts connections; throws with the daemon's log otherwise.
  void awaitPort(int port) const {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!running()) throw std::runtime_error(name_ + " exited:\n" + readFile(log_));
      if (canConnect(port)) return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error(name_ + " does not listen on " + std::to_string(port) + ":\n" + readFile(log_));
  }

  const std::string& name() const { return name_; }
  const fs::path& log() const { return log_; }

 private:
  std::string name_;
  fs::path log_;
  pid_t pid_ = -1;
};

struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using Certificate = std::unique_ptr<X509, X509Free>;

std::vector<Certificate> parseAll(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::vector<Certificate> certificates;
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate);
  }
  return certificates;
}

std::set<std::string> dnsNames(X509* certificate) {
  std::set<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
    if (name->type == GEN_DNS) {
      names.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                    ASN1_STRING_length(name->d.dNSName));
    }
  }
  GENERAL_NAMES_free(general);
  return names;
}

std::string serialOf(X509* certificate) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> number(ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr),
                                                     BN_free);
  char* hex = BN_bn2hex(number.get());
  std::string serial(hex);
  OPENSSL_free(hex);
  return serial;
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A directory under /tmp, removed with everything in it (also when a constructor throws).
class ScratchDirectory {
 public:
  explicit ScratchDirectory(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  ~ScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// pebble, its DNS, nginx and the settings of a client that uses them; shared by the tests
// (pebble's CA is made afresh at every start, so one pebble means one root to check against).
class PebbleEnvironment {
 public:
  PebbleEnvironment() : scratch_("shoal-acme"), dir_(scratch_.path()) {
    for (const char* program : {"pebble", "pebble-challtestsrv", "lego", "nginx"}) {
      if (findProgram(program).empty()) {
        throw std::runtime_error(std::string(program) + " is not installed (bash scripts/install-deps.sh test)");
      }
    }
    // pebble's own TLS certificate, which lego must trust: from a CA of the test's.
    const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir_ / "pebble-ca", "pebble test CA");
    const ServerCredentials tls = ensureServerCredentials(dir_ / "pebble-tls", ca, {"127.0.0.1", "localhost"});
    pebbleCaFile_ = ca.certificateFile();

    const int dnsPort = freePort();
    const int challengeManagementPort = freePort();
    acmePort_ = freePort();
    managementPort_ = freePort();
    httpPort_ = freePort();

    webroot_ = dir_ / "webroot";
    fs::create_directories(webroot_ / ".well-known" / "acme-challenge");
    fs::create_directories(dir_ / "nginx" / "logs");
    // master_process off: one process, running as root like the test, so it reads the
    // webroot under /tmp whatever its modes; PR_SET_PDEATHSIG reaches it.
    writeFile(dir_ / "nginx" / "nginx.conf",
              "daemon off;\nmaster_process off;\npid " + (dir_ / "nginx" / "nginx.pid").string() +
                  ";\nerror_log stderr info;\nevents {}\nhttp {\n  access_log " +
                  (dir_ / "nginx" / "logs" / "access.log").string() +
                  ";\n  client_body_temp_path " + (dir_ / "nginx").string() + "/body;\n  proxy_temp_path " +
                  (dir_ / "nginx").string() + "/proxy;\n  fastcgi_temp_path " + (dir_ / "nginx").string() +
                  "/fastcgi;\n  uwsgi_temp_path " + (dir_ / "nginx").string() + "/uwsgi;\n  scgi_temp_path " +
                  (dir_ / "nginx").string() + "/scgi;\n  server {\n    listen 127.0.0.1:" + std::to_string(httpPort_) +
                  ";\n    location /.well-known/acme-challenge/ {\n      root " + webroot_.string() +
                  ";\n      default_type text/plain;\n    }\n  }\n}\n");
    writeFile(dir_ / "pebble.json",
              "{\"pebble\": {\"listenAddress\": \"127.0.0.1:" + std::to_string(acmePort_) +
                  "\", \"managementListenAddress\": \"127.0.0.1:" + std::to_string(managementPort_) +
                  "\", \"certificate\": \"" + tls.certificateFile.string() + "\", \"privateKey\": \"" +
                  tls.keyFile.string() + "\", \"httpPort\": " + std::to_string(httpPort_) +
                  ", \"tlsPort\": " + std::to_string(freePort()) +
                  ", \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false}}\n");

    challengeServer_ = std::make_unique<Daemon>(
        "pebble-challtestsrv",
        std::vector<std::string>{findProgram("pebble-challtestsrv"), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                                 "-dns01", "127.0.0.1:" + std::to_string(dnsPort), "-http01", "", "-https01", "",
                                 "-tlsalpn01", "", "-management",
                                 "127.0.0.1:" + std::to_string(challengeManagementPort)},
        std::vector<std::string>{}, dir_ / "challtestsrv.log");
    challengeServer_->awaitPort(challengeManagementPort);
    // No random validation delay, no refused nonces; an authorization lego proved once is
    // reused, so renewals need no new challenge (as with Let's Encrypt's 30-day reuse).
    pebble_ = std::make_unique<Daemon>(
        "pebble",
        std::vector<std::string>{findProgram("pebble"), "-config", (dir_ / "pebble.json").string(), "-dnsserver",
                                 "127.0.0.1:" + std::to_string(dnsPort)},
        std::vector<std::string>{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=100"},
        dir_ / "pebble.log");
    nginx_ = std::make_unique<Daemon>(
        "nginx",
        std::vector<std::string>{findProgram("nginx"), "-p", (dir_ / "nginx").string(), "-c",
                                 (dir_ / "nginx" / "nginx.conf").string(), "-e", "stderr"},
        std::vector<std::string>{}, dir_ / "nginx.log");
    pebble_->awaitPort(acmePort_);
    pebble_->awaitPort(managementPort_);
    nginx_->awaitPort(httpPort_);
  }

  // The daemons stop (members in reverse order) before the directory goes.
  ~PebbleEnvironment() = default;

  AcmeSettings settings(const std::string& stateName, const fs::path& webroot) const {
    AcmeSettings settings;
    settings.directoryUrl = "https://127.0.0.1:" + std::to_string(acmePort_) + "/dir";
    settings.email = "hostmaster@acme.test";
    settings.caFile = pebbleCaFile_;
    settings.webroot = webroot;
    settings.stateDirectory = dir_ / stateName;
    settings.program = findProgram("lego");
    settings.timeout = 60s;
    return settings;
  }

  const fs::path& webroot() const { return webroot_; }
  const fs::path& dir() const { return dir_; }

  // pebble's root CA, from its management interface (made anew at every pebble start).
  std::string rootPem() const {
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", pebbleCaFile_.string(),
                               Poco::Net::Context::VERIFY_STRICT, 9, false);
    Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(managementPort_), context);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/roots/0", Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    std::string pem;
    Poco::StreamCopier::copyToString(body, pem);
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
      throw std::runtime_error("pebble /roots/0 answered " + std::to_string(response.getStatus()));
    }
    return pem;
  }

  void printLogs() const {
    for (const Daemon* daemon : {challengeServer_.get(), pebble_.get(), nginx_.get()}) {
      if (daemon) std::cerr << "---- " << daemon->name() << " ----\n" << readFile(daemon->log()) << "\n";
    }
  }

 private:
  ScratchDirectory scratch_;
  fs::path dir_;
  fs::path webroot_;
  fs::path pebbleCaFile_;
  int acmePort_ = 0;
  int managementPort_ = 0;
  int httpPort_ = 0;
  std::unique_ptr<Daemon> challengeServer_;
  std::unique_ptr<Daemon> pebble_;
  std::unique_ptr<Daemon> nginx_;
};

class AcmeClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      environment_ = new PebbleEnvironment();
    } catch (const std::exception& error) {
      setUpError_ = error.what();
    }
  }
  static void TearDownTestSuite() {
    if (environment_ && ::testing::UnitTest::GetInstance()->failed_test_count() > 0) environment_->printLogs();
    delete environment_;
    environment_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(environment_, nullptr) << "cannot start pebble, its DNS and nginx: " << setUpError_; }

  // The chain of `site` verifies up to pebble's root as a TLS server certificate for `names`,
  // and its key belongs to the leaf.
  static void expectIssuedByPebble(const SiteCertificate& site, const std::vector<std::string>& names) {
    EXPECT_EQ(site.issuer, "acme");
    EXPECT_EQ(site.names, names);
    const std::vector<Certificate> chain = parseAll(site.certificatePem);
    ASSERT_GE(chain.size(), 2u) << "lego bundles the issuer:\n" << site.certificatePem;
    X509* leaf = chain[0].get();
    EXPECT_EQ(dnsNames(leaf), std::set<std::string>(names.begin(), names.end()));
    EXPECT_EQ(fingerprintOfPem(site.certificatePem), site.fingerprint);
    EXPECT_GT(site.notAfterMs, nowMs() + 89LL * 86'400'000);

    const std::vector<Certificate> roots = parseAll(environment_->rootPem());
    ASSERT_EQ(roots.size(), 1u);
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    X509_STORE_add_cert(store.get(), roots[0].get());
    struct StackFree {
      void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }  // not the certificates
    };
    std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
    for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> context(X509_STORE_CTX_new(),
                                                                           X509_STORE_CTX_free);
    X509_STORE_CTX_init(context.get(), store.get(), leaf, untrusted.get());
    X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
    const int verified = X509_verify_cert(context.get());
    EXPECT_EQ(verified, 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()));
    for (const auto& name : names) {
      EXPECT_EQ(X509_check_host(leaf, name.c_str(), name.size(), 0, nullptr), 1) << name;
    }

    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(site.keyPem.data(), static_cast<int>(site.keyPem.size())), BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    ASSERT_TRUE(key);
    EXPECT_EQ(X509_check_private_key(leaf, key.get()), 1);
  }

  static PebbleEnvironment* environment_;
  static std::string setUpError_;
};

PebbleEnvironment* AcmeClientTest::environment_ = nullptr;
std::string AcmeClientTest::setUpError_;

const std::vector<std::string> kSiteNames{"acme.test", "www.acme.test"};

TEST_F(AcmeClientTest, ObtainsACertificateFromPebbleForAllItsNames) {
  const AcmeClient client(environment_->settings("state", environment_->webroot()));
  const SiteCertificate site = client.obtain(kSiteNames);
  expectIssuedByPebble(site, kSiteNames);
  EXPECT_EQ(readFile(client.certificateFile("acme.test")), site.certificatePem);
  // The challenge really went through nginx: pebble fetched the token from the webroot.
  const std::string access = readFile(environment_->dir() / "nginx" / "logs" / "access.log");
  EXPECT_NE(access.find("GET /.well-known/acme-challenge/"), std::string::npos) << access;
}

TEST_F(AcmeClientTest, RenewsOnlyWhenDueUnlessForced) {
  const AcmeClient client(environment_->settings("state", environment_->webroot()));
  // A fresh pebble certificate lives for years: not due in 30 days, lego keeps it (obtained
  // here when this test runs alone).
  const SiteCertificate current = client.renew(kSiteNames, 30);
  const SiteCertificate unchanged = client.renew(kSiteNames, 30);
  EXPECT_EQ(unchanged.fingerprint, current.fingerprint);

  const SiteCertificate renewed = client.renewNow(kSiteNames);
  expectIssuedByPebble(renewed, kSiteNames);
  EXPECT_NE(renewed.fingerprint, current.fingerprint);
  EXPECT_NE(renewed.keyPem, current.keyPem);
  EXPECT_NE(serialOf(parseAll(renewed.certificatePem)[0].get()), serialOf(parseAll(current.certificatePem)[0].get()));
  EXPECT_EQ(readFile(client.certificateFile("acme.test")), renewed.certificatePem);
}

TEST_F(AcmeClientTest, AFailedChallengeCarriesLegosMessage) {
  // lego writes the token into a folder nginx does not serve: pebble gets a 404.
  const fs::path unserved = environment_->dir() / "unserved-webroot";
  fs::create_directories(unserved);
  const AcmeClient client(environment_->settings("state", unserved));
  try {
    client.obtain({"fail.acme.test"});
    ADD_FAILURE() << "a certificate without a served challenge";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(error.code(), ErrorCode::Failed);
    EXPECT_EQ(message.rfind("lego run for fail.acme.test exited with status 1:\n", 0), 0u) << message;
    EXPECT_NE(message.find("urn:ietf:params:acme:error:unauthorized"), std::string::npos) << message;
    EXPECT_NE(message.find("returned 404"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(client.certificateFile("fail.acme.test")));
}

TEST_F(AcmeClientTest, RenewerRenewsTheDueTargetsAndReportsFailures) {
  const AcmeClient client(environment_->settings("state", environment_->webroot()));
  // The certificate of the first test (obtained here when this test runs alone).
  const SiteCertificate first = client.renew(kSiteNames, 30);
  std::mutex mutex;
  std::vector<std::pair<std::string, SiteCertificate>> renewed;
  std::vector<std::pair<std::string, std::string>> failed;
  std::atomic<int> passes{0};
  const std::vector<RenewalTarget> targets{
      {"due", kSiteNames, nowMs() + 86'400'000},  // expires tomorrow
      {"fresh", kSiteNames, first.notAfterMs}};   // years left
  auto onRenewed = [&](const RenewalTarget& target, const SiteCertificate& certificate) {
    std::lock_guard<std::mutex> lock(mutex);
    renewed.emplace_back(target.id, certificate);
  };
  auto onFailed = [&](const RenewalTarget& target, const std::string& error) {
    std::lock_guard<std::mutex> lock(mutex);
    failed.emplace_back(target.id, error);
  };
  AcmeRenewer renewer(
      client, 30, 1s,
      [&] {
        ++passes;
        return targets;
      },
      onRenewed, onFailed);
  EXPECT_EQ(renewer.runOnce(), 1);
  ASSERT_EQ(renewed.size(), 1u);
  EXPECT_EQ(renewed[0].first, "due");
  EXPECT_NE(renewed[0].second.fingerprint, first.fingerprint);
  expectIssuedByPebble(renewed[0].second, kSiteNames);
  EXPECT_TRUE(failed.empty());

  // A due target lego cannot renew (its ACME server is gone) is reported, with lego's words.
  AcmeSettings gone = environment_->settings("state", environment_->webroot());
  gone.directoryUrl = "https://127.0.0.1:" + std::to_string(freePort()) + "/dir";
  const AcmeClient goneClient(gone);
  AcmeRenewer failing(
      goneClient, 30, 1s, [&] { return std::vector<RenewalTarget>{{"broken", kSiteNames, nowMs()}}; },
      onRenewed, onFailed);
  EXPECT_EQ(failing.runOnce(), 0);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].first, "broken");
  EXPECT_NE(failed[0].second.find("lego renew for acme.test exited with status 1"), std::string::npos)
      << failed[0].second;
  EXPECT_NE(failed[0].second.find("connection refused"), std::string::npos) << failed[0].second;

  // In the background: the first pass at once, then one a second, until stopped.
  {
    std::lock_guard<std::mutex> lock(mutex);
    renewed.clear();
  }
  renewer.start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  auto renewedSoFar = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return renewed.size();
  };
  while (renewedSoFar() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  renewer.stop();
  const int passesAtStop = passes.load();
  const std::size_t renewedAtStop = renewedSoFar();
  EXPECT_GE(renewedAtStop, 2u);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(passes.load(), passesAtStop) << "stopped means stopped";
  EXPECT_EQ(renewedSoFar(), renewedAtStop);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_LE(renewed.size(), static_cast<std::size_t>(passesAtStop - 1)) << "the due target, at most once per pass";
  for (const auto& [id, certificate] : renewed) EXPECT_EQ(id, "due");
}

// Not pebble's: a server that accepts the connection and never answers. lego is killed at
// the client's timeout and the error says so.
TEST(AcmeClientTimeout, ALegoRunThatHangsIsKilledAtTheTimeout) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const ScratchDirectory scratch("shoal-acme-timeout");
  const fs::path& dir = scratch.path();
  AcmeSettings settings;
  settings.directoryUrl = "https://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/dir";
  settings.email = "hostmaster@acme.test";
  settings.webroot = dir / "webroot";
  settings.stateDirectory = dir / "state";
  settings.program = findProgram("lego");
  ASSERT_FALSE(settings.program.empty()) << "lego is not installed";
  settings.timeout = 1500ms;
  const AcmeClient client(settings);
  const auto started = std::chrono::steady_clock::now();
  try {
    client.obtain({"acme.test"});
    ADD_FAILURE() << "lego succeeded against a silent server";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::Failed);
    EXPECT_EQ(std::string(error.what()).rfind("lego run for acme.test timed out after 1 s", 0), 0u) << error.what();
  }
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 1400ms);
  EXPECT_LT(took, 10s);
  ::close(listener);
}

}  // namespace
}  // namespace shoal::tls
