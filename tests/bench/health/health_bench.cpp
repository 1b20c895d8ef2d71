// Health engine benchmarks, each beside HAProxy checking the same backends:
//   (a) failure detection time: a backend on 127.0.0.1 is closed at a known instant; when
//       does the engine's subscriber report Unhealthy, and when does HAProxy's stats socket
//       show the server DOWN (polled every 5 ms)? Same interval, fall, rise and timeout.
//   (c) capacity: N backends (listening sockets of a child process on 127.1.x.y), TCP
//       connect checks at a fixed interval; probes per second and CPU seconds of each side.
// Usage: health_bench [--detection] [--capacity] [--trials N] [--backends N] [--seconds S]
//                     [--haproxy PATH] [--http]
// With neither --detection nor --capacity both run; --http makes both sides check with
// `GET /` expecting 200 instead of a TCP connect. Figures are measured, not asserted; the
// exit status is non-zero only when a side failed to detect or to keep every backend up.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "health/HealthEngine.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using shoal::health::HealthChange;
using shoal::health::HealthDefaults;
using shoal::health::HealthEngine;
using shoal::health::HealthState;
using shoal::health::HealthTarget;

namespace {

struct Options {
  bool detection = false, capacity = false, http = false;
  int trials = 10;
  int backends = 2000;
  int seconds = 20;
  std::string haproxy = "/usr/sbin/haproxy";
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Cpu {
  double user = 0, system = 0;
  Cpu operator-(const Cpu& o) const { return {user - o.user, system - o.system}; }
  double total() const { return user + system; }
};

Cpu selfCpu() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return {static_cast<double>(r.ru_utime.tv_sec) + static_cast<double>(r.ru_utime.tv_usec) / 1e6,
          static_cast<double>(r.ru_stime.tv_sec) + static_cast<double>(r.ru_stime.tv_usec) / 1e6};
}

// utime and stime of another process, from /proc/<pid>/stat.
Cpu processCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (fields >> field) f.push_back(field);
  // After "(comm) ", field 3 (state) is f[0]; utime is field 14, stime field 15.
  if (f.size() < 13) return {};
  const auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {std::stod(f[11]) / tick, std::stod(f[12]) / tick};
}

// ---- HAProxy ---------------------------------------------------------------------------

