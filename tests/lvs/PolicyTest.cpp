// Balancer policies: what is accepted, what is refused and why, and the table they make.
#include <gtest/gtest.h>

#include "Policy.hpp"

using namespace shoal::lvs;

namespace {

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "(accepted)";
}

const char* kWeb = R"({"service": "http", "address": "192.0.2.10", "port": 80, "scheduler": "rr",
  "members": [{"address": "10.0.0.11", "port": 80, "weight": 2}, {"address": "10.0.0.12", "port": 80}]})";

}  // namespace

TEST(PolicyTest, DefaultsFollowIpvsadmAndTheIssue) {
  auto p = parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 80})");
  EXPECT_EQ(p.key(), "tcp:192.0.2.10:80");
  EXPECT_EQ(p.scheduler, "wlc");
  EXPECT_EQ(p.persistenceSeconds, 300u);
  EXPECT_EQ(p.forwarding, Forwarding::DirectRouting);
  EXPECT_EQ(p.family, 2);
}

TEST(PolicyTest, RoundTripsThroughJson) {
  auto p = parsePolicy(kWeb);
  auto again = parsePolicy(toJson(p));
  EXPECT_EQ(toJson(again), toJson(p));
  ASSERT_EQ(again.members.size(), 2u);
  EXPECT_EQ(again.members[0].weight, 2u);
  EXPECT_EQ(again.members[1].weight, 1u);
}

TEST(PolicyTest, EveryFieldIsValidatedWithAMessageNamingIt) {
  auto base = [](const std::string& extra) {
    return R"({"service": "http", "address": "192.0.2.10", "port": 80)" + extra + "}";
  };
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "scheduler": "fastest")")); }).find("'scheduler' 'fastest' is not one of rr"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(R"({"service": "http", "address": "192.0.2.300", "port": 80})"); }).find("'address'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 0})"); }).find("'port'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 70000})"); }).find("'port' must be an integer from 1 to 65535"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(R"({"address": "192.0.2.10", "port": 80})"); }).find("'service' is required"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(R"({"service": "HTTP!", "address": "192.0.2.10", "port": 80})"); }).find("'service' 'HTTP!'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "persistence": -1)")); }).find("'persistence'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "netmask": "255.0.255.0")")); }).find("'netmask'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "forwarding": "magic")")); }).find("'forwarding' must be dr, nat or tun"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "colour": "blue")")); }).find("unknown field 'colour'"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "members": [{"address": "10.0.0.11", "port": 80, "weight": 70000}])")); })
                .find("members[0]: 'weight' must be an integer from 0 to 65535"),
            std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "members": [{"address": "2001:db8::1", "port": 80}])")); }).find("address family"),
            std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "members": [{"address": "10.0.0.11", "port": 80}, {"address": "10.0.0.11", "port": 80}])")); })
                .find("listed twice"),
            std::string::npos);
  // Only NAT can send to another port than the virtual service's.
  EXPECT_NE(refusal([&] { parsePolicy(base(R"(, "members": [{"address": "10.0.0.11", "port": 8080}])")); }).find("use forwarding nat"),
            std::string::npos);
  EXPECT_EQ(refusal([&] { parsePolicy(base(R"(, "forwarding": "nat", "members": [{"address": "10.0.0.11", "port": 8080}])")); }),
            "(accepted)");
  EXPECT_NE(refusal([&] { parsePolicy("not json"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal([&] { parsePolicy("[1,2]"); }).find("must be a JSON object"), std::string::npos);
}

TEST(PolicyTest, FirewallMarkGroupsCoverSeveralListeners) {
  auto p = parsePolicy(R"({"service": "http", "fwmark": 7, "listeners": ["192.0.2.10:80", "192.0.2.10:443"],
                           "members": [{"address": "10.0.0.11", "port": 0}]})");
  EXPECT_EQ(p.key(), "fwm:7");
  ASSERT_EQ(p.listeners.size(), 2u);
  EXPECT_EQ(p.listeners[1].port, 443);
  EXPECT_NE(refusal([] { parsePolicy(R"({"service": "http", "fwmark": 7})"); }).find("'listeners'"), std::string::npos);
  EXPECT_NE(refusal([] { parsePolicy(R"({"service": "http", "fwmark": 7, "address": "192.0.2.10", "port": 80, "listeners": ["192.0.2.10:80"]})"); })
                .find("not 'address' and 'port'"),
            std::string::npos);
}

TEST(PolicyTest, Ipv6ServicesUsePrefixLengthsForPersistence) {
  auto p = parsePolicy(R"({"service": "http", "address": "2001:db8::10", "port": 80, "netmask": "64",
                           "members": [{"address": "2001:db8::11", "port": 80}]})");
  EXPECT_EQ(p.key(), "tcp:[2001:db8::10]:80");
  EXPECT_EQ(p.family, 10);
  EXPECT_NE(refusal([] { parsePolicy(R"({"service": "http", "address": "2001:db8::10", "port": 80, "netmask": "255.255.255.0"})"); })
                .find("IPv6 prefix"),
            std::string::npos);
}

TEST(PolicyTest, EditsKeepTheIdentityAndRevalidate) {
  auto p = parsePolicy(kWeb);
  auto edited = editPolicy(p, R"({"scheduler": "wlc", "persistence": 0})");
  EXPECT_EQ(edited.scheduler, "wlc");
  EXPECT_EQ(edited.persistenceSeconds, 0u);
  EXPECT_EQ(edited.members.size(), 2u);
  EXPECT_NE(refusal([&] { editPolicy(p, R"({"port": 81})"); }).find("cannot be edited"), std::string::npos);
  EXPECT_NE(refusal([&] { editPolicy(p, R"({"scheduler": "nope"})"); }).find("'scheduler'"), std::string::npos);
}

