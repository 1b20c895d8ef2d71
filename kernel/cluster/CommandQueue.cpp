#include "cluster/CommandQueue.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <Poco/Data/Statement.h>
#include <Poco/SHA2Engine.h>

#include "cluster/Database.hpp"
#include "store/JsonValidator.hpp"
#include "store/Utf8.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::cluster {

using detail::fromMillis;
using detail::fromNullableMillis;
using detail::inTransaction;
using detail::shown;
using detail::toMillis;
using detail::withSession;

namespace {

constexpr std::size_t kMaxKindLength = 128;
constexpr std::size_t kMaxKeyLength = 128;
constexpr int kMaxAttemptsLimit = 1000;

bool isLowerOrDigit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

void validateKind(const std::string& kind) {
  // [a-z0-9_-]+(\.[a-z0-9_-]+)+
  bool ok = !kind.empty() && kind.size() <= kMaxKindLength;
  std::size_t segment = 0, segments = 0;
  for (std::size_t i = 0; ok && i <= kind.size(); ++i) {
    if (i == kind.size() || kind[i] == '.') {
      ok = segment > 0;
      ++segments;
      segment = 0;
    } else {
      const char c = kind[i];
      ok = isLowerOrDigit(c) || c == '_' || c == '-';
      ++segment;
    }
  }
  if (!ok || segments < 2)
    throw Error(ErrorCode::InvalidArgument,
                "kind \"" + shown(kind) +
                    "\" is invalid: use at least two dot-separated names of a-z 0-9 _ - (like "
                    "\"nginx.site.apply\"), up to 128 characters");
}

void validateOrderingKey(const std::string& key) {
  bool ok = !key.empty() && key.size() <= kMaxKeyLength;
  for (char c : key) {
    if (!ok) break;
    ok = isLowerOrDigit(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == ':' ||
         c == '/' || c == '-';
  }
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                "orderingKey \"" + shown(key) +
                    "\" is invalid: use 1 to 128 of A-Z a-z 0-9 _ . : / -");
}

void validatePayload(const std::string& payload) {
  if (payload.size() > CommandQueue::kMaxPayloadBytes)
    throw Error(ErrorCode::InvalidArgument,
                "payload is " + std::to_string(payload.size()) + " bytes; the limit is " +
                    std::to_string(CommandQueue::kMaxPayloadBytes));
  if (!store::isValidUtf8(payload))
    throw Error(ErrorCode::InvalidArgument, "payload is not valid UTF-8");
  try {
    store::JsonValidator::check(payload);
  } catch (const Error& e) {
    // The validator speaks of a "document"; here it is the payload.
    std::string reason = e.what();
    const std::string prefix = "document is not valid JSON: ";
    if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
    throw Error(ErrorCode::InvalidArgument, "payload is not valid JSON: " + reason);
  }
}

void validateRoleName(const std::string& role) {
  bool ok = !role.empty() && role.size() <= 32 && role[0] >= 'a' && role[0] <= 'z';
  for (std::size_t i = 1; ok && i < role.size(); ++i)
    ok = isLowerOrDigit(role[i]) || role[i] == '_' || role[i] == '-';
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                "target.role \"" + shown(role) + "\" is invalid: use [a-z][a-z0-9_-]{0,31}");
}

void validateTarget(const Target& target) {
  switch (target.kind) {
    case Target::Kind::Node:
      detail::requirePositiveId(target.nodeId, "target.nodeId");
      if (!target.role.empty())
        throw Error(ErrorCode::InvalidArgument, "target.role must be empty for a node target");
      return;
    case Target::Kind::Role:
      validateRoleName(target.role);
      if (target.nodeId != 0)
        throw Error(ErrorCode::InvalidArgument, "target.nodeId must be 0 for a role target");
      return;
    case Target::Kind::All:
      if (target.nodeId != 0 || !target.role.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "target.nodeId and target.role must be empty for an all-nodes target");
      return;
  }
  throw Error(ErrorCode::InvalidArgument, "target.kind is not node, role or all");
}

void validateIdempotencyKey(const std::string& key) {
  bool ok = !key.empty() && key.size() <= 128;
  for (char c : key) ok = ok && c >= '!' && c <= '~';
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                "idempotency key \"" + shown(key) +
                    "\" is invalid: use 1 to 128 visible ASCII characters (! to ~)");
}

// "12,13,14" as the store holds it, back to numbers (digits only, or the store is damaged).
std::vector<std::int64_t> parseIdList(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    if (item.empty() || item.size() > 18 ||
        item.find_first_not_of("0123456789") != std::string::npos)
      throw Error(ErrorCode::Internal, "the store holds a damaged command id list \"" + shown(text) + "\"");
    ids.push_back(std::stoll(item));
    start = end + 1;
  }
  return ids;
}

std::string targetKindText(Target::Kind kind);

// What makes two enqueue requests the same: every field of every command, and the form.
std::string requestFingerprint(const std::vector<CommandRequest>& requests, bool batch) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  auto field = [&](const std::string& value) {
    const std::string length = std::to_string(value.size()) + ":";
    sha.update(length);
    sha.update(value);
  };
  field(batch ? "batch" : "single");
  for (const CommandRequest& r : requests) {
    field(r.kind);
    field(r.payloadJson);
    field(r.orderingKey);
    field(targetKindText(r.target.kind));
    field(std::to_string(r.target.nodeId));
    field(r.target.role);
    // Only when set, so the keys kept from before staggering still match their requests.
    if (r.stagger.count() != 0) field("stagger:" + std::to_string(r.stagger.count()));
  }
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::string targetKindText(Target::Kind kind) {
  switch (kind) {
    case Target::Kind::Node:
      return "node";
    case Target::Kind::Role:
      return "role";
    case Target::Kind::All:
      return "all";
  }
  return "all";
}

