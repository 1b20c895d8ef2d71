#include "host/Registries.hpp"

#include <algorithm>
#include <mutex>

#include "common/Error.hpp"

namespace shoal::host {

const std::vector<std::string>& knownHookEvents() {
  static const std::vector<std::string> events{
      "account.created",   "account.changed", "account.suspended", "account.unsuspended",
      "account.removed",   "domain.added",    "domain.removed",    "node.joined",
      "node.left",         "health.changed"};
  return events;
}

void Registries::checkQueueHandlerFreeLocked(const std::string& kind) const {
  for (const auto& entry : all_.queueHandlers) {
    if (entry.kind == kind) {
      throw Error(ErrorCode::Conflict, "queue handler kind '" + kind +
                                           "' is already registered by plugin '" +
                                           entry.plugin + "'");
    }
  }
}

void Registries::checkProbeFreeLocked(const std::string& service) const {
  for (const auto& entry : all_.probes) {
    if (entry.service == service) {
      throw Error(ErrorCode::Conflict, "a probe for service '" + service +
                                           "' is already registered by plugin '" +
                                           entry.plugin + "'");
    }
  }
}

void Registries::checkLimitFreeLocked(const std::string& name) const {
  for (const auto& entry : all_.limits) {
    if (entry.name == name) {
      throw Error(ErrorCode::Conflict, "limit '" + name + "' is already declared by plugin '" +
                                           entry.plugin + "'");
    }
  }
}

void Registries::checkQueueHandlerFree(const std::string& kind) const {
  std::shared_lock lock(mutex_);
  checkQueueHandlerFreeLocked(kind);
}

void Registries::checkProbeFree(const std::string& service) const {
  std::shared_lock lock(mutex_);
  checkProbeFreeLocked(service);
}

void Registries::commit(const Contributions& staged) {
  std::unique_lock lock(mutex_);
  for (const auto& entry : staged.queueHandlers) checkQueueHandlerFreeLocked(entry.kind);
  for (const auto& entry : staged.probes) checkProbeFreeLocked(entry.service);
  for (const auto& entry : staged.limits) checkLimitFreeLocked(entry.name);
  auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
  append(all_.queueHandlers, staged.queueHandlers);
  append(all_.probes, staged.probes);
  append(all_.panels, staged.panels);
  append(all_.hooks, staged.hooks);
  append(all_.apis, staged.apis);
  append(all_.connections, staged.connections);
  append(all_.metrics, staged.metrics);
  append(all_.limits, staged.limits);
}

std::optional<QueueHandlerEntry> Registries::queueHandler(const std::string& kind) const {
  std::shared_lock lock(mutex_);
  auto it = std::find_if(all_.queueHandlers.begin(), all_.queueHandlers.end(),
                         [&](const QueueHandlerEntry& e) { return e.kind == kind; });
  if (it == all_.queueHandlers.end()) return std::nullopt;
  return *it;
}

std::vector<QueueHandlerEntry> Registries::queueHandlers() const {
  std::shared_lock lock(mutex_);
  return all_.queueHandlers;
}

std::vector<ProbeEntry> Registries::probes() const {
  std::shared_lock lock(mutex_);
  return all_.probes;
}

std::vector<PanelEntry> Registries::panels() const {
  std::shared_lock lock(mutex_);
  return all_.panels;
}

std::vector<HookEntry> Registries::hooks(const std::string& event) const {
  std::shared_lock lock(mutex_);
  std::vector<HookEntry> out;
  for (const auto& entry : all_.hooks)
    if (entry.event == event) out.push_back(entry);
  return out;
}

std::optional<ApiEntry> Registries::api(const std::string& plugin) const {
  std::shared_lock lock(mutex_);
  for (const auto& entry : all_.apis)
    if (entry.plugin == plugin) return entry;
  return std::nullopt;
}

std::vector<ConnectionsEntry> Registries::connectionCounters() const {
  std::shared_lock lock(mutex_);
  return all_.connections;
}

std::vector<std::string> Registries::servicesSharingDaemon(const std::string& service) const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> sharing{service};
  auto own = std::find_if(all_.probes.begin(), all_.probes.end(),
                          [&](const ProbeEntry& e) { return e.service == service; });
  if (own == all_.probes.end() || own->daemon.empty()) return sharing;
  for (const auto& entry : all_.probes)
    if (entry.daemon == own->daemon && entry.service != service) sharing.push_back(entry.service);
  return sharing;
}

std::vector<MetricsEntry> Registries::metrics() const {
  std::shared_lock lock(mutex_);
  return all_.metrics;
}

std::vector<LimitEntry> Registries::limits() const {
  std::shared_lock lock(mutex_);
  return all_.limits;
}

std::optional<LimitEntry> Registries::limit(const std::string& name) const {
  std::shared_lock lock(mutex_);
  for (const auto& entry : all_.limits)
    if (entry.name == name) return entry;
  return std::nullopt;
}

void Registries::setLimitChecker(LimitChecker checker) {
  auto installed = checker ? std::make_shared<const LimitChecker>(std::move(checker)) : nullptr;
  std::unique_lock lock(mutex_);
  limitChecker_ = std::move(installed);
}

void Registries::checkLimit(const std::string& account, const std::string& limitName,
                            std::int64_t wouldHave) const {
  std::shared_ptr<const LimitChecker> checker;
  {
    std::shared_lock lock(mutex_);
    checker = limitChecker_;
  }
  // Unsupported first: where no accounts live, no dimension is meaningful either.
  if (!checker) throw Error(ErrorCode::Unsupported, "accounts are not available in this process");
  if (!limit(limitName)) throw Error(ErrorCode::NotFound, "no limit '" + limitName + "' is declared");
  // Outside the lock: the checker reads the store and may take its time.
  (*checker)(account, limitName, wouldHave);
}

void Registries::clear() {
  std::unique_lock lock(mutex_);
  all_ = Contributions{};
}

}  // namespace shoal::host
