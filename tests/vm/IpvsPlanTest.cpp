// The IPVS dataplane's plan of changes, and its refusal on a host without IPVS: what can be
// checked without a kernel that has IPVS.
#include <gtest/gtest.h>

#include "IpvsDataplane.hpp"
#include "FirewallMarks.hpp"
#include "IpvsPlan.hpp"

namespace shoal::lvs {
namespace {

using K = IpvsChange::Kind;

VirtualService service(const std::string& address, std::vector<RealServer> reals = {}) {
  VirtualService s;
  s.address = address;
  s.port = 80;
  s.family = address.find(':') != std::string::npos ? 10 : 2;
  s.scheduler = "rr";
  s.reals = std::move(reals);
  return s;
}

std::vector<std::string> described(const IpvsPlan& plan) {
  std::vector<std::string> out;
  for (const IpvsChange& c : plan.changes) out.push_back(c.describe());
  return out;
}

TEST(IpvsPlan, EmptyKernelGetsEveryServiceThenItsReals) {
  IpvsPlan plan = planIpvsChanges({}, {service("192.0.2.1", {{"10.0.0.1", 80}, {"10.0.0.2", 80}})});
  EXPECT_EQ(described(plan),
            (std::vector<std::string>{"add service tcp:192.0.2.1:80",
                                      "add real server 10.0.0.1:80 to tcp:192.0.2.1:80",
                                      "add real server 10.0.0.2:80 to tcp:192.0.2.1:80"}));
  EXPECT_EQ(plan.report.servicesAdded, 1u);
  EXPECT_EQ(plan.report.realsAdded, 2u);
}

TEST(IpvsPlan, SameTableInOtherSpellingsPlansNothing) {
  VirtualService held = service("2001:db8::10", {{"2001:db8::1", 80}});
  held.persistenceSeconds = 300;
  VirtualService wanted = service("2001:db8:0:0::10", {{"2001:0db8::1", 80}});
  wanted.persistenceSeconds = 300;
  wanted.persistenceNetmask = "128";
  VirtualService held4 = service("192.0.2.1");
  held4.persistenceSeconds = 60;
  held4.persistenceNetmask = "255.255.255.0";
  VirtualService wanted4 = held4;
  wanted4.persistenceNetmask = "24";
  IpvsPlan plan = planIpvsChanges({held, held4}, {wanted, wanted4});
  EXPECT_TRUE(plan.changes.empty()) << described(plan).front();
  EXPECT_FALSE(plan.report.changedAnything());
  EXPECT_EQ(plan.report.servicesUnchanged, 2u);
}

TEST(IpvsPlan, ServicesNotDesiredAreRemovedFirst) {
  IpvsPlan plan = planIpvsChanges({service("192.0.2.1"), service("192.0.2.9")},
                                  {service("192.0.2.1"), service("192.0.2.2")});
  EXPECT_EQ(described(plan), (std::vector<std::string>{"remove service tcp:192.0.2.9:80",
                                                       "add service tcp:192.0.2.2:80"}));
  EXPECT_EQ(plan.report.servicesUnchanged, 1u);
}

TEST(IpvsPlan, ChangedSettingsAndRealsAreEditedRemovedAndAddedInPlace) {
  VirtualService held =
      service("192.0.2.1", {{"10.0.0.1", 80, 1}, {"10.0.0.2", 80, 1}, {"10.0.0.3", 80}});
  VirtualService wanted = service(
      "192.0.2.1", {{"10.0.0.1", 80, 5}, {"10.0.0.2", 80, 1, Forwarding::Nat}, {"10.0.0.4", 80}});
  wanted.scheduler = "wlc";
  IpvsPlan plan = planIpvsChanges({held}, {wanted});
  EXPECT_EQ(described(plan),
            (std::vector<std::string>{"edit service tcp:192.0.2.1:80",
                                      "remove real server 10.0.0.3:80 from tcp:192.0.2.1:80",
                                      "edit real server 10.0.0.1:80 of tcp:192.0.2.1:80",
                                      "edit real server 10.0.0.2:80 of tcp:192.0.2.1:80",
                                      "add real server 10.0.0.4:80 to tcp:192.0.2.1:80"}));
  EXPECT_EQ(plan.changes[0].service.scheduler, "wlc");
  EXPECT_EQ(plan.changes[2].real.weight, 5u);
  EXPECT_EQ(plan.changes[3].real.forwarding, Forwarding::Nat);
  EXPECT_EQ(plan.report.servicesEdited, 1u);
  EXPECT_EQ(plan.report.realsEdited, 2u);
  EXPECT_EQ(plan.report.realsRemoved, 1u);
  EXPECT_EQ(plan.report.realsAdded, 1u);
  EXPECT_EQ(plan.report.servicesUnchanged, 0u);
}

TEST(IpvsPlan, PersistenceChangeIsAnEdit) {
  VirtualService held = service("192.0.2.1");
  VirtualService wanted = held;
  wanted.persistenceSeconds = 300;
  EXPECT_EQ(planIpvsChanges({held}, {wanted}).report.servicesEdited, 1u);
  held.persistenceSeconds = 300;
  wanted.persistenceNetmask = "255.255.0.0";
  EXPECT_EQ(planIpvsChanges({held}, {wanted}).report.servicesEdited, 1u);
}

TEST(IpvsPlan, FirewallMarkServicesAreKeyedByMarkAndFamily) {
  VirtualService v4;
  v4.fwmark = 1;
  v4.listeners = {{"192.0.2.1", 80}};
  VirtualService v6 = v4;
  v6.family = 10;
  IpvsPlan plan = planIpvsChanges({v4}, {v4, v6});
  EXPECT_EQ(described(plan), (std::vector<std::string>{"add service fwm:1:v6"}));
}

TEST(IpvsPlan, InvalidDesiredTablesAreRefused) {
  EXPECT_THROW(planIpvsChanges({}, {service("192.0.2.300")}), DataplaneError);
  EXPECT_THROW(planIpvsChanges({}, {service("192.0.2.1"), service("192.0.2.1")}), DataplaneError);
  EXPECT_THROW(planIpvsChanges({}, {service("192.0.2.1", {{"10.0.0.1", 80}, {"10.0.0.1", 80}})}),
               DataplaneError);
  EXPECT_THROW(planIpvsChanges({}, {service("192.0.2.1", {{"10.0.0.1", 80, 0x80000000u}})}),
               DataplaneError);
  VirtualService s = service("192.0.2.1");
  s.scheduler = "";
  EXPECT_THROW(planIpvsChanges({}, {s}), DataplaneError);
  s = service("192.0.2.1");
  s.persistenceNetmask = "255.255.0.300";
  EXPECT_THROW(planIpvsChanges({}, {s}), DataplaneError);
  s = service("2001:db8::1");
  s.persistenceNetmask = "129";
  EXPECT_THROW(planIpvsChanges({}, {s}), DataplaneError);
  s = service("192.0.2.1");
  s.family = 7;
  EXPECT_THROW(planIpvsChanges({}, {s}), DataplaneError);
  try {
    planIpvsChanges({}, {service("192.0.2.1", {{"10.0.0.1", 80}, {"10.0.0.1", 80}})});
  } catch (const DataplaneError& e) {
    EXPECT_STREQ(e.what(), "service tcp:192.0.2.1:80 lists real server 10.0.0.1:80 twice");
  }
}

TEST(IpvsPlan, NetmasksHaveOneCanonicalSpelling) {
  EXPECT_EQ(canonicalNetmask(2, ""), "255.255.255.255");
  EXPECT_EQ(canonicalNetmask(2, "16"), "255.255.0.0");
  EXPECT_EQ(canonicalNetmask(2, "0"), "0.0.0.0");
  EXPECT_EQ(canonicalNetmask(2, "255.255.255.0"), "255.255.255.0");
  EXPECT_EQ(canonicalNetmask(10, ""), "128");
  EXPECT_EQ(canonicalNetmask(10, "64"), "64");
  EXPECT_EQ(canonicalAddress(10, "2001:DB8:0::1"), "2001:db8::1");
}

// On a host whose kernel has IPVS the dataplane opens; elsewhere it refuses with the
// sentence an admin can act on, and ipvsAvailable says the same.
TEST(IpvsOnThisHost, OpensOrRefusesWithTheReason) {
  std::string why;
  bool available = ipvsAvailable(&why);
  if (available) {
    EXPECT_NO_THROW(openIpvsDataplane());
    return;
  }
  EXPECT_NE(why.find("IPVS"), std::string::npos) << why;
  EXPECT_NE(why.find("ip_vs"), std::string::npos) << why;
  try {
    openIpvsDataplane();
    FAIL() << "opened IPVS although ipvsAvailable said: " << why;
  } catch (const DataplaneError& e) {
    EXPECT_EQ(e.what(), why);
  }
}

TEST(FirewallMarks, RulesetMarksEveryListenerOfEveryFirewallMarkServiceInOneTransaction) {
  VirtualService web;
  web.fwmark = 1;
  web.listeners = {{"192.0.2.10", 80}, {"192.0.2.10", 443}};
  VirtualService v6;
  v6.fwmark = 0x2a;
  v6.family = 10;
  v6.listeners = {{"2001:db8:0::10", 80}};
  VirtualService plain;
  plain.address = "192.0.2.11";
  plain.port = 25;
  const auto script = firewallMarkRuleset({web, plain, v6});
  EXPECT_EQ(script,
            "add table inet shoal_lvs\n"
            "delete table inet shoal_lvs\n"
            "table inet shoal_lvs {\n"
            "  chain prerouting {\n"
            "    type filter hook prerouting priority mangle; policy accept;\n"
            "    ip daddr 192.0.2.10 tcp dport 80 meta mark set 0x00000001\n"
            "    ip daddr 192.0.2.10 tcp dport 443 meta mark set 0x00000001\n"
            "    ip6 daddr 2001:db8::10 tcp dport 80 meta mark set 0x0000002a\n"
            "  }\n"
            "}\n");
  // No firewall-mark service: the table goes.
  EXPECT_EQ(firewallMarkRuleset({plain}), "add table inet shoal_lvs\ndelete table inet shoal_lvs\n");
  VirtualService bad = web;
  bad.listeners = {{"not-an-address", 80}};
  EXPECT_THROW(firewallMarkRuleset({bad}), DataplaneError);
}

}  // namespace
}  // namespace shoal::lvs
