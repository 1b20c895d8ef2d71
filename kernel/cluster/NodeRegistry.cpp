#include "cluster/NodeRegistry.hpp"

#include <algorithm>
#include <map>

#include <Poco/Data/Statement.h>

#include "cluster/Database.hpp"
#include "cluster/Secrets.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::cluster {

using detail::fromMillis;
using detail::fromNullableMillis;
using detail::inTransaction;
using detail::isoUtc;
using detail::shown;
using detail::toMillis;
using detail::withSession;

namespace {

constexpr std::chrono::seconds kMinTokenTtl = NodeRegistry::kMinJoinTokenTtl;
constexpr std::chrono::seconds kMaxTokenTtl = NodeRegistry::kMaxJoinTokenTtl;
constexpr std::size_t kMaxSecretLength = 256;
constexpr std::size_t kMaxRoles = 64;

const char* const kMetaOsId = "platform.os_id";
const char* const kMetaOsVersion = "platform.os_version";
const char* const kMetaArch = "platform.arch";

const std::string kNodeColumns =
    "id, hostname, address, os_id, os_version, arch, shoal_version, state,"
    " COALESCE(last_seen_ms, -1), joined_at_ms";

bool isLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool isUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

template <typename Pred>
void requireChars(std::string_view value, std::size_t maxLength, Pred allowed, const char* field,
                  const char* rule) {
  bool ok = !value.empty() && value.size() <= maxLength;
  for (char c : value) {
    if (!ok) break;
    ok = allowed(c);
  }
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                std::string(field) + " \"" + shown(value) + "\" is invalid: " + rule);
}

void validateOsId(const std::string& v, const char* field) {
  requireChars(
      v, 32, [](char c) { return isLower(c) || isDigit(c) || c == '.' || c == '_' || c == '-'; },
      field, "use 1 to 32 of a-z 0-9 . _ -");
}

void validateOsVersion(const std::string& v, const char* field) {
  requireChars(
      v, 32,
      [](char c) {
        return isLower(c) || isUpper(c) || isDigit(c) || c == '.' || c == '_' || c == '~' ||
               c == '+' || c == '-';
      },
      field, "use 1 to 32 of A-Z a-z 0-9 . _ ~ + -");
}

void validateArch(const std::string& v, const char* field) {
  requireChars(
      v, 32, [](char c) { return isLower(c) || isDigit(c) || c == '_'; }, field,
      "use 1 to 32 of a-z 0-9 _");
}

void validateHostname(const std::string& v) {
  requireChars(
      v, 253, [](char c) { return isLower(c) || isUpper(c) || isDigit(c) || c == '.' || c == '-'; },
      "hostname", "use 1 to 253 of A-Z a-z 0-9 . -");
}

void validateAddress(const std::string& v) {
  requireChars(
      v, 255, [](char c) { return c > 0x20 && c < 0x7f; }, "address",
      "use 1 to 255 printable ASCII characters without blanks");
}

struct Version {
  unsigned long major = 0, minor = 0;
};

// MAJOR.MINOR[.PATCH][-suffix|+suffix]
Version parseVersion(const std::string& v, const char* field) {
  auto fail = [&]() -> Error {
    return Error(ErrorCode::InvalidArgument,
                 std::string(field) + " \"" + shown(v) +
                     "\" is invalid: use MAJOR.MINOR[.PATCH] with an optional -suffix or +suffix, "
                     "up to 64 characters");
  };
  if (v.empty() || v.size() > 64) throw fail();
  std::size_t pos = 0;
  auto number = [&]() -> unsigned long {
    const std::size_t start = pos;
    while (pos < v.size() && isDigit(v[pos])) ++pos;
    if (pos == start || pos - start > 9) throw fail();
    return std::stoul(v.substr(start, pos - start));
  };
  Version out;
  out.major = number();
  if (pos >= v.size() || v[pos] != '.') throw fail();
  ++pos;
  out.minor = number();
  if (pos < v.size() && v[pos] == '.') {
    ++pos;
    number();
  }
  if (pos < v.size()) {
    if (v[pos] != '-' && v[pos] != '+') throw fail();
    for (++pos; pos < v.size(); ++pos) {
      const char c = v[pos];
      if (!(isLower(c) || isUpper(c) || isDigit(c) || c == '.' || c == '-' || c == '+' ||
            c == '~' || c == '_'))
        throw fail();
    }
  }
  return out;
}

