#include "daemon/Daemon.hpp"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>
#include <Poco/UUIDGenerator.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <ostream>
#include <sstream>

#include "common/Error.hpp"
#include "agent/NodeAgent.hpp"
#include "api/JoinToken.hpp"
#include "host/PluginHost.hpp"
#include "hosting/IdentityHandlers.hpp"
#include "manager/ManagerService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/DocumentStore.hpp"
#include "store/Store.hpp"

namespace shoal::daemon {
namespace {

// Holds an exclusive lock on <data_dir>/shoald.lock for the life of the daemon, so two
// daemons never share one data directory (and one SQLite file).
class DataDirLock {
 public:
  explicit DataDirLock(const std::filesystem::path& dataDir) {
    std::error_code ec;
    std::filesystem::create_directories(dataDir, ec);
    if (ec)
      throw Error(ErrorCode::Failed, "cannot create data directory " + dataDir.string() + ": " +
                                         ec.message());
    path_ = dataDir / "shoald.lock";
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw Error(ErrorCode::Failed, "cannot open " + path_.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error(ErrorCode::Conflict, "another shoald is already running with data directory " +
                                           dataDir.string() + " (it holds " + path_.string() + ")");
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0 && ::write(fd_, pid.data(), pid.size()) < 0) {
      // The pid is informative only; the lock is what matters.
    }
  }
  ~DataDirLock() { ::close(fd_); }
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Whether the store holds a cluster's identity (cluster_meta came with migration 2).
bool holdsCluster(store::Store& store) {
  return store.schemaVersion() >= 2 && store.meta("cluster_id").has_value();
}

std::unique_ptr<store::Store> openAndMigrate(const DaemonSettings& s, Poco::Logger& log) {
  auto store = store::Store::open(store::StoreSettings{s.store, s.dataDir});
  // Before the first write: an empty or replaced store next to a cluster's files is an
  // accident to be repaired, not a first start.
  if (s.role == "manager" && !holdsCluster(*store))
    manager::ManagerService::refuseNewClusterOverOldFiles(s.dataDir, store->describe());
  auto report = store->migrate();
  if (report.applied.empty()) {
    log.information("store " + store->describe() + " is at schema version " +
                    std::to_string(report.toVersion) + "; nothing to migrate");
  } else {
    std::string names;
    for (const auto& name : report.applied) names += (names.empty() ? "" : ", ") + name;
    log.information("store " + store->describe() + " migrated from schema version " +
                    std::to_string(report.fromVersion) + " to " +
                    std::to_string(report.toVersion) + " (" + names + ")");
  }
  return store;
}

// The cluster's identity is made once, at the first start, and kept in the store.
void ensureClusterIdentity(store::Store& store, Poco::Logger& log) {
  auto id = store.meta("cluster_id");
  if (id) {
    log.information("cluster " + *id + ", created " + store.meta("created_at").value_or("?"));
    return;
  }
  std::string newId = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
  std::string now =
      Poco::DateTimeFormatter::format(Poco::DateTime(), Poco::DateTimeFormat::ISO8601_FORMAT);
  store.setMeta("created_at", now);
  store.setMeta("cluster_id", newId);
  log.information("created cluster " + newId);
}

// What plugins reach of the running daemon through ABI 1.1 (see host/HostRuntime.hpp).
class DaemonRuntime final : public host::HostRuntime {
 public:
  DaemonRuntime(std::string role, std::filesystem::path dataDir, std::filesystem::path nodeDir,
                manager::ManagerService* manager)
      : role_(std::move(role)), dataDir_(std::move(dataDir)), nodeDir_(std::move(nodeDir)), manager_(manager) {}

  std::string hostInfoJson() override {
    Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
    o.set("role", role_);
    auto identity = nodeDir_.empty() ? std::nullopt : agent::NodeAgent::loadIdentity(nodeDir_);
    o.set("node_id", identity ? identity->nodeId : 0);
    o.set("data_dir", dataDir_.string());
    o.set("host_version", std::string(build::kVersion));
    std::ostringstream out;
    o.stringify(out);
    return out.str();
  }
  std::string enqueue(const std::string& requestJson) override {
    return managerOrRefuse("enqueueing commands").enqueueForPlugin(requestJson);
  }
  std::string commandJson(std::int64_t commandId) override {
    return managerOrRefuse("reading commands").commandForPlugin(commandId);
  }
  std::string healthJson() override {
    std::ostringstream out;
    managerOrRefuse("the health of services").health().toJson()->stringify(out);
    return out.str();
  }
  void emitStats(std::vector<host::StatsSample> samples) override {
    // The manager records; a node forwards to it.
    if (manager_ != nullptr) {
      // Beyond the plugin's cap a series is refused; the service logs it once.
      manager_->stats().record(samples);
      return;
    }
    auto* agent = agent_.load();
    if (agent == nullptr) throw Error(ErrorCode::Unsupported, "statistics need a running manager or node agent");
    agent->forwardStats(std::move(samples));
  }
  void declareStats(const std::string& plugin, const std::string& seriesJson) override {
    auto& stats = managerOrRefuse("declaring statistics series").stats();
    stats.declare(plugin, host::parseStatsSeriesNames(seriesJson, plugin + ".", stats.maxSeriesPerPlugin()));
  }
  // Set once the node agent runs (a node's samples go to the manager through it).
  void setAgent(agent::NodeAgent* agent) { agent_ = agent; }

