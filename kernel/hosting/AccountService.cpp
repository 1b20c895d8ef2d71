#include "hosting/AccountService.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>

#include <algorithm>

#include "common/Error.hpp"

namespace shoal::hosting {
namespace {

// Far more rows than requests can be waiting on at once: a request's row is found here unless
// a thousand later changes were delivered between its commit and its own delivery attempt.
constexpr std::size_t kRecentDeliveries = 1024;

std::string identityPayload(const std::string& outboxPayload) {
  // The identity command carries the identity only: name, uid, gid and home of the account in
  // the event (never its certificate), as the kernel's handler reads them.
  Poco::JSON::Parser parser;
  auto account = parser.parse(outboxPayload).extract<Poco::JSON::Object::Ptr>()->getObject("account");
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const char* field : {"name", "uid", "gid", "home"}) o->set(field, account->get(field));
  return jsonText(o);
}

}  // namespace

AccountService::AccountService(store::Store& store, AccountStoreSettings settings, AccountServiceHooks hooks,
                               cluster::Clock clock)
    : store_(store, std::move(settings), std::move(clock), [this](const Account& a) { return certify(a); }),
      hooks_(std::move(hooks)) {}

std::vector<std::string> AccountService::certificateNames(const Account& account) {
  std::vector<std::string> names;
  for (const auto& d : account.domains)
    if (names.size() < tls::kMaxSiteCertificateNames) names.push_back(d.name);
  const auto fits = std::find_if(names.begin(), names.end(), [](const std::string& n) { return n.size() <= 64; });
  if (fits != names.end()) std::rotate(names.begin(), fits, fits + 1);
  return names;
}

std::optional<Certificate> AccountService::certify(const Account& account) const {
  if (!hooks_.issueClusterCertificate) return std::nullopt;
  if (account.certificate && account.certificate->issuer == "acme") return std::nullopt;
  const auto names = certificateNames(account);
  // A certificate's first name is its subject common name, at most 64 bytes: an account whose
  // every name is longer has no certificate until it gets a shorter one (its sites serve HTTP).
  if (names.empty() || names.front().size() > 64) return std::nullopt;
  if (account.certificate && account.certificate->names == names) return std::nullopt;
  return hooks_.issueClusterCertificate(names);
}

std::vector<LimitDimension> AccountService::dimensions() const {
  return hooks_.dimensions ? hooks_.dimensions() : std::vector<LimitDimension>{};
}

std::vector<LimitDimension> AccountService::domainDimensions() const {
  std::vector<LimitDimension> out;
  for (auto& d : dimensions())
    if (d.counts == "domains") out.push_back(std::move(d));
  return out;
}

void AccountService::requireDeclared(const Limits& limits, const std::string& field) const {
  const auto declared = dimensions();
  for (const auto& [name, value] : limits) {
    bool known = false;
    for (const auto& d : declared) known = known || d.name == name;
    if (known) continue;
    std::string list;
    for (const auto& d : declared) list += (list.empty() ? "" : ", ") + d.name;
    throw Error(ErrorCode::InvalidArgument, field + "." + name + ": no loaded plugin declares this limit (declared: " +
                                                (list.empty() ? "none" : list) + ")");
  }
}

Plan AccountService::createPlan(const std::string& name, const std::string& description, const Limits& limits) {
  requireDeclared(limits, "limits");
  return store_.createPlan(name, description, limits);
}

Plan AccountService::updatePlan(const std::string& name, const std::optional<std::string>& description,
                                const std::optional<Limits>& limits) {
  if (limits) requireDeclared(*limits, "limits");
  return store_.updatePlan(name, description, limits);
}

std::vector<DeliveredChange> AccountService::applyPlan(const std::string& name) {
  std::vector<DeliveredChange> out;
  for (auto& change : store_.applyPlan(name)) out.push_back(delivered(std::move(change)));
  return out;
}

DeliveredChange AccountService::createAccount(const NewAccount& request) {
  if (request.limits) requireDeclared(*request.limits, "limits");
  return delivered(store_.createAccount(request, domainDimensions()));
}

DeliveredChange AccountService::changeAccount(const std::string& name, const AccountEdit& edit) {
  if (edit.limits) requireDeclared(*edit.limits, "limits");
  return delivered(store_.changeAccount(name, edit));
}

DeliveredChange AccountService::suspend(const std::string& name, const std::string& reason) {
  return delivered(store_.suspend(name, reason));
}

DeliveredChange AccountService::unsuspend(const std::string& name) { return delivered(store_.unsuspend(name)); }

DeliveredChange AccountService::removeAccount(const std::string& name) {
  return delivered(store_.removeAccount(name, hooks_.removingAccount));
}

DeliveredChange AccountService::addDomain(const std::string& account, const NewDomain& domain) {
  return delivered(store_.addDomain(account, domain, domainDimensions()));
}

DeliveredChange AccountService::setNginxExtra(const std::string& account, const std::string& domain,
                                              const std::string& extra) {
  return delivered(store_.setNginxExtra(account, domain, extra));
}

DeliveredChange AccountService::removeDomain(const std::string& account, const std::string& domain) {
  return delivered(store_.removeDomain(account, domain));
}

