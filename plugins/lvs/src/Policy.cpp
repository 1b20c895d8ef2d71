#include "Policy.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace shoal::lvs {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr int kInet = 2, kInet6 = 10;
constexpr std::uint32_t kMaxPersistence = 31536000;  // a year, as ipvsadm allows
constexpr std::uint32_t kMaxWeight = 65535;
constexpr std::uint16_t kFtpControlPort = 21;

[[noreturn]] void fail(const std::string& message) { throw PolicyError(message); }

// 2, 10 or 0 when `text` is no IP address.
int familyOf(const std::string& text) {
  unsigned char buffer[16];
  if (inet_pton(AF_INET, text.c_str(), buffer) == 1) return kInet;
  if (inet_pton(AF_INET6, text.c_str(), buffer) == 1) return kInet6;
  return 0;
}

std::string hostPort(const std::string& address, std::uint16_t port) {
  return (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

Object::Ptr parseObject(const std::string& json, const std::string& what) {
  Poco::Dynamic::Var value;
  try {
    value = Poco::JSON::Parser().parse(json);
  } catch (const Poco::Exception& e) {
    fail(what + " is not valid JSON: " + e.displayText());
  }
  if (value.type() != typeid(Object::Ptr) || !value.extract<Object::Ptr>()) fail(what + " must be a JSON object");
  return value.extract<Object::Ptr>();
}

void refuseUnknown(const Object::Ptr& o, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [name, value] : *o) {
    (void)value;
    if (!known.count(name)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(where + "unknown field '" + name + "' (known: " + list + ")");
    }
  }
}

std::string stringField(const Object::Ptr& o, const std::string& name, const std::string& where) {
  if (!o->get(name).isString()) fail(where + "'" + name + "' must be a string");
  return o->getValue<std::string>(name);
}

std::int64_t intField(const Object::Ptr& o, const std::string& name, std::int64_t min, std::int64_t max,
                      const std::string& where) {
  const auto& v = o->get(name);
  bool integer = v.isInteger();
  std::int64_t value = 0;
  if (integer) {
    value = v.convert<std::int64_t>();
  } else if (v.isNumeric()) {
    double d = v.convert<double>();
    integer = d == static_cast<double>(static_cast<std::int64_t>(d));
    value = static_cast<std::int64_t>(d);
  }
  if (!integer || value < min || value > max)
    fail(where + "'" + name + "' must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
         ", not " + v.convert<std::string>());
  return value;
}

std::string namesOf(const std::vector<Choice>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c.name;
  return list;
}

Forwarding parseForwarding(const std::string& text, const std::string& where) {
  // ipvsadm's long words for the same methods.
  if (text == "gatewaying" || text == "route") return Forwarding::DirectRouting;
  if (text == "masquerading") return Forwarding::Nat;
  if (text == "ipip" || text == "tunnel") return Forwarding::Tunnel;
  std::string names;  // "dr, nat or tun"
  const auto& methods = forwardingMethods();
  for (std::size_t i = 0; i < methods.size(); ++i) {
    if (methods[i].choice.name == text) return methods[i].method;
    names += (i == 0 ? "" : i + 1 == methods.size() ? " or " : ", ") + methods[i].choice.name;
  }
  fail(where + "'forwarding' must be " + names + ", not '" + text + "'");
}

ProxyProtocol parseProxyProtocol(const Object::Ptr& o) {
  const auto& v = o->get("proxy_protocol");
  const std::string text = v.isString() ? v.convert<std::string>() : std::string();
  if (text == "v2") return ProxyProtocol::V2;
  if (text == "none") return ProxyProtocol::None;
  fail("'proxy_protocol' must be \"v2\" (PROXY protocol version 2) or \"none\", not " +
       (v.isString() ? "'" + text + "'" : v.isEmpty() ? std::string("null") : v.convert<std::string>()));
}

// "192.0.2.10:80" or "[2001:db8::10]:80".
VirtualService::Listener parseListener(const std::string& text, const std::string& where) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      fail(where + "'" + text + "' must be ADDRESS:PORT ([IPv6]:PORT)");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) fail(where + "'" + text + "' must be ADDRESS:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (familyOf(host) == 0) fail(where + "'" + host + "' is not an IPv4 or IPv6 address");
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stoi(port) < 1 ||
      std::stoi(port) > 65535)
    fail(where + "port '" + port + "' must be 1-65535");
  return {host, static_cast<std::uint16_t>(std::stoi(port))};
}

