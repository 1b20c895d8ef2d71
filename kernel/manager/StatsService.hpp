#pragma once
// The balancer's statistics on the manager: samples from plugins (ABI 1.2 stats_emit, in
// process or forwarded by a node) go into RRD files under <data_dir>/rrd, one per series
// (stats/StatsRecorder.hpp), with each series' title and labels kept beside them in
// series.json. The files outlive restarts, and a series whose policy was removed or renamed
// keeps its history; graphs are drawn from them on request.
#include <Poco/JSON/Array.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "host/StatsSample.hpp"
#include "stats/StatsRecorder.hpp"

namespace shoal::manager {

class StatsService {
 public:
  explicit StatsService(std::filesystem::path directory, int stepSeconds = 10);

  // Samples not newer than their series' last one are skipped (a node resending a batch,
  // two samples in one second). Throws Error(Internal) when librrd fails.
  void record(const std::vector<host::StatsSample>& samples);

  // Every recorded series: {"series", "title", "labels", "last_update", "conns", "packets_in",
  // "packets_out", "bytes_in", "bytes_out"}, sorted by series.
  Poco::JSON::Array::Ptr seriesJson() const;
  // The same as host samples, for /metrics (title and labels included).
  std::vector<host::StatsSample> latest() const;
  // A graph; the title defaults to the series' own. Error(NotFound), Error(InvalidArgument).
  stats::Graph graph(stats::GraphRequest request) const;

 private:
  void loadMeta();        // titles and labels from series.json into series_
  void saveMeta() const;  // called with mutex_ held

  std::filesystem::path directory_;
  stats::StatsRecorder recorder_;
  mutable std::mutex mutex_;
  // Every series' last recorded sample with its title and labels: read from the files once
  // at start, then kept by record(), so listing and /metrics never read the files.
  std::map<std::string, host::StatsSample> series_;
};

}  // namespace shoal::manager
