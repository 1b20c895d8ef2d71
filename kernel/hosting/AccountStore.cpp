#include "hosting/AccountStore.hpp"

#include <Poco/Data/Statement.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <map>

#include "cluster/Database.hpp"
#include "common/Error.hpp"
#include "common/Text.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::hosting {

using cluster::detail::inTransaction;
using cluster::detail::withSession;

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;
using Session = Poco::Data::Session;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, field + ": " + why);
}
[[noreturn]] void conflict(const std::string& message) { throw Error(ErrorCode::Conflict, message); }
[[noreturn]] void noAccount(const std::string& name) {
  throw Error(ErrorCode::NotFound, "no account '" + name + "'");
}

using cluster::detail::forUpdate;

// Poco 1.11 cannot fetch MEDIUMTEXT/LONGTEXT on MySQL directly (it sizes its buffer from the
// declared column length): such columns are fetched as byte substrings of a bounded length.
constexpr std::size_t kMaxLongText = 16 * 1024 * 1024;
std::string longText(store::Backend backend, const std::string& column) {
  return backend == store::Backend::MySql
             ? "SUBSTRING(CAST(" + column + " AS BINARY), 1, " + std::to_string(kMaxLongText) + ")"
             : column;
}

// Printable text without control characters (it reaches logs and pages), 1..max bytes.
void validateText(const std::string& text, std::size_t max, const std::string& field, bool mayBeEmpty) {
  if (text.empty() && !mayBeEmpty) invalid(field, "is required");
  if (text.size() > max) invalid(field, "must be at most " + std::to_string(max) + " bytes");
  for (unsigned char c : text)
    if (c < 0x20 || c == 0x7f) invalid(field, "must not contain control characters (newlines included)");
}

void validateNginxExtra(const std::string& extra, const std::string& field) {
  if (extra.size() > kMaxNginxExtraBytes) invalid(field, "must be at most " + std::to_string(kMaxNginxExtraBytes) + " bytes");
  if (extra.find('\0') != std::string::npos) invalid(field, "must not contain NUL");
}

// ---- reading ----

const std::string kAccountColumns =
    "name, uid, gid, home, state, suspend_reason, plan, limits_json, revision, created_at_ms, updated_at_ms";

// One account (`name`), or every account by name: three queries whatever their number (the
// accounts, then their domains, then their certificates). `lock` locks the one account's row.
std::vector<Account> loadAccounts(Session& s, store::Backend backend, const std::optional<std::string>& name,
                                  bool lock) {
  std::string only = name.value_or("");
  const auto run = [&](Poco::Data::Statement& statement, const std::string& sql, const char* column) {
    statement << sql + (name ? std::string(" WHERE ") + column + " = ?" : std::string());
    if (name) statement, use(only);
  };

  std::vector<std::string> names, homes, states, reasons, plans, limitsJson;
  std::vector<Poco::Int64> uids, gids, revisions, created, updated;
  {
    Poco::Data::Statement select(s);
    run(select, "SELECT " + kAccountColumns + " FROM hosting_accounts", "name");
    select << std::string(" ORDER BY name") + (lock ? forUpdate(backend) : ""), into(names), into(uids), into(gids),
        into(homes), into(states), into(reasons), into(plans), into(limitsJson), into(revisions), into(created),
        into(updated);
    select.execute();
  }
  std::vector<Account> out(names.size());
  std::map<std::string, Account*> byName;
  for (std::size_t i = 0; i < names.size(); ++i) {
    Account& a = out[i];
    a.name = names[i];
    a.uid = static_cast<std::uint32_t>(uids[i]);
    a.gid = static_cast<std::uint32_t>(gids[i]);
    a.home = homes[i];
    a.state = states[i];
    a.suspendReason = reasons[i];
    a.plan = plans[i];
    a.revision = revisions[i];
    a.createdAtMs = created[i];
    a.updatedAtMs = updated[i];
    a.limits = parseLimitsText(limitsJson[i], "account '" + a.name + "' limits");
    byName[a.name] = &a;
  }
  if (out.empty()) return out;

  {
    std::vector<std::string> accounts, domains, unicodes, kinds, parents, extras;
    Poco::Data::Statement select(s);
    run(select, "SELECT account, name, unicode, kind, parent, nginx_extra FROM hosting_domains", "account");
    select << " ORDER BY account, added_seq", into(accounts), into(domains), into(unicodes), into(kinds),
        into(parents), into(extras);
    select.execute();
    for (std::size_t i = 0; i < accounts.size(); ++i)
      if (auto it = byName.find(accounts[i]); it != byName.end())
        it->second->domains.push_back(Domain{domains[i], unicodes[i], kinds[i], parents[i], extras[i]});
  }
  {
    std::vector<std::string> accounts, issuers, namesJson, certs, keys, fingerprints;
    std::vector<Poco::Int64> notAfter;
    Poco::Data::Statement select(s);
    run(select,
        "SELECT account, issuer, names_json, " + longText(backend, "certificate_pem") +
            ", key_pem, not_after_ms, fingerprint FROM hosting_certificates",
        "account");
    select, into(accounts), into(issuers), into(namesJson), into(certs), into(keys), into(notAfter),
        into(fingerprints);
    select.execute();
    for (std::size_t i = 0; i < accounts.size(); ++i) {
      auto it = byName.find(accounts[i]);
      if (it == byName.end()) continue;
      Certificate c{issuers[i], {}, certs[i], keys[i], notAfter[i], fingerprints[i]};
      Poco::JSON::Parser parser;
      auto list = parser.parse(namesJson[i]).extract<Array::Ptr>();
      for (std::size_t k = 0; k < list->size(); ++k)
        c.names.push_back(list->getElement<std::string>(static_cast<unsigned>(k)));
      it->second->certificate = std::move(c);
    }
  }
  return out;
}

