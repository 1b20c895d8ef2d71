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

}  // namespace

StatsService::StatsService(std::filesystem::path directory, int stepSeconds)
    : directory_(directory), recorder_(directory, stepSeconds) {
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
  loadMeta();
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

void StatsService::record(const std::vector<host::StatsSample>& samples) {
  std::lock_guard lock(mutex_);
  // Only samples newer than their series' last reach the file, also within one call.
  std::map<std::string, const host::StatsSample*> newest;
  std::vector<stats::Sample> fresh;
  for (const auto& s : samples) {
    auto known = series_.find(s.series);
    const auto* before = newest.count(s.series) ? newest[s.series] : nullptr;
    const auto last = before ? before->timeSeconds : known != series_.end() ? known->second.timeSeconds : 0;
    if (s.timeSeconds <= last) continue;
    newest[s.series] = &s;
    fresh.push_back(stats::Sample{s.series, s.timeSeconds, s.conns, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut});
  }
  if (fresh.empty()) return;
  recorder_.record(fresh);
  bool metaChanged = false;
  for (const auto& [series, s] : newest) {
    auto& kept = series_[series];
    metaChanged = metaChanged || kept.title != s->title || kept.labels != s->labels;
    kept = *s;
  }
  if (metaChanged) saveMeta();
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
