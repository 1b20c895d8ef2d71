#include "stats/StatsRecorder.hpp"

#include <fcntl.h>
#include <rrd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <system_error>

#include "common/Error.hpp"

namespace shoal::stats {
namespace {

namespace fs = std::filesystem;

// The data sources in file order, and the template every update names them with.
constexpr const char* kDsNames[] = {"conns", "pkts_in", "pkts_out", "bytes_in", "bytes_out"};
constexpr const char* kUpdateTemplate = "conns:pkts_in:pkts_out:bytes_in:bytes_out";
constexpr std::size_t kMaxSeriesLength = 200;
constexpr std::size_t kMaxTitleChars = 200;
constexpr int kMinSide = 100, kMaxSide = 4000;

// rrd_create_r2 and rrd_graph_v are not safe to run concurrently: rrd_graph keeps a
// process-wide pango font map and cairo/fontconfig state, and creation is cheap and rare
// enough to serialise along with it. The other calls used here are librrd's reentrant ones.
std::mutex& librrdLock() {
  static std::mutex lock;
  return lock;
}

Error invalid(const std::string& message) { return Error(ErrorCode::InvalidArgument, message); }

// librrd's error for the current thread (thread-local in 1.7), cleared after reading.
std::string takeRrdError() {
  const char* text = rrd_get_error();
  std::string out = (text != nullptr && *text != '\0') ? text : "librrd reported no reason";
  rrd_clear_error();
  return out;
}

[[noreturn]] void throwRrd(const std::string& what) {
  throw Error(ErrorCode::Internal, what + ": " + takeRrdError());
}

// Arrays librrd hands back with malloc (names, values), freed however we leave.
struct RrdStrings {
  char** items = nullptr;
  unsigned long count = 0;
  RrdStrings() = default;
  RrdStrings(const RrdStrings&) = delete;
  RrdStrings& operator=(const RrdStrings&) = delete;
  ~RrdStrings() {
    if (items == nullptr) return;
    for (unsigned long i = 0; i < count; ++i) rrd_freemem(items[i]);
    rrd_freemem(items);
  }
};

struct RrdInfo {
  rrd_info_t* info = nullptr;
  RrdInfo() = default;
  RrdInfo(const RrdInfo&) = delete;
  RrdInfo& operator=(const RrdInfo&) = delete;
  ~RrdInfo() {
    if (info != nullptr) rrd_info_free(info);
  }
};

std::uint64_t parseTotal(const char* text) {
  std::uint64_t value = 0;
  if (text == nullptr) return 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) return 0;  // "U": nothing recorded yet
  return value;
}

// rrd_lastupdate_r into a SeriesInfo; false with *error set when librrd refuses the file.
bool readLastUpdate(const fs::path& path, const std::string& series, SeriesInfo& out,
                    std::string* error) {
  time_t lastUpdate = 0;
  RrdStrings names, values;
  unsigned long count = 0;
  rrd_clear_error();
  if (rrd_lastupdate_r(path.c_str(), &lastUpdate, &count, &names.items, &values.items) != 0) {
    if (error != nullptr) *error = takeRrdError();
    return false;
  }
  names.count = values.count = count;
  out = SeriesInfo{};
  out.series = series;
  out.lastUpdateSeconds = static_cast<std::int64_t>(lastUpdate);
  for (unsigned long i = 0; i < count; ++i) {
    const std::string_view name = names.items[i] != nullptr ? names.items[i] : "";
    const std::uint64_t value = parseTotal(values.items[i]);
    if (name == "conns") out.conns = value;
    else if (name == "pkts_in") out.packetsIn = value;
    else if (name == "pkts_out") out.packetsOut = value;
    else if (name == "bytes_in") out.bytesIn = value;
    else if (name == "bytes_out") out.bytesOut = value;
  }
  return true;
}

bool regularFileExists(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

void fsyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A file path as rrdgraph's DEF reads it: ':' separates fields unless escaped as "\:".
// A backslash before a colon cannot be expressed, so such a path is refused.
std::string defPath(const fs::path& path) {
  const std::string& raw = path.native();
  std::string out;
  out.reserve(raw.size() + 8);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\\' && i + 1 < raw.size() && raw[i + 1] == ':') {
      throw Error(ErrorCode::Internal,
                  "the stats file path " + raw + " cannot be passed to rrdgraph (\\ before :)");
    }
    if (c == ':') out += '\\';
    out += c;
  }
  return out;
}