std::optional<Account> loadAccount(Session& s, store::Backend backend, const std::string& name, bool lock) {
  auto found = loadAccounts(s, backend, name, lock);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

Account requireAccount(store::Transaction& tx, const std::string& name) {
  validateAccountName(name, "account");
  auto a = loadAccount(tx.session(), tx.backend(), name, true);
  if (!a) noAccount(name);
  return *a;
}

std::optional<Plan> loadPlan(Session& s, const std::string& name) {
  Plan p;
  std::string limitsJson;
  Poco::Int64 created = 0, updated = 0, accounts = 0;
  Poco::Data::Statement select(s);
  select << "SELECT name, description, limits_json, created_at_ms, updated_at_ms FROM hosting_plans WHERE name = ?",
      use(const_cast<std::string&>(name)), into(p.name), into(p.description), into(limitsJson), into(created),
      into(updated);
  if (select.execute() == 0) return std::nullopt;
  s << "SELECT COUNT(*) FROM hosting_accounts WHERE plan = ?", use(const_cast<std::string&>(name)), into(accounts), now;
  p.limits = parseLimitsText(limitsJson, "plan '" + name + "' limits");
  p.createdAtMs = created;
  p.updatedAtMs = updated;
  p.accounts = accounts;
  return p;
}

// ---- writing ----

void updateAccountRow(Session& s, Account& a, std::int64_t nowMs) {
  a.revision += 1;
  a.updatedAtMs = nowMs;
  std::string limits = limitsToText(a.limits);
  Poco::Int64 revision = a.revision, updated = a.updatedAtMs;
  s << "UPDATE hosting_accounts SET state = ?, suspend_reason = ?, plan = ?, limits_json = ?, revision = ?,"
       " updated_at_ms = ? WHERE name = ?",
      use(a.state), use(a.suspendReason), use(a.plan), use(limits), use(revision), use(updated), use(a.name), now;
}

OutboxEvent recordEvent(store::Transaction& tx, const std::string& event, const Account& account,
                        const std::string& domain, std::int64_t nowMs) {
  Object::Ptr payload = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  payload->set("account", toJson(account, true));
  if (!domain.empty()) payload->set("domain", domain);
  OutboxEvent e{0, event, account.name, jsonText(payload)};
  Poco::Int64 at = nowMs;
  auto& s = tx.session();
  s << "INSERT INTO hosting_outbox (event, account, payload, created_at_ms) VALUES (?, ?, ?, ?)", use(e.event),
      use(e.account), use(e.payload), use(at), now;
  Poco::Int64 id = 0;
  s << (tx.backend() == store::Backend::MySql ? "SELECT LAST_INSERT_ID()" : "SELECT last_insert_rowid()"), into(id),
      now;
  e.id = id;
  return e;
}

// The account holding `name`, another domain of another account that `name` is under (a
// proper suffix at a label boundary) or above: each would let one customer serve or certify
// another's names.
void requireDomainFree(Session& s, const std::string& name, const std::string& account) {
  std::vector<std::string> owners;
  s << "SELECT account FROM hosting_domains WHERE name = ?", use(const_cast<std::string&>(name)), into(owners), now;
  if (!owners.empty()) {
    if (owners[0] == account) conflict("domain '" + name + "' is already a domain of account '" + account + "'");
    conflict("domain '" + name + "' belongs to account '" + owners[0] + "'");
  }
  for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    std::string above = name.substr(dot + 1);
    if (above.find('.') == std::string::npos) break;  // a top-level domain is nobody's
    std::vector<std::string> holders;
    s << "SELECT account FROM hosting_domains WHERE name = ?", use(above), into(holders), now;
    if (!holders.empty() && holders[0] != account)
      conflict("domain '" + name + "' is under '" + above + "', which belongs to account '" + holders[0] + "'");
  }
  std::string pattern = "%." + name;  // names are letters, digits, '-' and '.': no LIKE wildcard in them
  std::vector<std::string> below, belowOwners;
  s << "SELECT name, account FROM hosting_domains WHERE name LIKE ? AND account <> ?", use(pattern),
      use(const_cast<std::string&>(account)), into(below), into(belowOwners), now;
  if (!below.empty())
    conflict("domain '" + name + "' is above '" + below[0] + "', which belongs to account '" + belowOwners[0] + "'");
}

