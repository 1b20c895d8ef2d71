#include "health/HealthEngine.hpp"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "health/Probe.hpp"

namespace shoal::health {
namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

const char* healthStateName(HealthState s) {
  switch (s) {
    case HealthState::Unknown: return "unknown";
    case HealthState::Healthy: return "healthy";
    case HealthState::Unhealthy: return "unhealthy";
  }
  return "unknown";
}

namespace {

using Key = std::pair<std::string, std::string>;  // (nodeId, service)

// Probe starts are rounded up to this grid (see arm()); it delays a probe by at most this.
constexpr std::chrono::milliseconds kStartGrid{5};

template <class T>
T orDefault(T value, T fallback) {
  return value != T{} ? value : fallback;
}

}  // namespace

struct HealthEngine::Impl {
  // One per (node, service). Fields marked [mutex] are guarded by Impl::mutex; [strand]
  // ones are touched only on `strand`.
  struct Target {
    explicit Target(asio::io_context& io) : strand(asio::make_strand(io)), timer(strand) {}
    asio::strand<asio::io_context::executor_type> strand;
    asio::steady_timer timer;                    // [strand] the next scheduled probe
    std::shared_ptr<ProbeRun> inFlight;          // [strand]
    SteadyClock::time_point nextStart{};         // [strand]
    HealthTarget spec;                           // [mutex]
    HealthStatus status;                         // [mutex]
    std::deque<SteadyClock::time_point> changes;  // [mutex] state changes within the flap window
    bool removed = false;                        // [mutex]
  };

  Impl(HealthDefaults d, unsigned n)
      : defaults(d), threadCount(std::max(1u, n)), tls(makeProbeTlsContext()) {}

  // Declared first, destroyed last: every timer and socket below belongs to it.
  asio::io_context io;
  const HealthDefaults defaults;
  const unsigned threadCount;
  asio::ssl::context tls;

  mutable std::mutex mutex;
  std::map<Key, std::shared_ptr<Target>> targets;  // [mutex]
  bool running = false;                            // [mutex]
  bool stopping = false;                           // [mutex] handlers must start nothing new

  std::mutex subscribersMutex;
  std::shared_ptr<const std::vector<Subscriber>> subscribers = std::make_shared<std::vector<Subscriber>>();

  std::mutex lifecycleMutex;  // serialises start() and stop()
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  ProbeSpec specFor(const HealthTarget& t) const {
    ProbeSpec s;
    s.host = t.address;
    s.port = t.port != 0 ? t.port : t.probe.port;
    s.tls = t.probe.tls;
    s.kind = t.probe.kind;
    s.steps = t.probe.steps;
    s.httpMethod = t.probe.httpMethod.empty() ? "GET" : t.probe.httpMethod;
    s.httpPath = t.probe.httpPath.empty() ? "/" : t.probe.httpPath;
    s.httpHost = t.probe.httpHost;
    s.httpExpectStatus = t.probe.httpExpectStatus;
    s.timeout = t.probe.timeoutMs != 0 ? std::chrono::milliseconds(t.probe.timeoutMs) : defaults.timeout;
    return s;
  }

  std::chrono::milliseconds intervalOf(const HealthTarget& t) const {
    return t.probe.intervalMs != 0 ? std::chrono::milliseconds(t.probe.intervalMs) : defaults.interval;
  }

  std::uint32_t riseOf(const HealthTarget& t) const { return orDefault(t.probe.rise, defaults.rise); }
  std::uint32_t fallOf(const HealthTarget& t) const { return orDefault(t.probe.fall, defaults.fall); }

  static void describe(HealthStatus& status, const HealthTarget& t) {
    status.nodeId = t.nodeId;
    status.address = t.address;
    status.service = t.probe.service;
    status.port = t.port != 0 ? t.port : t.probe.port;
  }

