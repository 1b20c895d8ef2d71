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

AuditEntry AuditLog::record(const AuditEntry& entry) {
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
  Poco::Int64 atMs = toMillis(currentTime());
  stored.at = fromMillis(atMs);
  int status = entry.status;
  stored.id = withSession(store_, "recording an audit entry", [&](Poco::Data::Session& s) {
    s << "INSERT INTO audit_log (at_ms, actor, action, target, outcome, status, detail,"
         " peer_address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        use(atMs), use(stored.actor), use(stored.action), use(stored.target), use(stored.outcome),
        use(status), use(stored.detail), use(stored.peerAddress), now;
    Poco::Int64 id = 0;
    s << (store_.backend() == store::Backend::MySql ? "SELECT LAST_INSERT_ID()"
                                                    : "SELECT last_insert_rowid()"),
        into(id), now;
    return static_cast<std::int64_t>(id);
  });
  return stored;
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
    select << "SELECT id, at_ms, actor, action, target, outcome, status, detail, peer_address"
              " FROM audit_log" +
                  (beforeId ? " WHERE id < " + std::to_string(*beforeId) : std::string()) +
                  " ORDER BY id DESC LIMIT " + std::to_string(limit),
        into(ids), into(ats), into(actors), into(actions), into(targets), into(outcomes),
        into(statuses), into(details), into(peers);
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
      out.push_back(std::move(e));
    }
    return out;
  });
}

}  // namespace shoal::auth