// [a-z][a-z0-9_-]{0,31}, as the kernel names services.
bool isServiceName(const std::string& name) {
  if (name.empty() || name.size() > 32 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool contiguousV4Mask(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  std::uint32_t m = ntohl(a.s_addr);
  return m != 0 && ((~m + 1) & ~m) == 0;  // ones then zeros
}

Member memberFrom(const Object::Ptr& o, const std::string& where) {
  refuseUnknown(o, {"address", "port", "weight", "forwarding"}, where);
  Member m;
  if (!o->has("address")) fail(where + "'address' is required");
  m.address = stringField(o, "address", where);
  if (familyOf(m.address) == 0) fail(where + "'address' '" + m.address + "' is not an IPv4 or IPv6 address");
  if (o->has("port")) m.port = static_cast<std::uint16_t>(intField(o, "port", 0, 65535, where));
  if (o->has("weight")) m.weight = static_cast<std::uint32_t>(intField(o, "weight", 0, kMaxWeight, where));
  if (o->has("forwarding")) m.forwarding = parseForwarding(stringField(o, "forwarding", where), where);
  return m;
}

void applyFields(Policy& p, const Object::Ptr& o, bool creating) {
  static const std::set<std::string> known{"service", "protocol", "address", "port", "fwmark", "listeners",
                                           "scheduler", "persistence", "netmask", "forwarding", "members", "key",
                                           "proxy_protocol"};
  refuseUnknown(o, known, "");
  if (!creating) {
    for (const char* identity : {"protocol", "address", "port", "fwmark"})
      if (o->has(identity))
        fail(std::string("'") + identity + "' identifies the virtual service and cannot be edited; delete it and add a new one");
  }
  if (o->has("service")) p.service = stringField(o, "service", "");
  if (o->has("protocol")) {
    auto proto = stringField(o, "protocol", "");
    if (proto == "tcp") p.protocol = Protocol::Tcp;
    else if (proto == "udp") p.protocol = Protocol::Udp;
    else fail("'protocol' must be tcp or udp, not '" + proto + "'");
  }
  if (o->has("address")) p.address = stringField(o, "address", "");
  if (o->has("port")) p.port = static_cast<std::uint16_t>(intField(o, "port", 1, 65535, ""));
  if (o->has("fwmark")) p.fwmark = static_cast<std::uint32_t>(intField(o, "fwmark", 1, 0xFFFFFFFFLL, ""));
  if (o->has("listeners")) {
    auto list = o->getArray("listeners");
    if (!list) fail("'listeners' must be an array of \"ADDRESS:PORT\"");
    p.listeners.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto where = "listeners[" + std::to_string(i) + "]: ";
      if (!list->get(static_cast<unsigned>(i)).isString()) fail(where + "must be a string \"ADDRESS:PORT\"");
      p.listeners.push_back(parseListener(list->getElement<std::string>(static_cast<unsigned>(i)), where));
    }
  }
  if (o->has("scheduler")) p.scheduler = stringField(o, "scheduler", "");
  if (o->has("persistence"))
    p.persistenceSeconds = static_cast<std::uint32_t>(intField(o, "persistence", 0, kMaxPersistence, ""));
  if (o->has("netmask")) p.netmask = stringField(o, "netmask", "");
  if (o->has("forwarding")) p.forwarding = parseForwarding(stringField(o, "forwarding", ""), "");
  if (o->has("proxy_protocol")) p.proxyProtocol = parseProxyProtocol(o);
  if (o->has("members")) {
    auto list = o->getArray("members");
    if (!list) fail("'members' must be an array of {\"address\", \"port\", \"weight\"}");
    p.members.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      auto item = list->getObject(static_cast<unsigned>(i));
      const auto where = "members[" + std::to_string(i) + "]: ";
      if (!item) fail(where + "must be an object");
      p.members.push_back(memberFrom(item, where));
    }
  }
}

Object::Ptr policyObject(const Policy& p) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("key", p.key());
  o->set("service", p.service);
  if (p.fwmark != 0) {
    o->set("fwmark", static_cast<std::int64_t>(p.fwmark));
    Array::Ptr listeners = new Array;
    for (const auto& l : p.listeners) listeners->add(hostPort(l.address, l.port));
    o->set("listeners", listeners);
  } else {
    o->set("protocol", std::string(protocolName(p.protocol)));
    o->set("address", p.address);
    o->set("port", static_cast<int>(p.port));
  }
  o->set("scheduler", p.scheduler);
  o->set("persistence", static_cast<std::int64_t>(p.persistenceSeconds));
  o->set("netmask", p.netmask);
  o->set("forwarding", std::string(forwardingName(p.forwarding)));
  if (p.proxyProtocol != ProxyProtocol::None) o->set("proxy_protocol", std::string(proxyProtocolName(p.proxyProtocol)));
  Array::Ptr members = new Array;
  for (const auto& m : p.members) {
    Object::Ptr mo = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    mo->set("address", m.address);
    mo->set("port", static_cast<int>(m.port));
    mo->set("weight", static_cast<std::int64_t>(m.weight));
    if (m.forwarding) mo->set("forwarding", std::string(forwardingName(*m.forwarding)));
    members->add(mo);
  }
  o->set("members", members);
  return o;
}