Target::Kind targetKindFrom(const std::string& text) {
  if (text == "node") return Target::Kind::Node;
  if (text == "role") return Target::Kind::Role;
  if (text == "all") return Target::Kind::All;
  throw Error(ErrorCode::Internal, "the store holds an unknown target kind \"" + shown(text) + "\"");
}

DeliveryState parseState(const std::string& text) {
  if (auto s = deliveryStateFromString(text)) return *s;
  throw Error(ErrorCode::Internal,
              "the store holds an unknown delivery state \"" + shown(text) + "\"");
}

// Valid UTF-8 (anything else becomes U+FFFD), at most `limit` bytes, cut between characters.
std::string cleanOutput(const std::string& in, std::size_t limit) {
  static const std::string replacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(in.size(), limit));
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > in.size() ||
        !store::isValidUtf8(std::string_view(in).substr(i, length))) {
      if (out.size() + replacement.size() > limit) break;
      out += replacement;
      ++i;
      continue;
    }
    if (out.size() + length > limit) break;
    out.append(in, i, length);
    i += length;
  }
  return out;
}

std::string lockShared(store::Backend backend) {
  return backend == store::Backend::MySql ? " LOCK IN SHARE MODE" : "";
}

using detail::forUpdate;

// Poco 1.11 cannot fetch MEDIUMTEXT/LONGTEXT on MySQL directly (it sizes its buffer from the
// declared column length): the payload is fetched as a byte substring as long as the limit.
std::string payloadColumn(store::Backend backend) {
  return backend == store::Backend::MySql
             ? "SUBSTRING(CAST(c.payload AS BINARY), 1, " +
                   std::to_string(CommandQueue::kMaxPayloadBytes) + ")"
             : "c.payload";
}

// The id of the row the session inserted last. MySQL: the connector's insertId property
// (mysql_insert_id, no round trip).
std::int64_t lastInsertId(Poco::Data::Session& s, store::Backend backend) {
  if (backend == store::Backend::MySql)
    return static_cast<std::int64_t>(Poco::AnyCast<Poco::UInt64>(s.getProperty("insertId")));
  Poco::Int64 id = 0;
  s << "SELECT last_insert_rowid()", into(id), now;
  return id;
}

const std::string kDeliveryColumns =
    "d.id, d.command_id, d.node_id, d.state, d.attempts, d.output,"
    " COALESCE(d.next_attempt_at_ms, -1), COALESCE(d.started_at_ms, -1),"
    " COALESCE(d.finished_at_ms, -1), d.created_at_ms";

struct DeliveryRows {
  std::vector<Poco::Int64> ids, commandIds, nodeIds, attempts, next, started, finished, created;
  std::vector<std::string> states, outputs, kinds, payloads, keys;
  bool withCommand = false;

  // Columns: kDeliveryColumns, then (withCommand) c.kind, the payload, c.ordering_key.
  void bind(Poco::Data::Statement& st, bool command) {
    withCommand = command;
    st, into(ids), into(commandIds), into(nodeIds), into(states), into(attempts), into(outputs),
        into(next), into(started), into(finished), into(created);
    if (command) st, into(kinds), into(payloads), into(keys);
  }

  static std::string select(store::Backend backend, bool command) {
    return "SELECT " + kDeliveryColumns +
           (command ? ", c.kind, " + payloadColumn(backend) +
                          ", c.ordering_key FROM command_deliveries d JOIN commands c ON c.id = "
                          "d.command_id"
                    : std::string(" FROM command_deliveries d"));
  }

  std::vector<Delivery> deliveries() {
    std::vector<Delivery> out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      Delivery d;
      d.id = ids[i];
      d.commandId = commandIds[i];
      d.nodeId = nodeIds[i];
      d.state = parseState(states[i]);
      d.attempts = static_cast<int>(attempts[i]);
      d.output = std::move(outputs[i]);
      d.nextAttemptAt = fromNullableMillis(next[i]);
      d.startedAt = fromNullableMillis(started[i]);
      d.finishedAt = fromNullableMillis(finished[i]);
      d.createdAt = fromMillis(created[i]);
      if (withCommand) {
        d.kind = std::move(kinds[i]);
        d.payloadJson = std::move(payloads[i]);
        d.orderingKey = std::move(keys[i]);
      }
      out.push_back(std::move(d));
    }
    return out;
  }
};

std::vector<Delivery> readDeliveries(Poco::Data::Session& s, store::Backend backend,
                                     const std::string& where) {
  DeliveryRows rows;
  Poco::Data::Statement select(s);
  select << DeliveryRows::select(backend, true) + " " + where;
  rows.bind(select, true);
  select.execute();
  return rows.deliveries();
}

Delivery readDelivery(Poco::Data::Session& s, store::Backend backend, std::int64_t id) {
  auto rows = readDeliveries(s, backend, "WHERE d.id = " + std::to_string(id));
  if (rows.empty())
    throw Error(ErrorCode::NotFound, "delivery " + std::to_string(id) + " does not exist");
  return std::move(rows.front());
}

