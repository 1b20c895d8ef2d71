#include "ServiceScheduler.hpp"

#include <algorithm>
#include <array>
#include <numeric>
#include <set>

namespace shoal::lvs::userspace {

namespace {

constexpr std::size_t kSourceHashBuckets = 256;  // IPVS's IP_VS_SH_TAB_SIZE
constexpr std::size_t kHead = static_cast<std::size_t>(-1);

struct SchedulerName {
  const char* name;
};
constexpr std::array<SchedulerName, 7> kSchedulers{
    {{"rr"}, {"wrr"}, {"lc"}, {"wlc"}, {"sh"}, {"sed"}, {"nq"}}};

// IPVS's ip_vs_dest_conn_overhead, which lc and wlc compare: an active connection costs
// 256 times an inactive one.
std::uint64_t overhead(RealTarget& r, ServiceScheduler::Clock::time_point now) {
  return (std::uint64_t{r.active.load()} << 8) + r.inactive(now);
}

std::string realKey(const std::string& address, std::uint16_t port) {
  return address + "/" + std::to_string(port);
}

}  // namespace

Counters CounterCells::load() const {
  Counters c;
  c.connections = connections.load(std::memory_order_relaxed);
  c.packetsIn = packetsIn.load(std::memory_order_relaxed);
  c.packetsOut = packetsOut.load(std::memory_order_relaxed);
  c.bytesIn = bytesIn.load(std::memory_order_relaxed);
  c.bytesOut = bytesOut.load(std::memory_order_relaxed);
  return c;
}

void CounterCells::zero() {
  connections = 0;
  packetsIn = packetsOut = 0;
  bytesIn = bytesOut = 0;
}

void RateWindow::advance(const Counters& now, std::chrono::duration<double> window) {
  // Totals can fall (zeroCounters between two ticks): that window then reads as zero.
  auto perSecond = [&](std::uint64_t after, std::uint64_t before) -> std::uint64_t {
    if (after < before || window.count() <= 0) return 0;
    return static_cast<std::uint64_t>(static_cast<double>(after - before) / window.count() + 0.5);
  };
  rates.connectionsPerSecond = perSecond(now.connections, previous.connections);
  rates.packetsInPerSecond = perSecond(now.packetsIn, previous.packetsIn);
  rates.packetsOutPerSecond = perSecond(now.packetsOut, previous.packetsOut);
  rates.bytesInPerSecond = perSecond(now.bytesIn, previous.bytesIn);
  rates.bytesOutPerSecond = perSecond(now.bytesOut, previous.bytesOut);
  previous = now;
}

std::uint32_t RealTarget::inactive(std::chrono::steady_clock::time_point now) {
  while (!lingering.empty() && lingering.front() <= now) lingering.pop_front();
  return halfClosed.load() + static_cast<std::uint32_t>(lingering.size());
}

const char* supportedSchedulers() {
  return "rr, wrr, lc, wlc, sh, sed, nq";
}

bool isSupportedScheduler(const std::string& name) {
  return std::any_of(kSchedulers.begin(), kSchedulers.end(),
                     [&](const SchedulerName& s) { return name == s.name; });
}

ServiceScheduler::ServiceScheduler(VirtualService spec, std::chrono::milliseconds finTimeout)
    : spec_(std::move(spec)), finTimeout_(finTimeout) {
  for (const RealServer& r : spec_.reals) {
    auto target = std::make_shared<RealTarget>();
    target->spec = r;
    target->address = boost::asio::ip::make_address(r.address);
    targets_.push_back(std::move(target));
  }
  spec_.reals.clear();
  resetSchedulerState();
}

// ---- scheduling -------------------------------------------------------------------------

ServiceScheduler::Assignment ServiceScheduler::schedule(const boost::asio::ip::address& client) {
  std::lock_guard lock(mutex_);
  Assignment a;
  a.client = client;
  if (spec_.persistenceSeconds == 0) {
    a.target = pick(client, nullptr);
  } else {
    a.persistenceKey = persistenceKey(client);
    auto found = persisted_.find(a.persistenceKey);
    const auto now = Clock::now();
    const bool alive =
        found != persisted_.end() &&
        (found->second.connections > 0 ||
         now - found->second.idleSince < std::chrono::seconds(spec_.persistenceSeconds));
    if (alive && takesConnections(*found->second.target)) {
      a.target = found->second.target;
      ++found->second.connections;
    } else {
      // Expired, or its real server is drained or gone: schedule afresh (IPVS with
      // expire_quiescent_template = 1). Connections still counted on the old entry stay
      // counted, so the new entry lives until they end too.
      a.target = pick(client, nullptr);
      if (a.target) {
        Persisted& p = persisted_[a.persistenceKey];
        p.target = a.target;
        ++p.connections;
      } else {
        a.persistenceKey.clear();
      }
    }
  }
  if (a.target) {
    a.target->active.fetch_add(1);
    counters.connections.fetch_add(1, std::memory_order_relaxed);
  }
  return a;
}

bool ServiceScheduler::redispatch(Assignment& a) {
  std::lock_guard lock(mutex_);
  if (!a.target) return false;
  auto failed = a.target;
  auto next = pick(a.client, failed.get());
  failed->active.fetch_sub(1);
  a.target = next;
  if (!a.persistenceKey.empty()) {
    auto found = persisted_.find(a.persistenceKey);
    if (found != persisted_.end()) {
      if (next && found->second.target == failed) found->second.target = next;
      if (!next && found->second.connections > 0 && --found->second.connections == 0)
        found->second.idleSince = Clock::now();
    }
    if (!next) a.persistenceKey.clear();
  }
  if (next) next->active.fetch_add(1);
  return next != nullptr;
}

void ServiceScheduler::connected(Assignment& a) {
  a.connected = true;
}

void ServiceScheduler::halfClose(Assignment& a) {
  if (!a.target || a.halfClosed) return;
  a.halfClosed = true;
  a.target->halfClosed.fetch_add(1);
  a.target->active.fetch_sub(1);
}

void ServiceScheduler::release(Assignment& a) {
  if (!a.target) return;
  std::lock_guard lock(mutex_);
  if (a.halfClosed)
    a.target->halfClosed.fetch_sub(1);
  else
    a.target->active.fetch_sub(1);
  // Every entry gets the same timeout, so appending keeps the deque in order.
  if (a.connected) a.target->lingering.push_back(Clock::now() + finTimeout_);
  a.target.reset();
  if (a.persistenceKey.empty()) return;
  auto found = persisted_.find(a.persistenceKey);
  if (found != persisted_.end() && found->second.connections > 0 &&
      --found->second.connections == 0)
    found->second.idleSince = Clock::now();
  a.persistenceKey.clear();
}

std::shared_ptr<RealTarget> ServiceScheduler::pick(const boost::asio::ip::address& client,
                                                   const RealTarget* avoid) {
  const std::string& s = spec_.scheduler;
  if (s == "rr") return pickRoundRobin(avoid);
  if (s == "wrr") return pickWeightedRoundRobin(avoid);
  if (s == "lc") return pickLeastConnections(false, avoid);
  if (s == "wlc") return pickLeastConnections(true, avoid);
  if (s == "sed") return pickShortestExpectedDelay(false, avoid);
  if (s == "nq") return pickShortestExpectedDelay(true, avoid);
  if (s == "sh") return pickSourceHash(client, avoid);
  return nullptr;  // refused by apply() before it gets here
}

std::shared_ptr<RealTarget> ServiceScheduler::pickRoundRobin(const RealTarget* avoid) {
  const std::size_t n = targets_.size();
  for (std::size_t step = 1; step <= n; ++step) {
    const std::size_t i = cursor_ == kHead ? step - 1 : (cursor_ + step) % n;
    const auto& t = targets_[i];
    if (t.get() != avoid && takesConnections(*t)) {
      cursor_ = i;
      return t;
    }
  }
  return nullptr;
}

// IPVS's interleaved weighted round robin: pass over the list with a current weight that
// starts at the largest weight and falls by the weights' gcd each pass; a real is picked
// when its weight reaches the current weight.
std::shared_ptr<RealTarget> ServiceScheduler::pickWeightedRoundRobin(const RealTarget* avoid) {
  const std::size_t n = targets_.size();
  std::int64_t maxWeight = 0, gcd = 0;
  for (const auto& t : targets_) {
    if (t.get() == avoid || !takesConnections(*t)) continue;
    const std::int64_t w = t->spec.weight;
    maxWeight = std::max(maxWeight, w);
    gcd = std::gcd(gcd, w);
  }
  if (maxWeight == 0) return nullptr;
  if (currentWeight_ > maxWeight) currentWeight_ = maxWeight;
  // Enough steps for the current weight to fall from the largest weight to gcd.
  const std::size_t limit = n * static_cast<std::size_t>(maxWeight / gcd + 1) + 1;
  std::size_t i = cursor_;
  for (std::size_t step = 0; step < limit; ++step) {
    i = (i == kHead || i + 1 >= n) ? 0 : i + 1;
    if (i == 0) {
      currentWeight_ -= gcd;
      if (currentWeight_ <= 0) currentWeight_ = maxWeight;
    }
    const auto& t = targets_[i];
    if (t.get() != avoid && takesConnections(*t) &&
        static_cast<std::int64_t>(t->spec.weight) >= currentWeight_) {
      cursor_ = i;
      return t;
    }
  }
  return nullptr;
}

// lc: least overhead (active * 256 + inactive). wlc: least overhead per unit of weight. Ties go to the first in
// the list, as in IPVS.
std::shared_ptr<RealTarget> ServiceScheduler::pickLeastConnections(bool weighted,
                                                                   const RealTarget* avoid) {
  std::shared_ptr<RealTarget> least;
  std::uint64_t leastOverhead = 0;
  const auto now = Clock::now();
  for (const auto& t : targets_) {
    if (t.get() == avoid || !takesConnections(*t)) continue;
    const std::uint64_t oh = overhead(*t, now);
    const bool better =
        !least ||
        (weighted ? leastOverhead * t->spec.weight > oh * least->spec.weight : oh < leastOverhead);
    if (better) {
      least = t;
      leastOverhead = oh;
    }
  }
  return least;
}

// sed: smallest (active + 1) / weight. nq: an idle real server first, else as sed. Both
// count active connections only, as IPVS's do.
std::shared_ptr<RealTarget> ServiceScheduler::pickShortestExpectedDelay(bool neverQueue,
                                                                        const RealTarget* avoid) {
  std::shared_ptr<RealTarget> least;
  std::uint64_t leastDelay = 0;
  for (const auto& t : targets_) {
    if (t.get() == avoid || !takesConnections(*t)) continue;
    const std::uint64_t active = t->active.load();
    if (neverQueue && active == 0) return t;
    const std::uint64_t delay = active + 1;
    if (!least || leastDelay * t->spec.weight > delay * least->spec.weight) {
      least = t;
      leastDelay = delay;
    }
  }
  return least;
}

// IPVS sh: the source address hashed (hash_32 of the address, folded for IPv6) into 256
// buckets filled round-robin, each real server taking as many consecutive buckets as its
// weight. A bucket whose real server takes no connections falls back to the next one (the
// sh-fallback flag).
std::shared_ptr<RealTarget> ServiceScheduler::pickSourceHash(const boost::asio::ip::address& client,
                                                             const RealTarget* avoid) {
  if (sourceHashTable_.empty()) return nullptr;
  std::uint32_t folded = 0;
  if (client.is_v4()) {
    folded = client.to_v4().to_uint();
  } else {
    const auto bytes = client.to_v6().to_bytes();
    for (std::size_t i = 0; i < bytes.size(); i += 4)
      folded ^= (std::uint32_t{bytes[i]} << 24) | (std::uint32_t{bytes[i + 1]} << 16) |
                (std::uint32_t{bytes[i + 2]} << 8) | bytes[i + 3];
  }
  const std::uint32_t hash = (folded * 0x61C88647u) >> (32 - 8);
  for (std::size_t offset = 0; offset < kSourceHashBuckets; ++offset) {
    const auto& t = sourceHashTable_[(hash + offset) % kSourceHashBuckets];
    if (t.get() != avoid && takesConnections(*t)) return t;
  }
  return nullptr;
}

void ServiceScheduler::rebuildSourceHashTable() {
  sourceHashTable_.clear();
  if (targets_.empty()) return;
  std::size_t index = 0;
  std::uint32_t given = 0;
  while (sourceHashTable_.size() < kSourceHashBuckets) {
    const auto& t = targets_[index];
    sourceHashTable_.push_back(t);
    if (++given >= t->spec.weight) {  // a drained real still holds one bucket, as in IPVS
      index = (index + 1) % targets_.size();
      given = 0;
    }
  }
}

void ServiceScheduler::resetSchedulerState() {
  cursor_ = kHead;
  currentWeight_ = 0;
  rebuildSourceHashTable();
}

std::string ServiceScheduler::persistenceKey(const boost::asio::ip::address& client) const {
  std::string key;
  const std::string& mask = spec_.persistenceNetmask;
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), ::isdigit);
  };
  if (client.is_v4()) {
    std::uint32_t m = 0xffffffffu;
    if (digits(mask)) {
      const int prefix = std::min(std::stoi(mask), 32);
      m = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    } else if (!mask.empty()) {
      boost::system::error_code ec;
      auto parsed = boost::asio::ip::make_address_v4(mask, ec);
      if (!ec) m = parsed.to_uint();
    }
    const std::uint32_t masked = client.to_v4().to_uint() & m;
    key = "4:" + std::to_string(masked);
  } else {
    int prefix = digits(mask) ? std::min(std::stoi(mask), 128) : 128;
    auto bytes = client.to_v6().to_bytes();
    for (auto& b : bytes) {
      const int keep = std::clamp(prefix, 0, 8);
      b &= static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
      prefix -= keep;
    }
    key = "6:" + std::string(bytes.begin(), bytes.end());
  }
  return key;
}

