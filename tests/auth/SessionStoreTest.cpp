#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>

#include "AuthTest.hpp"
#include "auth/SessionStore.hpp"
#include "auth/UserStore.hpp"
#include "cluster/Secrets.hpp"

using namespace Poco::Data::Keywords;
using namespace std::chrono_literals;

namespace shoal::auth::test {
namespace {

class Sessions : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    if (HasFatalFailure()) return;
    users_ = std::make_unique<UserStore>(store(), clock());
    sessions_ = std::make_unique<SessionStore>(store(), SessionPolicy{}, clock());
    alice_ = users_->add("alice", "alice's long password");
    bob_ = users_->add("bob", "bob's long password");
  }

  UserStore& users() { return *users_; }
  SessionStore& sessions() { return *sessions_; }
  const User& alice() const { return alice_; }
  const User& bob() const { return bob_; }

  // Every text column of every session row.
  std::vector<std::string> sessionTexts() {
    auto session = store().session();
    std::vector<std::string> hashes, csrf, peers;
    session << "SELECT token_hash, csrf_token, peer_address FROM panel_sessions", into(hashes),
        into(csrf), into(peers), Poco::Data::Keywords::now;
    std::vector<std::string> all = hashes;
    all.insert(all.end(), csrf.begin(), csrf.end());
    all.insert(all.end(), peers.begin(), peers.end());
    return all;
  }

 private:
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<SessionStore> sessions_;
  User alice_, bob_;
};

TEST_P(Sessions, ACreatedSessionResumesWithItsUserAndCsrfToken) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  EXPECT_EQ(created.token.size(), 43u) << "32 random bytes, base64url";
  EXPECT_EQ(created.csrfToken.size(), 43u);
  EXPECT_NE(created.token, created.csrfToken);
  EXPECT_EQ(created.expiresAt, now() + 30min);

  const auto session = sessions().resume(created.token);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->userId, alice().id);
  EXPECT_EQ(session->userName, "alice");
  EXPECT_EQ(session->csrfToken, created.csrfToken);
  EXPECT_EQ(session->createdAt, now());
  EXPECT_EQ(session->lastSeenAt, now());
  EXPECT_EQ(session->expiresAt, now() + 30min);

  const NewSession other = sessions().create(alice().id, "192.0.2.7");
  EXPECT_NE(other.token, created.token);
  EXPECT_NE(other.csrfToken, created.csrfToken);
  EXPECT_EQ(sessions().resume(other.token)->csrfToken, other.csrfToken);
}

TEST_P(Sessions, TheTokenIsStoredOnlyAsItsHash) {
  const NewSession a = sessions().create(alice().id, "192.0.2.7");
  const NewSession b = sessions().create(bob().id, "2001:db8::1");
  const std::vector<std::string> texts = sessionTexts();
  ASSERT_EQ(texts.size(), 6u);
  for (const std::string& text : texts) {
    EXPECT_EQ(text.find(a.token), std::string::npos) << text;
    EXPECT_EQ(text.find(b.token), std::string::npos) << text;
  }
  EXPECT_NE(std::find(texts.begin(), texts.end(), cluster::hashSecret(a.token)), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), cluster::hashSecret(b.token)), texts.end());
  EXPECT_EQ(cluster::hashSecret(a.token).rfind("sha256:", 0), 0u);
}

TEST_P(Sessions, UnknownAndMalformedTokensResumeNothing) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  EXPECT_FALSE(sessions().resume("").has_value());
  EXPECT_FALSE(sessions().resume(cluster::randomSecret()).has_value());
  EXPECT_FALSE(sessions().resume(created.token.substr(0, 42)).has_value());
  EXPECT_FALSE(sessions().resume(created.token + "x").has_value());
  EXPECT_FALSE(sessions().resume(created.csrfToken).has_value());
  EXPECT_FALSE(sessions().resume(cluster::hashSecret(created.token)).has_value());
  EXPECT_FALSE(sessions().resume(std::string(100000, 'a')).has_value());
  EXPECT_FALSE(sessions().resume("' OR '1'='1").has_value());
  EXPECT_TRUE(sessions().resume(created.token).has_value());
}

