#include <algorithm>
#include <atomic>
#include <thread>

#include "ClusterTest.hpp"

namespace shoal::cluster::test {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class CommandQueueTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    queue_ = std::make_unique<CommandQueue>(store(), policy(), clock());
  }

  virtual QueuePolicy policy() const {
    QueuePolicy p;
    p.maxAttempts = 3;
    p.firstBackoff = std::chrono::milliseconds(500);
    p.maxBackoff = std::chrono::milliseconds(1500);
    p.lease = std::chrono::seconds(60);
    return p;
  }

  CommandQueue& queue() { return *queue_; }

  Command put(const std::string& key, const Target& target, const std::string& kind = "site.apply") {
    return queue().enqueue(kind, R"({"key":")" + key + R"("})", key, target);
  }

  // The command ids of claimed deliveries, in the order returned.
  static std::vector<std::int64_t> commandIds(const std::vector<Delivery>& deliveries) {
    std::vector<std::int64_t> out;
    for (const Delivery& d : deliveries) out.push_back(d.commandId);
    return out;
  }

  Delivery deliveryOf(const Command& command, std::int64_t nodeId) {
    const std::optional<Command> stored = queue().find(command.id);
    if (stored)
      for (const Delivery& d : stored->deliveries)
        if (d.nodeId == nodeId) return d;
    ADD_FAILURE() << "command " << command.id << " has no delivery for node " << nodeId;
    return {};
  }

 private:
  std::unique_ptr<CommandQueue> queue_;
};

TEST_P(CommandQueueTest, TargetsAreResolvedWhenTheCommandIsEnqueued) {
  const Node web1 = enrolNode("web1.example.org", {"web"});
  const Node web2 = enrolNode("web2.example.org", {"web", "mail"});
  const Node db = enrolNode("db.example.org", {"db"});

  const Command toWeb = put("site:a", Target::withRole("web"));
  std::vector<std::int64_t> nodes;
  for (const Delivery& d : toWeb.deliveries) nodes.push_back(d.nodeId);
  EXPECT_EQ(nodes, (std::vector<std::int64_t>{web1.id, web2.id}));
  EXPECT_EQ(toWeb.target.kind, Target::Kind::Role);
  EXPECT_EQ(toWeb.target.role, "web");

  const Command toAll = put("cluster", Target::all());
  EXPECT_EQ(toAll.deliveries.size(), 3u);
  const Command toDb = put("db:main", Target::node(db.id));
  ASSERT_EQ(toDb.deliveries.size(), 1u);
  EXPECT_EQ(toDb.deliveries[0].nodeId, db.id);
  EXPECT_EQ(toDb.deliveries[0].state, DeliveryState::Pending);
  EXPECT_EQ(toDb.deliveries[0].attempts, 0);
  EXPECT_EQ(toDb.deliveries[0].nextAttemptAt, std::optional<TimePoint>(now()));
  EXPECT_EQ(toDb.deliveries[0].createdAt, now());
  EXPECT_EQ(toDb.deliveries[0].kind, "site.apply");
  EXPECT_EQ(toDb.deliveries[0].orderingKey, "db:main");

  // A node that joins (or gains the role) later gets nothing of the earlier commands.
  const Node web3 = enrolNode("web3.example.org", {"web"});
  EXPECT_TRUE(queue().claimReady(web3.id, 100).empty());
  EXPECT_EQ(queue().find(toWeb.id)->deliveries.size(), 2u);
  EXPECT_EQ(queue().find(toAll.id)->deliveries.size(), 3u);
  registry().setRoles(db.id, {"db", "web"});
  EXPECT_EQ(commandIds(queue().claimReady(db.id, 100)),
            (std::vector<std::int64_t>{toAll.id, toDb.id}));
  // Later commands reach the new members.
  EXPECT_EQ(put("site:b", Target::withRole("web")).deliveries.size(), 4u);
}

TEST_P(CommandQueueTest, AStaggeredCommandsDeliveriesBecomeDueOneAfterAnotherInNodeOrder) {
  const Node web1 = enrolNode("web1.example.org", {"web"});
  const Node web2 = enrolNode("web2.example.org", {"web"});
  const Node web3 = enrolNode("web3.example.org", {"web"});
  CommandRequest request{"site.apply", "{}", "account:acme", Target::withRole("web"), std::chrono::milliseconds(1000)};
  const Command c = queue().enqueueAll({request}).front();
  ASSERT_EQ(c.deliveries.size(), 3u);
  EXPECT_EQ(deliveryOf(c, web1.id).nextAttemptAt, std::optional<TimePoint>(now()));
  EXPECT_EQ(deliveryOf(c, web2.id).nextAttemptAt, std::optional<TimePoint>(now() + std::chrono::milliseconds(1000)));
  EXPECT_EQ(deliveryOf(c, web3.id).nextAttemptAt, std::optional<TimePoint>(now() + std::chrono::milliseconds(2000)));

  // The first node's is claimable at once; the others' not before their time.
  EXPECT_EQ(queue().claimReady(web1.id, 10).size(), 1u);
  EXPECT_TRUE(queue().claimReady(web2.id, 10).empty());
  EXPECT_TRUE(queue().claimReady(web3.id, 10).empty());
  advance(std::chrono::milliseconds(999));
  EXPECT_TRUE(queue().claimReady(web2.id, 10).empty());
  advance(std::chrono::milliseconds(1));
  EXPECT_EQ(queue().claimReady(web2.id, 10).size(), 1u);
  EXPECT_TRUE(queue().claimReady(web3.id, 10).empty());
  advance(std::chrono::milliseconds(1000));
  EXPECT_EQ(queue().claimReady(web3.id, 10).size(), 1u);

  // Out of range: refused, nothing written.
  request.stagger = std::chrono::milliseconds(60001);
  try {
    queue().enqueueAll({request});
    ADD_FAILURE() << "a stagger of 60001 ms was taken";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "stagger_ms")) << e.what();
  }
  EXPECT_EQ(queue().list(100).size(), 1u);
}

