#include <Poco/Data/Session.h>

#include "ClusterTest.hpp"
#include "cluster/Secrets.hpp"

using Poco::Data::Keywords::into;

namespace shoal::cluster::test {
namespace {

class NodeRegistryTest : public ClusterTest {};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_P(NodeRegistryTest, AValidTokenEnrolsANodeOnceAndASecondUseIsAConflict) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::minutes(10));
  EXPECT_EQ(token.expiresAt, now() + std::chrono::minutes(10));

  const Enrolment first =
      registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion);
  EXPECT_GT(first.node.id, 0);
  EXPECT_EQ(first.node.hostname, "web1.example.org");
  EXPECT_EQ(first.node.address, "192.0.2.10");
  EXPECT_EQ(first.node.osId, "debian");
  EXPECT_EQ(first.node.osVersion, "12");
  EXPECT_EQ(first.node.arch, "x86_64");
  EXPECT_EQ(first.node.shoalVersion, "0.1.0");
  EXPECT_EQ(first.node.state, NodeState::Online);
  EXPECT_TRUE(first.node.roles.empty());
  EXPECT_EQ(first.node.joinedAt, now());
  EXPECT_EQ(first.node.lastSeen, std::optional<TimePoint>(now()));
  EXPECT_EQ(first.credential.size(), 43u);

  const std::string message = errorMessageOf(ErrorCode::Conflict, [&] {
    registry().enrol(token.secret, platform("web2.example.org"), kManagerVersion);
  });
  EXPECT_TRUE(contains(message, "already used")) << message;
  EXPECT_TRUE(contains(message, "node " + std::to_string(first.node.id))) << message;
  EXPECT_EQ(registry().list().size(), 1u);
}

TEST_P(NodeRegistryTest, AnExpiredTokenIsRefusedAndEnrolsNothing) {
  const JoinTokenIssue early = registry().createJoinToken(std::chrono::seconds(60));
  const JoinTokenIssue late = registry().createJoinToken(std::chrono::seconds(60));
  advance(std::chrono::milliseconds(59999));
  EXPECT_NO_THROW(registry().enrol(early.secret, platform("web1.example.org"), kManagerVersion));
  advance(std::chrono::milliseconds(1));
  const std::string message = errorMessageOf(ErrorCode::Failed, [&] {
    registry().enrol(late.secret, platform("web2.example.org"), kManagerVersion);
  });
  EXPECT_EQ(message, "join token expired at 2024-05-01T12:01:00.000Z; create a new one");
  EXPECT_EQ(countRows("nodes"), 1);
}

TEST_P(NodeRegistryTest, AnUnknownTokenIsNotFound) {
  const std::string message = errorMessageOf(ErrorCode::NotFound, [&] {
    registry().enrol(randomSecret(), platform("web1.example.org"), kManagerVersion);
  });
  EXPECT_TRUE(contains(message, "join token is unknown")) << message;
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { registry().enrol("", platform("web1.example.org"), kManagerVersion); });
  EXPECT_EQ(countRows("nodes"), 0);
}

TEST_P(NodeRegistryTest, CheckJoinTokenRefusesLikeEnrolWithoutConsumingTheToken) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::seconds(60));
  EXPECT_NO_THROW(registry().checkJoinToken(token.secret));
  EXPECT_NO_THROW(registry().checkJoinToken(token.secret));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::NotFound,
                                      [&] { registry().checkJoinToken(randomSecret()); }),
                       "join token is unknown"));
  errorMessageOf(ErrorCode::NotFound, [&] { registry().checkJoinToken(""); });
  registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion);
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::Conflict, [&] { registry().checkJoinToken(token.secret); }),
      "already used"));
  const JoinTokenIssue later = registry().createJoinToken(std::chrono::seconds(60));
  advance(std::chrono::seconds(60));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::Failed, [&] { registry().checkJoinToken(later.secret); }),
      "expired"));
}