std::string text(const Poco::Dynamic::Var& v) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(v, out);
  return out.str();
}

}  // namespace

std::string Member::key() const { return hostPort(address, port); }

std::string Policy::key() const {
  if (fwmark != 0) return "fwm:" + std::to_string(fwmark);
  return std::string(protocolName(protocol)) + ":" + hostPort(address, port);
}

const std::vector<Choice>& schedulers() {
  static const std::vector<Choice> list{
      {"rr", "round robin"},
      {"wrr", "weighted round robin"},
      {"lc", "least connections"},
      {"wlc", "weighted least connections"},
      {"lblc", "locality-based least connections"},
      {"lblcr", "locality-based least connections with replication"},
      {"dh", "destination hashing"},
      {"sh", "source hashing"},
      {"sed", "shortest expected delay"},
      {"nq", "never queue"},
      {"mh", "Maglev hashing"},
  };
  return list;
}

const std::vector<ForwardingChoice>& forwardingMethods() {
  static const std::vector<ForwardingChoice> list{
      {Forwarding::DirectRouting, {"dr", "direct routing"}},
      {Forwarding::Nat, {"nat", "masquerading (NAT)"}},
      {Forwarding::Tunnel, {"tun", "IP-in-IP tunnel"}},
  };
  return list;
}

namespace {

// The rules every policy and every dataplane table obeys: fields well formed and
// consistent. validatePolicy adds what the admin is refused on top.
void checkShape(const Policy& p) {
  if (p.service.empty()) fail("'service' is required: the balanced service whose probe decides health (http, https, smtp, imap, pop3, ftp, ...)");
  if (!isServiceName(p.service)) fail("'service' '" + p.service + "' must match [a-z][a-z0-9_-]{0,31}");
  int family = 0;
  if (p.fwmark != 0) {
    if (!p.address.empty() || p.port != 0) fail("a firewall-mark group has 'fwmark' and 'listeners', not 'address' and 'port'");
    if (p.listeners.empty()) fail("'listeners' must list the ADDRESS:PORT pairs the firewall mark covers (at least one)");
    family = familyOf(p.listeners.front().address);
    std::set<std::string> seen;
    for (const auto& l : p.listeners) {
      if (familyOf(l.address) != family) fail("listeners mix IPv4 and IPv6 addresses");
      if (!seen.insert(hostPort(l.address, l.port)).second) fail("listener " + hostPort(l.address, l.port) + " is listed twice");
    }
  } else {
    if (p.address.empty()) fail("'address' (the virtual IP) is required, or 'fwmark' with 'listeners'");
    family = familyOf(p.address);
    if (family == 0) fail("'address' '" + p.address + "' is not an IPv4 or IPv6 address");
    if (p.port == 0) fail("'port' is required (1-65535)");
    if (!p.listeners.empty()) fail("'listeners' belong to firewall-mark groups ('fwmark') only");
  }
  if (std::none_of(schedulers().begin(), schedulers().end(), [&](const Choice& c) { return c.name == p.scheduler; }))
    fail("'scheduler' '" + p.scheduler + "' is not one of " + namesOf(schedulers()));
  if (!p.netmask.empty()) {
    if (family == kInet && !contiguousV4Mask(p.netmask))
      fail("'netmask' '" + p.netmask + "' must be a dotted IPv4 netmask such as 255.255.255.0");
    if (family == kInet6) {
      const bool digits = !p.netmask.empty() && p.netmask.size() <= 3 &&
                          std::all_of(p.netmask.begin(), p.netmask.end(), ::isdigit);
      if (!digits || std::stoi(p.netmask) < 1 || std::stoi(p.netmask) > 128)
        fail("'netmask' '" + p.netmask + "' must be an IPv6 prefix length 1-128");
    }
    if (p.persistenceSeconds == 0) fail("'netmask' groups clients for persistence; set 'persistence' too");
  }
  if (p.proxyProtocol != ProxyProtocol::None && p.protocol != Protocol::Tcp)
    fail("'proxy_protocol' is written at the start of a TCP connection; a " + std::string(protocolName(p.protocol)) +
         " service cannot carry it");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < p.members.size(); ++i) {
    const auto& m = p.members[i];
    const auto where = "members[" + std::to_string(i) + "] (" + m.key() + "): ";
    if (familyOf(m.address) != family) fail(where + "address family differs from the virtual service's");
    if (m.port == 0 && p.fwmark == 0) fail(where + "'port' must be 1-65535 (0 is only for firewall-mark groups: the client's port)");
    if (m.weight > kMaxWeight) fail(where + "'weight' must be 0-65535");
    const auto forwarding = m.forwarding.value_or(p.forwarding);
    if (forwarding != Forwarding::Nat && p.proxyProtocol == ProxyProtocol::None && m.port != 0 && p.fwmark == 0 &&
        m.port != p.port)
      fail(where + "direct routing and tunnelling cannot change the port (" + std::to_string(p.port) + " → " +
           std::to_string(m.port) + "); use forwarding nat");
    if (!seen.insert(m.key()).second) fail(where + "is listed twice");
  }
}