TEST_P(CommandQueueTest, RemovedNodesAreNoTargets) {
  const Node a = enrolNode("a.example.org", {"web"});
  const Node b = enrolNode("b.example.org", {"web"});
  registry().remove(b.id);
  EXPECT_EQ(put("k", Target::all()).deliveries.size(), 1u);
  EXPECT_EQ(put("k", Target::withRole("web")).deliveries.size(), 1u);
  const std::string message =
      errorMessageOf(ErrorCode::InvalidArgument, [&] { put("k", Target::node(b.id)); });
  EXPECT_TRUE(contains(message, "target node " + std::to_string(b.id) + " matches no node"))
      << message;
  EXPECT_EQ(queue().claimReady(a.id, 10).size(), 1u);
}

TEST_P(CommandQueueTest, ATargetMatchingNoNodeIsRefusedAndNothingIsWritten) {
  const Node a = enrolNode("a.example.org", {"web"});
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument,
                                      [&] { put("k", Target::withRole("mail")); }),
                       "target role \"mail\" matches no node"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { put("k", Target::node(a.id + 100)); }),
      "matches no node"));
  registry().remove(a.id);
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { put("k", Target::all()); }),
      "target all nodes matches no node"));
  EXPECT_EQ(countRows("commands"), 0);
  EXPECT_EQ(countRows("command_deliveries"), 0);
}

TEST_P(CommandQueueTest, InvalidKindPayloadKeyOrTargetAreNamedAndNothingIsWritten) {
  const Node a = enrolNode("a.example.org", {"web"});
  auto refused = [&](const std::string& kind, const std::string& payload, const std::string& key,
                     const Target& target) {
    return errorMessageOf(ErrorCode::InvalidArgument,
                          [&] { queue().enqueue(kind, payload, key, target); });
  };
  const Target ok = Target::node(a.id);
  for (const std::string& kind : std::vector<std::string>{"apply", "Site.apply", "site..apply", ".site", "site.", "",
                                 "site.ap ply", std::string(120, 'a') + ".bcdefghij"})
    EXPECT_TRUE(contains(refused(kind, "{}", "k", ok), "kind \"")) << kind;
  for (const std::string& payload : std::vector<std::string>{"", "{", "{\"a\":1} x", "{'a':1}", "\xff\"x\""})
    EXPECT_TRUE(contains(refused("site.apply", payload, "k", ok), "payload")) << payload;
  for (const std::string& key : std::vector<std::string>{"", "a b", "key?", std::string(129, 'k'), "ключ"})
    EXPECT_TRUE(contains(refused("site.apply", "{}", key, ok), "orderingKey")) << key;
  EXPECT_TRUE(contains(refused("site.apply", "{}", "k", Target::node(0)), "target.nodeId"));
  EXPECT_TRUE(contains(refused("site.apply", "{}", "k", Target::withRole("Web")), "target.role"));
  EXPECT_TRUE(contains(refused("site.apply", "{}", "k", Target{Target::Kind::All, 3, ""}),
                       "target.nodeId"));
  EXPECT_TRUE(contains(refused("site.apply", "{}", "k", Target{Target::Kind::Node, a.id, "web"}),
                       "target.role"));
  EXPECT_EQ(countRows("commands"), 0);
  EXPECT_EQ(countRows("command_deliveries"), 0);

  // The limits themselves are accepted.
  EXPECT_NO_THROW(queue().enqueue("a.b", "null", std::string(128, 'k'), ok));
  EXPECT_NO_THROW(queue().enqueue("a_b-c.d0", "[1,2]", "A-z_0.9:/x", ok));
}

TEST_P(CommandQueueTest, APayloadOfOneMebibyteRoundTripsAndALargerOneIsRefused) {
  const Node a = enrolNode("a.example.org");
  // A JSON string of 1 MiB, multi-byte characters included.
  std::string payload = "\"";
  while (payload.size() < CommandQueue::kMaxPayloadBytes - 5) payload += "é€x";
  while (payload.size() < CommandQueue::kMaxPayloadBytes - 1) payload += "x";
  payload += "\"";
  ASSERT_EQ(payload.size(), CommandQueue::kMaxPayloadBytes);
  const Command command = queue().enqueue("site.apply", payload, "k", Target::node(a.id));
  EXPECT_EQ(queue().find(command.id)->payloadJson, payload);
  const auto claimed = queue().claimReady(a.id, 1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].payloadJson, payload);

  const std::string message = errorMessageOf(ErrorCode::InvalidArgument, [&] {
    queue().enqueue("site.apply", payload + " ", "k", Target::node(a.id));
  });
  EXPECT_EQ(message, "payload is 1048577 bytes; the limit is 1048576");
}