void validatePlatformFields(const PlatformReport& r, const char* prefix) {
  const std::string p(prefix);
  validateOsId(r.osId, (p + "osId").c_str());
  validateOsVersion(r.osVersion, (p + "osVersion").c_str());
  validateArch(r.arch, (p + "arch").c_str());
}

std::string majorOf(const std::string& osVersion) {
  return osVersion.substr(0, osVersion.find('.'));
}

void validateRole(const std::string& role) {
  bool ok = !role.empty() && role.size() <= 32 && isLower(role[0]);
  for (std::size_t i = 1; ok && i < role.size(); ++i) {
    const char c = role[i];
    ok = isLower(c) || isDigit(c) || c == '_' || c == '-';
  }
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                "role \"" + shown(role) + "\" is invalid: use [a-z][a-z0-9_-]{0,31}");
}

NodeState parseState(const std::string& text) {
  if (auto s = nodeStateFromString(text)) return *s;
  throw Error(ErrorCode::Internal, "the store holds an unknown node state \"" + shown(text) + "\"");
}

using detail::forUpdate;

std::int64_t lastInsertId(Poco::Data::Session& s, store::Backend backend) {
  Poco::Int64 id = 0;
  s << (backend == store::Backend::MySql ? "SELECT LAST_INSERT_ID()" : "SELECT last_insert_rowid()"),
      into(id), now;
  return id;
}

// Rows of kNodeColumns.
struct NodeRows {
  std::vector<Poco::Int64> ids, lastSeen, joinedAt;
  std::vector<std::string> hostnames, addresses, osIds, osVersions, archs, versions, states;

  void bind(Poco::Data::Statement& st) {
    st, into(ids), into(hostnames), into(addresses), into(osIds), into(osVersions), into(archs),
        into(versions), into(states), into(lastSeen), into(joinedAt);
  }

  std::vector<Node> nodes(Poco::Data::Session& s) {
    std::vector<Node> out;
    out.reserve(ids.size());
    std::map<std::int64_t, std::size_t> index;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      Node n;
      n.id = ids[i];
      n.hostname = std::move(hostnames[i]);
      n.address = std::move(addresses[i]);
      n.osId = std::move(osIds[i]);
      n.osVersion = std::move(osVersions[i]);
      n.arch = std::move(archs[i]);
      n.shoalVersion = std::move(versions[i]);
      n.state = parseState(states[i]);
      n.lastSeen = fromNullableMillis(lastSeen[i]);
      n.joinedAt = fromMillis(joinedAt[i]);
      index[n.id] = out.size();
      out.push_back(std::move(n));
    }
    if (out.empty()) return out;
    std::vector<Poco::Int64> roleNodes;
    std::vector<std::string> roles;
    s << "SELECT node_id, role FROM node_roles WHERE node_id IN (" + detail::idList(ids) +
             ") ORDER BY node_id, role",
        into(roleNodes), into(roles), now;
    for (std::size_t i = 0; i < roleNodes.size(); ++i) {
      auto it = index.find(roleNodes[i]);
      if (it != index.end()) out[it->second].roles.push_back(std::move(roles[i]));
    }
    return out;
  }
};

std::optional<Node> readNode(Poco::Data::Session& s, std::int64_t id) {
  NodeRows rows;
  Poco::Data::Statement select(s);
  select << "SELECT " + kNodeColumns + " FROM nodes WHERE id = " + std::to_string(id);
  rows.bind(select);
  select.execute();
  auto nodes = rows.nodes(s);
  if (nodes.empty()) return std::nullopt;
  return std::move(nodes.front());
}

