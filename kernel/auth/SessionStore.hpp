#pragma once
// Login sessions of the web panel. A session is identified by a random token that the panel
// sets as its cookie; the store keeps only the token's SHA-256 ("sha256:<hex>"), so a copy of
// the database does not let anyone in. Each session has its own CSRF token, which the panel puts
// into its pages and requires back on every state-changing request (csrfMatches).
//
// A session ends when it has been idle for policy.idleTimeout, when it is older than
// policy.absoluteLifetime (however active), when it is destroyed (logout), and when its user is
// removed, disabled or given a new password (auth/UserStore.hpp). Activity is written at most
// once per 30 s (kTouchInterval) to spare the store, so the idle timeout may count from up to
// 30 s before the last request.
//
// Every method is thread-safe (its own pooled session). Needs the store at schema version 9.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/UserStore.hpp"
#include "cluster/Clock.hpp"
#include "store/Store.hpp"

namespace shoal::auth {

using cluster::Clock;
using cluster::TimePoint;

struct SessionPolicy {
  std::chrono::seconds idleTimeout{30 * 60};
  std::chrono::seconds absoluteLifetime{12 * 3600};
};

struct NewSession {
  std::string token;      // the cookie value; shown once, only its hash is stored
  std::string csrfToken;  // for the pages of this session
  TimePoint expiresAt;    // when it ends if unused
};

struct Session {
  std::int64_t userId = 0;
  std::string userName;
  UserKind userKind = UserKind::Admin;  // an owner is bound to userAccount (auth/UserStore.hpp)
  std::string userAccount;              // the owner's account; empty for an admin
  std::string csrfToken;
  TimePoint createdAt;
  TimePoint lastSeenAt;  // as stored (see kTouchInterval)
  TimePoint expiresAt;   // the earlier of lastSeenAt + idleTimeout and createdAt + absoluteLifetime
};

class SessionStore {
 public:
  static constexpr std::chrono::seconds kTouchInterval{30};

  // Throws Error(InvalidArgument) unless both durations of the policy are positive.
  explicit SessionStore(store::Store& store, SessionPolicy policy = {}, Clock clock = {});

  // A new session for the user. peerAddress (0 to 255 printable ASCII characters without
  // blanks) is recorded for the user's list of sessions. Error(InvalidArgument) for a bad id or
  // address, Error(NotFound) for an unknown user, Error(Failed) for a disabled one.
  NewSession create(std::int64_t userId, std::string_view peerAddress);

  // The live session of this token, its activity recorded; nullopt for an unknown, malformed or
  // expired token (an expired session is deleted) and for a disabled user.
  std::optional<Session> resume(std::string_view token);

  // Ends the session (logout); an unknown token is no error.
  void destroy(std::string_view token);
  // Ends every session of the user; returns how many there were.
  std::size_t destroyAllFor(std::int64_t userId);
  // Deletes the expired sessions (resume deletes those it meets; this catches the rest).
  std::size_t purgeExpired();

  // Whether `presented` is the session's CSRF token, compared in constant time. An empty token
  // never matches.
  static bool csrfMatches(const Session& session, std::string_view presented);

  const SessionPolicy& policy() const { return policy_; }

 private:
  TimePoint currentTime() const;

  store::Store& store_;
  SessionPolicy policy_;
  Clock clock_;
};

}  // namespace shoal::auth