TEST_P(CommandQueueTest, ClaimReturnsTheHeadOfEveryKeyInCommandOrder) {
  const Node a = enrolNode("a.example.org");
  const Command c1 = put("site:x", Target::all());
  const Command c2 = put("site:y", Target::all());
  const Command c3 = put("site:x", Target::all());
  const Command c4 = put("site:z", Target::all());

  const auto claimed = queue().claimReady(a.id, 10);
  EXPECT_EQ(commandIds(claimed), (std::vector<std::int64_t>{c1.id, c2.id, c4.id}));
  for (const Delivery& d : claimed) {
    EXPECT_EQ(d.state, DeliveryState::Running);
    EXPECT_EQ(d.attempts, 1);
    EXPECT_EQ(d.startedAt, std::optional<TimePoint>(now()));
    EXPECT_FALSE(d.nextAttemptAt.has_value());
    EXPECT_EQ(d.nodeId, a.id);
  }
  EXPECT_EQ(claimed[0].payloadJson, R"({"key":"site:x"})");
  EXPECT_EQ(claimed[0].orderingKey, "site:x");
  EXPECT_EQ(claimed[0].kind, "site.apply");
  // Running deliveries with a live lease are not handed out again; c3 waits for c1.
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  queue().reportResult(claimed[0].id, a.id, true, "ok");
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 10)), std::vector<std::int64_t>{c3.id});
}

TEST_P(CommandQueueTest, TheLimitCapsAClaimAndTheRestFollowsInTheNextOne) {
  const Node a = enrolNode("a.example.org");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(put("key" + std::to_string(i), Target::all()).id);
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 2)), (std::vector<std::int64_t>{ids[0], ids[1]}));
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 2)), (std::vector<std::int64_t>{ids[2], ids[3]}));
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 2)), (std::vector<std::int64_t>{ids[4]}));
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().claimReady(a.id, 0); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().claimReady(a.id, 1001); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().claimReady(0, 1); });
}

TEST_P(CommandQueueTest, OneKeyIsStrictlySequentialOnANode) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  const Command first = put("site:x", Target::all());
  const Command second = put("site:x", Target::all());

  auto claimedA = queue().claimReady(a.id, 10);
  ASSERT_EQ(commandIds(claimedA), std::vector<std::int64_t>{first.id});
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  // The other node's copy of the key is independent.
  auto claimedB = queue().claimReady(b.id, 10);
  ASSERT_EQ(commandIds(claimedB), std::vector<std::int64_t>{first.id});
  queue().reportResult(claimedB[0].id, b.id, true, "");
  EXPECT_EQ(commandIds(queue().claimReady(b.id, 10)), std::vector<std::int64_t>{second.id});

  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  const Delivery done = queue().reportResult(claimedA[0].id, a.id, true, "applied");
  EXPECT_EQ(done.state, DeliveryState::Done);
  EXPECT_EQ(done.output, "applied");
  EXPECT_EQ(done.finishedAt, std::optional<TimePoint>(now()));
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 10)), std::vector<std::int64_t>{second.id});
}

TEST_P(CommandQueueTest, AFailureIsRetriedAfterAnExponentialBackoff) {
  const Node a = enrolNode("a.example.org");
  const Command c = put("site:x", Target::all());
  EXPECT_EQ(queue().backoff(1), std::chrono::milliseconds(500));
  EXPECT_EQ(queue().backoff(2), std::chrono::milliseconds(1000));
  EXPECT_EQ(queue().backoff(3), std::chrono::milliseconds(1500));  // capped
  EXPECT_EQ(queue().backoff(40), std::chrono::milliseconds(1500));

  auto claimed = queue().claimReady(a.id, 1);
  ASSERT_EQ(claimed.size(), 1u);
  Delivery d = queue().reportResult(claimed[0].id, a.id, false, "nginx -t failed");
  EXPECT_EQ(d.state, DeliveryState::Pending);
  EXPECT_EQ(d.attempts, 1);
  EXPECT_EQ(d.output, "nginx -t failed");
  EXPECT_EQ(d.nextAttemptAt, std::optional<TimePoint>(now() + std::chrono::milliseconds(500)));
  EXPECT_EQ(queue().nextWakeup(a.id), d.nextAttemptAt);

  advance(std::chrono::milliseconds(499));
  EXPECT_TRUE(queue().claimReady(a.id, 1).empty());
  advance(std::chrono::milliseconds(1));
  claimed = queue().claimReady(a.id, 1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, d.id);
  EXPECT_EQ(claimed[0].attempts, 2);
  EXPECT_EQ(claimed[0].commandId, c.id);

  d = queue().reportResult(claimed[0].id, a.id, false, "still failing");
  EXPECT_EQ(d.nextAttemptAt, std::optional<TimePoint>(now() + std::chrono::milliseconds(1000)));
  advance(std::chrono::milliseconds(1000));
  claimed = queue().claimReady(a.id, 1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(queue().reportResult(claimed[0].id, a.id, true, "ok").state, DeliveryState::Done);
  EXPECT_FALSE(queue().nextWakeup(a.id).has_value());
}

TEST_P(CommandQueueTest, AfterTheLastAttemptAFailedDeliveryBlocksOnlyItsKeyOnItsNode) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  const Command x1 = put("site:x", Target::all());
  const Command x2 = put("site:x", Target::all());
  const Command y1 = put("site:y", Target::all());

  // Node b applies both x commands and y1 without trouble.
  for (int i = 0; i < 2; ++i)
    for (const Delivery& d : queue().claimReady(b.id, 10)) queue().reportResult(d.id, b.id, true, "");
  EXPECT_EQ(queue().find(x2.id)->deliveries[1].state, DeliveryState::Done);

  // On node a, x1 fails three times (maxAttempts 3).
  Delivery failed;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto claimed = queue().claimReady(a.id, 10);
    auto it = std::find_if(claimed.begin(), claimed.end(),
                           [&](const Delivery& d) { return d.commandId == x1.id; });
    ASSERT_NE(it, claimed.end()) << "attempt " << attempt;
    EXPECT_EQ(it->attempts, attempt);
    for (const Delivery& d : claimed)
      if (d.commandId != x1.id) queue().reportResult(d.id, a.id, true, "");
    failed = queue().reportResult(it->id, a.id, false, "error " + std::to_string(attempt));
    advance(std::chrono::seconds(2));
  }
  EXPECT_EQ(failed.state, DeliveryState::Failed);
  EXPECT_EQ(failed.attempts, 3);
  EXPECT_EQ(failed.output, "error 3");
  EXPECT_FALSE(failed.nextAttemptAt.has_value());

  // x2 stays behind the failed x1; y carries on.
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  EXPECT_FALSE(queue().nextWakeup(a.id).has_value());
  EXPECT_EQ(deliveryOf(y1, a.id).state, DeliveryState::Done);
  const Command y2 = put("site:y", Target::all());
  EXPECT_EQ(commandIds(queue().claimReady(a.id, 10)), std::vector<std::int64_t>{y2.id});
  EXPECT_EQ(deliveryOf(x2, a.id).state, DeliveryState::Pending);
  const CommandQueue::Depth depth = queue().depth();
  EXPECT_EQ(depth.failed, 1);
  EXPECT_EQ(depth.running, 1);  // y2 on a
  EXPECT_EQ(depth.pending, 2);  // x2 on a, y2 on b
}

