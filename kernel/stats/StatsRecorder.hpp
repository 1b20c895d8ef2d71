#pragma once
// Balancer statistics in RRD files (RRDtool's librrd) and graphs rendered from them.
//
// One file per series, `<directory>/<series>.rrd`. A series is a stable id such as
// "lvs.service.3f2a9c1e" or "lvs.member.3f2a9c1e.10.0.0.11_80": 1 to 200 characters of
// [A-Za-z0-9._:-], so it is a safe file name as it stands.
//
// File layout (created on a series' first sample; `step` is the recorder's stepSeconds,
// 10 by default):
//   DS:conns, DS:pkts_in, DS:pkts_out, DS:bytes_in, DS:bytes_out
//       DERIVE, heartbeat 12 x step, min 0, no max. The samples carry the dataplane's
//       growing totals; the file stores rates per second. A dataplane restart resets the
//       totals to zero: the negative difference falls under min 0, so that one step is
//       unknown (NaN) instead of a negative rate or a wrap-around spike. A gap longer than
//       the heartbeat is unknown too.
//   RRAs, each for AVERAGE and for MAX (xff 0.5):
//       raw step           2 hours     ("hour" graphs)
//       1 minute           26 hours    ("day")
//       5 minutes          8 days      ("week")
//       30 minutes         32 days     ("month")
//       1 day              370 days    ("year")
//   At step 10 a file is about 520 KB, written in place on every update.
//
// Times are Unix seconds. A sample's timestamp must be later than the series' last update
// (RRD files only move forward). A rate point stamped t covers (t - step, t].
//
// Errors are shoal::Error: InvalidArgument naming the field (series, timestampSeconds,
// width, height, metric, endSeconds, stepSeconds), NotFound for a series without a file
// (fetch, render), Internal with librrd's own message for anything librrd refuses.
//
// Threads: every method may be called from several threads at once. Updates of one
// recorder are serialised, and fetch, last and list do not see a half-done record() of this
// recorder. librrd's reentrant calls (rrd_update_r, rrd_fetch_r, rrd_lastupdate_r,
// rrd_last_r) run in parallel; rrd_create_r2 and rrd_graph_v, which share state inside
// librrd, pango and cairo, run under one process-wide lock. render does not wait for
// record() (so a queue of renders cannot starve updates): like any rrdgraph beside an
// updater, a graph drawn during an update may lack that update. librrd's error text is per
// thread in 1.7. Another process updating the same files is not coordinated with.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::stats {

struct Sample {
  std::string series;             // [A-Za-z0-9._:-]{1,200}
  std::int64_t timestampSeconds;  // Unix time the counters were read
  // Totals as the dataplane reports them (they only grow, except across a restart).
  std::uint64_t conns = 0, packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0;
};

// The span a graph shows, ending now.
enum class Range { Hour, Day, Week, Month, Year };
std::optional<Range> parseRange(std::string_view text);  // "hour|day|week|month|year"
std::string_view toString(Range range);

enum class ImageFormat { Png, Svg };
std::optional<ImageFormat> parseImageFormat(std::string_view text);  // "png|svg"
std::string_view toString(ImageFormat format);                       // "png" / "svg"
std::string_view contentTypeOf(ImageFormat format);  // "image/png" / "image/svg+xml"

bool isValidSeriesName(std::string_view series);

struct GraphRequest {
  std::string series;
  Range range = Range::Day;
  ImageFormat format = ImageFormat::Png;
  // "conns": connections per second (an area); "packets": packets in and out per second
  // (two lines); "bytes": bits per second in (an area) and out (a line).
  std::string metric = "conns";
  // The plot area in pixels, 100..4000 each; the image adds the title, axes and legend.
  int width = 640, height = 200;
  // Any text: shown as it is (no markup, no option or escape meaning). Control characters
  // become spaces, invalid UTF-8 becomes U+FFFD, longer than 200 characters is cut.
  std::string title;
};

struct Graph {
  std::string contentType;  // "image/png" or "image/svg+xml"
  std::string bytes;        // the whole image
  int width = 0, height = 0;  // of the whole image, as librrd reports it
};

struct SeriesInfo {
  std::string series;
  std::int64_t lastUpdateSeconds = 0;
  // The raw totals of the last sample recorded.
  std::uint64_t conns = 0, packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0;
};

class StatsRecorder {
 public:
  // Creates `directory` (mode 0750, parents as needed) when it is missing. stepSeconds is
  // the base resolution of files this recorder creates: 1..60 and a divisor of 60.
  // Existing files keep the step they were created with.
  explicit StatsRecorder(std::filesystem::path directory, int stepSeconds = 10);

  StatsRecorder(const StatsRecorder&) = delete;
  StatsRecorder& operator=(const StatsRecorder&) = delete;

  // Appends the samples, creating a series' file on its first sample. The whole batch is
  // checked first (names; per series, timestamps strictly increasing and after the file's
  // last update): a bad sample rejects the batch before anything is written.
  void record(const std::vector<Sample>& samples);

  // Every series that has a file, sorted by name. Files librrd cannot read are left out.
  std::vector<SeriesInfo> list() const;

  // The last update's time and raw totals; nullopt when the series has no file.
  std::optional<SeriesInfo> last(const std::string& series) const;

  // Rates per second over (startSeconds, endSeconds] from the finest archive that covers
  // the span (or the one covering most of it), one point per archive row.
  struct Point {
    std::int64_t time;  // end of the row's interval
    double conns, packetsIn, packetsOut, bytesIn, bytesOut;  // NaN when unknown
  };
  std::vector<Point> fetch(const std::string& series, std::int64_t startSeconds,
                           std::int64_t endSeconds) const;

  // A graph of the range ending now. Error(NotFound) for a series without a file.
  Graph render(const GraphRequest& request) const;

  // Where the series' file is (whether or not it exists yet).
  std::filesystem::path fileFor(const std::string& series) const;

  const std::filesystem::path& directory() const noexcept { return directory_; }
  int stepSeconds() const noexcept { return step_; }

 private:
  void createFile(const std::string& series, const std::filesystem::path& path,
                  std::int64_t firstTimestamp) const;

  std::filesystem::path directory_;
  int step_;
  mutable std::shared_mutex mutex_;  // record() exclusive; fetch, last and list shared
};

}  // namespace shoal::stats