// Locks the node's row for the transaction and returns its state; NotFound when there is none.
NodeState lockNode(store::Transaction& tx, std::int64_t id) {
  std::string state;
  Poco::Data::Statement select(tx.session());
  select << "SELECT state FROM nodes WHERE id = ?" + forUpdate(tx.backend()), use(id), into(state);
  if (select.execute() == 0)
    throw Error(ErrorCode::NotFound, "node " + std::to_string(id) + " does not exist");
  return parseState(state);
}

NodeState lockLiveNode(store::Transaction& tx, std::int64_t id) {
  const NodeState state = lockNode(tx, id);
  if (state == NodeState::Removed)
    throw Error(ErrorCode::Conflict, "node " + std::to_string(id) + " is removed");
  return state;
}

std::optional<PlatformReport> readPlatform(Poco::Data::Session& s) {
  std::vector<std::string> keys, values;
  s << "SELECT meta_key, meta_value FROM cluster_meta WHERE meta_key IN ('" +
           std::string(kMetaOsId) + "', '" + kMetaOsVersion + "', '" + kMetaArch + "')",
      into(keys), into(values), now;
  PlatformReport p;
  int found = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == kMetaOsId) p.osId = values[i], ++found;
    if (keys[i] == kMetaOsVersion) p.osVersion = values[i], ++found;
    if (keys[i] == kMetaArch) p.arch = values[i], ++found;
  }
  if (found != 3) return std::nullopt;
  return p;
}

Node requireNode(Poco::Data::Session& s, std::int64_t id) {
  auto node = readNode(s, id);
  if (!node) throw Error(ErrorCode::NotFound, "node " + std::to_string(id) + " does not exist");
  return std::move(*node);
}

}  // namespace

std::string toString(NodeState state) {
  switch (state) {
    case NodeState::Online:
      return "online";
    case NodeState::Offline:
      return "offline";
    case NodeState::Draining:
      return "draining";
    case NodeState::Removed:
      return "removed";
  }
  return "unknown";
}

std::optional<NodeState> nodeStateFromString(std::string_view text) {
  if (text == "online") return NodeState::Online;
  if (text == "offline") return NodeState::Offline;
  if (text == "draining") return NodeState::Draining;
  if (text == "removed") return NodeState::Removed;
  return std::nullopt;
}

NodeRegistry::NodeRegistry(store::Store& store, Clock clock)
    : store_(store), clock_(std::move(clock)) {}

TimePoint NodeRegistry::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

void NodeRegistry::report(NodeEvent::Kind kind, const std::string& reason, std::int64_t id) {
  if (!observer_) return;
  auto node = find(id);
  if (!node) return;
  observer_(NodeEvent{kind, reason, std::move(*node)});
}

PlatformReport NodeRegistry::ensureClusterPlatform(const PlatformReport& manager) {
  validatePlatformFields(manager, "manager.");
  return inTransaction(store_, "recording the cluster platform", [&](store::Transaction& tx) {
    auto& s = tx.session();
    const std::string insert =
        tx.backend() == store::Backend::MySql
            ? "INSERT INTO cluster_meta (meta_key, meta_value) VALUES (?, ?)"
              " ON DUPLICATE KEY UPDATE meta_key = meta_key"
            : "INSERT INTO cluster_meta (meta_key, meta_value) VALUES (?, ?)"
              " ON CONFLICT (meta_key) DO NOTHING";
    for (const auto& [key, value] : {std::pair<std::string, std::string>{kMetaOsId, manager.osId},
                                     {kMetaOsVersion, manager.osVersion},
                                     {kMetaArch, manager.arch}}) {
      std::string k = key, v = value;
      s << insert, use(k), use(v), now;
    }
    auto platform = readPlatform(s);
    if (!platform)
      throw Error(ErrorCode::Internal, "the cluster platform could not be read back");
    return *platform;
  });
}

