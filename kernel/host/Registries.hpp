#pragma once
// The kernel's registries: what plugins contribute (queue handlers, probes, panels, hooks,
// limit dimensions).
//
// A plugin's contributions are staged in a Contributions while its on_init runs and enter
// the registries together, or not at all, through Registries::commit. Entries keep the
// plugin's callback pointers; the plugin host keeps every library loaded until shutdown,
// so those pointers stay valid as long as the registries are used.
#include <shoal/abi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace shoal::host {

// The `plugin` of the kernel's own entries (built-in queue handlers); no plugin may take it.
inline constexpr const char* kKernelContributorName = "kernel";

struct QueueHandlerEntry {
  std::string plugin;
  std::string kind;
  std::string description;
  void* user = nullptr;
  shoal_status (*onValidate)(void*, shoal_str, shoal_reply*) = nullptr;
  shoal_status (*onApply)(void*, shoal_str, shoal_reply*) = nullptr;
  // ABI 1.3; when set, called instead of onApply.
  shoal_status (*onApplyCtx)(void*, const shoal_apply_context*, shoal_str, shoal_reply*) = nullptr;
};

struct ProbeEntry {
  std::string plugin;
  std::string service;
  shoal_probe_kind kind = SHOAL_PROBE_TCP;
  std::uint16_t port = 0;
  bool tls = false;
  std::uint32_t intervalMs = 0, timeoutMs = 0, rise = 0, fall = 0;
  std::vector<std::pair<std::string, std::string>> steps;  // {send, expect}
  std::string httpMethod, httpPath, httpHost;
  std::uint32_t httpExpectStatus = 0;
  // ABI 1.3: the daemon serving this service on a node ("nginx"); empty = its own daemon.
  std::string daemon;
};

struct PanelEntry {
  std::string plugin;
  std::string id;
  std::string definitionJson;
  void* user = nullptr;
  shoal_status (*onData)(void*, shoal_str, shoal_str, shoal_reply*) = nullptr;
  shoal_status (*onAction)(void*, shoal_str, shoal_str, shoal_reply*) = nullptr;
};

struct HookEntry {
  std::string plugin;
  std::string event;
  void* user = nullptr;
  shoal_status (*onEvent)(void*, shoal_str, shoal_str, shoal_reply*) = nullptr;
};

// A plugin's endpoint under /v1/plugins/<plugin>/ (ABI 1.1).
struct ApiEntry {
  std::string plugin;
  void* user = nullptr;
  shoal_status (*onRequest)(void*, shoal_str, shoal_str, shoal_str, shoal_str, shoal_reply*) = nullptr;
};

// A plugin's count of the connections its dataplane holds to a node (ABI 1.3).
struct ConnectionsEntry {
  std::string plugin;
  void* user = nullptr;
  shoal_status (*onNodeConnections)(void*, shoal_str, shoal_reply*) = nullptr;
};

// A plugin's contribution to /metrics (ABI 1.3).
struct MetricsEntry {
  std::string plugin;
  void* user = nullptr;
  shoal_status (*onCollect)(void*, shoal_reply*) = nullptr;
};

// A limit dimension of hosting accounts a plugin declared (ABI 1.5 callback_register_limit).
struct LimitEntry {
  std::string plugin;
  std::string dimension;  // as declared: "domains"
  std::string name;       // the full name accounts and plans use: "http.domains"
  std::string label;      // for people: "Domains"
  // "domains": the kernel counts the account's domains itself; empty: the plugin counts and
  // asks through callback_limit_check.
  std::string counts;
};

// Decides whether `account` may have `wouldHave` objects of the limit `limitName` (a full
// name, "http.disk_mb"). Returns when it may; throws shoal::Error otherwise: Conflict with the
// message the refusal carries ("account 'acme' is at its limit of 3 for http.domains
// (Domains)"), NotFound for an unknown account. Installed by the part of the daemon that
// owns accounts (the manager); called from any thread, outside the registries' lock.
using LimitChecker =
    std::function<void(const std::string& account, const std::string& limitName, std::int64_t wouldHave)>;

// What one plugin registered during its init.
struct Contributions {
  std::vector<QueueHandlerEntry> queueHandlers;
  std::vector<ProbeEntry> probes;
  std::vector<PanelEntry> panels;
  std::vector<HookEntry> hooks;
  std::vector<ApiEntry> apis;  // at most one
  std::vector<ConnectionsEntry> connections;  // at most one
  std::vector<MetricsEntry> metrics;  // at most one
  std::vector<LimitEntry> limits;
};

// The events a hook may subscribe to in this ABI version.
const std::vector<std::string>& knownHookEvents();

class Registries {
 public:
  // Adds all of `staged` or, when any entry clashes with a registered one (a queue-handler
  // kind, a probe service or a limit name already taken), nothing; then throws
  // Error(Conflict) naming the clash and its owner.
  void commit(const Contributions& staged);

  // Throws Error(Conflict) if `kind` / `service` is already registered.
  void checkQueueHandlerFree(const std::string& kind) const;
  void checkProbeFree(const std::string& service) const;

  std::optional<QueueHandlerEntry> queueHandler(const std::string& kind) const;
  std::vector<QueueHandlerEntry> queueHandlers() const;
  std::vector<ProbeEntry> probes() const;
  std::vector<PanelEntry> panels() const;
  std::vector<HookEntry> hooks(const std::string& event) const;
  std::optional<ApiEntry> api(const std::string& plugin) const;
  std::vector<ConnectionsEntry> connectionCounters() const;
  // The services that share `service`'s daemon (ABI 1.3 probe `daemon`), `service` first;
  // just {service} when its probe names no daemon or it has no probe.
  std::vector<std::string> servicesSharingDaemon(const std::string& service) const;
  std::vector<MetricsEntry> metrics() const;
  // Every declared limit dimension, in load order; one by its full name ("http.domains").
  std::vector<LimitEntry> limits() const;
  std::optional<LimitEntry> limit(const std::string& name) const;

  // The account side of callback_limit_check. Installed by the daemon where accounts live;
  // an empty checker uninstalls it. Not a plugin's contribution: clear() keeps it.
  void setLimitChecker(LimitChecker checker);
  // Runs the installed checker for `limitName` (which must be declared: Error(NotFound)
  // otherwise); Error(Unsupported) "accounts are not available in this process" when none
  // is installed. The checker's own errors pass through unchanged.
  void checkLimit(const std::string& account, const std::string& limitName, std::int64_t wouldHave) const;

  // Forget everything (at shutdown, before libraries are unloaded).
  void clear();

 private:
  void checkQueueHandlerFreeLocked(const std::string& kind) const;
  void checkProbeFreeLocked(const std::string& service) const;
  void checkLimitFreeLocked(const std::string& name) const;

  mutable std::shared_mutex mutex_;
  Contributions all_;
  std::shared_ptr<const LimitChecker> limitChecker_;  // guarded by mutex_; null = none
};

}  // namespace shoal::host