DeliveredChange AccountService::setCertificate(const std::string& account, const Certificate& certificate) {
  return delivered(store_.setCertificate(account, certificate));
}

std::vector<DeliveredChange> AccountService::resync(const std::optional<std::string>& account) {
  std::vector<DeliveredChange> out;
  for (auto& change : store_.resync(account)) out.push_back(delivered(std::move(change)));
  return out;
}

std::vector<tls::RenewalTarget> AccountService::acmeTargets() {
  std::vector<tls::RenewalTarget> out;
  for (const auto& a : store_.accounts()) {
    const auto names = certificateNames(a);
    if (names.empty() || names.front().size() > 64) continue;
    const bool current = a.certificate && a.certificate->issuer == "acme" && a.certificate->names == names;
    out.push_back(tls::RenewalTarget{a.name, names, current ? a.certificate->notAfterMs : 0, !current});
  }
  return out;
}

bool AccountService::storeAcmeCertificate(const std::string& account, const Certificate& certificate) {
  auto a = store_.account(account);
  if (!a || certificateNames(*a) != certificate.names) return false;
  if (a->certificate && a->certificate->fingerprint == certificate.fingerprint) return false;
  setCertificate(account, certificate);
  return true;
}

void AccountService::checkLimit(const std::string& account, const std::string& limitName, std::int64_t wouldHave) {
  for (const auto& d : dimensions()) {
    if (d.name != limitName) continue;
    auto a = store_.account(account);
    if (!a) throw Error(ErrorCode::NotFound, "no account '" + account + "'");
    enforceLimit(*a, d, wouldHave);
    return;
  }
  throw Error(ErrorCode::NotFound, "no plugin declared the limit '" + limitName + "'");
}

DeliveredChange AccountService::delivered(AccountChange change) {
  DeliveredChange out{std::move(change.account), {}, {}};
  if (!change.event) return out;
  deliveryPending_ = true;
  try {
    auto commands = deliverUpTo(change.event->id);
    auto it = commands.find(change.event->id);
    if (it != commands.end()) out.commands = std::move(it->second);
  } catch (const std::exception& e) {
    out.deliveryError = e.what();
    Poco::Logger::get("shoald.hosting")
        .error("account '" + out.account.name + "': the change is saved, but reaching the nodes failed (" + e.what() +
               "); it is tried again shortly");
  }
  return out;
}

std::map<std::int64_t, std::vector<std::int64_t>> AccountService::deliverUpTo(std::int64_t upTo) {
  std::lock_guard lock(deliveryMutex_);
  std::map<std::int64_t, std::vector<std::int64_t>> produced;
  // What this call delivered, and the asked-for row when an earlier call (the sweeper's, or
  // another request's) delivered it.
  const auto answer = [&] {
    if (upTo > 0 && !produced.count(upTo)) {
      const auto earlier = recentlyDelivered_.find(upTo);
      if (earlier != recentlyDelivered_.end()) produced[upTo] = earlier->second;
    }
    return produced;
  };
  for (;;) {
    const auto rows = store_.outbox(100);
    if (rows.empty()) {
      deliveryPending_ = false;
      return answer();
    }
    for (const auto& row : rows) {
      if (upTo > 0 && row.id > upTo) return answer();
      std::vector<std::int64_t> commands;
      const auto identity = [&](const char* kind) {
        cluster::CommandRequest request{kind, identityPayload(row.payload), orderingKey(row.account),
                                        cluster::Target::all(), std::chrono::milliseconds(0)};
        try {
          const auto ids = hooks_.enqueue(request, "hosting-outbox-" + std::to_string(row.id) + "-" + kind);
          commands.insert(commands.end(), ids.begin(), ids.end());
        } catch (const Error& e) {
          // A refusal of the request itself would refuse it on every retry too, and hold up
          // every later event behind it: it is logged and the event goes on without it.
          if (e.code() != ErrorCode::InvalidArgument) throw;
          Poco::Logger::get("shoald.hosting")
              .error("account '" + row.account + "': " + kind + " was refused (" + e.what() +
                     "); the nodes do not get this account's Unix user until it is sent again (account resync)");
        }
      };
      const bool resync = row.event == "account.resync";
      if ((row.event == "account.created" || resync) && hooks_.enqueue) identity("account.identity.put");
      if (hooks_.dispatch) {
        const auto ids = hooks_.dispatch(resync ? "account.changed" : row.event, row.payload);
        commands.insert(commands.end(), ids.begin(), ids.end());
      }
      if (row.event == "account.removed" && hooks_.enqueue) identity("account.identity.remove");
      store_.outboxDone(row.id);
      recentlyDelivered_[row.id] = commands;
      if (recentlyDelivered_.size() > kRecentDeliveries) recentlyDelivered_.erase(recentlyDelivered_.begin());
      produced[row.id] = std::move(commands);
    }
  }
}

std::size_t AccountService::deliverPending() {
  try {
    return deliverUpTo(0).size();
  } catch (const std::exception& e) {
    Poco::Logger::get("shoald.hosting").error(std::string("delivering account changes to the nodes: ") + e.what());
    return 0;
  }
}

}  // namespace shoal::hosting