// Length of a valid UTF-8 sequence starting at s[i], or 0 when it is not one.
std::size_t utf8Sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

// The title as rrdgraph should draw it literally. It reaches librrd as the value of one
// "--title=..." argument, so it can never be read as an option or a file name. What is left
// to neutralise is rrdgraph's own reading of the text:
//  - "\n" (backslash, n), "<br>" and "<br/>" start a new line, and a backslash cannot be
//    escaped: a zero-width space, which draws nothing, goes after the "\" or the "<";
//  - control characters (real newlines, tabs) lay the title out over several lines: spaces;
//  - pango rejects invalid UTF-8 with a warning and draws nothing: U+FFFD.
// Colons, percent signs and markup characters mean nothing in a title (no --pango-markup).
std::string sanitizeTitle(std::string_view title) {
  static constexpr std::string_view kZeroWidthSpace = "\xE2\x80\x8B";
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < title.size() && chars < kMaxTitleChars; ++chars) {
    const std::size_t n = utf8Sequence(title, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(title[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F)) {
      out += ' ';
    } else {
      out.append(title.substr(i, n));
      const std::string_view rest = title.substr(i + 1);
      if ((c == '\\' && rest.substr(0, 1) == "n") || (c == '<' && rest.substr(0, 2) == "br")) {
        out += kZeroWidthSpace;
      }
    }
    i += n;
  }
  return out;
}

std::string_view rangeStart(Range range) {
  switch (range) {
    case Range::Hour: return "end-1h";
    case Range::Day: return "end-1d";
    case Range::Week: return "end-1w";
    // rrdtool reads "1m" as a month (a number below 6 with m is months, 6m is six minutes):
    // "month" says it without the guess.
    case Range::Month: return "end-1month";
    case Range::Year: return "end-1y";
  }
  return "end-1d";
}

// The rrdgraph statements that draw one metric from `def` (an escaped file path).
std::vector<std::string> metricStatements(const std::string& metric, const std::string& def,
                                          std::string& verticalLabel) {
  const auto legend = [](const std::string& vname, const std::string& max) {
    return std::vector<std::string>{
        "VDEF:" + vname + "_last=" + vname + ",LAST",
        "VDEF:" + vname + "_avg=" + vname + ",AVERAGE",
        "VDEF:" + max + "_max=" + max + ",MAXIMUM",
        "GPRINT:" + vname + "_last:last %7.2lf%s",
        "GPRINT:" + vname + "_avg:avg %7.2lf%s",
        "GPRINT:" + max + "_max:max %7.2lf%s\\l",
    };
  };
  std::vector<std::string> out;
  const auto append = [&](std::vector<std::string> more) {
    out.insert(out.end(), more.begin(), more.end());
  };
  if (metric == "conns") {
    verticalLabel = "connections/s";
    out = {"DEF:c=" + def + ":conns:AVERAGE", "DEF:cm=" + def + ":conns:MAX",
           "AREA:c#4F8FD6:Connections/s"};
    append(legend("c", "cm"));
  } else if (metric == "packets") {
    verticalLabel = "packets/s";
    out = {"DEF:pi=" + def + ":pkts_in:AVERAGE", "DEF:pim=" + def + ":pkts_in:MAX",
           "DEF:po=" + def + ":pkts_out:AVERAGE", "DEF:pom=" + def + ":pkts_out:MAX",
           "LINE2:pi#2E9E44:In           "};
    append(legend("pi", "pim"));
    out.push_back("LINE2:po#3B6FD1:Out          ");
    append(legend("po", "pom"));
  } else if (metric == "bytes") {
    verticalLabel = "bits/s";
    out = {"DEF:bi=" + def + ":bytes_in:AVERAGE", "DEF:bim=" + def + ":bytes_in:MAX",
           "DEF:bo=" + def + ":bytes_out:AVERAGE", "DEF:bom=" + def + ":bytes_out:MAX",
           "CDEF:ib=bi,8,*", "CDEF:ibm=bim,8,*", "CDEF:ob=bo,8,*", "CDEF:obm=bom,8,*",
           "AREA:ib#2E9E44:In (bits/s)  "};
    append(legend("ib", "ibm"));
    out.push_back("LINE2:ob#3B6FD1:Out (bits/s) ");
    append(legend("ob", "obm"));
  } else {
    throw invalid("metric: \"" + metric.substr(0, 32) + "\" is not one of conns, packets, bytes");
  }
  return out;
}

