#include "IpvsPlan.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdint>
#include <limits>
#include <map>
#include <set>

namespace shoal::lvs {

namespace {

// IP_VS_SCHEDNAME_MAXLEN counts the terminating zero.
constexpr std::size_t kSchedulerNameMax = 15;

std::string realKey(const RealServer& r) {
  std::string host = addressFamily(r.address) == AF_INET6 ? "[" + r.address + "]" : r.address;
  return host + ":" + std::to_string(r.port);
}

bool allDigits(const std::string& s) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A service in canonical form: address and netmask normalised, reals too.
VirtualService canonicalService(const VirtualService& in) {
  if (in.family != AF_INET && in.family != AF_INET6)
    throw DataplaneError("service " + in.key() + ": family must be 2 (IPv4) or 10 (IPv6), not " +
                         std::to_string(in.family));
  VirtualService s = in;
  if (s.fwmark != 0) {
    s.address.clear();
    s.port = 0;
  } else {
    s.address = canonicalAddress(s.family, s.address);
  }
  s.listeners.clear();
  if (s.scheduler.empty() || s.scheduler.size() > kSchedulerNameMax)
    throw DataplaneError("service " + s.key() + ": scheduler name \"" + s.scheduler +
                         "\" must have 1 to 15 characters");
  s.persistenceNetmask = canonicalNetmask(s.family, s.persistenceNetmask);
  std::set<std::string> seen;
  for (RealServer& r : s.reals) {
    r.address = canonicalAddress(addressFamily(r.address), r.address);
    if (r.weight > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()))
      throw DataplaneError("real server " + realKey(r) + " of " + s.key() + ": weight " +
                           std::to_string(r.weight) + " is above 2147483647");
    if (!seen.insert(realKey(r)).second)
      throw DataplaneError("service " + s.key() + " lists real server " + realKey(r) + " twice");
  }
  return s;
}

bool sameServiceSettings(const VirtualService& a, const VirtualService& b) {
  return a.scheduler == b.scheduler && a.persistenceSeconds == b.persistenceSeconds &&
         a.persistenceNetmask == b.persistenceNetmask;
}

VirtualService withoutReals(const VirtualService& s) {
  VirtualService copy = s;
  copy.reals.clear();
  return copy;
}

}  // namespace

int addressFamily(const std::string& text) {
  return text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
}

std::string canonicalAddress(int family, const std::string& text) {
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(family, text.c_str(), bytes) != 1 ||
      inet_ntop(family, bytes, out, sizeof out) == nullptr)
    throw DataplaneError("\"" + text + "\" is not an " + (family == AF_INET6 ? "IPv6" : "IPv4") +
                         " address");
  return out;
}

std::string canonicalNetmask(int family, const std::string& text) {
  auto invalid = [&] {
    return DataplaneError("persistence netmask \"" + text + "\" is not valid for " +
                          (family == AF_INET6 ? "IPv6 (a prefix length 1-128)"
                                              : "IPv4 (a dotted mask or a prefix length 0-32)"));
  };
  if (family == AF_INET6) {
    if (text.empty()) return "128";
    if (!allDigits(text)) throw invalid();
    int prefix = std::stoi(text);
    if (prefix < 1 || prefix > 128) throw invalid();
    return std::to_string(prefix);
  }
  std::uint32_t mask = 0xffffffffu;
  if (allDigits(text)) {
    int prefix = std::stoi(text);
    if (prefix > 32) throw invalid();
    mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  } else if (!text.empty()) {
    in_addr a{};
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) throw invalid();
    mask = ntohl(a.s_addr);
  }
  in_addr a{htonl(mask)};
  char out[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, out, sizeof out);
  return out;
}

std::string IpvsChange::describe() const {
  switch (kind) {
    case Kind::AddService:
      return "add service " + service.key();
    case Kind::EditService:
      return "edit service " + service.key();
    case Kind::RemoveService:
      return "remove service " + service.key();
    case Kind::AddReal:
      return "add real server " + realKey(real) + " to " + service.key();
    case Kind::EditReal:
      return "edit real server " + realKey(real) + " of " + service.key();
    case Kind::RemoveReal:
      return "remove real server " + realKey(real) + " from " + service.key();
  }
  return "change of " + service.key();
}

IpvsPlan planIpvsChanges(const std::vector<VirtualService>& current,
                         const std::vector<VirtualService>& desired) {
  // Validate all of `desired` before anything is planned, so a bad table sends nothing.
  std::vector<VirtualService> want;
  std::set<std::string> wantKeys;
  for (const VirtualService& d : desired) {
    want.push_back(canonicalService(d));
    if (!wantKeys.insert(want.back().key()).second)
      throw DataplaneError("service " + want.back().key() + " is listed twice");
  }
  std::map<std::string, VirtualService> have;
  for (const VirtualService& c : current) {
    VirtualService s = canonicalService(c);
    have.emplace(s.key(), std::move(s));
  }

  IpvsPlan plan;
  auto add = [&](IpvsChange::Kind kind, const VirtualService& s, const RealServer& r = {}) {
    plan.changes.push_back(IpvsChange{kind, withoutReals(s), r});
  };
  for (const auto& [key, s] : have) {
    if (wantKeys.count(key)) continue;
    add(IpvsChange::Kind::RemoveService, s);
    ++plan.report.servicesRemoved;
  }
  for (const VirtualService& w : want) {
    auto found = have.find(w.key());
    if (found == have.end()) {
      add(IpvsChange::Kind::AddService, w);
      ++plan.report.servicesAdded;
      for (const RealServer& r : w.reals) add(IpvsChange::Kind::AddReal, w, r);
      plan.report.realsAdded += w.reals.size();
      continue;
    }
    const VirtualService& h = found->second;
    std::size_t before = plan.changes.size();
    if (!sameServiceSettings(h, w)) {
      add(IpvsChange::Kind::EditService, w);
      ++plan.report.servicesEdited;
    }
    std::map<std::string, const RealServer*> haveReals, wantReals;
    for (const RealServer& r : h.reals) haveReals[realKey(r)] = &r;
    for (const RealServer& r : w.reals) wantReals[realKey(r)] = &r;
    for (const RealServer& r : h.reals) {
      if (wantReals.count(realKey(r))) continue;
      add(IpvsChange::Kind::RemoveReal, w, r);
      ++plan.report.realsRemoved;
    }
    for (const RealServer& r : w.reals) {
      auto old = haveReals.find(realKey(r));
      if (old == haveReals.end()) {
        add(IpvsChange::Kind::AddReal, w, r);
        ++plan.report.realsAdded;
      } else if (old->second->weight != r.weight || old->second->forwarding != r.forwarding) {
        add(IpvsChange::Kind::EditReal, w, r);
        ++plan.report.realsEdited;
      }
    }
    if (plan.changes.size() == before) ++plan.report.servicesUnchanged;
  }
  return plan;
}

}  // namespace shoal::lvs