JoinTokenIssue NodeRegistry::createJoinToken(std::chrono::seconds ttl) {
  if (ttl < kMinTokenTtl || ttl > kMaxTokenTtl)
    throw Error(ErrorCode::InvalidArgument, "ttl " + std::to_string(ttl.count()) +
                                                " s is out of range: use 60 s to 7 days (604800 s)");
  const TimePoint created = currentTime();
  JoinTokenIssue issue{randomSecret(), created + ttl};
  std::string hash = hashSecret(issue.secret);
  Poco::Int64 createdMs = toMillis(created), expiresMs = toMillis(issue.expiresAt);
  withSession(store_, "creating a join token", [&](Poco::Data::Session& s) {
    s << "INSERT INTO join_tokens (token_hash, created_at_ms, expires_at_ms) VALUES (?, ?, ?)",
        use(hash), use(createdMs), use(expiresMs), now;
  });
  issue.expiresAt = fromMillis(expiresMs);
  return issue;
}

Enrolment NodeRegistry::enrol(const std::string& joinSecret, const PlatformReport& report,
                              const std::string& managerVersion) {
  if (joinSecret.empty()) throw Error(ErrorCode::InvalidArgument, "join token is empty");
  if (joinSecret.size() > kMaxSecretLength)
    throw Error(ErrorCode::InvalidArgument, "join token is longer than " +
                                                std::to_string(kMaxSecretLength) + " characters");
  validateHostname(report.hostname);
  validatePlatformFields(report, "");
  validateAddress(report.address);
  const Version nodeVersion = parseVersion(report.shoalVersion, "shoalVersion");
  const Version ownVersion = parseVersion(managerVersion, "managerVersion");

  std::string tokenHash = hashSecret(joinSecret);
  std::lock_guard membership(membershipMutex_);
  auto enrolled = inTransaction(store_, "enrolling node \"" + report.hostname + "\"",
                       [&](store::Transaction& tx) {
    auto& s = tx.session();
    const TimePoint at = currentTime();
    const Poco::Int64 atMs = toMillis(at);

    Poco::Int64 tokenId = 0, expiresMs = 0, usedMs = -1, usedBy = -1;
    Poco::Data::Statement select(s);
    select << "SELECT id, expires_at_ms, COALESCE(used_at_ms, -1), COALESCE(used_by_node, -1)"
              " FROM join_tokens WHERE token_hash = ?" +
                  forUpdate(tx.backend()),
        use(tokenHash), into(tokenId), into(expiresMs), into(usedMs), into(usedBy);
    if (select.execute() == 0)
      throw Error(ErrorCode::NotFound, "join token is unknown (was it copied whole?)");
    if (usedMs >= 0)
      throw Error(ErrorCode::Conflict, "join token was already used (by node " +
                                           std::to_string(usedBy) + " at " +
                                           isoUtc(fromMillis(usedMs)) + ")");
    if (atMs >= expiresMs)
      throw Error(ErrorCode::Failed,
                  "join token expired at " + isoUtc(fromMillis(expiresMs)) + "; create a new one");

    const auto platform = readPlatform(s);
    if (!platform)
      throw Error(ErrorCode::Failed,
                  "the cluster platform is not recorded yet; the manager records its own "
                  "platform when it starts");
    if (report.osId != platform->osId || majorOf(report.osVersion) != majorOf(platform->osVersion))
      throw Error(ErrorCode::InvalidArgument,
                  "node reports os " + report.osId + " " + report.osVersion +
                      " but the cluster runs " + platform->osId + " " + platform->osVersion +
                      "; nodes need the same os and major version");
    if (report.arch != platform->arch)
      throw Error(ErrorCode::InvalidArgument, "node reports architecture " + report.arch +
                                                  " but the cluster runs " + platform->arch);
    if (nodeVersion.major != ownVersion.major || nodeVersion.minor != ownVersion.minor)
      throw Error(ErrorCode::InvalidArgument,
                  "node runs shoal " + report.shoalVersion + " but the manager runs " +
                      managerVersion + "; nodes need the manager's major.minor version (" +
                      std::to_string(ownVersion.major) + "." + std::to_string(ownVersion.minor) +
                      ")");

    Enrolment enrolment;
    enrolment.credential = randomSecret();
    std::string credentialHash = hashSecret(enrolment.credential);
    std::string hostname = report.hostname, address = report.address, osId = report.osId,
                osVersion = report.osVersion, arch = report.arch, version = report.shoalVersion,
                state = toString(NodeState::Online);
    Poco::Int64 seen = atMs, joined = atMs;
    s << "INSERT INTO nodes (hostname, address, os_id, os_version, arch, shoal_version, state,"
         " credential_hash, last_seen_ms, joined_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        use(hostname), use(address), use(osId), use(osVersion), use(arch), use(version),
        use(state), use(credentialHash), use(seen), use(joined), now;
    Poco::Int64 nodeId = lastInsertId(s, tx.backend());
    Poco::Int64 usedAt = atMs;
    s << "UPDATE join_tokens SET used_at_ms = ?, used_by_node = ? WHERE id = ?", use(usedAt),
        use(nodeId), use(tokenId), now;
    enrolment.node = requireNode(s, nodeId);
    return enrolment;
  });
  if (observer_) observer_(NodeEvent{NodeEvent::Kind::Joined, "enrolled", enrolled.node});
  return enrolled;
}

