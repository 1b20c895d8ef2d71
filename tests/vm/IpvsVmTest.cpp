// The IPVS dataplane against a real kernel. Runs inside the qemu guest that
// run_ipvs_vm.sh boots (root, IPVS modules loaded, ipvsadm and iproute2 present); every
// table it programmes is cross-checked with ipvsadm.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "GuestSupport.hpp"
#include "IpvsDataplane.hpp"
#include "FirewallMarks.hpp"
#include "Reconciler.hpp"

namespace shoal::lvs {
namespace {

using guest::expectedListing;
using guest::ipvsadmListing;
using guest::kIpvsadm;
using guest::mustRun;

VirtualService tcp(const std::string& address, std::uint16_t port, const std::string& scheduler,
                   std::vector<RealServer> reals) {
  VirtualService s;
  s.address = address;
  s.port = port;
  s.family = address.find(':') != std::string::npos ? 10 : 2;
  s.scheduler = scheduler;
  s.reals = std::move(reals);
  return s;
}

RealServer real(const std::string& address, std::uint16_t port, std::uint32_t weight = 1,
                Forwarding forwarding = Forwarding::DirectRouting) {
  return RealServer{address, port, weight, forwarding};
}

class Ipvs : public ::testing::Test {
 protected:
  void SetUp() override {
    dataplane_ = openIpvsDataplane();
    dataplane_->apply({});
    ASSERT_TRUE(ipvsadmListing().empty()) << guest::describe(ipvsadmListing());
  }
  void TearDown() override { dataplane_->apply({}); }

  void expectKernelHolds(const std::vector<VirtualService>& desired) {
    EXPECT_EQ(guest::describe(ipvsadmListing()), guest::describe(expectedListing(desired)));
  }