void checkSeries(const std::string& series) {
  if (!isValidSeriesName(series)) {
    throw invalid("series: \"" + series.substr(0, 64) +
                  "\" is not 1 to 200 characters of A-Z a-z 0-9 . _ : -");
  }
}

}  // namespace

std::optional<Range> parseRange(std::string_view text) {
  if (text == "hour") return Range::Hour;
  if (text == "day") return Range::Day;
  if (text == "week") return Range::Week;
  if (text == "month") return Range::Month;
  if (text == "year") return Range::Year;
  return std::nullopt;
}

std::string_view toString(Range range) {
  switch (range) {
    case Range::Hour: return "hour";
    case Range::Day: return "day";
    case Range::Week: return "week";
    case Range::Month: return "month";
    case Range::Year: return "year";
  }
  return "day";
}

std::optional<ImageFormat> parseImageFormat(std::string_view text) {
  if (text == "png") return ImageFormat::Png;
  if (text == "svg") return ImageFormat::Svg;
  return std::nullopt;
}

std::string_view toString(ImageFormat format) {
  return format == ImageFormat::Svg ? "svg" : "png";
}

std::string_view contentTypeOf(ImageFormat format) {
  return format == ImageFormat::Svg ? "image/svg+xml" : "image/png";
}

bool isValidSeriesName(std::string_view series) {
  if (series.empty() || series.size() > kMaxSeriesLength) return false;
  return std::all_of(series.begin(), series.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
  });
}

StatsRecorder::StatsRecorder(std::filesystem::path directory, int stepSeconds)
    : step_(stepSeconds) {
  if (stepSeconds < 1 || stepSeconds > 60 || 60 % stepSeconds != 0) {
    throw invalid("stepSeconds: " + std::to_string(stepSeconds) +
                  " is not a divisor of 60 between 1 and 60");
  }
  if (directory.empty()) throw invalid("directory: empty");
  // Absolute, so a path handed to librrd can never look like one of its pseudo-files
  // ("-", "sql//...", "cb//...").
  directory_ = fs::absolute(directory).lexically_normal();
  if (!directory_.has_filename() && directory_.has_parent_path() &&
      directory_ != directory_.root_path()) {
    directory_ = directory_.parent_path();  // "a/b/" -> "a/b"
  }
  std::error_code ec;
  if (!fs::exists(directory_, ec)) {
    fs::create_directories(directory_.parent_path(), ec);
    if (::mkdir(directory_.c_str(), 0750) != 0 && errno != EEXIST) {
      throw Error(ErrorCode::Internal, "cannot create the stats directory " +
                                           directory_.string() + ": " + std::strerror(errno));
    }
  }
  if (!fs::is_directory(directory_, ec)) {
    throw invalid("directory: " + directory_.string() + " is not a directory");
  }
}