class Haproxy {
 public:
  Haproxy(const std::string& binary, const std::string& dir, const std::string& config) : dir_(dir) {
    const auto configPath = dir + "/haproxy.cfg";
    std::ofstream(configPath) << config;
    socketPath_ = dir + "/haproxy.sock";
    std::filesystem::remove(socketPath_);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int log = open((dir + "/haproxy.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 1);
      dup2(log, 2);
      // Nothing of this process may live on in HAProxy: an inherited listening socket
      // would keep a "killed" backend accepting connections.
      close_range(3, ~0U, 0);
      execl(binary.c_str(), binary.c_str(), "-db", "-f", configPath.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto end = Clock::now() + 10s;
    while (Clock::now() < end) {
      if (!command("show info\n").empty()) return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;
      std::this_thread::sleep_for(20ms);
    }
    std::ifstream log(dir + "/haproxy.log");
    throw std::runtime_error("HAProxy did not start: " +
                             std::string((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>()));
  }
  ~Haproxy() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  pid_t pid() const { return pid_; }

  // One command on the stats socket; "" when it cannot connect.
  std::string command(const std::string& line) const {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socketPath_.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd);
      return "";
    }
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      close(fd);
      return "";
    }
    std::string out;
    char buffer[65536];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
    close(fd);
    return out;
  }

  // server name -> status ("UP", "DOWN", "UP 1/3", ...) of backend `be`.
  std::map<std::string, std::string> serverStatus() const {
    std::map<std::string, std::string> out;
    std::istringstream csv(command("show stat\n"));
    std::string line;
    int statusColumn = -1;
    while (std::getline(csv, line)) {
      std::vector<std::string> cells;
      std::stringstream row(line);
      std::string cell;
      while (std::getline(row, cell, ',')) cells.push_back(cell);
      if (line.rfind("# ", 0) == 0) {
        for (std::size_t i = 0; i < cells.size(); ++i)
          if (cells[i] == "status") statusColumn = static_cast<int>(i);
        continue;
      }
      if (statusColumn < 0 || cells.size() <= static_cast<std::size_t>(statusColumn) || cells[0] != "be") continue;
      if (cells[1] == "BACKEND") continue;
      out[cells[1]] = cells[statusColumn];
    }
    return out;
  }

 private:
  std::string dir_, socketPath_;
  pid_t pid_ = -1;
};

std::string haproxyVersion(const std::string& binary) {
  std::string out;
  if (FILE* p = popen((binary + " -v 2>/dev/null").c_str(), "r")) {
    char line[256];
    if (fgets(line, sizeof line, p)) out = line;
    pclose(p);
  }
  // "HAProxy version 2.6.12-1+deb12u4 2026/..." -> "HAProxy 2.6.12"
  std::istringstream words(out);
  std::string a, b, version;
  words >> a >> b >> version;
  return "HAProxy " + version.substr(0, version.find('-'));
}

std::string haproxyGlobal(const std::string& dir, int maxconn) {
  // One thread, like the engine's one event-loop thread.
  return "global\n  stats socket " + dir + "/haproxy.sock level admin\n  maxconn " + std::to_string(maxconn) +
         "\n  nbthread 1\n";
}

// ---- (a) failure detection --------------------------------------------------------------

// A backend on 127.0.0.1 that answers HTTP requests (and takes connect-only checks), and
// that can be closed and reopened on the same port.
class Backend {
 public:
  Backend() : work_(io_.get_executor()) {
    tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = probe.local_endpoint().port();
    probe.close();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Backend() {
    kill();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

  // Throws when the port cannot be bound again.
  void open() {
    std::string error;
    onLoop([this, &error] {
      try {
        bind();
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    if (!error.empty()) throw std::runtime_error("backend 127.0.0.1:" + std::to_string(port_) + ": " + error);
  }
  void bind() {
    acceptor_.emplace(io_);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port_);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen(1024);
    accept();
  }
  // Stops listening and drops every connection; returns the instant it was done.
  Clock::time_point kill() {
    Clock::time_point at;
    onLoop([this, &at] {
      boost::system::error_code ignored;
      if (acceptor_) acceptor_->close(ignored);
      acceptor_.reset();
      for (auto& s : sessions_) s->close(ignored);
      sessions_.clear();
      at = Clock::now();
    });
    return at;
  }

 private:
  template <class F>
  void onLoop(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  void accept() {
    acceptor_->async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      sessions_.insert(s);
      serve(s, std::make_shared<std::string>());
      accept();
    });
  }
  void serve(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::string> in) {
    auto buffer = std::make_shared<std::array<char, 2048>>();
    s->async_read_some(asio::buffer(*buffer), [this, s, in, buffer](const boost::system::error_code& ec, std::size_t n) {
      if (ec) {
        sessions_.erase(s);
        return;
      }
      in->append(buffer->data(), n);
      if (in->find("\r\n\r\n") == std::string::npos) return serve(s, in);
      static const std::string response = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      asio::async_write(*s, asio::buffer(response), [this, s](const boost::system::error_code&, std::size_t) {
        boost::system::error_code ignored;
        s->close(ignored);
        sessions_.erase(s);
      });
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::optional<tcp::acceptor> acceptor_;
  std::set<std::shared_ptr<tcp::socket>> sessions_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

struct Summary {
  double min = 0, p50 = 0, max = 0;
};

Summary summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Summary s;
  if (v.empty()) return s;
  s.min = v.front();
  s.max = v.back();
  const auto n = v.size();
  s.p50 = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return s;
}

int runDetection(const Options& o, const std::string& dir) {
  constexpr int kInterMs = 200, kFall = 3, kRise = 2, kTimeoutMs = 100;
  Backend backend;
  backend.open();

  std::string config = haproxyGlobal(dir, 1000) +
                       "defaults\n  mode " + std::string(o.http ? "http" : "tcp") +
                       "\n  timeout connect " + std::to_string(kTimeoutMs) + "ms\n  timeout check " +
                       std::to_string(kTimeoutMs) + "ms\n  timeout client 10s\n  timeout server 10s\n"
                       "backend be\n" +
                       (o.http ? "  option httpchk GET /\n  http-check expect status 200\n" : "") +
                       "  server s0 127.0.0.1:" + std::to_string(backend.port()) + " check inter " +
                       std::to_string(kInterMs) + " fall " + std::to_string(kFall) + " rise " +
                       std::to_string(kRise) + "\n";
  Haproxy haproxy(o.haproxy, dir, config);

  HealthDefaults defaults;
  defaults.interval = std::chrono::milliseconds(kInterMs);
  defaults.timeout = std::chrono::milliseconds(kTimeoutMs);
  defaults.fall = kFall;
  defaults.rise = kRise;
  defaults.flapThreshold = 1000;  // every trial is a deliberate flap: measure the plain rise
  HealthEngine engine(defaults);
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<Clock::time_point> engineDown;
  engine.subscribe([&](const HealthChange& c) {
    if (c.status.state != HealthState::Unhealthy) return;
    std::lock_guard lock(mutex);
    if (!engineDown) engineDown = Clock::now();
    changed.notify_all();
  });
  HealthTarget target;
  target.nodeId = "1";
  target.address = "127.0.0.1";
  target.port = backend.port();
  target.probe.service = o.http ? "http" : "tcp";
  target.probe.kind = o.http ? SHOAL_PROBE_HTTP : SHOAL_PROBE_TCP;
  target.probe.httpExpectStatus = 200;
  engine.setTargets({target});
  engine.start();

  std::mt19937 random(42);
  std::uniform_int_distribution<int> phase(0, kInterMs - 1);
  std::vector<double> shoalMs, haproxyMs;
  for (int trial = 0; trial < o.trials; ++trial) {
    // Both sides see the backend up before it dies.
    const auto upBy = Clock::now() + 10s;
    while (Clock::now() < upBy) {
      const auto s = engine.status("1", target.probe.service);
      if (s && s->state == HealthState::Healthy && haproxy.serverStatus()["s0"] == "UP") break;
      std::this_thread::sleep_for(5ms);
    }
    // A random phase against both checkers' schedules.
    std::this_thread::sleep_for(std::chrono::milliseconds(phase(random)));
    {
      std::lock_guard lock(mutex);
      engineDown.reset();
    }
    const auto killedAt = backend.kill();
    std::optional<Clock::time_point> haproxyDown;
    const auto limit = killedAt + 5s;
    while (Clock::now() < limit && !haproxyDown) {
      const auto status = haproxy.serverStatus()["s0"];
      if (status.rfind("DOWN", 0) == 0) haproxyDown = Clock::now();
      else std::this_thread::sleep_for(5ms);
    }
    {
      std::unique_lock lock(mutex);
      changed.wait_until(lock, limit, [&] { return engineDown.has_value(); });
      if (engineDown) shoalMs.push_back(ms(*engineDown - killedAt));
    }
    if (haproxyDown) haproxyMs.push_back(ms(*haproxyDown - killedAt));
    std::printf("  trial %2d: shoal %6.1f ms   %s %6.1f ms\n", trial + 1, shoalMs.empty() ? -1.0 : shoalMs.back(),
                "HAProxy", haproxyDown ? haproxyMs.back() : -1.0);
    backend.open();
  }
  engine.stop();

  const auto s = summarise(shoalMs), h = summarise(haproxyMs);
  std::printf("\n(a) Failure detection, %s check, inter %d ms, fall %d, rise %d, timeout %d ms, %d trials\n",
              o.http ? "HTTP GET / (expect 200)" : "TCP connect", kInterMs, kFall, kRise, kTimeoutMs, o.trials);
  std::printf("    time from the backend's close to the checker reporting it down (ms)\n");
  std::printf("    %-22s %8s %8s %8s %9s\n", "checker", "min", "p50", "max", "detected");
  std::printf("    %-22s %8.1f %8.1f %8.1f %5zu/%d\n", "shoal health engine", s.min, s.p50, s.max, shoalMs.size(),
              o.trials);
  std::printf("    %-22s %8.1f %8.1f %8.1f %5zu/%d\n", haproxyVersion(o.haproxy).c_str(), h.min, h.p50, h.max,
              haproxyMs.size(), o.trials);
  std::printf("    (HAProxy is polled on its stats socket every 5 ms; expected range %d..%d ms)\n\n",
              (kFall - 1) * kInterMs, kFall * kInterMs);
  return shoalMs.size() == static_cast<std::size_t>(o.trials) &&
                 haproxyMs.size() == static_cast<std::size_t>(o.trials)
             ? 0
             : 1;
}

// ---- (c) capacity -------------------------------------------------------------------------

// Counters shared with the backend farm's process.
struct FarmCounters {
  std::atomic<std::uint64_t> accepted{0};  // connections accepted
  std::atomic<std::uint64_t> answered{0};  // HTTP requests answered
};

struct BackendFarm {
  pid_t pid = -1;
  FarmCounters* counters = nullptr;
  std::vector<std::pair<std::string, std::uint16_t>> endpoints;
};

// The network namespace's count of TCP connections opened (/proc/net/snmp ActiveOpens):
// HAProxy resets its connect-only checks before the backend accepts them, so only this
// counter sees every check of both sides. Anything else opening connections meanwhile is
// counted too.
std::uint64_t tcpActiveOpens() {
  std::ifstream in("/proc/net/snmp");
  std::string header, values;
  while (std::getline(in, header)) {
    if (header.rfind("Tcp:", 0) != 0) continue;
    std::getline(in, values);
    std::istringstream h(header), v(values);
    std::string name, value;
    while (h >> name && v >> value)
      if (name == "ActiveOpens") return std::stoull(value);
  }
  return 0;
}

// Forks (before the parent has threads) a child that listens on `count` endpoints
// 127.1.a.b:port. It accepts every connection, answers an HTTP request with 200, closes a
// connection the checker closes, and counts both.
BackendFarm startFarm(int count) {
  BackendFarm farm;
  void* shared = mmap(nullptr, sizeof(FarmCounters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) throw std::runtime_error("mmap failed");
  farm.counters = new (shared) FarmCounters();
  int pipeFds[2];
  if (pipe(pipeFds) != 0) throw std::runtime_error("pipe failed");
  farm.pid = fork();
  if (farm.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(pipeFds[0]);
    const int epoll = epoll_create1(0);
    constexpr std::uint64_t kConnection = 1ull << 32;  // tags connection fds in epoll data
    std::string report;
    std::uint16_t port = 0;
    for (int i = 0; i < count; ++i) {
      char ip[32];
      std::snprintf(ip, sizeof ip, "127.1.%d.%d", i / 250, 1 + i % 250);
      for (int attempt = 0; attempt < 20; ++attempt) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, ip, &a.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd, 1024) == 0) {
          socklen_t len = sizeof a;
          getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
          port = ntohs(a.sin_port);  // the next endpoints try the same port on other addresses
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = static_cast<std::uint64_t>(fd);
          epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
          report += std::string(ip) + " " + std::to_string(port) + "\n";
          break;
        }
        close(fd);
        port = static_cast<std::uint16_t>(port == 0 ? 0 : port + 1);
      }
    }
    report += "end\n";
    if (write(pipeFds[1], report.data(), report.size()) < 0) _exit(1);
    close(pipeFds[1]);
    static const char response[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    epoll_event events[256];
    char buffer[4096];
    for (;;) {
      const int n = epoll_wait(epoll, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
        if ((events[i].data.u64 & kConnection) == 0) {
          int client;
          while ((client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            farm.counters->accepted.fetch_add(1, std::memory_order_relaxed);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = kConnection | static_cast<std::uint64_t>(client);
            epoll_ctl(epoll, EPOLL_CTL_ADD, client, &ev);
          }
          continue;
        }
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EAGAIN) continue;
        // Checks send their whole request in one segment.
        if (got > 0 && std::string_view(buffer, static_cast<std::size_t>(got)).find("\r\n\r\n") != std::string_view::npos) {
          if (write(fd, response, sizeof response - 1) > 0) farm.counters->answered.fetch_add(1, std::memory_order_relaxed);
        } else if (got > 0) {
          continue;
        }
        close(fd);
      }
    }
  }
  close(pipeFds[1]);
  FILE* in = fdopen(pipeFds[0], "r");
  char line[128];
  while (fgets(line, sizeof line, in)) {
    std::string text(line);
    if (text == "end\n") break;
    std::istringstream words(text);
    std::string ip;
    int port = 0;
    words >> ip >> port;
    farm.endpoints.emplace_back(ip, static_cast<std::uint16_t>(port));
  }
  fclose(in);
  return farm;
}

struct CapacityRow {
  double ownPerSecond = -1;  // probes completed, as the checker counts them (-1: it does not)
  double opensPerSecond = 0;     // TCP connections opened in the namespace
  double answeredPerSecond = 0;  // HTTP requests the backends answered
  Cpu cpu;
  int up = 0;
};

// Counters sampled at the start and end of one measured period.
struct Period {
  std::uint64_t opens = 0, answered = 0;
  Clock::time_point at;
  static Period now(const BackendFarm& farm) {
    return {tcpActiveOpens(), farm.counters->answered.load(), Clock::now()};
  }
};

void fill(CapacityRow& row, const Period& a, const Period& b) {
  const double seconds = std::chrono::duration<double>(b.at - a.at).count();
  row.opensPerSecond = static_cast<double>(b.opens - a.opens) / seconds;
  row.answeredPerSecond = static_cast<double>(b.answered - a.answered) / seconds;
}

void printCapacity(const Options& o, std::size_t n, const CapacityRow& shoal, const CapacityRow& peer,
                   const std::string& peerName) {
  std::printf("(c) Capacity: %zu backends (127.1.x.y), %s checks every 1000 ms, %d s measured\n", n,
              o.http ? "HTTP GET / (expect 200)" : "TCP connect", o.seconds);
  std::printf("    %-27s %9s %12s %12s %15s %14s %10s\n", "checker", "probes/s", "TCP opens/s",
              "HTTP 200s/s", "CPU s usr+sys", "CPU/1k probes", "up");
  auto row = [&](const std::string& name, const CapacityRow& r) {
    char own[32] = "n/a";
    if (r.ownPerSecond >= 0) std::snprintf(own, sizeof own, "%.0f", r.ownPerSecond);
    const double rate = o.http ? r.answeredPerSecond : r.opensPerSecond;
    const double probes = rate * o.seconds;
    char cpu[48];
    std::snprintf(cpu, sizeof cpu, "%.2f+%.2f", r.cpu.user, r.cpu.system);
    std::printf("    %-27s %9s %12.0f %12.0f %15s %11.1f ms %6d/%zu\n", name.c_str(), own, r.opensPerSecond,
                r.answeredPerSecond, cpu, probes > 0 ? r.cpu.total() * 1000.0 / (probes / 1000.0) : 0.0, r.up, n);
  };
  row("shoal health (1 thread)", shoal);
  row(peerName + " (nbthread 1)", peer);
  std::printf("    probes/s: the checker's own count; TCP opens/s: /proc/net/snmp ActiveOpens of the namespace;\n"
              "    HTTP 200s/s: answers the backends sent. CPU: shoal = this process while only the engine\n"
              "    runs (getrusage); HAProxy = /proc/<pid>/stat. CPU/1k probes uses %s.\n\n",
              o.http ? "HTTP 200s/s" : "TCP opens/s");
}

int runCapacity(const Options& o, const std::string& dir, BackendFarm& farm) {
  const auto n = farm.endpoints.size();
  CapacityRow shoalRow, peerRow;
  {
    HealthDefaults defaults;
    defaults.interval = 1000ms;
    defaults.timeout = 1000ms;
    HealthEngine engine(defaults);
    std::vector<HealthTarget> targets;
    for (std::size_t i = 0; i < n; ++i) {
      HealthTarget t;
      t.nodeId = std::to_string(i);
      t.address = farm.endpoints[i].first;
      t.port = farm.endpoints[i].second;
      t.probe.service = o.http ? "http" : "tcp";
      t.probe.kind = o.http ? SHOAL_PROBE_HTTP : SHOAL_PROBE_TCP;
      t.probe.httpExpectStatus = 200;
      targets.push_back(std::move(t));
    }
    engine.setTargets(std::move(targets));
    engine.start();
    std::this_thread::sleep_for(2s);  // the first interval spreads the targets
    auto checks = [&] {
      std::uint64_t sum = 0;
      for (const auto& s : engine.snapshot()) sum += s.checks;
      return sum;
    };
    const auto checks0 = checks();
    const auto cpu0 = selfCpu();
    const auto p0 = Period::now(farm);
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    const auto cpu1 = selfCpu();
    const auto p1 = Period::now(farm);
    const auto checks1 = checks();
    fill(shoalRow, p0, p1);
    shoalRow.ownPerSecond = static_cast<double>(checks1 - checks0) / std::chrono::duration<double>(p1.at - p0.at).count();
    shoalRow.cpu = cpu1 - cpu0;
    for (const auto& s : engine.snapshot()) shoalRow.up += s.state == HealthState::Healthy;
    engine.stop();
    if (std::getenv("SHOAL_BENCH_DEBUG")) {
      std::map<std::string, int> errors;
      std::map<long, int> durations;
      for (const auto& s : engine.snapshot()) {
        errors[s.lastError]++;
        durations[static_cast<long>(s.lastDuration.count() / 10 * 10)]++;
      }
      for (const auto& [e, c] : errors) std::printf("  last error %-40s x %d\n", e.c_str(), c);
      for (const auto& [d, c] : durations) std::printf("  last duration %4ld ms x %d\n", d, c);
    }
  }
  std::this_thread::sleep_for(1s);  // let the last connections settle
  {
    std::string config = haproxyGlobal(dir, 5000) + "defaults\n  mode " + std::string(o.http ? "http" : "tcp") +
                         "\n  timeout connect 1s\n  timeout check 1s\n  timeout client 10s\n  timeout server 10s\n"
                         "backend be\n" +
                         (o.http ? "  option httpchk GET /\n  http-check expect status 200\n" : "") +
                         "  default-server check inter 1000 fall 3 rise 2\n";
    for (std::size_t i = 0; i < n; ++i)
      config += "  server s" + std::to_string(i) + " " + farm.endpoints[i].first + ":" +
                std::to_string(farm.endpoints[i].second) + "\n";
    Haproxy haproxy(o.haproxy, dir, config);
    std::this_thread::sleep_for(2s);
    const auto cpu0 = processCpu(haproxy.pid());
    const auto p0 = Period::now(farm);
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    const auto cpu1 = processCpu(haproxy.pid());
    const auto p1 = Period::now(farm);
    fill(peerRow, p0, p1);
    peerRow.cpu = cpu1 - cpu0;
    for (const auto& [name, status] : haproxy.serverStatus()) peerRow.up += status == "UP";
  }
  printCapacity(o, n, shoalRow, peerRow, haproxyVersion(o.haproxy));
  return shoalRow.up == static_cast<int>(n) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--detection") o.detection = true;
    else if (a == "--capacity") o.capacity = true;
    else if (a == "--http") o.http = true;
    else if (a == "--trials") o.trials = std::stoi(value());
    else if (a == "--backends") o.backends = std::stoi(value());
    else if (a == "--seconds") o.seconds = std::stoi(value());
    else if (a == "--haproxy") o.haproxy = value();
    else {
      std::fprintf(stderr,
                   "usage: %s [--detection] [--capacity] [--http] [--trials N] [--backends N] [--seconds S] "
                   "[--haproxy PATH]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!o.detection && !o.capacity) o.detection = o.capacity = true;
  if (access(o.haproxy.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "%s not found: the peer is needed for these figures\n", o.haproxy.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  char dirTemplate[] = "/tmp/shoal-health-bench-XXXXXX";
  const std::string dir = mkdtemp(dirTemplate);
  int rc = 0;
  try {
    // Forked first, while this process has no threads yet.
    std::optional<BackendFarm> farm;
    if (o.capacity) farm = startFarm(o.backends);
    if (o.detection) rc |= runDetection(o, dir);
    if (o.capacity) {
      rc |= runCapacity(o, dir, *farm);
      kill(farm->pid, SIGKILL);
      waitpid(farm->pid, nullptr, 0);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "health_bench: %s\n", e.what());
    if (std::getenv("SHOAL_BENCH_DEBUG")) std::system("ss -tanp | head -40");
    rc = 1;
  }
  std::filesystem::remove_all(dir);
  return rc;
}