  std::unique_ptr<Dataplane> dataplane_;
};

TEST(IpvsGuest, IsAvailableAndSaysSoWithoutReason) {
  std::string why = "unchanged";
  EXPECT_TRUE(ipvsAvailable(&why));
  EXPECT_EQ(why, "unchanged");
}

TEST_F(Ipvs, EverySchedulerTheKernelHasIsProgrammed) {
  std::vector<std::string> schedulers = guest::guestSchedulers();
  std::set<std::string> have(schedulers.begin(), schedulers.end());
  for (const char* required : {"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh"})
    EXPECT_TRUE(have.count(required)) << "the guest kernel lacks scheduler " << required;
  std::vector<VirtualService> table;
  std::uint16_t port = 1000;
  for (const std::string& name : schedulers)
    table.push_back(
        tcp("10.1.0.1", port++, name, {real("10.2.0.1", 80, 3), real("10.2.0.2", 80, 1)}));
  ApplyReport report = dataplane_->apply(table);
  EXPECT_EQ(report.servicesAdded, schedulers.size());
  EXPECT_EQ(report.realsAdded, 2 * schedulers.size());
  expectKernelHolds(table);
}

std::vector<VirtualService> variedTable() {
  VirtualService persistent = tcp("10.1.0.1", 443, "wlc", {real("10.2.0.1", 443)});
  persistent.persistenceSeconds = 300;
  persistent.persistenceNetmask = "255.255.255.0";
  VirtualService hostPersistent = tcp("10.1.0.2", 80, "rr", {real("10.2.0.1", 80)});
  hostPersistent.persistenceSeconds = 60;
  VirtualService methods = tcp(
      "10.1.0.3", 80, "wrr",
      {real("10.2.0.1", 80, 5, Forwarding::DirectRouting),
       real("10.2.0.2", 8080, 2, Forwarding::Nat), real("10.2.0.3", 80, 0, Forwarding::Tunnel)});
  VirtualService udp = tcp("10.1.0.4", 53, "sh", {real("10.2.0.4", 53)});
  udp.protocol = Protocol::Udp;
  VirtualService fwmark;
  fwmark.fwmark = 7;
  fwmark.scheduler = "lc";
  fwmark.persistenceSeconds = 120;
  fwmark.listeners = {{"10.1.0.5", 80}, {"10.1.0.5", 443}};
  fwmark.reals = {real("10.2.0.5", 0), real("10.2.0.6", 0, 2)};
  VirtualService fwmark6;
  fwmark6.fwmark = 8;
  fwmark6.family = 10;
  fwmark6.scheduler = "mh";
  fwmark6.reals = {real("fd00:2::5", 0)};
  VirtualService v6 = tcp("fd00:1::10", 80, "lblc",
                          {real("fd00:2::1", 80, 1, Forwarding::Nat), real("fd00:2::2", 80, 4)});
  v6.persistenceSeconds = 30;
  v6.persistenceNetmask = "64";
  return {persistent, hostPersistent, methods, udp, fwmark, fwmark6, v6};
}

TEST_F(Ipvs, PersistenceForwardingFirewallMarksAndIpv6MatchIpvsadm) {
  std::vector<VirtualService> table = variedTable();
  ApplyReport report = dataplane_->apply(table);
  EXPECT_EQ(report.servicesAdded, table.size());
  EXPECT_EQ(report.realsAdded, 11u);
  expectKernelHolds(table);
  std::printf("%s", mustRun(std::string(kIpvsadm) + " -Ln").c_str());  // for the log
  // Persistent-connection listing works on what was programmed, and lists every real.
  std::string persistent = mustRun(std::string(kIpvsadm) + " -Ln --persistent-conn");
  EXPECT_NE(persistent.find("persistent 300 mask 255.255.255.0"), std::string::npos) << persistent;

  // read() gives the same table back: same keys, settings and reals.
  std::vector<VirtualServiceState> state = dataplane_->read();
  ASSERT_EQ(state.size(), table.size());
  for (const VirtualService& want : table) {
    auto found = std::find_if(state.begin(), state.end(), [&](const VirtualServiceState& s) {
      return s.spec.key() == want.key();
    });
    ASSERT_NE(found, state.end()) << want.key();
    EXPECT_EQ(found->spec.scheduler, want.scheduler) << want.key();
    EXPECT_EQ(found->spec.persistenceSeconds, want.persistenceSeconds) << want.key();
    EXPECT_EQ(found->spec.persistenceNetmask, want.persistenceNetmask) << want.key();
    ASSERT_EQ(found->reals.size(), want.reals.size()) << want.key();
    for (const RealServer& r : want.reals) {
      auto got =
          std::find_if(found->reals.begin(), found->reals.end(), [&](const RealServerState& s) {
            return s.spec.address == r.address && s.spec.port == r.port;
          });
      ASSERT_NE(got, found->reals.end()) << want.key() << " " << r.address;
      EXPECT_EQ(got->spec.weight, r.weight);
      EXPECT_EQ(got->spec.forwarding, r.forwarding) << want.key() << " " << r.address;
    }
  }
}

TEST_F(Ipvs, SecondApplyOfTheSameTableChangesNothing) {
  std::vector<VirtualService> table = variedTable();
  dataplane_->apply(table);
  std::string before = mustRun(std::string(kIpvsadm) + " -Ln");
  // Non-canonical spellings of the same table are the same table.
  std::vector<VirtualService> respelled = table;
  respelled.back().address = "fd00:1:0:0::10";
  respelled[0].persistenceNetmask = "24";
  ApplyReport again = dataplane_->apply(respelled);
  EXPECT_FALSE(again.changedAnything());
  EXPECT_EQ(again.servicesUnchanged, table.size());
  EXPECT_EQ(mustRun(std::string(kIpvsadm) + " -Ln"), before);
}

TEST_F(Ipvs, EditsWeightsSchedulerPersistenceAndForwardingInPlace) {
  std::vector<VirtualService> v1 = {
      tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80), real("10.2.0.2", 80), real("10.2.0.3", 80)}),
      tcp("10.1.0.2", 80, "wlc", {real("10.2.0.1", 80)}),
      tcp("10.1.0.3", 80, "wlc", {real("10.2.0.1", 80)})};
  dataplane_->apply(v1);
  std::vector<VirtualService> v2 = v1;
  v2[0].scheduler = "wrr";
  v2[0].reals[0].weight = 7;                       // edit weight
  v2[0].reals[1].forwarding = Forwarding::Tunnel;  // edit method
  v2[0].reals.pop_back();                          // remove 10.2.0.3
  v2[0].reals.push_back(real("10.2.0.4", 80, 2));  // add
  v2[1].persistenceSeconds = 600;                  // edit persistence
  v2[1].persistenceNetmask = "255.255.0.0";
  v2.pop_back();  // remove service 3
  ApplyReport report = dataplane_->apply(v2);
  EXPECT_EQ(report.servicesAdded, 0u);
  EXPECT_EQ(report.servicesEdited, 2u);
  EXPECT_EQ(report.servicesRemoved, 1u);
  EXPECT_EQ(report.realsAdded, 1u);
  EXPECT_EQ(report.realsEdited, 2u);
  EXPECT_EQ(report.realsRemoved, 1u);
  expectKernelHolds(v2);
  // Back to non-persistent.
  v2[1].persistenceSeconds = 0;
  v2[1].persistenceNetmask.clear();
  EXPECT_EQ(dataplane_->apply(v2).servicesEdited, 1u);
  expectKernelHolds(v2);
}

