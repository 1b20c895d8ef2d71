#include "IpvsReplies.hpp"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace shoal::lvs {
namespace {

// ---- attribute reading ------------------------------------------------------------------

template <int Max>
struct Attributes {
  nlattr* at[Max + 1] = {};
  explicit Attributes(nlattr* nested) {
    if (nested) nla_parse_nested(at, Max, nested, nullptr);
  }
  nlattr* operator[](int i) const { return at[i]; }
};

std::uint64_t number(nlattr* a) {
  if (!a) return 0;
  switch (nla_len(a)) {
    case 2:
      return nla_get_u16(a);
    case 4:
      return nla_get_u32(a);
    case 8:
      return nla_get_u64(a);
    default:
      return 0;
  }
}

std::string text(nlattr* a) {
  if (!a || nla_len(a) <= 0) return {};
  const char* s = static_cast<const char*>(nla_data(a));
  return std::string(s, strnlen(s, static_cast<std::size_t>(nla_len(a))));
}

// Counters and rates from the 64-bit nest, or from the older 32-bit one (whose byte totals
// are already 64-bit); `number` reads whichever width the kernel sent.
void readStats(nlattr* stats64, nlattr* stats32, Counters& c, Rates& r) {
  Attributes<IPVS_STATS_ATTR_MAX> s(stats64 ? stats64 : stats32);
  c.connections = number(s[IPVS_STATS_ATTR_CONNS]);
  c.packetsIn = number(s[IPVS_STATS_ATTR_INPKTS]);
  c.packetsOut = number(s[IPVS_STATS_ATTR_OUTPKTS]);
  c.bytesIn = number(s[IPVS_STATS_ATTR_INBYTES]);
  c.bytesOut = number(s[IPVS_STATS_ATTR_OUTBYTES]);
  r.connectionsPerSecond = number(s[IPVS_STATS_ATTR_CPS]);
  r.packetsInPerSecond = number(s[IPVS_STATS_ATTR_INPPS]);
  r.packetsOutPerSecond = number(s[IPVS_STATS_ATTR_OUTPPS]);
  r.bytesInPerSecond = number(s[IPVS_STATS_ATTR_INBPS]);
  r.bytesOutPerSecond = number(s[IPVS_STATS_ATTR_OUTBPS]);
}

std::string netmaskText(int family, std::uint32_t wire) {
  if (family == AF_INET6) return wire == 128 ? "" : std::to_string(wire);
  if (wire == 0xffffffffu) return "";
  in_addr a{wire};
  char out[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, out, sizeof out);
  return out;
}

std::string addressText(int family, const void* bytes) {
  char out[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, bytes, out, sizeof out);
  return out;
}

// Netlink sends an error as a negative errno (0 for success); any other value is no errno
// (and INT_MIN could not even be negated).
int errnoOf(int wire) {
  constexpr int kMaxErrno = 4095;  // the kernel's MAX_ERRNO
  return wire <= 0 && wire >= -kMaxErrno ? -wire : EBADMSG;
}

}  // namespace

bool forEachReply(unsigned char* datagram, int length, const std::function<bool(const IpvsReply&)>& onReply) {
  int left = length;
  for (auto* h = reinterpret_cast<nlmsghdr*>(datagram); nlmsg_ok(h, left);
       h = nlmsg_next(h, &left)) {
    IpvsReply r;
    r.seq = h->nlmsg_seq;
    if (h->nlmsg_type == NLMSG_ERROR) {
      r.done = true;
      // An acknowledgement too short for its error code still ends its request, as failed.
      if (nlmsg_datalen(h) < static_cast<int>(sizeof(nlmsgerr))) {
        r.error = EBADMSG;
        if (!onReply(r)) return false;
        continue;
      }
      auto* e = static_cast<nlmsgerr*>(nlmsg_data(h));
      r.error = errnoOf(e->error);
      if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
        // With NETLINK_CAP_ACK the echoed request is its header only; otherwise the whole
        // request is echoed, and its claimed length must lie within this message.
        std::int64_t offset = sizeof(nlmsgerr);
        if (!(h->nlmsg_flags & NLM_F_CAPPED))
          offset += static_cast<std::int64_t>(e->msg.nlmsg_len) - static_cast<std::int64_t>(sizeof(nlmsghdr));
        nlattr* tlv[NLMSGERR_ATTR_MAX + 1] = {};
        if (offset >= static_cast<std::int64_t>(sizeof(nlmsgerr)) && offset <= nlmsg_datalen(h) &&
            nlmsg_parse(h, static_cast<int>(offset), tlv, NLMSGERR_ATTR_MAX, nullptr) == 0)
          r.extack = text(tlv[NLMSGERR_ATTR_MSG]);
      }
    } else if (h->nlmsg_type == NLMSG_DONE) {
      r.done = true;
      if (nlmsg_datalen(h) >= static_cast<int>(sizeof(int)))
        r.error = errnoOf(*static_cast<int*>(nlmsg_data(h)));
    } else if (h->nlmsg_type == NLMSG_NOOP || h->nlmsg_type == NLMSG_OVERRUN) {
      continue;
    } else {
      r.message = h;
    }
    if (!onReply(r)) return false;
  }
  return true;
}

