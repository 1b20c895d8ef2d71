// The manager's health service end to end inside one process: real loopback servers stand
// in for the daemons of two nodes (an "nginx" serving http and https, a "dovecot" serving
// imap and pop3, on each node), the node registry on a real SQLite store, the real health
// engine, event bus and plugin host, and a real plugin (tests/plugins/eventlog.cpp) whose
// hook records every health.changed it receives. Daemons are killed and restored over
// several rounds, one at a time and two at once, with maintenance toggled in between; every
// change must reach the hook exactly once, in order per (node, service), and in time.
#include <Poco/AutoPtr.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "LoopbackServer.hpp"
#include "cluster/NodeRegistry.hpp"
#include "common/Platform.hpp"
#include "host/EventBus.hpp"
#include "host/PluginHost.hpp"
#include "manager/HealthService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/DocumentStore.hpp"
#include "store/Store.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using shoal::health::test::Behaviour;
using shoal::health::test::LoopbackServer;

namespace {

constexpr auto kInterval = 100ms;
constexpr auto kTimeout = 300ms;
constexpr std::uint32_t kFall = 2, kRise = 2;
// Scheduling on a shared, busy machine; far below any lost wake-up (those wait for the
// next change, seconds or forever).
constexpr auto kSlack = 400ms;
constexpr auto kFallDeadline = kInterval * kFall + kTimeout + kSlack;
constexpr auto kRiseDeadline = kInterval * kRise + kTimeout + kSlack;

using Key = std::pair<std::string, std::string>;  // node id, service

struct Event {
  std::string state, previous;
  bool maintenance = false, serving = false;
};

// One daemon of a node: the listeners of all the services it serves, stopped and started
// together, on the same addresses each time.
class Daemon {
 public:
  struct Listener {
    std::string service;
    std::uint16_t port;
    Behaviour behaviour;
    bool tls;
  };
  Daemon(std::string nodeId, std::string address, std::vector<Listener> listeners)
      : nodeId_(std::move(nodeId)), address_(std::move(address)), listeners_(std::move(listeners)) {}

  void start() {
    for (const auto& l : listeners_)
      servers_.push_back(std::make_unique<LoopbackServer>(
          l.behaviour, l.tls ? shoal::health::test::makeSelfSignedServerContext() : nullptr, address_, l.port));
  }
  void kill() { servers_.clear(); }
  std::vector<Key> keys() const {
    std::vector<Key> out;
    for (const auto& l : listeners_) out.emplace_back(nodeId_, l.service);
    return out;
  }
  std::string name() const { return listeners_.front().service + "+" + listeners_.back().service + "@" + address_; }

 private:
  std::string nodeId_, address_;
  std::vector<Listener> listeners_;
  std::vector<std::unique_ptr<LoopbackServer>> servers_;
};

class HealthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-healthservice-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    eventFile_ = dir_ / "events.log";
    store_ = shoal::store::Store::open({"sqlite:" + (dir_ / "test.db").string(), dir_});
    store_->migrate();
    documents_ = std::make_unique<shoal::store::DocumentStore>(*store_);
    nodes_ = std::make_unique<shoal::cluster::NodeRegistry>(*store_);
    const auto facts = shoal::detectPlatform();
    nodes_->ensureClusterPlatform({facts.hostname, facts.osId, facts.osVersion, facts.arch, shoal::build::kVersion, "127.0.0.1"});

