#pragma once
// What plugins add to /metrics (ABI 1.3 callback_register_metrics): each plugin's samples,
// checked and grouped into Prometheus families named shoal_<plugin>_<name>.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace Poco {
class Logger;
}

namespace shoal::host {

class Registries;

struct PluginMetricFamily {
  std::string name;  // "shoal_lvs_policies_failing"
  std::string type;  // "gauge" or "counter"
  std::string help;
  struct Sample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  std::vector<Sample> samples;
};

// "shoal_<plugin>_" for a plugin name ([a-z][a-z0-9_-]{0,63}); '-' becomes '_', which a
// Prometheus name cannot hold. Every family of the plugin's, its statistics series' too,
// starts with it.
std::string pluginMetricPrefix(std::string_view plugin);

// The family names the host itself gives a plugin's statistics series (StatsSample):
// "connections_total", "packets_total", "bytes_total", "last_sample_seconds". A plugin's
// own samples may not use them.
const std::vector<std::string>& statsSeriesFamilySuffixes();

// Parses a plugin's on_collect answer (abi.h shoal_metrics_desc). Throws
// Error(InvalidArgument) naming the first bad sample and field ("[3].labels.policy: must be
// a string"). Families come out in the order their names first appear.
std::vector<PluginMetricFamily> parsePluginMetrics(std::string_view json, std::string_view plugin);

// Asks every registered contribution for its samples. A plugin whose callback fails or
// answers something parsePluginMetrics refuses is left out, with a warning in `log`.
std::vector<PluginMetricFamily> collectPluginMetrics(const Registries& registries, Poco::Logger& log);

}  // namespace shoal::host
