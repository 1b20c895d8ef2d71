#include <chrono>
#include <condition_variable>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "ClusterTest.hpp"

namespace shoal::cluster::test {
namespace {

class QueueConcurrencyTest : public ClusterTest {
 protected:
  void drainFiveThousand(bool batched);
};

// What the manager's long-poll does: agents that found nothing sleep until the next enqueue.
class Doorbell {
 public:
  std::uint64_t rings() {
    std::lock_guard<std::mutex> lock(mutex_);
    return rings_;
  }
  void ring() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++rings_;
    }
    cv_.notify_all();
  }
  void waitBeyond(std::uint64_t seen) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return rings_ != seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t rings_ = 0;
};

// A node agent: claim, check the order, report done; until `total` deliveries of this node are
// done. Appends every claimed command id per key to `order` (this node's view). `batched`
// reports a claim's results in one reportResults() call instead of one reportResult() each.
void drain(CommandQueue& queue, std::int64_t nodeId, std::size_t total, bool batched,
           Doorbell* bell, std::map<std::string, std::vector<std::int64_t>>& order,
           std::string& failure) {
  std::size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  try {
    while (done < total) {
      if (std::chrono::steady_clock::now() > deadline) {
        failure = "node " + std::to_string(nodeId) + " gave up after 10 minutes with " +
                  std::to_string(done) + " of " + std::to_string(total) + " done";
        return;
      }
      const std::uint64_t rings = bell ? bell->rings() : 0;
      const std::vector<Delivery> claimed = queue.claimReady(nodeId, 100);
      if (claimed.empty()) {
        if (bell) bell->waitBeyond(rings);
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::set<std::string> keysInBatch;
      for (const Delivery& d : claimed) {
        if (!keysInBatch.insert(d.orderingKey).second) {
          failure = "one claim handed out two deliveries of key " + d.orderingKey;
          return;
        }
        auto& seen = order[d.orderingKey];
        if (!seen.empty() && seen.back() >= d.commandId) {
          failure = "key " + d.orderingKey + " on node " + std::to_string(nodeId) + ": command " +
                    std::to_string(d.commandId) + " after " + std::to_string(seen.back());
          return;
        }
        seen.push_back(d.commandId);
      }
      if (batched) {
        std::vector<DeliveryResult> results;
        for (const Delivery& d : claimed) results.push_back(DeliveryResult{d.id, true, "ok"});
        queue.reportResults(nodeId, results);
      } else {
        for (const Delivery& d : claimed) queue.reportResult(d.id, nodeId, true, "ok");
      }
      done += claimed.size();
    }
  } catch (const std::exception& e) {
    failure = std::string("node ") + std::to_string(nodeId) + ": " + e.what();
  }
}

// 5,000 commands over 10 keys to all of three nodes: one producer enqueues while three node
// agents drain, the way the manager runs. Checks per-key order on every node and prints the
// time (informative; no assertion on it).
TEST_P(QueueConcurrencyTest, FiveThousandCommandsOverTenKeysDrainOnThreeNodesInPerKeyOrder) {
  drainFiveThousand(false);
}

TEST_P(QueueConcurrencyTest, FiveThousandCommandsEnqueuedAndReportedInBatchesDrainInPerKeyOrder) {
  drainFiveThousand(true);
}

void QueueConcurrencyTest::drainFiveThousand(bool batched) {
  constexpr int kCommands = 5000;
  constexpr int kKeys = 10;
  constexpr int kBatch = 100;
  const std::vector<Node> nodes = {enrolNode("a.example.org"), enrolNode("b.example.org"),
                                   enrolNode("c.example.org")};
  CommandQueue queue(store(), QueuePolicy{}, clock());
  Doorbell bell;

  std::map<std::string, std::vector<std::int64_t>> expected;
  std::vector<std::map<std::string, std::vector<std::int64_t>>> seen(nodes.size());
  std::vector<std::string> failures(nodes.size() + 1);
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration enqueueTime{};
  std::thread producer([&] {
    try {
      std::vector<CommandRequest> batch;
      for (int i = 0; i < kCommands; ++i) {
        CommandRequest r{"site.apply", R"({"n":)" + std::to_string(i) + "}",
                         "site:" + std::to_string(i % kKeys), Target::all()};
        if (!batched) {
          const Command c = queue.enqueue(r.kind, r.payloadJson, r.orderingKey, r.target);
          expected[c.orderingKey].push_back(c.id);
          bell.ring();
          continue;
        }
        batch.push_back(std::move(r));
        if (batch.size() == kBatch || i + 1 == kCommands) {
          for (const Command& c : queue.enqueueAll(batch))
            expected[c.orderingKey].push_back(c.id);
          batch.clear();
          bell.ring();
        }
      }
    } catch (const std::exception& e) {
      failures.back() = std::string("producer: ") + e.what();
    }
    enqueueTime = std::chrono::steady_clock::now() - start;
  });
  std::vector<std::thread> agents;
  for (std::size_t n = 0; n < nodes.size(); ++n)
    agents.emplace_back(
        [&, n] { drain(queue, nodes[n].id, kCommands, batched, &bell, seen[n], failures[n]); });
  producer.join();
  for (auto& t : agents) t.join();
  const auto total = std::chrono::steady_clock::now() - start;

  for (const std::string& f : failures) ASSERT_EQ(f, "");
  for (std::size_t n = 0; n < nodes.size(); ++n) EXPECT_EQ(seen[n], expected) << "node " << n;
  const CommandQueue::Depth depth = queue.depth();
  EXPECT_EQ(depth.pending + depth.running + depth.failed, 0);

  const double enqueueSeconds = std::chrono::duration<double>(enqueueTime).count();
  const double totalSeconds = std::chrono::duration<double>(total).count();
  std::cout << std::fixed << std::setprecision(2) << "[ timing   ] "
            << (GetParam() == store::Backend::Sqlite ? "sqlite" : "mariadb") << ", "
            << (batched ? "enqueueAll(100) + reportResults" : "enqueue + reportResult, one each")
            << ": " << kCommands << " commands enqueued in " << enqueueSeconds << " s ("
            << kCommands / enqueueSeconds << "/s); all " << kCommands * nodes.size()
            << " deliveries done after " << totalSeconds << " s (" << kCommands / totalSeconds
            << " commands/s end to end)" << std::endl;
}

TEST_P(QueueConcurrencyTest, TwoClaimersForOneNodeNeverGetTheSameDelivery) {
  constexpr int kCommands = 300;
  const Node node = enrolNode("a.example.org");
  CommandQueue queue(store(), QueuePolicy{}, clock());
  for (int i = 0; i < kCommands; ++i)
    queue.enqueue("site.apply", "{}", "key" + std::to_string(i % 30), Target::all());

  std::mutex mutex;
  std::vector<std::int64_t> claimedIds;
  std::map<std::string, std::vector<std::int64_t>> order;
  std::string failure;
  auto claimer = [&] {
    try {
      for (;;) {
        std::vector<Delivery> claimed = queue.claimReady(node.id, 4);
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (claimed.empty() && claimedIds.size() >= static_cast<std::size_t>(kCommands)) return;
          for (const Delivery& d : claimed) {
            claimedIds.push_back(d.id);
            order[d.orderingKey].push_back(d.commandId);
          }
        }
        for (const Delivery& d : claimed) queue.reportResult(d.id, node.id, true, "");
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      failure = e.what();
    }
  };
  std::thread first(claimer), second(claimer);
  first.join();
  second.join();
  ASSERT_EQ(failure, "");

  EXPECT_EQ(claimedIds.size(), static_cast<std::size_t>(kCommands));
  EXPECT_EQ(std::set<std::int64_t>(claimedIds.begin(), claimedIds.end()).size(), claimedIds.size())
      << "a delivery was handed out twice";
  for (const auto& [key, ids] : order)
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << key;
}

TEST_P(QueueConcurrencyTest, ConcurrentProducersOfOneKeyAreDeliveredInCommandOrder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 40;
  const Node node = enrolNode("a.example.org");
  CommandQueue queue(store(), QueuePolicy{}, clock());

  std::vector<std::string> failures(kProducers + 1);
  std::atomic<int> producing{kProducers};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      try {
        for (int i = 0; i < kPerProducer; ++i)
          queue.enqueue("site.apply", "{}", i % 2 ? "shared:a" : "shared:b", Target::all());
      } catch (const std::exception& e) {
        failures[p] = e.what();
      }
      --producing;
    });
  std::map<std::string, std::vector<std::int64_t>> order;
  std::thread consumer([&] {
    drain(queue, node.id, kProducers * kPerProducer, false, nullptr, order, failures.back());
  });
  for (auto& t : producers) t.join();
  consumer.join();
  for (const std::string& f : failures) ASSERT_EQ(f, "");
  ASSERT_EQ(order.size(), 2u);
  // drain() checked that each key's commands came in increasing order; none was left behind.
  EXPECT_EQ(order["shared:a"].size() + order["shared:b"].size(),
            static_cast<std::size_t>(kProducers * kPerProducer));
  EXPECT_EQ(producing.load(), 0);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(QueueConcurrencyTest);

}  // namespace
}  // namespace shoal::cluster::test