// Commands (with their deliveries) for a WHERE/ORDER clause on commands c.
std::vector<Command> readCommands(Poco::Data::Session& s, store::Backend backend,
                                  const std::string& clause) {
  std::vector<Poco::Int64> ids, targetNodes, created;
  std::vector<std::string> kinds, payloads, keys, targetKinds, targetRoles;
  s << "SELECT c.id, c.kind, " + payloadColumn(backend) +
           ", c.ordering_key, c.target_kind, c.target_node_id, c.target_role, c.created_at_ms"
           " FROM commands c " +
           clause,
      into(ids), into(kinds), into(payloads), into(keys), into(targetKinds), into(targetNodes),
      into(targetRoles), into(created), now;
  std::vector<Command> out;
  if (ids.empty()) return out;
  std::map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Command c;
    c.id = ids[i];
    c.kind = std::move(kinds[i]);
    c.payloadJson = std::move(payloads[i]);
    c.orderingKey = std::move(keys[i]);
    c.target.kind = targetKindFrom(targetKinds[i]);
    c.target.nodeId = targetNodes[i];
    c.target.role = std::move(targetRoles[i]);
    c.createdAt = fromMillis(created[i]);
    index[c.id] = out.size();
    out.push_back(std::move(c));
  }
  DeliveryRows rows;
  Poco::Data::Statement select(s);
  select << DeliveryRows::select(backend, false) + " WHERE d.command_id IN (" +
                detail::idList(ids) + ") ORDER BY d.command_id, d.node_id";
  rows.bind(select, false);
  select.execute();
  for (Delivery& d : rows.deliveries()) {
    Command& c = out[index.at(d.commandId)];
    d.kind = c.kind;
    d.payloadJson = c.payloadJson;
    d.orderingKey = c.orderingKey;
    c.deliveries.push_back(std::move(d));
  }
  return out;
}

// For each ordering key of the node that has unfinished deliveries: the key and its head, the
// smallest command id among its pending, running and failed deliveries. One MIN per (state,
// key) group, read from deliveries_node_state: neither backend reads a done or skipped row, and
// on MySQL/MariaDB each branch is a loose index scan ("Using index for group-by": one index
// dive per key instead of one row per queued delivery) because the GROUP BY names the index's
// leading columns, although they are constant here.
std::string headsSql(std::int64_t nodeId) {
  const std::string n = std::to_string(nodeId);
  auto branch = [&](const char* state) {
    return "SELECT node_id, state, ordering_key, MIN(command_id) AS head"
           " FROM command_deliveries WHERE node_id = " +
           n + " AND state = '" + state + "' GROUP BY node_id, state, ordering_key";
  };
  return "SELECT ordering_key, MIN(head) AS head FROM (" + branch("pending") + " UNION ALL " +
         branch("running") + " UNION ALL " + branch("failed") +
         ") per_state GROUP BY ordering_key";
}

// Heads of the node that are ready at nowMs (pending and due, or running with a lease that
// started at or before leaseCutMs).
std::string readyCondition(const std::string& alias, std::int64_t nowMs, std::int64_t leaseCutMs) {
  return "((" + alias + "state = 'pending' AND " + alias +
         "next_attempt_at_ms <= " + std::to_string(nowMs) + ") OR (" + alias +
         "state = 'running' AND " + alias + "started_at_ms <= " + std::to_string(leaseCutMs) +
         "))";
}

std::vector<Poco::Int64> readyHeadIds(Poco::Data::Session& s, std::int64_t nodeId,
                                      std::int64_t nowMs, std::int64_t leaseCutMs,
                                      std::size_t limit) {
  std::vector<Poco::Int64> ids;
  s << "SELECT d.id FROM (" + headsSql(nodeId) +
           ") h JOIN command_deliveries d ON d.node_id = " + std::to_string(nodeId) +
           " AND d.command_id = h.head WHERE " + readyCondition("d.", nowMs, leaseCutMs) +
           " ORDER BY d.command_id LIMIT " + std::to_string(limit),
      into(ids), now;
  return ids;
}

void requireLimit(std::size_t limit) {
  if (limit < 1 || limit > CommandQueue::kMaxLimit)
    throw Error(ErrorCode::InvalidArgument, "limit " + std::to_string(limit) +
                                                " is out of range: use 1 to " +
                                                std::to_string(CommandQueue::kMaxLimit));
}

}  // namespace

std::string toString(DeliveryState state) {
  switch (state) {
    case DeliveryState::Pending:
      return "pending";
    case DeliveryState::Running:
      return "running";
    case DeliveryState::Done:
      return "done";
    case DeliveryState::Failed:
      return "failed";
    case DeliveryState::Skipped:
      return "skipped";
  }
  return "unknown";
}

std::optional<DeliveryState> deliveryStateFromString(std::string_view text) {
  if (text == "pending") return DeliveryState::Pending;
  if (text == "running") return DeliveryState::Running;
  if (text == "done") return DeliveryState::Done;
  if (text == "failed") return DeliveryState::Failed;
  if (text == "skipped") return DeliveryState::Skipped;
  return std::nullopt;
}

