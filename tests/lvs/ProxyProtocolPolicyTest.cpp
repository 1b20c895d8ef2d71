// The "proxy_protocol" field of a balancer policy: accepted values, refusals, and that it
// survives every representation on its way to the dataplane (stored JSON, the lvs.apply
// table and back).
#include <gtest/gtest.h>

#include <functional>

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

// Members name the port where nginx expects the header (8080), not the virtual service's.
const char* kProxiedWeb = R"({"service": "http", "address": "192.0.2.10", "port": 80, "proxy_protocol": "v2",
  "members": [{"address": "10.0.0.11", "port": 8080}, {"address": "10.0.0.12", "port": 8080}]})";

}  // namespace

TEST(ProxyProtocolPolicy, AbsentMeansNoneAndIsNotWrittenBack) {
  auto p = parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 80})");
  EXPECT_EQ(p.proxyProtocol, ProxyProtocol::None);
  EXPECT_EQ(toJson(p).find("proxy_protocol"), std::string::npos);
}

TEST(ProxyProtocolPolicy, V2TravelsThroughStoreAndTableToTheDataplane) {
  auto p = parsePolicy(kProxiedWeb);
  EXPECT_EQ(p.proxyProtocol, ProxyProtocol::V2);
  auto stored = parsePolicy(toJson(p));
  EXPECT_EQ(stored.proxyProtocol, ProxyProtocol::V2);
  auto table = desiredTable({stored}, {});
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].proxyProtocol, ProxyProtocol::V2);
  EXPECT_EQ(table[0].reals[0].port, 8080);
  auto carried = tableFromJson(tableToJson(table));
  ASSERT_EQ(carried.size(), 1u);
  EXPECT_EQ(carried[0].proxyProtocol, ProxyProtocol::V2);
  EXPECT_EQ(tableFromJson(tableToJson(desiredTable({parsePolicy(R"({"service": "http", "address": "192.0.2.10",
      "port": 80, "members": [{"address": "10.0.0.11", "port": 80}]})")}, {})))[0].proxyProtocol,
            ProxyProtocol::None);
}

TEST(ProxyProtocolPolicy, AnEditTurnsItOnAndOff) {
  auto p = parsePolicy(R"({"service": "smtp", "address": "192.0.2.10", "port": 25})");
  p = editPolicy(p, R"({"proxy_protocol": "v2"})");
  EXPECT_EQ(p.proxyProtocol, ProxyProtocol::V2);
  p = editPolicy(p, R"({"proxy_protocol": "none"})");
  EXPECT_EQ(p.proxyProtocol, ProxyProtocol::None);
}

TEST(ProxyProtocolPolicy, BadValuesAreRefusedNamingTheField) {
  EXPECT_EQ(refusal([] { parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 80, "proxy_protocol": "v1"})"); }),
            "'proxy_protocol' must be \"v2\" (PROXY protocol version 2) or \"none\", not 'v1'");
  EXPECT_EQ(refusal([] { parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 80, "proxy_protocol": true})"); }),
            "'proxy_protocol' must be \"v2\" (PROXY protocol version 2) or \"none\", not true");
  EXPECT_EQ(refusal([] { parsePolicy(R"({"service": "dns", "protocol": "udp", "address": "192.0.2.10", "port": 53, "proxy_protocol": "v2"})"); }),
            "'proxy_protocol' is written at the start of a TCP connection; a udp service cannot carry it");
}

// Without the header, direct routing still cannot move a member to another port.
TEST(ProxyProtocolPolicy, OnlyAProxiedPolicyMayMoveMembersToAnotherPortUnderDirectRouting) {
  EXPECT_EQ(refusal([] { parsePolicy(kProxiedWeb); }), "(accepted)");
  EXPECT_NE(refusal([] {
              parsePolicy(R"({"service": "http", "address": "192.0.2.10", "port": 80,
                "members": [{"address": "10.0.0.11", "port": 8080}]})");
            }).find("cannot change the port"),
            std::string::npos);
}
