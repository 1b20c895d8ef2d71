#pragma once
// /metrics in the Prometheus text exposition format (version 0.0.4): the cluster's nodes and
// their state, the health of every service on every node, the Command Queue's depth and
// failed deliveries, and the balancer's counters as the last statistics samples gave them.
#include <string>
#include <vector>

#include "cluster/CommandQueue.hpp"
#include "cluster/NodeRegistry.hpp"
#include "host/StatsSample.hpp"
#include "manager/HealthService.hpp"

namespace shoal::manager {

struct MetricsSnapshot {
  std::string version;
  std::vector<cluster::Node> nodes;
  std::vector<ServiceHealth> health;
  cluster::CommandQueue::Depth queue;
  std::vector<host::StatsSample> balancer;
};

// Every label value escaped as the format requires (\\, \", \n), so a host name or a title
// cannot break a line or forge a sample.
std::string renderPrometheus(const MetricsSnapshot& snapshot);

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace shoal::manager
