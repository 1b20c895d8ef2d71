// StatsRecorder against the real librrd, on real files in a temporary directory.
#include "stats/StatsRecorder.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/Error.hpp"

namespace fs = std::filesystem;
using shoal::Error;
using shoal::ErrorCode;
using namespace shoal::stats;

namespace {

// A fixed time, aligned to the 10 s step, so rows line up with samples.
constexpr std::int64_t kBase = 1'700'000'000;

class StatsRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shoal-stats-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    dir_ = root_ / "stats";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path root_, dir_;
};

// Totals at sample i of a series whose counters grow by known, uneven amounts.
struct Totals {
  std::uint64_t conns, packetsIn, packetsOut, bytesIn, bytesOut;
};
std::uint64_t connsDelta(int i) { return 5 + static_cast<std::uint64_t>(i % 3); }
std::uint64_t packetsInDelta(int i) { return 100 + 7 * static_cast<std::uint64_t>(i); }
// bytes_in starts near the top of the 64-bit range: totals must come back exact.
constexpr std::uint64_t kBytesInStart = 18'000'000'000'000'000'000ULL;

std::vector<Sample> growingSeries(const std::string& series, std::int64_t start, int count,
                                  std::vector<Totals>* totals = nullptr) {
  std::vector<Sample> out;
  Totals t{1000, 50'000, 40'000, kBytesInStart, 0};
  for (int i = 0; i < count; ++i) {
    if (i > 0) {
      t.conns += connsDelta(i);
      t.packetsIn += packetsInDelta(i);
      t.packetsOut += 90;
      t.bytesIn += 1500 * packetsInDelta(i);
      t.bytesOut += 12'345;
    }
    out.push_back(Sample{series, start + 10 * i, t.conns, t.packetsIn, t.packetsOut, t.bytesIn,
                         t.bytesOut});
    if (totals != nullptr) totals->push_back(t);
  }
  return out;
}

template <typename F>
ErrorCode errorOf(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no shoal::Error thrown";
  return ErrorCode::Failed;
}

std::uint32_t bigEndian32(const std::string& bytes, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 3]));
}

