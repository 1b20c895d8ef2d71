#pragma once
// Reading IPVS's generic-netlink replies: the messages of one datagram, and the services and
// real servers of a dump. Functions of the bytes alone, so they are tested and fuzzed
// without a kernel; the kernel is trusted to be well-meaning, not to be well-formed.
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

// A service's identity as the kernel keys it.
struct ServiceIdentity {
  std::uint16_t family = AF_INET;
  std::uint16_t protocol = IPPROTO_TCP;
  unsigned char address[16] = {};
  std::uint16_t port = 0;  // host order
  std::uint32_t fwmark = 0;
  std::string key;  // for messages
};

// A service as dumped by the kernel: the model's view plus the raw identity, which is all
// there is for protocols the model cannot express.
struct KernelService {
  ServiceIdentity identity;
  bool expressible = true;  // TCP, UDP or firewall mark
  VirtualServiceState state;
  std::vector<bool> localReals;  // parallel to state.reals: IPVS forwards locally
};

// A real server as dumped by the kernel, and whether IPVS forwards to it locally.
struct KernelReal {
  RealServerState state;
  bool local = false;
};

// One reply message of an exchange: its request's sequence number, and either an error
// or acknowledgement (done = true) or a data message.
struct IpvsReply {
  std::uint32_t seq = 0;
  bool done = false;
  int error = 0;  // positive errno; EBADMSG for an acknowledgement too short to hold one
  std::string extack;
  nlmsghdr* message = nullptr;  // points into the datagram
};

// Hands each netlink message of the `length` bytes at `datagram` (one datagram as read from
// the socket) to `onReply`, skipping NOOP and OVERRUN, and stops at the first message that
// does not fit what is left. Returns false as soon as `onReply` does, true otherwise.
bool forEachReply(unsigned char* datagram, int length, const std::function<bool(const IpvsReply&)>& onReply);

// One entry of an IPVS_CMD_GET_SERVICE dump, from the attributes genlmsg_parse gave
// (IPVS_CMD_ATTR_MAX + 1 of them); nothing for an entry without a service or family.
std::optional<KernelService> decodeService(nlattr** attrs);

// One entry of an IPVS_CMD_GET_DEST dump of a service of `serviceFamily`; nothing for an
// entry without a real server address.
std::optional<KernelReal> decodeReal(nlattr** attrs, std::uint16_t serviceFamily);

}  // namespace shoal::lvs
