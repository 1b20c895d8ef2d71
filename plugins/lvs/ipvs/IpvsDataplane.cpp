#include "IpvsDataplane.hpp"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>

#include "IpvsPlan.hpp"
#include "IpvsReplies.hpp"

namespace shoal::lvs {

namespace {

// Requests per round trip: all are written, then all their acknowledgements read. Bounded
// so the acknowledgements fit in the socket's receive buffer (each costs up to about 1 KiB
// of it; an overflow would drop some and leave the exchange unanswerable).
constexpr std::size_t kBatchRequests = 256;
constexpr std::size_t kAcknowledgementBytes = 1024;
// Bytes per write: well under the socket's send buffer, so the kernel takes each at once.
constexpr std::size_t kBatchBytes = 64 * 1024;
// Room for the largest request (a service with its settings and a real server: ~250 bytes);
// the default allocation is a page, and a large apply builds thousands of requests.
constexpr std::size_t kMessageBytes = 512;
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;
// An exchange that gets no answer in this time is abandoned and the socket replaced.
constexpr int kReceiveTimeoutSeconds = 30;

std::string unavailableSentence() {
  return "This kernel has no IPVS: the generic-netlink family \"IPVS\" is not registered. "
         "Load the ip_vs module (modprobe ip_vs) or use a kernel built with CONFIG_IP_VS.";
}

struct SocketDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
using SocketPtr = std::unique_ptr<nl_sock, SocketDeleter>;
struct MessageDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using MessagePtr = std::unique_ptr<nl_msg, MessageDeleter>;

// Resolves the IPVS family id on a socket of its own, so no reply of the lookup can be left
// queued on the socket that carries the table. Returns the id or a negative libnl error.
int resolveIpvsFamily() {
  SocketPtr sk(nl_socket_alloc());
  if (!sk) return -NLE_NOMEM;
  if (int err = genl_connect(sk.get()); err < 0) return err;
  return genl_ctrl_resolve(sk.get(), IPVS_GENL_NAME);
}

// The kernel's reason for a failed request: errno text, IPVS's own meaning of that errno
// for this kind of request (as ipvsadm words it), and the extended-ACK message if any.
std::string kernelErrorText(int err, std::optional<IpvsChange::Kind> kind,
                            const std::string& extack) {
  std::string text = std::strerror(err);
  const char* meaning = nullptr;
  using K = IpvsChange::Kind;
  if (err == EPERM)
    meaning = "IPVS answers only processes with CAP_NET_ADMIN, such as root";
  else if (kind && err == ENOENT && (*kind == K::AddService || *kind == K::EditService))
    meaning = "IPVS has no scheduler of that name; is its module ip_vs_<name> loaded?";
  else if (kind && err == EEXIST && *kind == K::AddService)
    meaning = "service already exists";
  else if (kind && err == EEXIST && *kind == K::AddReal)
    meaning = "real server already exists";
  else if (kind && err == ESRCH)
    meaning = "no such service";
  else if (kind && err == ENOENT)
    meaning = "no such real server";
  if (meaning) text += std::string(" (") + meaning + ")";
  if (!extack.empty()) text += ": " + extack;
  return text;
}

// ---- wire forms of model values ---------------------------------------------------------

ServiceIdentity identityOf(const VirtualService& s) {
  ServiceIdentity id;
  id.family = static_cast<std::uint16_t>(s.family);
  id.key = s.key();
  if (s.fwmark != 0) {
    id.fwmark = s.fwmark;
    return id;
  }
  id.protocol = s.protocol == Protocol::Udp ? IPPROTO_UDP : IPPROTO_TCP;
  if (inet_pton(s.family, s.address.c_str(), id.address) != 1)
    throw DataplaneError("service " + s.key() + ": bad address");
  id.port = s.port;
  return id;
}

std::uint32_t forwardingFlag(Forwarding f) {
  switch (f) {
    case Forwarding::Nat:
      return IP_VS_CONN_F_MASQ;
    case Forwarding::Tunnel:
      return IP_VS_CONN_F_TUNNEL;
    case Forwarding::DirectRouting:
      break;
  }
  return IP_VS_CONN_F_DROUTE;
}

// IPv4 netmasks travel as the mask's bytes in network order, IPv6 ones as a prefix length.
std::uint32_t wireNetmask(int family, const std::string& canonical) {
  if (family == AF_INET6) return static_cast<std::uint32_t>(std::stoul(canonical));
  in_addr a{};
  inet_pton(AF_INET, canonical.c_str(), &a);
  return a.s_addr;
}

bool sameAddress(const std::string& a, const std::string& b) {
  unsigned char x[16] = {}, y[16] = {};
  int family = addressFamily(a);
  return inet_pton(family, a.c_str(), x) == 1 && inet_pton(family, b.c_str(), y) == 1 &&
         std::memcmp(x, y, sizeof x) == 0;
}

}  // namespace

// ---- the socket and its exchanges -------------------------------------------------------

struct IpvsDataplane::Netlink {
  SocketPtr sk;
  int family = 0;
  std::uint32_t nextSeq = 1;
  std::size_t batchRequests = kBatchRequests;