// Domain changes are serialised across the cluster's store: the checks of requireDomainFree
// read rows that a concurrent transaction may be adding (MySQL's READ COMMITTED would let two
// accounts take one name's parent and child at once). SQLite's writers are serialised already.
void lockDomainChanges(store::Transaction& tx) {
  if (tx.backend() != store::Backend::MySql) return;
  Poco::Int64 ignored = 0;
  tx.session() << "SELECT next_value FROM hosting_counters WHERE counter_name = 'uid' FOR UPDATE", into(ignored), now;
}

void insertDomain(Session& s, const std::string& account, const Domain& d) {
  Poco::Int64 seq = 0;
  s << "SELECT COALESCE(MAX(added_seq), 0) + 1 FROM hosting_domains WHERE account = ?",
      use(const_cast<std::string&>(account)), into(seq), now;
  s << "INSERT INTO hosting_domains (name, account, unicode, kind, parent, nginx_extra, added_seq)"
       " VALUES (?, ?, ?, ?, ?, ?, ?)",
      use(const_cast<std::string&>(d.name)), use(const_cast<std::string&>(account)),
      use(const_cast<std::string&>(d.unicode)), use(const_cast<std::string&>(d.kind)),
      use(const_cast<std::string&>(d.parent)), use(const_cast<std::string&>(d.nginxExtra)), use(seq), now;
}

std::uint32_t allocateUid(store::Transaction& tx, std::uint32_t base) {
  auto& s = tx.session();
  for (;;) {
    Poco::Int64 next = -1;
    Poco::Data::Statement select(s);
    select << "SELECT next_value FROM hosting_counters WHERE counter_name = 'uid'" + forUpdate(tx.backend()),
        into(next);
    if (select.execute() == 0) throw Error(ErrorCode::Internal, "the store has no uid counter (migration 8)");
    const std::int64_t uid = static_cast<std::int64_t>(base) + next;
    if (uid > 4294967294LL) throw Error(ErrorCode::Failed, "the cluster's uids are used up (account_uid_base + counter)");
    Poco::Int64 after = next + 1;
    s << "UPDATE hosting_counters SET next_value = ? WHERE counter_name = 'uid'", use(after), now;
    Poco::Int64 taken = 0, candidate = uid;
    s << "SELECT COUNT(*) FROM hosting_accounts WHERE uid = ? OR gid = ?", use(candidate), use(candidate), into(taken),
        now;
    if (taken == 0) return static_cast<std::uint32_t>(uid);
  }
}

void writeCertificate(Session& s, const std::string& account, const Certificate& c) {
  Array::Ptr names = new Array;
  for (const auto& n : c.names) names->add(n);
  std::string namesText = jsonText(names);
  Poco::Int64 notAfter = c.notAfterMs;
  s << "DELETE FROM hosting_certificates WHERE account = ?", use(const_cast<std::string&>(account)), now;
  s << "INSERT INTO hosting_certificates (account, issuer, names_json, certificate_pem, key_pem, not_after_ms,"
       " fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)",
      use(const_cast<std::string&>(account)), use(const_cast<std::string&>(c.issuer)), use(namesText),
      use(const_cast<std::string&>(c.certificatePem)), use(const_cast<std::string&>(c.keyPem)), use(notAfter),
      use(const_cast<std::string&>(c.fingerprint)), now;
}

