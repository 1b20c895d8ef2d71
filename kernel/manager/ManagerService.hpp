#pragma once
// The Cluster Manager: its CA and server certificate, the admin token, node enrolment,
// the Command Queue, and the HTTPS API that exposes them (docs/api.md lists the routes).
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "api/ApiServer.hpp"
#include "auth/AuditLog.hpp"
#include "auth/LoginThrottle.hpp"
#include "auth/SessionStore.hpp"
#include "auth/UserStore.hpp"
#include "cluster/CommandQueue.hpp"
#include "cluster/NodeRegistry.hpp"
#include "health/HealthEngine.hpp"
#include "hosting/AccountService.hpp"
#include "host/EventBus.hpp"
#include "manager/DeliveryNotifier.hpp"
#include "manager/HealthService.hpp"
#include "manager/RolloutRunner.hpp"
#include "manager/StatsService.hpp"
#include "tls/AcmeClient.hpp"

namespace shoal::store {
class Store;
}
namespace shoal::host {
class Registries;
}

namespace shoal::manager {

struct ManagerSettings {
  std::filesystem::path dataDir;
  std::string listenAddress = "0.0.0.0";
  std::uint16_t port = 7443;
  // The address nodes use to reach the manager: put in join tokens and in the server
  // certificate. Empty = this host's name.
  std::string advertiseAddress;
  std::chrono::seconds offlineAfter{15};
  cluster::QueuePolicy queuePolicy;
  // Defaults for probes that leave interval, timeout, rise or fall at 0.
  health::HealthDefaults healthDefaults;
  // The panel's static files (web/ of the source tree, installed under share/shoal/web).
  std::filesystem::path webDir;
  // A panel session ends after this long without a request, and in any case after 12 hours.
  std::chrono::seconds sessionIdleTimeout{30 * 60};
  // Where /metrics is also served over plain HTTP without authentication, for a Prometheus
  // on a trusted network (127.0.0.1 and 9717, say); port 0 = only on the API, authenticated.
  std::string metricsAddress;
  std::uint16_t metricsPort = 0;
  // Seconds between the points of the RRD files (the balancer is sampled this often).
  int statsStepSeconds = 10;
  // How many RRD series one plugin may have; samples that would make more are refused.
  std::size_t statsMaxSeriesPerPlugin = 10000;
  // How long audit rows are kept and how many at most; pruned at start and every minute.
  auth::AuditRetention auditRetention;
  // Hosting accounts: the first uid ([shoald] account_uid_base) and the shared storage root
  // under which every account's home is ([shoald] storage_root).
  hosting::AccountStoreSettings hosting;
  // Certificates from an ACME server for the accounts' domains, renewed acmeRenewDays before
  // they expire and checked every acmeInterval (and at once when an account's names change).
  // Without it the accounts keep the cluster CA's certificates.
  std::optional<tls::AcmeSettings> acme;
  int acmeRenewDays = 30;
  std::chrono::seconds acmeInterval{3600};
};

class ManagerService {
 public:
  // `registries` (may be null) lets enqueue refuse kinds no plugin handles and run their
  // on_validate. Throws Error on a setup failure (CA unreadable, port taken).
  ManagerService(store::Store& store, const host::Registries* registries, ManagerSettings settings);
  ~ManagerService();  // stop()

  // The files a manager's first start leaves in `dataDir` that belong to that one cluster
  // (tls/ca.crt, tls/ca.key, tls/server.crt, tls/server.key, admin.token), those that exist.
  static std::vector<std::filesystem::path> clusterFilesIn(const std::filesystem::path& dataDir);
  // Called when the store holds no cluster, before anything is written: Error(Failed) when
  // `dataDir` holds another cluster's files, since going on would make a new cluster over them
  // (a new CA and admin token, every node refused). The message names the store and the files
  // and says how to recover: restore the store from a backup, or move the files away to start
  // a new cluster on purpose.
  static void refuseNewClusterOverOldFiles(const std::filesystem::path& dataDir, const std::string& storeDescription);

  void start();
  void stop();
  // Ends every waiting long-poll now and makes later ones return at once: the first step of
  // stopping, so an in-process node agent (AppServer0) is not held for a whole poll.
  void releaseWaiters() { notifier_.shutdown(); }

  std::uint16_t port() const;
  std::filesystem::path adminTokenFile() const;
  std::filesystem::path caFile() const;
  std::string caFingerprint() const;
  // "host:port" that join tokens carry.
  std::string advertisedEndpoint() const;
  const std::vector<api::Route>& routes() const;

  cluster::NodeRegistry& nodes() { return nodes_; }
  cluster::CommandQueue& queue() { return queue_; }
  HealthService& health() { return *health_; }
  StatsService& stats() { return *stats_; }
  auth::UserStore& users() { return *users_; }
  hosting::AccountService& accounts() { return *accounts_; }
  // Port of the plain-HTTP /metrics listener (0 when not configured).
  std::uint16_t metricsPort() const;