CommandQueue::CommandQueue(store::Store& store, QueuePolicy policy, Clock clock)
    : store_(store), policy_(policy), clock_(std::move(clock)) {
  if (policy_.maxAttempts < 1 || policy_.maxAttempts > kMaxAttemptsLimit)
    throw Error(ErrorCode::InvalidArgument, "policy.maxAttempts " +
                                                std::to_string(policy_.maxAttempts) +
                                                " is out of range: use 1 to 1000");
  if (policy_.firstBackoff <= std::chrono::milliseconds(0))
    throw Error(ErrorCode::InvalidArgument, "policy.firstBackoff must be positive");
  if (policy_.maxBackoff < policy_.firstBackoff)
    throw Error(ErrorCode::InvalidArgument,
                "policy.maxBackoff must be at least policy.firstBackoff");
  if (policy_.lease < std::chrono::seconds(1))
    throw Error(ErrorCode::InvalidArgument, "policy.lease must be at least 1 s");
  if (policy_.idempotencyKeyRetention < std::chrono::hours(1))
    throw Error(ErrorCode::InvalidArgument, "policy.idempotencyKeyRetention must be at least 1 h");
}

TimePoint CommandQueue::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

std::chrono::milliseconds CommandQueue::backoff(int attempts) const {
  if (attempts < 1) attempts = 1;
  std::chrono::milliseconds wait = policy_.firstBackoff;
  for (int i = 1; i < attempts && wait < policy_.maxBackoff; ++i) wait *= 2;
  return std::min(wait, policy_.maxBackoff);
}

Command CommandQueue::enqueue(const std::string& kind, const std::string& payloadJson,
                              const std::string& orderingKey, const Target& target) {
  return std::move(
      enqueueBatch({CommandRequest{kind, payloadJson, orderingKey, target}}, false, nullptr)
          .commands.front());
}

std::vector<Command> CommandQueue::enqueueAll(const std::vector<CommandRequest>& requests) {
  return enqueueBatch(requests, true, nullptr).commands;
}

CommandQueue::Enqueued CommandQueue::enqueueOnce(const std::string& idempotencyKey,
                                                 const std::vector<CommandRequest>& requests,
                                                 bool batch) {
  validateIdempotencyKey(idempotencyKey);
  if (!batch && requests.size() != 1)
    throw Error(ErrorCode::InvalidArgument,
                "commands: a single enqueue holds one command, not " + std::to_string(requests.size()));
  return enqueueBatch(requests, batch, &idempotencyKey);
}

void CommandQueue::pruneIdempotencyKeys() {
  const std::int64_t at = toMillis(currentTime());
  std::int64_t last = lastKeyPruneMs_.load();
  if (at - last < 60000 || !lastKeyPruneMs_.compare_exchange_strong(last, at)) return;
  const Poco::Int64 cut =
      at - std::chrono::duration_cast<std::chrono::milliseconds>(policy_.idempotencyKeyRetention).count();
  inTransaction(store_, "forgetting expired idempotency keys", [&](store::Transaction& tx) {
    Poco::Int64 before = cut;
    tx.session() << "DELETE FROM enqueue_idempotency_keys WHERE created_at_ms < ?", use(before), now;
    return 0;
  });
}