TEST_P(NodeRegistryTest, AnotherOsMajorVersionIsRefusedAndTheTokenIsNotConsumed) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  PlatformReport report = platform("web1.example.org");
  report.osVersion = "11";
  const std::string message = errorMessageOf(
      ErrorCode::InvalidArgument, [&] { registry().enrol(token.secret, report, kManagerVersion); });
  EXPECT_TRUE(contains(message, "node reports os debian 11 but the cluster runs debian 12"))
      << message;
  EXPECT_EQ(countRows("nodes"), 0);

  // The refusal consumed nothing: the same token enrols a matching node.
  report.osVersion = "12.5";  // another minor release of the same major version is fine
  const Enrolment enrolment = registry().enrol(token.secret, report, kManagerVersion);
  EXPECT_EQ(enrolment.node.osVersion, "12.5");
}

TEST_P(NodeRegistryTest, AnotherOsIsRefused) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  PlatformReport report = platform("web1.example.org");
  report.osId = "ubuntu";
  report.osVersion = "22.04";
  const std::string message = errorMessageOf(
      ErrorCode::InvalidArgument, [&] { registry().enrol(token.secret, report, kManagerVersion); });
  EXPECT_TRUE(contains(message, "node reports os ubuntu 22.04 but the cluster runs debian 12"))
      << message;
  EXPECT_EQ(countRows("nodes"), 0);
}

TEST_P(NodeRegistryTest, AnotherArchitectureIsRefusedAndTheTokenIsNotConsumed) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  PlatformReport report = platform("arm1.example.org");
  report.arch = "aarch64";
  const std::string message = errorMessageOf(
      ErrorCode::InvalidArgument, [&] { registry().enrol(token.secret, report, kManagerVersion); });
  EXPECT_EQ(message, "node reports architecture aarch64 but the cluster runs x86_64");
  EXPECT_EQ(countRows("nodes"), 0);
  EXPECT_NO_THROW(
      registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion));
}

TEST_P(NodeRegistryTest, AShoalVersionWithAnotherMajorMinorIsRefused) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  PlatformReport report = platform("web1.example.org");
  report.shoalVersion = "0.2.0";
  const std::string message = errorMessageOf(
      ErrorCode::InvalidArgument, [&] { registry().enrol(token.secret, report, kManagerVersion); });
  EXPECT_EQ(message,
            "node runs shoal 0.2.0 but the manager runs 0.1.0; nodes need the manager's "
            "major.minor version (0.1)");
  EXPECT_EQ(countRows("nodes"), 0);

  report.shoalVersion = "0.1.7-rc1";  // another patch release is compatible
  EXPECT_EQ(registry().enrol(token.secret, report, kManagerVersion).node.shoalVersion,
            "0.1.7-rc1");
}

TEST_P(NodeRegistryTest, MalformedReportFieldsAreNamed) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  auto refused = [&](auto change) {
    PlatformReport report = platform("web1.example.org");
    std::string managerVersion = kManagerVersion;
    change(report, managerVersion);
    return errorMessageOf(ErrorCode::InvalidArgument,
                          [&] { registry().enrol(token.secret, report, managerVersion); });
  };
  EXPECT_TRUE(contains(refused([](PlatformReport& r, std::string&) { r.hostname = "web 1"; }),
                       "hostname \"web 1\" is invalid"));
  EXPECT_TRUE(contains(refused([](PlatformReport& r, std::string&) { r.hostname = ""; }),
                       "hostname"));
  EXPECT_TRUE(
      contains(refused([](PlatformReport& r, std::string&) { r.osId = "Debian"; }), "osId"));
  EXPECT_TRUE(contains(refused([](PlatformReport& r, std::string&) { r.osVersion = "12 beta"; }),
                       "osVersion"));
  EXPECT_TRUE(
      contains(refused([](PlatformReport& r, std::string&) { r.arch = "x86-64"; }), "arch"));
  EXPECT_TRUE(contains(refused([](PlatformReport& r, std::string&) { r.shoalVersion = "1"; }),
                       "shoalVersion \"1\" is invalid"));
  EXPECT_TRUE(contains(refused([](PlatformReport& r, std::string&) { r.address = ""; }),
                       "address"));
  EXPECT_TRUE(contains(refused([](PlatformReport&, std::string& m) { m = "latest"; }),
                       "managerVersion"));
  EXPECT_EQ(countRows("nodes"), 0);
  EXPECT_NO_THROW(registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion));
}