TEST_F(Ipvs, DriftMadeWithIpvsadmIsRepairedByTheNextApply) {
  std::vector<VirtualService> table = {
      tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80), real("10.2.0.2", 80)}),
      tcp("10.1.0.2", 80, "rr", {real("10.2.0.1", 80)})};
  dataplane_->apply(table);
  std::string ipvsadm = kIpvsadm;
  mustRun(ipvsadm + " -D -t 10.1.0.2:80");
  mustRun(ipvsadm + " -e -t 10.1.0.1:80 -r 10.2.0.2:80 -g -w 9");
  mustRun(ipvsadm + " -A -t 10.9.9.9:80 -s rr");              // someone else's service
  mustRun(ipvsadm + " -A --sctp-service 10.9.9.9:90 -s rr");  // one the model cannot express
  ApplyReport report = dataplane_->apply(table);
  EXPECT_EQ(report.servicesAdded, 1u);
  EXPECT_EQ(report.realsAdded, 1u);
  EXPECT_EQ(report.realsEdited, 1u);
  EXPECT_EQ(report.servicesRemoved, 2u);
  expectKernelHolds(table);
}

// What the lvs plugin runs on a director: the reconcile loop puts back, within one
// interval and without anyone calling apply, a service deleted with ipvsadm.
TEST_F(Ipvs, ReconcilerRepairsADeletedServiceWithinOneInterval) {
  std::vector<VirtualService> table = {tcp("10.1.0.1", 80, "wlc", {real("10.2.0.1", 80), real("10.2.0.2", 80)}),
                                       tcp("10.1.0.2", 443, "rr", {real("10.2.0.1", 443)})};
  std::vector<std::string> warnings;
  std::mutex warningsMutex;
  const auto interval = std::chrono::milliseconds(500);
  Reconciler reconciler(*dataplane_, interval, [&](bool warning, const std::string& message) {
    std::lock_guard lock(warningsMutex);
    if (warning) warnings.push_back(message);
  });
  reconciler.apply(table);
  reconciler.start();
  expectKernelHolds(table);
  mustRun(std::string(kIpvsadm) + " -D -t 10.1.0.2:443");
  const auto deleted = std::chrono::steady_clock::now();
  auto holds = [&] { return guest::describe(ipvsadmListing()) == guest::describe(expectedListing(table)); };
  while (!holds() && std::chrono::steady_clock::now() - deleted < 4 * interval)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto took = std::chrono::steady_clock::now() - deleted;
  EXPECT_TRUE(holds()) << guest::describe(ipvsadmListing());
  // One interval, plus what a pass costs under emulation.
  EXPECT_LE(took, interval + std::chrono::milliseconds(300))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  reconciler.stop();
  EXPECT_EQ(reconciler.repairs(), 1u);
  std::lock_guard lock(warningsMutex);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("services added 1"), std::string::npos) << warnings[0];
}