  Netlink() { connect(); }

  void connect() {
    int id = resolveIpvsFamily();
    if (id == -NLE_OBJ_NOTFOUND) throw DataplaneError(unavailableSentence());
    if (id < 0)
      throw DataplaneError(std::string("Cannot query generic netlink for IPVS: ") +
                           nl_geterror(id));
    family = id;
    SocketPtr s(nl_socket_alloc());
    if (!s) throw DataplaneError("Cannot allocate a netlink socket");
    if (int err = genl_connect(s.get()); err < 0)
      throw DataplaneError(std::string("Cannot open a generic netlink socket: ") +
                           nl_geterror(err));
    nl_socket_set_buffer_size(s.get(), kSocketBufferBytes, kSocketBufferBytes);
    int fd = nl_socket_get_fd(s.get());
    // Root may exceed rmem_max; without privilege the plain size above is what we get.
    int force = kSocketBufferBytes;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &force, sizeof force);
    int on = 1;
    // Acknowledgements without a copy of the request, and with the kernel's error text.
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
    timeval tv{kReceiveTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    // Without CAP_NET_ADMIN the buffer stays small (and every change is refused): smaller
    // batches then, so the refusals all arrive.
    int received = 0;
    socklen_t length = sizeof received;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &received, &length);
    batchRequests = std::clamp<std::size_t>(
        static_cast<std::size_t>(std::max(received, 0)) / 2 / kAcknowledgementBytes, 1,
        kBatchRequests);
    sk = std::move(s);
  }

  // Each public call starts here: a socket lost with an abandoned exchange is reopened.
  void ensureConnected() {
    if (!sk) connect();
  }

  // After a lost exchange the socket may still hold late replies: replace it.
  [[noreturn]] void abandon(const std::string& why) {
    sk.reset();
    try {
      connect();
    } catch (const DataplaneError&) {
      // The next call reports it; this one reports the original cause.
    }
    throw DataplaneError(why);
  }

  MessagePtr request(std::uint8_t cmd, int flags) {
    MessagePtr m(nlmsg_alloc_size(kMessageBytes));
    if (!m || !genlmsg_put(m.get(), NL_AUTO_PORT, nextSeq++, family, 0, NLM_F_REQUEST | flags, cmd,
                           IPVS_GENL_VERSION))
      throw DataplaneError("Cannot build a netlink message");
    return m;
  }

