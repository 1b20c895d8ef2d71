// Statistics benchmark: shoal::stats::StatsRecorder (librrd in process) beside the `rrdtool`
// command-line program, which is how hosting tools traditionally feed RRD files (one process
// per update, from cron or a script). Both sides work in the same run on files of the same
// layout, on the same file system:
//   (a) recording: N series x M rounds of samples 10 s apart (synthetic past times, so
//       nothing waits); StatsRecorder::record takes one round (every series) per call, the
//       peer runs `rrdtool update FILE TIME:v1:v2:v3:v4:v5` once per sample. The files are
//       created by StatsRecorder with a first, untimed round and copied for the peer, so
//       both start from the same bytes. Rounds run in two halves, ABBA order.
//   (b) rendering: a day graph (PNG, plot area 640x200) of one series: StatsRecorder::render
//       in memory beside `rrdtool graph - ...` with the same arguments, PNG on stdout;
//       alternating, median of K each.
//   (c) memory: this process's peak RSS before and after recording, the peak RSS of one
//       rrdtool process that made an update, and the size of one RRD file.
// Usage: stats_bench [--series N] [--rounds M] [--renders K] [--dir PATH] [--rrdtool PATH]
// Figures are printed, not asserted. Exit status 77 when the peer is not installed, 1 when
// either side fails or the two sides' files differ after recording.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "stats/StatsRecorder.hpp"

extern char** environ;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using shoal::stats::GraphRequest;
using shoal::stats::ImageFormat;
using shoal::stats::Range;
using shoal::stats::Sample;
using shoal::stats::StatsRecorder;