    for (auto* port : {&httpPort_, &httpsPort_, &imapPort_, &pop3Port_}) *port = shoal::health::test::deadPort();
    config_ = new Poco::Util::MapConfiguration;
    config_->setString("plugin.eventlog.file", eventFile_.string());
    config_->setString("plugin.eventlog.http_port", std::to_string(httpPort_));
    config_->setString("plugin.eventlog.https_port", std::to_string(httpsPort_));
    config_->setString("plugin.eventlog.imap_port", std::to_string(imapPort_));
    config_->setString("plugin.eventlog.pop3_port", std::to_string(pop3Port_));
    plugins_ = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{config_.get(), documents_.get()});
    const auto record = plugins_->load(fs::path(SHOAL_EVENT_PLUGIN_DIR) / "eventlog.so");
    ASSERT_EQ(record.state, shoal::host::PluginState::Loaded) << record.reason;
    events_ = std::make_unique<shoal::host::EventBus>(plugins_->registries());
  }
  void TearDown() override {
    health_.reset();
    events_.reset();
    plugins_.reset();
    nodes_.reset();
    documents_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::string enrol(const std::string& hostname, const std::string& address, std::vector<std::string> roles) {
    const auto facts = shoal::detectPlatform();
    auto token = nodes_->createJoinToken(std::chrono::hours(1));
    auto enrolment = nodes_->enrol(token.secret, {hostname, facts.osId, facts.osVersion, facts.arch, shoal::build::kVersion, address},
                                   shoal::build::kVersion);
    nodes_->setRoles(enrolment.node.id, roles);
    return std::to_string(enrolment.node.id);
  }

  void startHealth() {
    shoal::health::HealthDefaults defaults;
    defaults.interval = kInterval;
    defaults.timeout = kTimeout;
    defaults.fall = kFall;
    defaults.rise = kRise;
    defaults.flapThreshold = 1000;  // the deadlines assume the plain rise; damping has its own tests
    health_ = std::make_unique<shoal::manager::HealthService>(*nodes_, &plugins_->registries(), events_.get(), defaults);
    health_->start();
  }

  // Every health.changed the plugin's hook received so far, per key, in order.
  std::map<Key, std::vector<Event>> received() {
    std::map<Key, std::vector<Event>> out;
    std::ifstream in(eventFile_);
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string at, event, payload;
      fields >> at >> event;
      std::getline(fields, payload);
      if (event != "health.changed") continue;
      auto o = Poco::JSON::Parser().parse(payload).extract<Poco::JSON::Object::Ptr>();
      out[{o->getValue<std::string>("node_id"), o->getValue<std::string>("service")}].push_back(
          {o->getValue<std::string>("state"), o->getValue<std::string>("previous"), o->getValue<bool>("maintenance"),
           o->getValue<bool>("serving")});
    }
    return out;
  }

  // Checks what the hook received against what must have happened: for every key, each
  // event says a change (no duplicate) whose "previous" is the state of the event before it;
  // the states it went through are `states_[key]` and its maintenance flags `maintenance_[key]`.
  // Returns "" when all of it arrived, "incomplete: ..." when some is still missing, or what
  // is wrong.
  std::string check() {
    auto got = received();
    std::string missing;
    for (const auto& [key, expectedStates] : states_) {
      const auto& events = got[key];
      const std::string name = key.second + " on node " + key.first;
      std::vector<std::string> states;
      std::vector<bool> maintenance{false};
      std::string last = "unknown";
      for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& e = events[i];
        if (e.previous != (states.empty() ? "unknown" : states.back()))
          return name + ": event " + std::to_string(i) + " says previous=" + e.previous + " but the one before said " + last;
        if (i > 0 && e.state == events[i - 1].state && e.maintenance == events[i - 1].maintenance &&
            e.serving == events[i - 1].serving)
          return name + ": event " + std::to_string(i) + " repeats the one before (" + e.state + ")";
        if (e.serving != (e.state != "unhealthy" && !e.maintenance))
          return name + ": event " + std::to_string(i) + " says serving=" + (e.serving ? "true" : "false") + " with state " + e.state;
        if (states.empty() || states.back() != e.state) states.push_back(e.state);
        if (maintenance.back() != e.maintenance) maintenance.push_back(e.maintenance);
        last = e.state;
      }
      auto describe = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
        return s;
      };
      const auto& expectedMaintenance = maintenance_[key];
      const bool statesPrefix = states.size() <= expectedStates.size() &&
                                std::equal(states.begin(), states.end(), expectedStates.begin());
      const bool maintenancePrefix = maintenance.size() <= expectedMaintenance.size() &&
                                     std::equal(maintenance.begin(), maintenance.end(), expectedMaintenance.begin());
      if (!statesPrefix)
        return name + ": states went " + describe(states) + ", expected " + describe(expectedStates);
      if (!maintenancePrefix) return name + ": maintenance flags out of order";
      if (states.size() < expectedStates.size() || maintenance.size() < expectedMaintenance.size())
        missing += " " + name + " (received " + describe(states) + ", expected " + describe(expectedStates) + ")";
    }
    return missing.empty() ? "" : "incomplete:" + missing;
  }

  // Waits until everything expected has arrived, up to `deadline` from `since`.
  void expectDelivered(std::chrono::steady_clock::time_point since, std::chrono::milliseconds deadline,
                       const std::string& what) {
    std::string result;
    for (;;) {
      result = check();
      if (result.empty()) return;
      if (result.rfind("incomplete:", 0) != 0) break;  // wrong, not late
      if (std::chrono::steady_clock::now() - since > deadline) {
        result = "late or lost, " + std::to_string(deadline.count()) + " ms after " + what + ": " + result.substr(11);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    FAIL() << result;
  }

  void expectState(const std::vector<Key>& keys, const std::string& state) {
    for (const auto& key : keys) states_[key].push_back(state);
  }

  fs::path dir_, eventFile_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::store::DocumentStore> documents_;
  std::unique_ptr<shoal::cluster::NodeRegistry> nodes_;
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<shoal::host::PluginHost> plugins_;
  std::unique_ptr<shoal::host::EventBus> events_;
  std::unique_ptr<shoal::manager::HealthService> health_;
  std::uint16_t httpPort_ = 0, httpsPort_ = 0, imapPort_ = 0, pop3Port_ = 0;
  std::map<Key, std::vector<std::string>> states_;
  std::map<Key, std::vector<bool>> maintenance_;
};

}  // namespace

