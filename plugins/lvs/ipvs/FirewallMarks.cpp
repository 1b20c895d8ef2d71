#include "FirewallMarks.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <shoal/process.hpp>

namespace shoal::lvs {
namespace {

constexpr const char* kTable = "inet shoal_lvs";

// Canonical text of an IP address, or DataplaneError.
std::string canonical(const std::string& address, int& family) {
  unsigned char buffer[16];
  char text[INET6_ADDRSTRLEN];
  for (int f : {AF_INET, AF_INET6}) {
    if (inet_pton(f, address.c_str(), buffer) == 1 && inet_ntop(f, buffer, text, sizeof text)) {
      family = f;
      return text;
    }
  }
  throw DataplaneError("listener address '" + address + "' is not an IP address");
}

}  // namespace

std::string firewallMarkRuleset(const std::vector<VirtualService>& table) {
  std::ostringstream rules;
  for (const auto& service : table) {
    if (service.fwmark == 0) continue;
    char mark[16];
    std::snprintf(mark, sizeof mark, "0x%08x", service.fwmark);
    for (const auto& listener : service.listeners) {
      int family = 0;
      const auto address = canonical(listener.address, family);
      rules << "    " << (family == AF_INET6 ? "ip6" : "ip") << " daddr " << address << ' '
            << protocolName(service.protocol) << " dport " << listener.port << " meta mark set " << mark << '\n';
    }
  }
  // "add table" then "delete table" makes the delete succeed whether or not it existed; the
  // whole script is one transaction.
  std::string script = std::string("add table ") + kTable + "\ndelete table " + kTable + "\n";
  if (rules.str().empty()) return script;
  return script + "table " + kTable + " {\n  chain prerouting {\n" +
         "    type filter hook prerouting priority mangle; policy accept;\n" + rules.str() + "  }\n}\n";
}

FirewallMarkedDataplane::FirewallMarkedDataplane(std::unique_ptr<Dataplane> inner, std::string nft)
    : inner_(std::move(inner)), nft_(std::move(nft)) {}

ApplyReport FirewallMarkedDataplane::apply(const std::vector<VirtualService>& desired) {
  auto report = inner_->apply(desired);
  bool marks = false;
  for (const auto& s : desired) marks = marks || s.fwmark != 0;
  if (!marks && !marksInstalled_) return report;
  try {
    applyMarks(desired);
    marksInstalled_ = marks;
  } catch (const DataplaneError& e) {
    // Without its marks a firewall-mark service receives nothing: each one fails, the
    // other services stand.
    for (const auto& s : desired) {
      if (s.fwmark == 0) continue;
      auto known = std::find_if(report.failures.begin(), report.failures.end(),
                                [&](const ServiceFailure& f) { return f.service == s.key(); });
      if (known == report.failures.end())
        report.failures.push_back({s.key(), e.what()});
      else
        known->reason += std::string("; ") + e.what();
    }
  }
  return report;
}

void FirewallMarkedDataplane::applyMarks(const std::vector<VirtualService>& desired) {
  const std::string script = firewallMarkRuleset(desired);
  char path[] = "/tmp/shoal-lvs-nft-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) throw DataplaneError(std::string("cannot write the nft script: ") + std::strerror(errno));
  const bool written = ::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  ::close(fd);
  shoal::ProgramResult result;
  std::string cannotRun;
  if (written) {
    try {
      result = shoal::runProgram({nft_, "-f", path}, std::chrono::seconds(30));
    } catch (const std::runtime_error& e) {
      cannotRun = e.what();
    }
  }
  ::unlink(path);
  if (!written) throw DataplaneError("cannot write the nft script");
  if (!cannotRun.empty())
    throw DataplaneError("firewall-mark services need nftables to mark their packets: " + cannotRun +
                         "; install nftables");
  if (!result.succeeded())
    throw DataplaneError("nft refused the firewall marks (" + result.describe() + "): " + result.output);
}

}  // namespace shoal::lvs
