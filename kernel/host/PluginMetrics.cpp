#include "host/PluginMetrics.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include "common/Error.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"

namespace shoal::host {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, "metrics " + where + ": " + what);
}

std::string text(const Object::Ptr& object, const std::string& key, const std::string& where) {
  if (!object->has(key) || !object->get(key).isString()) refuse(where + "." + key, "must be a string");
  return object->getValue<std::string>(key);
}

}  // namespace

std::string pluginMetricPrefix(std::string_view plugin) {
  std::string prefix = "shoal_" + std::string(plugin) + "_";
  std::replace(prefix.begin(), prefix.end(), '-', '_');
  return prefix;
}

const std::vector<std::string>& statsSeriesFamilySuffixes() {
  static const std::vector<std::string> suffixes{"connections_total", "packets_total", "bytes_total",
                                                 "last_sample_seconds"};
  return suffixes;
}

std::vector<PluginMetricFamily> parsePluginMetrics(std::string_view json, std::string_view plugin) {
  static const std::regex namePattern("[a-z_][a-z0-9_]{0,63}");
  static const std::regex labelPattern("[a-z_][a-z0-9_]{0,31}");
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(std::string(json));
  } catch (const Poco::Exception& e) {
    refuse("answer", "is not valid JSON: " + e.displayText());
  }
  if (parsed.type() != typeid(Array::Ptr)) refuse("answer", "must be a JSON array of samples");
  auto samples = parsed.extract<Array::Ptr>();
  if (samples->size() > 10000) refuse("answer", "holds more than 10,000 samples");
  const auto& reserved = statsSeriesFamilySuffixes();
  std::vector<PluginMetricFamily> families;
  std::map<std::string, std::size_t> byName;
  for (std::size_t i = 0; i < samples->size(); ++i) {
    const std::string where = "[" + std::to_string(i) + "]";
    if (samples->get(static_cast<unsigned>(i)).type() != typeid(Object::Ptr)) refuse(where, "must be an object");
    auto sample = samples->getObject(static_cast<unsigned>(i));
    for (const auto& [field, value] : *sample)
      if (field != "name" && field != "type" && field != "help" && field != "labels" && field != "value")
        refuse(where + "." + field, "is not a field (name, type, help, labels, value)");
    const std::string name = text(sample, "name", where);
    if (!std::regex_match(name, namePattern)) refuse(where + ".name", "'" + name + "' must match [a-z_][a-z0-9_]{0,63}");
    if (std::find(reserved.begin(), reserved.end(), name) != reserved.end())
      refuse(where + ".name", "'" + name + "' is the name of the plugin's statistics series");
    const std::string type = text(sample, "type", where);
    if (type != "gauge" && type != "counter") refuse(where + ".type", "must be \"gauge\" or \"counter\"");
    const std::string help = text(sample, "help", where);
    if (help.size() > 500 || help.find_first_of("\r\n") != std::string::npos)
      refuse(where + ".help", "must be one line of at most 500 bytes");
    if (!sample->has("value") || !sample->get("value").isNumeric()) refuse(where + ".value", "must be a number");
    const double value = sample->getValue<double>("value");
    if (!std::isfinite(value)) refuse(where + ".value", "must be finite");
    if (type == "counter" && value < 0) refuse(where + ".value", "a counter is never negative");
    PluginMetricFamily::Sample out{{}, value};
    if (sample->has("labels")) {
      if (sample->get("labels").type() != typeid(Object::Ptr)) refuse(where + ".labels", "must be an object of strings");
      auto labels = sample->getObject("labels");
      if (labels->size() > 16) refuse(where + ".labels", "at most 16 labels");
      for (const auto& [label, labelValue] : *labels) {
        if (!std::regex_match(label, labelPattern) || label.rfind("__", 0) == 0)
          refuse(where + ".labels." + label, "a label name must match [a-z_][a-z0-9_]{0,31} and not start with __");
        if (!labelValue.isString() || labelValue.extract<std::string>().size() > 200)
          refuse(where + ".labels." + label, "must be a string of at most 200 bytes");
        out.labels.emplace_back(label, labelValue.extract<std::string>());
      }
    }
    const std::string family = pluginMetricPrefix(plugin) + name;
    auto [it, fresh] = byName.emplace(family, families.size());
    if (fresh) families.push_back(PluginMetricFamily{family, type, help, {}});
    auto& f = families[it->second];
    if (f.type != type) refuse(where + ".type", "'" + name + "' was a " + f.type + " in an earlier sample");
    if (f.help != help) refuse(where + ".help", "differs from an earlier sample of '" + name + "'");
    f.samples.push_back(std::move(out));
  }
  return families;
}

std::vector<PluginMetricFamily> collectPluginMetrics(const Registries& registries, Poco::Logger& log) {
  std::vector<PluginMetricFamily> all;
  for (const auto& entry : registries.metrics()) {
    try {
      shoal_reply reply;
      const auto status = entry.onCollect(entry.user, &reply);
      if (status != SHOAL_OK)
        throw Error(ErrorCode::Failed, "on_collect answered " + statusName(status) +
                                           (reply.error.empty() ? "" : ": " + reply.error));
      auto families = parsePluginMetrics(reply.output, entry.plugin);
      all.insert(all.end(), std::make_move_iterator(families.begin()), std::make_move_iterator(families.end()));
    } catch (const std::exception& e) {
      log.warning("plugin " + entry.plugin + ": its metrics are left out of /metrics: " + e.what());
    } catch (...) {
      log.warning("plugin " + entry.plugin + ": its metrics are left out of /metrics: on_collect threw");
    }
  }
  return all;
}

}  // namespace shoal::host
