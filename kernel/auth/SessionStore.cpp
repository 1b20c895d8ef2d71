#include "auth/SessionStore.hpp"

#include <algorithm>

#include <Poco/Data/Statement.h>

#include "auth/Fields.hpp"
#include "cluster/Database.hpp"
#include "cluster/Secrets.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::auth {

using cluster::detail::fromMillis;
using cluster::detail::inTransaction;
using cluster::detail::requirePositiveId;
using cluster::detail::toMillis;
using cluster::detail::withSession;

namespace {

constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMaxTokenLength = 256;

std::int64_t millis(std::chrono::seconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

SessionStore::SessionStore(store::Store& store, SessionPolicy policy, Clock clock)
    : store_(store), policy_(policy), clock_(std::move(clock)) {
  if (policy_.idleTimeout.count() <= 0 || policy_.absoluteLifetime.count() <= 0)
    throw Error(ErrorCode::InvalidArgument,
                "session policy: idleTimeout and absoluteLifetime must be positive");
}

TimePoint SessionStore::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

NewSession SessionStore::create(std::int64_t userId, std::string_view peerAddress) {
  requirePositiveId(userId, "userId");
  detail::requirePrintableAscii(peerAddress, 0, 255, false, "peerAddress");
  NewSession created{cluster::randomSecret(kSecretBytes), cluster::randomSecret(kSecretBytes), {}};
  std::string tokenHash = cluster::hashSecret(created.token), csrf = created.csrfToken,
              peer(peerAddress);
  const Poco::Int64 atMs = toMillis(currentTime());
  inTransaction(
      store_, "creating a session for user " + std::to_string(userId), [&](store::Transaction& tx) {
        auto& s = tx.session();
        Poco::Int64 id = userId;
        int disabled = 0;
        Poco::Data::Statement select(s);
        // Shared lock on MySQL: the user cannot be removed or disabled before this commits.
        select << std::string("SELECT disabled FROM panel_users WHERE id = ?") +
                      (tx.backend() == store::Backend::MySql ? " LOCK IN SHARE MODE" : ""),
            use(id), into(disabled);
        if (select.execute() == 0)
          throw Error(ErrorCode::NotFound, "user " + std::to_string(userId) + " does not exist");
        if (disabled != 0)
          throw Error(ErrorCode::Failed, "user " + std::to_string(userId) + " is disabled");
        Poco::Int64 createdMs = atMs, seenMs = atMs;
        s << "INSERT INTO panel_sessions (token_hash, user_id, csrf_token, created_at_ms,"
             " last_seen_at_ms, peer_address) VALUES (?, ?, ?, ?, ?, ?)",
            use(tokenHash), use(id), use(csrf), use(createdMs), use(seenMs), use(peer), now;
      });
  created.expiresAt =
      fromMillis(atMs + std::min(millis(policy_.idleTimeout), millis(policy_.absoluteLifetime)));
  return created;
}

std::optional<Session> SessionStore::resume(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenLength) return std::nullopt;
  std::string tokenHash = cluster::hashSecret(std::string(token));
  const std::int64_t atMs = toMillis(currentTime());
  return withSession(
      store_, "resuming a session", [&](Poco::Data::Session& s) -> std::optional<Session> {
        Poco::Int64 userId = 0, createdMs = 0, seenMs = 0;
        int disabled = 0;
        std::string name, csrf, kind, account;
        Poco::Data::Statement select(s);
        select << "SELECT s.user_id, u.name, u.disabled, s.csrf_token, s.created_at_ms,"
                  " s.last_seen_at_ms, u.kind, u.account FROM panel_sessions s"
                  " JOIN panel_users u ON u.id = s.user_id WHERE s.token_hash = ?",
            use(tokenHash), into(userId), into(name), into(disabled), into(csrf), into(createdMs),
            into(seenMs), into(kind), into(account);
        if (select.execute() == 0) return std::nullopt;

        const std::int64_t idleEnd = seenMs + millis(policy_.idleTimeout);
        const std::int64_t absoluteEnd = createdMs + millis(policy_.absoluteLifetime);
        if (atMs >= idleEnd || atMs >= absoluteEnd || disabled != 0) {
          s << "DELETE FROM panel_sessions WHERE token_hash = ?", use(tokenHash), now;
          return std::nullopt;
        }
        if (atMs - seenMs >= millis(kTouchInterval)) {
          Poco::Int64 touched = atMs;
          // Never backwards, should a request with an older clock reading come second.
          s << "UPDATE panel_sessions SET last_seen_at_ms = ?"
               " WHERE token_hash = ? AND last_seen_at_ms < ?",
              use(touched), use(tokenHash), use(touched), now;
          seenMs = atMs;
        }
        Session session;
        session.userId = userId;
        session.userName = std::move(name);
        session.userKind = userKindFromText(kind);
        session.userAccount = std::move(account);
        session.csrfToken = std::move(csrf);
        session.createdAt = fromMillis(createdMs);
        session.lastSeenAt = fromMillis(seenMs);
        session.expiresAt = fromMillis(std::min(seenMs + millis(policy_.idleTimeout), absoluteEnd));
        return session;
      });
}

void SessionStore::destroy(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenLength) return;
  std::string tokenHash = cluster::hashSecret(std::string(token));
  withSession(store_, "ending a session", [&](Poco::Data::Session& s) {
    s << "DELETE FROM panel_sessions WHERE token_hash = ?", use(tokenHash), now;
  });
}

std::size_t SessionStore::destroyAllFor(std::int64_t userId) {
  requirePositiveId(userId, "userId");
  return withSession(store_, "ending the sessions of user " + std::to_string(userId),
                     [&](Poco::Data::Session& s) {
                       Poco::Int64 id = userId;
                       Poco::Data::Statement del(s);
                       del << "DELETE FROM panel_sessions WHERE user_id = ?", use(id);
                       return static_cast<std::size_t>(del.execute());
                     });
}

std::size_t SessionStore::purgeExpired() {
  const std::int64_t atMs = toMillis(currentTime());
  Poco::Int64 idleBefore = atMs - millis(policy_.idleTimeout);
  Poco::Int64 createdBefore = atMs - millis(policy_.absoluteLifetime);
  return withSession(store_, "deleting expired sessions", [&](Poco::Data::Session& s) {
    Poco::Data::Statement del(s);
    del << "DELETE FROM panel_sessions WHERE last_seen_at_ms <= ? OR created_at_ms <= ?",
        use(idleBefore), use(createdBefore);
    return static_cast<std::size_t>(del.execute());
  });
}

bool SessionStore::csrfMatches(const Session& session, std::string_view presented) {
  if (session.csrfToken.empty() || presented.empty()) return false;
  return cluster::constantTimeEquals(session.csrfToken, std::string(presented));
}

}  // namespace shoal::auth