CommandQueue::Enqueued CommandQueue::enqueueBatch(const std::vector<CommandRequest>& requests,
                                                  bool indexed, const std::string* idempotencyKey) {
  if (requests.empty() || requests.size() > kMaxLimit)
    throw Error(ErrorCode::InvalidArgument, "commands: " + std::to_string(requests.size()) +
                                                " commands; use 1 to " +
                                                std::to_string(kMaxLimit));
  auto prefix = [&](std::size_t i) {
    return indexed ? "commands[" + std::to_string(i) + "]: " : std::string();
  };
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const CommandRequest& r = requests[i];
    try {
      validateKind(r.kind);
      validatePayload(r.payloadJson);
      validateOrderingKey(r.orderingKey);
      validateTarget(r.target);
      if (r.stagger.count() < 0 || r.stagger > kMaxStagger)
        throw Error(ErrorCode::InvalidArgument, "stagger_ms: " + std::to_string(r.stagger.count()) +
                                                    " is outside 0 to " + std::to_string(kMaxStagger.count()));
    } catch (const Error& e) {
      if (!indexed) throw;
      throw Error(e.code(), prefix(i) + e.what());
    }
  }
  // Ordering keys and role names are inlined into SQL as literals below: their validated
  // alphabets contain no quote or backslash.
  std::set<std::string> keys, roles;
  std::set<std::int64_t> nodeTargets;
  bool anyAll = false;
  for (const CommandRequest& r : requests) {
    keys.insert(r.orderingKey);
    if (r.target.kind == Target::Kind::Node) nodeTargets.insert(r.target.nodeId);
    if (r.target.kind == Target::Kind::Role) roles.insert(r.target.role);
    if (r.target.kind == Target::Kind::All) anyAll = true;
  }
  auto literals = [](const std::set<std::string>& values, const std::string& suffix) {
    std::string out;
    for (const std::string& v : values) out += (out.empty() ? "('" : ", ('") + v + "'" + suffix + ")";
    return out;
  };

  const std::string action = requests.size() == 1
                                 ? "enqueueing a " + requests.front().kind + " command"
                                 : "enqueueing " + std::to_string(requests.size()) + " commands";
  pruneIdempotencyKeys();
  const std::string fingerprint = idempotencyKey ? requestFingerprint(requests, indexed) : "";
  return inTransaction(store_, action, [&](store::Transaction& tx) {
    auto& s = tx.session();
    const store::Backend backend = tx.backend();
    const std::int64_t at = toMillis(currentTime());
    const std::string when = std::to_string(at);

    // The key's row first: a concurrent call with the same key waits here for this one's
    // commit (MySQL: the row lock; SQLite: the write lock) and then finds the commands.
    if (idempotencyKey) {
      std::string key = *idempotencyKey, hash = fingerprint;
      Poco::Int64 created = at;
      s << "INSERT INTO enqueue_idempotency_keys (idempotency_key, request_hash, command_ids,"
           " created_at_ms) VALUES (?, ?, '', ?)" +
               std::string(backend == store::Backend::MySql
                               ? " ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key"
                               : " ON CONFLICT (idempotency_key) DO NOTHING"),
          use(key), use(hash), use(created), now;
      std::string storedHash, storedIds;
      Poco::Int64 storedAt = 0;
      s << "SELECT request_hash, command_ids, created_at_ms FROM enqueue_idempotency_keys"
           " WHERE idempotency_key = ?" +
               forUpdate(backend),
          use(key), into(storedHash), into(storedIds), into(storedAt), now;
      const std::int64_t retention =
          std::chrono::duration_cast<std::chrono::milliseconds>(policy_.idempotencyKeyRetention).count();
      if (!storedIds.empty() && storedAt < at - retention) {
        // Expired but not yet pruned: the key is free again.
        s << "UPDATE enqueue_idempotency_keys SET request_hash = ?, command_ids = '',"
             " created_at_ms = ? WHERE idempotency_key = ?",
            use(hash), use(created), use(key), now;
        storedIds.clear();
      } else if (!storedIds.empty()) {
        if (storedHash != fingerprint)
          throw Error(ErrorCode::Conflict,
                      "idempotency key \"" + shown(key) +
                          "\" was used for a different request (commands " + storedIds +
                          "); send a new key for a new request");
        const auto ids = parseIdList(storedIds);
        return Enqueued{readCommands(s, backend,
                                     "WHERE c.id IN (" + detail::idList(ids) + ") ORDER BY c.id"),
                        true};
      }
    }

    // Commands of one key take their ids while holding the key's row lock, so a smaller id is
    // always committed first and a node never sees a key's later command before an earlier one.
    // Keys are locked in sorted order, so batches cannot deadlock on them.
    s << "INSERT INTO command_ordering_keys (ordering_key, created_at_ms) VALUES " +
             literals(keys, ", " + when) +
             (backend == store::Backend::MySql
                  ? " ON DUPLICATE KEY UPDATE ordering_key = ordering_key"
                  : " ON CONFLICT (ordering_key) DO NOTHING"),
        now;

    // The targets' nodes, share-locked: a concurrent remove() either waits for these commands
    // (and then fails their deliveries) or commits first (and the node is no target).
    std::set<std::int64_t> liveTargets;
    std::map<std::string, std::vector<std::int64_t>> roleNodes;
    std::vector<Poco::Int64> allNodes;
    if (!nodeTargets.empty()) {
      std::vector<Poco::Int64> ids;
      s << "SELECT id FROM nodes WHERE id IN (" + detail::idList(nodeTargets) +
               ") AND state <> 'removed' ORDER BY id" + lockShared(backend),
          into(ids), now;
      liveTargets.insert(ids.begin(), ids.end());
    }
    if (!roles.empty()) {
      std::vector<std::string> roleNames;
      std::vector<Poco::Int64> ids;
      std::string list;
      for (const std::string& role : roles) list += (list.empty() ? "'" : ", '") + role + "'";
      s << "SELECT r.role, n.id FROM nodes n JOIN node_roles r ON r.node_id = n.id"
           " WHERE r.role IN (" +
               list + ") AND n.state <> 'removed' ORDER BY n.id" + lockShared(backend),
          into(roleNames), into(ids), now;
      for (std::size_t i = 0; i < ids.size(); ++i) roleNodes[roleNames[i]].push_back(ids[i]);
    }
    if (anyAll)
      s << "SELECT id FROM nodes WHERE state <> 'removed' ORDER BY id" + lockShared(backend),
          into(allNodes), now;

    std::vector<std::vector<std::int64_t>> targets(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const Target& t = requests[i].target;
      std::vector<std::int64_t>& nodes = targets[i];
      switch (t.kind) {
        case Target::Kind::Node:
          if (liveTargets.count(t.nodeId)) nodes.push_back(t.nodeId);
          if (nodes.empty())
            throw Error(ErrorCode::InvalidArgument,
                        prefix(i) + "target node " + std::to_string(t.nodeId) +
                            " matches no node (it does not exist or is removed)");
          break;
        case Target::Kind::Role:
          if (auto it = roleNodes.find(t.role); it != roleNodes.end()) nodes = it->second;
          if (nodes.empty())
            throw Error(ErrorCode::InvalidArgument,
                        prefix(i) + "target role \"" + t.role + "\" matches no node");
          break;
        case Target::Kind::All:
          nodes.assign(allNodes.begin(), allNodes.end());
          if (nodes.empty())
            throw Error(ErrorCode::InvalidArgument,
                        prefix(i) + "target all nodes matches no node (the cluster has no nodes)");
          break;
      }
    }

    std::vector<Command> commands;
    commands.reserve(requests.size());
    for (const CommandRequest& r : requests) {
      std::string kind = r.kind, payload = r.payloadJson, key = r.orderingKey,
                  targetKind = targetKindText(r.target.kind), role = r.target.role;
      Poco::Int64 targetNode = r.target.nodeId, created = at;
      s << "INSERT INTO commands (kind, payload, ordering_key, target_kind, target_node_id,"
           " target_role, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
          use(kind), use(payload), use(key), use(targetKind), use(targetNode), use(role),
          use(created), now;
      Command c;
      c.id = lastInsertId(s, backend);
      c.kind = r.kind;
      c.payloadJson = r.payloadJson;
      c.orderingKey = r.orderingKey;
      c.target = r.target;
      c.createdAt = fromMillis(at);
      commands.push_back(std::move(c));
    }

    // All deliveries in multi-row statements of at most kRowsPerInsert rows.
    constexpr std::size_t kRowsPerInsert = 500;
    std::string values;
    std::size_t rows = 0;
    auto flush = [&] {
      if (rows == 0) return;
      s << "INSERT INTO command_deliveries (command_id, node_id, ordering_key, state, attempts,"
           " output, next_attempt_at_ms, created_at_ms) VALUES " +
               values,
          now;
      values.clear();
      rows = 0;
    };
    for (std::size_t i = 0; i < commands.size(); ++i) {
      // targets[i] is in node id order: the i-th node's delivery is due i staggers from now.
      std::int64_t due = at;
      for (std::int64_t nodeId : targets[i]) {
        values += (rows == 0 ? "(" : ", (") + std::to_string(commands[i].id) + ", " +
                  std::to_string(nodeId) + ", '" + commands[i].orderingKey +
                  "', 'pending', 0, '', " + std::to_string(due) + ", " + when + ")";
        due += requests[i].stagger.count();
        if (++rows == kRowsPerInsert) flush();
      }
    }
    flush();

    std::map<std::int64_t, std::size_t> index;
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < commands.size(); ++i) {
      index[commands[i].id] = i;
      ids.push_back(commands[i].id);
    }
    DeliveryRows stored;
    Poco::Data::Statement select(s);
    select << DeliveryRows::select(backend, false) + " WHERE d.command_id IN (" +
                  detail::idList(ids) + ") ORDER BY d.command_id, d.node_id";
    stored.bind(select, false);
    select.execute();
    for (Delivery& d : stored.deliveries()) {
      Command& c = commands[index.at(d.commandId)];
      d.kind = c.kind;
      d.payloadJson = c.payloadJson;
      d.orderingKey = c.orderingKey;
      c.deliveries.push_back(std::move(d));
    }
    if (idempotencyKey) {
      std::string key = *idempotencyKey, list = detail::idList(ids);
      s << "UPDATE enqueue_idempotency_keys SET command_ids = ? WHERE idempotency_key = ?",
          use(list), use(key), now;
    }
    return Enqueued{std::move(commands), false};
  });
}