TEST_F(Ipvs, RejectedChangeNamesItsServiceAndTheKernelReasonAndTheRestIsApplied) {
  std::vector<VirtualService> table = {tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80)}),
                                       tcp("10.1.0.2", 80, "nosuchsched", {real("10.2.0.1", 80)}),
                                       tcp("10.1.0.3", 80, "rr", {real("10.2.0.1", 80)})};
  const ApplyReport refused = dataplane_->apply(table);
  ASSERT_EQ(refused.failures.size(), 1u);
  EXPECT_EQ(refused.failures[0].service, "tcp:10.1.0.2:80");
  const std::string& message = refused.failures[0].reason;
  std::printf("apply refused: %s\n", message.c_str());  // for the log
  EXPECT_NE(message.find("add service tcp:10.1.0.2:80"), std::string::npos) << message;
  EXPECT_NE(message.find("scheduler"), std::string::npos) << message;
  // The kernel's own errno text for a missing scheduler.
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  // Its real server could not be added either, and says why, in the same service's reason.
  EXPECT_NE(message.find("add real server 10.2.0.1:80 to tcp:10.1.0.2:80"), std::string::npos)
      << message;
  EXPECT_EQ(refused.servicesAdded, 2u) << "the refused service is not counted as added";
  EXPECT_EQ(refused.realsAdded, 2u);
  std::vector<VirtualService> good = {table[0], table[2]};
  expectKernelHolds(good);
  // Nothing of the failed exchange is left on the socket: the next calls see the table.
  EXPECT_EQ(dataplane_->read().size(), 2u);
  ApplyReport report = dataplane_->apply(good);
  EXPECT_FALSE(report.changedAnything());
  EXPECT_EQ(report.servicesUnchanged, 2u);
}

TEST_F(Ipvs, InvalidDesiredTableIsRefusedBeforeAnythingIsSent) {
  std::vector<VirtualService> table = {tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80)})};
  dataplane_->apply(table);
  std::vector<VirtualService> bad = {tcp("10.1.0.7", 80, "rr", {}),
                                     tcp("10.1.0.300", 80, "rr", {})};
  EXPECT_THROW(dataplane_->apply(bad), DataplaneError);
  expectKernelHolds(table);
}

// IPVS forwards packets and cannot write a PROXY header: such a service is left out (and
// removed if held), named in the error, and the rest of the table is applied.
TEST_F(Ipvs, ProxyProtocolServiceIsLeftOutNamedAndTheRestApplied) {
  VirtualService proxied = tcp("10.1.0.2", 25, "rr", {real("10.2.0.1", 25)});
  proxied.proxyProtocol = ProxyProtocol::V2;
  const std::vector<VirtualService> plain = {tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80)})};
  dataplane_->apply({tcp("10.1.0.2", 25, "rr", {real("10.2.0.1", 25)})});
  const ApplyReport report = dataplane_->apply({plain[0], proxied});
  ASSERT_EQ(report.failures.size(), 1u) << "IPVS accepted a service that asks for the PROXY protocol";
  EXPECT_EQ(report.failures[0].service, "tcp:10.1.0.2:25");
  EXPECT_NE(report.failures[0].reason.find("IPVS cannot send the PROXY protocol header that tcp:10.1.0.2:25"),
            std::string::npos)
      << report.failures[0].reason;
  expectKernelHolds(plain);
}

TEST_F(Ipvs, TablesLargerThanOneBatchRoundTrip) {
  std::vector<VirtualService> table;
  for (int i = 0; i < 300; ++i) {
    std::string vip = "10.3." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
    table.push_back(tcp(vip, 80, "wlc",
                        {real("10.4.0.1", 80), real("10.4.0.2", 80, 2), real("10.4.0.3", 80, 3)}));
  }
  ApplyReport report = dataplane_->apply(table);
  EXPECT_EQ(report.servicesAdded, 300u);
  EXPECT_EQ(report.realsAdded, 900u);
  expectKernelHolds(table);
  EXPECT_FALSE(dataplane_->apply(table).changedAnything());
  EXPECT_EQ(dataplane_->read().size(), 300u);
  EXPECT_EQ(dataplane_->apply({}).servicesRemoved, 300u);
  EXPECT_TRUE(ipvsadmListing().empty());
}

