#include "tls/AcmeClient.hpp"

#include "common/Error.hpp"
#include "tls/AtomicFile.hpp"

#include <shoal/process.hpp>

#include <algorithm>
#include <system_error>

namespace shoal::tls {

namespace {

// Days lego is asked to look ahead for a forced renewal: longer than any CA issues for.
constexpr int kForcedRenewalDays = 36500;
constexpr std::size_t kReportedOutputLines = 12;
constexpr std::int64_t kMillisecondsPerDay = 86'400'000;

// The last `count` non-empty lines of `output`, joined by newlines.
std::string lastLines(const std::string& output, std::size_t count) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < output.size()) {
    std::size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(std::move(line));
    start = end + 1;
  }
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
  std::string joined;
  for (const auto& line : lines) joined += (joined.empty() ? "" : "\n") + line;
  return joined;
}

bool isFile(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

void validateAcmeNames(const std::vector<std::string>& names) {
  validateSiteCertificateNames(names);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("*.", 0) == 0) {
      throw Error(ErrorCode::InvalidArgument, "names[" + std::to_string(i) + "]: '" + names[i] +
                                                  "' is a wildcard, which an http-01 challenge cannot prove");
    }
  }
}

}  // namespace

bool renewalDue(std::int64_t notAfterMs, std::int64_t nowMs, int days) {
  return notAfterMs - nowMs <= static_cast<std::int64_t>(std::max(days, 0)) * kMillisecondsPerDay;
}

AcmeClient::AcmeClient(AcmeSettings settings)
    : settings_(std::move(settings)), runLock_(std::make_shared<std::mutex>()) {
  const std::string& url = settings_.directoryUrl;
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    throw Error(ErrorCode::InvalidArgument, "acme_directory: '" + url + "' is not an http:// or https:// URL");
  }
  if (url.find_first_of(" \t\r\n") != std::string::npos) {
    throw Error(ErrorCode::InvalidArgument, "acme_directory: the URL contains blanks");
  }
  const std::string& email = settings_.email;
  const std::size_t at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == email.size() ||
      email.find_first_of(" \t\r\n,;<>") != std::string::npos) {
    throw Error(ErrorCode::InvalidArgument, "acme_email: '" + email + "' is not an e-mail address");
  }
  if (!settings_.caFile.empty()) {
    if (settings_.caFile.is_relative()) {
      throw Error(ErrorCode::InvalidArgument, "acme_ca_file: '" + settings_.caFile.string() + "' is not absolute");
    }
    if (!isFile(settings_.caFile)) {
      throw Error(ErrorCode::InvalidArgument, "acme_ca_file: '" + settings_.caFile.string() + "' is not a file");
    }
  }
  if (settings_.webroot.empty() || settings_.webroot.is_relative()) {
    throw Error(ErrorCode::InvalidArgument, "acme_webroot: '" + settings_.webroot.string() + "' is not absolute");
  }
  if (settings_.stateDirectory.empty() || settings_.stateDirectory.is_relative()) {
    throw Error(ErrorCode::InvalidArgument,
                "acme state directory: '" + settings_.stateDirectory.string() + "' is not absolute");
  }
  if (settings_.program.empty()) throw Error(ErrorCode::InvalidArgument, "acme program: empty");
  if (settings_.timeout < std::chrono::seconds(1)) {
    throw Error(ErrorCode::InvalidArgument, "acme timeout: below one second");
  }
}

std::filesystem::path AcmeClient::certificateFile(const std::string& firstName) const {
  // lego 4.9 names the files after the first domain ('*' would become '_'; wildcards are
  // refused here).
  return settings_.stateDirectory / "certificates" / (firstName + ".crt");
}

std::filesystem::path AcmeClient::keyFile(const std::string& firstName) const {
  return settings_.stateDirectory / "certificates" / (firstName + ".key");
}

std::vector<std::string> AcmeClient::commonArguments(const std::vector<std::string>& names) const {
  std::vector<std::string> argv{settings_.program,
                                "--accept-tos",
                                "--email",
                                settings_.email,
                                "--server",
                                settings_.directoryUrl,
                                "--path",
                                settings_.stateDirectory.string(),
                                "--key-type",
                                "ec256",
                                "--http",
                                "--http.webroot",
                                settings_.webroot.string()};
  for (const auto& name : names) {
    argv.push_back("--domains");
    argv.push_back(name);
  }
  return argv;
}

