#include "manager/ManagerService.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <regex>
#include <set>

#include "api/JoinToken.hpp"
#include "api/NodeQueueMessages.hpp"
#include "cluster/Database.hpp"
#include "cluster/Secrets.hpp"
#include "common/Error.hpp"
#include "common/Files.hpp"
#include "common/Platform.hpp"
#include "common/Text.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"
#include "manager/EnqueueRequest.hpp"
#include "manager/NodeConnections.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/Store.hpp"
#include "tls/CertificateAuthority.hpp"
#include "tls/Contexts.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;
using std::chrono::system_clock;

std::int64_t millis(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Poco::Dynamic::Var optionalMillis(const std::optional<system_clock::time_point>& t) {
  return t ? Poco::Dynamic::Var(millis(*t)) : Poco::Dynamic::Var();
}

Object::Ptr toJson(const cluster::Node& node) {
  auto o = api::object();
  o->set("id", node.id);
  o->set("hostname", node.hostname);
  o->set("address", node.address);
  o->set("os_id", node.osId);
  o->set("os_version", node.osVersion);
  o->set("arch", node.arch);
  o->set("shoal_version", node.shoalVersion);
  Array::Ptr roles = new Array;
  for (const auto& role : node.roles) roles->add(role);
  o->set("roles", roles);
  o->set("state", cluster::toString(node.state));
  o->set("last_seen_ms", optionalMillis(node.lastSeen));
  o->set("joined_at_ms", millis(node.joinedAt));
  return o;
}

Object::Ptr toJson(const cluster::Delivery& d) {
  auto o = api::object();
  o->set("id", d.id);
  o->set("command_id", d.commandId);
  o->set("node_id", d.nodeId);
  o->set("state", cluster::toString(d.state));
  o->set("attempts", d.attempts);
  o->set("output", d.output);
  o->set("next_attempt_at_ms", optionalMillis(d.nextAttemptAt));
  o->set("started_at_ms", optionalMillis(d.startedAt));
  o->set("finished_at_ms", optionalMillis(d.finishedAt));
  o->set("created_at_ms", millis(d.createdAt));
  o->set("kind", d.kind);
  o->set("payload", d.payloadJson);
  o->set("ordering_key", d.orderingKey);
  return o;
}

std::string targetText(const cluster::Target& t) {
  switch (t.kind) {
    case cluster::Target::Kind::Node: return "node:" + std::to_string(t.nodeId);
    case cluster::Target::Kind::Role: return "role:" + t.role;
    case cluster::Target::Kind::All: return "all";
  }
  return "all";
}

Object::Ptr toJson(const cluster::Command& c) {
  auto o = api::object();
  o->set("id", c.id);
  o->set("kind", c.kind);
  o->set("payload", c.payloadJson);
  o->set("ordering_key", c.orderingKey);
  o->set("target", targetText(c.target));
  o->set("created_at_ms", millis(c.createdAt));
  Array::Ptr deliveries = new Array;
  for (const auto& d : c.deliveries) deliveries->add(toJson(d));
  o->set("deliveries", deliveries);
  return o;
}

std::string requireString(const Object::Ptr& body, const std::string& key) {
  if (!body->has(key) || !body->get(key).isString())
    throw Error(ErrorCode::InvalidArgument, "field '" + key + "' must be a string");
  return body->getValue<std::string>(key);
}


// "ttl_seconds" of POST /v1/join-tokens: a whole number of seconds in the range the registry
// issues tokens for, an hour when left out. Anything else is refused rather than replaced.
std::chrono::seconds joinTokenTtl(const Object::Ptr& body) {
  if (!body->has("ttl_seconds")) return std::chrono::hours(1);
  const auto& value = body->get("ttl_seconds");
  const auto min = cluster::NodeRegistry::kMinJoinTokenTtl.count(), max = cluster::NodeRegistry::kMaxJoinTokenTtl.count();
  auto refuse = [&](const std::string& given) -> std::chrono::seconds {
    throw Error(ErrorCode::InvalidArgument, "field 'ttl_seconds' must be a whole number of seconds from " +
                                                std::to_string(min) + " to " + std::to_string(max) + " (7 days), not " +
                                                shownValue(given));
  };
  std::string given;
  try {
    given = value.isEmpty() ? "null" : value.convert<std::string>();
  } catch (const Poco::Exception&) {
    given = "a " + std::string(value.isArray() ? "list" : "JSON object");
  }
  if (!value.isInteger()) return refuse(given);
  std::int64_t ttl = 0;
  try {
    ttl = value.convert<std::int64_t>();
  } catch (const Poco::Exception&) {
    return refuse(given);  // an integer beyond 64 bits
  }
  if (ttl < min || ttl > max) return refuse(given);
  return std::chrono::seconds(ttl);
}

std::string readFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

ManagerService::ManagerService(store::Store& store, const host::Registries* registries,
                               ManagerSettings settings)
    : store_(store),
      registries_(registries),
      settings_(std::move(settings)),
      nodes_(store),
      queue_(store, settings_.queuePolicy),
      events_(registries ? std::make_unique<host::EventBus>(*registries) : nullptr),
      health_(std::make_unique<HealthService>(nodes_, registries, events_.get(), settings_.healthDefaults)),
      rollouts_(store, queue_, nodes_, notifier_, *health_, registries) {
  auto& log = Poco::Logger::get("shoald.manager");
  nodes_.setObserver([this](const cluster::NodeEvent& event) { publishNodeEvent(event); });
  const auto platform = detectPlatform();
  if (settings_.advertiseAddress.empty()) settings_.advertiseAddress = platform.hostname;

  // The cluster runs one OS and one architecture: the manager's, recorded at first start.
  nodes_.ensureClusterPlatform(cluster::PlatformReport{platform.hostname, platform.osId,
                                                       platform.osVersion, platform.arch,
                                                       build::kVersion, settings_.advertiseAddress});

  const auto tlsDir = settings_.dataDir / "tls";
  std::filesystem::create_directories(tlsDir);
  auto ca = tls::CertificateAuthority::loadOrCreate(tlsDir, "shoal cluster CA");
  caFingerprint_ = ca.fingerprint();
  siteCertificates_ = std::make_unique<tls::SiteCertificates>(ca);
  caFile_ = ca.certificateFile();
  std::vector<std::string> names{settings_.advertiseAddress};
  for (const std::string& extra : {platform.hostname, std::string("localhost"), std::string("127.0.0.1")})
    if (std::find(names.begin(), names.end(), extra) == names.end()) names.push_back(extra);
  auto credentials = tls::ensureServerCredentials(tlsDir, ca, names);

  // The first admin token is made at first start and kept (readable by root only) in the
  // data directory, where shoalctl on this host finds it; the store keeps only its hash.
  const auto tokenFile = adminTokenFile();
  auto storedHash = store_.meta("admin_token_hash");
  if (!storedHash || !std::filesystem::exists(tokenFile)) {
    std::string token = "shoal-admin-" + cluster::randomSecret();
    writeFileAtomically(tokenFile, token + "\n");
    store_.setMeta("admin_token_hash", cluster::hashSecret(token));
    storedHash = cluster::hashSecret(token);
    log.information("created the admin API token in " + tokenFile.string());
  } else if (cluster::hashSecret(readFile(tokenFile)) != *storedHash) {
    log.warning(tokenFile.string() + " does not hold the current admin token");
  }
  adminTokenHash_ = *storedHash;

  stats_ = std::make_unique<StatsService>(settings_.dataDir / "rrd", settings_.statsStepSeconds,
                                          settings_.statsMaxSeriesPerPlugin);
  users_ = std::make_unique<auth::UserStore>(store_);
  sessions_ = std::make_unique<auth::SessionStore>(
      store_, auth::SessionPolicy{settings_.sessionIdleTimeout, std::chrono::hours(12)});
  audit_ = std::make_unique<auth::AuditLog>(store_);
  pruneAudit();
  accounts_ = std::make_unique<hosting::AccountService>(store_, settings_.hosting, accountHooks());
  if (settings_.acme) {
    acmeClient_ = std::make_unique<tls::AcmeClient>(*settings_.acme);
    acmeRenewer_ = std::make_unique<tls::AcmeRenewer>(
        *acmeClient_, settings_.acmeRenewDays, settings_.acmeInterval, [this] { return accounts_->acmeTargets(); },
        [this](const tls::RenewalTarget& target, const tls::SiteCertificate& certificate) {
          if (accounts_->storeAcmeCertificate(target.id, certificate))
            Poco::Logger::get("shoald.acme").information("account '" + target.id + "': certificate from " +
                                                         settings_.acme->directoryUrl + " until " +
                                                         cluster::detail::isoUtc(cluster::detail::fromMillis(certificate.notAfterMs)));
        },
        [](const tls::RenewalTarget& target, const std::string& error) {
          Poco::Logger::get("shoald.acme")
              .warning((target.id.empty() ? std::string() : "account '" + target.id + "': ") + error +
                       "; the account keeps the certificate it has, and it is tried again");
        });
  }

  api::ApiServerSettings apiSettings;
  apiSettings.bindAddress = settings_.listenAddress;
  apiSettings.port = settings_.port;
  server_ = std::make_unique<api::ApiServer>(
      tls::makeServerContext(credentials), apiSettings, makeRoutes(),
      [this](api::Access required, const api::ApiRequest& request) { return authenticate(required, request); },
      [this](const api::Route& route, const api::ApiRequest& request, const api::ApiResponse& response) {
        audit(route, request, response);
      });
  if (settings_.metricsPort != 0) {
    // Plain HTTP, no credentials: only what the admin bound it to can reach it.
    api::ApiServerSettings metricsSettings;
    metricsSettings.bindAddress = settings_.metricsAddress;
    metricsSettings.port = settings_.metricsPort;
    metricsSettings.nodeWorkers = 1;
    metricsSettings.adminWorkers = 1;
    metricsSettings.publicWorkers = 2;
    metricsSettings.ioThreads = 1;
    std::vector<api::Route> metricsRoutes{
        api::Route{"GET", "/metrics", api::Access::Public, [this](const api::ApiRequest&) { return metricsResponse(); }}};
    metricsServer_ = std::make_unique<api::ApiServer>(nullptr, metricsSettings, std::move(metricsRoutes),
                                                      [](api::Access, const api::ApiRequest&) { return std::nullopt; });
  }
}

ManagerService::~ManagerService() { stop(); }

std::vector<std::filesystem::path> ManagerService::clusterFilesIn(const std::filesystem::path& dataDir) {
  std::vector<std::filesystem::path> found;
  for (const char* name : {"tls/ca.crt", "tls/ca.key", "tls/server.crt", "tls/server.key", "admin.token"}) {
    std::error_code ec;
    // A file that cannot even be looked at counts as there: better refused than overwritten.
    const auto status = std::filesystem::symlink_status(dataDir / name, ec);
    if (std::filesystem::exists(status) ||
        (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory))
      found.push_back(dataDir / name);
  }
  return found;
}

void ManagerService::refuseNewClusterOverOldFiles(const std::filesystem::path& dataDir,
                                                  const std::string& storeDescription) {
  const auto found = clusterFilesIn(dataDir);
  if (found.empty()) return;
  std::string files;
  for (const auto& file : found) files += (files.empty() ? "" : ", ") + file.string();
  throw Error(ErrorCode::Failed,
              "the store " + storeDescription + " holds no cluster, but " + dataDir.string() +
                  " holds the files of an existing one (" + files +
                  "); shoald will not make a new cluster over them, which would replace the CA and the admin "
                  "token and shut out every node. If the store was lost or emptied, restore it from a backup "
                  "before starting shoald again. To start a new cluster on purpose, move those files away first (the nodes of "
                  "the old cluster will then have to join again)");
}

std::filesystem::path ManagerService::adminTokenFile() const { return settings_.dataDir / "admin.token"; }
std::filesystem::path ManagerService::caFile() const { return caFile_; }
std::string ManagerService::caFingerprint() const { return caFingerprint_; }
std::uint16_t ManagerService::port() const { return server_->port(); }
std::uint16_t ManagerService::metricsPort() const { return metricsServer_ ? metricsServer_->port() : 0; }
const std::vector<api::Route>& ManagerService::routes() const { return server_->routes(); }

std::string ManagerService::advertisedEndpoint() const {
  const auto& host = settings_.advertiseAddress;
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port());
}

