#pragma once
// The `userspace` dataplane: a TCP load balancer in this process, for hosts whose kernel has
// no IPVS (containers, CI). It listens on every virtual service's address and port, picks a
// real server with the IPVS scheduler the service names, connects to it and moves the bytes
// both ways until both sides have finished.
//
// What differs from IPVS, because this is a full proxy that terminates TCP:
// - Forwarding methods (dr, nat, tun) are accepted, kept and read back, but every real
//   server is reached the same way: by a new TCP connection from this host. Real servers
//   therefore see the director's address, not the client's.
// - TCP only. A UDP service is refused by apply().
// - A firewall-mark service needs no marks: it listens on each of its `listeners`, and all
//   of them share one scheduler and one persistence table, so a persistent client sticks to
//   one real server across them (HTTP and HTTPS). A real server with port 0 in such a
//   service is reached on the port the client connected to.
// - Persistence follows IPVS templates: the client address masked by persistenceNetmask
//   maps to a real server; the entry lives while the client has connections and for
//   persistenceSeconds after its last one ends. If the remembered real server is drained
//   (weight 0) or removed, the client is scheduled afresh (IPVS with
//   expire_quiescent_template = 1).
// - sh falls back like IPVS's sh-fallback flag: a source whose bucket holds a drained real
//   server goes to the next bucket whose real server takes connections.
// - A failed connect to a real server (refused, unreachable, no answer within
//   connectTimeout) is retried on another real server, up to `connectRetries` times (like
//   HAProxy's redispatch); then the client's connection is closed.
//
// Counters: `connections` counts client connections scheduled to a service, and for a real
// server the connections made to it. bytesIn is client to real server, bytesOut the other
// way. packetsIn/packetsOut count read (or splice) operations, not IP packets: an
// approximation, usually lower than the kernel's count. Connections are counted as IPVS
// counts a TCP connection's entry: active while open both ways (from the moment it is
// scheduled), inactive once either side has finished sending, and still inactive for
// `finTimeout` after it closed (IPVS keeps the entry in FIN_WAIT/TIME_WAIT for its tcpfin
// timeout, 120 s by default). lc and wlc weigh them as IPVS does (active * 256 +
// inactive), so sequential short connections spread over the real servers instead of all
// going to the first; sed and nq count active connections only, as in IPVS. Rates are the average over the
// last 2-second window, refreshed every 2 s (IPVS refreshes at the same pace but smooths
// over several windows).
//
// Bulk data moves with splice(2) through a pipe per direction, so it is not copied through
// user space. Each direction starts by copying through a 16 KiB buffer and turns to splice
// when a read fills that buffer, back to copying when splices move less than 4 KiB (the
// heuristic of HAProxy's splice-auto): for small requests and answers one copy costs fewer
// system calls than two splices. Where splice is refused a buffer copy does all the work.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

struct UserspaceSettings {
  // Event-loop threads; each client connection lives on one of them. At least 1.
  unsigned threads = 2;
  // How long a connect to a real server may take before it counts as failed.
  std::chrono::milliseconds connectTimeout{3000};
  // After a failed connect, how many other real servers are tried before the client's
  // connection is closed.
  unsigned connectRetries = 1;
  // How long a closed connection still counts as inactive on its real server: IPVS's
  // tcpfin timeout (`ipvsadm --set`), 120 s by default.
  std::chrono::milliseconds finTimeout{std::chrono::seconds(120)};
  // Move bulk data with splice(2). False copies everything through a buffer, the path
  // taken anyway where splice is refused; there to compare the two and to test the copy.
  bool splice = true;
};

namespace userspace {
class Engine;
}

class UserspaceDataplane : public Dataplane {
 public:
  // Starts the event-loop threads; they idle until apply() opens listeners.
  explicit UserspaceDataplane(UserspaceSettings settings = {});
  // Closes every listener and every open connection and joins the threads.
  ~UserspaceDataplane() override;
  UserspaceDataplane(const UserspaceDataplane&) = delete;
  UserspaceDataplane& operator=(const UserspaceDataplane&) = delete;

  std::string name() const override { return "userspace"; }

  // Safe to call from any thread while traffic flows (not from inside a connection's
  // event loop). A service that keeps its key keeps its listeners, counters, persistence
  // and open connections; edits to its scheduler, persistence or real servers take effect
  // for the next connection. A removed service's listeners are closed before apply()
  // returns; its open connections run to their end. A removed real server takes no new
  // connections; its open ones run to their end.
  //
  // Each service is handled on its own: a UDP service, an unknown scheduler, an address
  // that cannot be parsed or a listener that cannot be opened (address not local, port in
  // use) leaves that service as it was (a new one is not added) while the others are
  // applied; the report's `failures` lists each with its reason (address:port and errno
  // text). Never throws for one service.
  ApplyReport apply(const std::vector<VirtualService>& desired) override;

  // The services held, in the order apply() last received them, with their real servers
  // (removed ones are not shown even while their connections finish).
  std::vector<VirtualServiceState> read() override;

  // Totals and rates of every service and real server restart at zero; active connection
  // counts are not totals and stay.
  void zeroCounters() override;

 private:
  std::unique_ptr<userspace::Engine> engine_;
};

}  // namespace shoal::lvs