TEST_F(Ipvs, MixedFamilyTunnelAndLocalRealServersAreStableAcrossApplies) {
  // An IPv6 service may tunnel to an IPv4 real server; a real server on the director
  // itself keeps the method asked (older kernels reported it as "Local").
  VirtualService mixed = tcp("fd00:1::20", 80, "rr", {real("10.2.0.9", 80, 1, Forwarding::Tunnel)});
  VirtualService local =
      tcp("10.1.0.20", 80, "rr", {real("127.0.0.1", 80, 1, Forwarding::Nat), real("10.2.0.1", 80)});
  std::vector<VirtualService> table = {mixed, local};
  dataplane_->apply(table);
  expectKernelHolds(table);
  ApplyReport again = dataplane_->apply(table);
  EXPECT_FALSE(again.changedAnything());
  EXPECT_EQ(again.servicesUnchanged, 2u);
  std::vector<VirtualServiceState> state = dataplane_->read();
  ASSERT_EQ(state.size(), 2u);
  for (const VirtualServiceState& s : state)
    if (s.spec.key() == mixed.key()) {
      ASSERT_EQ(s.reals.size(), 1u);
      EXPECT_EQ(s.reals[0].spec.address, "10.2.0.9");
      EXPECT_EQ(s.reals[0].spec.forwarding, Forwarding::Tunnel);
    }
}

TEST_F(Ipvs, ConcurrentAppliesAndReadsShareOneSocketSafely) {
  std::vector<VirtualService> table = variedTable();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) try {
          if (t % 2)
            dataplane_->read();
          else
            dataplane_->apply(table);
        } catch (const std::exception& e) {
          std::printf("thread %d: %s\n", t, e.what());
          ++failures;
        }
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  expectKernelHolds(table);
}

TEST(IpvsUnprivileged, RefusalSaysWhichCapabilityIsMissing) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    std::string message = "no refusal";
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      message = "cannot drop privileges";
    } else {
      try {
        openIpvsDataplane()->apply({tcp("10.1.0.1", 80, "rr", {real("10.2.0.1", 80)})});
      } catch (const DataplaneError& e) {
        message = e.what();
      }
    }
    ssize_t ignored = write(pipefd[1], message.data(), message.size());
    (void)ignored;
    _exit(0);
  }
  close(pipefd[1]);
  std::string message;
  char buffer[1024];
  for (ssize_t n; (n = ::read(pipefd[0], buffer, sizeof buffer)) > 0;) message.append(buffer, n);
  close(pipefd[0]);
  waitpid(child, nullptr, 0);
  std::printf("unprivileged: %s\n", message.c_str());  // for the log
  EXPECT_NE(message.find("Operation not permitted"), std::string::npos) << message;
  EXPECT_NE(message.find("CAP_NET_ADMIN"), std::string::npos) << message;
}