hosting::AccountServiceHooks ManagerService::accountHooks() {
  hosting::AccountServiceHooks hooks;
  hooks.dimensions = [this] {
    std::vector<hosting::LimitDimension> out;
    if (registries_)
      for (const auto& limit : registries_->limits()) out.push_back({limit.name, limit.label, limit.counts});
    return out;
  };
  hooks.enqueue = [this](const cluster::CommandRequest& request, const std::string& idempotencyKey) {
    std::vector<std::int64_t> ids;
    // A cluster without nodes has nobody to give the identity to; a node that joins later is
    // given every account when it enrols (publishNodeEvent).
    if (nodes_.list(false).empty()) return ids;
    for (const auto& command : enqueueCommands({request}, false, idempotencyKey).commands) ids.push_back(command.id);
    return ids;
  };
  // Owners are removed with their account, not disabled: a later account of the same name is
  // someone else's, and must not inherit a sign-in.
  hooks.removingAccount = [](store::Transaction& tx, const std::string& account) { auth::removeOwnersOf(tx, account); };
  hooks.issueClusterCertificate = [this](const std::vector<std::string>& names) { return siteCertificates_->issue(names); };
  hooks.dispatch = [this](const std::string& event, const std::string& payload) {
    // New names want an ACME certificate now, not at the renewer's next hourly pass.
    if (acmeRenewer_ && (event == "account.created" || event == "domain.added" || event == "domain.removed"))
      acmeRenewer_->wake();
    return events_ ? events_->dispatch(event, payload) : std::vector<std::int64_t>{};
  };
  return hooks;
}