TEST_P(CommandQueueTest, AnAdminRetryUnblocksAFailedKey) {
  const Node a = enrolNode("a.example.org");
  CommandQueue once(store(), QueuePolicy{1, std::chrono::milliseconds(500),
                                         std::chrono::milliseconds(500), std::chrono::seconds(60)},
                    clock());
  const Command x1 = once.enqueue("site.apply", "{}", "site:x", Target::all());
  const Command x2 = once.enqueue("site.apply", "{}", "site:x", Target::all());
  auto claimed = once.claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(once.reportResult(claimed[0].id, a.id, false, "boom").state, DeliveryState::Failed);
  EXPECT_TRUE(once.claimReady(a.id, 10).empty());

  advance(std::chrono::seconds(5));
  const Delivery retried = once.retry(claimed[0].id);
  EXPECT_EQ(retried.state, DeliveryState::Pending);
  EXPECT_EQ(retried.attempts, 0);
  EXPECT_EQ(retried.nextAttemptAt, std::optional<TimePoint>(now()));
  EXPECT_EQ(retried.output, "boom");
  claimed = once.claimReady(a.id, 10);
  ASSERT_EQ(commandIds(claimed), std::vector<std::int64_t>{x1.id});
  EXPECT_EQ(claimed[0].attempts, 1);
  once.reportResult(claimed[0].id, a.id, true, "");
  EXPECT_EQ(commandIds(once.claimReady(a.id, 10)), std::vector<std::int64_t>{x2.id});
}

TEST_P(CommandQueueTest, AnAdminSkipUnblocksAFailedKey) {
  const Node a = enrolNode("a.example.org");
  CommandQueue once(store(), QueuePolicy{1, std::chrono::milliseconds(500),
                                         std::chrono::milliseconds(500), std::chrono::seconds(60)},
                    clock());
  once.enqueue("site.apply", "{}", "site:x", Target::all());
  const Command x2 = once.enqueue("site.apply", "{}", "site:x", Target::all());
  auto claimed = once.claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  once.reportResult(claimed[0].id, a.id, false, "boom");
  const Delivery skipped = once.skip(claimed[0].id);
  EXPECT_EQ(skipped.state, DeliveryState::Skipped);
  EXPECT_EQ(skipped.finishedAt, std::optional<TimePoint>(now()));
  EXPECT_EQ(commandIds(once.claimReady(a.id, 10)), std::vector<std::int64_t>{x2.id});
  // A pending delivery can be skipped before it ever runs.
  const Command x3 = once.enqueue("site.apply", "{}", "site:x", Target::all());
  EXPECT_EQ(once.skip(deliveryOf(x3, a.id).id).state, DeliveryState::Skipped);
}

TEST_P(CommandQueueTest, RetryAndSkipInAnotherStateAreConflictsNamingIt) {
  const Node a = enrolNode("a.example.org");
  put("site:x", Target::all());
  auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  const std::int64_t id = claimed[0].id;
  EXPECT_EQ(errorMessageOf(ErrorCode::Conflict, [&] { queue().retry(id); }),
            "delivery " + std::to_string(id) +
                " is running; only failed or pending deliveries can be retried");
  EXPECT_EQ(errorMessageOf(ErrorCode::Conflict, [&] { queue().skip(id); }),
            "delivery " + std::to_string(id) +
                " is running; only pending or failed deliveries can be skipped");
  queue().reportResult(id, a.id, true, "");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { queue().retry(id); }), "is done"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { queue().skip(id); }), "is done"));
  errorMessageOf(ErrorCode::NotFound, [&] { queue().retry(id + 100); });
  errorMessageOf(ErrorCode::NotFound, [&] { queue().skip(id + 100); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().skip(-1); });
}