  // Reads datagrams and hands each netlink message to `onReply` until it returns false.
  void receive(const std::function<bool(const IpvsReply&)>& onReply) {
    std::vector<unsigned char> buffer(64 * 1024);
    for (;;) {
      sockaddr_nl from{};
      iovec iov{buffer.data(), buffer.size()};
      msghdr mh{};
      mh.msg_name = &from;
      mh.msg_namelen = sizeof from;
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      ssize_t n = recvmsg(nl_socket_get_fd(sk.get()), &mh, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        abandon("IPVS did not answer within " + std::to_string(kReceiveTimeoutSeconds) + " s");
      if (n < 0) abandon(std::string("Reading from IPVS failed: ") + std::strerror(errno));
      if (mh.msg_flags & MSG_TRUNC) abandon("A reply from IPVS did not fit the read buffer");
      if (from.nl_pid != 0) continue;  // only the kernel speaks to this socket
      if (!forEachReply(buffer.data(), static_cast<int>(n), onReply)) return;
    }
  }

  // A dump (GET_SERVICE, GET_DEST): sent without NLM_F_ACK, read until its NLMSG_DONE.
  void dump(MessagePtr m, const std::string& what,
            const std::function<void(nlattr** attrs)>& onEntry) {
    std::uint32_t seq = nlmsg_hdr(m.get())->nlmsg_seq;
    if (int err = nl_send(sk.get(), m.get()); err < 0)
      abandon("Cannot send to IPVS (" + what + "): " + nl_geterror(err));
    int failed = 0;
    std::string extack;
    receive([&](const IpvsReply& r) {
      if (r.seq != seq) return true;  // not ours: a late reply of an abandoned exchange
      if (r.done) {
        failed = r.error;
        extack = r.extack;
        return false;
      }
      nlattr* attrs[IPVS_CMD_ATTR_MAX + 1] = {};
      if (genlmsg_parse(r.message, 0, attrs, IPVS_CMD_ATTR_MAX, nullptr) == 0) onEntry(attrs);
      return true;
    });
    if (failed)
      throw DataplaneError("IPVS refused to list " + what + ": " +
                           kernelErrorText(failed, std::nullopt, extack));
  }

  struct Pending {
    MessagePtr message;
    std::string description;
    std::optional<IpvsChange::Kind> kind;
    std::string service;  // the key of the service the request changes (canonical address)
  };
  struct Rejection {
    std::string service;
    std::string text;  // the request and the kernel's reason
    std::optional<IpvsChange::Kind> kind;
  };

  // Sends `requests` (each with NLM_F_ACK) in batches: a batch is written in as few
  // datagrams as its size allows, then every acknowledgement of the batch is read before
  // the next batch goes out. Returns one entry per rejected request.
  std::vector<Rejection> exchange(std::vector<Pending>& requests) {
    std::vector<Rejection> failures;
    std::size_t next = 0;
    while (next < requests.size()) {
      std::size_t end = std::min(requests.size(), next + batchRequests);
      std::map<std::uint32_t, std::size_t> awaiting;  // seq -> index in requests
      std::vector<unsigned char> datagram;
      auto flush = [&] {
        if (datagram.empty()) return;
        if (int err = nl_sendto(sk.get(), datagram.data(), datagram.size()); err < 0)
          abandon(std::string("Cannot send to IPVS: ") + nl_geterror(err));
        datagram.clear();
      };
      for (std::size_t i = next; i < end; ++i) {
        nlmsghdr* h = nlmsg_hdr(requests[i].message.get());
        std::size_t len = NLMSG_ALIGN(h->nlmsg_len);
        if (datagram.size() + len > kBatchBytes) flush();
        const auto* bytes = reinterpret_cast<const unsigned char*>(h);
        datagram.insert(datagram.end(), bytes, bytes + h->nlmsg_len);
        datagram.resize(datagram.size() + (len - h->nlmsg_len), 0);
        awaiting[h->nlmsg_seq] = i;
      }
      flush();
      receive([&](const IpvsReply& r) {
        auto it = awaiting.find(r.seq);
        if (it == awaiting.end() || !r.done) return true;
        if (r.error) {
          const Pending& p = requests[it->second];
          failures.push_back(
              {p.service, p.description + ": " + kernelErrorText(r.error, p.kind, r.extack), p.kind});
        }
        awaiting.erase(it);
        return !awaiting.empty();
      });
      next = end;
    }
    return failures;
  }

  // ---- message contents -----------------------------------------------------------------

  // Every request fits kMessageBytes; a failed put would mean a truncated request.
  static void check(int rc) {
    if (rc < 0)
      throw DataplaneError(std::string("Cannot build a netlink message: ") + nl_geterror(rc));
  }
  static nlattr* nest(nl_msg* m, int type) {
    nlattr* n = nla_nest_start(m, type);
    if (!n) check(-NLE_NOMEM);
    return n;
  }

  static void putIdentity(nl_msg* m, const ServiceIdentity& id) {
    check(nla_put_u16(m, IPVS_SVC_ATTR_AF, id.family));
    if (id.fwmark != 0) {
      check(nla_put_u32(m, IPVS_SVC_ATTR_FWMARK, id.fwmark));
    } else {
      check(nla_put_u16(m, IPVS_SVC_ATTR_PROTOCOL, id.protocol));
      check(nla_put(m, IPVS_SVC_ATTR_ADDR, sizeof id.address, id.address));
      check(nla_put_u16(m, IPVS_SVC_ATTR_PORT, htons(id.port)));
    }
  }

  static void putService(nl_msg* m, const ServiceIdentity& id, const VirtualService* settings) {
    nlattr* service = nest(m, IPVS_CMD_ATTR_SERVICE);
    putIdentity(m, id);
    if (settings) {
      check(nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, settings->scheduler.c_str()));
      // mask ~0: the flags become exactly these, clearing any set behind shoal's back.
      ip_vs_flags flags{settings->persistenceSeconds ? IP_VS_SVC_F_PERSISTENT : 0u, ~0u};
      check(nla_put(m, IPVS_SVC_ATTR_FLAGS, sizeof flags, &flags));
      check(nla_put_u32(m, IPVS_SVC_ATTR_TIMEOUT, settings->persistenceSeconds));
      check(nla_put_u32(m, IPVS_SVC_ATTR_NETMASK,
                        wireNetmask(settings->family, settings->persistenceNetmask)));
    }
    nla_nest_end(m, service);
  }