void expectPng(const Graph& graph) {
  ASSERT_EQ(graph.contentType, "image/png");
  ASSERT_GT(graph.bytes.size(), 33u);
  EXPECT_EQ(graph.bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(graph.bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(bigEndian32(graph.bytes, 16), static_cast<std::uint32_t>(graph.width));
  EXPECT_EQ(bigEndian32(graph.bytes, 20), static_cast<std::uint32_t>(graph.height));
}

void expectSvg(const Graph& graph) {
  ASSERT_EQ(graph.contentType, "image/svg+xml");
  EXPECT_EQ(graph.bytes.rfind("<?xml", 0), 0u) << graph.bytes.substr(0, 80);
  EXPECT_NE(graph.bytes.find("<svg"), std::string::npos);
  EXPECT_NE(graph.bytes.find("</svg>"), std::string::npos);
}

std::int64_t nowAligned() {
  return static_cast<std::int64_t>(std::time(nullptr)) / 10 * 10;
}

}  // namespace

TEST(StatsNames, RangesAndFormatsParseAndPrint) {
  for (Range r : {Range::Hour, Range::Day, Range::Week, Range::Month, Range::Year}) {
    EXPECT_EQ(parseRange(toString(r)), r);
  }
  EXPECT_FALSE(parseRange("Hour").has_value());
  EXPECT_FALSE(parseRange("").has_value());
  EXPECT_EQ(parseImageFormat("svg"), ImageFormat::Svg);
  EXPECT_EQ(parseImageFormat("png"), ImageFormat::Png);
  EXPECT_FALSE(parseImageFormat("gif").has_value());
  EXPECT_TRUE(isValidSeriesName("lvs.member.3f2a9c1e.10.0.0.11_80"));
  EXPECT_TRUE(isValidSeriesName("tcp:10.0.0.1:80"));
  EXPECT_TRUE(isValidSeriesName(std::string(200, 'a')));
  EXPECT_FALSE(isValidSeriesName(std::string(201, 'a')));
  EXPECT_FALSE(isValidSeriesName(""));
  EXPECT_FALSE(isValidSeriesName("a/b"));
  EXPECT_FALSE(isValidSeriesName("a b"));
}

TEST_F(StatsRecorderTest, CreatesItsDirectoryAndChecksTheStep) {
  StatsRecorder recorder(dir_ / "nested");
  EXPECT_TRUE(fs::is_directory(dir_ / "nested"));
  EXPECT_EQ(fs::status(dir_ / "nested").permissions() & fs::perms::others_all, fs::perms::none);
  EXPECT_EQ(recorder.fileFor("lvs.service.1"), dir_ / "nested" / "lvs.service.1.rrd");
  EXPECT_TRUE(recorder.list().empty());
  std::string message;
  EXPECT_EQ(errorOf([&] { StatsRecorder bad(dir_, 7); }, &message), ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("stepSeconds"), std::string::npos) << message;
}

TEST_F(StatsRecorderTest, LastIsTheRawTotalsAndFetchGivesTheirRates) {
  StatsRecorder recorder(dir_);
  const std::string series = "lvs.service.3f2a9c1e";
  std::vector<Totals> totals;
  const int count = 181;  // every 10 s for 30 minutes
  const auto samples = growingSeries(series, kBase, count, &totals);
  // In three batches, as a collector would send them.
  recorder.record({samples.begin(), samples.begin() + 60});
  recorder.record({samples.begin() + 60, samples.begin() + 61});
  recorder.record({samples.begin() + 61, samples.end()});

  const auto last = recorder.last(series);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->series, series);
  EXPECT_EQ(last->lastUpdateSeconds, kBase + 10 * (count - 1));
  EXPECT_EQ(last->conns, totals.back().conns);
  EXPECT_EQ(last->packetsIn, totals.back().packetsIn);
  EXPECT_EQ(last->packetsOut, totals.back().packetsOut);
  EXPECT_EQ(last->bytesIn, totals.back().bytesIn);
  EXPECT_GT(last->bytesIn, kBytesInStart);
  EXPECT_EQ(last->bytesOut, totals.back().bytesOut);

  const auto points = recorder.fetch(series, kBase, kBase + 10 * (count - 1));
  ASSERT_EQ(points.size(), static_cast<std::size_t>(count - 1));
  for (std::size_t k = 0; k < points.size(); ++k) {
    const int i = static_cast<int>(k) + 1;  // the row ending at sample i
    const auto& p = points[k];
    ASSERT_EQ(p.time, kBase + 10 * i);
    const auto delta = [&](std::uint64_t Totals::*field) {
      return static_cast<double>(totals[i].*field - totals[i - 1].*field);
    };
    EXPECT_NEAR(p.conns * 10, delta(&Totals::conns), 1e-6) << "row " << i;
    EXPECT_NEAR(p.packetsIn * 10, delta(&Totals::packetsIn), 1e-6) << "row " << i;
    EXPECT_NEAR(p.packetsOut * 10, delta(&Totals::packetsOut), 1e-6) << "row " << i;
    EXPECT_NEAR(p.bytesIn * 10, delta(&Totals::bytesIn), 1e-3) << "row " << i;
    EXPECT_NEAR(p.bytesOut * 10, delta(&Totals::bytesOut), 1e-6) << "row " << i;
  }

  // The row before the first sample's interval is unknown: a first total has no rate.
  const auto head = recorder.fetch(series, kBase - 10, kBase + 10);
  ASSERT_EQ(head.size(), 2u);
  EXPECT_TRUE(std::isnan(head[0].conns));
  EXPECT_NEAR(head[1].conns * 10, static_cast<double>(connsDelta(1)), 1e-6);

  const auto all = recorder.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].series, series);
  EXPECT_EQ(all[0].conns, totals.back().conns);
}

