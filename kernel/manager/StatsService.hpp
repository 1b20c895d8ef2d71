#pragma once
// The balancer's statistics on the manager: samples from plugins (ABI 1.2 stats_emit, in
// process or forwarded by a node) go into RRD files under <data_dir>/rrd, one per series
// (stats/StatsRecorder.hpp), with each series' title and labels kept beside them in
// series.json. The files outlive restarts, and a series whose policy was removed or renamed
// keeps its history; graphs are drawn from them on request.
//
// What a node can make the manager write is bounded. A plugin declares the series its nodes
// may report (ABI 1.4 stats_declare: the lvs plugin declares its policies' virtual services
// and real servers); once it has, a node's sample for any other series of it is refused and
// creates no file. The series of plugins that declare nothing share one cap, and no plugin
// gets more than maxSeriesPerPlugin series, however its samples arrive. A refused series is
// logged once (the first 1000 of them; then one line says more are not logged).
#include <Poco/JSON/Array.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "host/StatsSample.hpp"
#include "stats/StatsRecorder.hpp"

namespace shoal::manager {

class StatsService {
 public:
  explicit StatsService(std::filesystem::path directory, int stepSeconds = 10,
                        std::size_t maxSeriesPerPlugin = 10000);

  // Where samples come from: a plugin in this process, or a node (POST /v1/node/stats),
  // whose samples must name series their plugin declared.
  enum class Source { Manager, Node };
  struct Outcome {
    std::size_t recorded = 0;  // samples that reached their files
    std::size_t refused = 0;   // samples for series they may not create or feed
    std::string refusal;       // why the first refused one was, naming its series
  };

  // Records what may be recorded and refuses the rest (see above); a refused sample creates
  // no file. Samples not newer than their series' last one are skipped (a node resending a
  // batch, two samples in one second). Throws Error(Internal) when librrd fails.
  Outcome record(const std::vector<host::StatsSample>& samples, Source source = Source::Manager);

  // The series (with the "<plugin>." prefix) that `plugin`'s nodes may report from now on,
  // replacing its previous declaration. Error(InvalidArgument) for more than
  // maxSeriesPerPlugin or a name without the plugin's prefix.
  void declare(const std::string& plugin, const std::vector<std::string>& series);
  std::size_t maxSeriesPerPlugin() const { return maxSeriesPerPlugin_; }

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
  // The series one record() call creates, counted toward the caps before they exist.
  struct Creating {
    std::set<std::string> series;
    std::map<std::string, std::size_t> perPlugin;
    std::size_t undeclared = 0;
  };
  // Why `sample` may not be recorded (empty when it may). Called with mutex_ held.
  std::string refusal(const host::StatsSample& sample, Source source, const Creating& creating) const;
  void logRefusalOnce(const std::string& series, const std::string& why);  // mutex_ held

  std::filesystem::path directory_;
  stats::StatsRecorder recorder_;
  mutable std::mutex mutex_;
  // Every series' last recorded sample with its title and labels: read from the files once
  // at start, then kept by record(), so listing and /metrics never read the files.
  std::map<std::string, host::StatsSample> series_;
  std::size_t maxSeriesPerPlugin_;
  std::map<std::string, std::size_t> seriesPerPlugin_;          // of series_, by plugin
  std::map<std::string, std::set<std::string>> declared_;        // by plugin
  std::size_t undeclaredSeries_ = 0;  // of series_, those of plugins without a declaration
  std::set<std::string> refusalsLogged_;
};

}  // namespace shoal::manager