std::filesystem::path StatsRecorder::fileFor(const std::string& series) const {
  checkSeries(series);
  return directory_ / (series + ".rrd");
}

void StatsRecorder::createFile(const std::string& series, const fs::path& path,
                               std::int64_t firstTimestamp) const {
  // Rows per archive for a resolution and a span, both in seconds.
  const auto rra = [&](const char* cf, int resolution, long long span) {
    const int pdps = resolution / step_;
    const long long rows = (span + resolution - 1) / resolution;
    return std::string("RRA:") + cf + ":0.5:" + std::to_string(pdps) + ":" +
           std::to_string(rows);
  };
  std::vector<std::string> defs;
  const std::string heartbeat = std::to_string(12 * step_);
  for (const char* ds : kDsNames) {
    defs.push_back(std::string("DS:") + ds + ":DERIVE:" + heartbeat + ":0:U");
  }
  for (const char* cf : {"AVERAGE", "MAX"}) {
    defs.push_back(rra(cf, step_, 2 * 3600));
    defs.push_back(rra(cf, 60, 26 * 3600));
    defs.push_back(rra(cf, 300, 8 * 86400));
    defs.push_back(rra(cf, 1800, 32 * 86400));
    defs.push_back(rra(cf, 86400, 370 * 86400));
  }
  std::vector<const char*> argv;
  for (const auto& d : defs) argv.push_back(d.c_str());

  // Built under a name no series file can have (series files end in ".rrd"), then renamed:
  // a reader or a crash never sees a half-written file under the series' name.
  static std::atomic<std::uint64_t> counter{0};
  const fs::path temp = directory_ / (series + ".rrd." + std::to_string(::getpid()) + "." +
                                      std::to_string(counter.fetch_add(1)) + ".tmp");
  int rc = 0;
  std::string error;
  {
    std::lock_guard<std::mutex> guard(librrdLock());
    rrd_clear_error();
    rc = rrd_create_r2(temp.c_str(), static_cast<unsigned long>(step_),
                       static_cast<time_t>(firstTimestamp - 1), /*no_overwrite=*/1,
                       /*sources=*/nullptr, /*template=*/nullptr, static_cast<int>(argv.size()),
                       argv.data());
    if (rc != 0) error = takeRrdError();
  }
  std::error_code ec;
  if (rc != 0) {
    fs::remove(temp, ec);
    throw Error(ErrorCode::Internal, "rrd_create " + path.string() + ": " + error);
  }
  fsyncPath(temp, false);
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error(ErrorCode::Internal, "cannot rename " + temp.string() + " to " +
                                         path.string() + ": " + ec.message());
  }
  fsyncPath(directory_, true);
}

