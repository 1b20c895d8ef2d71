#include <chrono>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>

#include "AuthTest.hpp"
#include "auth/AuditLog.hpp"

using namespace Poco::Data::Keywords;
using namespace std::chrono_literals;

namespace shoal::auth::test {
namespace {

class Audit : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    if (HasFatalFailure()) return;
    log_ = std::make_unique<AuditLog>(store(), clock());
  }
  AuditLog& log() { return *log_; }

  static AuditEntry entry(const std::string& actor, const std::string& action,
                          const std::string& target = "", const std::string& outcome = "ok",
                          int status = 200) {
    AuditEntry e;
    e.actor = actor;
    e.action = action;
    e.target = target;
    e.outcome = outcome;
    e.status = status;
    e.peerAddress = "192.0.2.7";
    return e;
  }

 private:
  std::unique_ptr<AuditLog> log_;
};

TEST_P(Audit, RecordedEntriesAreListedNewestFirstWithEveryField) {
  AuditEntry first = entry("user:alice", "POST /v1/plugins/lvs/services", "192.0.2.10:80");
  first.detail = "scheduler wlc";
  const AuditEntry a = log().record(first);
  advance(1500ms);
  const AuditEntry b =
      log().record(entry("token:admin", "DELETE /v1/nodes/3", "node 3", "refused", 403));
  advance(1s);
  AuditEntry third = entry("node:3", "login", "", "failed", 0);
  third.peerAddress = "";
  const AuditEntry c = log().record(third);

  EXPECT_GT(a.id, 0);
  EXPECT_GT(b.id, a.id);
  EXPECT_GT(c.id, b.id);
  EXPECT_EQ(c.at, now());

  const std::vector<AuditEntry> all = log().list(10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, c.id);
  EXPECT_EQ(all[1].id, b.id);
  EXPECT_EQ(all[2].id, a.id);

  const AuditEntry& got = all[2];
  EXPECT_EQ(got.at, now() - 2500ms);
  EXPECT_EQ(got.actor, "user:alice");
  EXPECT_EQ(got.action, "POST /v1/plugins/lvs/services");
  EXPECT_EQ(got.target, "192.0.2.10:80");
  EXPECT_EQ(got.outcome, "ok");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.detail, "scheduler wlc");
  EXPECT_EQ(got.peerAddress, "192.0.2.7");
  EXPECT_EQ(all[1].outcome, "refused");
  EXPECT_EQ(all[1].status, 403);
  EXPECT_EQ(all[0].outcome, "failed");
  EXPECT_EQ(all[0].peerAddress, "");
}

TEST_P(Audit, PagesFollowBeforeId) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 25; ++i)
    ids.push_back(log().record(entry("user:alice", "op " + std::to_string(i))).id);

  const auto page1 = log().list(10);
  ASSERT_EQ(page1.size(), 10u);
  EXPECT_EQ(page1.front().id, ids[24]);
  EXPECT_EQ(page1.back().id, ids[15]);
  EXPECT_EQ(page1.front().action, "op 24");

  const auto page2 = log().list(10, page1.back().id);
  ASSERT_EQ(page2.size(), 10u);
  EXPECT_EQ(page2.front().id, ids[14]);
  EXPECT_EQ(page2.back().id, ids[5]);

  const auto page3 = log().list(10, page2.back().id);
  ASSERT_EQ(page3.size(), 5u);
  EXPECT_EQ(page3.front().id, ids[4]);
  EXPECT_EQ(page3.back().id, ids[0]);
  EXPECT_TRUE(log().list(10, ids[0]).empty());

  EXPECT_EQ(log().list(1).size(), 1u);
  EXPECT_EQ(log().list(1000).size(), 25u);
  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().list(0); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().list(1001); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().list(10, 0); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().list(10, -5); });
}