TEST_P(NodeRegistryTest, TheClusterPlatformIsRecordedOnceAndKept) {
  // SetUp recorded debian 12 x86_64; a later manager on another platform changes nothing.
  PlatformReport other{"", "debian", "13", "aarch64", "", ""};
  const PlatformReport recorded = registry().ensureClusterPlatform(other);
  EXPECT_EQ(recorded.osId, "debian");
  EXPECT_EQ(recorded.osVersion, "12");
  EXPECT_EQ(recorded.arch, "x86_64");
  EXPECT_EQ(store().meta("platform.os_version"), std::optional<std::string>("12"));
  other.arch = "";
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument,
                                      [&] { registry().ensureClusterPlatform(other); }),
                       "manager.arch"));
}

TEST_P(NodeRegistryTest, EnrolmentNeedsARecordedClusterPlatform) {
  auto session = store().session();
  session << "DELETE FROM cluster_meta", Poco::Data::Keywords::now;
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  const std::string message = errorMessageOf(ErrorCode::Failed, [&] {
    registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion);
  });
  EXPECT_TRUE(contains(message, "cluster platform is not recorded")) << message;
  EXPECT_EQ(countRows("nodes"), 0);
}

TEST_P(NodeRegistryTest, JoinTokenTtlMustBeBetweenOneMinuteAndSevenDays) {
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument,
                           [&] { registry().createJoinToken(std::chrono::seconds(59)); }),
            "ttl 59 s is out of range: use 60 s to 7 days (604800 s)");
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { registry().createJoinToken(std::chrono::seconds(604801)); });
  EXPECT_NO_THROW(registry().createJoinToken(std::chrono::seconds(604800)));
  EXPECT_EQ(countRows("join_tokens"), 1);
}

TEST_P(NodeRegistryTest, ACredentialAuthenticatesItsNodeUntilTheNodeIsRemoved) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  const Enrolment enrolment =
      registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion);

  const auto node = registry().authenticate(enrolment.credential);
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->id, enrolment.node.id);
  EXPECT_FALSE(registry().authenticate(token.secret).has_value());
  EXPECT_FALSE(registry().authenticate(randomSecret()).has_value());
  EXPECT_FALSE(registry().authenticate("").has_value());
  EXPECT_FALSE(registry().authenticate(enrolment.credential + "x").has_value());

  registry().remove(enrolment.node.id);
  EXPECT_FALSE(registry().authenticate(enrolment.credential).has_value());
  EXPECT_EQ(registry().find(enrolment.node.id)->state, NodeState::Removed);
  EXPECT_NO_THROW(registry().remove(enrolment.node.id));  // again: nothing to do
  errorMessageOf(ErrorCode::NotFound, [&] { registry().remove(enrolment.node.id + 100); });
}

TEST_P(NodeRegistryTest, SecretsAreStoredOnlyAsHashes) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  const Enrolment enrolment =
      registry().enrol(token.secret, platform("web1.example.org"), kManagerVersion);
  auto session = store().session();
  std::string tokenHash, credentialHash;
  session << "SELECT token_hash FROM join_tokens", into(tokenHash), Poco::Data::Keywords::now;
  session << "SELECT credential_hash FROM nodes", into(credentialHash), Poco::Data::Keywords::now;
  EXPECT_EQ(tokenHash, hashSecret(token.secret));
  EXPECT_EQ(credentialHash, hashSecret(enrolment.credential));
}

TEST_P(NodeRegistryTest, HeartbeatRecordsLastSeenAndBringsAnOfflineNodeBackOnline) {
  const Node node = enrolNode("web1.example.org");
  advance(std::chrono::seconds(5));
  registry().heartbeat(node.id);
  EXPECT_EQ(registry().find(node.id)->lastSeen, std::optional<TimePoint>(now()));

  advance(std::chrono::seconds(31));
  EXPECT_EQ(registry().markOffline(std::chrono::seconds(30)), std::vector<std::int64_t>{node.id});
  EXPECT_EQ(registry().find(node.id)->state, NodeState::Offline);
  EXPECT_TRUE(registry().markOffline(std::chrono::seconds(30)).empty());

  registry().heartbeat(node.id);
  EXPECT_EQ(registry().find(node.id)->state, NodeState::Online);

  errorMessageOf(ErrorCode::NotFound, [&] { registry().heartbeat(node.id + 100); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { registry().heartbeat(0); });
  registry().remove(node.id);
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { registry().heartbeat(node.id); }),
                       "is removed"));
}

