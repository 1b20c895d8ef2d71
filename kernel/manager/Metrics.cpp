#include "manager/Metrics.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace shoal::manager {
namespace {

std::string escapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

class Writer {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename Number>
  void sample(const std::string& name, const Labels& labels, Number value) {
    out_ << name;
    if (!labels.empty()) {
      out_ << '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        out_ << (i ? "," : "") << labels[i].first << "=\"" << escapeLabel(labels[i].second) << '"';
      out_ << '}';
    }
    out_ << ' ' << value << '\n';
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

const char* stateName(health::HealthState state) {
  switch (state) {
    case health::HealthState::Healthy: return "healthy";
    case health::HealthState::Unhealthy: return "unhealthy";
    case health::HealthState::Unknown: return "unknown";
  }
  return "unknown";
}

// A plugin's sample value: whole numbers as integers (counters up to 2^53 stay exact),
// others with every digit a double holds.
std::string number(double value) {
  if (std::floor(value) == value && std::fabs(value) < 9007199254740992.0)
    return std::to_string(static_cast<std::int64_t>(value));
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

std::int64_t unixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string renderPrometheus(const MetricsSnapshot& s) {
  Writer w;
  w.family("shoal_build_info", "gauge", "The manager's version.");
  w.sample("shoal_build_info", {{"version", s.version}}, 1);

  w.family("shoal_node_up", "gauge", "1 when the node is online or draining (in contact), 0 otherwise.");
  for (const auto& n : s.nodes)
    w.sample("shoal_node_up", {{"node_id", std::to_string(n.id)}, {"hostname", n.hostname}, {"address", n.address}},
             n.state == cluster::NodeState::Online || n.state == cluster::NodeState::Draining ? 1 : 0);
  w.family("shoal_node_state", "gauge", "1 for the node's current state: online, offline, draining or removed.");
  for (const auto& n : s.nodes)
    w.sample("shoal_node_state", {{"node_id", std::to_string(n.id)}, {"hostname", n.hostname}, {"state", toString(n.state)}},
             1);
  w.family("shoal_node_last_seen_seconds", "gauge", "When the node was last in contact (Unix time).");
  for (const auto& n : s.nodes)
    if (n.lastSeen) w.sample("shoal_node_last_seen_seconds", {{"node_id", std::to_string(n.id)}, {"hostname", n.hostname}},
                             unixSeconds(*n.lastSeen));

  auto serviceLabels = [](const ServiceHealth& h) {
    return Labels{{"node_id", h.status.nodeId}, {"address", h.status.address}, {"service", h.status.service}};
  };
  w.family("shoal_service_healthy", "gauge", "1 when the service's probe passes on the node, 0 when it fails or is not known yet.");
  for (const auto& h : s.health)
    w.sample("shoal_service_healthy", serviceLabels(h), h.status.state == health::HealthState::Healthy ? 1 : 0);
  w.family("shoal_service_state", "gauge", "1 for the probe's current state: healthy, unhealthy or unknown.");
  for (const auto& h : s.health) {
    auto labels = serviceLabels(h);
    labels.emplace_back("state", stateName(h.status.state));
    w.sample("shoal_service_state", labels, 1);
  }
  w.family("shoal_service_serving", "gauge", "1 when the balancer sends the node new connections for the service.");
  for (const auto& h : s.health) w.sample("shoal_service_serving", serviceLabels(h), h.serving() ? 1 : 0);
  w.family("shoal_service_maintenance", "gauge", "1 while the service on the node is in maintenance.");
  for (const auto& h : s.health) w.sample("shoal_service_maintenance", serviceLabels(h), h.maintenance ? 1 : 0);
  w.family("shoal_service_probes_total", "counter", "Probes completed since the manager started.");
  for (const auto& h : s.health) w.sample("shoal_service_probes_total", serviceLabels(h), h.status.checks);

  w.family("shoal_queue_deliveries", "gauge", "Deliveries of the Command Queue by state (failed ones wait for retry or skip).");
  w.sample("shoal_queue_deliveries", {{"state", "pending"}}, s.queue.pending);
  w.sample("shoal_queue_deliveries", {{"state", "running"}}, s.queue.running);
  w.sample("shoal_queue_deliveries", {{"state", "failed"}}, s.queue.failed);
  w.family("shoal_queue_failed_deliveries", "gauge", "Deliveries that failed and wait for an admin to retry or skip them.");
  w.sample("shoal_queue_failed_deliveries", {}, s.queue.failed);

  // Each plugin's statistics series in families of its own, named by the plugin prefix of the
  // series ("lvs.service.3f2a" -> shoal_lvs_connections_total): the kernel knows no plugin.
  auto seriesLabels = [](const host::StatsSample& b) {
    Labels labels{{"series", b.series}, {"title", b.title.empty() ? b.series : b.title}};
    for (const auto& [k, v] : b.labels)
      if (k != "series" && k != "title" && k != "direction") labels.emplace_back(k, v);
    return labels;
  };
  auto withDirection = [](Labels labels, const char* direction) {
    labels.emplace_back("direction", direction);
    return labels;
  };
  std::map<std::string, std::vector<const host::StatsSample*>> byPlugin;
  for (const auto& b : s.series) byPlugin[b.series.substr(0, b.series.find('.'))].push_back(&b);
  for (const auto& [plugin, series] : byPlugin) {
    const std::string prefix = host::pluginMetricPrefix(plugin);
    const std::string of = " of plugin " + plugin + "'s statistics series, as last sampled.";
    w.family(prefix + "connections_total", "counter", ("Connections" + of).c_str());
    for (const auto* b : series) w.sample(prefix + "connections_total", seriesLabels(*b), b->conns);
    w.family(prefix + "packets_total", "counter", ("Packets" + of).c_str());
    for (const auto* b : series) {
      w.sample(prefix + "packets_total", withDirection(seriesLabels(*b), "in"), b->packetsIn);
      w.sample(prefix + "packets_total", withDirection(seriesLabels(*b), "out"), b->packetsOut);
    }
    w.family(prefix + "bytes_total", "counter", ("Bytes" + of).c_str());
    for (const auto* b : series) {
      w.sample(prefix + "bytes_total", withDirection(seriesLabels(*b), "in"), b->bytesIn);
      w.sample(prefix + "bytes_total", withDirection(seriesLabels(*b), "out"), b->bytesOut);
    }
    w.family(prefix + "last_sample_seconds", "gauge",
             ("When each of plugin " + plugin + "'s statistics series was last sampled (Unix time).").c_str());
    for (const auto* b : series) w.sample(prefix + "last_sample_seconds", seriesLabels(*b), b->timeSeconds);
  }

  // What plugins contribute themselves (ABI 1.3), already checked.
  for (const auto& family : s.pluginFamilies) {
    w.family(family.name, family.type.c_str(), family.help.c_str());
    for (const auto& sample : family.samples) w.sample(family.name, sample.labels, number(sample.value));
  }
  return w.text();
}

}  // namespace shoal::manager