TEST_P(Audit, LongTextIsCutTo4000Characters) {
  AuditEntry e = entry("user:alice", "PUT /v1/things");
  e.detail = std::string(5000, 'x');
  std::string accents;
  for (int i = 0; i < 4500; ++i) accents += "\xC3\xA9";  // é, two bytes each
  e.target = accents;
  const AuditEntry stored = log().record(e);

  const std::string ellipsis = "\xE2\x80\xA6";
  EXPECT_EQ(stored.detail, std::string(3999, 'x') + ellipsis);
  EXPECT_EQ(stored.target, accents.substr(0, 3999 * 2) + ellipsis);
  const AuditEntry got = log().list(1).front();
  EXPECT_EQ(got.detail, stored.detail);
  EXPECT_EQ(got.target, stored.target);

  // Exactly 4000 characters are kept whole.
  e.detail = std::string(4000, 'y');
  e.target = accents.substr(0, 8000);
  const AuditEntry whole = log().record(e);
  EXPECT_EQ(whole.detail, e.detail);
  EXPECT_EQ(log().list(1).front().target, e.target);
}

TEST_P(Audit, MarkupAndQuotesAreStoredVerbatim) {
  AuditEntry e = entry("user:alice", "POST /v1/plugins/lvs/services");
  e.target = "<script>alert('x')</script>";
  e.detail = "\"name\": \"<img src=x onerror=alert(1)>\" & 'more'; DROP TABLE audit_log; --\n\ttab";
  log().record(e);
  const AuditEntry got = log().list(1).front();
  EXPECT_EQ(got.target, e.target);
  EXPECT_EQ(got.detail, e.detail);
  EXPECT_EQ(countRows("audit_log"), 1);
}

TEST_P(Audit, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  AuditEntry e = entry("user:alice", "POST /v1/x");
  e.detail = "ok \xF0\x9F\x98\x80 bad \xFF\xC3 end";
  const AuditEntry stored = log().record(e);
  EXPECT_EQ(stored.detail, "ok \xF0\x9F\x98\x80 bad \xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_EQ(log().list(1).front().detail, stored.detail);
}

TEST_P(Audit, FieldsAreCheckedNamingTheField) {
  auto refused = [&](AuditEntry e, const std::string& field) {
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { log().record(e); });
    EXPECT_EQ(message.rfind(field, 0), 0u) << message;
  };
  AuditEntry e = entry("user:alice", "login");
  e.actor = "";
  refused(e, "actor");
  e.actor = "user alice";
  refused(e, "actor");
  e.actor = std::string(129, 'a');
  refused(e, "actor");
  e.actor = "user:\xC3\xA9";
  refused(e, "actor");
  e = entry("user:alice", "");
  refused(e, "action");
  e.action = std::string(65, 'a');
  refused(e, "action");
  e.action = "GET /\n";
  refused(e, "action");
  e = entry("user:alice", "login", "", "maybe");
  refused(e, "outcome");
  e = entry("user:alice", "login", "", "ok", 1000);
  refused(e, "status");
  e.status = -1;
  refused(e, "status");
  e = entry("user:alice", "login");
  e.peerAddress = "192.0.2.7 ";
  refused(e, "peerAddress");
  EXPECT_EQ(countRows("audit_log"), 0);

  e = entry(std::string(128, 'a'), std::string(64, 'b'), "", "refused", 999);
  EXPECT_NO_THROW(log().record(e));
}

TEST_P(Audit, AStoreFailureIsAnInternalError) {
  {
    auto session = store().session();
    session << "DROP TABLE audit_log", Poco::Data::Keywords::now;
  }
  const std::string message =
      errorMessageOf(ErrorCode::Internal, [&] { log().record(entry("user:alice", "POST /v1/x")); });
  EXPECT_EQ(message.rfind("recording an audit entry failed", 0), 0u) << message;
  errorMessageOf(ErrorCode::Internal, [&] { log().list(10); });
}