  // The first probes of `batch` spread evenly over their first interval, so a thousand
  // targets added together do not connect in the same millisecond.
  void scheduleFirst(const std::vector<std::shared_ptr<Target>>& batch) {
    const auto now = SteadyClock::now();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& t = batch[i];
      std::chrono::milliseconds interval;
      {
        std::lock_guard lock(mutex);
        interval = intervalOf(t->spec);
      }
      const auto offset = interval * static_cast<std::int64_t>(i) / static_cast<std::int64_t>(batch.size());
      asio::post(t->strand, [this, t, at = now + offset] { arm(t, at); });
    }
  }

  void arm(const std::shared_ptr<Target>& t, SteadyClock::time_point at) {  // [strand]
    {
      std::lock_guard lock(mutex);
      if (stopping || t->removed) return;
    }
    // Starts fall on a grid of kStartGrid: the targets due in one slot start in one wake-up
    // of the loop, and their connects complete together, instead of one wake-up each.
    const auto since = at.time_since_epoch();
    const auto slots = (since + kStartGrid - SteadyClock::duration(1)) / kStartGrid;
    at = SteadyClock::time_point(slots * kStartGrid);
    t->nextStart = at;
    t->timer.expires_at(at);
    t->timer.async_wait([this, t](const boost::system::error_code& ec) {
      if (!ec) launch(t);
    });
  }

  void launch(const std::shared_ptr<Target>& t) {  // [strand]
    ProbeSpec spec;
    {
      std::lock_guard lock(mutex);
      if (stopping || t->removed) return;
      spec = specFor(t->spec);
    }
    const auto started = SteadyClock::now();
    t->inFlight = ProbeRun::start(t->strand, tls, std::move(spec), [this, t, started](const std::string& error) {
      t->inFlight.reset();
      onResult(t, error, std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started));
    });
  }

  void onResult(const std::shared_ptr<Target>& t, const std::string& error,
                std::chrono::milliseconds took) {  // [strand]
    std::optional<HealthChange> change;
    std::chrono::milliseconds interval;
    {
      std::lock_guard lock(mutex);
      if (stopping || t->removed) return;
      interval = intervalOf(t->spec);
      change = record(*t, error, took);
    }
    if (change) {
      std::shared_ptr<const std::vector<Subscriber>> list;
      {
        std::lock_guard lock(subscribersMutex);
        list = subscribers;
      }
      for (const auto& subscriber : *list) {
        try {
          subscriber(*change);
        } catch (...) {
          // A subscriber's failure is its own; the engine and the other subscribers go on.
        }
      }
    }
    // Fixed rate: one interval after the previous start, or now if that has passed.
    arm(t, std::max(t->nextStart + interval, SteadyClock::now()));
  }

  // Applies one probe result to the state machine; returns the change, if any. [mutex]
  std::optional<HealthChange> record(Target& t, const std::string& error, std::chrono::milliseconds took) {
    auto& s = t.status;
    const auto now = SteadyClock::now();
    s.checks++;
    s.lastCheck = SystemClock::now();
    s.lastDuration = took;
    if (error.empty()) {
      s.consecutiveSuccesses++;
      s.consecutiveFailures = 0;
      s.lastError.clear();
    } else {
      s.consecutiveFailures++;
      s.consecutiveSuccesses = 0;
      s.lastError = error;
    }
    while (!t.changes.empty() && now - t.changes.front() > defaults.flapWindow) t.changes.pop_front();
    s.effectiveRise = effectiveRise(t);

    const auto previous = s.state;
    HealthState next = previous;
    if (previous == HealthState::Unknown) {
      next = error.empty() ? HealthState::Healthy : HealthState::Unhealthy;
    } else if (previous == HealthState::Healthy && s.consecutiveFailures >= fallOf(t.spec)) {
      next = HealthState::Unhealthy;
    } else if (previous == HealthState::Unhealthy && s.consecutiveSuccesses >= s.effectiveRise) {
      next = HealthState::Healthy;
    }
    if (next == previous) return std::nullopt;
    s.state = next;
    s.lastChange = s.lastCheck;
    if (previous != HealthState::Unknown) {
      t.changes.push_back(now);
      s.effectiveRise = effectiveRise(t);
    }
    return HealthChange{s, previous};
  }

  std::uint32_t effectiveRise(const Target& t) const {
    const auto rise = riseOf(t.spec);
    const auto changes = static_cast<std::uint32_t>(t.changes.size());
    if (changes <= defaults.flapThreshold) return rise;
    const auto factor = std::min(1 + (changes - defaults.flapThreshold), std::max(1u, defaults.flapMaxFactor));
    return rise * factor;
  }

  // Posted to the target's strand: nothing of the target runs after it but handlers that
  // see `removed` / `stopping` and return.
  static void cancel(const std::shared_ptr<Target>& t) {
    asio::post(t->strand, [t] {
      t->timer.cancel();
      if (t->inFlight) t->inFlight->cancel();
    });
  }
};