TEST_P(CommandQueueTest, AnExpiredLeaseRedeliversARunningDelivery) {
  const Node a = enrolNode("a.example.org");
  const Command c = put("site:x", Target::all());
  const auto first = queue().claimReady(a.id, 10);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(queue().nextWakeup(a.id), std::optional<TimePoint>(now() + std::chrono::seconds(60)));

  advance(std::chrono::seconds(60) - std::chrono::milliseconds(1));
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  advance(std::chrono::milliseconds(1));
  const auto again = queue().claimReady(a.id, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, first[0].id);
  EXPECT_EQ(again[0].commandId, c.id);
  EXPECT_EQ(again[0].attempts, 2);
  EXPECT_EQ(again[0].startedAt, std::optional<TimePoint>(now()));
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());
  // The node's (late) result for the delivery is still accepted.
  EXPECT_EQ(queue().reportResult(first[0].id, a.id, true, "").state, DeliveryState::Done);
}

TEST_P(CommandQueueTest, ARestartedNodesRunningDeliveriesAreOfferedAgainAtOnce) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  put("site:x", Target::all());
  const auto held = queue().claimReady(a.id, 10);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_EQ(queue().claimReady(b.id, 10).size(), 1u);
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty());

  EXPECT_EQ(queue().releaseRunning(a.id), 1u);
  const auto again = queue().claimReady(a.id, 10);
  ASSERT_EQ(again.size(), 1u);  // no lease to wait out
  EXPECT_EQ(again[0].id, held[0].id);
  EXPECT_EQ(again[0].attempts, 2);
  // Only that node's deliveries: b's is still running.
  EXPECT_TRUE(queue().claimReady(b.id, 10).empty());
  EXPECT_EQ(queue().releaseRunning(a.id), 1u);
  EXPECT_EQ(queue().releaseRunning(b.id), 1u);
}

TEST_P(CommandQueueTest, ARepeatedDoneReportChangesNothing) {
  const Node a = enrolNode("a.example.org");
  put("site:x", Target::all());
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  const Delivery done = queue().reportResult(claimed[0].id, a.id, true, "first");
  advance(std::chrono::seconds(3));
  const Delivery repeated = queue().reportResult(claimed[0].id, a.id, true, "second");
  EXPECT_EQ(repeated.state, DeliveryState::Done);
  EXPECT_EQ(repeated.output, "first");
  EXPECT_EQ(repeated.finishedAt, done.finishedAt);
  EXPECT_EQ(queue().reportResult(claimed[0].id, a.id, false, "late failure").state,
            DeliveryState::Done);
}

TEST_P(CommandQueueTest, AReportOnADeliveryThatIsNotRunningIsAConflict) {
  const Node a = enrolNode("a.example.org");
  put("site:x", Target::all());
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  queue().reportResult(claimed[0].id, a.id, false, "failed once");
  const std::string message = errorMessageOf(
      ErrorCode::Conflict, [&] { queue().reportResult(claimed[0].id, a.id, false, "again"); });
  EXPECT_EQ(message, "delivery " + std::to_string(claimed[0].id) +
                         " is pending, not running; its result is not accepted");
  EXPECT_EQ(deliveryOf(queue().find(claimed[0].commandId).value(), a.id).attempts, 1);
}

TEST_P(CommandQueueTest, ANodeCannotReportAnotherNodesDelivery) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  const Command c = put("site:x", Target::node(a.id));
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 1u);
  const std::string message = errorMessageOf(
      ErrorCode::NotFound, [&] { queue().reportResult(claimed[0].id, b.id, true, "mine now"); });
  EXPECT_EQ(message, "delivery " + std::to_string(claimed[0].id) + " of node " +
                         std::to_string(b.id) + " does not exist");
  EXPECT_EQ(deliveryOf(c, a.id).state, DeliveryState::Running);
  errorMessageOf(ErrorCode::NotFound,
                 [&] { queue().reportResult(claimed[0].id + 100, a.id, true, ""); });
}

TEST_P(CommandQueueTest, OutputIsCutTo64KiBAsValidUtf8) {
  const Node a = enrolNode("a.example.org");
  put("k1", Target::all());
  put("k2", Target::all());
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 2u);
  // 65534 ASCII bytes and then a 2-byte character that would pass the limit.
  const std::string longOutput = std::string(65534, 'o') + "é" + std::string(1000, 'x');
  const Delivery cut = queue().reportResult(claimed[0].id, a.id, true, longOutput);
  EXPECT_EQ(cut.output, std::string(65534, 'o'));
  const Delivery cleaned =
      queue().reportResult(claimed[1].id, a.id, true, std::string("bad \xff byte\n", 11));
  EXPECT_EQ(cleaned.output, "bad \xEF\xBF\xBD byte\n");
}

