#pragma once
// The `ipvs` dataplane: holds the balancer table in the kernel's IP Virtual Server, talking
// generic netlink (family "IPVS") through libnl. No ipvsadm is involved.
//
// Ownership: shoal owns the director's whole IPVS table. apply() removes every service that
// is not in the desired table, including services someone added by hand with ipvsadm.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

// True when the generic-netlink family "IPVS" resolves, that is when the running kernel has
// IPVS built in or the ip_vs module is loaded. Otherwise false, and `why` (when not null)
// receives one sentence for the admin saying what is missing. Needs no privilege.
bool ipvsAvailable(std::string* why);

// Opens the IPVS dataplane. Throws DataplaneError carrying ipvsAvailable's sentence when
// the kernel has no IPVS. Opening needs no privilege; reading or changing the table needs
// CAP_NET_ADMIN, without which apply(), read() and zeroCounters() throw.
std::unique_ptr<Dataplane> openIpvsDataplane();

class IpvsDataplane : public Dataplane {
 public:
  // Opens its own netlink socket; throws DataplaneError when IPVS is not there.
  IpvsDataplane();
  ~IpvsDataplane() override;
  IpvsDataplane(const IpvsDataplane&) = delete;
  IpvsDataplane& operator=(const IpvsDataplane&) = delete;

  std::string name() const override { return "ipvs"; }

  // Reads the kernel table, computes the difference to `desired` and sends it in batches
  // (many requests written before their acknowledgements are read). Services the kernel
  // holds that `desired` lacks are removed, whoever made them. A rejected change does not
  // stop the others; the DataplaneError thrown afterwards lists each rejected change with
  // its service or real server and the kernel's error text. A desired table that cannot be
  // valid (bad address, duplicate service or real server) throws before anything is sent.
  //
  // Older kernels report a real server whose address is local to the director as
  // forwarded locally ("Local" in ipvsadm) whatever method was asked; such a real counts as
  // matching any forwarding method, so it is not edited on every apply.
  ApplyReport apply(const std::vector<VirtualService>& desired) override;

  // The kernel's table with 64-bit counters (32-bit ones on older kernels without them), rates,
  // and active/inactive connection counts. Services of protocols the model cannot express
  // (SCTP) are left out. A persistence netmask equal to the host mask reads as empty; a
  // real server reported as local (see apply) reads as DirectRouting.
  std::vector<VirtualServiceState> read() override;

  // IPVS_CMD_ZERO: every service's and real server's counters and rates restart at zero.
  void zeroCounters() override;

 private:
  struct Netlink;
  std::mutex mutex_;  // one request/acknowledgement exchange at a time on the socket
  std::unique_ptr<Netlink> netlink_;
};

}  // namespace shoal::lvs
