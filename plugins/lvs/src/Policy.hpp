#pragma once
// Balancer policies as the admin writes them, and how they become a dataplane table.
//
// A policy is one virtual service, in ipvsadm's terms: a virtual IP with protocol and port
// (or a firewall-mark group covering several VIP:port pairs, so one client sticks to one
// node across HTTP and HTTPS), the balanced service it carries (whose health probe decides
// which members serve), a scheduler, persistence, a forwarding method and member nodes
// with weights. Policies are stored as JSON documents in the plugin's document store,
// keyed by Policy::key().
//
// JSON form (what the API accepts and returns; unknown fields are refused):
//   {"service": "http", "protocol": "tcp", "address": "192.0.2.10", "port": 80,
//    "scheduler": "wlc", "persistence": 300, "netmask": "255.255.255.255",
//    "forwarding": "dr", "proxy_protocol": "v2",
//    "members": [{"address": "10.0.0.11", "port": 80, "weight": 1}, ...]}
// "proxy_protocol" ("v2", or "none" = absent) makes the userspace dataplane open each
// connection to a member with a PROXY protocol v2 header carrying the client's address:
// TCP only, refused where the dataplane is known to be IPVS (which cannot write it and
// keeps the client's address anyway). Members then name the port where their daemon
// expects the header, which may differ from the virtual service's whatever "forwarding"
// says: the userspace dataplane always makes a new connection.
// or, for a firewall-mark group:
//   {"service": "http", "fwmark": 1, "listeners": ["192.0.2.10:80", "192.0.2.10:443"],
//    "members": [{"address": "10.0.0.11", "port": 0, "weight": 1}], ...}
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

// Bad policy input; the message names the field and what is allowed.
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a policy gets when it names no scheduler or forwarding method.
inline constexpr const char* kDefaultScheduler = "wlc";
inline constexpr const char* kDefaultForwarding = "dr";

struct Member {
  std::string address;
  std::uint16_t port = 0;
  std::uint32_t weight = 1;
  std::optional<Forwarding> forwarding;  // the policy's when unset

  // "10.0.0.11:80" or "[2001:db8::11]:80"
  std::string key() const;
};

struct Policy {
  std::string service;  // the balanced service: http, https, smtp, imap, pop3, ftp, ...
  Protocol protocol = Protocol::Tcp;
  std::string address;  // the virtual IP (empty for a firewall-mark group)
  std::uint16_t port = 0;
  std::uint32_t fwmark = 0;
  std::vector<VirtualService::Listener> listeners;  // firewall-mark groups only
  int family = 2;                                    // AF_INET or AF_INET6, from the addresses
  std::string scheduler = kDefaultScheduler;
  std::uint32_t persistenceSeconds = 300;
  std::string netmask;  // empty = one client address (255.255.255.255 or 128)
  Forwarding forwarding = Forwarding::DirectRouting;
  std::vector<Member> members;
  ProxyProtocol proxyProtocol = ProxyProtocol::None;

  // "tcp:192.0.2.10:80", "udp:[2001:db8::10]:53" or "fwm:1"
  std::string key() const;
};

// One entry of a list the plugin offers: its name in the API and a label for people.
struct Choice {
  std::string name;
  std::string label;
};

// The schedulers a policy may name (IPVS's), in the order the panel offers them. This list
// is the only one: validation, the panel's select and GET /v1/plugins/lvs/schema (which
// shoalctl lb reads) all take it from here.
const std::vector<Choice>& schedulers();

// The forwarding methods, likewise the only list: dr (direct routing, the default), nat, tun.
// parseForwarding also takes ipvsadm's long words (gatewaying, masquerading, ipip) for them.
struct ForwardingChoice {
  Forwarding method;
  Choice choice;
};
const std::vector<ForwardingChoice>& forwardingMethods();

// Parses and validates a policy. Throws PolicyError naming the field.
Policy parsePolicy(const std::string& json);
// Parses one member ({"address", "port", "weight", "forwarding"}), checked against `policy`.
Member parseMember(const std::string& json, const Policy& policy);
// Applies the fields present in `json` to `policy` (an edit: "members" replaces the list;
// the identity fields protocol/address/port/fwmark cannot change). Throws PolicyError.
Policy editPolicy(const Policy& policy, const std::string& json);
// Checks a whole policy (used by parse and edit); throws PolicyError. Besides the fields'
// form and consistency it refuses what cannot work for clients:
// - a firewall-mark group that carries FTP (its service is "ftp", or one of its listeners
//   is on port 21) with persistence 0: passive FTP's data connection would be scheduled
//   to another node than its control connection, and the client hang.
void validatePolicy(const Policy& policy);
// Parses a policy read back from the store: its form is checked, but not the refusals
// above, so a policy stored before such a rule existed still loads (and keeps being
// balanced) instead of stopping every table. Throws PolicyError.
Policy parseStoredPolicy(const std::string& json);

std::string toJson(const Policy& policy);
std::string toJson(const Member& member, const Policy& policy);

// "tcp:192.0.2.10:80" → the parts; PolicyError when malformed.
std::string normalizedKey(const std::string& key);

// Whether each member serves now, by (member address, service). Absent = serving (not
// probed, or no news yet).
using ServingMap = std::map<std::pair<std::string, std::string>, bool>;

// The dataplane table for `policies`: a member that does not serve gets weight 0.
std::vector<VirtualService> desiredTable(const std::vector<Policy>& policies, const ServingMap& serving);

// The table as the JSON of an lvs.apply payload, and back (throws PolicyError).
std::string tableToJson(const std::vector<VirtualService>& table);
std::vector<VirtualService> tableFromJson(const std::string& json);

}  // namespace shoal::lvs