TEST_F(StatsRecorderTest, ACounterResetGivesNoNegativeAndNoHugeRate) {
  StatsRecorder recorder(dir_);
  const std::string series = "lvs.member.3f2a9c1e.10.0.0.11_80";
  std::vector<Sample> samples;
  std::uint64_t total = 0;
  for (int i = 0; i < 60; ++i) {
    if (i == 30) total = 0;  // the dataplane restarted
    else total += 1000;
    samples.push_back(Sample{series, kBase + 10 * i, total, total, total, total * 100,
                             total * 100});
  }
  recorder.record(samples);
  EXPECT_EQ(recorder.last(series)->conns, 29'000u);

  const auto points = recorder.fetch(series, kBase, kBase + 590);
  ASSERT_EQ(points.size(), 59u);
  int unknown = 0;
  for (const auto& p : points) {
    for (double v : {p.conns, p.packetsIn, p.packetsOut}) {
      if (std::isnan(v)) {
        ++unknown;
        continue;
      }
      EXPECT_GE(v, 0.0) << "at " << p.time;
      EXPECT_LE(v, 100.0 + 1e-9) << "at " << p.time;  // 1000 per 10 s
    }
    if (!std::isnan(p.bytesIn)) {
      EXPECT_LE(p.bytesIn, 10'000.0 + 1e-6) << "at " << p.time;
    }
  }
  // Only the step holding the reset is unknown; the rates before and after are exact.
  EXPECT_EQ(unknown, 3);
  EXPECT_TRUE(std::isnan(points[29].conns)) << points[29].time;
  EXPECT_NEAR(points[28].conns, 100.0, 1e-9);
  EXPECT_NEAR(points[30].conns, 100.0, 1e-9);
}

TEST_F(StatsRecorderTest, FilesSurviveANewRecorderThatKeepsAppending) {
  const std::string a = "lvs.service.aaaa", b = "lvs.member.aaaa.tcp:10.0.0.1:80";
  {
    StatsRecorder first(dir_);
    auto samples = growingSeries(a, kBase, 30);
    const auto more = growingSeries(b, kBase + 5, 10);
    samples.insert(samples.end(), more.begin(), more.end());
    first.record(samples);
  }
  StatsRecorder second(dir_);
  const auto all = second.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].series, b);  // sorted
  EXPECT_EQ(all[1].series, a);
  EXPECT_EQ(all[1].lastUpdateSeconds, kBase + 290);
  EXPECT_TRUE(fs::is_regular_file(dir_ / (b + ".rrd")));

  std::vector<Totals> totals;
  const auto continued = growingSeries(a, kBase, 60, &totals);
  second.record({continued.begin() + 30, continued.end()});
  const auto last = second.last(a);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->lastUpdateSeconds, kBase + 590);
  EXPECT_EQ(last->conns, totals.back().conns);
  // The rates run on across the two recorders without a gap.
  const auto points = second.fetch(a, kBase + 250, kBase + 350);
  ASSERT_EQ(points.size(), 10u);
  for (const auto& p : points) {
    const int i = static_cast<int>((p.time - kBase) / 10);
    EXPECT_NEAR(p.conns * 10, static_cast<double>(connsDelta(i)), 1e-6) << p.time;
  }
  // Nothing but the series' files is left in the directory.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().extension(), ".rrd") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST_F(StatsRecorderTest, RendersEveryRangeInBothFormats) {
  StatsRecorder recorder(dir_);
  const std::string series = "lvs.member.3f2a9c1e.tcp:10.0.0.1:80";  // colons in the file name
  const std::int64_t now = nowAligned();
  recorder.record(growingSeries(series, now - 3000, 301));

  for (Range range : {Range::Hour, Range::Day, Range::Week, Range::Month, Range::Year}) {
    for (ImageFormat format : {ImageFormat::Png, ImageFormat::Svg}) {
      SCOPED_TRACE(std::string(toString(range)) + " " + std::string(toString(format)));
      GraphRequest request;
      request.series = series;
      request.range = range;
      request.format = format;
      request.title = "Service web";
      const Graph graph = recorder.render(request);
      EXPECT_GT(graph.width, request.width);  // the plot area plus axes and margins
      EXPECT_GT(graph.height, request.height);
      if (format == ImageFormat::Png) expectPng(graph);
      else expectSvg(graph);
    }
  }
  for (const char* metric : {"conns", "packets", "bytes"}) {
    SCOPED_TRACE(metric);
    GraphRequest request;
    request.series = series;
    request.range = Range::Hour;
    request.metric = metric;
    request.width = 300;
    request.height = 120;
    expectPng(recorder.render(request));
  }
}