void NodeRegistry::checkJoinToken(const std::string& joinSecret) {
  if (joinSecret.empty() || joinSecret.size() > kMaxSecretLength)
    throw Error(ErrorCode::NotFound, "join token is unknown (was it copied whole?)");
  std::string hash = hashSecret(joinSecret);
  withSession(store_, "checking a join token", [&](Poco::Data::Session& s) {
    std::vector<Poco::Int64> expires, used;
    Poco::Data::Statement select(s);
    select << "SELECT expires_at_ms, COALESCE(used_at_ms, -1) FROM join_tokens WHERE token_hash = ?",
        use(hash), into(expires), into(used);
    select.execute();
    if (expires.empty()) throw Error(ErrorCode::NotFound, "join token is unknown (was it copied whole?)");
    if (used.front() >= 0)
      throw Error(ErrorCode::Conflict, "join token was already used at " + isoUtc(fromMillis(used.front())));
    if (toMillis(currentTime()) >= expires.front())
      throw Error(ErrorCode::Failed,
                  "join token expired at " + isoUtc(fromMillis(expires.front())) + "; create a new one");
    return 0;
  });
}

std::optional<Node> NodeRegistry::authenticate(const std::string& credential) {
  if (credential.empty() || credential.size() > kMaxSecretLength) return std::nullopt;
  std::string hash = hashSecret(credential);
  return withSession(store_, "authenticating a node", [&](Poco::Data::Session& s)
                                                          -> std::optional<Node> {
    NodeRows rows;
    std::vector<std::string> stored;
    Poco::Data::Statement select(s);
    select << "SELECT " + kNodeColumns +
                  ", credential_hash FROM nodes WHERE credential_hash = ? AND state <> 'removed'",
        use(hash);
    rows.bind(select);
    select, into(stored);
    select.execute();
    if (stored.size() != 1 || !constantTimeEquals(stored.front(), hash)) return std::nullopt;
    auto nodes = rows.nodes(s);
    return std::move(nodes.front());
  });
}

void NodeRegistry::heartbeat(std::int64_t nodeId) {
  detail::requirePositiveId(nodeId, "node id");
  std::lock_guard membership(membershipMutex_);
  const bool returned = inTransaction(store_, "recording a heartbeat of node " + std::to_string(nodeId),
                [&](store::Transaction& tx) {
                  const NodeState state = lockLiveNode(tx, nodeId);
                  Poco::Int64 seen = toMillis(currentTime());
                  std::string next =
                      toString(state == NodeState::Offline ? NodeState::Online : state);
                  Poco::Int64 id = nodeId;
                  tx.session() << "UPDATE nodes SET last_seen_ms = ?, state = ? WHERE id = ?",
                      use(seen), use(next), use(id), now;
                  return state == NodeState::Offline;
                });
  if (returned) report(NodeEvent::Kind::Joined, "returned", nodeId);
}

