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
  loadMeta();
  for (const auto& info : recorder_.list()) lastTime_[info.series] = info.lastUpdateSeconds;
}

void StatsService::loadMeta() {
  std::ifstream in(directory_ / kMetaFile);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  try {
    auto root = Poco::JSON::Parser().parse(text.str()).extract<Poco::JSON::Object::Ptr>();
    for (const auto& [series, value] : *root) {
      auto o = value.extract<Poco::JSON::Object::Ptr>();
      Meta m;
      m.title = o->optValue<std::string>("title", "");
      if (auto labels = o->getObject("labels"))
        for (const auto& [k, v] : *labels) m.labels[k] = v.convert<std::string>();
      meta_[series] = std::move(m);
    }
  } catch (const std::exception& e) {
    // Titles are a convenience: graphs still draw, named by their series.
    Poco::Logger::get("shoald.stats").warning((directory_ / kMetaFile).string() + " is unreadable (" + e.what() +
                                              "); series titles start afresh");
  }
}

void StatsService::saveMeta() const {
  Poco::JSON::Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [series, m] : meta_) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("title", m.title);
    Poco::JSON::Object::Ptr labels = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [k, v] : m.labels) labels->set(k, v);
    o->set("labels", labels);
    root.set(series, o);
  }
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(root, out);
  writeFileAtomically(directory_ / kMetaFile, out.str() + "\n", 0640);
}

void StatsService::record(const std::vector<host::StatsSample>& samples) {
  std::lock_guard lock(mutex_);
  std::vector<stats::Sample> fresh;
  bool metaChanged = false;
  for (const auto& s : samples) {
    auto& last = lastTime_[s.series];
    if (s.timeSeconds <= last) continue;
    // Two samples of one series in one call: only increasing times reach the file.
    last = s.timeSeconds;
    fresh.push_back(stats::Sample{s.series, s.timeSeconds, s.conns, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut});
    auto& m = meta_[s.series];
    if (m.title != s.title || m.labels != s.labels) {
      m.title = s.title;
      m.labels = s.labels;
      metaChanged = true;
    }
  }
  if (!fresh.empty()) recorder_.record(fresh);
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
  auto infos = recorder_.list();
  std::lock_guard lock(mutex_);
  std::vector<host::StatsSample> out;
  for (const auto& info : infos) {
    host::StatsSample s;
    s.series = info.series;
    s.timeSeconds = info.lastUpdateSeconds;
    s.conns = info.conns;
    s.packetsIn = info.packetsIn;
    s.packetsOut = info.packetsOut;
    s.bytesIn = info.bytesIn;
    s.bytesOut = info.bytesOut;
    if (auto it = meta_.find(info.series); it != meta_.end()) {
      s.title = it->second.title;
      s.labels = it->second.labels;
    }
    out.push_back(std::move(s));
  }
  return out;
}

stats::Graph StatsService::graph(stats::GraphRequest request) const {
  if (request.title.empty()) {
    std::lock_guard lock(mutex_);
    auto it = meta_.find(request.series);
    request.title = it != meta_.end() && !it->second.title.empty() ? it->second.title : request.series;
  }
  return recorder_.render(request);
}

}  // namespace shoal::manager