TEST(PolicyTest, MembersAreCheckedAgainstTheirService) {
  auto p = parsePolicy(kWeb);
  auto m = parseMember(R"({"address": "10.0.0.13", "port": 80, "weight": 5, "forwarding": "nat"})", p);
  EXPECT_EQ(m.key(), "10.0.0.13:80");
  EXPECT_EQ(m.forwarding, Forwarding::Nat);
  EXPECT_NE(refusal([&] { parseMember(R"({"address": "10.0.0.11", "port": 80})", p); }).find("listed twice"), std::string::npos);
}

TEST(PolicyTest, KeysAreNormalizedOrRefused) {
  EXPECT_EQ(normalizedKey("tcp:192.0.2.10:80"), "tcp:192.0.2.10:80");
  EXPECT_EQ(normalizedKey("fwm:007"), "fwm:7");
  EXPECT_EQ(normalizedKey("tcp:[2001:db8::10]:80"), "tcp:[2001:db8::10]:80");
  EXPECT_NE(refusal([] { normalizedKey("http:192.0.2.10:80"); }).find("tcp:ADDRESS:PORT"), std::string::npos);
  EXPECT_NE(refusal([] { normalizedKey("fwm:0"); }).find("mark 1-4294967295"), std::string::npos);
}

TEST(PolicyTest, MembersThatDoNotServeGetWeightZero) {
  auto p = parsePolicy(kWeb);
  ServingMap serving{{{"10.0.0.11", "http"}, false}, {{"10.0.0.12", "smtp"}, false}};
  auto table = desiredTable({p}, serving);
  ASSERT_EQ(table.size(), 1u);
  ASSERT_EQ(table[0].reals.size(), 2u);
  EXPECT_EQ(table[0].reals[0].weight, 0u);  // http on .11 does not serve
  EXPECT_EQ(table[0].reals[1].weight, 1u);  // smtp's health says nothing about http
  EXPECT_EQ(table[0].scheduler, "rr");
  EXPECT_EQ(table[0].key(), "tcp:192.0.2.10:80");
}

TEST(PolicyTest, TheApplyPayloadRoundTripsAndIsValidatedLikeTheApi) {
  auto p = parsePolicy(kWeb);
  auto table = desiredTable({p}, {});
  auto back = tableFromJson(tableToJson(table));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(tableToJson(back), tableToJson(table));
  EXPECT_NE(refusal([] { tableFromJson(R"({"services": [{"protocol": "tcp", "address": "192.0.2.10", "port": 80, "scheduler": "bogus", "reals": []}]})"); })
                .find("services[0]: 'scheduler'"),
            std::string::npos);
  EXPECT_NE(refusal([] { tableFromJson(R"({"nothing": 1})"); }).find("needs 'services'"), std::string::npos);
}

// Passive FTP opens its data connection to another port of the same group; only
// persistence sends it to the node that opened it.
TEST(PolicyTest, AFirewallMarkGroupCarryingFtpNeedsPersistence) {
  const std::string byPort =
      R"({"service": "files", "fwmark": 7, "persistence": 0,
          "listeners": ["192.0.2.10:21", "192.0.2.10:30000"], "members": [{"address": "10.0.0.11"}]})";
  auto why = refusal([&] { parsePolicy(byPort); });
  EXPECT_NE(why.find("carries FTP (a listener on port 21)"), std::string::npos) << why;
  EXPECT_NE(why.find("'persistence'"), std::string::npos) << why;
  EXPECT_NE(why.find("lands on another node"), std::string::npos) << why;

  const std::string byService =
      R"({"service": "ftp", "fwmark": 8, "persistence": 0, "listeners": ["192.0.2.10:2121"]})";
  why = refusal([&] { parsePolicy(byService); });
  EXPECT_NE(why.find("carries FTP (service 'ftp')"), std::string::npos) << why;

  // With persistence it is accepted; an edit back to 0 is refused.
  auto kept = parsePolicy(R"({"service": "ftp", "fwmark": 9, "persistence": 300,
                              "listeners": ["192.0.2.10:21", "192.0.2.10:30000"]})");
  why = refusal([&] { editPolicy(kept, R"({"persistence": 0})"); });
  EXPECT_NE(why.find("carries FTP"), std::string::npos) << why;
  // Neither a plain FTP virtual service nor a non-FTP group is concerned.
  EXPECT_EQ(refusal([] { parsePolicy(R"({"service": "ftp", "address": "192.0.2.10", "port": 21, "persistence": 0})"); }),
            "(accepted)");
  EXPECT_EQ(refusal([] { parsePolicy(R"({"service": "http", "fwmark": 1, "persistence": 0,
                                         "listeners": ["192.0.2.10:80", "192.0.2.10:443"]})"); }),
            "(accepted)");

  // A policy stored before the rule still loads, and a director still takes its table: one
  // refused policy must not stop the balancer.
  Policy old = kept;
  old.persistenceSeconds = 0;
  EXPECT_EQ(parseStoredPolicy(toJson(old)).persistenceSeconds, 0u);
  EXPECT_EQ(tableFromJson(tableToJson(desiredTable({old}, {}))).size(), 1u);
}
