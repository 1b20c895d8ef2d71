#include "auth/AuditLog.hpp"

#include <Poco/Data/Statement.h>

#include "auth/Fields.hpp"
#include "cluster/Database.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::auth {

using cluster::detail::fromMillis;
using cluster::detail::requirePositiveId;
using cluster::detail::shown;
using cluster::detail::toMillis;
using cluster::detail::withSession;

AuditLog::AuditLog(store::Store& store, cluster::Clock clock)
    : store_(store), clock_(std::move(clock)) {}

cluster::TimePoint AuditLog::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

AuditEntry AuditLog::checked(const AuditEntry& entry, std::int64_t atMs) const {
  detail::requirePrintableAscii(entry.actor, 1, 128, false, "actor");
  detail::requirePrintableAscii(entry.action, 1, 64, true, "action");
  if (entry.outcome != "ok" && entry.outcome != "refused" && entry.outcome != "failed")
    throw Error(ErrorCode::InvalidArgument,
                "outcome \"" + shown(entry.outcome) + "\" is invalid: use ok, refused or failed");
  if (entry.status < 0 || entry.status > 999)
    throw Error(ErrorCode::InvalidArgument,
                "status " + std::to_string(entry.status) + " is invalid: use 0 to 999");
  detail::requirePrintableAscii(entry.peerAddress, 0, 255, false, "peerAddress");

  AuditEntry stored = entry;
  stored.target = detail::cleanText(entry.target, kMaxTextChars);
  stored.detail = detail::cleanText(entry.detail, kMaxTextChars);
  stored.at = fromMillis(atMs);
  stored.count = 1;
  return stored;
}

std::int64_t AuditLog::insert(const AuditEntry& stored, std::optional<std::int64_t> count) {
  Poco::Int64 atMs = toMillis(stored.at);
  int status = stored.status;
  // NULL marks a row of one event, which recordRepeated never adds to.
  const std::string repeats = count ? std::to_string(*count) : "NULL";
  return withSession(store_, "recording an audit entry", [&](Poco::Data::Session& s) {
    s << "INSERT INTO audit_log (at_ms, actor, action, target, outcome, status, detail,"
         " peer_address, repeat_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, " +
             repeats + ")",
        use(atMs), useRef(stored.actor), useRef(stored.action), useRef(stored.target),
        useRef(stored.outcome), use(status), useRef(stored.detail), useRef(stored.peerAddress), now;
    Poco::Int64 id = 0;
    s << (store_.backend() == store::Backend::MySql ? "SELECT LAST_INSERT_ID()"
                                                    : "SELECT last_insert_rowid()"),
        into(id), now;
    return static_cast<std::int64_t>(id);
  });
}

AuditEntry AuditLog::record(const AuditEntry& entry) {
  AuditEntry stored = checked(entry, toMillis(currentTime()));
  stored.id = insert(stored, std::nullopt);
  return stored;
}

AuditEntry AuditLog::recordRepeated(const AuditEntry& entry) {
  const Poco::Int64 atMs = toMillis(currentTime());
  AuditEntry stored = checked(entry, atMs);
  Poco::Int64 minuteStart = atMs - atMs % 60000, minuteEnd = minuteStart + 60000;
  int status = stored.status;
  std::lock_guard lock(repeatedMutex_);
  auto row = withSession(store_, "adding to an audit entry", [&](Poco::Data::Session& s) {
    std::optional<AuditEntry> found;
    Poco::Int64 id = 0, at = 0, count = 0;
    std::string actor, target, detail;
    Poco::Data::Statement select(s);
    select << "SELECT id, at_ms, actor, target, detail, repeat_count FROM audit_log"
              " WHERE peer_address = ? AND at_ms >= ? AND at_ms < ? AND action = ? AND outcome = ?"
              " AND status = ? AND repeat_count IS NOT NULL ORDER BY id LIMIT 1",
        useRef(stored.peerAddress), use(minuteStart), use(minuteEnd), useRef(stored.action),
        useRef(stored.outcome), use(status), into(id), into(at), into(actor), into(target),
        into(detail), into(count);
    if (select.execute() == 0) return found;
    s << "UPDATE audit_log SET repeat_count = repeat_count + 1 WHERE id = ?", use(id), now;
    found = stored;
    found->id = id;
    found->at = fromMillis(at);
    found->actor = std::move(actor);
    found->target = std::move(target);
    found->detail = std::move(detail);
    found->count = count + 1;
    return found;
  });
  if (row) return *row;
  stored.id = insert(stored, 1);
  return stored;
}

std::size_t AuditLog::prune(const AuditRetention& retention) {
  if (retention.maxAge.count() <= 0)
    throw Error(ErrorCode::InvalidArgument, "audit retention must be positive");
  if (retention.maxRows == 0)
    throw Error(ErrorCode::InvalidArgument, "audit row cap must be positive");
  Poco::Int64 cutoff = toMillis(currentTime() - retention.maxAge);
  return withSession(store_, "pruning the audit log", [&](Poco::Data::Session& s) {
    std::size_t deleted = 0;
    Poco::Data::Statement byAge(s);
    byAge << "DELETE FROM audit_log WHERE at_ms < ?", use(cutoff);
    deleted += byAge.execute();
    // Ids only grow, so the newest maxRows rows are those within maxRows of the largest.
    Poco::Int64 newest = 0;
    s << "SELECT COALESCE(MAX(id), 0) FROM audit_log", into(newest), now;
    if (newest > static_cast<Poco::Int64>(retention.maxRows)) {
      Poco::Int64 keepFrom = newest - static_cast<Poco::Int64>(retention.maxRows);
      Poco::Data::Statement byCount(s);
      byCount << "DELETE FROM audit_log WHERE id <= ?", use(keepFrom);
      deleted += byCount.execute();
    }
    return deleted;
  });
}

std::vector<AuditEntry> AuditLog::list(std::size_t limit, std::optional<std::int64_t> beforeId) {
  if (limit < 1 || limit > kMaxListLimit)
    throw Error(ErrorCode::InvalidArgument, "limit " + std::to_string(limit) +
                                                " is out of range: use 1 to " +
                                                std::to_string(kMaxListLimit));
  if (beforeId) requirePositiveId(*beforeId, "beforeId");
  return withSession(store_, "listing the audit log", [&](Poco::Data::Session& s) {
    std::vector<Poco::Int64> ids, ats;
    std::vector<std::string> actors, actions, targets, outcomes, details, peers;
    std::vector<int> statuses;
    Poco::Data::Statement select(s);
    std::vector<Poco::Int64> counts;
    select << "SELECT id, at_ms, actor, action, target, outcome, status, detail, peer_address,"
              " COALESCE(repeat_count, 1) FROM audit_log" +
                  (beforeId ? " WHERE id < " + std::to_string(*beforeId) : std::string()) +
                  " ORDER BY id DESC LIMIT " + std::to_string(limit),
        into(ids), into(ats), into(actors), into(actions), into(targets), into(outcomes),
        into(statuses), into(details), into(peers), into(counts);
    select.execute();
    std::vector<AuditEntry> out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      AuditEntry e;
      e.id = ids[i];
      e.at = fromMillis(ats[i]);
      e.actor = std::move(actors[i]);
      e.action = std::move(actions[i]);
      e.target = std::move(targets[i]);
      e.outcome = std::move(outcomes[i]);
      e.status = statuses[i];
      e.detail = std::move(details[i]);
      e.peerAddress = std::move(peers[i]);
      e.count = counts[i];
      out.push_back(std::move(e));
    }
    return out;
  });
}

}  // namespace shoal::auth