// ---- real traffic through a NAT service -------------------------------------------------
//
// Namespaces: client (10.77.1.2) -- director (this namespace, 10.77.1.1, VIP 10.77.1.100)
// -- rs1 (10.77.2.2) and rs2 (10.77.3.2), each running busybox httpd with its own answer.
class IpvsTraffic : public Ipvs {
 protected:
  void SetUp() override {
    Ipvs::SetUp();
    std::string ip = guest::kIp;
    mustRun("echo 1 > /proc/sys/net/ipv4/ip_forward");
    mustRun(ip + " netns add client");
    mustRun(ip + " link add c0 type veth peer name d0");
    mustRun(ip + " link set c0 netns client");
    mustRun(ip + " addr add 10.77.1.1/24 dev d0");
    mustRun(ip + " addr add 10.77.1.100/32 dev d0");
    mustRun(ip + " link set d0 up");
    mustRun(ip + " -n client addr add 10.77.1.2/24 dev c0");
    mustRun(ip + " -n client link set c0 up");
    mustRun(ip + " -n client link set lo up");
    mustRun(ip + " -n client route add default via 10.77.1.1");
    for (int n : {1, 2}) {
      std::string ns = "rs" + std::to_string(n), net = "10.77." + std::to_string(n + 1);
      std::string dev = "d" + std::to_string(n), peer = "r" + std::to_string(n);
      mustRun(ip + " netns add " + ns);
      mustRun(ip + " link add " + peer + " type veth peer name " + dev);
      mustRun(ip + " link set " + peer + " netns " + ns);
      mustRun(ip + " addr add " + net + ".1/24 dev " + dev);
      mustRun(ip + " link set " + dev + " up");
      mustRun(ip + " -n " + ns + " addr add " + net + ".2/24 dev " + peer);
      mustRun(ip + " -n " + ns + " link set " + peer + " up");
      mustRun(ip + " -n " + ns + " link set lo up");
      mustRun(ip + " -n " + ns + " route add default via " + net + ".1");
      mustRun("mkdir -p /tmp/www-" + ns + " && echo served-by-" + ns + " > /tmp/www-" + ns +
              "/index.html");
      std::string home = "/tmp/www-" + ns;
      // Port 8080 too, for the firewall-mark group that spans two ports.
      for (const char* port : {"80", "8080"}) {
        const char* argv[] = {guest::kIp, "netns", "exec", ns.c_str(), "/bin/busybox", "httpd",
                              "-f",       "-p",    port,   "-h",       home.c_str(),   nullptr};
        pid_t pid = 0;
        ASSERT_EQ(posix_spawn(&pid, guest::kIp, nullptr, nullptr, const_cast<char**>(argv), environ),
                  0);
        servers_.push_back(pid);
      }
    }
    // httpd needs a moment to listen.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  void TearDown() override {
    for (pid_t pid : servers_) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    std::string ip = guest::kIp;
    for (const char* ns : {"client", "rs1", "rs2"}) guest::run(ip + " netns del " + ns);
    guest::run(ip + " link del d0");
    Ipvs::TearDown();
  }

  // One HTTP request from the client namespace to the VIP; returns the answer's body line.
  static std::string fetchFromClient(std::uint16_t port = 80) {
    std::string answer;
    std::thread t([&] {
      int nsfd = open("/run/netns/client", O_RDONLY);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        answer = "cannot enter the client namespace";
        return;
      }
      close(nsfd);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      sockaddr_in vip{};
      vip.sin_family = AF_INET;
      vip.sin_port = htons(port);
      inet_pton(AF_INET, "10.77.1.100", &vip.sin_addr);
      if (connect(fd, reinterpret_cast<sockaddr*>(&vip), sizeof vip) != 0) {
        answer = std::string("connect failed: ") + strerror(errno);
        close(fd);
        return;
      }
      const char request[] = "GET /index.html HTTP/1.0\r\nHost: vip\r\n\r\n";
      if (send(fd, request, sizeof request - 1, 0) < 0) answer = "send failed";
      std::string response;
      char buffer[2048];
      for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
      close(fd);
      auto at = response.find("served-by-");
      answer = at == std::string::npos ? "no answer: " + response
                                       : response.substr(at, response.find('\n', at) - at);
    });
    t.join();
    return answer;
  }

  // A TCP connection from the client namespace to the VIP, left open (nothing sent); its
  // descriptor, or -1 when it could not connect.
  static int holdFromClient(std::uint16_t port = 80) {
    int held = -1;
    std::thread t([&] {
      int nsfd = open("/run/netns/client", O_RDONLY);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) return;
      close(nsfd);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in vip{};
      vip.sin_family = AF_INET;
      vip.sin_port = htons(port);
      inet_pton(AF_INET, "10.77.1.100", &vip.sin_addr);
      if (connect(fd, reinterpret_cast<sockaddr*>(&vip), sizeof vip) == 0) held = fd;
      else close(fd);
    });
    t.join();
    return held;
  }

  // The active connections IPVS counts on the real server at `address` of the one service.
  std::optional<std::uint32_t> activeOn(const std::string& address) {
    for (const auto& vs : dataplane_->read())
      for (const auto& r : vs.reals)
        if (r.spec.address == address) return r.activeConnections;
    return std::nullopt;
  }

  const VirtualServiceState* service(const std::vector<VirtualServiceState>& state) {
    return state.size() == 1 ? &state[0] : nullptr;
  }

  std::vector<pid_t> servers_;
};

