// The node agent's journal, and the agent against a real manager over TLS: what the journal
// already holds is answered from it, never applied again.
#include <gtest/gtest.h>

#include <Poco/AutoPtr.h>
#include <Poco/Util/MapConfiguration.h>

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "agent/Journal.hpp"
#include "agent/NodeAgent.hpp"
#include "api/JoinToken.hpp"
#include "common/Error.hpp"
#include "host/PluginHost.hpp"
#include "host/StatsSample.hpp"
#include "manager/ManagerService.hpp"
#include "store/Store.hpp"

namespace fs = std::filesystem;
using shoal::agent::Journal;
using shoal::agent::JournalEntry;

namespace {
fs::path freshDir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("shoal-agent-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
// A manager on loopback with its own SQLite store under dir/manager, started.
struct RunningManager {
  std::unique_ptr<shoal::store::Store> store;
  std::unique_ptr<shoal::manager::ManagerService> service;
};
RunningManager startManager(const fs::path& dir) {
  RunningManager m;
  m.store = shoal::store::Store::open({"sqlite", dir / "manager"});
  m.store->migrate();
  shoal::manager::ManagerSettings settings;
  settings.dataDir = dir / "manager";
  settings.listenAddress = "127.0.0.1";
  settings.port = 0;
  settings.advertiseAddress = "127.0.0.1";
  m.service = std::make_unique<shoal::manager::ManagerService>(*m.store, nullptr, settings);
  m.service->start();
  return m;
}

// Plugins of a node: the recorder plugin, writing what it applies into dir/applied.
std::unique_ptr<shoal::host::PluginHost> recorderPlugins(const fs::path& dir) {
  Poco::AutoPtr<Poco::Util::MapConfiguration> config(new Poco::Util::MapConfiguration);
  config->setString("plugin.recorder.file", (dir / "applied").string());
  auto plugins = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{config.get(), nullptr});
  EXPECT_EQ(plugins->load(SHOAL_E2E_PLUGIN_DIR "/recorder.so").state, shoal::host::PluginState::Loaded);
  return plugins;
}

std::string appliedLines(const fs::path& dir) {
  std::ifstream applied(dir / "applied");
  return std::string((std::istreambuf_iterator<char>(applied)), std::istreambuf_iterator<char>());
}

// Enrols a node keeping its identity in dir/node.
shoal::agent::NodeIdentity enrolNode(shoal::manager::ManagerService& manager, const fs::path& dir) {
  auto issued = manager.nodes().createJoinToken(std::chrono::minutes(5));
  auto token = shoal::api::encodeJoinToken({manager.advertisedEndpoint(), issued.secret, manager.caFingerprint()});
  return shoal::agent::NodeAgent::enrol(dir / "node", token, "127.0.0.1");
}
}  // namespace

TEST(Journal, RecordsSurviveReopening) {
  auto dir = freshDir("journal");
  {
    Journal journal(dir / "journal.log");
    journal.record(7, JournalEntry{true, "applied\nwith a newline; and a semicolon"});
    journal.record(9, JournalEntry{false, ""});
    journal.sync();
  }
  Journal reopened(dir / "journal.log");
  EXPECT_EQ(reopened.size(), 2u);
  auto seven = reopened.find(7);
  ASSERT_TRUE(seven);
  EXPECT_TRUE(seven->succeeded);
  EXPECT_EQ(seven->output, "applied\nwith a newline; and a semicolon");
  ASSERT_TRUE(reopened.find(9));
  EXPECT_FALSE(reopened.find(9)->succeeded);
  EXPECT_FALSE(reopened.find(8));
  fs::remove_all(dir);
}

TEST(Journal, ATornLastRecordIsIgnoredAndLaterRecordsStillRead) {
  auto dir = freshDir("torn");
  {
    Journal journal(dir / "journal.log");
    journal.record(1, JournalEntry{true, "one"});
    journal.sync();
  }
  {
    std::ofstream torn(dir / "journal.log", std::ios::app);
    torn << "2 1 dHdv";  // a crash in the middle of a record: no terminator
  }
  {
    Journal journal(dir / "journal.log");
    EXPECT_TRUE(journal.find(1));
    EXPECT_FALSE(journal.find(2));
    journal.record(3, JournalEntry{true, "three"});
    journal.sync();
  }
  Journal reopened(dir / "journal.log");
  EXPECT_TRUE(reopened.find(1));
  EXPECT_FALSE(reopened.find(2));
  ASSERT_TRUE(reopened.find(3));
  EXPECT_EQ(reopened.find(3)->output, "three");
  fs::remove_all(dir);
}