// ---- apply, read -----------------------------------------------------------------------

bool ServiceScheduler::update(const VirtualService& desired, ApplyReport& report) {
  std::lock_guard lock(mutex_);
  bool changed = false;
  auto listenerKeys = [](const VirtualService& s) {
    std::set<std::pair<std::string, std::uint16_t>> keys;
    for (const auto& l : s.listeners) keys.emplace(l.address, l.port);
    return keys;
  };
  const bool settingsDiffer = spec_.scheduler != desired.scheduler ||
                              spec_.persistenceSeconds != desired.persistenceSeconds ||
                              spec_.persistenceNetmask != desired.persistenceNetmask ||
                              spec_.proxyProtocol != desired.proxyProtocol ||
                              listenerKeys(spec_) != listenerKeys(desired);
  if (settingsDiffer) {
    ++report.servicesEdited;
    changed = true;
    if (spec_.persistenceSeconds != desired.persistenceSeconds ||
        spec_.persistenceNetmask != desired.persistenceNetmask)
      persisted_.clear();
  }
  const std::string scheduler = spec_.scheduler;
  VirtualService next = desired;
  next.reals.clear();
  spec_ = std::move(next);

  std::map<std::string, std::shared_ptr<RealTarget>> have;
  for (const auto& t : targets_) have[realKey(t->address.to_string(), t->spec.port)] = t;
  std::vector<std::shared_ptr<RealTarget>> kept;
  bool realsChanged = false;
  for (const RealServer& r : desired.reals) {
    const auto address = boost::asio::ip::make_address(r.address);
    auto found = have.find(realKey(address.to_string(), r.port));
    if (found == have.end()) {
      auto target = std::make_shared<RealTarget>();
      target->spec = r;
      target->address = address;
      kept.push_back(std::move(target));
      ++report.realsAdded;
      realsChanged = true;
      continue;
    }
    auto target = found->second;
    have.erase(found);
    if (target->spec.weight != r.weight || target->spec.forwarding != r.forwarding) {
      ++report.realsEdited;
      realsChanged = true;
    }
    // Only what may change: connections read the address and port without the lock.
    target->spec.weight = r.weight;
    target->spec.forwarding = r.forwarding;
    kept.push_back(std::move(target));
  }
  for (auto& [key, gone] : have) {
    gone->removed = true;
    ++report.realsRemoved;
    realsChanged = true;
  }
  // Reordering alone is no change for IPVS either, but the scheduler follows the new order.
  targets_ = std::move(kept);
  if (realsChanged || scheduler != spec_.scheduler) resetSchedulerState();
  return changed || realsChanged;
}