void StatsRecorder::record(const std::vector<Sample>& samples) {
  // Checked whole before anything is written.
  std::map<std::string, std::vector<const Sample*>> bySeries;
  for (const Sample& sample : samples) {
    checkSeries(sample.series);
    if (sample.timestampSeconds <= 0) {
      throw invalid("timestampSeconds: " + std::to_string(sample.timestampSeconds) +
                    " for " + sample.series + " is not a Unix time");
    }
    auto& list = bySeries[sample.series];
    if (!list.empty() && sample.timestampSeconds <= list.back()->timestampSeconds) {
      throw invalid("timestampSeconds: " + std::to_string(sample.timestampSeconds) + " for " +
                    sample.series + " is not after the previous sample's " +
                    std::to_string(list.back()->timestampSeconds));
    }
    list.push_back(&sample);
  }
  if (bySeries.empty()) return;

  std::unique_lock<std::shared_mutex> lock(mutex_);
  std::map<std::string, bool> exists;
  for (const auto& [series, list] : bySeries) {
    const fs::path path = fileFor(series);
    const bool present = regularFileExists(path);
    exists[series] = present;
    if (!present) continue;
    rrd_clear_error();
    const time_t last = rrd_last_r(path.c_str());
    if (last == static_cast<time_t>(-1)) throwRrd("rrd_last " + path.string());
    if (list.front()->timestampSeconds <= static_cast<std::int64_t>(last)) {
      throw invalid("timestampSeconds: " + std::to_string(list.front()->timestampSeconds) +
                    " for " + series + " is not after its last update " +
                    std::to_string(static_cast<std::int64_t>(last)));
    }
  }

  for (const auto& [series, list] : bySeries) {
    const fs::path path = fileFor(series);
    if (!exists[series]) createFile(series, path, list.front()->timestampSeconds);
    std::vector<std::string> updates;
    updates.reserve(list.size());
    for (const Sample* s : list) {
      updates.push_back(std::to_string(s->timestampSeconds) + ":" + std::to_string(s->conns) +
                        ":" + std::to_string(s->packetsIn) + ":" + std::to_string(s->packetsOut) +
                        ":" + std::to_string(s->bytesIn) + ":" + std::to_string(s->bytesOut));
    }
    std::vector<const char*> argv;
    argv.reserve(updates.size());
    for (const auto& u : updates) argv.push_back(u.c_str());
    rrd_clear_error();
    if (rrd_update_r(path.c_str(), kUpdateTemplate, static_cast<int>(argv.size()),
                     argv.data()) != 0) {
      throwRrd("rrd_update " + path.string());
    }
  }
}

std::vector<SeriesInfo> StatsRecorder::list() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::vector<SeriesInfo> out;
  std::error_code ec;
  fs::directory_iterator it(directory_, ec);
  if (ec) {
    throw Error(ErrorCode::Internal,
                "cannot list the stats directory " + directory_.string() + ": " + ec.message());
  }
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".rrd") != 0) continue;
    const std::string series = name.substr(0, name.size() - 4);
    if (!isValidSeriesName(series) || !entry.is_regular_file(ec)) continue;
    SeriesInfo info;
    if (readLastUpdate(entry.path(), series, info, nullptr)) out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const SeriesInfo& a, const SeriesInfo& b) { return a.series < b.series; });
  return out;
}

std::optional<SeriesInfo> StatsRecorder::last(const std::string& series) const {
  const fs::path path = fileFor(series);
  std::shared_lock<std::shared_mutex> lock(mutex_);
  if (!regularFileExists(path)) return std::nullopt;
  SeriesInfo info;
  std::string error;
  if (!readLastUpdate(path, series, info, &error)) {
    throw Error(ErrorCode::Internal, "rrd_lastupdate " + path.string() + ": " + error);
  }
  return info;
}