TEST_P(NodeRegistryTest, MarkOfflineTakesOnlyOnlineNodesSilentLongerThanTheThreshold) {
  const Node quiet = enrolNode("quiet.example.org");
  const Node draining = enrolNode("draining.example.org");
  registry().setDraining(draining.id, true);
  advance(std::chrono::seconds(20));
  const Node recent = enrolNode("recent.example.org");
  advance(std::chrono::seconds(20));

  EXPECT_TRUE(registry().markOffline(std::chrono::seconds(40)).empty());  // exactly 40 s: not yet
  EXPECT_EQ(registry().markOffline(std::chrono::seconds(30)), std::vector<std::int64_t>{quiet.id});
  EXPECT_EQ(registry().find(draining.id)->state, NodeState::Draining);
  EXPECT_EQ(registry().find(recent.id)->state, NodeState::Online);
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { registry().markOffline(std::chrono::seconds(0)); });
}

TEST_P(NodeRegistryTest, SetRolesDeduplicatesSortsAndValidates) {
  const Node node = enrolNode("web1.example.org");
  const Node updated = registry().setRoles(node.id, {"web", "mail", "web", "db-primary"});
  EXPECT_EQ(updated.roles, (std::vector<std::string>{"db-primary", "mail", "web"}));
  EXPECT_EQ(registry().find(node.id)->roles, updated.roles);

  for (const std::string& bad : std::vector<std::string>{"Web", "", "1web", "web role", "-web",
                                std::string("a") + std::string(32, 'b')}) {
    const std::string message = errorMessageOf(ErrorCode::InvalidArgument,
                                               [&] { registry().setRoles(node.id, {"dns", bad}); });
    EXPECT_TRUE(contains(message, "role \"")) << message;
  }
  EXPECT_EQ(registry().find(node.id)->roles, updated.roles);  // unchanged by the refusals

  EXPECT_TRUE(registry().setRoles(node.id, {}).roles.empty());
  errorMessageOf(ErrorCode::NotFound, [&] { registry().setRoles(node.id + 100, {"web"}); });
  registry().remove(node.id);
  errorMessageOf(ErrorCode::Conflict, [&] { registry().setRoles(node.id, {"web"}); });
}

TEST_P(NodeRegistryTest, DrainingIsSetAndCleared) {
  const Node node = enrolNode("web1.example.org");
  EXPECT_EQ(registry().setDraining(node.id, true).state, NodeState::Draining);
  EXPECT_EQ(registry().setDraining(node.id, true).state, NodeState::Draining);
  EXPECT_EQ(registry().setDraining(node.id, false).state, NodeState::Online);
  EXPECT_EQ(registry().setDraining(node.id, false).state, NodeState::Online);
  registry().remove(node.id);
  errorMessageOf(ErrorCode::Conflict, [&] { registry().setDraining(node.id, true); });
}

TEST_P(NodeRegistryTest, ListOmitsRemovedNodesUnlessAsked) {
  const Node a = enrolNode("a.example.org", {"web"});
  const Node b = enrolNode("b.example.org");
  registry().remove(b.id);
  const auto live = registry().list();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].id, a.id);
  EXPECT_EQ(live[0].roles, std::vector<std::string>{"web"});
  const auto all = registry().list(true);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].state, NodeState::Removed);
  EXPECT_FALSE(registry().find(b.id + 100).has_value());
}

TEST_P(NodeRegistryTest, NodeStatesRoundTripAsText) {
  for (NodeState s : {NodeState::Online, NodeState::Offline, NodeState::Draining,
                      NodeState::Removed})
    EXPECT_EQ(nodeStateFromString(toString(s)), std::optional<NodeState>(s));
  EXPECT_FALSE(nodeStateFromString("Online").has_value());
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(NodeRegistryTest);

}  // namespace
}  // namespace shoal::cluster::test
