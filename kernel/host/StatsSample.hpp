#pragma once
// Statistics samples as plugins hand them to the kernel (ABI 1.2 callback_stats_emit) and as
// a node forwards them to its manager (POST /v1/node/stats). The manager records them in RRD
// files (manager/StatsService.hpp).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::host {

struct StatsSample {
  std::string series;  // "<plugin>.<the plugin's series>", [A-Za-z0-9._:-]{1,200}
  std::int64_t timeSeconds = 0;
  std::string title;                          // may be empty; any text up to 200 bytes
  std::map<std::string, std::string> labels;  // names [a-z_][a-z0-9_]{0,31}, values up to 200 bytes
  std::uint64_t conns = 0, packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0;
};

// Parses a JSON array of samples (abi.h callback_stats_emit). `seriesPrefix` ("lvs.") is put
// before every series name; empty when the names already carry it (forwarded samples).
// "time" 0 or absent becomes `nowSeconds`. Throws Error(InvalidArgument) naming the first bad
// sample and field ("samples[2].bytes_in: must be a whole number from 0 to 2^64-1"); at
// most 10,000 samples per call.
std::vector<StatsSample> parseStatsSamples(std::string_view json, const std::string& seriesPrefix,
                                           std::int64_t nowSeconds);

// Parses the JSON array of series names a plugin declares (ABI 1.4 callback_stats_declare),
// putting `seriesPrefix` ("lvs.") before each; duplicates are kept once. Throws
// Error(InvalidArgument) naming the first bad entry ("series[3]: ...") or when there are more
// than `maxNames`.
std::vector<std::string> parseStatsSeriesNames(std::string_view json, const std::string& seriesPrefix,
                                               std::size_t maxNames);

// Now, in Unix seconds: what a sample without "time" is stamped with.
std::int64_t unixNowSeconds();

// The JSON array parseStatsSamples reads (with the prefix already in the names).
std::string statsSamplesToJson(const std::vector<StatsSample>& samples);

}  // namespace shoal::host