void ManagerService::start() {
  server_->start();
  if (metricsServer_) metricsServer_->start();
  ensureFirstAdmin();  // after start: the message names the port the panel is on
  health_->start();
  rollouts_.start();
  if (acmeRenewer_) acmeRenewer_->start();
  running_ = true;
  sweeper_ = std::thread([this] {
    auto& log = Poco::Logger::get("shoald.manager");
    std::uint64_t sweeps = 0;  // one a second
    while (running_) {
      try {
        for (auto id : nodes_.markOffline(settings_.offlineAfter))
          log.warning("node " + std::to_string(id) + " is offline (no contact for " +
                      std::to_string(settings_.offlineAfter.count()) + " s)");
      } catch (const std::exception& e) {
        log.error(std::string("offline sweep: ") + e.what());
      }
      if (++sweeps % 60 == 0) pruneAudit();
      // Account changes whose delivery failed (the store was unreachable) are tried again.
      if (accounts_->deliveryPending()) accounts_->deliverPending();
      if (accountsResyncWanted_.exchange(false)) {
        try {
          const auto announced = accounts_->resync(std::nullopt);
          if (!announced.empty())
            log.information("announced " + std::to_string(announced.size()) +
                            " account(s) again for a node that joined or changed roles");
        } catch (const std::exception& e) {
          log.error(std::string("announcing accounts again: ") + e.what());
        }
      }
      // Also wakes long-polls whose backoff has passed.
      notifier_.notifyAll();
      for (int i = 0; i < 10 && running_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

void ManagerService::pruneAudit() {
  try {
    if (auto deleted = audit_->prune(settings_.auditRetention))
      Poco::Logger::get("shoald.manager").information("audit log: removed " + std::to_string(deleted) +
                                                      " row(s) past the retention or the row cap");
  } catch (const std::exception& e) {
    // Kept rows are only disk; the next minute tries again.
    Poco::Logger::get("shoald.manager").error(std::string("audit log: pruning failed: ") + e.what());
  }
}

void ManagerService::stop() {
  if (running_.exchange(false) && sweeper_.joinable()) sweeper_.join();
  notifier_.shutdown();
  if (server_) server_->stop();
  if (metricsServer_) metricsServer_->stop();
  rollouts_.stop();
  health_->stop();
  if (acmeRenewer_) acmeRenewer_->stop();
}

void ManagerService::publishNodeEvent(const cluster::NodeEvent& event) {
  const bool joined = event.kind == cluster::NodeEvent::Kind::Joined;
  if (joined && event.reason == "enrolled") accountsResyncWanted_ = true;
  // Enrolment and the offline sweep log their own lines; coming back has no other.
  if (event.reason == "returned")
    Poco::Logger::get("shoald.manager")
        .information("node " + std::to_string(event.node.id) + " (" + event.node.hostname + ") is back online");
  if (!events_) return;
  try {
    // The node as GET /v1/nodes/{id} shows it, and why it joined or left.
    auto payload = api::object();
    payload->set("reason", event.reason);
    payload->set("node", toJson(event.node));
    std::ostringstream text;
    payload->stringify(text);
    events_->dispatch(joined ? "node.joined" : "node.left", text.str());
  } catch (const std::exception& e) {
    Poco::Logger::get("shoald.manager").error(std::string("dispatching a node event: ") + e.what());
  }
}

std::optional<api::Principal> ManagerService::authenticate(api::Access required, const api::ApiRequest& request) {
  const std::string authorization = request.header("authorization");
  const std::string prefix = "Bearer ";
  const std::string bearer = authorization.rfind(prefix, 0) == 0 ? authorization.substr(prefix.size()) : "";
  const bool userRoute =
      required == api::Access::Admin || required == api::Access::Account || required == api::Access::SignedIn;
  if (bearer.empty() && !userRoute) return std::nullopt;
  switch (required) {
    case api::Access::Admin:
    case api::Access::Account:
    case api::Access::SignedIn: {
      if (!bearer.empty()) {
        if (cluster::constantTimeEquals(cluster::hashSecret(bearer), adminTokenHash_))
          return api::Principal{required, 0, {}, "token:admin", {}, {}};
        return std::nullopt;
      }
      auto principal = authenticateSession(request);
      if (principal) {
        principal->access = required;
        if (principal->owner()) authorizeOwner(required, request, *principal);
      }
      return principal;
    }
    case api::Access::Node:
      if (auto node = nodes_.authenticate(bearer)) {
        noteContact(node->id);
        return api::Principal{api::Access::Node, node->id, {}, "node:" + std::to_string(node->id), {}, {}};
      }
      return std::nullopt;
    case api::Access::Join:
      // Checked here so an unauthenticated call learns nothing; consumed by the enrolment
      // itself, in one transaction with the new node.
      try {
        nodes_.checkJoinToken(bearer);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::Internal) throw;
        throw api::Unauthenticated(e.what());
      }
      return api::Principal{api::Access::Join, 0, bearer, "join-token", {}, {}};
    case api::Access::Public:
      return api::Principal{api::Access::Public, 0, {}, {}, {}, {}};
  }
  return std::nullopt;
}

void ManagerService::authorizeOwner(api::Access required, const api::ApiRequest& request,
                                    const api::Principal& owner) {
  switch (required) {
    case api::Access::SignedIn: return;
    case api::Access::Account: break;
    default:
      throw api::Forbidden("owner", "owners may only reach their own account", owner.actor);
  }
  const auto named = request.params.find("name");
  if (named == request.params.end())  // a route marked Account without {name}: a fault of ours
    throw api::Forbidden("owner", "owners may only reach their own account", owner.actor);
  // Another account, whether or not it exists, looks to an owner as one that does not: its
  // name is not the owner's to learn.
  if (named->second != owner.account)
    throw api::Refused(404, "not_found", "no account '" + shownValue(named->second) + "'", owner.actor);
  if (request.method == "GET" || request.method == "HEAD") return;
  // An owner of a suspended account may still sign in and look, but changes nothing until an
  // admin lifts the suspension.
  const auto account = accounts_->store().account(owner.account);
  if (account && account->suspended())
    throw api::Refused(409, "conflict",
                       "account '" + account->name + "' is suspended (" + account->suspendReason + ")", owner.actor);
}

void ManagerService::noteContact(std::int64_t nodeId) {
  // A node calls several times a second when busy; writing last-seen once a second is enough
  // to judge it online, and spares the store a write per request.
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(contactMutex_);
    auto& last = lastContactWrite_[nodeId];
    if (now - last < std::chrono::seconds(1)) return;
    last = now;
  }
  nodes_.heartbeat(nodeId);
}

void ManagerService::validateCommand(const cluster::CommandRequest& c, const std::string& where) const {
  if (registries_ != nullptr) {
    auto handler = registries_->queueHandler(c.kind);
    if (!handler) throw Error(ErrorCode::InvalidArgument, where + "no plugin handles command kind '" + c.kind + "'");
    if (handler->onValidate != nullptr) {
      shoal_reply reply;
      auto status = handler->onValidate(handler->user, shoal_str{c.payloadJson.data(), c.payloadJson.size()}, &reply);
      if (status != SHOAL_OK)
        throw Error(ErrorCode::InvalidArgument,
                    where + c.kind + ": " + (reply.error.empty() ? "payload refused" : reply.error));
    }
  }
}

cluster::CommandQueue::Enqueued ManagerService::enqueueCommands(const std::vector<cluster::CommandRequest>& requests,
                                                                bool batch, const std::string& idempotencyKey) {
  for (std::size_t i = 0; i < requests.size(); ++i)
    validateCommand(requests[i], batch ? "commands[" + std::to_string(i) + "]: " : "");
  cluster::CommandQueue::Enqueued enqueued;
  if (!idempotencyKey.empty())
    enqueued = queue_.enqueueOnce(idempotencyKey, requests, batch);
  else if (batch)
    enqueued.commands = queue_.enqueueAll(requests);
  else
    enqueued.commands = {queue_.enqueue(requests.front().kind, requests.front().payloadJson,
                                        requests.front().orderingKey, requests.front().target)};
  if (enqueued.replayed) return enqueued;
  // A hook handling an event (a rolling restart's drain) learns what it enqueued.
  for (const auto& command : enqueued.commands) host::EventBus::noteEnqueued(command.id);
  notifier_.notifyAll();
  return enqueued;
}

std::string ManagerService::enqueueForPlugin(const std::string& requestJson) {
  Object::Ptr body;
  try {
    auto parsed = Poco::JSON::Parser().parse(requestJson);
    if (parsed.type() == typeid(Object::Ptr)) body = parsed.extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::InvalidArgument, "enqueue request is not valid JSON: " + e.displayText());
  }
  if (!body) throw Error(ErrorCode::InvalidArgument, "enqueue request must be a JSON object");
  const auto request = parseEnqueueRequest(body);
  auto summary = [](const cluster::Command& command) {
    auto o = api::object();
    o->set("id", command.id);
    o->set("deliveries", static_cast<std::int64_t>(command.deliveries.size()));
    return o;
  };
  const auto commands = enqueueCommands(request.commands, request.batch).commands;
  Object::Ptr out;
  if (request.batch) {
    Array::Ptr list = new Array;
    for (const auto& command : commands) list->add(summary(command));
    out = api::object();
    out->set("commands", list);
  } else {
    out = summary(commands.front());
  }
  std::ostringstream text;
  out->stringify(text);
  return text.str();
}

std::string ManagerService::commandForPlugin(std::int64_t commandId) {
  if (commandId <= 0) throw Error(ErrorCode::InvalidArgument, "command id must be a positive integer");
  auto command = queue_.find(commandId);
  if (!command) throw Error(ErrorCode::NotFound, "no command " + std::to_string(commandId));
  std::ostringstream text;
  toJson(*command)->stringify(text);
  return text.str();
}

void ManagerService::pollDeliveries(const std::shared_ptr<api::PendingReply>& reply, std::size_t limit,
                                    std::chrono::steady_clock::time_point deadline) {
  const auto nodeId = reply->request().principal.nodeId;
  const auto seen = notifier_.generation();
  auto ready = queue_.claimReady(nodeId, limit);
  const auto now = std::chrono::steady_clock::now();
  if (ready.empty() && running_ && now < deadline) {
    auto until = deadline;
    if (auto wake = queue_.nextWakeup(nodeId))
      until = std::min(until, now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        *wake - system_clock::now()));
    notifier_.waitPast(seen, until, [this, reply, limit, deadline](DeliveryNotifier::Wake why) {
      if (why == DeliveryNotifier::Wake::Shutdown)
        reply->send(api::ok([] {
          auto o = api::object();
          o->set("deliveries", Array::Ptr(new Array));
          return o;
        }()));
      else
        reply->post([this, reply, limit, deadline] { pollDeliveries(reply, limit, deadline); });
    });
    return;
  }
  Array::Ptr list = new Array;
  for (const auto& d : ready) list->add(toJson(d));
  auto o = api::object();
  o->set("deliveries", list);
  reply->send(api::ok(o));
}

std::vector<api::Route> ManagerService::makeRoutes() {
  using api::Access;
  using api::ApiRequest;
  using api::ok;
  std::vector<api::Route> routes;
  auto add = [&](std::string method, std::string pattern, Access access, api::Handler handler) {
    routes.push_back(api::Route{std::move(method), std::move(pattern), access, std::move(handler)});
  };

  // ---- admin: cluster and nodes ----
  // Answers without touching the store: a liveness check, and the raw round trip of the API.
  add("GET", "/v1/health", Access::Admin, [](const ApiRequest&) {
    auto o = api::object();
    o->set("status", "ok");
    return ok(o);
  });
  add("GET", "/v1/cluster", Access::Admin, [this](const ApiRequest&) {
    auto o = api::object();
    o->set("cluster_id", store_.meta("cluster_id").value_or(""));
    o->set("manager", advertisedEndpoint());
    o->set("ca_fingerprint", caFingerprint_);
    o->set("version", std::string(build::kVersion));
    auto depth = queue_.depth();
    auto q = api::object();
    q->set("pending", depth.pending);
    q->set("running", depth.running);
    q->set("failed", depth.failed);
    o->set("queue", q);
    return ok(o);
  });
  add("POST", "/v1/join-tokens", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    auto issued = nodes_.createJoinToken(joinTokenTtl(body));
    auto o = api::object();
    o->set("token", api::encodeJoinToken({advertisedEndpoint(), issued.secret, caFingerprint_}));
    o->set("expires_at_ms", millis(issued.expiresAt));
    return ok(o, 201);
  });
  add("GET", "/v1/nodes", Access::Admin, [this](const ApiRequest& r) {
    Array::Ptr list = new Array;
    for (const auto& node : nodes_.list(r.query.count("all") > 0)) list->add(toJson(node));
    auto o = api::object();
    o->set("nodes", list);
    return ok(o);
  });
  add("GET", "/v1/nodes/{id}", Access::Admin, [this](const ApiRequest& r) {
    auto node = nodes_.find(r.idParam("id"));
    if (!node) throw Error(ErrorCode::NotFound, "no node " + r.params.at("id"));
    return ok(toJson(*node));
  });
  add("DELETE", "/v1/nodes/{id}", Access::Admin, [this](const ApiRequest& r) {
    nodes_.remove(r.idParam("id"));
    auto node = nodes_.find(r.idParam("id"));
    return ok(node ? toJson(*node) : api::object());
  });
  add("PUT", "/v1/nodes/{id}/roles", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    auto roles = body->getArray("roles");
    if (!roles) throw Error(ErrorCode::InvalidArgument, "field 'roles' must be an array of role names");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < roles->size(); ++i) {
      if (!roles->get(static_cast<unsigned>(i)).isString())
        throw Error(ErrorCode::InvalidArgument, "roles[" + std::to_string(i) + "] must be a string");
      names.push_back(roles->getElement<std::string>(static_cast<unsigned>(i)));
    }
    const auto before = nodes_.find(r.idParam("id"));
    auto node = nodes_.setRoles(r.idParam("id"), names);
    if (!before || before->roles != node.roles) accountsResyncWanted_ = true;
    return ok(toJson(node));
  });
  add("PUT", "/v1/nodes/{id}/draining", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    if (!body->has("draining") || !body->get("draining").isBoolean())
      throw Error(ErrorCode::InvalidArgument, "field 'draining' must be true or false");
    auto node = nodes_.setDraining(r.idParam("id"), body->getValue<bool>("draining"));
    health_->refreshTargets();  // the balancer hears of it now, not at the next refresh
    return ok(toJson(node));
  });
  // What the balancer still holds open to the node (ABI 1.3 connection counters), so a
  // drained node can be seen emptying.
  add("GET", "/v1/nodes/{id}/connections", Access::Admin, [this](const ApiRequest& r) {
    auto node = nodes_.find(r.idParam("id"));
    if (!node) throw Error(ErrorCode::NotFound, "no node " + r.params.at("id"));
    std::vector<std::string> serving;
    for (const auto& h : health_->list())
      if (h.status.nodeId == std::to_string(node->id) && h.serving()) serving.push_back(h.status.service);
    return ok(countNodeConnections(registries_, *node, serving));
  });

  // ---- admin: the Command Queue ----
  // One enqueue request, or {"commands": [...]} to enqueue up to 1000 at once, all or none:
  // the format of abi.h's callback_enqueue, through the same method.
  // With an Idempotency-Key header, a repeated request (a client retrying after a timeout)
  // answers 200 with the commands the first one enqueued, and enqueues nothing.
  add("POST", "/v1/commands", Access::Admin, [this](const ApiRequest& r) {
    const auto request = parseEnqueueRequest(r.json());
    std::string idempotencyKey;
    if (r.headers.count("idempotency-key")) {
      idempotencyKey = r.header("idempotency-key");
      if (idempotencyKey.empty())
        throw Error(ErrorCode::InvalidArgument, "header Idempotency-Key is empty: send 1 to 128 visible ASCII "
                                                "characters, or no header");
    }
    const auto enqueued = enqueueCommands(request.commands, request.batch, idempotencyKey);
    const int status = enqueued.replayed ? 200 : 201;
    if (!request.batch) return ok(toJson(enqueued.commands.front()), status);
    Array::Ptr created = new Array;
    for (const auto& command : enqueued.commands) created->add(toJson(command));
    auto o = api::object();
    o->set("commands", created);
    return ok(o, status);
  });
  add("GET", "/v1/commands", Access::Admin, [this](const ApiRequest& r) {
    std::optional<cluster::DeliveryState> state;
    if (r.query.count("state")) {
      state = cluster::deliveryStateFromString(r.query.at("state"));
      if (!state) throw Error(ErrorCode::InvalidArgument, "state '" + r.query.at("state") + "' must be pending, running, done, failed or skipped");
    }
    Array::Ptr list = new Array;
    for (const auto& c : queue_.list(static_cast<std::size_t>(r.queryInt("limit", 50, 1, 1000)), state))
      list->add(toJson(c));
    auto o = api::object();
    o->set("commands", list);
    return ok(o);
  });
  add("GET", "/v1/commands/{id}", Access::Admin, [this](const ApiRequest& r) {
    auto command = queue_.find(r.idParam("id"));
    if (!command) throw Error(ErrorCode::NotFound, "no command " + r.params.at("id"));
    return ok(toJson(*command));
  });
  add("POST", "/v1/deliveries/{id}/retry", Access::Admin, [this](const ApiRequest& r) {
    auto d = queue_.retry(r.idParam("id"));
    notifier_.notifyAll();
    return ok(toJson(d));
  });
  add("POST", "/v1/deliveries/{id}/skip", Access::Admin, [this](const ApiRequest& r) {
    auto d = queue_.skip(r.idParam("id"));
    notifier_.notifyAll();
    return ok(toJson(d));
  });

  // ---- admin: health of services ----
  add("GET", "/v1/health/services", Access::Admin, [this](const ApiRequest&) {
    auto o = api::object();
    o->set("services", health_->toJson());
    return ok(o);
  });
  add("PUT", "/v1/nodes/{id}/maintenance", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    const auto id = r.idParam("id");
    const std::string service = requireString(body, "service");
    checkServiceName(service, "service");
    if (!body->has("on") || !body->get("on").isBoolean())
      throw Error(ErrorCode::InvalidArgument, "field 'on' must be true or false");
    if (!nodes_.find(id)) throw Error(ErrorCode::NotFound, "no node " + r.params.at("id"));
    auto commands = health_->setMaintenance(id, service, body->getValue<bool>("on"));
    auto o = api::object();
    o->set("node_id", id);
    o->set("service", service);
    o->set("maintenance", body->getValue<bool>("on"));
    Array::Ptr ids = new Array;
    for (auto c : commands) ids->add(c);
    o->set("commands", ids);
    return ok(o);
  });

  // ---- admin: endpoints plugins serve (ABI 1.1) ----
  for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
    auto handler = [this](const ApiRequest& r) {
      const auto& plugin = r.params.at("plugin");
      auto entry = registries_ ? registries_->api(plugin) : std::nullopt;
      if (!entry) throw Error(ErrorCode::NotFound, "no loaded plugin serves /v1/plugins/" + plugin);
      std::string path = r.params.count("path") ? r.params.at("path") : "";
      shoal_reply reply;
      reply.forApiRequest = true;
      const auto status = entry->onRequest(entry->user, shoal_str{r.method.data(), r.method.size()},
                                           shoal_str{path.data(), path.size()},
                                           shoal_str{r.rawQuery.data(), r.rawQuery.size()},
                                           shoal_str{r.body.data(), r.body.size()}, &reply);
      const auto answer = host::pluginHttpAnswer(status, reply.httpStatus, r.method == "POST");
      if (status != SHOAL_OK) {
        const std::string message =
            reply.error.empty() ? plugin + " answered " + host::statusName(status) : reply.error;
        if (answer.status == 500)
          Poco::Logger::get("shoald.manager").error(r.method + " " + r.path + ": " + plugin + ": " + message);
        return api::errorResponse(answer.status, answer.code, message);
      }
      api::ApiResponse response;
      response.status = answer.status;
      response.rawJson = reply.output.empty() ? "{}" : reply.output;
      return response;
    };
    add(method, "/v1/plugins/{plugin}", Access::Admin, handler);
    add(method, "/v1/plugins/{plugin}/{path...}", Access::Admin, handler);
  }

  // ---- admin: rolling events ----
  add("POST", "/v1/rollouts", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    const std::string service = requireString(body, "service");
    checkServiceName(service, "service");
    const std::string kind = service + ".restart";
    if (registries_ != nullptr && !registries_->queueHandler(kind))
      throw Error(ErrorCode::InvalidArgument, "no plugin handles '" + kind + "', so " + service + " cannot be restarted");
    std::string role = body->has("role") ? requireString(body, "role") : "";
    if (!body->has("role")) {
      // By default the nodes that run the service: those with a role of its name, if any.
      for (const auto& node : nodes_.list(false))
        if (std::find(node.roles.begin(), node.roles.end(), service) != node.roles.end()) role = service;
    }
    RolloutOptions options;
    options.batch = body->optValue<int>("max_unavailable", body->optValue<int>("batch", 1));
    options.drain = body->optValue<bool>("drain", true);
    options.healthTimeoutSeconds = body->optValue<int>("health_timeout_seconds", 120);
    return ok(rollouts_.create(service, kind, role, options), 201);
  });
  add("GET", "/v1/rollouts", Access::Admin, [this](const ApiRequest& r) {
    auto o = api::object();
    o->set("rollouts", rollouts_.list(static_cast<std::size_t>(r.queryInt("limit", 20, 1, 1000))));
    return ok(o);
  });
  add("GET", "/v1/rollouts/{id}", Access::Admin, [this](const ApiRequest& r) {
    return ok(rollouts_.find(r.idParam("id")));
  });

  // ---- enrolment ----
  add("POST", "/v1/join", Access::Join, [this](const ApiRequest& r) {
    auto body = r.json();
    cluster::PlatformReport report{requireString(body, "hostname"), requireString(body, "os_id"),
                                   requireString(body, "os_version"), requireString(body, "arch"),
                                   requireString(body, "shoal_version"),
                                   body->has("address") ? requireString(body, "address") : r.peerAddress};
    auto enrolment = nodes_.enrol(r.principal.bearer, report, build::kVersion);
    Poco::Logger::get("shoald.manager")
        .information("node " + std::to_string(enrolment.node.id) + " (" + report.hostname + ", " +
                     report.address + ") joined");
    auto o = api::object();
    o->set("node", toJson(enrolment.node));
    o->set("credential", enrolment.credential);
    o->set("cluster_id", store_.meta("cluster_id").value_or(""));
    return ok(o, 201);
  });

  // ---- nodes ----
  add("POST", "/v1/node/heartbeat", Access::Node, [this](const ApiRequest& r) {
    auto node = nodes_.find(r.principal.nodeId);
    return ok(node ? toJson(*node) : api::object());
  });
  // A node says it (re)started: whatever it had claimed is offered again at once. A node
  // reports the results it holds before it says so, and a result that still arrives for a
  // released delivery is taken (CommandQueue::reportResult), so finished work is never
  // offered as new; the node's journal answers for anything offered all the same.
  add("POST", "/v1/node/started", Access::Node, [this](const ApiRequest& r) {
    auto released = queue_.releaseRunning(r.principal.nodeId);
    if (released > 0) {
      Poco::Logger::get("shoald.manager")
          .information("node " + std::to_string(r.principal.nodeId) + " restarted; " +
                       std::to_string(released) + " delivery(ies) it held are offered again");
      notifier_.notifyAll();
    }
    auto o = api::object();
    o->set("released", static_cast<std::int64_t>(released));
    return ok(o);
  });
  routes.push_back(api::Route{"GET", "/v1/node/deliveries", Access::Node,
                              api::DeferredHandler([this](std::shared_ptr<api::PendingReply> reply) {
                                const auto& r = reply->request();
                                const auto wait = std::chrono::milliseconds(r.queryInt("wait_ms", 0, 0, 60000));
                                const auto limit = static_cast<std::size_t>(r.queryInt("limit", 100, 1, 1000));
                                pollDeliveries(reply, limit, std::chrono::steady_clock::now() + wait);
                              })});
  add("POST", "/v1/node/results", Access::Node, [this](const ApiRequest& r) {
    const auto batch = api::parseResultsBatch(r.json());
    // One transaction for the whole batch. Should one result no longer fit its delivery (an
    // admin retried it meanwhile, say), record the others one by one and say which was refused,
    // so the node can let it go instead of offering the batch forever.
    Array::Ptr accepted = new Array, refused = new Array;
    try {
      for (const auto& d : queue_.reportResults(r.principal.nodeId, batch)) accepted->add(toJson(d));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Conflict && e.code() != ErrorCode::NotFound) throw;
      for (const auto& result : batch) {
        try {
          accepted->add(toJson(queue_.reportResult(result.deliveryId, r.principal.nodeId, result.succeeded,
                                                   result.output)));
        } catch (const Error& one) {
          if (one.code() != ErrorCode::Conflict && one.code() != ErrorCode::NotFound) throw;
          auto o = api::object();
          o->set("delivery_id", result.deliveryId);
          o->set("reason", std::string(one.what()));
          refused->add(o);
        }
      }
    }
    // A failure may have unblocked nothing, but a success lets the next command of its key go.
    notifier_.notifyAll();
    auto o = api::object();
    o->set("deliveries", accepted);
    o->set("refused", refused);
    return ok(o);
  });
  addPanelRoutes(routes);
  addAccountRoutes(routes);
  return routes;
}

}  // namespace shoal::manager