  // Enqueues for a plugin (ABI callback_enqueue): `requestJson` is an enqueue request in the
  // one format abi.h documents (POST /v1/commands takes the same). Returns {"id",
  // "deliveries"} (a batch: {"commands": [...]}). Throws Error naming a malformed field.
  std::string enqueueForPlugin(const std::string& requestJson);
  // One command with its deliveries (ABI 1.3 callback_command_get). Throws Error(NotFound).
  std::string commandForPlugin(std::int64_t commandId);

 private:
  std::vector<api::Route> makeRoutes();
  // One step of a node's long-poll (GET /v1/node/deliveries): answers what it can claim, or
  // waits on the notifier without holding a thread and comes back here on the route's pool.
  void pollDeliveries(const std::shared_ptr<api::PendingReply>& reply, std::size_t limit,
                      std::chrono::steady_clock::time_point deadline);
  // Error(InvalidArgument) unless a plugin handles the kind and its on_validate accepts.
  void validateCommand(const cluster::CommandRequest& request, const std::string& where) const;
  // The one way commands enter the queue: validateCommand for each, enqueue (a batch all or
  // none), EventBus::noteEnqueued for each, then wake the nodes. With an idempotency key
  // ("" for none) a repeated request returns the commands the first one enqueued
  // (CommandQueue::enqueueOnce), replayed, and wakes nobody.
  cluster::CommandQueue::Enqueued enqueueCommands(const std::vector<cluster::CommandRequest>& requests, bool batch,
                                                  const std::string& idempotencyKey = "");
  std::optional<api::Principal> authenticate(api::Access required, const api::ApiRequest& request);
  // A panel user's session cookie; on a change also its CSRF token (api::Forbidden without).
  std::optional<api::Principal> authenticateSession(const api::ApiRequest& request);
  // The one check of what an owner may reach (docs/adr/0013-hosting-accounts.md): throws
  // api::Refused unless `owner` may call a route of `required` access with this request.
  void authorizeOwner(api::Access required, const api::ApiRequest& request, const api::Principal& owner);
  // The routes of PanelRoutes.cpp: session, users, audit, panels, statistics, pages.
  void addPanelRoutes(std::vector<api::Route>& routes);
  // The routes of AccountRoutes.cpp: limits, plans, accounts, domains.
  void addAccountRoutes(std::vector<api::Route>& routes);
  void audit(const api::Route& route, const api::ApiRequest& request, const api::ApiResponse& response);
  api::ApiResponse metricsResponse();
  // Records in the audit log; a failure to record is logged, never thrown. A refusal anyone
  // can repeat without a credential is `repeatable`: counted in one row per source and
  // minute (AuditLog::recordRepeated), so a flood of them cannot fill the disk.
  void recordAudit(auth::AuditEntry entry, bool repeatable = false);
  void pruneAudit();
  // With no panel user yet, creates 'admin' with a one-time password, printed in the log.
  void ensureFirstAdmin();
  void noteContact(std::int64_t nodeId);
  // What AccountService needs of the manager: the plugins' limit dimensions, the queue (for
  // the kernel's identity commands) and the plugins' hooks.
  hosting::AccountServiceHooks accountHooks();
  // node.joined / node.left to the plugins' hooks (the registry's observer).
  void publishNodeEvent(const cluster::NodeEvent& event);

  store::Store& store_;
  const host::Registries* registries_;
  ManagerSettings settings_;
  cluster::NodeRegistry nodes_;
  cluster::CommandQueue queue_;
  DeliveryNotifier notifier_;
  std::unique_ptr<host::EventBus> events_;  // null without registries
  std::unique_ptr<HealthService> health_;
  RolloutRunner rollouts_;
  std::unique_ptr<StatsService> stats_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<auth::SessionStore> sessions_;
  auth::LoginThrottle throttle_;
  // scrypt verifications at once: two keep both cores busy; fewer than the panel's worker
  // threads (ApiServerSettings::publicWorkers), so static files always find one.
  std::counting_semaphore<> passwordChecks_{2};
  std::unique_ptr<auth::AuditLog> audit_;
  std::unique_ptr<tls::SiteCertificates> siteCertificates_;  // the sites' certificates from the cluster CA
  std::unique_ptr<hosting::AccountService> accounts_;
  std::unique_ptr<tls::AcmeClient> acmeClient_;    // null without settings_.acme
  std::unique_ptr<tls::AcmeRenewer> acmeRenewer_;
  // Set when a node enrols or its roles change: the sweeper then announces every account again
  // (AccountService::resync), so the node gets the identities and the sites it has none of.
  std::atomic<bool> accountsResyncWanted_{false};
  std::unique_ptr<api::ApiServer> metricsServer_;
  std::string adminTokenHash_;
  std::string caFingerprint_;
  std::filesystem::path caFile_;
  std::unique_ptr<api::ApiServer> server_;
  std::atomic<bool> running_{false};
  std::thread sweeper_;  // marks silent nodes offline
  std::mutex contactMutex_;
  std::map<std::int64_t, std::chrono::steady_clock::time_point> lastContactWrite_;
};

}  // namespace shoal::manager