TEST_P(CommandQueueTest, RemovingANodeFailsItsOpenDeliveriesSoNothingWaitsOnIt) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  const Command running = put("k1", Target::all());
  const Command pending = put("k1", Target::all());
  ASSERT_EQ(queue().claimReady(b.id, 10).size(), 1u);
  advance(std::chrono::seconds(1));
  registry().remove(b.id);

  for (const Command& c : {running, pending}) {
    const Delivery d = deliveryOf(c, b.id);
    EXPECT_EQ(d.state, DeliveryState::Failed);
    EXPECT_EQ(d.output, "node removed");
    EXPECT_EQ(d.finishedAt, std::optional<TimePoint>(now()));
    EXPECT_EQ(deliveryOf(c, a.id).state, DeliveryState::Pending);
  }
  // The removed node's deliveries leave the depth; they can be skipped but not retried.
  const CommandQueue::Depth depth = queue().depth();
  EXPECT_EQ(depth.failed, 0);
  EXPECT_EQ(depth.pending, 2);
  const std::int64_t id = deliveryOf(pending, b.id).id;
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { queue().retry(id); }),
                       "which is removed"));
  EXPECT_EQ(queue().skip(id).state, DeliveryState::Skipped);
}

TEST_P(CommandQueueTest, ListIsNewestFirstAndFiltersByDeliveryState) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  const Command c1 = put("k1", Target::all());
  const Command c2 = put("k2", Target::node(b.id));
  const Command c3 = put("k3", Target::all(), "dns.zone.apply");

  auto all = queue().list(10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, c3.id);
  EXPECT_EQ(all[0].kind, "dns.zone.apply");
  EXPECT_EQ(all[0].target.kind, Target::Kind::All);
  EXPECT_EQ(all[1].id, c2.id);
  EXPECT_EQ(all[1].target.kind, Target::Kind::Node);
  EXPECT_EQ(all[1].target.nodeId, b.id);
  EXPECT_EQ(all[2].id, c1.id);
  ASSERT_EQ(all[2].deliveries.size(), 2u);
  EXPECT_EQ(all[2].deliveries[0].nodeId, a.id);
  EXPECT_EQ(all[2].deliveries[1].nodeId, b.id);
  EXPECT_EQ(all[2].deliveries[1].payloadJson, c1.payloadJson);
  EXPECT_EQ(queue().list(1).size(), 1u);

  // On a: c1 done, c3 running. On b: everything pending.
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(commandIds(claimed), (std::vector<std::int64_t>{c1.id, c3.id}));
  queue().reportResult(claimed[0].id, a.id, true, "");
  auto ids = [](const std::vector<Command>& commands) {
    std::vector<std::int64_t> out;
    for (const Command& c : commands) out.push_back(c.id);
    return out;
  };
  EXPECT_EQ(ids(queue().list(10, DeliveryState::Done)), std::vector<std::int64_t>{c1.id});
  EXPECT_EQ(ids(queue().list(10, DeliveryState::Running)), std::vector<std::int64_t>{c3.id});
  EXPECT_EQ(ids(queue().list(10, DeliveryState::Pending)),
            (std::vector<std::int64_t>{c3.id, c2.id, c1.id}));
  EXPECT_TRUE(queue().list(10, DeliveryState::Failed).empty());
  EXPECT_FALSE(queue().find(c3.id + 100).has_value());
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().list(0); });

  const CommandQueue::Depth depth = queue().depth();
  EXPECT_EQ(depth.pending, 3);
  EXPECT_EQ(depth.running, 1);
  EXPECT_EQ(depth.failed, 0);
}

TEST_P(CommandQueueTest, EnqueueAllWritesEveryCommandOrNone) {
  const Node web = enrolNode("web.example.org", {"web"});
  const Node db = enrolNode("db.example.org", {"db"});
  std::vector<CommandRequest> batch = {
      {"site.apply", R"({"n":1})", "site:a", Target::withRole("web")},
      {"db.user.apply", R"({"n":2})", "db:x", Target::node(db.id)},
      {"site.apply", R"({"n":3})", "site:a", Target::all()},
      {"dns.zone.apply", R"({"n":4})", "zone:b", Target::withRole("db")},
  };
  const std::vector<Command> commands = queue().enqueueAll(batch);
  ASSERT_EQ(commands.size(), 4u);
  for (std::size_t i = 1; i < commands.size(); ++i) EXPECT_GT(commands[i].id, commands[i - 1].id);
  EXPECT_EQ(commands[0].deliveries.size(), 1u);
  EXPECT_EQ(commands[0].deliveries[0].nodeId, web.id);
  EXPECT_EQ(commands[1].deliveries[0].nodeId, db.id);
  EXPECT_EQ(commands[2].deliveries.size(), 2u);
  EXPECT_EQ(commands[3].deliveries[0].nodeId, db.id);
  EXPECT_EQ(commands[3].deliveries[0].payloadJson, R"({"n":4})");
  EXPECT_EQ(queue().find(commands[2].id)->deliveries.size(), 2u);
  EXPECT_EQ(commandIds(queue().claimReady(web.id, 10)), std::vector<std::int64_t>{commands[0].id});

  // One bad command refuses the whole batch, naming its index.
  batch[2].target = Target::withRole("mail");
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().enqueueAll(batch); }),
            "commands[2]: target role \"mail\" matches no node");
  batch[2].target = Target::all();
  batch[3].payloadJson = "{";
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().enqueueAll(batch); }),
      "commands[3]: payload is not valid JSON"));
  EXPECT_EQ(countRows("commands"), 4);
  EXPECT_EQ(countRows("command_deliveries"), 5);
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().enqueueAll({}); });
}