TEST_P(Audit, RepeatedRefusalsAreOneRowPerSourceAndMinuteWithACount) {
  // The clock starts on a whole minute: 3000 refusals 10 ms apart fill 30 s of it.
  AuditEntry throttled = entry("anonymous", "sign in", "user name as typed: x", "refused", 429);
  throttled.detail = "rate limited";
  AuditEntry first;
  for (int i = 0; i < 3000; ++i) {
    if (i == 1) {
      throttled.actor = "user:alice";  // what differs between repeats is not kept
      throttled.target = "";
    }
    const AuditEntry got = log().recordRepeated(throttled);
    if (i == 0) first = got;
    EXPECT_EQ(got.id, first.id);
    EXPECT_EQ(got.count, i + 1);
    advance(10ms);
  }
  // Another source, and another kind from the same source, each have their own row.
  AuditEntry other = throttled;
  other.peerAddress = "198.51.100.4";
  log().recordRepeated(other);
  AuditEntry unauthenticated = entry("anonymous", "POST /v1/commands", "/v1/commands", "refused", 401);
  log().recordRepeated(unauthenticated);
  log().recordRepeated(unauthenticated);
  // An ordinary row is never added to, even when it looks the same.
  log().record(throttled);
  log().recordRepeated(throttled);
  EXPECT_EQ(countRows("audit_log"), 4);

  auto rows = log().list(10);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].count, 1) << "the ordinary row";
  EXPECT_EQ(rows[1].count, 2);
  EXPECT_EQ(rows[1].action, "POST /v1/commands");
  EXPECT_EQ(rows[2].peerAddress, "198.51.100.4");
  EXPECT_EQ(rows[2].count, 1);
  EXPECT_EQ(rows[3].id, first.id);
  EXPECT_EQ(rows[3].count, 3001);
  EXPECT_EQ(rows[3].actor, "anonymous") << "the first refusal's";
  EXPECT_EQ(rows[3].target, "user name as typed: x");
  EXPECT_EQ(rows[3].at, atMillis(ManualClock::kStartMs));

  // The next minute starts a new row.
  advance(30s);
  const AuditEntry next = log().recordRepeated(throttled);
  EXPECT_NE(next.id, first.id);
  EXPECT_EQ(next.count, 1);
  EXPECT_EQ(countRows("audit_log"), 5);
  errorMessageOf(ErrorCode::InvalidArgument, [&] {
    AuditEntry bad = throttled;
    bad.outcome = "maybe";
    log().recordRepeated(bad);
  });
}

TEST_P(Audit, PruneDropsRowsPastTheirRetentionAndBeyondTheCap) {
  for (int day = 0; day < 10; ++day) {
    log().record(entry("user:alice", "op day " + std::to_string(day)));
    log().recordRepeated(entry("anonymous", "sign in", "", "refused", 429));
    advance(24h);
  }
  EXPECT_EQ(countRows("audit_log"), 20);
  // Now is day 10: a 7-day retention keeps the rows of days 3 to 9.
  EXPECT_EQ(log().prune(AuditRetention{std::chrono::hours(7 * 24), 1000}), 6u);
  EXPECT_EQ(countRows("audit_log"), 14);
  const auto rows = log().list(100);
  EXPECT_EQ(rows.back().action, "op day 3");
  for (const auto& r : rows) EXPECT_GE(r.at, now() - std::chrono::hours(7 * 24));
  EXPECT_EQ(log().prune(AuditRetention{std::chrono::hours(7 * 24), 1000}), 0u) << "nothing more";

  // The cap keeps the newest rows.
  EXPECT_EQ(log().prune(AuditRetention{std::chrono::hours(7 * 24), 5}), 9u);
  const auto kept = log().list(100);
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_EQ(kept.front().action, "sign in");
  EXPECT_EQ(kept.back().action, "sign in");
  EXPECT_EQ(kept[1].action, "op day 9");
  EXPECT_EQ(kept[3].action, "op day 8");

  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().prune(AuditRetention{std::chrono::hours(0), 5}); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { log().prune(AuditRetention{std::chrono::hours(1), 0}); });
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(Audit);

}  // namespace
}  // namespace shoal::auth::test