HealthEngine::HealthEngine(HealthDefaults defaults, unsigned threads)
    : impl_(std::make_unique<Impl>(defaults, threads)) {}

HealthEngine::~HealthEngine() { stop(); }

void HealthEngine::start() {
  std::lock_guard lifecycle(impl_->lifecycleMutex);
  std::vector<std::shared_ptr<Impl::Target>> all;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->running) return;
    impl_->running = true;
    impl_->stopping = false;
    for (const auto& [key, target] : impl_->targets) all.push_back(target);
  }
  impl_->io.restart();
  impl_->work.emplace(impl_->io.get_executor());
  for (unsigned i = 0; i < impl_->threadCount; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
  impl_->scheduleFirst(all);
}

void HealthEngine::stop() {
  std::lock_guard lifecycle(impl_->lifecycleMutex);
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->running) return;
    impl_->running = false;
    impl_->stopping = true;
    for (const auto& [key, target] : impl_->targets) Impl::cancel(target);
  }
  // With every timer and probe cancelled and nothing new started, run() returns once the
  // cancelled handlers have drained; nothing is left queued to run later.
  impl_->work.reset();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
}

void HealthEngine::setTargets(std::vector<HealthTarget> targets) {
  std::vector<std::shared_ptr<Impl::Target>> added;
  {
    std::lock_guard lock(impl_->mutex);
    std::map<Key, std::shared_ptr<Impl::Target>> next;
    for (auto& spec : targets) {
      Key key{spec.nodeId, spec.probe.service};
      if (next.count(key)) continue;  // the first description of a key wins
      auto it = impl_->targets.find(key);
      std::shared_ptr<Impl::Target> target;
      if (it != impl_->targets.end()) {
        target = it->second;
      } else {
        target = std::make_shared<Impl::Target>(impl_->io);
        target->status.effectiveRise = impl_->riseOf(spec);
        added.push_back(target);
      }
      Impl::describe(target->status, spec);
      target->spec = std::move(spec);
      next.emplace(std::move(key), std::move(target));
    }
    for (const auto& [key, target] : impl_->targets) {
      if (next.count(key)) continue;
      target->removed = true;
      if (impl_->running) Impl::cancel(target);
    }
    impl_->targets = std::move(next);
    if (!impl_->running) return;
  }
  impl_->scheduleFirst(added);
}

std::vector<HealthStatus> HealthEngine::snapshot() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<HealthStatus> out;
  out.reserve(impl_->targets.size());
  for (const auto& [key, target] : impl_->targets) out.push_back(target->status);
  return out;
}

std::optional<HealthStatus> HealthEngine::status(const std::string& nodeId, const std::string& service) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->targets.find({nodeId, service});
  if (it == impl_->targets.end()) return std::nullopt;
  return it->second->status;
}

void HealthEngine::subscribe(Subscriber subscriber) {
  std::lock_guard lock(impl_->subscribersMutex);
  auto list = std::make_shared<std::vector<Subscriber>>(*impl_->subscribers);
  list->push_back(std::move(subscriber));
  impl_->subscribers = std::move(list);
}

std::string HealthEngine::probeOnce(const HealthTarget& target) {
  asio::io_context io;
  std::string result = "probe did not run";
  ProbeRun::start(io.get_executor(), impl_->tls, impl_->specFor(target),
                  [&result](const std::string& error) { result = error; });
  io.run();
  return result;
}

}  // namespace shoal::health
