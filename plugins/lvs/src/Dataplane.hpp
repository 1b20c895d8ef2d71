#pragma once
// What a balancer dataplane is asked to hold, what it reports back, and the interface both
// dataplanes implement: `ipvs` (the kernel's IP Virtual Server over generic netlink) and
// `userspace` (a Boost.Asio TCP balancer for hosts whose kernel has no IPVS).
//
// The lvs plugin turns its stored policies into a vector<VirtualService> (the *desired*
// table, with health drains already folded into the weights) and hands it to
// Dataplane::apply, which makes the dataplane hold exactly that. Everything here is plain
// data: no ABI, no kernel type.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace shoal::lvs {

enum class Protocol { Tcp, Udp };
// How a real server receives the packets: direct routing (the default, the real server
// holds the virtual IP on a non-ARPing interface), NAT (masquerading) or IP-in-IP tunnel.
enum class Forwarding { DirectRouting, Nat, Tunnel };
// What a full-proxy dataplane writes on each connection to a real server before the client's
// first byte, so the real server learns the client's address: nothing, or the PROXY protocol
// version 2 binary header (haproxy's proxy-protocol.txt) with the client's and the virtual
// service's address and port. Only the userspace dataplane can send it; IPVS forwards
// packets and never hides the client's address in the first place.
enum class ProxyProtocol { None, V2 };

// Address text as people write it: "192.0.2.10" or "2001:db8::10" (no brackets).
struct RealServer {
  std::string address;
  std::uint16_t port = 0;  // 0 only in a firewall-mark service: "the port the client used"
  std::uint32_t weight = 1;  // 0 = drained: no new connections, existing ones continue
  Forwarding forwarding = Forwarding::DirectRouting;
};

// A virtual service is either (protocol, address, port), or a firewall-mark group
// (fwmark != 0) that covers several (address, port) pairs at once, so that a client sticks
// to the same real server across them (HTTP and HTTPS). For a firewall-mark service
// `listeners` lists the pairs the mark covers: IPVS ignores them (packets are marked by
// the firewall), the userspace dataplane listens on each.
struct VirtualService {
  Protocol protocol = Protocol::Tcp;
  std::string address;     // the virtual IP; empty when fwmark != 0
  std::uint16_t port = 0;  // 0 when fwmark != 0
  std::uint32_t fwmark = 0;
  int family = 2;  // AF_INET (2) or AF_INET6 (10); firewall-mark services need it too
  struct Listener {
    std::string address;
    std::uint16_t port = 0;
  };
  std::vector<Listener> listeners;  // fwmark services only
  std::string scheduler = "wlc";    // rr wrr lc wlc lblc lblcr dh sh sed nq mh (IPVS names)
  std::uint32_t persistenceSeconds = 0;   // 0 = no persistence
  std::string persistenceNetmask;         // IPv4 "255.255.255.255" or IPv6 prefix "128"; empty = host
  std::vector<RealServer> reals;
  ProxyProtocol proxyProtocol = ProxyProtocol::None;

  // The identity of a service in a table: "tcp:192.0.2.10:80" or "fwm:1:v4".
  std::string key() const;
};

// 64-bit totals since the service or real server was created (or last zeroed).
struct Counters {
  std::uint64_t connections = 0;
  std::uint64_t packetsIn = 0, packetsOut = 0;
  std::uint64_t bytesIn = 0, bytesOut = 0;
};

// Per-second rates, as IPVS estimates them (refreshed about every 2 s).
struct Rates {
  std::uint64_t connectionsPerSecond = 0;
  std::uint64_t packetsInPerSecond = 0, packetsOutPerSecond = 0;
  std::uint64_t bytesInPerSecond = 0, bytesOutPerSecond = 0;
};

struct RealServerState {
  RealServer spec;
  std::uint32_t activeConnections = 0;
  std::uint32_t inactiveConnections = 0;
  Counters counters;
  Rates rates;
};

struct VirtualServiceState {
  VirtualService spec;  // `reals` empty here; see `reals` below
  Counters counters;
  Rates rates;
  std::vector<RealServerState> reals;
};

// A desired service the dataplane could not hold, and why ("cannot listen on
// 127.0.0.1:53: Address already in use", the kernel's error text for IPVS). `service` is
// VirtualService::key() of the desired service (or of a held one that could not be removed).
struct ServiceFailure {
  std::string service;
  std::string reason;
};

// What one apply changed; "unchanged" counts services found already as desired.
struct ApplyReport {
  std::size_t servicesAdded = 0, servicesEdited = 0, servicesRemoved = 0;
  std::size_t realsAdded = 0, realsEdited = 0, realsRemoved = 0;
  std::size_t servicesUnchanged = 0;
  // One entry per service that could not be applied, in the order of the desired table;
  // every other service was applied. Not a change: changedAnything() ignores it.
  std::vector<ServiceFailure> failures;
  bool changedAnything() const {
    return servicesAdded + servicesEdited + servicesRemoved + realsAdded + realsEdited +
               realsRemoved >
           0;
  }
};

// A dataplane operation failed; the message names the service or real server and the cause
// (for IPVS, the kernel's error text).
class DataplaneError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Dataplane {
 public:
  virtual ~Dataplane() = default;
  // "ipvs" or "userspace".
  virtual std::string name() const = 0;
  // Make the dataplane hold exactly `desired`: add what is missing, edit what differs
  // (scheduler, persistence, weights, forwarding), remove what is not desired. Idempotent;
  // applying the same table twice changes nothing the second time. Counters of services
  // and real servers that stay are kept.
  //
  // Each service stands alone: one the dataplane cannot hold (a protocol it lacks, a port
  // in use, a change the kernel rejects) is listed in the report's `failures` with its
  // reason, and every other service is still applied; applying the table again retries
  // it. DataplaneError is thrown only when the dataplane cannot be used at all (IPVS not
  // reachable, no privilege) or the table is malformed as a whole; the services already
  // handled then stay applied and the next apply finishes the work.
  virtual ApplyReport apply(const std::vector<VirtualService>& desired) = 0;
  // What the dataplane holds now, with counters and rates.
  virtual std::vector<VirtualServiceState> read() = 0;
  // Set every counter to zero (ipvsadm --zero).
  virtual void zeroCounters() = 0;
};

const char* protocolName(Protocol p);        // "tcp" / "udp"
const char* forwardingName(Forwarding f);    // "dr" / "nat" / "tun"
const char* proxyProtocolName(ProxyProtocol p);  // "none" / "v2"

}  // namespace shoal::lvs
