#include "ClusterTest.hpp"

#include <Poco/Data/Session.h>

using Poco::Data::Keywords::into;

namespace shoal::cluster::test {

TimePoint atMillis(std::int64_t ms) {
  return TimePoint(std::chrono::milliseconds(ms));
}

void ClusterTest::SetUp() {
  BackendTest::SetUp();
  if (HasFatalFailure()) return;
  if (GetParam() == store::Backend::MySql) {
    // BackendTest empties the store's own tables; these are the cluster's (children first).
    auto raw = openStore();
    auto session = raw->session();
    for (const char* table : {"command_deliveries", "commands", "command_ordering_keys", "enqueue_idempotency_keys",
                              "node_roles", "join_tokens", "nodes"})
      session << std::string("DROP TABLE IF EXISTS ") + table, Poco::Data::Keywords::now;
  }
  store_ = openMigratedStore();
  registry_ = std::make_unique<NodeRegistry>(*store_, clock());
  registry_->ensureClusterPlatform(platform("manager.example.org"));
}

Clock ClusterTest::clock() {
  auto ms = nowMs_;
  return [ms] { return atMillis(ms->load()); };
}

TimePoint ClusterTest::now() const {
  return atMillis(nowMs_->load());
}

void ClusterTest::advance(std::chrono::milliseconds by) {
  nowMs_->fetch_add(by.count());
}

PlatformReport ClusterTest::platform(const std::string& hostname) {
  return PlatformReport{hostname, "debian", "12", "x86_64", "0.1.0", "192.0.2.10"};
}

Node ClusterTest::enrolNode(const std::string& hostname, const std::vector<std::string>& roles) {
  const JoinTokenIssue token = registry().createJoinToken(std::chrono::hours(1));
  Enrolment enrolment = registry().enrol(token.secret, platform(hostname), kManagerVersion);
  if (roles.empty()) return enrolment.node;
  return registry().setRoles(enrolment.node.id, roles);
}

std::int64_t ClusterTest::countRows(const std::string& table) {
  auto session = store().session();
  Poco::Int64 count = 0;
  session << "SELECT COUNT(*) FROM " + table, into(count), Poco::Data::Keywords::now;
  return count;
}

}  // namespace shoal::cluster::test
