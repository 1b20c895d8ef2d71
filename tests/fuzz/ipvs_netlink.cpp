// IPVS's generic-netlink replies as the lvs plugin's ipvs dataplane reads them: the input is
// one datagram as recvmsg returns it. Every message is split out (acknowledgements with
// their error and extended-ACK text, dump entries), and each data message decoded as a
// service and as a real server, as table() and readReals() do. Nothing may read outside the
// datagram, whatever the lengths inside it claim.
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "FuzzSupport.hpp"
#include "IpvsReplies.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;  // the dataplane's read buffer
  // A buffer of exactly the datagram's size, so ASan sees any read past its end.
  std::vector<unsigned char> datagram(data, data + size);
  shoal::lvs::forEachReply(datagram.data(), static_cast<int>(datagram.size()), [&](const shoal::lvs::IpvsReply& r) {
    if (r.done) {
      FUZZ_CHECK(r.message == nullptr, "an acknowledgement also carries a data message");
      return true;
    }
    FUZZ_CHECK(r.message != nullptr, "a reply is neither an acknowledgement nor a message");
    nlattr* attrs[IPVS_CMD_ATTR_MAX + 1] = {};
    if (genlmsg_parse(r.message, 0, attrs, IPVS_CMD_ATTR_MAX, nullptr) != 0) return true;
    if (auto service = shoal::lvs::decodeService(attrs))
      FUZZ_CHECK(!service->identity.key.empty(), "a decoded service has no key");
    shoal::lvs::decodeReal(attrs, AF_INET);
    shoal::lvs::decodeReal(attrs, AF_INET6);
    return true;
  });
  return 0;
}
