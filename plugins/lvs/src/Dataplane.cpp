#include "Dataplane.hpp"

namespace shoal::lvs {

std::string VirtualService::key() const {
  if (fwmark != 0) return "fwm:" + std::to_string(fwmark) + (family == 10 ? ":v6" : ":v4");
  std::string host = family == 10 ? "[" + address + "]" : address;
  return std::string(protocolName(protocol)) + ":" + host + ":" + std::to_string(port);
}

const char* protocolName(Protocol p) { return p == Protocol::Udp ? "udp" : "tcp"; }

const char* forwardingName(Forwarding f) {
  switch (f) {
    case Forwarding::Nat: return "nat";
    case Forwarding::Tunnel: return "tun";
    case Forwarding::DirectRouting: break;
  }
  return "dr";
}

const char* proxyProtocolName(ProxyProtocol p) { return p == ProxyProtocol::V2 ? "v2" : "none"; }

}  // namespace shoal::lvs
