#pragma once
// Hosting accounts, their domains and certificates, and plans, in the store (migration 8).
//
// Every change runs in one store transaction that also writes the change's event into the
// outbox (hosting_outbox): the account's whole desired state as it is after the change (for a
// removal, as it was before). The service (AccountService) takes the outbox rows to the queue and
// the plugins' hooks after the commit and deletes them, so a manager that dies in between
// delivers them when it starts again; nothing committed goes unannounced.
//
// Inputs are validated here, each error naming the field: account names (AccountNames.hpp),
// domain names already normalised by normalizeDomain, plan names, reasons. Relations are checked
// inside the transaction: one domain in one account (its primary key), no domain under another
// account's domain or above one, parents of aliases and subdomains, limits the kernel counts.
// Errors: InvalidArgument (bad input), NotFound, Conflict (taken, in use, or an expected revision
// that is not the stored one; also a limit reached). On any error nothing is written.
// Thread-safe: each call takes its own pooled session.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cluster/Clock.hpp"
#include "hosting/Account.hpp"
#include "hosting/AccountNames.hpp"
#include "store/Store.hpp"
#include "store/Transaction.hpp"

namespace shoal::hosting {

struct NewAccount {
  std::string name;
  DomainName primaryDomain;
  std::string plan;                      // "" for none: then `limits` (or nothing) applies
  std::optional<Limits> limits;          // over the plan's: these names take these values
};

struct AccountEdit {
  std::optional<std::string> plan;       // assigning a plan copies its limits ("" = no plan)
  std::optional<Limits> limits;          // replaces the named limits (after the plan's copy)
  std::optional<std::int64_t> expectedRevision;  // Conflict when the stored one differs
};

struct NewDomain {
  DomainName name;
  std::string kind;       // secondary, alias, subdomain
  std::string parent;     // alias, subdomain: a domain of the account that is not an alias
  std::string nginxExtra;
};

// An event of a committed change, waiting in the outbox.
struct OutboxEvent {
  std::int64_t id = 0;
  std::string event;    // account.created, ..., domain.removed
  std::string account;
  std::string payload;  // {"account": {...}} (+ "domain" for domain.*)
};

// What a change left: the account as it is now (for a removal: as it was) and its event,
// none when the call changed nothing.
struct AccountChange {
  Account account;
  std::optional<OutboxEvent> event;
};

struct AccountStoreSettings {
  std::uint32_t uidBase = 20000;       // uid = uidBase + counter; gid = uid
  std::string storageRoot = "/srv/shoal";  // home = storageRoot/<name>
};

constexpr std::size_t kMaxSuspendReasonBytes = 200;
constexpr std::size_t kMaxPlanDescriptionBytes = 500;
constexpr std::size_t kMaxNginxExtraBytes = 4096;

// The certificate an account should have once its domains are as given: a new one, or nullopt
// to keep the one it has. Called inside the transaction of every change to the domains
// (creating the account included), so the event carries the certificate for the names it
// announces. Throws to refuse the change.
using Certifier = std::function<std::optional<Certificate>(const Account& account)>;

class AccountStore {
 public:
  AccountStore(store::Store& store, AccountStoreSettings settings, cluster::Clock clock = {},
               Certifier certifier = {});

  // ---- plans ----
  Plan createPlan(const std::string& name, const std::string& description, const Limits& limits);
  // Changes the plan only; accounts keep their copies until applyPlan.
  Plan updatePlan(const std::string& name, const std::optional<std::string>& description,
                  const std::optional<Limits>& limits);
  // Conflict while an account is on it, naming how many.
  void deletePlan(const std::string& name);
  std::optional<Plan> plan(const std::string& name);
  std::vector<Plan> plans();
  // Every account on the plan gets the plan's limits now: one account.changed each (accounts
  // whose limits already equal the plan's are left alone). In one transaction.
  std::vector<AccountChange> applyPlan(const std::string& name);

  // ---- accounts ----
  // `domainLimits`: the dimensions that count domains, checked against the new account's
  // limits for its one domain.
  AccountChange createAccount(const NewAccount& request, const std::vector<LimitDimension>& domainLimits);
  AccountChange changeAccount(const std::string& name, const AccountEdit& edit);
  // A reason of 1 to kMaxSuspendReasonBytes printable characters. Suspending a suspended
  // account with the same reason, or unsuspending an active one, changes nothing.
  AccountChange suspend(const std::string& name, const std::string& reason);
  AccountChange unsuspend(const std::string& name);
  // `inSameTransaction` (when set) runs inside the removal's transaction, after the account's
  // rows are gone: what else must vanish with the account (its owners, auth/UserStore.hpp).
  // Whatever it throws undoes the removal.
  AccountChange removeAccount(const std::string& name,
                              const std::function<void(store::Transaction&, const std::string& account)>&
                                  inSameTransaction = {});
  std::optional<Account> account(const std::string& name);
  std::vector<Account> accounts();
  // The account holding the domain (ASCII form), if any.
  std::optional<std::string> accountOfDomain(const std::string& asciiName);

  // ---- domains and the certificate ----
  AccountChange addDomain(const std::string& account, const NewDomain& domain,
                          const std::vector<LimitDimension>& domainLimits);
  AccountChange setNginxExtra(const std::string& account, const std::string& asciiName, const std::string& extra);
  // Conflict for the primary domain, or for a domain that aliases or subdomains hang under.
  AccountChange removeDomain(const std::string& account, const std::string& asciiName);
  // Replaces the account's certificate (account.changed).
  AccountChange setCertificate(const std::string& account, const Certificate& certificate);

  // Announces the accounts again as they are (all, or the one named), without changing them:
  // one "account.resync" event each, delivered as the identity followed by account.changed, so
  // a node that joined or gained a role after the accounts were made gets all of them.
  std::vector<AccountChange> resync(const std::optional<std::string>& name);

  // ---- the outbox ----
  std::vector<OutboxEvent> outbox(std::size_t limit = 1000);
  void outboxDone(std::int64_t id);

 private:
  std::int64_t nowMs() const;
  // Runs the certifier for `account` and stores what it returns, in `tx`.
  void certify(store::Transaction& tx, Account& account);

  store::Store& store_;
  AccountStoreSettings settings_;
  cluster::Clock clock_;
  Certifier certifier_;
};

// Error(Conflict) "account 'acme' is at its limit of 3 for http.domains (Domains)" when the
// account's limit for `dimension` is below `wouldHave`; an unnamed or null limit is unlimited.
void enforceLimit(const Account& account, const LimitDimension& dimension, std::int64_t wouldHave);

}  // namespace shoal::hosting