std::vector<Delivery> CommandQueue::claimReady(std::int64_t nodeId, std::size_t limit) {
  detail::requirePositiveId(nodeId, "node id");
  requireLimit(limit);
  const std::string action = "claiming deliveries for node " + std::to_string(nodeId);
  const std::int64_t leaseMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(policy_.lease).count();

  // The ready heads, found without a transaction: most calls find none, and on SQLite a
  // transaction takes the write lock.
  std::vector<Poco::Int64> candidates;
  {
    const std::int64_t at = toMillis(currentTime());
    candidates = withSession(store_, action, [&](Poco::Data::Session& s) {
      return readyHeadIds(s, nodeId, at, at - leaseMs, limit);
    });
  }
  if (candidates.empty()) return {};

  return inTransaction(store_, action, [&](store::Transaction& tx) {
    auto& s = tx.session();
    const std::int64_t at = toMillis(currentTime()), leaseCut = at - leaseMs;
    // Lock the candidates and keep those still ready. A delivery that was its key's head and is
    // still ready is still the head: heads only change when they become done or skipped, and
    // a key's later commands always have larger ids (enqueue holds the key's lock). Of two
    // concurrent claimers the second waits for the first's locks and then sees them running.
    std::vector<Poco::Int64> ready;
    s << "SELECT id FROM command_deliveries WHERE id IN (" + detail::idList(candidates) +
             ") AND node_id = " + std::to_string(nodeId) + " AND " +
             readyCondition("", at, leaseCut) + " ORDER BY id" + forUpdate(tx.backend()),
        into(ready), now;
    if (ready.empty()) return std::vector<Delivery>{};
    const std::string idList = detail::idList(ready);
    s << "UPDATE command_deliveries SET state = 'running', attempts = attempts + 1,"
         " started_at_ms = " +
             std::to_string(at) + ", next_attempt_at_ms = NULL WHERE id IN (" + idList + ")",
        now;
    return readDeliveries(s, tx.backend(),
                          "WHERE d.id IN (" + idList + ") ORDER BY d.command_id");
  });
}

Delivery CommandQueue::reportResult(std::int64_t deliveryId, std::int64_t nodeId, bool succeeded,
                                    const std::string& output) {
  return std::move(reportResults(nodeId, {DeliveryResult{deliveryId, succeeded, output}}).front());
}

