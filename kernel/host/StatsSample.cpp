#include "host/StatsSample.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <chrono>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "common/Error.hpp"

namespace shoal::host {
namespace {

constexpr std::size_t kMaxSamples = 10000;
constexpr std::size_t kMaxText = 200;

// A series name as stored: the plugin's prefix and its own name (ABI: up to 160 of these).
const std::regex& seriesPattern() {
  static const std::regex pattern("[A-Za-z0-9._:-]{1,200}");
  return pattern;
}

[[noreturn]] void refuse(std::size_t index, const std::string& field, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument,
              "samples[" + std::to_string(index) + "]" + (field.empty() ? "" : "." + field) + ": " + what);
}

std::uint64_t counter(const Poco::JSON::Object& o, std::size_t index, const char* name) {
  if (!o.has(name)) refuse(index, name, "is required");
  const auto value = o.get(name);
  // Poco parses whole numbers into Int64 or UInt64 and anything with a fraction into double.
  if (value.type() == typeid(Poco::UInt64)) return value.extract<Poco::UInt64>();
  if (value.type() == typeid(Poco::Int64) || value.type() == typeid(int)) {
    const auto n = value.convert<Poco::Int64>();
    if (n >= 0) return static_cast<std::uint64_t>(n);
  }
  refuse(index, name, "must be a whole number from 0 to 2^64-1");
}

}  // namespace

std::int64_t unixNowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> parseStatsSeriesNames(std::string_view json, const std::string& seriesPrefix,
                                               std::size_t maxNames) {
  Poco::JSON::Array::Ptr list;
  try {
    auto parsed = Poco::JSON::Parser().parse(std::string(json));
    if (parsed.type() == typeid(Poco::JSON::Array::Ptr)) list = parsed.extract<Poco::JSON::Array::Ptr>();
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::InvalidArgument, "series: not valid JSON: " + e.displayText());
  }
  if (!list) throw Error(ErrorCode::InvalidArgument, "series: must be a JSON array of series names");
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto value = list->get(static_cast<unsigned>(i));
    const std::string where = "series[" + std::to_string(i) + "]";
    if (!value.isString()) throw Error(ErrorCode::InvalidArgument, where + ": must be text");
    const std::string name = seriesPrefix + value.extract<std::string>();
    if (!std::regex_match(name, seriesPattern()))
      throw Error(ErrorCode::InvalidArgument, where + ": '" + name + "' must be 1 to 200 of A-Z a-z 0-9 . _ : -");
    names.insert(name);
    if (names.size() > maxNames)
      throw Error(ErrorCode::InvalidArgument, "series: more than " + std::to_string(maxNames) +
                                                  " names; the manager keeps at most that many per plugin "
                                                  "(stats_max_series_per_plugin)");
  }
  return {names.begin(), names.end()};
}

std::vector<StatsSample> parseStatsSamples(std::string_view json, const std::string& seriesPrefix,
                                           std::int64_t nowSeconds) {
  static const std::regex labelPattern("[a-z_][a-z0-9_]{0,31}");
  Poco::JSON::Array::Ptr list;
  try {
    auto parsed = Poco::JSON::Parser().parse(std::string(json));
    if (parsed.type() == typeid(Poco::JSON::Array::Ptr)) list = parsed.extract<Poco::JSON::Array::Ptr>();
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::InvalidArgument, "samples: not valid JSON: " + e.displayText());
  }
  if (!list) throw Error(ErrorCode::InvalidArgument, "samples: must be a JSON array of sample objects");
  if (list->size() > kMaxSamples)
    throw Error(ErrorCode::InvalidArgument,
                "samples: " + std::to_string(list->size()) + " in one call; at most " + std::to_string(kMaxSamples));
  std::vector<StatsSample> samples;
  samples.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto o = list->getObject(static_cast<unsigned>(i));
    if (!o) refuse(i, "", "must be a JSON object");
    StatsSample s;
    if (!o->has("series") || !o->get("series").isString()) refuse(i, "series", "is required and must be text");
    s.series = seriesPrefix + o->getValue<std::string>("series");
    if (!std::regex_match(s.series, seriesPattern()))
      refuse(i, "series", "'" + s.series + "' must be 1 to 200 of A-Z a-z 0-9 . _ : -");
    if (o->has("time") && !o->isNull("time")) {
      const auto t = o->get("time");
      if (!t.isInteger() || t.convert<Poco::Int64>() < 0) refuse(i, "time", "must be Unix seconds (a whole number)");
      s.timeSeconds = t.convert<Poco::Int64>();
    }
    if (s.timeSeconds == 0) s.timeSeconds = nowSeconds;
    if (o->has("title")) {
      if (!o->get("title").isString()) refuse(i, "title", "must be text");
      s.title = o->getValue<std::string>("title");
      if (s.title.size() > kMaxText) refuse(i, "title", "longer than 200 bytes");
    }
    if (o->has("labels")) {
      auto labels = o->getObject("labels");
      if (!labels) refuse(i, "labels", "must be an object of text values");
      if (labels->size() > 8) refuse(i, "labels", "at most 8 labels");
      for (const auto& [name, value] : *labels) {
        if (!std::regex_match(name, labelPattern)) refuse(i, "labels." + name, "a label name is [a-z_][a-z0-9_]{0,31}");
        if (!value.isString()) refuse(i, "labels." + name, "must be text");
        auto text = value.convert<std::string>();
        if (text.size() > kMaxText) refuse(i, "labels." + name, "longer than 200 bytes");
        s.labels[name] = std::move(text);
      }
    }
    s.conns = counter(*o, i, "conns");
    s.packetsIn = counter(*o, i, "packets_in");
    s.packetsOut = counter(*o, i, "packets_out");
    s.bytesIn = counter(*o, i, "bytes_in");
    s.bytesOut = counter(*o, i, "bytes_out");
    samples.push_back(std::move(s));
  }
  return samples;
}

std::string statsSamplesToJson(const std::vector<StatsSample>& samples) {
  Poco::JSON::Array list;
  for (const auto& s : samples) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("series", s.series);
    o->set("time", s.timeSeconds);
    if (!s.title.empty()) o->set("title", s.title);
    if (!s.labels.empty()) {
      Poco::JSON::Object::Ptr labels = new Poco::JSON::Object;
      for (const auto& [k, v] : s.labels) labels->set(k, v);
      o->set("labels", labels);
    }
    o->set("conns", Poco::UInt64(s.conns));
    o->set("packets_in", Poco::UInt64(s.packetsIn));
    o->set("packets_out", Poco::UInt64(s.packetsOut));
    o->set("bytes_in", Poco::UInt64(s.bytesIn));
    o->set("bytes_out", Poco::UInt64(s.bytesOut));
    list.add(o);
  }
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(list, out);
  return out.str();
}

}  // namespace shoal::host
