#pragma once
// Cluster tests run against both backends through the store's BackendTest (SQLite in a
// temporary file; MariaDB at SHOAL_TEST_MYSQL_URL, and without it the MariaDB instantiation
// fails). Time is a hand-moved clock, so expiry, backoff and leases are exact.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "BackendTest.hpp"
#include "cluster/CommandQueue.hpp"
#include "cluster/NodeRegistry.hpp"

namespace shoal::cluster::test {

using store::test::errorMessageOf;

class ClusterTest : public store::test::BackendTest {
 protected:
  // 2024-05-01T12:00:00Z
  static constexpr std::int64_t kStartMs = 1714564800000;
  static constexpr const char* kManagerVersion = "0.1.0";

  void SetUp() override;

  // The test clock, shared by every registry and queue the test makes.
  Clock clock();
  TimePoint now() const;
  void advance(std::chrono::milliseconds by);

  store::Store& store() { return *store_; }
  NodeRegistry& registry() { return *registry_; }

  // Debian 12 on x86_64, shoal 0.1.x: the cluster's platform, recorded in SetUp.
  static PlatformReport platform(const std::string& hostname);
  // Enrols a node with a fresh token and gives it the roles.
  Node enrolNode(const std::string& hostname, const std::vector<std::string>& roles = {});

  std::int64_t countRows(const std::string& table);

 private:
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<NodeRegistry> registry_;
  std::shared_ptr<std::atomic<std::int64_t>> nowMs_ =
      std::make_shared<std::atomic<std::int64_t>>(kStartMs);
};

TimePoint atMillis(std::int64_t ms);

}  // namespace shoal::cluster::test