TEST_P(CommandQueueTest, ReportResultsRecordsEveryResultOrNone) {
  const Node a = enrolNode("a.example.org");
  const Node b = enrolNode("b.example.org");
  for (const char* key : {"k1", "k2", "k3"}) put(key, Target::all());
  const auto onA = queue().claimReady(a.id, 10);
  const auto onB = queue().claimReady(b.id, 10);
  ASSERT_EQ(onA.size(), 3u);
  ASSERT_EQ(onB.size(), 3u);

  // A result for another node's delivery refuses the whole batch.
  EXPECT_EQ(errorMessageOf(ErrorCode::NotFound,
                           [&] {
                             queue().reportResults(a.id, {{onA[0].id, true, "ok"},
                                                          {onB[1].id, true, "ok"}});
                           }),
            "delivery " + std::to_string(onB[1].id) + " of node " + std::to_string(a.id) +
                " does not exist");
  EXPECT_EQ(deliveryOf(queue().find(onA[0].commandId).value(), a.id).state,
            DeliveryState::Running);
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument,
                                      [&] {
                                        queue().reportResults(
                                            a.id, {{onA[0].id, true, ""}, {onA[0].id, false, ""}});
                                      }),
                       "reported twice"));
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().reportResults(a.id, {}); });

  const auto recorded = queue().reportResults(
      a.id, {{onA[2].id, false, "no"}, {onA[0].id, true, "yes"}, {onA[1].id, true, ""}});
  ASSERT_EQ(recorded.size(), 3u);
  EXPECT_EQ(recorded[0].id, onA[2].id);
  EXPECT_EQ(recorded[0].state, DeliveryState::Pending);
  EXPECT_EQ(recorded[0].output, "no");
  EXPECT_EQ(recorded[1].state, DeliveryState::Done);
  EXPECT_EQ(recorded[1].output, "yes");
  EXPECT_EQ(recorded[2].state, DeliveryState::Done);
  // Repeating acknowledgements of done deliveries changes nothing.
  EXPECT_EQ(queue().reportResults(a.id, {{onA[0].id, false, "late"}})[0].output, "yes");
}

TEST_P(CommandQueueTest, PolicyOutOfRangeIsRefused) {
  auto refused = [&](QueuePolicy p) {
    return errorMessageOf(ErrorCode::InvalidArgument, [&] { CommandQueue q(store(), p); });
  };
  QueuePolicy p;
  p.maxAttempts = 0;
  EXPECT_TRUE(contains(refused(p), "policy.maxAttempts"));
  p = QueuePolicy{};
  p.firstBackoff = std::chrono::milliseconds(0);
  EXPECT_TRUE(contains(refused(p), "policy.firstBackoff"));
  p = QueuePolicy{};
  p.maxBackoff = std::chrono::milliseconds(100);
  EXPECT_TRUE(contains(refused(p), "policy.maxBackoff"));
  p = QueuePolicy{};
  p.lease = std::chrono::seconds(0);
  EXPECT_TRUE(contains(refused(p), "policy.lease"));
}

TEST_P(CommandQueueTest, DeliveryStatesRoundTripAsText) {
  for (DeliveryState s : {DeliveryState::Pending, DeliveryState::Running, DeliveryState::Done,
                          DeliveryState::Failed, DeliveryState::Skipped})
    EXPECT_EQ(deliveryStateFromString(toString(s)), std::optional<DeliveryState>(s));
  EXPECT_FALSE(deliveryStateFromString("DONE").has_value());
}

// A node that reconnects to a restarted manager reports what it finished; should it say
// "started" first, its running deliveries are released, and its results must still be taken,
// or the commands it applied come back to it as new work.
TEST_P(CommandQueueTest, AReleasedDeliveryTakesTheResultItsNodeReportsAfterwards) {
  const Node a = enrolNode("a.example.org");
  const Command done = put("site:x", Target::all());
  const Command failing = put("site:y", Target::all());
  const auto claimed = queue().claimReady(a.id, 10);
  ASSERT_EQ(claimed.size(), 2u);
  advance(std::chrono::seconds(1));
  EXPECT_EQ(queue().releaseRunning(a.id), 2u);

  const auto taken = queue().reportResults(
      a.id, {DeliveryResult{claimed[0].id, true, "applied"}, DeliveryResult{claimed[1].id, false, "broken"}});
  EXPECT_EQ(taken[0].state, DeliveryState::Done);
  EXPECT_EQ(taken[0].output, "applied");
  EXPECT_EQ(taken[1].state, DeliveryState::Pending);
  EXPECT_EQ(taken[1].attempts, 1) << "the released attempt is the one that failed";
  EXPECT_EQ(taken[1].nextAttemptAt, std::optional<TimePoint>(now() + std::chrono::milliseconds(500)));
  EXPECT_TRUE(queue().claimReady(a.id, 10).empty()) << "nothing is offered again as new work";
  EXPECT_EQ(deliveryOf(done, a.id).state, DeliveryState::Done);

  // Once that attempt has a result, a second one for it is refused as before.
  const std::string message = errorMessageOf(
      ErrorCode::Conflict, [&] { queue().reportResult(claimed[1].id, a.id, true, "again"); });
  EXPECT_TRUE(contains(message, "is pending, not running")) << message;
  EXPECT_EQ(deliveryOf(failing, a.id).attempts, 1);
  // A pending delivery never claimed takes no result either.
  const Command fresh = put("site:z", Target::all());
  errorMessageOf(ErrorCode::Conflict,
                 [&] { queue().reportResult(deliveryOf(fresh, a.id).id, a.id, true, "never claimed"); });
}