  static void putReal(nl_msg* m, int serviceFamily, const RealServer& r, bool settings) {
    nlattr* dest = nest(m, IPVS_CMD_ATTR_DEST);
    int fam = addressFamily(r.address);
    unsigned char addr[16] = {};
    inet_pton(fam, r.address.c_str(), addr);
    check(nla_put(m, IPVS_DEST_ATTR_ADDR, sizeof addr, addr));
    check(nla_put_u16(m, IPVS_DEST_ATTR_PORT, htons(r.port)));
    // Only a mixed-family real (IPv4 tunnel behind an IPv6 service) needs the attribute;
    // leaving it out otherwise keeps older kernels working.
    if (fam != serviceFamily)
      check(nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, static_cast<std::uint16_t>(fam)));
    if (settings) {
      check(nla_put_u32(m, IPVS_DEST_ATTR_FWD_METHOD, forwardingFlag(r.forwarding)));
      check(nla_put_u32(m, IPVS_DEST_ATTR_WEIGHT, r.weight));
      check(nla_put_u32(m, IPVS_DEST_ATTR_U_THRESH, 0));
      check(nla_put_u32(m, IPVS_DEST_ATTR_L_THRESH, 0));
    }
    nla_nest_end(m, dest);
  }

  Pending changeRequest(const IpvsChange& c) {
    using K = IpvsChange::Kind;
    static const std::map<K, std::uint8_t> commands = {
        {K::AddService, IPVS_CMD_NEW_SERVICE},    {K::EditService, IPVS_CMD_SET_SERVICE},
        {K::RemoveService, IPVS_CMD_DEL_SERVICE}, {K::AddReal, IPVS_CMD_NEW_DEST},
        {K::EditReal, IPVS_CMD_SET_DEST},         {K::RemoveReal, IPVS_CMD_DEL_DEST}};
    MessagePtr m = request(commands.at(c.kind), NLM_F_ACK);
    ServiceIdentity id = identityOf(c.service);
    bool serviceSettings = c.kind == K::AddService || c.kind == K::EditService;
    putService(m.get(), id, serviceSettings ? &c.service : nullptr);
    if (c.kind == K::AddReal || c.kind == K::EditReal || c.kind == K::RemoveReal)
      putReal(m.get(), c.service.family, c.real, c.kind != K::RemoveReal);
    return Pending{std::move(m), c.describe(), c.kind, c.service.key()};
  }

  // ---- reading the table ----------------------------------------------------------------

  std::vector<KernelService> table() {
    std::vector<KernelService> services;
    dump(request(IPVS_CMD_GET_SERVICE, NLM_F_DUMP), "its services", [&](nlattr** attrs) {
      if (auto k = decodeService(attrs)) services.push_back(std::move(*k));
    });
    for (KernelService& k : services) readReals(k);
    return services;
  }

  void readReals(KernelService& k) {
    MessagePtr m = request(IPVS_CMD_GET_DEST, NLM_F_DUMP);
    putService(m.get(), k.identity, nullptr);
    dump(std::move(m), "the real servers of " + k.identity.key, [&](nlattr** attrs) {
      if (auto r = decodeReal(attrs, k.identity.family)) {
        k.localReals.push_back(r->local);
        k.state.reals.push_back(std::move(r->state));
      }
    });
  }
};