TEST_F(HealthServiceTest, EveryChangeOfEveryServiceReachesTheHookOnceInOrderAndInTime) {
  const std::string a = enrol("node-a", "127.0.0.2", {"http", "https", "imap", "pop3"});
  const std::string b = enrol("node-b", "127.0.0.3", {"http", "https", "imap", "pop3"});
  Behaviour web;
  web.httpResponse = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  Behaviour imap;
  imap.greeting = "* OK ready\r\n";
  Behaviour pop3;
  pop3.greeting = "+OK ready\r\n";
  auto nginx = [&](const std::string& node, const std::string& address) {
    return Daemon(node, address, {{"http", httpPort_, web, false}, {"https", httpsPort_, web, true}});
  };
  auto dovecot = [&](const std::string& node, const std::string& address) {
    return Daemon(node, address, {{"imap", imapPort_, imap, false}, {"pop3", pop3Port_, pop3, false}});
  };
  std::vector<Daemon> daemons;
  daemons.push_back(nginx(a, "127.0.0.2"));
  daemons.push_back(dovecot(a, "127.0.0.2"));
  daemons.push_back(nginx(b, "127.0.0.3"));
  daemons.push_back(dovecot(b, "127.0.0.3"));
  for (auto& d : daemons) {
    d.start();
    expectState(d.keys(), "healthy");
    for (const auto& key : d.keys()) maintenance_[key] = {false};
  }

  auto started = std::chrono::steady_clock::now();
  startHealth();
  // First results: spread over the first interval, one probe each.
  expectDelivered(started, kInterval + kTimeout + kSlack, "start");
  ASSERT_FALSE(HasFailure());

  // Each round kills and restores every daemon in turn, then two on different nodes at
  // once, and takes a service into maintenance and out again while its daemon is down.
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < daemons.size(); ++i) {
      auto& d = daemons[i];
      auto at = std::chrono::steady_clock::now();
      d.kill();
      expectState(d.keys(), "unhealthy");
      expectDelivered(at, kFallDeadline, "killing " + d.name() + " in round " + std::to_string(round));
      ASSERT_FALSE(HasFailure());

      if (i == static_cast<std::size_t>(round)) {
        const auto key = d.keys().front();
        health_->setMaintenance(std::stoll(key.first), key.second, true);
        health_->setMaintenance(std::stoll(key.first), key.second, false);
        maintenance_[key].push_back(true);
        maintenance_[key].push_back(false);
      }

      at = std::chrono::steady_clock::now();
      d.start();
      expectState(d.keys(), "healthy");
      expectDelivered(at, kRiseDeadline, "restoring " + d.name() + " in round " + std::to_string(round));
      ASSERT_FALSE(HasFailure());
    }
    auto& first = daemons[round % 2];        // a daemon of node a
    auto& second = daemons[2 + (round + 1) % 2];  // a daemon of node b
    auto at = std::chrono::steady_clock::now();
    first.kill();
    second.kill();
    expectState(first.keys(), "unhealthy");
    expectState(second.keys(), "unhealthy");
    expectDelivered(at, kFallDeadline, "killing " + first.name() + " and " + second.name());
    ASSERT_FALSE(HasFailure());
    at = std::chrono::steady_clock::now();
    first.start();
    second.start();
    expectState(first.keys(), "healthy");
    expectState(second.keys(), "healthy");
    expectDelivered(at, kRiseDeadline, "restoring " + first.name() + " and " + second.name());
    ASSERT_FALSE(HasFailure());
  }

  // Nothing more arrives afterwards: no duplicate was still on its way.
  std::this_thread::sleep_for(kInterval * 5);
  EXPECT_EQ(check(), "");
  // And the service's own view agrees with what the hook was told last.
  for (const auto& h : health_->list()) {
    EXPECT_EQ(std::string(shoal::health::healthStateName(h.status.state)), "healthy") << h.status.service;
    EXPECT_TRUE(h.serving());
  }
}