void requirePlainKind(const std::string& kind) {
  if (kind != "secondary" && kind != "alias" && kind != "subdomain")
    invalid("kind", "must be secondary, alias or subdomain (the primary domain comes with the account)");
}

}  // namespace

void enforceLimit(const Account& account, const LimitDimension& dimension, std::int64_t wouldHave) {
  const auto it = account.limits.find(dimension.name);
  if (it == account.limits.end() || !it->second) return;
  if (wouldHave > *it->second)
    conflict("account '" + account.name + "' is at its limit of " + std::to_string(*it->second) + " for " +
             dimension.name + " (" + dimension.label + ")");
}

AccountStore::AccountStore(store::Store& store, AccountStoreSettings settings, cluster::Clock clock,
                           Certifier certifier)
    : store_(store), settings_(std::move(settings)), clock_(std::move(clock)), certifier_(std::move(certifier)) {
  if (settings_.uidBase < 1000) invalid("account_uid_base", "must be 1000 or more: lower uids are the system's");
  if (settings_.storageRoot.empty() || settings_.storageRoot[0] != '/' || settings_.storageRoot.back() == '/')
    invalid("storage_root", "must be an absolute path without a trailing '/'");
}

void AccountStore::certify(store::Transaction& tx, Account& account) {
  if (!certifier_) return;
  auto certificate = certifier_(account);
  if (!certificate) return;
  writeCertificate(tx.session(), account.name, *certificate);
  account.certificate = std::move(*certificate);
}

std::int64_t AccountStore::nowMs() const {
  const auto t = clock_ ? clock_() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// ---- plans ----

Plan AccountStore::createPlan(const std::string& name, const std::string& description, const Limits& limits) {
  validatePlanName(name);
  validateText(description, kMaxPlanDescriptionBytes, "description", true);
  return inTransaction(store_, "creating plan " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    if (loadPlan(s, name)) conflict("plan '" + name + "' already exists");
    std::string limitsText = limitsToText(limits);
    Poco::Int64 at = nowMs();
    s << "INSERT INTO hosting_plans (name, description, limits_json, created_at_ms, updated_at_ms)"
         " VALUES (?, ?, ?, ?, ?)",
        use(const_cast<std::string&>(name)), use(const_cast<std::string&>(description)), use(limitsText), use(at),
        use(at), now;
    return *loadPlan(s, name);
  });
}

Plan AccountStore::updatePlan(const std::string& name, const std::optional<std::string>& description,
                              const std::optional<Limits>& limits) {
  validatePlanName(name);
  if (description) validateText(*description, kMaxPlanDescriptionBytes, "description", true);
  return inTransaction(store_, "changing plan " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto plan = loadPlan(s, name);
    if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + name + "'");
    if (description) plan->description = *description;
    if (limits) plan->limits = *limits;
    std::string limitsText = limitsToText(plan->limits);
    Poco::Int64 at = nowMs();
    s << "UPDATE hosting_plans SET description = ?, limits_json = ?, updated_at_ms = ? WHERE name = ?",
        use(plan->description), use(limitsText), use(at), use(const_cast<std::string&>(name)), now;
    return *loadPlan(s, name);
  });
}

void AccountStore::deletePlan(const std::string& name) {
  validatePlanName(name);
  inTransaction(store_, "removing plan " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto plan = loadPlan(s, name);
    if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + name + "'");
    if (plan->accounts > 0)
      conflict("plan '" + name + "' is the plan of " + std::to_string(plan->accounts) +
               " account(s); give them another plan first");
    s << "DELETE FROM hosting_plans WHERE name = ?", use(const_cast<std::string&>(name)), now;
  });
}

std::optional<Plan> AccountStore::plan(const std::string& name) {
  validatePlanName(name);
  return withSession(store_, "reading plan " + name, [&](Session& s) { return loadPlan(s, name); });
}

std::vector<Plan> AccountStore::plans() {
  return withSession(store_, "listing plans", [&](Session& s) {
    std::vector<std::string> names;
    s << "SELECT name FROM hosting_plans ORDER BY name", into(names), now;
    std::vector<Plan> out;
    for (const auto& n : names)
      if (auto p = loadPlan(s, n)) out.push_back(std::move(*p));
    return out;
  });
}