std::optional<KernelService> decodeService(nlattr** attrs) {
  Attributes<IPVS_SVC_ATTR_MAX> a(attrs[IPVS_CMD_ATTR_SERVICE]);
  if (!a[IPVS_SVC_ATTR_AF]) return std::nullopt;
  KernelService k;
  ServiceIdentity& id = k.identity;
  VirtualService& s = k.state.spec;
  id.family = static_cast<std::uint16_t>(number(a[IPVS_SVC_ATTR_AF]));
  s.family = id.family;
  id.fwmark = static_cast<std::uint32_t>(number(a[IPVS_SVC_ATTR_FWMARK]));
  s.fwmark = id.fwmark;
  if (id.fwmark == 0) {
    id.protocol = static_cast<std::uint16_t>(number(a[IPVS_SVC_ATTR_PROTOCOL]));
    if (nlattr* addr = a[IPVS_SVC_ATTR_ADDR])
      std::memcpy(
          id.address, nla_data(addr),
          std::min<std::size_t>(sizeof id.address, static_cast<std::size_t>(nla_len(addr))));
    id.port = ntohs(static_cast<std::uint16_t>(number(a[IPVS_SVC_ATTR_PORT])));
    k.expressible = id.protocol == IPPROTO_TCP || id.protocol == IPPROTO_UDP;
    s.protocol = id.protocol == IPPROTO_UDP ? Protocol::Udp : Protocol::Tcp;
    s.address = addressText(s.family, id.address);
    s.port = id.port;
  }
  s.scheduler = text(a[IPVS_SVC_ATTR_SCHED_NAME]);
  std::uint32_t flags = 0;
  if (nlattr* f = a[IPVS_SVC_ATTR_FLAGS];
      f && nla_len(f) >= static_cast<int>(sizeof(ip_vs_flags)))
    flags = static_cast<const ip_vs_flags*>(nla_data(f))->flags;
  if (flags & IP_VS_SVC_F_PERSISTENT)
    s.persistenceSeconds = static_cast<std::uint32_t>(number(a[IPVS_SVC_ATTR_TIMEOUT]));
  s.persistenceNetmask =
      netmaskText(s.family, static_cast<std::uint32_t>(number(a[IPVS_SVC_ATTR_NETMASK])));
  readStats(a[IPVS_SVC_ATTR_STATS64], a[IPVS_SVC_ATTR_STATS], k.state.counters, k.state.rates);
  id.key = s.key();
  return k;
}

std::optional<KernelReal> decodeReal(nlattr** attrs, std::uint16_t serviceFamily) {
  Attributes<IPVS_DEST_ATTR_MAX> a(attrs[IPVS_CMD_ATTR_DEST]);
  if (!a[IPVS_DEST_ATTR_ADDR]) return std::nullopt;
  RealServerState r;
  int fam = a[IPVS_DEST_ATTR_ADDR_FAMILY]
                ? static_cast<int>(number(a[IPVS_DEST_ATTR_ADDR_FAMILY]))
                : serviceFamily;
  unsigned char addr[16] = {};
  std::memcpy(addr, nla_data(a[IPVS_DEST_ATTR_ADDR]),
              std::min<std::size_t>(sizeof addr,
                                    static_cast<std::size_t>(nla_len(a[IPVS_DEST_ATTR_ADDR]))));
  r.spec.address = addressText(fam, addr);
  r.spec.port = ntohs(static_cast<std::uint16_t>(number(a[IPVS_DEST_ATTR_PORT])));
  r.spec.weight = static_cast<std::uint32_t>(number(a[IPVS_DEST_ATTR_WEIGHT]));
  std::uint64_t method = number(a[IPVS_DEST_ATTR_FWD_METHOD]) & IP_VS_CONN_F_FWD_MASK;
  r.spec.forwarding = method == IP_VS_CONN_F_MASQ     ? Forwarding::Nat
                      : method == IP_VS_CONN_F_TUNNEL ? Forwarding::Tunnel
                                                      : Forwarding::DirectRouting;
  r.activeConnections = static_cast<std::uint32_t>(number(a[IPVS_DEST_ATTR_ACTIVE_CONNS]));
  r.inactiveConnections = static_cast<std::uint32_t>(number(a[IPVS_DEST_ATTR_INACT_CONNS]));
  readStats(a[IPVS_DEST_ATTR_STATS64], a[IPVS_DEST_ATTR_STATS], r.counters, r.rates);
  return KernelReal{std::move(r), method == IP_VS_CONN_F_LOCALNODE};
}

}  // namespace shoal::lvs