TEST_P(Sessions, AnIdleSessionExpiresAndIsDeleted) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  advance(29min);
  ASSERT_TRUE(sessions().resume(created.token).has_value());
  advance(29min);  // 58 minutes old, but active 29 minutes ago
  const auto active = sessions().resume(created.token);
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->lastSeenAt, now());
  EXPECT_EQ(active->expiresAt, now() + 30min);

  advance(30min);
  EXPECT_FALSE(sessions().resume(created.token).has_value());
  EXPECT_EQ(countRows("panel_sessions"), 0);
  advance(-30min);
  EXPECT_FALSE(sessions().resume(created.token).has_value()) << "gone for good";
}

TEST_P(Sessions, TheIdleTimeoutIsExact) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  advance(30min - 1ms);
  ASSERT_TRUE(sessions().resume(created.token).has_value());
  const NewSession second = sessions().create(alice().id, "192.0.2.7");
  advance(30min);
  EXPECT_FALSE(sessions().resume(second.token).has_value());
}

TEST_P(Sessions, ActivityIsWrittenAtMostEveryThirtySeconds) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  const TimePoint start = now();
  advance(10s);
  EXPECT_EQ(sessions().resume(created.token)->lastSeenAt, start);
  advance(19s);
  EXPECT_EQ(sessions().resume(created.token)->lastSeenAt, start);
  advance(1s);  // 30 s after the last write
  EXPECT_EQ(sessions().resume(created.token)->lastSeenAt, now());
  const TimePoint written = now();
  advance(29s);
  EXPECT_EQ(sessions().resume(created.token)->lastSeenAt, written);
  // So the idle timeout counts from the last write, up to 30 s before the last request.
  advance(30min - 29s);
  EXPECT_FALSE(sessions().resume(created.token).has_value());
}

TEST_P(Sessions, AnActiveSessionEndsAtItsAbsoluteLifetime) {
  const NewSession created = sessions().create(alice().id, "192.0.2.7");
  const TimePoint start = now();
  for (int step = 1; step < 36; ++step) {  // every 20 minutes for 11 h 40 min
    advance(20min);
    const auto session = sessions().resume(created.token);
    ASSERT_TRUE(session.has_value()) << "step " << step;
    EXPECT_EQ(session->expiresAt, std::min(now() + 30min, start + 12h)) << "step " << step;
  }
  advance(20min);  // 12 h
  EXPECT_FALSE(sessions().resume(created.token).has_value());
  EXPECT_EQ(countRows("panel_sessions"), 0);
}

TEST_P(Sessions, APolicyIsHonouredAndMustBePositive) {
  SessionStore shortLived(store(), SessionPolicy{60s, 120s}, clock());
  const NewSession created = shortLived.create(alice().id, "");
  EXPECT_EQ(created.expiresAt, now() + 60s);
  advance(59s);
  ASSERT_TRUE(shortLived.resume(created.token).has_value());
  advance(59s);
  ASSERT_TRUE(shortLived.resume(created.token).has_value());
  advance(2s);
  EXPECT_FALSE(shortLived.resume(created.token).has_value());

  SessionStore tiny(store(), SessionPolicy{600s, 60s}, clock());
  EXPECT_EQ(tiny.create(alice().id, "").expiresAt, now() + 60s);

  errorMessageOf(ErrorCode::InvalidArgument, [&] {
    SessionStore(store(), SessionPolicy{0s, 60s}, clock());
  });
  errorMessageOf(ErrorCode::InvalidArgument, [&] {
    SessionStore(store(), SessionPolicy{60s, -1s}, clock());
  });
}

TEST_P(Sessions, DestroyEndsOneSession) {
  const NewSession a = sessions().create(alice().id, "192.0.2.7");
  const NewSession b = sessions().create(alice().id, "192.0.2.7");
  sessions().destroy(a.token);
  EXPECT_FALSE(sessions().resume(a.token).has_value());
  EXPECT_TRUE(sessions().resume(b.token).has_value());
  EXPECT_NO_THROW(sessions().destroy(a.token));
  EXPECT_NO_THROW(sessions().destroy(""));
  EXPECT_NO_THROW(sessions().destroy(cluster::randomSecret()));
  EXPECT_EQ(countRows("panel_sessions"), 1);
}

