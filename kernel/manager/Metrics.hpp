#pragma once
// /metrics in the Prometheus text exposition format (version 0.0.4): the cluster's nodes and
// their state, the health of every service on every node, the Command Queue's depth and
// failed deliveries; each plugin's statistics series as the last samples gave them, in
// families named for the plugin (shoal_<plugin>_connections_total, ...), and the samples
// plugins contribute themselves (ABI 1.3), as shoal_<plugin>_<name>.
#include <string>
#include <vector>

#include "cluster/CommandQueue.hpp"
#include "cluster/NodeRegistry.hpp"
#include "host/PluginMetrics.hpp"
#include "host/StatsSample.hpp"
#include "manager/HealthService.hpp"

namespace shoal::manager {

struct MetricsSnapshot {
  std::string version;
  std::vector<cluster::Node> nodes;
  std::vector<ServiceHealth> health;
  cluster::CommandQueue::Depth queue;
  std::vector<host::StatsSample> series;                // the last sample of every series
  std::vector<host::PluginMetricFamily> pluginFamilies;  // checked by host::parsePluginMetrics
};

// Every label value escaped as the format requires (\\, \", \n), so a host name or a title
// cannot break a line or forge a sample.
std::string renderPrometheus(const MetricsSnapshot& snapshot);

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace shoal::manager