// Passive FTP: the client opens a second connection, to a port the server chose, and it
// must reach the server that chose it. A firewall-mark group covering the control and data
// ports sends it there only through persistence (IPVS's and the userspace dataplane's
// client-address templates); with persistence 0 it is scheduled afresh, lands on another
// node, and the client hangs until its timeout.
void checkFtpPersistence(const Policy& p) {
  if (p.fwmark == 0 || p.persistenceSeconds > 0) return;
  const bool ftpListener = std::any_of(p.listeners.begin(), p.listeners.end(),
                                       [](const VirtualService::Listener& l) { return l.port == kFtpControlPort; });
  if (p.service != "ftp" && !ftpListener) return;
  fail(std::string("a firewall-mark group that carries FTP (") +
       (ftpListener ? "a listener on port 21" : "service 'ftp'") +
       ") needs 'persistence' above 0: a passive FTP client opens its data connection to another port, "
       "and only persistence sends it to the node that opened that port; without it the data "
       "connection lands on another node and the client hangs. Set 'persistence' (for example 300, ipvsadm -p)");
}

}  // namespace

void validatePolicy(const Policy& p) {
  checkShape(p);
  checkFtpPersistence(p);
}

Policy parsePolicy(const std::string& json) {
  auto o = parseObject(json, "the policy");
  Policy p;
  applyFields(p, o, true);
  p.family = p.fwmark != 0 ? (p.listeners.empty() ? kInet : familyOf(p.listeners.front().address))
                           : familyOf(p.address);
  if (o->has("key") && o->get("key").isString() && o->getValue<std::string>("key") != p.key())
    fail("'key' '" + o->getValue<std::string>("key") + "' does not match the service's identity " + p.key());
  validatePolicy(p);
  return p;
}

Policy parseStoredPolicy(const std::string& json) {
  auto o = parseObject(json, "the stored policy");
  Policy p;
  applyFields(p, o, true);
  p.family = p.fwmark != 0 ? (p.listeners.empty() ? kInet : familyOf(p.listeners.front().address))
                           : familyOf(p.address);
  checkShape(p);
  return p;
}

Member parseMember(const std::string& json, const Policy& policy) {
  auto m = memberFrom(parseObject(json, "the member"), "");
  Policy check = policy;
  check.members.push_back(m);
  validatePolicy(check);
  return m;
}

Policy editPolicy(const Policy& policy, const std::string& json) {
  auto o = parseObject(json, "the edit");
  Policy p = policy;
  applyFields(p, o, false);
  validatePolicy(p);
  return p;
}

std::string toJson(const Policy& policy) { return text(policyObject(policy)); }

std::string toJson(const Member& member, const Policy& policy) {
  Policy one = policy;
  one.members = {member};
  auto o = policyObject(one);
  return text(o->getArray("members")->get(0));
}

std::string normalizedKey(const std::string& key) {
  if (key.rfind("fwm:", 0) == 0) {
    const auto n = key.substr(4);
    if (n.empty() || n.size() > 10 || !std::all_of(n.begin(), n.end(), ::isdigit) || std::stoull(n) == 0 ||
        std::stoull(n) > 0xFFFFFFFFull)
      fail("'" + key + "' is not a virtual service: fwm:MARK needs a mark 1-4294967295");
    return "fwm:" + std::to_string(std::stoull(n));
  }
  for (const char* proto : {"tcp:", "udp:"}) {
    if (key.rfind(proto, 0) == 0) {
      auto l = parseListener(key.substr(4), "'" + key + "': ");
      return std::string(proto) + hostPort(l.address, l.port);
    }
  }
  fail("'" + key + "' is not a virtual service: write tcp:ADDRESS:PORT, udp:ADDRESS:PORT or fwm:MARK");
}