SiteCertificate AcmeClient::readCertificate(const std::vector<std::string>& names) const {
  const std::filesystem::path certificate = certificateFile(names.front());
  const std::filesystem::path key = keyFile(names.front());
  if (!isFile(certificate) || !isFile(key)) {
    throw Error(ErrorCode::Failed, "lego reported success but left no " + certificate.string() + " and " +
                                       key.string());
  }
  return siteCertificateFromPem("acme", names, detail::readWholeFile(certificate), detail::readWholeFile(key),
                                certificate.string());
}

SiteCertificate AcmeClient::runLego(const std::vector<std::string>& names,
                                    const std::vector<std::string>& command) const {
  const std::lock_guard<std::mutex> turn(*runLock_);
  detail::createPrivateDirectory(settings_.stateDirectory);
  std::vector<std::string> argv = commonArguments(names);
  argv.insert(argv.end(), command.begin(), command.end());
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string variable(*entry);
    // Only what is configured here decides which CA lego trusts and where it keeps state.
    if (variable.rfind("LEGO_", 0) == 0) continue;
    environment.push_back(variable);
  }
  if (!settings_.caFile.empty()) environment.push_back("LEGO_CA_CERTIFICATES=" + settings_.caFile.string());
  ProgramResult result;
  try {
    result = runProgram(argv, settings_.timeout, environment);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Failed, e.what());  // lego is not installed, or not executable
  }
  if (!result.succeeded()) {
    std::string message = "lego " + command.front() + " for " + names.front() + " " + result.describe();
    if (result.timedOut) {
      message += " after " + std::to_string(settings_.timeout.count() / 1000) + " s";
    }
    const std::string tail = lastLines(result.output, kReportedOutputLines);
    throw Error(ErrorCode::Failed, message + (tail.empty() ? std::string() : ":\n" + tail));
  }
  return readCertificate(names);
}

SiteCertificate AcmeClient::obtain(const std::vector<std::string>& names) const {
  validateAcmeNames(names);
  return runLego(names, {"run"});
}

SiteCertificate AcmeClient::renew(const std::vector<std::string>& names, int days) const {
  validateAcmeNames(names);
  if (days < 0) throw Error(ErrorCode::InvalidArgument, "acme_renew_days: below zero");
  if (!isFile(certificateFile(names.front())) || !isFile(keyFile(names.front()))) return runLego(names, {"run"});
  // lego sleeps up to 8 minutes before a renewal when not on a terminal, to spread the load
  // of cron jobs; our renewer has its own schedule.
  return runLego(names, {"renew", "--days", std::to_string(days), "--no-random-sleep"});
}

SiteCertificate AcmeClient::renewNow(const std::vector<std::string>& names) const {
  return renew(names, kForcedRenewalDays);
}

AcmeRenewer::AcmeRenewer(const AcmeClient& client, int renewDays, std::chrono::milliseconds interval,
                         ListTargets listTargets, OnRenewed onRenewed, OnFailed onFailed)
    : client_(client),
      renewDays_(renewDays),
      interval_(interval),
      listTargets_(std::move(listTargets)),
      onRenewed_(std::move(onRenewed)),
      onFailed_(std::move(onFailed)) {
  if (interval_ < std::chrono::seconds(1)) {
    throw Error(ErrorCode::InvalidArgument, "acme renewal interval: below one second");
  }
  if (renewDays_ < 0) throw Error(ErrorCode::InvalidArgument, "acme_renew_days: below zero");
  if (!listTargets_ || !onRenewed_ || !onFailed_) {
    throw Error(ErrorCode::InvalidArgument, "acme renewer: a callback is missing");
  }
}

AcmeRenewer::~AcmeRenewer() { stop(); }

void AcmeRenewer::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void AcmeRenewer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int AcmeRenewer::runOnce() {
  int renewed = 0;
  std::vector<RenewalTarget> targets;
  try {
    targets = listTargets_();
  } catch (const std::exception& error) {
    onFailed_(RenewalTarget{}, std::string("cannot list the certificates to renew: ") + error.what());
    return 0;
  }
  for (const RenewalTarget& target : targets) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && thread_.get_id() == std::this_thread::get_id()) break;
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (!target.obtainNew && !renewalDue(target.notAfterMs, now, renewDays_)) continue;
    try {
      const SiteCertificate certificate =
          target.obtainNew ? client_.obtain(target.names) : client_.renewNow(target.names);
      ++renewed;
      onRenewed_(target, certificate);
    } catch (const std::exception& error) {
      onFailed_(target, error.what());
    }
  }
  return renewed;
}

void AcmeRenewer::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    runOnce();
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_ || woken_; });
    woken_ = false;
  }
}

void AcmeRenewer::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

}  // namespace shoal::tls