std::vector<AccountChange> AccountStore::applyPlan(const std::string& name) {
  validatePlanName(name);
  return inTransaction(store_, "applying plan " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto plan = loadPlan(s, name);
    if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + name + "'");
    std::vector<std::string> names;
    s << "SELECT name FROM hosting_accounts WHERE plan = ? ORDER BY name", use(const_cast<std::string&>(name)),
        into(names), now;
    std::vector<AccountChange> changes;
    const auto at = nowMs();
    for (const auto& n : names) {
      auto a = *loadAccount(s, tx.backend(), n, true);
      if (a.limits == plan->limits) continue;
      a.limits = plan->limits;
      updateAccountRow(s, a, at);
      auto event = recordEvent(tx, "account.changed", a, "", at);
      changes.push_back(AccountChange{std::move(a), std::move(event)});
    }
    return changes;
  });
}

// ---- accounts ----

AccountChange AccountStore::createAccount(const NewAccount& request, const std::vector<LimitDimension>& domainLimits) {
  validateAccountName(request.name, "name");
  if (!request.plan.empty()) validatePlanName(request.plan, "plan");
  return inTransaction(store_, "creating account " + request.name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    lockDomainChanges(tx);
    if (loadAccount(s, tx.backend(), request.name, true)) conflict("account '" + request.name + "' already exists");
    Account a;
    a.name = request.name;
    a.plan = request.plan;
    if (!request.plan.empty()) {
      auto plan = loadPlan(s, request.plan);
      if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + request.plan + "'");
      a.limits = plan->limits;
    }
    if (request.limits)
      for (const auto& [k, v] : *request.limits) a.limits[k] = v;
    a.domains.push_back(Domain{request.primaryDomain.ascii, request.primaryDomain.unicode, "primary", "", ""});
    for (const auto& dimension : domainLimits) enforceLimit(a, dimension, 1);
    requireDomainFree(s, request.primaryDomain.ascii, a.name);
    a.uid = a.gid = allocateUid(tx, settings_.uidBase);
    a.home = settings_.storageRoot + "/" + a.name;
    a.revision = 1;
    a.createdAtMs = a.updatedAtMs = nowMs();
    std::string limitsText = limitsToText(a.limits);
    Poco::Int64 uid = a.uid, gid = a.gid, revision = a.revision, at = a.createdAtMs;
    s << "INSERT INTO hosting_accounts (" + kAccountColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", use(a.name),
        use(uid), use(gid), use(a.home), use(a.state), use(a.suspendReason), use(a.plan), use(limitsText),
        use(revision), use(at), use(at), now;
    insertDomain(s, a.name, a.domains[0]);
    certify(tx, a);
    auto event = recordEvent(tx, "account.created", a, "", a.createdAtMs);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::changeAccount(const std::string& name, const AccountEdit& edit) {
  if (edit.plan && !edit.plan->empty()) validatePlanName(*edit.plan, "plan");
  return inTransaction(store_, "changing account " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto a = requireAccount(tx, name);
    if (edit.expectedRevision && *edit.expectedRevision != a.revision)
      conflict("account '" + name + "' is at revision " + std::to_string(a.revision) + ", not " +
               std::to_string(*edit.expectedRevision) + ": someone changed it; reload and try again");
    const auto before = a;
    if (edit.plan) {
      a.plan = *edit.plan;
      if (!a.plan.empty()) {
        auto plan = loadPlan(s, a.plan);
        if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + a.plan + "'");
        a.limits = plan->limits;
      }
    }
    if (edit.limits)
      for (const auto& [k, v] : *edit.limits) a.limits[k] = v;
    if (a.plan == before.plan && a.limits == before.limits) return AccountChange{std::move(a), std::nullopt};
    const auto at = nowMs();
    updateAccountRow(s, a, at);
    auto event = recordEvent(tx, "account.changed", a, "", at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::suspend(const std::string& name, const std::string& reason) {
  validateText(reason, kMaxSuspendReasonBytes, "reason", false);
  return inTransaction(store_, "suspending account " + name, [&](store::Transaction& tx) {
    auto a = requireAccount(tx, name);
    if (a.suspended() && a.suspendReason == reason) return AccountChange{std::move(a), std::nullopt};
    a.state = "suspended";
    a.suspendReason = reason;
    const auto at = nowMs();
    updateAccountRow(tx.session(), a, at);
    auto event = recordEvent(tx, "account.suspended", a, "", at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::unsuspend(const std::string& name) {
  return inTransaction(store_, "unsuspending account " + name, [&](store::Transaction& tx) {
    auto a = requireAccount(tx, name);
    if (!a.suspended()) return AccountChange{std::move(a), std::nullopt};
    a.state = "active";
    a.suspendReason.clear();
    const auto at = nowMs();
    updateAccountRow(tx.session(), a, at);
    auto event = recordEvent(tx, "account.unsuspended", a, "", at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::removeAccount(
    const std::string& name,
    const std::function<void(store::Transaction&, const std::string& account)>& inSameTransaction) {
  return inTransaction(store_, "removing account " + name, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto a = requireAccount(tx, name);
    s << "DELETE FROM hosting_certificates WHERE account = ?", use(a.name), now;
    s << "DELETE FROM hosting_domains WHERE account = ?", use(a.name), now;
    s << "DELETE FROM hosting_accounts WHERE name = ?", use(a.name), now;
    if (inSameTransaction) inSameTransaction(tx, a.name);
    auto event = recordEvent(tx, "account.removed", a, "", nowMs());
    return AccountChange{std::move(a), std::move(event)};
  });
}

std::optional<Account> AccountStore::account(const std::string& name) {
  validateAccountName(name, "account");
  return withSession(store_, "reading account " + name,
                     [&](Session& s) { return loadAccount(s, store_.backend(), name, false); });
}

std::vector<Account> AccountStore::accounts() {
  return withSession(store_, "listing accounts", [&](Session& s) {
    return loadAccounts(s, store_.backend(), std::nullopt, false);
  });
}

std::optional<std::string> AccountStore::accountOfDomain(const std::string& asciiName) {
  return withSession(store_, "finding the account of " + asciiName, [&](Session& s) -> std::optional<std::string> {
    std::vector<std::string> owners;
    s << "SELECT account FROM hosting_domains WHERE name = ?", use(const_cast<std::string&>(asciiName)),
        into(owners), now;
    if (owners.empty()) return std::nullopt;
    return owners[0];
  });
}

// ---- domains ----

AccountChange AccountStore::addDomain(const std::string& account, const NewDomain& request,
                                      const std::vector<LimitDimension>& domainLimits) {
  requirePlainKind(request.kind);
  validateNginxExtra(request.nginxExtra, "nginx_extra");
  if (request.kind == "secondary" && !request.parent.empty())
    invalid("parent", "a secondary domain has no parent (it is a site of its own)");
  if (request.kind != "secondary" && request.parent.empty())
    invalid("parent", "an " + std::string(request.kind == "alias" ? "alias" : "subdomain") +
                          " names the domain of the account it belongs under");
  return inTransaction(store_, "adding domain " + request.name.ascii, [&](store::Transaction& tx) {
    auto& s = tx.session();
    lockDomainChanges(tx);
    auto a = requireAccount(tx, account);
    if (!request.parent.empty()) {
      const Domain* parent = a.domain(request.parent);
      if (!parent) invalid("parent", "'" + request.parent + "' is not a domain of account '" + account + "'");
      if (parent->kind == "alias") invalid("parent", "'" + request.parent + "' is an alias; name the site it aliases");
      if (request.kind == "subdomain") {
        const std::string suffix = "." + parent->name;
        const auto& n = request.name.ascii;
        if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
          invalid("name", "subdomain '" + n + "' must end in '" + suffix + "'");
      }
    }
    for (const auto& dimension : domainLimits)
      enforceLimit(a, dimension, static_cast<std::int64_t>(a.domains.size()) + 1);
    requireDomainFree(s, request.name.ascii, a.name);
    Domain d{request.name.ascii, request.name.unicode, request.kind, request.parent, request.nginxExtra};
    insertDomain(s, a.name, d);
    a.domains.push_back(d);
    certify(tx, a);
    const auto at = nowMs();
    updateAccountRow(s, a, at);
    auto event = recordEvent(tx, "domain.added", a, d.name, at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::setNginxExtra(const std::string& account, const std::string& asciiName,
                                          const std::string& extra) {
  validateNginxExtra(extra, "nginx_extra");
  return inTransaction(store_, "changing domain " + asciiName, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto a = requireAccount(tx, account);
    auto it = std::find_if(a.domains.begin(), a.domains.end(), [&](const Domain& d) { return d.name == asciiName; });
    if (it == a.domains.end())
      throw Error(ErrorCode::NotFound, "account '" + account + "' has no domain '" + asciiName + "'");
    if (it->nginxExtra == extra) return AccountChange{std::move(a), std::nullopt};
    it->nginxExtra = extra;
    s << "UPDATE hosting_domains SET nginx_extra = ? WHERE name = ?", use(const_cast<std::string&>(extra)),
        use(const_cast<std::string&>(asciiName)), now;
    const auto at = nowMs();
    updateAccountRow(s, a, at);
    auto event = recordEvent(tx, "account.changed", a, "", at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::removeDomain(const std::string& account, const std::string& asciiName) {
  return inTransaction(store_, "removing domain " + asciiName, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto a = requireAccount(tx, account);
    auto it = std::find_if(a.domains.begin(), a.domains.end(), [&](const Domain& d) { return d.name == asciiName; });
    if (it == a.domains.end())
      throw Error(ErrorCode::NotFound, "account '" + account + "' has no domain '" + asciiName + "'");
    if (it->kind == "primary")
      conflict("'" + asciiName + "' is the primary domain of account '" + account + "'; remove the account instead");
    std::vector<std::string> dependents;
    for (const auto& d : a.domains)
      if (d.parent == asciiName) dependents.push_back(d.name);
    if (!dependents.empty()) {
      std::string list;
      for (const auto& d : dependents) list += (list.empty() ? "" : ", ") + d;
      conflict("domain '" + asciiName + "' has domains under it (" + list + "); remove them first");
    }
    a.domains.erase(it);
    s << "DELETE FROM hosting_domains WHERE name = ?", use(const_cast<std::string&>(asciiName)), now;
    certify(tx, a);
    const auto at = nowMs();
    updateAccountRow(s, a, at);
    auto event = recordEvent(tx, "domain.removed", a, asciiName, at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

AccountChange AccountStore::setCertificate(const std::string& account, const Certificate& c) {
  if (c.issuer != "cluster-ca" && c.issuer != "acme") invalid("certificate.issuer", "must be cluster-ca or acme");
  return inTransaction(store_, "storing the certificate of " + account, [&](store::Transaction& tx) {
    auto& s = tx.session();
    auto a = requireAccount(tx, account);
    writeCertificate(s, a.name, c);
    a.certificate = c;
    const auto at = nowMs();
    updateAccountRow(s, a, at);
    auto event = recordEvent(tx, "account.changed", a, "", at);
    return AccountChange{std::move(a), std::move(event)};
  });
}

std::vector<AccountChange> AccountStore::resync(const std::optional<std::string>& name) {
  if (name) validateAccountName(*name, "account");
  return inTransaction(store_, "announcing accounts again", [&](store::Transaction& tx) {
    auto& s = tx.session();
    std::vector<std::string> names;
    if (name)
      names.push_back(*name);
    else
      s << "SELECT name FROM hosting_accounts ORDER BY name", into(names), now;
    std::vector<AccountChange> out;
    const auto at = nowMs();
    for (const auto& n : names) {
      auto a = requireAccount(tx, n);
      auto event = recordEvent(tx, "account.resync", a, "", at);
      out.push_back(AccountChange{std::move(a), std::move(event)});
    }
    return out;
  });
}

// ---- the outbox ----

std::vector<OutboxEvent> AccountStore::outbox(std::size_t limit) {
  return withSession(store_, "reading the hosting outbox", [&](Session& s) {
    std::vector<Poco::Int64> ids;
    std::vector<std::string> events, accounts, payloads;
    Poco::Int64 max = static_cast<Poco::Int64>(limit);
    s << "SELECT id, event, account, " + longText(store_.backend(), "payload") +
             " FROM hosting_outbox ORDER BY id LIMIT ?",
        use(max), into(ids),
        into(events), into(accounts), into(payloads), now;
    std::vector<OutboxEvent> out;
    for (std::size_t i = 0; i < ids.size(); ++i) out.push_back(OutboxEvent{ids[i], events[i], accounts[i], payloads[i]});
    return out;
  });
}

void AccountStore::outboxDone(std::int64_t id) {
  withSession(store_, "clearing a hosting outbox entry", [&](Session& s) {
    Poco::Int64 row = id;
    s << "DELETE FROM hosting_outbox WHERE id = ?", use(row), now;
  });
}

}  // namespace shoal::hosting