TEST_F(StatsRecorderTest, TitlesAreTextWhateverTheyContain) {
  StatsRecorder recorder(dir_);
  const std::string series = "lvs.service.title";
  recorder.record(growingSeries(series, nowAligned() - 600, 61));
  GraphRequest request;
  request.series = series;
  request.range = Range::Hour;
  request.title = "x";
  const Graph plain = recorder.render(request);

  for (const std::string& title :
       {std::string("tcp:10.0.0.1:80 <b>&\"x'"), std::string("--width=9999"),
        std::string("-"), std::string("DEF:x=/etc/passwd:a:AVERAGE"),
        std::string("%s%n%s back\\slash:\\:"), std::string("bad \xff\xfe utf-8"),
        std::string(1000, 'w')}) {
    SCOPED_TRACE(title);
    request.title = title;
    for (ImageFormat format : {ImageFormat::Png, ImageFormat::Svg}) {
      request.format = format;
      ::testing::internal::CaptureStderr();
      const Graph graph = recorder.render(request);
      // No pango or librrd complaint either (invalid UTF-8 would draw one).
      EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
      if (format == ImageFormat::Png) {
        expectPng(graph);
        // One line of title, and none of it read as an option (size is unchanged).
        EXPECT_EQ(graph.width, plain.width);
        EXPECT_EQ(graph.height, plain.height);
      } else {
        expectSvg(graph);
      }
    }
  }
  // rrdgraph starts a new title line at "\n", "<br>" and "<br/>", and a backslash cannot be
  // escaped: the title still draws on one line. A real newline is a space too.
  for (const std::string& title :
       {std::string("a\\nb"), std::string("a\\\\nb"), std::string("a<br>b"),
        std::string("a<br/>b"), std::string("line one\nline two\r\t")}) {
    request.title = title;
    request.format = ImageFormat::Png;
    const Graph graph = recorder.render(request);
    expectPng(graph);
    EXPECT_EQ(graph.height, plain.height) << title;
  }
}

TEST_F(StatsRecorderTest, BadInputIsRefusedNamingTheField) {
  StatsRecorder recorder(dir_);
  const std::string series = "lvs.service.errors";
  recorder.record(growingSeries(series, kBase, 10));
  const auto before = recorder.last(series);
  std::string message;

  for (const std::string& bad : {std::string(""), std::string("a/b"), std::string("../x"),
                                std::string("a b"), std::string(201, 'x'),
                                std::string("caf\xc3\xa9")}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(errorOf([&] { recorder.record({Sample{bad, kBase + 1000, 1, 1, 1, 1, 1}}); },
                      &message),
              ErrorCode::InvalidArgument);
    EXPECT_NE(message.find("series"), std::string::npos) << message;
    EXPECT_EQ(errorOf([&] { recorder.fetch(bad, kBase, kBase + 100); }),
              ErrorCode::InvalidArgument);
    EXPECT_EQ(errorOf([&] { recorder.last(bad); }), ErrorCode::InvalidArgument);
  }

  // Backwards, equal to the last update, out of order within a batch: nothing is written,
  // not even the good samples of the same batch.
  const std::int64_t last = kBase + 90;
  for (const auto& batch : std::vector<std::vector<Sample>>{
           {Sample{series, last - 10, 1, 1, 1, 1, 1}},
           {Sample{series, last, 1, 1, 1, 1, 1}},
           {Sample{"lvs.service.other", kBase, 1, 1, 1, 1, 1},
            Sample{series, last + 20, 1, 1, 1, 1, 1}, Sample{series, last + 10, 1, 1, 1, 1, 1}},
           {Sample{"lvs.service.other", kBase, 1, 1, 1, 1, 1},
            Sample{series, last + 10, 1, 1, 1, 1, 1}, Sample{series, last + 10, 2, 2, 2, 2, 2}},
           {Sample{"lvs.service.other", kBase, 1, 1, 1, 1, 1}, Sample{series, 0, 1, 1, 1, 1, 1}},
       }) {
    EXPECT_EQ(errorOf([&] { recorder.record(batch); }, &message), ErrorCode::InvalidArgument);
    EXPECT_NE(message.find("timestampSeconds"), std::string::npos) << message;
  }
  EXPECT_EQ(recorder.last(series)->lastUpdateSeconds, before->lastUpdateSeconds);
  EXPECT_EQ(recorder.last(series)->conns, before->conns);
  EXPECT_FALSE(recorder.last("lvs.service.other").has_value());
  EXPECT_FALSE(fs::exists(recorder.fileFor("lvs.service.other")));

  // Unknown series.
  EXPECT_EQ(errorOf([&] { recorder.fetch("lvs.service.nope", kBase, kBase + 100); }),
            ErrorCode::NotFound);
  GraphRequest request;
  request.series = "lvs.service.nope";
  EXPECT_EQ(errorOf([&] { recorder.render(request); }), ErrorCode::NotFound);
  EXPECT_FALSE(recorder.last("lvs.service.nope").has_value());

  // Bad graph parameters.
  request.series = series;
  for (int width : {99, 4001, 0, -640}) {
    request.width = width;
    EXPECT_EQ(errorOf([&] { recorder.render(request); }, &message), ErrorCode::InvalidArgument);
    EXPECT_NE(message.find("width"), std::string::npos) << message;
  }
  request.width = 640;
  request.height = 4001;
  EXPECT_EQ(errorOf([&] { recorder.render(request); }, &message), ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("height"), std::string::npos) << message;
  request.height = 200;
  request.metric = "latency";
  EXPECT_EQ(errorOf([&] { recorder.render(request); }, &message), ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("metric"), std::string::npos) << message;
  EXPECT_EQ(errorOf([&] { recorder.fetch(series, kBase + 100, kBase + 100); }, &message),
            ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("endSeconds"), std::string::npos) << message;
}

