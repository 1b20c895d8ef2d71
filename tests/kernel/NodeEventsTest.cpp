// node.joined and node.left reach real plugins' hooks: a node enrols over the manager's HTTPS
// API, falls silent, is heard from again, and is removed. The eventlog test plugin records
// every event; the example plugin (examples/hello) logs the node.joined it receives.
#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/ManagerClient.hpp"
#include "api/JoinToken.hpp"
#include "common/Platform.hpp"
#include "host/PluginHost.hpp"
#include "manager/ManagerService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/DocumentStore.hpp"
#include "store/Store.hpp"
#include "tls/Contexts.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Poco::JSON::Object;
using shoal::agent::ManagerClient;

namespace {

// Keeps the messages logged to one logger.
class Captured : public Poco::Channel {
 public:
  void log(const Poco::Message& message) override {
    std::lock_guard lock(mutex_);
    lines_.push_back(message.getText());
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

struct NodeEvent {
  std::string event;
  Object::Ptr payload;
};

class NodeEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-nodeevents-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    eventFile_ = dir_ / "events.log";
    store_ = shoal::store::Store::open({"sqlite", dir_});
    store_->migrate();
    documents_ = std::make_unique<shoal::store::DocumentStore>(*store_);
    config_ = new Poco::Util::MapConfiguration;
    config_->setString("plugin.eventlog.file", eventFile_.string());
    helloLog_ = new Captured;
    Poco::Logger::get("plugin.hello").setChannel(helloLog_);
    Poco::Logger::get("plugin.hello").setLevel(Poco::Message::PRIO_INFORMATION);
    plugins_ = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{config_.get(), documents_.get()});
    for (const fs::path& file : {fs::path(SHOAL_EVENT_PLUGIN_DIR) / "eventlog.so", fs::path(SHOAL_TEST_PLUGIN_DIR) / "hello.so"}) {
      const auto record = plugins_->load(file);
      ASSERT_EQ(record.state, shoal::host::PluginState::Loaded) << record.reason;
    }
    shoal::manager::ManagerSettings settings;
    settings.dataDir = dir_;
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    settings.offlineAfter = 1s;
    manager_ = std::make_unique<shoal::manager::ManagerService>(*store_, &plugins_->registries(), settings);
    manager_->start();
    std::ifstream token(manager_->adminTokenFile());
    std::getline(token, adminToken_);
  }
  void TearDown() override {
    manager_.reset();
    plugins_.reset();
    Poco::Logger::get("plugin.hello").setChannel(nullptr);
    documents_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  ManagerClient client(const std::string& bearer) {
    return ManagerClient(manager_->advertisedEndpoint(), shoal::tls::makeClientContext(manager_->caFile()), bearer);
  }

  // Enrols a node the way a node does: the join token's secret, the pinned CA.
  Object::Ptr join() {
    auto reply = client(adminToken_).call("POST", "/v1/join-tokens", new Object);
    EXPECT_EQ(reply.status, 201) << reply.errorMessage();
    auto decoded = shoal::api::decodeJoinToken(reply.body->getValue<std::string>("token"));
    auto pin = std::make_shared<shoal::tls::PinResult>();
    ManagerClient node(decoded.manager, shoal::tls::makePinnedClientContext(decoded.caFingerprint, pin), decoded.secret);
    const auto facts = shoal::detectPlatform();
    Object::Ptr body = new Object;
    body->set("hostname", "node-a");
    body->set("os_id", facts.osId);
    body->set("os_version", facts.osVersion);
    body->set("arch", facts.arch);
    body->set("shoal_version", std::string(shoal::build::kVersion));
    body->set("address", "127.0.0.9");
    auto joined = node.call("POST", "/v1/join", body);
    EXPECT_EQ(joined.status, 201) << joined.errorMessage();
    return joined.body;
  }

  std::vector<NodeEvent> received() {
    std::vector<NodeEvent> out;
    std::ifstream in(eventFile_);
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string at, event, payload;
      fields >> at >> event;
      std::getline(fields, payload);
      if (event.rfind("node.", 0) != 0) continue;
      out.push_back({event, Poco::JSON::Parser().parse(payload).extract<Object::Ptr>()});
    }
    return out;
  }

  // Waits for the n-th node event (1-based) and checks it.
  void expectEvent(std::size_t n, const std::string& event, const std::string& reason, std::int64_t nodeId,
                   const std::string& state, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    auto events = received();
    while (events.size() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      events = received();
    }
    ASSERT_GE(events.size(), n) << "no " << event << " (" << reason << ") within " << within.count() << " ms";
    const auto& e = events[n - 1];
    EXPECT_EQ(e.event, event);
    EXPECT_EQ(e.payload->getValue<std::string>("reason"), reason);
    auto node = e.payload->getObject("node");
    ASSERT_TRUE(node);
    EXPECT_EQ(node->getValue<std::int64_t>("id"), nodeId);
    EXPECT_EQ(node->getValue<std::string>("hostname"), "node-a");
    EXPECT_EQ(node->getValue<std::string>("address"), "127.0.0.9");
    EXPECT_EQ(node->getValue<std::string>("state"), state);
    ASSERT_TRUE(node->getArray("roles"));
  }

  fs::path dir_, eventFile_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::store::DocumentStore> documents_;
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  Poco::AutoPtr<Captured> helloLog_;
  std::unique_ptr<shoal::host::PluginHost> plugins_;
  std::unique_ptr<shoal::manager::ManagerService> manager_;
  std::string adminToken_;
};

}  // namespace

TEST_F(NodeEventsTest, EnrolmentOfflineReturnAndRemovalReachTheHooksInOrder) {
  auto joined = join();
  const auto id = joined->getObject("node")->getValue<std::int64_t>("id");
  const std::string credential = joined->getValue<std::string>("credential");
  expectEvent(1, "node.joined", "enrolled", id, "online", 2s);

  // The example plugin's hook ran too, and logged the node it was told about.
  bool helloSaw = false;
  for (const auto& line : helloLog_->lines())
    helloSaw = helloSaw || (line.rfind("a node joined: ", 0) == 0 && line.find("\"hostname\":\"node-a\"") != std::string::npos);
  EXPECT_TRUE(helloSaw) << "examples/hello's node.joined hook did not log";

  // Silent past offline_after (1 s; the sweep runs every second).
  expectEvent(2, "node.left", "offline", id, "offline", 4s);

  // Heard from again: it comes back.
  auto node = client(credential);
  auto beat = node.call("POST", "/v1/node/heartbeat", new Object);
  ASSERT_EQ(beat.status, 200) << beat.errorMessage();
  expectEvent(3, "node.joined", "returned", id, "online", 2s);

  auto removed = client(adminToken_).call("DELETE", "/v1/nodes/" + std::to_string(id));
  ASSERT_EQ(removed.status, 200) << removed.errorMessage();
  expectEvent(4, "node.left", "removed", id, "removed", 2s);
  // Removing it again changes nothing and says nothing.
  ASSERT_EQ(client(adminToken_).call("DELETE", "/v1/nodes/" + std::to_string(id)).status, 200);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(received().size(), 4u);
}