TEST_F(IpvsTraffic, NatRoundRobinAlternatesBetweenRealServersAndCountersRise) {
  std::vector<VirtualService> table = {
      tcp("10.77.1.100", 80, "rr",
          {real("10.77.2.2", 80, 1, Forwarding::Nat), real("10.77.3.2", 80, 1, Forwarding::Nat)})};
  dataplane_->apply(table);
  expectKernelHolds(table);

  constexpr int kConnections = 6;
  std::vector<std::string> answers;
  for (int i = 0; i < kConnections; ++i) answers.push_back(fetchFromClient());
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_TRUE(answers[i] == "served-by-rs1" || answers[i] == "served-by-rs2") << answers[i];
    if (i > 0) {
      EXPECT_NE(answers[i], answers[i - 1])
          << "connection " << i << " went to the same real server";
    }
  }

  // IPVS folds per-CPU counters into the totals on its ~2 s estimator tick.
  std::vector<VirtualServiceState> state;
  std::uint64_t highestByteRate = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  for (;;) {
    state = dataplane_->read();
    if (const auto* s = service(state)) {
      highestByteRate = std::max(highestByteRate, s->rates.bytesInPerSecond);
      if (s->counters.connections >= kConnections && highestByteRate > 0) break;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const VirtualServiceState* s = service(state);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counters.connections, static_cast<std::uint64_t>(kConnections));
  EXPECT_GT(s->counters.packetsIn, 0u);
  EXPECT_GT(s->counters.packetsOut, 0u);
  EXPECT_GT(s->counters.bytesIn, 0u);
  EXPECT_GT(s->counters.bytesOut, s->counters.bytesIn) << "answers are longer than requests";
  EXPECT_GT(highestByteRate, 0u) << "the byte rate never rose above zero";
  ASSERT_EQ(s->reals.size(), 2u);
  for (const RealServerState& r : s->reals) {
    EXPECT_EQ(r.counters.connections, static_cast<std::uint64_t>(kConnections / 2))
        << r.spec.address;
    // Closed connections linger in TIME_WAIT, which IPVS counts as inactive.
    EXPECT_GT(r.activeConnections + r.inactiveConnections, 0u) << r.spec.address;
  }
  // ipvsadm reads the same total: "TCP  10.77.1.100:80  <conns> <inpkts> ...".
  std::string stats = mustRun(std::string(kIpvsadm) + " -Ln --stats");
  EXPECT_NE(stats.find("10.77.1.100:80"), std::string::npos) << stats;
  std::istringstream lines(stats);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string protocol, address, connections;
    words >> protocol >> address >> connections;
    if (protocol == "TCP" && address == "10.77.1.100:80") {
      EXPECT_EQ(connections, std::to_string(kConnections)) << stats;
    }
  }

  // An edit in place (scheduler and a weight) keeps the totals: nothing was re-created.
  std::vector<VirtualService> edited = table;
  edited[0].scheduler = "wrr";
  edited[0].reals[1].weight = 2;
  ApplyReport report = dataplane_->apply(edited);
  EXPECT_EQ(report.servicesEdited, 1u);
  EXPECT_EQ(report.realsEdited, 1u);
  state = dataplane_->read();
  s = service(state);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counters.connections, static_cast<std::uint64_t>(kConnections));

  dataplane_->zeroCounters();
  state = dataplane_->read();
  s = service(state);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counters.connections, 0u);
  EXPECT_EQ(s->counters.bytesIn, 0u);
  for (const RealServerState& r : s->reals) EXPECT_EQ(r.counters.connections, 0u);
  // The service itself and its reals are untouched by zeroing.
  expectKernelHolds(edited);
}