std::vector<StatsRecorder::Point> StatsRecorder::fetch(const std::string& series,
                                                       std::int64_t startSeconds,
                                                       std::int64_t endSeconds) const {
  const fs::path path = fileFor(series);
  if (endSeconds <= startSeconds) {
    throw invalid("endSeconds: " + std::to_string(endSeconds) + " is not after startSeconds " +
                  std::to_string(startSeconds));
  }
  std::shared_lock<std::shared_mutex> lock(mutex_);
  if (!regularFileExists(path)) throw Error(ErrorCode::NotFound, "no statistics for " + series);

  time_t start = static_cast<time_t>(startSeconds), end = static_cast<time_t>(endSeconds);
  unsigned long step = 1;  // the finest archive that covers the span
  RrdStrings names;
  rrd_value_t* data = nullptr;
  rrd_clear_error();
  if (rrd_fetch_r(path.c_str(), "AVERAGE", &start, &end, &step, &names.count, &names.items,
                  &data) != 0) {
    throwRrd("rrd_fetch " + path.string());
  }
  struct DataGuard {
    rrd_value_t* p;
    ~DataGuard() { rrd_freemem(p); }
  } guard{data};

  int column[5] = {-1, -1, -1, -1, -1};
  for (unsigned long i = 0; i < names.count; ++i) {
    for (int k = 0; k < 5; ++k) {
      if (names.items[i] != nullptr && std::strcmp(names.items[i], kDsNames[k]) == 0) {
        column[k] = static_cast<int>(i);
      }
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<Point> out;
  if (step == 0 || data == nullptr) return out;
  // librrd rounds start down and end up to the archive's step (an aligned end gains one
  // more step), then returns one row per step: row r covers (start + r*step, start + (r+1)*step].
  // Rows that do not overlap the asked (startSeconds, endSeconds] are left out.
  const auto stepSeconds = static_cast<std::int64_t>(step);
  const std::int64_t rows = (static_cast<std::int64_t>(end) - start) / stepSeconds;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t time = static_cast<std::int64_t>(start) + (r + 1) * stepSeconds;
    if (time <= startSeconds || time - stepSeconds >= endSeconds) continue;
    const rrd_value_t* row = data + static_cast<std::size_t>(r) * names.count;
    const auto value = [&](int k) { return column[k] < 0 ? nan : row[column[k]]; };
    out.push_back(Point{time, value(0), value(1), value(2), value(3), value(4)});
  }
  return out;
}

Graph StatsRecorder::render(const GraphRequest& request) const {
  const fs::path path = fileFor(request.series);
  if (request.width < kMinSide || request.width > kMaxSide) {
    throw invalid("width: " + std::to_string(request.width) + " is not within 100..4000");
  }
  if (request.height < kMinSide || request.height > kMaxSide) {
    throw invalid("height: " + std::to_string(request.height) + " is not within 100..4000");
  }
  std::string verticalLabel;
  const std::vector<std::string> statements =
      metricStatements(request.metric, defPath(path), verticalLabel);

  // argv[0] is the command name; "-" is the output file: the image comes back in the info
  // list. The only text from the request is the title, inside one "--title=" argument.
  std::vector<std::string> args = {
      "graph", "-",
      "--imgformat", request.format == ImageFormat::Svg ? "SVG" : "PNG",
      "--start", std::string(rangeStart(request.range)),
      "--end", "now",
      "--width", std::to_string(request.width),
      "--height", std::to_string(request.height),
      "--slope-mode",
      "--lower-limit", "0",
      "--vertical-label=" + verticalLabel,
  };
  const std::string title = sanitizeTitle(request.title);
  if (!title.empty()) args.push_back("--title=" + title);
  args.insert(args.end(), statements.begin(), statements.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Not under mutex_: a render waiting for the process-wide lock must not hold up record().
  // rrdgraph reads the file as it is; files only ever appear whole (created, then renamed).
  if (!regularFileExists(path)) {
    throw Error(ErrorCode::NotFound, "no statistics for " + request.series);
  }
  Graph graph;
  graph.contentType = std::string(contentTypeOf(request.format));
  std::lock_guard<std::mutex> guard(librrdLock());
  RrdInfo info;
  rrd_clear_error();
  info.info = rrd_graph_v(static_cast<int>(args.size()), argv.data());
  if (info.info == nullptr || rrd_test_error()) throwRrd("rrd_graph " + path.string());
  for (const rrd_info_t* p = info.info; p != nullptr; p = p->next) {
    const std::string_view key = p->key != nullptr ? p->key : "";
    if (key == "image" && p->type == RD_I_BLO) {
      graph.bytes.assign(reinterpret_cast<const char*>(p->value.u_blo.ptr), p->value.u_blo.size);
    } else if (key == "image_width" || key == "image_height") {
      const long v = p->type == RD_I_CNT   ? static_cast<long>(p->value.u_cnt)
                     : p->type == RD_I_INT ? p->value.u_int
                                           : 0;
      (key == "image_width" ? graph.width : graph.height) = static_cast<int>(v);
    }
  }
  if (graph.bytes.empty()) {
    throw Error(ErrorCode::Internal, "rrd_graph " + path.string() + " returned no image");
  }
  return graph;
}

}  // namespace shoal::stats