TEST(Journal, ResultsStayUntilTheManagerTookThemAlsoAcrossReopening) {
  auto dir = freshDir("unreported");
  {
    Journal journal(dir / "journal.log");
    for (std::int64_t id : {4, 2, 9}) journal.record(id, JournalEntry{id != 9, "result " + std::to_string(id)});
    journal.sync();
    journal.acknowledge({2});
    ASSERT_EQ(journal.unreported().size(), 2u);
  }
  Journal reopened(dir / "journal.log");
  const auto held = reopened.unreported();
  ASSERT_EQ(held.size(), 2u) << "a taken result is not reported again after a restart";
  EXPECT_EQ(held[0].first, 4);
  EXPECT_TRUE(held[0].second.succeeded);
  EXPECT_EQ(held[1].first, 9);
  EXPECT_EQ(held[1].second.output, "result 9");
  EXPECT_FALSE(reopened.find(2));
  fs::remove_all(dir);
}

// A write that fails (here: past the file size limit, as a full disk cuts one short) leaves
// no record behind, neither in memory nor as a torn line the next record would run into.
TEST(Journal, AFailedWriteLeavesNoRecordAndTheNextOneIsReadBack) {
  auto dir = freshDir("write-fails");
  {
    Journal journal(dir / "journal.log");
    journal.record(1, JournalEntry{true, "one"});
    const auto size = fs::file_size(dir / "journal.log");
    struct rlimit old {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = old;
    limited.rlim_cur = size + 8;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
    std::string message;
    try {
      journal.record(2, JournalEntry{true, std::string(100, 'x')});
    } catch (const shoal::Error& e) {
      message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, oldHandler);
    EXPECT_NE(message.find("cannot record the result in the journal"), std::string::npos) << message;
    EXPECT_NE(message.find("File too large"), std::string::npos) << message;
    EXPECT_FALSE(journal.find(2));
    EXPECT_EQ(fs::file_size(dir / "journal.log"), size) << "the partly written record is cut off";
    journal.record(3, JournalEntry{true, "three"});
    journal.sync();
  }
  Journal reopened(dir / "journal.log");
  EXPECT_TRUE(reopened.find(1));
  EXPECT_FALSE(reopened.find(2));
  ASSERT_TRUE(reopened.find(3));
  EXPECT_EQ(reopened.find(3)->output, "three");
  fs::remove_all(dir);
}

TEST(Journal, AcknowledgedRecordsAreCompactedAway) {
  auto dir = freshDir("compaction");
  {
    Journal journal(dir / "journal.log", 2);
    for (std::int64_t id : {1, 2, 3}) journal.record(id, JournalEntry{true, "applied " + std::to_string(id)});
    journal.sync();
    EXPECT_EQ(journal.recordsInFile(), 3u);
    journal.acknowledge({1});
    EXPECT_EQ(journal.recordsInFile(), 3u) << "one acknowledgement is below the threshold";
    journal.acknowledge({2, 99});  // 99 was never recorded: nothing to forget
    EXPECT_EQ(journal.recordsInFile(), 1u) << "the file keeps only what is unacknowledged";
    EXPECT_FALSE(journal.find(1));
    journal.record(4, JournalEntry{false, "failed"});
    journal.sync();
    EXPECT_EQ(journal.recordsInFile(), 2u) << "records go on being appended to the new file";
  }
  Journal reopened(dir / "journal.log");
  EXPECT_EQ(reopened.size(), 2u);
  EXPECT_FALSE(reopened.find(1));
  EXPECT_FALSE(reopened.find(2));
  ASSERT_TRUE(reopened.find(3));
  EXPECT_EQ(reopened.find(3)->output, "applied 3");
  ASSERT_TRUE(reopened.find(4));
  EXPECT_FALSE(reopened.find(4)->succeeded);
  EXPECT_FALSE(fs::exists(dir / "journal.log.compact"));
  fs::remove_all(dir);
}

// Waits until the command's only delivery is done; false after 20 s.
bool deliveredWithin20s(shoal::manager::ManagerService& manager, std::int64_t commandId) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto command = manager.queue().find(commandId);
    if (command && command->deliveries.at(0).state == shoal::cluster::DeliveryState::Done) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A failed attempt in the journal is no answer: the delivery came back to be tried again.
TEST(NodeAgent, AFailedAttemptInTheJournalIsAppliedAgain) {
  auto dir = freshDir("failed-attempt");
  auto running = startManager(dir);
  auto& manager = *running.service;
  auto plugins = recorderPlugins(dir);
  enrolNode(manager, dir);
  auto command = manager.queue().enqueue("recorder.apply", R"({"key":"a","seq":1})", "a", shoal::cluster::Target::all());
  {
    Journal journal(dir / "node" / "journal.log");
    journal.record(command.deliveries.at(0).id, JournalEntry{false, "the disk was full"});
    journal.sync();
  }
  shoal::agent::NodeAgent agent(plugins->registries(), {dir / "node", std::chrono::milliseconds(500)});
  agent.start();
  EXPECT_TRUE(deliveredWithin20s(manager, command.id));
  agent.stop();
  EXPECT_EQ(appliedLines(dir), "a 1\n");
  plugins->shutdown();
  manager.stop();
  running.service.reset();  // before the store it uses
  running.store.reset();
  fs::remove_all(dir);
}

// ABI 1.3: a handler registered with on_apply_ctx learns the command, the delivery, the
// node, the attempt, the kind and the ordering key of what the agent applies.
TEST(NodeAgent, AHandlerSeesTheIdsOfTheDeliveryItApplies) {
  auto dir = freshDir("apply-context");
  auto running = startManager(dir);
  auto& manager = *running.service;
  auto plugins = recorderPlugins(dir);
  auto identity = enrolNode(manager, dir);
  // A second node and a command for both, so command and delivery ids differ.
  enrolNode(manager, dir / "other");
  manager.queue().enqueue("recorder.apply", R"({"key":"a","seq":1})", "a", shoal::cluster::Target::all());
  auto command = manager.queue().enqueue("recorder.context", "{}", "site-7", shoal::cluster::Target::node(identity.nodeId));
  shoal::agent::NodeAgent agent(plugins->registries(), {dir / "node", std::chrono::milliseconds(500)});
  agent.start();
  ASSERT_TRUE(deliveredWithin20s(manager, command.id));
  agent.stop();
  const auto delivery = manager.queue().find(command.id)->deliveries.at(0);
  EXPECT_EQ(delivery.output, "command=" + std::to_string(command.id) + " delivery=" + std::to_string(delivery.id) +
                                 " node=" + std::to_string(identity.nodeId) +
                                 " attempt=1 kind=recorder.context key=site-7");
  EXPECT_NE(command.id, delivery.id) << "the test needs command and delivery ids apart";
  plugins->shutdown();
  manager.stop();
  running.service.reset();  // before the store it uses
  running.store.reset();
  fs::remove_all(dir);
}

// The node applied a delivery and stopped before the manager took the result: restarted, it
// reports the result before it says "started", so the delivery is done as it was applied, and
// never goes back to pending to be offered (and answered) a second time.
TEST(NodeAgent, ResultsInTheJournalAreReportedBeforeTheNodeSaysItStarted) {
  auto dir = freshDir("results-first");
  auto running = startManager(dir);
  auto& manager = *running.service;
  auto plugins = recorderPlugins(dir);
  auto identity = enrolNode(manager, dir);
  auto command = manager.queue().enqueue("recorder.apply", R"({"key":"a","seq":1})", "a", shoal::cluster::Target::all());
  // Claimed and applied by the node before it stopped; the report never reached the manager.
  auto claimed = manager.queue().claimReady(identity.nodeId, 10);
  ASSERT_EQ(claimed.size(), 1u);
  {
    Journal journal(dir / "node" / "journal.log");
    journal.record(claimed[0].id, JournalEntry{true, "applied before the stop"});
    journal.sync();
  }
  shoal::agent::NodeAgent agent(plugins->registries(), {dir / "node", std::chrono::milliseconds(500)});
  agent.start();
  ASSERT_TRUE(deliveredWithin20s(manager, command.id));
  agent.stop();
  const auto delivery = manager.queue().find(command.id)->deliveries.at(0);
  EXPECT_EQ(delivery.output, "applied before the stop");
  EXPECT_EQ(delivery.attempts, 1) << "the delivery was offered again after the node's restart";
  EXPECT_EQ(appliedLines(dir), "");
  EXPECT_EQ(Journal(dir / "node" / "journal.log").size(), 0u) << "the taken result is forgotten";
  plugins->shutdown();
  manager.stop();
  running.service.reset();  // before the store it uses
  running.store.reset();
  fs::remove_all(dir);
}

TEST(NodeAgent, ADeliveryAlreadyInTheJournalIsAnsweredFromItNotAppliedAgain) {
  auto dir = freshDir("redelivery");
  auto running = startManager(dir);
  auto& manager = *running.service;

  // A node with the recorder plugin, recording into a file we can inspect.
  auto plugins = recorderPlugins(dir);
  auto identity = enrolNode(manager, dir);

  auto first = manager.queue().enqueue("recorder.apply", R"({"key":"a","seq":1})", "a",
                                       shoal::cluster::Target::all());
  auto second = manager.queue().enqueue("recorder.apply", R"({"key":"a","seq":2})", "a",
                                        shoal::cluster::Target::all());
  // As if the node had applied the first one and then lost the acknowledgement.
  {
    Journal journal(dir / "node" / "journal.log");
    journal.record(first.deliveries.at(0).id, JournalEntry{true, "applied before the crash"});
    journal.sync();
  }

  shoal::agent::NodeAgent agent(plugins->registries(), {dir / "node", std::chrono::milliseconds(500)});
  agent.start();
  ASSERT_TRUE(deliveredWithin20s(manager, second.id));
  agent.stop();
  auto done = manager.queue().find(second.id);
  EXPECT_EQ(manager.queue().find(first.id)->deliveries.at(0).output, "applied before the crash");
  // Only the second command reached the handler.
  EXPECT_EQ(appliedLines(dir), "a 2\n");
  EXPECT_EQ(identity.nodeId, done->deliveries.at(0).nodeId);

  plugins->shutdown();
  manager.stop();
  running.service.reset();  // before the store it uses
  running.store.reset();
  fs::remove_all(dir);
}

// A director that is not the manager hands its balancer samples to its agent, which carries
// them to the manager's RRD files over the node's own TLS credential.
TEST(NodeAgent, StatisticsSamplesReachTheManagersRrdFiles) {
  auto dir = freshDir("stats");
  auto running = startManager(dir);
  auto& manager = *running.service;
  shoal::host::PluginHost plugins({nullptr, nullptr});
  enrolNode(manager, dir);
  shoal::agent::NodeAgent agent(plugins.registries(), {dir / "node", std::chrono::milliseconds(500)});
  agent.start();

  const auto now = shoal::host::unixNowSeconds();
  auto samples = shoal::host::parseStatsSamples(
      R"([{"series": "service.tcp:192.0.2.10:80", "time": )" + std::to_string(now - 20) +
          R"(, "title": "tcp:192.0.2.10:80", "conns": 5, "packets_in": 50, "packets_out": 40, "bytes_in": 5000, "bytes_out": 90000},
          {"series": "service.tcp:192.0.2.10:80", "time": )" + std::to_string(now - 10) +
          R"(, "title": "tcp:192.0.2.10:80", "conns": 12, "packets_in": 120, "packets_out": 96, "bytes_in": 12000, "bytes_out": 216000}])",
      "lvs.", now);
  agent.forwardStats(samples);

  std::optional<shoal::host::StatsSample> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    for (const auto& s : manager.stats().latest())
      if (s.series == "lvs.service.tcp:192.0.2.10:80" && s.conns == 12) got = s;
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  agent.stop();
  ASSERT_TRUE(got) << "the samples did not reach the manager";
  EXPECT_EQ(got->timeSeconds, now - 10);
  EXPECT_EQ(got->bytesOut, 216000u);
  EXPECT_EQ(got->title, "tcp:192.0.2.10:80");
  EXPECT_TRUE(fs::exists(dir / "manager" / "rrd" / "lvs.service.tcp:192.0.2.10:80.rrd"));
  // The same samples again (a resent batch) change nothing.
  EXPECT_NO_THROW(manager.stats().record(samples));
  plugins.shutdown();
  manager.stop();
  running.service.reset();  // before the store it uses
  running.store.reset();
  fs::remove_all(dir);
}

TEST(StatsSamples, MalformedSamplesAreRefusedNamingTheField) {
  auto refusal = [](const std::string& json) {
    try {
      shoal::host::parseStatsSamples(json, "lvs.", 1000);
    } catch (const shoal::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refusal(R"({"series": "x"})").find("JSON array"), std::string::npos);
  EXPECT_NE(refusal(R"([{"series": "a b", "conns": 1, "packets_in": 1, "packets_out": 1, "bytes_in": 1, "bytes_out": 1}])")
                .find("samples[0].series"),
            std::string::npos);
  EXPECT_NE(refusal(R"([{"series": "a", "conns": -1, "packets_in": 1, "packets_out": 1, "bytes_in": 1, "bytes_out": 1}])")
                .find("samples[0].conns"),
            std::string::npos);
  EXPECT_NE(refusal(R"([{"series": "a", "conns": 1, "packets_in": 1, "packets_out": 1, "bytes_in": 1}])")
                .find("samples[0].bytes_out: is required"),
            std::string::npos);
  EXPECT_NE(refusal(R"([{"series": "a", "conns": 1.5, "packets_in": 1, "packets_out": 1, "bytes_in": 1, "bytes_out": 1}])")
                .find("samples[0].conns"),
            std::string::npos);
  auto ok = shoal::host::parseStatsSamples(
      R"([{"series": "a", "conns": 18446744073709551615, "packets_in": 1, "packets_out": 1, "bytes_in": 1, "bytes_out": 1}])",
      "lvs.", 1000);
  EXPECT_EQ(ok.at(0).series, "lvs.a");
  EXPECT_EQ(ok.at(0).timeSeconds, 1000);
  EXPECT_EQ(ok.at(0).conns, 18446744073709551615ull);
}