TEST_P(CommandQueueTest, AnEnqueueRepeatedWithItsIdempotencyKeyReturnsTheFirstCommands) {
  enrolNode("a.example.org");
  enrolNode("b.example.org");
  const CommandRequest request{"site.apply", R"({"site":"a"})", "site:a", Target::all()};
  const auto first = queue().enqueueOnce("client-7f3a", {request}, false);
  EXPECT_FALSE(first.replayed);
  ASSERT_EQ(first.commands.size(), 1u);
  EXPECT_EQ(first.commands[0].deliveries.size(), 2u);

  advance(std::chrono::hours(23));
  const auto again = queue().enqueueOnce("client-7f3a", {request}, false);
  EXPECT_TRUE(again.replayed);
  ASSERT_EQ(again.commands.size(), 1u);
  EXPECT_EQ(again.commands[0].id, first.commands[0].id);
  EXPECT_EQ(again.commands[0].deliveries.size(), 2u);
  EXPECT_EQ(countRows("commands"), 1);
  EXPECT_EQ(countRows("command_deliveries"), 2);

  // A batch under its own key, repeated: the same commands, in order.
  const CommandRequest other{"site.apply", R"({"site":"b"})", "site:b", Target::all()};
  const auto batch = queue().enqueueOnce("client-batch", {request, other}, true);
  const auto batchAgain = queue().enqueueOnce("client-batch", {request, other}, true);
  EXPECT_TRUE(batchAgain.replayed);
  ASSERT_EQ(batchAgain.commands.size(), 2u);
  EXPECT_EQ(batchAgain.commands[0].id, batch.commands[0].id);
  EXPECT_EQ(batchAgain.commands[1].id, batch.commands[1].id);
  EXPECT_EQ(countRows("commands"), 3);
}

TEST_P(CommandQueueTest, AnIdempotencyKeyUsedForAnotherRequestIsRefusedNamingIt) {
  enrolNode("a.example.org");
  const CommandRequest request{"site.apply", R"({"site":"a"})", "site:a", Target::all()};
  queue().enqueueOnce("key-1", {request}, false);
  CommandRequest changed = request;
  changed.payloadJson = R"({"site":"b"})";
  const std::string message =
      errorMessageOf(ErrorCode::Conflict, [&] { queue().enqueueOnce("key-1", {changed}, false); });
  EXPECT_TRUE(contains(message, "idempotency key \"key-1\" was used for a different request")) << message;
  // The same command as a batch of one is another request too.
  errorMessageOf(ErrorCode::Conflict, [&] { queue().enqueueOnce("key-1", {request}, true); });
  EXPECT_EQ(countRows("commands"), 1);

  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument,
                                      [&] { queue().enqueueOnce("has space", {request}, false); }),
                       "idempotency key \"has space\" is invalid"));
  errorMessageOf(ErrorCode::InvalidArgument, [&] { queue().enqueueOnce("", {request}, false); });
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { queue().enqueueOnce(std::string(129, 'k'), {request}, false); });
  EXPECT_EQ(countRows("commands"), 1);
}

TEST_P(CommandQueueTest, IdempotencyKeysExpireAfterTheRetentionAndArePruned) {
  enrolNode("a.example.org");
  const CommandRequest request{"site.apply", R"({"site":"a"})", "site:a", Target::all()};
  const auto first = queue().enqueueOnce("old-key", {request}, false);
  queue().enqueueOnce("other-old-key", {request}, false);
  EXPECT_EQ(countRows("enqueue_idempotency_keys"), 2);
  advance(std::chrono::hours(24) + std::chrono::minutes(1));
  // Past the retention the key is free again: a new command.
  const auto later = queue().enqueueOnce("old-key", {request}, false);
  EXPECT_FALSE(later.replayed);
  EXPECT_NE(later.commands[0].id, first.commands[0].id);
  // And the expired rows are gone: the other key was pruned, old-key holds the new command.
  EXPECT_EQ(countRows("enqueue_idempotency_keys"), 1);
  EXPECT_EQ(queue().enqueueOnce("old-key", {request}, false).commands[0].id, later.commands[0].id);
}

TEST_P(CommandQueueTest, ConcurrentEnqueuesWithOneIdempotencyKeyEnqueueOnce) {
  enrolNode("a.example.org");
  const CommandRequest request{"site.apply", R"({"site":"a"})", "site:a", Target::all()};
  for (int round = 0; round < 5; ++round) {
    const std::string key = "race-" + std::to_string(round);
    constexpr int kClients = 4;
    std::vector<std::int64_t> ids(kClients, 0);
    std::vector<std::string> errors(kClients);
    std::atomic<int> ready{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
      clients.emplace_back([&, i] {
        ++ready;
        while (ready < kClients) std::this_thread::yield();
        // Each client retries a refusal for lock contention, as a client would after a 409.
        for (int attempt = 0; attempt < 20; ++attempt) {
          try {
            ids[i] = queue().enqueueOnce(key, {request}, false).commands.at(0).id;
            errors[i].clear();
            return;
          } catch (const std::exception& e) {
            errors[i] = e.what();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }
      });
    for (auto& t : clients) t.join();
    for (int i = 0; i < kClients; ++i) {
      EXPECT_EQ(errors[i], "") << "client " << i;
      EXPECT_EQ(ids[i], ids[0]) << "client " << i << " of round " << round;
    }
  }
  EXPECT_EQ(countRows("commands"), 5);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(CommandQueueTest);

}  // namespace
}  // namespace shoal::cluster::test
