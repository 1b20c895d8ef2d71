#include "manager/StatsService.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>

#include <fstream>
#include <sstream>

#include "common/Error.hpp"
#include "common/Files.hpp"

namespace shoal::manager {
namespace {

const char* kMetaFile = "series.json";
constexpr std::size_t kMaxRefusalsLogged = 1000;

// "lvs" of "lvs.service.tcp:..."; empty for a name without a plugin's prefix.
std::string pluginOf(const std::string& series) {
  const auto dot = series.find('.');
  return dot == std::string::npos ? std::string() : series.substr(0, dot);
}

}  // namespace

StatsService::StatsService(std::filesystem::path directory, int stepSeconds, std::size_t maxSeriesPerPlugin)
    : directory_(directory), recorder_(directory, stepSeconds), maxSeriesPerPlugin_(maxSeriesPerPlugin) {
  if (maxSeriesPerPlugin_ == 0) throw Error(ErrorCode::InvalidArgument, "the series cap per plugin must be positive");
  for (const auto& info : recorder_.list()) {
    auto& s = series_[info.series];
    s.series = info.series;
    s.timeSeconds = info.lastUpdateSeconds;
    s.conns = info.conns;
    s.packetsIn = info.packetsIn;
    s.packetsOut = info.packetsOut;
    s.bytesIn = info.bytesIn;
    s.bytesOut = info.bytesOut;
  }
  // Until plugins declare (after they start), every plugin counts as one without a declaration.
  for (const auto& [series, s] : series_) ++seriesPerPlugin_[pluginOf(series)];
  undeclaredSeries_ = series_.size();
  loadMeta();
}

void StatsService::declare(const std::string& plugin, const std::vector<std::string>& series) {
  if (series.size() > maxSeriesPerPlugin_)
    throw Error(ErrorCode::InvalidArgument, "plugin '" + plugin + "' declares " + std::to_string(series.size()) +
                                                " statistics series; the manager keeps at most " +
                                                std::to_string(maxSeriesPerPlugin_) +
                                                " per plugin (stats_max_series_per_plugin)");
  std::set<std::string> names;
  for (const auto& name : series) {
    if (pluginOf(name) != plugin)
      throw Error(ErrorCode::InvalidArgument, "series '" + name + "' is not one of plugin '" + plugin + "'");
    names.insert(name);
  }
  std::lock_guard lock(mutex_);
  if (!declared_.count(plugin)) {
    auto it = seriesPerPlugin_.find(plugin);
    if (it != seriesPerPlugin_.end()) undeclaredSeries_ -= it->second;
  }
  declared_[plugin] = std::move(names);
}

std::string StatsService::refusal(const host::StatsSample& sample, Source source, const Creating& creating) const {
  const bool exists = series_.count(sample.series) > 0 || creating.series.count(sample.series) > 0;
  const auto plugin = pluginOf(sample.series);
  auto declared = declared_.find(plugin);
  if (source == Source::Node) {
    if (plugin.empty()) return "series '" + sample.series + "' names no plugin (expected <plugin>.<series>)";
    if (declared != declared_.end() && !declared->second.count(sample.series))
      return "series '" + sample.series + "' is not one plugin '" + plugin + "' declared (it declares the " +
             std::to_string(declared->second.size()) + " series its configuration has)";
  }
  if (exists) return {};
  std::size_t ofPlugin = 0;
  if (auto it = seriesPerPlugin_.find(plugin); it != seriesPerPlugin_.end()) ofPlugin = it->second;
  if (auto it = creating.perPlugin.find(plugin); it != creating.perPlugin.end()) ofPlugin += it->second;
  const std::size_t undeclared = undeclaredSeries_ + creating.undeclared;
  if (ofPlugin >= maxSeriesPerPlugin_)
    return "plugin '" + plugin + "' has " + std::to_string(ofPlugin) + " statistics series, the most " +
           "stats_max_series_per_plugin allows; '" + sample.series + "' is not created";
  if (source == Source::Node && declared == declared_.end() && undeclared >= maxSeriesPerPlugin_)
    return "the plugins that declare no series share " + std::to_string(maxSeriesPerPlugin_) +
           " statistics series, all taken; '" + sample.series + "' is not created";
  return {};
}

void StatsService::logRefusalOnce(const std::string& series, const std::string& why) {
  if (refusalsLogged_.size() > kMaxRefusalsLogged || !refusalsLogged_.insert(series).second) return;
  auto& log = Poco::Logger::get("shoald.stats");
  if (refusalsLogged_.size() > kMaxRefusalsLogged)
    log.warning("statistics: more than " + std::to_string(kMaxRefusalsLogged) +
                " series refused; further ones are not logged");
  else
    log.warning("statistics: " + why + "; its samples are not recorded");
}

void StatsService::loadMeta() {
  std::ifstream in(directory_ / kMetaFile);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  try {
    auto root = Poco::JSON::Parser().parse(text.str()).extract<Poco::JSON::Object::Ptr>();
    for (const auto& [series, value] : *root) {
      auto it = series_.find(series);
      if (it == series_.end()) continue;  // its file is gone: nothing to name
      auto o = value.extract<Poco::JSON::Object::Ptr>();
      it->second.title = o->optValue<std::string>("title", "");
      if (auto labels = o->getObject("labels"))
        for (const auto& [k, v] : *labels) it->second.labels[k] = v.convert<std::string>();
    }
  } catch (const std::exception& e) {
    // Titles are a convenience: graphs still draw, named by their series.
    Poco::Logger::get("shoald.stats").warning((directory_ / kMetaFile).string() + " is unreadable (" + e.what() +
                                              "); series titles start afresh");
  }
}

void StatsService::saveMeta() const {
  Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [series, s] : series_) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("title", s.title);
    Poco::JSON::Object::Ptr labels = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [k, v] : s.labels) labels->set(k, v);
    o->set("labels", labels);
    root.set(series, o);
  }
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(root, out);
  writeFileAtomically(directory_ / kMetaFile, out.str() + "\n", 0640);
}