std::vector<VirtualService> desiredTable(const std::vector<Policy>& policies, const ServingMap& serving) {
  std::vector<VirtualService> table;
  for (const auto& p : policies) {
    VirtualService v;
    v.protocol = p.protocol;
    v.address = p.address;
    v.port = p.port;
    v.fwmark = p.fwmark;
    v.family = p.family;
    v.listeners = p.listeners;
    v.scheduler = p.scheduler;
    v.persistenceSeconds = p.persistenceSeconds;
    v.persistenceNetmask = p.netmask;
    v.proxyProtocol = p.proxyProtocol;
    for (const auto& m : p.members) {
      RealServer r;
      r.address = m.address;
      r.port = m.port;
      auto it = serving.find({m.address, p.service});
      r.weight = it == serving.end() || it->second ? m.weight : 0;
      r.forwarding = m.forwarding.value_or(p.forwarding);
      v.reals.push_back(r);
    }
    table.push_back(std::move(v));
  }
  return table;
}

std::string tableToJson(const std::vector<VirtualService>& table) {
  Array::Ptr services = new Array;
  for (const auto& v : table) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("protocol", std::string(protocolName(v.protocol)));
    o->set("address", v.address);
    o->set("port", static_cast<int>(v.port));
    o->set("fwmark", static_cast<std::int64_t>(v.fwmark));
    o->set("family", v.family);
    Array::Ptr listeners = new Array;
    for (const auto& l : v.listeners) listeners->add(hostPort(l.address, l.port));
    o->set("listeners", listeners);
    o->set("scheduler", v.scheduler);
    o->set("persistence", static_cast<std::int64_t>(v.persistenceSeconds));
    o->set("netmask", v.persistenceNetmask);
    if (v.proxyProtocol != ProxyProtocol::None) o->set("proxy_protocol", std::string(proxyProtocolName(v.proxyProtocol)));
    Array::Ptr reals = new Array;
    for (const auto& r : v.reals) {
      Object::Ptr ro = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      ro->set("address", r.address);
      ro->set("port", static_cast<int>(r.port));
      ro->set("weight", static_cast<std::int64_t>(r.weight));
      ro->set("forwarding", std::string(forwardingName(r.forwarding)));
      reals->add(ro);
    }
    o->set("reals", reals);
    services->add(o);
  }
  Object::Ptr root = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  root->set("services", services);
  return text(root);
}

std::vector<VirtualService> tableFromJson(const std::string& json) {
  auto root = parseObject(json, "the lvs.apply payload");
  auto services = root->getArray("services");
  if (!services) fail("the lvs.apply payload needs 'services', an array");
  std::vector<VirtualService> table;
  std::set<std::string> keys;
  for (std::size_t i = 0; i < services->size(); ++i) {
    const auto where = "services[" + std::to_string(i) + "]: ";
    auto o = services->getObject(static_cast<unsigned>(i));
    if (!o) fail(where + "must be an object");
    // Re-validated as a policy, so a hand-made command cannot programme what the API refuses.
    Policy p;
    p.service = "lvs";
    Object::Ptr asPolicy = new Object;
    for (const char* f : {"scheduler", "persistence", "netmask", "proxy_protocol"})
      if (o->has(f)) asPolicy->set(f, o->get(f));
    if (o->has("fwmark") && intField(o, "fwmark", 0, 0xFFFFFFFFLL, where) != 0) {
      asPolicy->set("fwmark", o->get("fwmark"));
      asPolicy->set("listeners", o->get("listeners"));
    } else {
      for (const char* f : {"protocol", "address", "port"})
        if (o->has(f)) asPolicy->set(f, o->get(f));
    }
    Array::Ptr members = new Array;
    if (auto reals = o->getArray("reals")) {
      for (std::size_t j = 0; j < reals->size(); ++j) members->add(reals->get(static_cast<unsigned>(j)));
    }
    asPolicy->set("members", members);
    try {
      applyFields(p, asPolicy, true);
      p.family = p.fwmark != 0 ? (p.listeners.empty() ? kInet : familyOf(p.listeners.front().address)) : familyOf(p.address);
      // The shape only: a table is the manager's, already past the API's refusals, and a
      // rule added since must not make the director refuse a whole table.
      checkShape(p);
    } catch (const PolicyError& e) {
      fail(where + e.what());
    }
    if (!keys.insert(p.key()).second) fail(where + p.key() + " is listed twice");
    table.push_back(desiredTable({p}, {}).front());
  }
  return table;
}

}  // namespace shoal::lvs