std::vector<std::int64_t> NodeRegistry::markOffline(std::chrono::seconds after) {
  if (after < std::chrono::seconds(1))
    throw Error(ErrorCode::InvalidArgument,
                "after " + std::to_string(after.count()) + " s is invalid: use at least 1 s");
  std::lock_guard membership(membershipMutex_);
  auto offline = inTransaction(store_, "marking silent nodes offline", [&](store::Transaction& tx) {
    auto& s = tx.session();
    Poco::Int64 cutoff = toMillis(currentTime() - after);
    std::vector<Poco::Int64> ids;
    s << "SELECT id FROM nodes WHERE state = 'online' AND last_seen_ms < ? ORDER BY id" +
             forUpdate(tx.backend()),
        use(cutoff), into(ids), now;
    if (!ids.empty())
      s << "UPDATE nodes SET state = 'offline' WHERE state = 'online' AND id IN (" +
               detail::idList(ids) + ")",
          now;
    return std::vector<std::int64_t>(ids.begin(), ids.end());
  });
  for (auto id : offline) report(NodeEvent::Kind::Left, "offline", id);
  return offline;
}

std::vector<Node> NodeRegistry::list(bool includeRemoved) {
  return withSession(store_, "listing nodes", [&](Poco::Data::Session& s) {
    NodeRows rows;
    Poco::Data::Statement select(s);
    select << "SELECT " + kNodeColumns + " FROM nodes" +
                  (includeRemoved ? "" : " WHERE state <> 'removed'") + " ORDER BY id";
    rows.bind(select);
    select.execute();
    return rows.nodes(s);
  });
}

std::optional<Node> NodeRegistry::find(std::int64_t id) {
  detail::requirePositiveId(id, "node id");
  return withSession(store_, "reading node " + std::to_string(id),
                     [&](Poco::Data::Session& s) { return readNode(s, id); });
}

Node NodeRegistry::setRoles(std::int64_t id, const std::vector<std::string>& roles) {
  detail::requirePositiveId(id, "node id");
  std::vector<std::string> sorted = roles;
  for (const std::string& role : sorted) validateRole(role);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted.size() > kMaxRoles)
    throw Error(ErrorCode::InvalidArgument, "roles: " + std::to_string(sorted.size()) +
                                                " roles are too many; the limit is " +
                                                std::to_string(kMaxRoles));
  return inTransaction(store_, "setting the roles of node " + std::to_string(id),
                       [&](store::Transaction& tx) {
    lockLiveNode(tx, id);
    auto& s = tx.session();
    Poco::Int64 nodeId = id;
    s << "DELETE FROM node_roles WHERE node_id = ?", use(nodeId), now;
    for (std::string role : sorted)
      s << "INSERT INTO node_roles (node_id, role) VALUES (?, ?)", use(nodeId), use(role), now;
    return requireNode(s, id);
  });
}

Node NodeRegistry::setDraining(std::int64_t id, bool draining) {
  detail::requirePositiveId(id, "node id");
  return inTransaction(store_, "changing the draining state of node " + std::to_string(id),
                       [&](store::Transaction& tx) {
    const NodeState state = lockLiveNode(tx, id);
    NodeState next = state;
    if (draining) next = NodeState::Draining;
    else if (state == NodeState::Draining) next = NodeState::Online;
    auto& s = tx.session();
    if (next != state) {
      std::string text = toString(next);
      Poco::Int64 nodeId = id;
      s << "UPDATE nodes SET state = ? WHERE id = ?", use(text), use(nodeId), now;
    }
    return requireNode(s, id);
  });
}

void NodeRegistry::remove(std::int64_t id) {
  detail::requirePositiveId(id, "node id");
  std::lock_guard membership(membershipMutex_);
  const bool removed = inTransaction(store_, "removing node " + std::to_string(id), [&](store::Transaction& tx) {
    if (lockNode(tx, id) == NodeState::Removed) return false;
    auto& s = tx.session();
    Poco::Int64 nodeId = id, at = toMillis(currentTime());
    s << "UPDATE nodes SET state = 'removed', credential_hash = NULL WHERE id = ?", use(nodeId),
        now;
    s << "UPDATE command_deliveries SET state = 'failed', output = 'node removed',"
         " next_attempt_at_ms = NULL, finished_at_ms = ?"
         " WHERE node_id = ? AND state IN ('pending', 'running')",
        use(at), use(nodeId), now;
    return true;
  });
  if (removed) report(NodeEvent::Kind::Left, "removed", id);
}

}  // namespace shoal::cluster
