#pragma once
// One virtual service's scheduling state in the userspace dataplane: its real servers, the
// IPVS scheduler that picks among them, the persistence table and the counters. Shared
// (shared_ptr) by the service's listeners and by every connection it scheduled, so a
// connection outlives the removal of its service or real server.
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs::userspace {

// Totals updated from the event loops without a lock.
struct CounterCells {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> packetsIn{0}, packetsOut{0};
  std::atomic<std::uint64_t> bytesIn{0}, bytesOut{0};

  Counters load() const;
  void zero();
};

// Turns successive totals into per-second rates over one window.
struct RateWindow {
  Counters previous;
  Rates rates;
  void advance(const Counters& now, std::chrono::duration<double> window);
};

struct RealTarget {
  // Address and port never change; weight and forwarding change in place under the
  // service's mutex.
  RealServer spec;
  boost::asio::ip::address address;
  bool removed = false;  // guarded by the service's mutex
  CounterCells counters;
  // Connections counted as IPVS counts them. Active: open in both directions (connecting
  // included). Inactive: half-closed, plus each connection that ended, for the FIN timeout
  // after its end, as IPVS keeps a closed TCP connection in FIN_WAIT/TIME_WAIT.
  std::atomic<std::uint32_t> active{0};
  std::atomic<std::uint32_t> halfClosed{0};
  std::deque<std::chrono::steady_clock::time_point> lingering;  // ends + timeout, ascending;
                                                                // guarded by the service's mutex
  RateWindow rates;  // guarded by the service's mutex

  // Inactive connections at `now`; drops the entries that have expired.
  std::uint32_t inactive(std::chrono::steady_clock::time_point now);
};

// Names the schedulers this dataplane implements, for error messages.
const char* supportedSchedulers();
bool isSupportedScheduler(const std::string& name);

class ServiceScheduler {
 public:
  using Clock = std::chrono::steady_clock;

  // `finTimeout`: how long a connection that ended still counts as inactive (IPVS's
  // tcpfin timeout, `ipvsadm --set`).
  ServiceScheduler(VirtualService spec, std::chrono::milliseconds finTimeout);

  // A connection's claim on a real server: the target it was given and the persistence
  // entry it holds open, released by `release`.
  struct Assignment {
    std::shared_ptr<RealTarget> target;
    std::string persistenceKey;  // empty when the service is not persistent
    boost::asio::ip::address client;
    bool halfClosed = false;  // counted inactive, no longer active
    bool connected = false;   // reached its real server: lingers as inactive after its end
  };

  // Picks a real server for a client, honouring persistence; counts the connection as
  // active on it. Returns no target when no real server takes connections.
  Assignment schedule(const boost::asio::ip::address& client);
  // After a failed connect: moves the claim to another real server than the one that
  // failed (and the persistence entry with it). Returns false, with the claim released,
  // when there is none.
  bool redispatch(Assignment& assignment);
  // The connection reached its real server.
  void connected(Assignment& assignment);
  // One side finished sending: the connection counts as inactive from now on.
  void halfClose(Assignment& assignment);
  // The connection ended: no longer active; a connected one stays counted as inactive for
  // the FIN timeout; its persistence entry starts to age.
  void release(Assignment& assignment);

  // apply(): replaces the settings and reals, keeping the targets (and their counters) of
  // reals that stay. Adds to the report what changed. Returns true when anything did.
  bool update(const VirtualService& desired, ApplyReport& report);
  // The service as held (reals included), for comparisons and read().
  VirtualService spec() const;
  // What a new connection writes to its real server first; an edit applies to the next one.
  ProxyProtocol proxyProtocol() const {
    std::lock_guard lock(mutex_);
    return spec_.proxyProtocol;
  }
  VirtualServiceState state() const;
  void zero();
  // Every 2 s: refreshes rates and forgets expired persistence entries.
  void tick(std::chrono::duration<double> window);
  // Marks every real removed, so connections that still hold one see it gone.
  void retire();

  CounterCells counters;

 private:
  struct Persisted {
    std::shared_ptr<RealTarget> target;
    std::uint32_t connections = 0;
    Clock::time_point idleSince;
  };

  bool takesConnections(const RealTarget& r) const { return !r.removed && r.spec.weight > 0; }
  std::shared_ptr<RealTarget> pick(const boost::asio::ip::address& client, const RealTarget* avoid);
  std::shared_ptr<RealTarget> pickRoundRobin(const RealTarget* avoid);
  std::shared_ptr<RealTarget> pickWeightedRoundRobin(const RealTarget* avoid);
  std::shared_ptr<RealTarget> pickLeastConnections(bool weighted, const RealTarget* avoid);
  std::shared_ptr<RealTarget> pickShortestExpectedDelay(bool neverQueue, const RealTarget* avoid);
  std::shared_ptr<RealTarget> pickSourceHash(const boost::asio::ip::address& client,
                                             const RealTarget* avoid);
  std::string persistenceKey(const boost::asio::ip::address& client) const;
  void rebuildSourceHashTable();
  void resetSchedulerState();

  mutable std::mutex mutex_;
  VirtualService spec_;  // reals kept in targets_
  std::vector<std::shared_ptr<RealTarget>> targets_;
  std::size_t cursor_ = 0;          // rr and wrr: the last real picked
  std::int64_t currentWeight_ = 0;  // wrr
  std::vector<std::shared_ptr<RealTarget>> sourceHashTable_;
  std::map<std::string, Persisted> persisted_;
  RateWindow rates_;
  const std::chrono::milliseconds finTimeout_;
};

}  // namespace shoal::lvs::userspace
