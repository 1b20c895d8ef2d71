#pragma once
// Certificates from an ACME server (Let's Encrypt, or pebble in the tests) through Debian's
// `lego` client, http-01 challenges answered from a webroot every web node serves
// (docs/adr/0015-acme-client.md). lego keeps its account and certificates in a state
// directory this client owns; the result is handed back as a SiteCertificate, which the
// caller stores in the account (docs/adr/0013-hosting-accounts.md).
#include "tls/SiteCertificates.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shoal::tls {

struct AcmeSettings {
  std::string directoryUrl;            // the ACME directory, https://...
  std::string email;                   // the account's contact
  std::filesystem::path caFile;        // empty: the system roots verify the ACME server
  std::filesystem::path webroot;       // lego writes <webroot>/.well-known/acme-challenge/<token>
  std::filesystem::path stateDirectory;  // lego's --path: accounts/ and certificates/
  std::string program = "lego";        // looked up in PATH unless it holds a '/'
  std::chrono::milliseconds timeout = std::chrono::seconds(120);  // per lego run
};

// True when a certificate valid until `notAfterMs` should be renewed at `nowMs`: it expires
// within `days` days (or has expired). days < 0 is treated as 0.
bool renewalDue(std::int64_t notAfterMs, std::int64_t nowMs, int days);

// Copies share one lock: their lego runs take turns, so a renewal and an obtain never write
// the same state directory at once. Two clients built separately on one state directory
// must not be used at the same time.
class AcmeClient {
 public:
  // Error(InvalidArgument) naming the setting: directoryUrl not https:// or http://, an email
  // without '@' or with blanks, a relative or missing caFile, a relative webroot or
  // stateDirectory, an empty program, a timeout below one second. The state directory is
  // created (0700) on first use, the webroot is not (it is the shared storage's).
  explicit AcmeClient(AcmeSettings settings);

  const AcmeSettings& settings() const { return settings_; }

  // `lego ... run`: registers the account when needed and obtains a new certificate for
  // exactly `names` (validated as validateSiteCertificateNames; wildcards are refused, as
  // http-01 cannot prove them). Use it for a first certificate and whenever the set of
  // names changed. Error(Failed) with the last lines of lego's output when lego fails or
  // times out; Error(Failed) when lego succeeded but left no matching certificate.
  SiteCertificate obtain(const std::vector<std::string>& names) const;

  // `lego ... renew --days days --no-random-sleep`: lego renews when the certificate it holds
  // for names.front() expires within `days` days, and leaves it otherwise. Returns the
  // certificate lego holds afterwards (compare fingerprints to see whether it changed). When
  // the state directory holds no certificate for names.front(), this is obtain(names).
  // lego renews for the names of its certificate plus `names`; after removing a name, call
  // obtain(). Errors as obtain().
  SiteCertificate renew(const std::vector<std::string>& names, int days) const;

  // renew() regardless of the remaining lifetime.
  SiteCertificate renewNow(const std::vector<std::string>& names) const;

  // Where lego keeps the certificate (leaf + chain) and key for `firstName`.
  std::filesystem::path certificateFile(const std::string& firstName) const;
  std::filesystem::path keyFile(const std::string& firstName) const;

 private:
  std::vector<std::string> commonArguments(const std::vector<std::string>& names) const;
  SiteCertificate runLego(const std::vector<std::string>& names, const std::vector<std::string>& command) const;
  SiteCertificate readCertificate(const std::vector<std::string>& names) const;

  AcmeSettings settings_;
  std::shared_ptr<std::mutex> runLock_;
};

// One certificate the renewer looks after; `id` is the caller's (an account name).
struct RenewalTarget {
  std::string id;
  std::vector<std::string> names;
  std::int64_t notAfterMs = 0;
  // A certificate for exactly `names` is wanted now (obtain): there is none from ACME yet, or
  // the names changed. Otherwise the one lego holds is renewed when due.
  bool obtainNew = false;
};

// Renews due ACME certificates in the background: every `interval` it asks `listTargets` for
// the certificates to look after and renews (renewNow) each one renewalDue() says is due,
// one after another (obtain for a target with obtainNew), handing the new certificate to
// `onRenewed` or the error text to `onFailed`. The callbacks run on the renewer's thread and must not call stop(). A target
// that fails is retried on the next pass.
class AcmeRenewer {
 public:
  using ListTargets = std::function<std::vector<RenewalTarget>()>;
  using OnRenewed = std::function<void(const RenewalTarget&, const SiteCertificate&)>;
  using OnFailed = std::function<void(const RenewalTarget&, const std::string& error)>;

  // `client` must outlive the renewer. Error(InvalidArgument) for an interval below one
  // second or missing callbacks.
  AcmeRenewer(const AcmeClient& client, int renewDays, std::chrono::milliseconds interval, ListTargets listTargets,
              OnRenewed onRenewed, OnFailed onFailed);
  AcmeRenewer(const AcmeRenewer&) = delete;
  AcmeRenewer& operator=(const AcmeRenewer&) = delete;
  ~AcmeRenewer();

  // Starts the thread; its first pass runs at once. Calling start() twice is a no-op.
  void start();
  // Stops the thread, waiting for a lego run in progress to finish (at most the client's
  // timeout). Idempotent.
  void stop();
  // One pass on the calling thread; returns how many certificates were renewed.
  int runOnce();
  // Makes the thread's next pass start now (names changed), not at the end of the interval.
  void wake();

 private:
  void loop();

  const AcmeClient& client_;
  int renewDays_;
  std::chrono::milliseconds interval_;
  ListTargets listTargets_;
  OnRenewed onRenewed_;
  OnFailed onFailed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace shoal::tls
