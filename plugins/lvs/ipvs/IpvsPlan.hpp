#pragma once
// The difference between the table the kernel holds and the desired one, as an ordered list
// of IPVS changes. Pure: no netlink, so it is tested on any host.
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

struct IpvsChange {
  enum class Kind { AddService, EditService, RemoveService, AddReal, EditReal, RemoveReal };
  Kind kind = Kind::AddService;
  // Identity and settings of the service (canonical address and netmask; `reals` empty).
  VirtualService service;
  // The real server, for the *Real kinds (canonical address).
  RealServer real;

  // "add real server 10.0.0.1:80 to tcp:192.0.2.10:80", for error messages.
  std::string describe() const;
};

struct IpvsPlan {
  // In the order they must be sent: removed services first, then for each desired service
  // its add or edit followed by its real servers' removals, edits and additions.
  std::vector<IpvsChange> changes;
  ApplyReport report;
};

// `current` is the kernel's table (services with their reals), `desired` what to hold.
// Addresses and netmasks are compared in canonical form, so "2001:db8:0::1" matches
// "2001:db8::1" and an empty netmask matches the host mask. Throws DataplaneError when
// `desired` is invalid: unknown family, unparsable address or netmask, empty or overlong
// scheduler name, weight above 2^31-1, or a service or real server listed twice.
IpvsPlan planIpvsChanges(const std::vector<VirtualService>& current,
                         const std::vector<VirtualService>& desired);

// Canonical text of an address of `family` (AF_INET or AF_INET6); throws DataplaneError.
std::string canonicalAddress(int family, const std::string& text);
// The family of an address text: AF_INET6 when it holds a ':', else AF_INET.
int addressFamily(const std::string& text);
// Canonical persistence netmask: IPv4 dotted ("255.255.0.0", also accepted as a prefix
// length "16"), IPv6 a prefix length ("64"); empty means the host mask. Throws
// DataplaneError.
std::string canonicalNetmask(int family, const std::string& text);

}  // namespace shoal::lvs