namespace {

constexpr int kStep = 10;  // StatsRecorder's default step, and the samples' spacing

struct Options {
  int series = 500;
  int rounds = 30;
  int renders = 50;
  std::string dir;  // a new directory under $TMPDIR or /tmp when empty
  std::string rrdtool;  // found on PATH when empty
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU seconds (user + system) of this process and of its waited-for children.
double cpuSeconds() {
  const auto total = [](int who) {
    rusage r{};
    getrusage(who, &r);
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  return total(RUSAGE_SELF) + total(RUSAGE_CHILDREN);
}

long maxRssKiB(int who) {
  rusage r{};
  getrusage(who, &r);
  return r.ru_maxrss;
}

std::string findOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string list = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = std::min(list.find(':', start), list.size());
    const std::string dir = list.substr(start, end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// ---- the peer: rrdtool, spawned by argv ----------------------------------------------------

class Rrdtool {
 public:
  explicit Rrdtool(std::string binary) : binary_(std::move(binary)) {
    // The child's environment: this one without RRDCACHED_ADDRESS (which would send updates
    // to a daemon instead of the file) and with the C locale, as this process has (it never
    // calls setlocale), so both sides format numbers alike.
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      if (entry.rfind("RRDCACHED_ADDRESS=", 0) == 0 || entry.rfind("LC_ALL=", 0) == 0) continue;
      env_.emplace_back(entry);
    }
    env_.emplace_back("LC_ALL=C");
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }

  const std::string& binary() const { return binary_; }

  std::string version() {
    std::string out;
    if (run({"--version"}, &out) != 0) return "rrdtool (version unknown)";
    const std::string first = out.substr(0, out.find('\n'));  // "RRDtool 1.7.2  Copyright ..."
    const auto cut = first.find("  ");
    return first.substr(0, cut);
  }

  // Runs `rrdtool args...`; its stdout goes to *out (or /dev/null), its stderr is this
  // process's. Returns the exit status (128 + signal when killed).
  int run(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::vector<std::string> argvStrings;
    argvStrings.reserve(args.size() + 1);
    argvStrings.push_back(binary_);
    argvStrings.insert(argvStrings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argvStrings.size() + 1);
    for (auto& a : argvStrings) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int pipeFds[2] = {-1, -1};
    if (out != nullptr) {
      if (pipe2(pipeFds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
      posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDOUT_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, binary_.c_str(), &actions, nullptr, argv.data(), envp_.data());
    posix_spawn_file_actions_destroy(&actions);
    if (out != nullptr) close(pipeFds[1]);
    if (rc != 0) {
      if (out != nullptr) close(pipeFds[0]);
      throw std::runtime_error("posix_spawn " + binary_ + ": " + std::strerror(rc));
    }
    if (out != nullptr) {
      out->clear();
      char buffer[65536];
      for (;;) {
        const ssize_t n = read(pipeFds[0], buffer, sizeof buffer);
        if (n > 0) {
          out->append(buffer, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          break;
        }
      }
      close(pipeFds[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }

  // The peak RSS (VmHWM, KiB) of an rrdtool process that has made one update. getrusage
  // cannot say it: an exec'd child's ru_maxrss starts from its parent's high-water mark. So
  // rrdtool runs in its pipe mode (`rrdtool -`, commands on stdin), makes the update, and
  // its /proc/<pid>/status is read before its stdin is closed. -1 when that fails.
  long peakRssAfterOneUpdate(const std::string& file, const std::string& update) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::string a0 = binary_, a1 = "-";
    char* argv[] = {a0.data(), a1.data(), nullptr};
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, binary_.c_str(), &actions, nullptr, argv, envp_.data());
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    long kib = -1;
    if (rc == 0) {
      const std::string command = "update " + file + " " + update + "\n";
      std::string reply;
      if (write(in[1], command.data(), command.size()) == static_cast<ssize_t>(command.size())) {
        char buffer[4096];
        ssize_t n;
        while (reply.find('\n') == std::string::npos &&
               (n = read(out[0], buffer, sizeof buffer)) > 0) {
          reply.append(buffer, static_cast<std::size_t>(n));
        }
      }
      if (reply.rfind("OK", 0) == 0) {
        std::ifstream status("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(status, line)) {
          if (line.rfind("VmHWM:", 0) == 0) kib = std::strtol(line.c_str() + 6, nullptr, 10);
        }
      }
    }
    close(in[1]);
    close(out[0]);
    if (rc == 0) {
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    return kib;
  }

 private:
  std::string binary_;
  std::vector<std::string> env_;
  std::vector<char*> envp_;
};

// ---- samples ---------------------------------------------------------------------------------

std::string seriesName(int i) {
  char name[64];
  std::snprintf(name, sizeof name, "lvs.member.bench%04d.10.0.%d.%d_80", i, i / 250, 1 + i % 250);
  return name;
}

// Growing totals, distinct per series and round.
Sample sampleOf(const std::string& series, int i, int round, std::int64_t time) {
  const auto r = static_cast<std::uint64_t>(round);
  const auto k = static_cast<std::uint64_t>(i % 97 + 1);
  Sample s;
  s.series = series;
  s.timestampSeconds = time;
  s.conns = r * 40 * k;
  s.packetsIn = r * 900 * k;
  s.packetsOut = r * 1100 * k;
  s.bytesIn = r * 120000 * k;
  s.bytesOut = r * 1400000 * k;
  return s;
}

// The argument `rrdtool update` takes: TIME:v1:v2:v3:v4:v5, in the file's DS order
// (conns, pkts_in, pkts_out, bytes_in, bytes_out), as StatsRecorder's template names them.
std::string updateArgument(const Sample& s) {
  return std::to_string(s.timestampSeconds) + ":" + std::to_string(s.conns) + ":" +
         std::to_string(s.packetsIn) + ":" + std::to_string(s.packetsOut) + ":" +
         std::to_string(s.bytesIn) + ":" + std::to_string(s.bytesOut);
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string fileSystemOf(const fs::path& dir) {
  struct statfs s {};
  if (statfs(dir.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

struct Summary {
  double min = 0, p50 = 0, max = 0;
};

Summary summarise(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  const auto n = v.size();
  s.p50 = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return s;
}

// The rrdgraph statements StatsRecorder::render uses for metric "conns" (copied from
// StatsRecorder.cpp; the file path's colons escaped the same way).
std::vector<std::string> peerGraphArguments(const fs::path& file, const GraphRequest& request) {
  std::string def;
  for (char c : file.native()) {
    if (c == ':') def += '\\';
    def += c;
  }
  return {"graph", "-",
          "--imgformat", "PNG",
          "--start", "end-1d",
          "--end", "now",
          "--width", std::to_string(request.width),
          "--height", std::to_string(request.height),
          "--slope-mode",
          "--lower-limit", "0",
          "--vertical-label=connections/s",
          "DEF:c=" + def + ":conns:AVERAGE",
          "DEF:cm=" + def + ":conns:MAX",
          "AREA:c#4F8FD6:Connections/s",
          "VDEF:c_last=c,LAST",
          "VDEF:c_avg=c,AVERAGE",
          "VDEF:cm_max=cm,MAXIMUM",
          "GPRINT:c_last:last %7.2lf%s",
          "GPRINT:c_avg:avg %7.2lf%s",
          "GPRINT:cm_max:max %7.2lf%s\\l"};
}

bool isPng(const std::string& bytes) { return bytes.rfind("\x89PNG\r\n\x1a\n", 0) == 0; }

// Width and height from a PNG's IHDR.
std::pair<int, int> pngSize(const std::string& bytes) {
  if (!isPng(bytes) || bytes.size() < 24) return {0, 0};
  const auto be32 = [&](std::size_t at) {
    return (static_cast<int>(static_cast<unsigned char>(bytes[at])) << 24) |
           (static_cast<int>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
           (static_cast<int>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
           static_cast<int>(static_cast<unsigned char>(bytes[at + 3]));
  };
  return {be32(16), be32(20)};
}

int run(const Options& o, Rrdtool& rrdtool, const fs::path& dir) {
  const fs::path ownDir = dir / "shoal", peerDir = dir / "rrdtool";
  fs::create_directories(peerDir);
  const std::string peerName = rrdtool.version();

  std::vector<std::string> names;
  for (int i = 0; i < o.series; ++i) names.push_back(seriesName(i));
  // Round 0 creates the files; rounds 1..M are measured and end at least a step before now,
  // so the day graph shows all of them and no update has to wait for the clock.
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t t0 = (now - static_cast<std::int64_t>(o.rounds + 2) * kStep) / kStep * kStep;
  const auto roundSamples = [&](int round) {
    std::vector<Sample> samples;
    samples.reserve(names.size());
    for (int i = 0; i < o.series; ++i) {
      samples.push_back(sampleOf(names[static_cast<std::size_t>(i)], i, round,
                                 t0 + static_cast<std::int64_t>(round) * kStep));
    }
    return samples;
  };

  std::printf("stats_bench: StatsRecorder (librrd in process) beside %s (%s), one process per call\n",
              peerName.c_str(), rrdtool.binary().c_str());
  std::printf("    files in %s (%s), step %d s\n\n", dir.c_str(), fileSystemOf(dir).c_str(), kStep);

  // ---- (a) recording ----
  const long rssBefore = maxRssKiB(RUSAGE_SELF);
  StatsRecorder recorder(ownDir, kStep);
  const auto createStart = Clock::now();
  recorder.record(roundSamples(0));
  const double createSeconds = seconds(Clock::now() - createStart);
  for (const auto& name : names) {
    fs::copy_file(recorder.fileFor(name), peerDir / (name + ".rrd"));
  }

  double ownSeconds = 0, ownCpu = 0, peerSeconds = 0, peerCpu = 0;
  long ownUpdates = 0, peerUpdates = 0;
  const auto ownRounds = [&](int from, int to) {
    for (int round = from; round <= to; ++round) {
      const std::vector<Sample> samples = roundSamples(round);
      const double cpu0 = cpuSeconds();
      const auto start = Clock::now();
      recorder.record(samples);
      ownSeconds += seconds(Clock::now() - start);
      ownCpu += cpuSeconds() - cpu0;
      ownUpdates += static_cast<long>(samples.size());
    }
  };
  const auto peerRounds = [&](int from, int to) {
    for (int round = from; round <= to; ++round) {
      const std::vector<Sample> samples = roundSamples(round);
      const double cpu0 = cpuSeconds();
      const auto start = Clock::now();
      for (const Sample& s : samples) {
        const std::string file = (peerDir / (s.series + ".rrd")).string();
        const int rc = rrdtool.run({"update", file, updateArgument(s)});
        if (rc != 0) {
          throw std::runtime_error("rrdtool update " + file + " exited with " + std::to_string(rc));
        }
      }
      peerSeconds += seconds(Clock::now() - start);
      peerCpu += cpuSeconds() - cpu0;
      peerUpdates += static_cast<long>(samples.size());
    }
  };
  const int half = o.rounds / 2;
  ownRounds(1, half);
  peerRounds(1, half);
  peerRounds(half + 1, o.rounds);
  ownRounds(half + 1, o.rounds);
  const long rssAfter = maxRssKiB(RUSAGE_SELF);

  // Same updates, same library underneath: the files should end byte for byte alike.
  int differing = 0;
  for (const auto& name : names) {
    if (readFile(recorder.fileFor(name)) != readFile(peerDir / (name + ".rrd"))) ++differing;
  }

  const double ownRate = static_cast<double>(ownUpdates) / ownSeconds;
  const double peerRate = static_cast<double>(peerUpdates) / peerSeconds;
  std::printf("(a) Recording: %d series x %d rounds (%ld updates a side), samples %d s apart\n",
              o.series, o.rounds, ownUpdates, kStep);
  std::printf("    StatsRecorder::record takes one round (%d samples) per call; rrdtool update\n"
              "    runs once per sample (posix_spawn, argv, no shell). Rounds in ABBA order.\n",
              o.series);
  std::printf("    %-34s %10s %12s %16s\n", "", "wall s", "updates/s", "CPU ms/1k upd.");
  std::printf("    %-34s %10.3f %12.0f %16.1f\n", "StatsRecorder::record", ownSeconds, ownRate,
              ownCpu * 1000.0 / (static_cast<double>(ownUpdates) / 1000.0));
  std::printf("    %-34s %10.3f %12.0f %16.1f\n", ("`rrdtool update`, " + peerName).c_str(),
              peerSeconds, peerRate, peerCpu * 1000.0 / (static_cast<double>(peerUpdates) / 1000.0));
  std::printf("    updates/s, StatsRecorder / rrdtool: %.1fx; CPU per update, rrdtool / StatsRecorder: %.1fx\n",
              ownRate / peerRate, (peerCpu / static_cast<double>(peerUpdates)) /
                                     (ownCpu / static_cast<double>(ownUpdates)));
  std::printf("    CPU = getrusage user+system of this process and its waited-for children.\n");
  std::printf("    (untimed: creating the %d files with the first round took %.3f s, fsync included)\n",
              o.series, createSeconds);
  std::printf("    files identical after recording: %s\n\n",
              differing == 0 ? "yes, all of them" : (std::to_string(differing) + " differ").c_str());

  // One more update, on a scratch copy, by an rrdtool process whose peak RSS is read.
  const fs::path scratch = dir / "scratch.rrd";
  fs::copy_file(peerDir / (names.front() + ".rrd"), scratch);
  const long peerRss = rrdtool.peakRssAfterOneUpdate(
      scratch.string(), updateArgument(sampleOf(names.front(), 0, o.rounds + 1,
                                                t0 + static_cast<std::int64_t>(o.rounds + 1) * kStep)));
  fs::remove(scratch);

  // ---- (b) rendering ----
  GraphRequest request;
  request.series = names.front();
  request.range = Range::Day;
  request.format = ImageFormat::Png;
  request.metric = "conns";
  request.width = 640;
  request.height = 200;
  const std::vector<std::string> peerArgs =
      peerGraphArguments(peerDir / (request.series + ".rrd"), request);

  std::vector<double> ownMs, peerMs;
  double ownRenderCpu = 0, peerRenderCpu = 0, firstOwnMs = 0;
  std::size_t ownBytes = 0, peerBytes = 0;
  std::pair<int, int> ownDims, peerDims;
  for (int i = 0; i < o.renders; ++i) {
    for (int side = 0; side < 2; ++side) {
      const bool own = (side == 0) == (i % 2 == 0);  // alternate which side goes first
      const double cpu0 = cpuSeconds();
      const auto start = Clock::now();
      std::string png;
      if (own) {
        png = recorder.render(request).bytes;
      } else {
        const int rc = rrdtool.run(peerArgs, &png);
        if (rc != 0) throw std::runtime_error("rrdtool graph exited with " + std::to_string(rc));
      }
      const double elapsed = seconds(Clock::now() - start) * 1000.0;
      const double cpu = cpuSeconds() - cpu0;
      if (!isPng(png)) throw std::runtime_error(std::string(own ? "render" : "rrdtool graph") + " gave no PNG");
      if (own) {
        if (ownMs.empty()) firstOwnMs = elapsed;
        ownMs.push_back(elapsed);
        ownRenderCpu += cpu;
        ownBytes = png.size();
        ownDims = pngSize(png);
      } else {
        peerMs.push_back(elapsed);
        peerRenderCpu += cpu;
        peerBytes = png.size();
        peerDims = pngSize(png);
      }
    }
  }
  const Summary ownRender = summarise(ownMs), peerRender = summarise(peerMs);
  std::printf("(b) Rendering: day graph of one series (%d rounds of data), PNG, plot area %dx%d,\n"
              "    the same rrdgraph arguments on both sides; %d each, alternating\n",
              o.rounds, request.width, request.height, o.renders);
  std::printf("    %-34s %8s %8s %8s %12s %10s %9s\n", "", "min ms", "p50 ms", "max ms", "CPU ms/graph",
              "PNG bytes", "image");
  const auto renderRow = [&](const std::string& name, const Summary& s, double cpu, std::size_t bytes,
                             std::pair<int, int> dims) {
    char image[32];
    std::snprintf(image, sizeof image, "%dx%d", dims.first, dims.second);
    std::printf("    %-34s %8.2f %8.2f %8.2f %12.2f %10zu %9s\n", name.c_str(), s.min, s.p50, s.max,
                cpu * 1000.0 / o.renders, bytes, image);
  };
  renderRow("StatsRecorder::render (in memory)", ownRender, ownRenderCpu, ownBytes, ownDims);
  renderRow("`rrdtool graph -`, " + peerName, peerRender, peerRenderCpu, peerBytes, peerDims);
  std::printf("    p50, rrdtool / StatsRecorder: %.1fx (the first in-process render, which sets up fonts,\n"
              "    took %.2f ms)\n\n",
              peerRender.p50 / ownRender.p50, firstOwnMs);

  // ---- (c) memory ----
  const fs::path one = recorder.fileFor(names.front());
  struct stat st {};
  stat(one.c_str(), &st);
  std::printf("(c) Memory and disk\n");
  std::printf("    this process's peak RSS: %ld KiB before recording, %ld KiB after (+%ld KiB)\n",
              rssBefore, rssAfter, rssAfter - rssBefore);
  std::printf("    peak RSS of one rrdtool process that made one update: %ld KiB (VmHWM, rrdtool's\n"
              "    pipe mode; every `rrdtool update` process of (a) is one such process)\n", peerRss);
  std::printf("    one RRD file: %lld bytes (%lld KiB allocated on disk); %d series: %.1f MiB\n",
              static_cast<long long>(st.st_size), static_cast<long long>(st.st_blocks) * 512 / 1024,
              o.series, static_cast<double>(st.st_size) * o.series / (1024.0 * 1024.0));
  return differing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--series") o.series = std::stoi(value());
      else if (a == "--rounds") o.rounds = std::stoi(value());
      else if (a == "--renders") o.renders = std::stoi(value());
      else if (a == "--dir") o.dir = value();
      else if (a == "--rrdtool") o.rrdtool = value();
      else throw std::runtime_error("unknown argument " + a);
    }
    if (o.series < 1 || o.rounds < 2 || o.renders < 1) {
      throw std::runtime_error("--series and --renders need at least 1, --rounds at least 2");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "stats_bench: %s\nusage: %s [--series N] [--rounds M] [--renders K] [--dir PATH] "
                 "[--rrdtool PATH]\n",
                 e.what(), argv[0]);
    return 2;
  }
  if (o.rrdtool.empty()) o.rrdtool = findOnPath("rrdtool");
  if (o.rrdtool.empty() || access(o.rrdtool.c_str(), X_OK) != 0) {
    std::fprintf(stderr,
                 "stats_bench: the peer, rrdtool (Debian package rrdtool), is not installed%s%s; "
                 "no figures without it\n",
                 o.rrdtool.empty() ? "" : " at ", o.rrdtool.c_str());
    return 77;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);

  // A new directory, removed at the end.
  fs::path dir;
  if (o.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/shoal-stats-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::fprintf(stderr, "stats_bench: mkdtemp %s: %s\n", pattern.c_str(), std::strerror(errno));
      return 1;
    }
    dir = pattern;
  } else {
    dir = fs::absolute(o.dir) / ("stats-bench-" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  int rc = 0;
  try {
    Rrdtool rrdtool(o.rrdtool);
    rc = run(o, rrdtool, dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stats_bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  return rc;
}
