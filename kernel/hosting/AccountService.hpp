#pragma once
// The manager's hosting accounts: AccountStore's changes, with the checks that need the loaded
// plugins (which limit dimensions exist) and the delivery of every change to the nodes.
//
// Delivery (docs/adr/0013-hosting-accounts.md): each committed change left one event in the
// outbox. deliver() takes the outbox in order and, per event:
//   account.created   enqueue account.identity.put (every node), then dispatch the event
//   account.removed   dispatch the event, then enqueue account.identity.remove
//   account.resync    enqueue account.identity.put, then dispatch account.changed
//   any other         dispatch the event
// then deletes the row. The identity commands carry an idempotency key made from the outbox
// row, so an event delivered twice (the manager died before deleting its row) enqueues its
// identity command once; hooks are told twice, which is harmless because every command a plugin
// makes from an event carries the object's whole desired state. Commands use the ordering key
// "account:<name>". An event that cannot be delivered now (the store failed) stays in the
// outbox and is tried again by deliverPending().
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/CommandQueue.hpp"
#include "hosting/AccountStore.hpp"
#include "tls/AcmeClient.hpp"

namespace shoal::hosting {

struct AccountServiceHooks {
  // The limit dimensions the loaded plugins declared.
  std::function<std::vector<LimitDimension>()> dimensions;
  // Enqueues one kernel command for every node; returns the command ids ([] when the cluster
  // has no node to give it to). Throws Error on failure.
  std::function<std::vector<std::int64_t>(const cluster::CommandRequest& request, const std::string& idempotencyKey)>
      enqueue;
  // A certificate of the cluster CA for the names (tls::SiteCertificates::issue). Unset: the
  // accounts get no certificate until one is set for them.
  std::function<Certificate(const std::vector<std::string>& names)> issueClusterCertificate;
  // Runs the plugins' hooks for the event; returns the ids of the commands they enqueued.
  std::function<std::vector<std::int64_t>(const std::string& event, const std::string& payloadJson)> dispatch;
  // Runs inside the transaction that removes an account (AccountStore::removeAccount): the
  // manager removes the account's owners and their sessions there, so none outlives it.
  std::function<void(store::Transaction& tx, const std::string& account)> removingAccount;
};

// A change as the API reports it: the account, and the commands that carry it to the nodes.
struct DeliveredChange {
  Account account;
  std::vector<std::int64_t> commands;
  std::string deliveryError;  // not empty when the event waits in the outbox for a retry
};

class AccountService {
 public:
  AccountService(store::Store& store, AccountStoreSettings settings, AccountServiceHooks hooks,
                 cluster::Clock clock = {});

  AccountStore& store() { return store_; }
  std::vector<LimitDimension> dimensions() const;
  // Error(InvalidArgument) naming `field` for a limit no loaded plugin declared.
  void requireDeclared(const Limits& limits, const std::string& field) const;

  Plan createPlan(const std::string& name, const std::string& description, const Limits& limits);
  Plan updatePlan(const std::string& name, const std::optional<std::string>& description,
                  const std::optional<Limits>& limits);
  std::vector<DeliveredChange> applyPlan(const std::string& name);

  DeliveredChange createAccount(const NewAccount& request);
  DeliveredChange changeAccount(const std::string& name, const AccountEdit& edit);
  DeliveredChange suspend(const std::string& name, const std::string& reason);
  DeliveredChange unsuspend(const std::string& name);
  DeliveredChange removeAccount(const std::string& name);
  DeliveredChange addDomain(const std::string& account, const NewDomain& domain);
  DeliveredChange setNginxExtra(const std::string& account, const std::string& domain, const std::string& extra);
  DeliveredChange removeDomain(const std::string& account, const std::string& domain);
  DeliveredChange setCertificate(const std::string& account, const Certificate& certificate);
  // What the ACME renewer looks after: one target per account (id = its name) for its
  // certificateNames, to be obtained anew when its certificate is not ACME's or covers other
  // names, else renewed when due.
  std::vector<tls::RenewalTarget> acmeTargets();
  // Stores a certificate ACME issued for `account`, unless its names are no longer the
  // account's (they changed meanwhile: the next pass obtains one for the new names); returns
  // whether it was stored.
  bool storeAcmeCertificate(const std::string& account, const Certificate& certificate);
  // AccountStore::resync, delivered.
  std::vector<DeliveredChange> resync(const std::optional<std::string>& account);

  // For a plugin's own objects (ABI callback_limit_check): Error(Conflict) with the limit's
  // message when `account` may not have `wouldHave` of `limitName`; Error(NotFound) for an
  // unknown account or a dimension no plugin declared.
  void checkLimit(const std::string& account, const std::string& limitName, std::int64_t wouldHave);

  // Delivers what the outbox holds (at start, and after a failed delivery). Returns how many
  // events were delivered. Never throws: a failure is logged and left for the next call.
  std::size_t deliverPending();
  bool deliveryPending() const { return deliveryPending_; }

  static std::string orderingKey(const std::string& account) { return "account:" + account; }
  // The names an account's certificate covers: every domain of it (aliases included), the first
  // one that fits a subject common name (64 bytes) first, at most tls::kMaxSiteCertificateNames.
  static std::vector<std::string> certificateNames(const Account& account);

 private:
  DeliveredChange delivered(AccountChange change);
  // The store's certifier: a cluster-CA certificate whenever the names change, unless the
  // account's certificate is ACME's (the ACME renewer then obtains one for the new names).
  std::optional<Certificate> certify(const Account& account) const;
  std::vector<LimitDimension> domainDimensions() const;
  // Delivers outbox rows in order up to and including `upTo` (0: all); returns the commands
  // each delivered row produced, by row id. Throws on the first failure.
  std::map<std::int64_t, std::vector<std::int64_t>> deliverUpTo(std::int64_t upTo);

  AccountStore store_;
  AccountServiceHooks hooks_;
  std::mutex deliveryMutex_;  // one delivery at a time, so events reach hooks in commit order
  // The commands the latest outbox rows produced (the newest kRecentDeliveries, under
  // deliveryMutex_), so a request whose row another thread delivered first still answers them.
  std::map<std::int64_t, std::vector<std::int64_t>> recentlyDelivered_;
  std::atomic<bool> deliveryPending_{true};  // the outbox may hold rows (always at start)
};

}  // namespace shoal::hosting
