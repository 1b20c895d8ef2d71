// The node's statistics forwarder against a real manager over TLS: it backs off while the
// manager cannot be reached, and stops for good once the manager refuses the node's
// credential because the node was removed.
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "agent/ManagerClient.hpp"
#include "agent/NodeAgent.hpp"
#include "agent/StatsForwarder.hpp"
#include "api/JoinToken.hpp"
#include "host/StatsSample.hpp"
#include "manager/ManagerService.hpp"
#include "store/Store.hpp"
#include "tls/Contexts.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

class StatsForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-statsforwarder-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = shoal::store::Store::open({"sqlite", dir_ / "manager"});
    store_->migrate();
    shoal::manager::ManagerSettings settings;
    settings.dataDir = dir_ / "manager";
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    manager_ = std::make_unique<shoal::manager::ManagerService>(*store_, nullptr, settings);
    manager_->start();
    auto issued = manager_->nodes().createJoinToken(5min);
    auto token = shoal::api::encodeJoinToken({manager_->advertisedEndpoint(), issued.secret, manager_->caFingerprint()});
    identity_ = shoal::agent::NodeAgent::enrol(dir_ / "node", token, "127.0.0.1");
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<shoal::agent::ManagerClient> client(const std::string& endpoint) {
    return std::make_unique<shoal::agent::ManagerClient>(endpoint, shoal::tls::makeClientContext(identity_.caFile),
                                                         identity_.credential);
  }

  static std::vector<shoal::host::StatsSample> samples(std::int64_t seq) {
    const auto now = shoal::host::unixNowSeconds();
    return shoal::host::parseStatsSamples(R"([{"series": "service.tcp:192.0.2.10:80", "time": )" +
                                              std::to_string(now) + R"(, "conns": )" + std::to_string(seq) +
                                              R"(, "packets_in": 1, "packets_out": 1, "bytes_in": 1, "bytes_out": 1}])",
                                          "lvs.", now);
  }

  // Submits a sample every 20 ms for `period`.
  static void keepSubmitting(shoal::agent::StatsForwarder& forwarder, std::chrono::milliseconds period) {
    const auto until = std::chrono::steady_clock::now() + period;
    for (std::int64_t seq = 1; std::chrono::steady_clock::now() < until; ++seq) {
      forwarder.submit(samples(seq));
      std::this_thread::sleep_for(20ms);
    }
  }

  fs::path dir_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::manager::ManagerService> manager_;
  shoal::agent::NodeIdentity identity_;
};

}  // namespace

TEST_F(StatsForwarderTest, ARemovedNodeStopsSendingAfterTheFirstRefusal) {
  shoal::agent::StatsForwarderSettings settings;
  settings.flushEvery = 50ms;
  shoal::agent::StatsForwarder forwarder(client(identity_.manager), settings);
  forwarder.start();
  keepSubmitting(forwarder, 300ms);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(forwarder.queued(), 0u) << "the manager did not take the samples of an enrolled node";
  EXPECT_FALSE(forwarder.refused());

  manager_->nodes().remove(identity_.nodeId);
  const auto before = forwarder.attempts();
  keepSubmitting(forwarder, 1500ms);
  // One request learns the node is removed; none follows (at every 50 ms that would be ~30).
  EXPECT_TRUE(forwarder.refused());
  EXPECT_EQ(forwarder.attempts() - before, 1u);
  EXPECT_EQ(forwarder.queued(), 0u) << "samples of a removed node are dropped, not kept";
  forwarder.stop();
}

TEST_F(StatsForwarderTest, BacksOffWhileTheManagerCannotBeReached) {
  std::uint16_t deadPort = 0;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    deadPort = probe.address().port();
  }
  shoal::agent::StatsForwarderSettings settings;
  settings.flushEvery = 50ms;
  settings.maxBackoff = 400ms;
  shoal::agent::StatsForwarder forwarder(client("127.0.0.1:" + std::to_string(deadPort)), settings);
  forwarder.start();
  keepSubmitting(forwarder, 2000ms);
  // Waits of 50, 100, 200, 400, 400, ... ms: about 7 tries in 2 s, not 40.
  const auto tries = forwarder.attempts();
  EXPECT_GE(tries, 4u);
  EXPECT_LE(tries, 10u);
  EXPECT_FALSE(forwarder.refused());
  EXPECT_GT(forwarder.queued(), 0u) << "samples wait while the manager is unreachable";
  forwarder.stop();
}