// ---- public API -------------------------------------------------------------------------

bool ipvsAvailable(std::string* why) {
  int id = resolveIpvsFamily();
  if (id >= 0) return true;
  if (why)
    *why = id == -NLE_OBJ_NOTFOUND
               ? unavailableSentence()
               : std::string("Cannot ask the kernel whether it has IPVS (generic netlink: ") +
                     nl_geterror(id) + ").";
  return false;
}

std::unique_ptr<Dataplane> openIpvsDataplane() {
  return std::make_unique<IpvsDataplane>();
}

IpvsDataplane::IpvsDataplane() : netlink_(std::make_unique<Netlink>()) {}
IpvsDataplane::~IpvsDataplane() = default;

ApplyReport IpvsDataplane::apply(const std::vector<VirtualService>& requested) {
  // IPVS forwards packets and cannot write a PROXY header: such a service is left out (and
  // removed if held), the others applied, and the refusal reported afterwards.
  std::vector<VirtualService> desired;
  std::vector<ServiceFailure> refused;
  for (const VirtualService& s : requested) {
    if (s.proxyProtocol == ProxyProtocol::None)
      desired.push_back(s);
    else
      refused.push_back({s.key(), "IPVS cannot send the PROXY protocol header that " + s.key() +
                                      " asks for (proxy_protocol needs the userspace dataplane); left out"});
  }
  std::lock_guard lock(mutex_);
  netlink_->ensureConnected();
  std::vector<KernelService> kernel = netlink_->table();

  // Desired services by the key the kernel's table spells (canonical address); an address
  // that does not parse is left for the plan to refuse.
  std::map<std::string, const VirtualService*> wanted;
  for (const VirtualService& d : desired) {
    VirtualService keyed = d;
    keyed.reals.clear();
    try {
      if (keyed.fwmark == 0) keyed.address = canonicalAddress(keyed.family, keyed.address);
    } catch (const DataplaneError&) {
    }
    wanted[keyed.key()] = &d;
  }
  std::vector<Netlink::Pending> requests;
  std::vector<VirtualService> current;
  std::size_t foreignRemoved = 0;
  for (KernelService& k : kernel) {
    if (!k.expressible) {
      // Not expressible in the model, so never desired: remove it by its raw identity.
      Netlink::Pending p{netlink_->request(IPVS_CMD_DEL_SERVICE, NLM_F_ACK),
                         "remove service of protocol " + std::to_string(k.identity.protocol) +
                             " on port " + std::to_string(k.identity.port),
                         IpvsChange::Kind::RemoveService,
                         "protocol " + std::to_string(k.identity.protocol) + " port " +
                             std::to_string(k.identity.port)};
      Netlink::putService(p.message.get(), k.identity, nullptr);
      requests.push_back(std::move(p));
      ++foreignRemoved;
      continue;
    }
    VirtualService spec = k.state.spec;
    for (std::size_t i = 0; i < k.state.reals.size(); ++i) {
      RealServer r = k.state.reals[i].spec;
      // IPVS forwards to a local real itself whatever was asked; take what is asked as held.
      if (k.localReals[i]) {
        if (auto w = wanted.find(spec.key()); w != wanted.end())
          for (const RealServer& wr : w->second->reals)
            if (wr.port == r.port && addressFamily(wr.address) == addressFamily(r.address) &&
                sameAddress(wr.address, r.address))
              r.forwarding = wr.forwarding;
      }
      spec.reals.push_back(r);
    }
    current.push_back(std::move(spec));
  }

  IpvsPlan plan = planIpvsChanges(current, desired);
  for (const IpvsChange& c : plan.changes) requests.push_back(netlink_->changeRequest(c));
  plan.report.servicesRemoved += foreignRemoved;
  // Each rejected change is charged to its service, named as the desired table names it;
  // a service's rejections are joined into one reason, in the order they were sent.
  std::map<std::string, std::string> byService;
  for (const Netlink::Rejection& r : netlink_->exchange(requests)) {
    auto named = wanted.find(r.service);
    const std::string key = named != wanted.end() ? named->second->key() : r.service;
    std::string& reason = byService[key];
    reason += (reason.empty() ? "IPVS refused to " : "; ") + r.text;
    // The report counts what was done, not what was asked.
    using K = IpvsChange::Kind;
    ApplyReport& done = plan.report;
    if (r.kind) {
      std::size_t* counted = *r.kind == K::AddService      ? &done.servicesAdded
                             : *r.kind == K::EditService   ? &done.servicesEdited
                             : *r.kind == K::RemoveService ? &done.servicesRemoved
                             : *r.kind == K::AddReal       ? &done.realsAdded
                             : *r.kind == K::EditReal      ? &done.realsEdited
                                                           : &done.realsRemoved;
      if (*counted > 0) --*counted;
    }
  }
  for (const VirtualService& d : desired) {
    auto failed = byService.find(d.key());
    if (failed == byService.end()) continue;
    plan.report.failures.push_back({failed->first, failed->second});
    byService.erase(failed);
  }
  // Services that were to be removed and could not be.
  for (const auto& [key, reason] : byService) plan.report.failures.push_back({key, reason});
  plan.report.failures.insert(plan.report.failures.end(), refused.begin(), refused.end());
  return plan.report;
}

std::vector<VirtualServiceState> IpvsDataplane::read() {
  std::lock_guard lock(mutex_);
  netlink_->ensureConnected();
  std::vector<VirtualServiceState> out;
  for (KernelService& k : netlink_->table())
    if (k.expressible) out.push_back(std::move(k.state));
  return out;
}

void IpvsDataplane::zeroCounters() {
  std::lock_guard lock(mutex_);
  netlink_->ensureConnected();
  std::vector<Netlink::Pending> requests;
  requests.push_back({netlink_->request(IPVS_CMD_ZERO, NLM_F_ACK), "zero the counters", {}, {}});
  std::vector<Netlink::Rejection> failures = netlink_->exchange(requests);
  if (!failures.empty()) throw DataplaneError("IPVS refused to " + failures.front().text);
}

}  // namespace shoal::lvs