 private:
  manager::ManagerService& managerOrRefuse(const char* what) {
    if (manager_ == nullptr)
      throw Error(ErrorCode::Unsupported, std::string(what) + " is only possible on the manager");
    return *manager_;
  }
  std::string role_;
  std::filesystem::path dataDir_, nodeDir_;
  manager::ManagerService* manager_;
  std::atomic<agent::NodeAgent*> agent_{nullptr};
};

const char* stateName(host::PluginState state) {
  return state == host::PluginState::Loaded ? "loaded" : "refused";
}

Poco::JSON::Object::Ptr toJson(const host::PluginRecord& r) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  auto array = [](const auto& entries, auto name) {
    Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
    for (const auto& e : entries) a->add(name(e));
    return a;
  };
  o->set("file", r.file.string());
  o->set("name", r.name);
  o->set("version", r.version);
  o->set("abi_version", r.abiMajor == 0 && r.abiMinor == 0
                            ? std::string()
                            : std::to_string(r.abiMajor) + "." + std::to_string(r.abiMinor));
  o->set("state", std::string(stateName(r.state)));
  o->set("reason", r.reason);
  const auto& c = r.contributions;
  o->set("queue_handlers", array(c.queueHandlers, [](const auto& e) { return e.kind; }));
  o->set("probes", array(c.probes, [](const auto& e) { return e.service; }));
  o->set("panels", array(c.panels, [](const auto& e) { return e.id; }));
  o->set("hooks", array(c.hooks, [](const auto& e) { return e.event; }));
  o->set("limits", array(c.limits, [](const auto& e) { return e.name; }));
  return o;
}

}  // namespace

int listPlugins(const LoadedConfig& config, bool json, std::ostream& out) {
  host::PluginHost plugins(host::HostServices{config.layers.get(), nullptr});
  auto records = plugins.loadDirectory(config.settings.pluginDir);
  bool anyRefused = false;
  for (const auto& record : records) {
    anyRefused = anyRefused || record.state == host::PluginState::Refused;
    if (json) {
      Poco::JSON::Stringifier::condense(toJson(record), out);
      out << '\n';
    } else {
      out << record.file.filename().string() << ": " << stateName(record.state);
      if (record.state == host::PluginState::Loaded) {
        out << " " << record.name << " " << record.version << " (ABI " << record.abiMajor << "."
            << record.abiMinor << ")";
        const auto& c = record.contributions;
        out << " — " << c.queueHandlers.size() << " queue handler(s), " << c.probes.size()
            << " probe(s), " << c.panels.size() << " panel(s), " << c.hooks.size() << " hook(s)";
      } else {
        out << ": " << record.reason;
      }
      out << '\n';
    }
  }
  out.flush();
  plugins.shutdown();
  return anyRefused ? kExitPluginsRefused : kExitOk;
}

int migrateStore(const LoadedConfig& config, std::ostream& out) {
  auto& log = Poco::Logger::get("shoald");
  DataDirLock lock(config.settings.dataDir);
  auto store = openAndMigrate(config.settings, log);
  out << "store " << store->describe() << " is at schema version " << store->schemaVersion()
      << '\n';
  return kExitOk;
}

int runDaemon(const LoadedConfig& config) {
  const DaemonSettings& s = config.settings;
  auto& log = Poco::Logger::get("shoald");
  log.information(std::string("shoald ") + build::kVersion + " starting as " + s.role +
                  (s.configFile.empty() ? std::string(" with built-in defaults (no configuration file)")
                                        : " with configuration " + s.configFile.string()));

  DataDirLock lock(s.dataDir);
  auto store = openAndMigrate(s, log);
  // The cluster's identity lives on the manager; a node's store holds only its plugins' data.
  if (s.role == "manager") ensureClusterIdentity(*store, log);
  store::DocumentStore documents(*store);

  std::size_t loaded = 0, refused = 0;
  {
    host::PluginHost plugins(host::HostServices{config.layers.get(), &documents});
    // The kernel's own queue handlers first: every shoald validates (manager) or applies
    // (node) them, and a plugin claiming one of their kinds is then the one refused.
    plugins.registerBuiltIns(hosting::identityQueueHandlers());
    std::error_code ec;
    if (std::filesystem::is_directory(s.pluginDir, ec)) {
      for (const auto& record : plugins.loadDirectory(s.pluginDir))
        ++(record.state == host::PluginState::Loaded ? loaded : refused);
    } else {
      log.warning("plugin directory " + s.pluginDir.string() + " does not exist; no plugins loaded");
    }
    std::unique_ptr<manager::ManagerService> managerService;
    std::unique_ptr<agent::NodeAgent> nodeAgent;
    std::unique_ptr<DaemonRuntime> runtime;
    if (s.role == "manager") {
      manager::ManagerSettings ms;
      ms.dataDir = s.dataDir;
      ms.listenAddress = s.apiListen;
      ms.port = s.apiPort;
      ms.advertiseAddress = s.advertiseAddress;
      ms.queuePolicy.lease = std::chrono::seconds(s.queueLeaseSeconds);
      ms.webDir = s.webDir;
      ms.sessionIdleTimeout = std::chrono::minutes(s.panelIdleTimeoutMinutes);
      ms.metricsAddress = s.metricsAddress;
      ms.metricsPort = s.metricsPort;
      ms.statsStepSeconds = s.statsStepSeconds;
      ms.statsMaxSeriesPerPlugin = static_cast<std::size_t>(s.statsMaxSeriesPerPlugin);
      ms.hosting.uidBase = static_cast<std::uint32_t>(s.accountUidBase);
      ms.hosting.storageRoot = s.storageRoot;
      if (!s.acmeDirectory.empty()) {
        tls::AcmeSettings acme;
        acme.directoryUrl = s.acmeDirectory;
        acme.email = s.acmeEmail;
        acme.caFile = s.acmeCaFile;
        acme.webroot = s.acmeWebroot;
        acme.stateDirectory = s.dataDir / "acme";
        ms.acme = acme;
        ms.acmeRenewDays = s.acmeRenewDays;
        ms.acmeInterval = std::chrono::seconds(s.acmeCheckSeconds);
      }
      ms.auditRetention = {std::chrono::hours(24 * s.auditRetentionDays), static_cast<std::size_t>(s.auditMaxRows)};
      managerService = std::make_unique<manager::ManagerService>(*store, &plugins.registries(), ms);
      runtime = std::make_unique<DaemonRuntime>(s.role, s.dataDir, s.appServer ? s.dataDir / "appserver" : "",
                                                managerService.get());
      plugins.setRuntime(runtime.get());
      // Plugins ask the account service whether an account may have one more of what they count.
      plugins.setLimitChecker([accounts = &managerService->accounts()](const std::string& account,
                                                                     const std::string& limitName,
                                                                     std::int64_t wouldHave) {
        accounts->checkLimit(account, limitName, wouldHave);
      });
      managerService->start();
      log.information("manager API at https://" + managerService->advertisedEndpoint() + ", CA " +
                      managerService->caFingerprint() + ", admin token in " +
                      managerService->adminTokenFile().string());
      if (s.appServer) {
        // AppServer0: the manager is also a node of its own cluster. It enrols once, over
        // loopback, like any node, and keeps its node identity in its own data directory.
        const auto nodeDir = s.dataDir / "appserver";
        if (!agent::NodeAgent::loadIdentity(nodeDir)) {
          auto issued = managerService->nodes().createJoinToken(std::chrono::minutes(5));
          agent::NodeAgent::enrol(nodeDir,
                                  api::encodeJoinToken({"127.0.0.1:" + std::to_string(managerService->port()),
                                                        issued.secret, managerService->caFingerprint()}),
                                  s.advertiseAddress.empty() ? "127.0.0.1" : s.advertiseAddress);
        }
        nodeAgent = std::make_unique<agent::NodeAgent>(plugins.registries(), agent::NodeAgentSettings{nodeDir});
        nodeAgent->start();
      }
    } else {
      if (!config.joinToken.empty()) {
        // A token file or the environment may stay in a unit file after the first start;
        // --join is a one-time act, and on an enrolled node it is refused as before.
        auto enrolled = config.joinTokenSource == "--join" ? std::nullopt : agent::NodeAgent::loadIdentity(s.dataDir);
        if (enrolled) {
          log.information("already enrolled as node " + std::to_string(enrolled->nodeId) + "; the join token from " +
                          config.joinTokenSource + " is not used");
        } else {
          agent::NodeAgent::enrol(s.dataDir, config.joinToken, s.advertiseAddress);
        }
      }
      runtime = std::make_unique<DaemonRuntime>(s.role, s.dataDir, s.dataDir, nullptr);
      plugins.setRuntime(runtime.get());
      nodeAgent = std::make_unique<agent::NodeAgent>(plugins.registries(), agent::NodeAgentSettings{s.dataDir});
      nodeAgent->start();
      runtime->setAgent(nodeAgent.get());
    }
    log.information("shoald ready: role " + s.role + ", store " + store->describe() + ", " +
                    std::to_string(loaded) + " plugin(s) loaded, " + std::to_string(refused) +
                    " refused; pid " + std::to_string(::getpid()));

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    for (;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        log.information("SIGHUP: configuration is read at start; restart shoald to apply changes");
        continue;
      }
      log.information(std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") +
                      "; shutting down");
      break;
    }
    // Stop what calls into plugins before the plugins go.
    if (managerService) managerService->releaseWaiters();
    if (runtime) runtime->setAgent(nullptr);
    if (nodeAgent) nodeAgent->stop();
    if (managerService) managerService->stop();
    plugins.setLimitChecker({});
    plugins.shutdown();
    plugins.setRuntime(nullptr);
  }
  log.information("shoald stopped cleanly");
  return kExitOk;
}

}  // namespace shoal::daemon
