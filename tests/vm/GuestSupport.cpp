#include "GuestSupport.hpp"

#include <arpa/inet.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace shoal::lvs::guest {

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string mustRun(const std::string& command) {
  CommandResult r = run(command);
  if (r.exitCode != 0)
    throw std::runtime_error("`" + command + "` exited " + std::to_string(r.exitCode) + ": " +
                             r.output);
  return r.output;
}

namespace {

std::vector<std::string> tokens(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to && i < parts.size(); ++i)
    out += (out.empty() ? "" : " ") + parts[i];
  return out;
}

std::string hostPort(const std::string& address, std::uint16_t port) {
  bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

const char* forwardWord(Forwarding f) {
  switch (f) {
    case Forwarding::Nat:
      return "Masq";
    case Forwarding::Tunnel:
      return "Tunnel";
    case Forwarding::DirectRouting:
      break;
  }
  return "Route";
}

}  // namespace

Listing parseIpvsadmListing(const std::string& text) {
  Listing listing;
  std::istringstream in(text);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> t = tokens(line);
    if (t.empty() || t[0] == "IP" || t[0] == "Prot") continue;
    if (t[0] == "->") {
      if (t.size() > 1 && t[1] == "RemoteAddress:Port") continue;
      listing[current].push_back(join(t, 0, 4));  // arrow, address, forward, weight
      std::sort(listing[current].begin(), listing[current].end());
    } else {
      current = join(t, 0, t.size());
      listing[current];
    }
  }
  return listing;
}

Listing ipvsadmListing() {
  return parseIpvsadmListing(mustRun(std::string(kIpvsadm) + " -Ln"));
}

Listing expectedListing(const std::vector<VirtualService>& desired) {
  Listing listing;
  for (const VirtualService& s : desired) {
    std::string line;
    if (s.fwmark != 0) {
      line = "FWM " + std::to_string(s.fwmark) + (s.family == 10 ? " IPv6" : "");
    } else {
      char canonical[INET6_ADDRSTRLEN];
      unsigned char bytes[16];
      inet_pton(s.family, s.address.c_str(), bytes);
      inet_ntop(s.family, bytes, canonical, sizeof canonical);
      line =
          std::string(s.protocol == Protocol::Udp ? "UDP " : "TCP ") + hostPort(canonical, s.port);
    }
    line += " " + s.scheduler;
    if (s.persistenceSeconds) {
      line += " persistent " + std::to_string(s.persistenceSeconds);
      bool host = s.persistenceNetmask.empty() || s.persistenceNetmask == "255.255.255.255" ||
                  s.persistenceNetmask == "128";
      if (!host) line += " mask " + s.persistenceNetmask;
    }
    std::vector<std::string>& reals = listing[line];
    for (const RealServer& r : s.reals)
      reals.push_back("-> " + hostPort(r.address, r.port) + " " + forwardWord(r.forwarding) + " " +
                      std::to_string(r.weight));
    std::sort(reals.begin(), reals.end());
  }
  return listing;
}

std::string describe(const Listing& listing) {
  std::string out;
  for (const auto& [service, reals] : listing) {
    out += service + "\n";
    for (const std::string& r : reals) out += "  " + r + "\n";
  }
  return out;
}

std::vector<std::string> guestSchedulers() {
  std::ifstream in("/etc/shoal-vm/schedulers");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.push_back(line);
  return names;
}

}  // namespace shoal::lvs::guest