TEST_F(StatsRecorderTest, ACorruptFileIsAnInternalErrorWithLibrrdsText) {
  StatsRecorder recorder(dir_);
  {
    std::FILE* f = std::fopen(recorder.fileFor("lvs.service.junk").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("not an rrd file", f);
    std::fclose(f);
  }
  std::string message;
  EXPECT_EQ(errorOf([&] { recorder.last("lvs.service.junk"); }, &message), ErrorCode::Internal);
  EXPECT_NE(message.find("lvs.service.junk"), std::string::npos) << message;
  EXPECT_EQ(errorOf([&] {
              recorder.record({Sample{"lvs.service.junk", kBase, 1, 1, 1, 1, 1}});
            }),
            ErrorCode::Internal);
  EXPECT_EQ(errorOf([&] { recorder.fetch("lvs.service.junk", kBase, kBase + 100); }),
            ErrorCode::Internal);
  GraphRequest request;
  request.series = "lvs.service.junk";
  EXPECT_EQ(errorOf([&] { recorder.render(request); }), ErrorCode::Internal);
  // The listing leaves it out rather than failing for every series.
  recorder.record(growingSeries("lvs.service.good", kBase, 3));
  const auto all = recorder.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].series, "lvs.service.good");
}

TEST_F(StatsRecorderTest, ThreadsRecordAndRenderAtOnce) {
  StatsRecorder recorder(dir_);
  const std::int64_t start = nowAligned() - 3600;
  constexpr int kThreads = 4, kBatches = 12, kPerBatch = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        const std::string series = "lvs.member.thread." + std::to_string(t);
        const auto samples = growingSeries(series, start, kBatches * kPerBatch);
        for (int b = 0; b < kBatches; ++b) {
          recorder.record({samples.begin() + b * kPerBatch,
                           samples.begin() + (b + 1) * kPerBatch});
          GraphRequest request;
          request.series = series;
          request.range = b % 2 == 0 ? Range::Hour : Range::Day;
          request.format = b % 3 == 0 ? ImageFormat::Svg : ImageFormat::Png;
          request.metric = b % 2 == 0 ? "bytes" : "packets";
          request.title = "thread " + std::to_string(t) + ": batch " + std::to_string(b);
          const Graph graph = recorder.render(request);
          if (graph.bytes.empty()) ++failures;
          if (recorder.fetch(series, start, start + 10 * kPerBatch * (b + 1)).empty()) ++failures;
          recorder.list();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
        ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const auto all = recorder.list();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads));
  for (const auto& info : all) {
    EXPECT_EQ(info.lastUpdateSeconds, start + 10 * (kBatches * kPerBatch - 1)) << info.series;
  }
}