std::vector<Delivery> CommandQueue::reportResults(std::int64_t nodeId,
                                                  const std::vector<DeliveryResult>& results) {
  detail::requirePositiveId(nodeId, "node id");
  if (results.empty() || results.size() > kMaxLimit)
    throw Error(ErrorCode::InvalidArgument, "results: " + std::to_string(results.size()) +
                                                " results; use 1 to " +
                                                std::to_string(kMaxLimit));
  std::set<std::int64_t> ids;
  std::vector<std::string> outputs;
  outputs.reserve(results.size());
  for (const DeliveryResult& r : results) {
    detail::requirePositiveId(r.deliveryId, "delivery id");
    if (!ids.insert(r.deliveryId).second)
      throw Error(ErrorCode::InvalidArgument, "results: delivery " + std::to_string(r.deliveryId) +
                                                  " is reported twice");
    outputs.push_back(cleanOutput(r.output, kMaxOutputBytes));
  }
  const std::string action =
      results.size() == 1
          ? "recording the result of delivery " + std::to_string(results.front().deliveryId)
          : "recording " + std::to_string(results.size()) + " results of node " +
                std::to_string(nodeId);
  const std::string idList = detail::idList(ids);

  return inTransaction(store_, action, [&](store::Transaction& tx) {
    auto& s = tx.session();
    struct Row {
      std::int64_t owner;
      DeliveryState state;
      std::int64_t attempts;
      bool attemptUnfinished;  // an attempt was started and no result recorded since
    };
    std::map<std::int64_t, Row> rows;
    {
      std::vector<Poco::Int64> rowIds, owners, attempts, started, finished;
      std::vector<std::string> states;
      s << "SELECT id, node_id, state, attempts, COALESCE(started_at_ms, -1),"
           " COALESCE(finished_at_ms, -1) FROM command_deliveries WHERE id IN (" +
               idList + ") ORDER BY id" + forUpdate(tx.backend()),
          into(rowIds), into(owners), into(states), into(attempts), into(started), into(finished),
          now;
      for (std::size_t i = 0; i < rowIds.size(); ++i)
        rows[rowIds[i]] = Row{owners[i], parseState(states[i]), attempts[i],
                              started[i] >= 0 && finished[i] < started[i]};
    }

    const Poco::Int64 at = toMillis(currentTime());
    for (std::size_t i = 0; i < results.size(); ++i) {
      const std::int64_t id = results[i].deliveryId;
      const std::string what = "delivery " + std::to_string(id);
      auto it = rows.find(id);
      if (it == rows.end() || it->second.owner != nodeId)
        throw Error(ErrorCode::NotFound,
                    what + " of node " + std::to_string(nodeId) + " does not exist");
      const Row& row = it->second;
      if (row.state == DeliveryState::Done) continue;  // a repeated acknowledgement
      // A pending delivery whose last attempt never reported was released (its node said it
      // restarted; an admin may have retried it since): the node's result is that attempt's, and taking
      // it keeps a command the node applied from being offered to it as new work.
      const bool released = row.state == DeliveryState::Pending && row.attemptUnfinished;
      if (row.state != DeliveryState::Running && !released)
        throw Error(ErrorCode::Conflict, what + " is " + toString(row.state) +
                                             ", not running; its result is not accepted");
      std::string next;
      std::string nextAttempt = "NULL";
      if (results[i].succeeded) {
        next = "done";
      } else if (row.attempts < policy_.maxAttempts) {
        next = "pending";
        nextAttempt = std::to_string(at + backoff(static_cast<int>(row.attempts)).count());
      } else {
        next = "failed";
      }
      Poco::Int64 rowId = id, finished = at;
      s << "UPDATE command_deliveries SET state = ?, output = ?, finished_at_ms = ?,"
           " next_attempt_at_ms = " +
               nextAttempt + " WHERE id = ?",
          use(next), use(outputs[i]), use(finished), use(rowId), now;
    }

    std::map<std::int64_t, Delivery> stored;
    for (Delivery& d : readDeliveries(s, tx.backend(), "WHERE d.id IN (" + idList + ")"))
      stored.emplace(d.id, std::move(d));
    std::vector<Delivery> out;
    out.reserve(results.size());
    for (const DeliveryResult& r : results) out.push_back(stored.at(r.deliveryId));
    return out;
  });
}

Delivery CommandQueue::retry(std::int64_t deliveryId) {
  detail::requirePositiveId(deliveryId, "delivery id");
  const std::string what = "delivery " + std::to_string(deliveryId);
  return inTransaction(store_, "retrying " + what, [&](store::Transaction& tx) {
    auto& s = tx.session();
    Poco::Int64 id = deliveryId, nodeId = 0;
    std::string stateText, nodeState;
    Poco::Data::Statement select(s);
    select << "SELECT d.state, d.node_id, n.state FROM command_deliveries d"
              " JOIN nodes n ON n.id = d.node_id WHERE d.id = ?" +
                  forUpdate(tx.backend()),
        use(id), into(stateText), into(nodeId), into(nodeState);
    if (select.execute() == 0) throw Error(ErrorCode::NotFound, what + " does not exist");
    const DeliveryState state = parseState(stateText);
    if (state != DeliveryState::Failed && state != DeliveryState::Pending)
      throw Error(ErrorCode::Conflict,
                  what + " is " + toString(state) +
                      "; only failed or pending deliveries can be retried");
    if (nodeState == "removed")
      throw Error(ErrorCode::Conflict, what + " belongs to node " + std::to_string(nodeId) +
                                           ", which is removed; skip it instead");
    Poco::Int64 at = toMillis(currentTime());
    s << "UPDATE command_deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?"
         " WHERE id = ?",
        use(at), use(id), now;
    return readDelivery(s, tx.backend(), deliveryId);
  });
}

