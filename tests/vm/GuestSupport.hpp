#pragma once
// What the in-guest tests and the benchmark share: running the guest's tools and reading
// ipvsadm's listing in a form that can be compared with a desired table.
#include <map>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs::guest {

// Full paths: busybox's shell would otherwise run its own `ip` applet, which has no netns.
inline const char* const kIp = "/usr/sbin/ip";
inline const char* const kIpvsadm = "/usr/sbin/ipvsadm";

struct CommandResult {
  int exitCode = -1;
  std::string output;  // stdout and stderr together
};
CommandResult run(const std::string& command);
// Runs `command` and throws std::runtime_error naming it and its output when it fails.
std::string mustRun(const std::string& command);

// ipvsadm's listing, one entry per service: the service line (whitespace collapsed, e.g.
// "TCP 10.1.0.1:80 rr persistent 300 mask 255.255.255.0") to its real-server lines
// ("-> 10.2.0.1:80 Masq 1"), sorted.
using Listing = std::map<std::string, std::vector<std::string>>;
// Parses `ipvsadm -Ln` output.
Listing parseIpvsadmListing(const std::string& text);
Listing ipvsadmListing();
// What ipvsadm -Ln must show for `desired`.
Listing expectedListing(const std::vector<VirtualService>& desired);
std::string describe(const Listing& listing);

// The scheduler modules this guest's kernel has (one name a line in /etc/shoal-vm/schedulers,
// written when the initramfs was built).
std::vector<std::string> guestSchedulers();

}  // namespace shoal::lvs::guest