// A firewall-mark group: nft marks what reaches the VIP on 80 and 8080, one IPVS fwmark
// service with persistence balances both, so a client stays on one real server across ports.
// Node maintenance on IPVS: a drained real server (weight 0) keeps the connections it has, new
// ones go elsewhere, and the active count the drain is followed by falls to zero as they close.
TEST_F(IpvsTraffic, ADrainedRealServerKeepsItsOpenConnectionsAndItsCountFallsAsTheyClose) {
  std::vector<VirtualService> table = {
      tcp("10.77.1.100", 80, "rr",
          {real("10.77.2.2", 80, 1, Forwarding::Nat), real("10.77.3.2", 80, 1, Forwarding::Nat)})};
  dataplane_->apply(table);
  const int held[2] = {holdFromClient(), holdFromClient()};
  ASSERT_GE(held[0], 0) << strerror(errno);
  ASSERT_GE(held[1], 0) << strerror(errno);
  auto waitFor = [&](const std::string& address, std::uint32_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (activeOn(address) != count && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return activeOn(address) == count;
  };
  // Round robin gave each real server one of the two.
  EXPECT_TRUE(waitFor("10.77.2.2", 1)) << "rs1 active: " << activeOn("10.77.2.2").value_or(99);
  EXPECT_TRUE(waitFor("10.77.3.2", 1)) << "rs2 active: " << activeOn("10.77.3.2").value_or(99);

  table[0].reals[0].weight = 0;
  dataplane_->apply(table);
  EXPECT_EQ(activeOn("10.77.2.2"), 1u) << "the drain cut the connection rs1 held";
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fetchFromClient(), "served-by-rs2") << "connection " << i;

  close(held[0]);
  close(held[1]);
  EXPECT_TRUE(waitFor("10.77.2.2", 0)) << "rs1 still counts " << activeOn("10.77.2.2").value_or(99)
                                       << " active connection(s) after the client closed them";
}

TEST_F(IpvsTraffic, FirewallMarkGroupKeepsAClientOnOneRealServerAcrossPorts) {
  VirtualService group;
  group.fwmark = 7;
  group.family = 2;
  group.scheduler = "rr";
  group.persistenceSeconds = 300;
  group.listeners = {{"10.77.1.100", 80}, {"10.77.1.100", 8080}};
  group.reals = {real("10.77.2.2", 0, 1, Forwarding::Nat), real("10.77.3.2", 0, 1, Forwarding::Nat)};
  FirewallMarkedDataplane marked(openIpvsDataplane(), "/usr/sbin/nft");
  marked.apply({group});
  const std::string rules = mustRun("/usr/sbin/nft list table inet shoal_lvs");
  std::printf("%s", rules.c_str());  // for the log
  EXPECT_NE(rules.find("ip daddr 10.77.1.100 tcp dport 80 meta mark set 0x00000007"), std::string::npos) << rules;
  EXPECT_NE(rules.find("ip daddr 10.77.1.100 tcp dport 8080 meta mark set 0x00000007"), std::string::npos) << rules;

  std::vector<std::string> answers;
  for (int i = 0; i < 6; ++i) answers.push_back(fetchFromClient(i % 2 == 0 ? 80 : 8080));
  for (const auto& a : answers) {
    EXPECT_TRUE(a == "served-by-rs1" || a == "served-by-rs2") << a;
    EXPECT_EQ(a, answers[0]) << "the client moved to another real server across the group's ports";
  }
  // A second apply changes neither IPVS nor the marks; removing the group removes the table.
  EXPECT_FALSE(marked.apply({group}).changedAnything());
  marked.apply({});
  EXPECT_NE(guest::run("/usr/sbin/nft list table inet shoal_lvs").exitCode, 0);
}

}  // namespace
}  // namespace shoal::lvs