StatsService::Outcome StatsService::record(const std::vector<host::StatsSample>& samples, Source source) {
  std::lock_guard lock(mutex_);
  Outcome outcome;
  // Only samples newer than their series' last reach the file, also within one call.
  std::map<std::string, const host::StatsSample*> newest;
  std::vector<stats::Sample> fresh;
  Creating creating;
  for (const auto& s : samples) {
    if (auto why = refusal(s, source, creating); !why.empty()) {
      if (outcome.refused++ == 0) outcome.refusal = why;
      logRefusalOnce(s.series, why);
      continue;
    }
    auto known = series_.find(s.series);
    if (known == series_.end() && creating.series.insert(s.series).second) {
      const auto plugin = pluginOf(s.series);
      ++creating.perPlugin[plugin];
      if (!declared_.count(plugin)) ++creating.undeclared;
    }
    const auto* before = newest.count(s.series) ? newest[s.series] : nullptr;
    const auto last = before ? before->timeSeconds : known != series_.end() ? known->second.timeSeconds : 0;
    if (s.timeSeconds <= last) continue;
    newest[s.series] = &s;
    fresh.push_back(stats::Sample{s.series, s.timeSeconds, s.conns, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut});
  }
  if (fresh.empty()) return outcome;
  recorder_.record(fresh);
  outcome.recorded = fresh.size();
  bool metaChanged = false;
  for (const auto& [series, s] : newest) {
    if (!series_.count(series)) {
      const auto plugin = pluginOf(series);
      ++seriesPerPlugin_[plugin];
      if (!declared_.count(plugin)) ++undeclaredSeries_;
    }
    auto& kept = series_[series];
    metaChanged = metaChanged || kept.title != s->title || kept.labels != s->labels;
    kept = *s;
  }
  if (metaChanged) saveMeta();
  return outcome;
}

Poco::JSON::Array::Ptr StatsService::seriesJson() const {
  Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
  for (const auto& s : latest()) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("series", s.series);
    o->set("title", s.title.empty() ? s.series : s.title);
    Poco::JSON::Object::Ptr labels = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [k, v] : s.labels) labels->set(k, v);
    o->set("labels", labels);
    o->set("last_update", s.timeSeconds);
    o->set("conns", Poco::UInt64(s.conns));
    o->set("packets_in", Poco::UInt64(s.packetsIn));
    o->set("packets_out", Poco::UInt64(s.packetsOut));
    o->set("bytes_in", Poco::UInt64(s.bytesIn));
    o->set("bytes_out", Poco::UInt64(s.bytesOut));
    list->add(o);
  }
  return list;
}

std::vector<host::StatsSample> StatsService::latest() const {
  std::lock_guard lock(mutex_);
  std::vector<host::StatsSample> out;
  out.reserve(series_.size());
  for (const auto& [series, s] : series_) out.push_back(s);
  return out;
}

stats::Graph StatsService::graph(stats::GraphRequest request) const {
  if (request.title.empty()) {
    std::lock_guard lock(mutex_);
    auto it = series_.find(request.series);
    request.title = it != series_.end() && !it->second.title.empty() ? it->second.title : request.series;
  }
  return recorder_.render(request);
}

}  // namespace shoal::manager