TEST_P(Sessions, DestroyAllForEndsEverySessionOfOneUser) {
  const NewSession a1 = sessions().create(alice().id, "192.0.2.7");
  const NewSession a2 = sessions().create(alice().id, "192.0.2.8");
  const NewSession b1 = sessions().create(bob().id, "192.0.2.9");
  EXPECT_EQ(sessions().destroyAllFor(alice().id), 2u);
  EXPECT_FALSE(sessions().resume(a1.token).has_value());
  EXPECT_FALSE(sessions().resume(a2.token).has_value());
  EXPECT_TRUE(sessions().resume(b1.token).has_value());
  EXPECT_EQ(sessions().destroyAllFor(alice().id), 0u);
  errorMessageOf(ErrorCode::InvalidArgument, [&] { sessions().destroyAllFor(0); });
}

TEST_P(Sessions, PurgeExpiredDeletesOnlyExpiredSessions) {
  const NewSession idle1 = sessions().create(alice().id, "192.0.2.7");
  const NewSession idle2 = sessions().create(alice().id, "192.0.2.7");
  const NewSession old = sessions().create(bob().id, "192.0.2.8");
  EXPECT_EQ(sessions().purgeExpired(), 0u);
  // `old` is used every 20 minutes until its 12 hours are up; `fresh` starts at 11 h 40 min.
  std::optional<NewSession> fresh;
  for (int step = 1; step <= 35; ++step) {
    advance(20min);
    ASSERT_TRUE(sessions().resume(old.token).has_value());
  }
  fresh = sessions().create(alice().id, "192.0.2.7");
  EXPECT_EQ(sessions().purgeExpired(), 2u);  // idle1 and idle2
  EXPECT_EQ(countRows("panel_sessions"), 2);
  advance(20min);  // old reaches 12 h; fresh has been idle 20 minutes
  EXPECT_EQ(sessions().purgeExpired(), 1u);
  EXPECT_EQ(countRows("panel_sessions"), 1);
  EXPECT_FALSE(sessions().resume(old.token).has_value());
  EXPECT_FALSE(sessions().resume(idle1.token).has_value());
  EXPECT_TRUE(sessions().resume(fresh->token).has_value());
}

TEST_P(Sessions, CreateChecksTheUserAndTheAddress) {
  errorMessageOf(ErrorCode::NotFound, [&] { sessions().create(bob().id + 100, "192.0.2.7"); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { sessions().create(0, "192.0.2.7"); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { sessions().create(-1, "192.0.2.7"); });
  const std::string message =
      errorMessageOf(ErrorCode::InvalidArgument, [&] { sessions().create(alice().id, "a b"); });
  EXPECT_EQ(message.rfind("peerAddress", 0), 0u) << message;
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { sessions().create(alice().id, std::string(256, '1')); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { sessions().create(alice().id, "\n"); });
  EXPECT_NO_THROW(sessions().create(alice().id, std::string(255, '1')));
  EXPECT_NO_THROW(sessions().create(alice().id, "[2001:db8::1]:51234"));
  EXPECT_EQ(countRows("panel_sessions"), 2);
}

TEST_P(Sessions, CsrfMatchesOnlyTheSessionsOwnToken) {
  const NewSession a = sessions().create(alice().id, "192.0.2.7");
  const NewSession b = sessions().create(alice().id, "192.0.2.7");
  const Session session = *sessions().resume(a.token);
  EXPECT_TRUE(SessionStore::csrfMatches(session, a.csrfToken));
  EXPECT_FALSE(SessionStore::csrfMatches(session, b.csrfToken));
  EXPECT_FALSE(SessionStore::csrfMatches(session, ""));
  EXPECT_FALSE(SessionStore::csrfMatches(session, a.csrfToken.substr(0, 42)));
  EXPECT_FALSE(SessionStore::csrfMatches(session, a.csrfToken + "x"));
  EXPECT_FALSE(SessionStore::csrfMatches(session, a.token));
  Session empty = session;
  empty.csrfToken.clear();
  EXPECT_FALSE(SessionStore::csrfMatches(empty, ""));
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(Sessions);

}  // namespace
}  // namespace shoal::auth::test