VirtualService ServiceScheduler::spec() const {
  std::lock_guard lock(mutex_);
  VirtualService s = spec_;
  for (const auto& t : targets_) s.reals.push_back(t->spec);
  return s;
}

VirtualServiceState ServiceScheduler::state() const {
  std::lock_guard lock(mutex_);
  VirtualServiceState s;
  s.spec = spec_;
  s.counters = counters.load();
  s.rates = rates_.rates;
  const auto now = Clock::now();
  for (const auto& t : targets_) {
    RealServerState r;
    r.spec = t->spec;
    r.activeConnections = t->active.load();
    r.inactiveConnections = t->inactive(now);
    r.counters = t->counters.load();
    r.rates = t->rates.rates;
    s.reals.push_back(std::move(r));
  }
  return s;
}

void ServiceScheduler::zero() {
  std::lock_guard lock(mutex_);
  counters.zero();
  rates_ = {};
  for (const auto& t : targets_) {
    t->counters.zero();
    t->rates = {};
  }
}

void ServiceScheduler::tick(std::chrono::duration<double> window) {
  std::lock_guard lock(mutex_);
  rates_.advance(counters.load(), window);
  const auto now = Clock::now();
  for (const auto& t : targets_) {
    t->rates.advance(t->counters.load(), window);
    t->inactive(now);  // forgets what has expired, whichever scheduler runs
  }
  const auto lifetime = std::chrono::seconds(spec_.persistenceSeconds);
  for (auto it = persisted_.begin(); it != persisted_.end();) {
    if (it->second.connections == 0 && now - it->second.idleSince >= lifetime)
      it = persisted_.erase(it);
    else
      ++it;
  }
}

void ServiceScheduler::retire() {
  std::lock_guard lock(mutex_);
  for (const auto& t : targets_) t->removed = true;
  persisted_.clear();
}

}  // namespace shoal::lvs::userspace