Delivery CommandQueue::skip(std::int64_t deliveryId) {
  detail::requirePositiveId(deliveryId, "delivery id");
  const std::string what = "delivery " + std::to_string(deliveryId);
  return inTransaction(store_, "skipping " + what, [&](store::Transaction& tx) {
    auto& s = tx.session();
    Poco::Int64 id = deliveryId;
    std::string stateText;
    Poco::Data::Statement select(s);
    select << "SELECT state FROM command_deliveries WHERE id = ?" + forUpdate(tx.backend()),
        use(id), into(stateText);
    if (select.execute() == 0) throw Error(ErrorCode::NotFound, what + " does not exist");
    const DeliveryState state = parseState(stateText);
    if (state != DeliveryState::Failed && state != DeliveryState::Pending)
      throw Error(ErrorCode::Conflict,
                  what + " is " + toString(state) +
                      "; only pending or failed deliveries can be skipped");
    Poco::Int64 at = toMillis(currentTime());
    s << "UPDATE command_deliveries SET state = 'skipped', next_attempt_at_ms = NULL,"
         " finished_at_ms = ? WHERE id = ?",
        use(at), use(id), now;
    return readDelivery(s, tx.backend(), deliveryId);
  });
}

std::size_t CommandQueue::releaseRunning(std::int64_t nodeId) {
  detail::requirePositiveId(nodeId, "node id");
  return inTransaction(store_, "releasing the running deliveries of node " + std::to_string(nodeId),
                       [&](store::Transaction& tx) {
    Poco::Int64 node = nodeId, at = toMillis(currentTime());
    Poco::Data::Statement update(tx.session());
    update << "UPDATE command_deliveries SET state = 'pending', next_attempt_at_ms = ?"
              " WHERE node_id = ? AND state = 'running'",
        use(at), use(node);
    return static_cast<std::size_t>(update.execute());
  });
}

std::optional<Command> CommandQueue::find(std::int64_t commandId) {
  detail::requirePositiveId(commandId, "command id");
  return withSession(store_, "reading command " + std::to_string(commandId),
                     [&](Poco::Data::Session& s) -> std::optional<Command> {
                       auto commands = readCommands(s, store_.backend(),
                                                    "WHERE c.id = " + std::to_string(commandId));
                       if (commands.empty()) return std::nullopt;
                       return std::move(commands.front());
                     });
}

std::vector<Command> CommandQueue::list(std::size_t limit, std::optional<DeliveryState> state) {
  requireLimit(limit);
  return withSession(store_, "listing commands", [&](Poco::Data::Session& s) {
    const store::Backend backend = store_.backend();
    if (!state)
      return readCommands(s, backend, "ORDER BY c.id DESC LIMIT " + std::to_string(limit));
    // deliveries_state (state, command_id) yields the newest matching commands directly.
    std::vector<Poco::Int64> ids;
    std::string text = toString(*state);
    s << "SELECT DISTINCT command_id FROM command_deliveries WHERE state = ?"
         " ORDER BY command_id DESC LIMIT " +
             std::to_string(limit),
        use(text), into(ids), now;
    if (ids.empty()) return std::vector<Command>{};
    return readCommands(s, backend,
                        "WHERE c.id IN (" + detail::idList(ids) + ") ORDER BY c.id DESC");
  });
}

CommandQueue::Depth CommandQueue::depth() {
  return withSession(store_, "counting queued deliveries", [&](Poco::Data::Session& s) {
    std::vector<std::string> states;
    std::vector<Poco::Int64> counts;
    s << "SELECT d.state, COUNT(*) FROM command_deliveries d JOIN nodes n ON n.id = d.node_id"
         " WHERE d.state IN ('pending', 'running', 'failed') AND n.state <> 'removed'"
         " GROUP BY d.state",
        into(states), into(counts), now;
    Depth depth;
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (states[i] == "pending") depth.pending = counts[i];
      if (states[i] == "running") depth.running = counts[i];
      if (states[i] == "failed") depth.failed = counts[i];
    }
    return depth;
  });
}

std::optional<TimePoint> CommandQueue::nextWakeup(std::int64_t nodeId) {
  detail::requirePositiveId(nodeId, "node id");
  const std::int64_t leaseMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(policy_.lease).count();
  return withSession(store_, "reading the next wake-up of node " + std::to_string(nodeId),
                     [&](Poco::Data::Session& s) -> std::optional<TimePoint> {
    const std::int64_t at = toMillis(currentTime());
    std::vector<std::string> states;
    std::vector<Poco::Int64> next, started;
    s << "SELECT d.state, COALESCE(d.next_attempt_at_ms, -1), COALESCE(d.started_at_ms, -1)"
         " FROM (" +
             headsSql(nodeId) + ") h JOIN command_deliveries d ON d.node_id = " +
             std::to_string(nodeId) +
             " AND d.command_id = h.head WHERE d.state IN ('pending', 'running')",
        into(states), into(next), into(started), now;
    std::optional<std::int64_t> earliest;
    for (std::size_t i = 0; i < states.size(); ++i) {
      const std::int64_t ready = states[i] == "pending" ? next[i] : started[i] + leaseMs;
      if (ready > at && (!earliest || ready < *earliest)) earliest = ready;
    }
    if (!earliest) return std::nullopt;
    return fromMillis(*earliest);
  });
}

}  // namespace shoal::cluster
