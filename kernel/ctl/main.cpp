// shoalctl — the command-line client of the manager's API.
//
// Where the manager is and how to authenticate, first match wins:
//   --manager HOST:PORT    SHOAL_MANAGER    [shoalctl] manager       default 127.0.0.1:7443
//   --token-file FILE      SHOAL_TOKEN (the token itself), [shoalctl] token_file,
//                                                                 default /var/lib/shoal/admin.token
//   --ca FILE              SHOAL_CA         [shoalctl] ca_file       default /var/lib/shoal/tls/ca.crt
// The config file is --config FILE, else $SHOAL_CTL_CONFIG, else /etc/shoal/shoalctl.conf if present.
//
// Exit status: 0 done; 1 the manager refused the request; 2 bad usage; 3 the manager could not
// be reached (or its certificate did not verify); 4 the named thing does not exist.
#include <Poco/AutoPtr.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/URI.h>
#include <Poco/Util/IniFileConfiguration.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/ManagerClient.hpp"
#include "common/Error.hpp"
#include "tls/Contexts.hpp"

using Poco::JSON::Array;
using Poco::JSON::Object;
using shoal::agent::ApiReply;
using shoal::agent::ManagerClient;

namespace {

constexpr int kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitUnreachable = 3, kExitNotFound = 4;

const char* kUsage = R"(usage: shoalctl [--json] [--manager HOST:PORT] [--token-file FILE] [--ca FILE] COMMAND

  cluster                              the cluster's identity and queue depth
  node join-token [--ttl SECONDS]      a one-time token for `shoald --role node --join TOKEN`
  node list [--all]                    enrolled nodes (--all: also removed ones)
  node show ID
  node remove ID                       revoke its credential and take it out of the cluster
  node set-roles ID ROLE[,ROLE...]     the services it runs ("" for none)
  node drain ID [--wait [--timeout S]] take every service of the node out of every balancer policy;
                                       --wait: print its open connections every second until none
                                       is left ("node ID is empty"), or fail after S (300) seconds
  node undrain ID                      put back what the node served before (unhealthy services or
                                       ones in maintenance stay out)
  node connections ID                  connections the balancer holds open to the node
  queue list [--state STATE] [--limit N]
  queue show COMMAND_ID                a command and its state on every node
  queue add KIND [--payload JSON] [--key ORDERING_KEY] [--target all|node:ID|role:NAME]
            [--idempotency-key KEY]    a repeated add with the same KEY (within 24 h)
                                       enqueues nothing and shows the first command
  queue retry DELIVERY_ID              run a failed delivery again
  queue skip DELIVERY_ID               give up on a delivery, unblocking its ordering key
  service restart NAME --all [--max-unavailable N] [--role ROLE] [--no-drain]
                                       restart NAME on its nodes, never more than N (default 1)
                                       out at once: each is drained from the balancer, restarted,
                                       probed healthy and restored; stops at the first failure
  service rollouts [--limit N]         recent rolling restarts and where each stands
  api METHOD PATH [--body JSON]        any admin route, e.g. a plugin's: api GET /v1/plugins/hello/greetings
  health                               the health of every probed service on every node
  health maintenance NODE_ID SERVICE on|off
                                       take a service on a node out of the balancer, or put it back
  user list                            the panel's users
  user add NAME [--owner ACCOUNT]      a panel user; the password is read from standard input
                                       (asked twice, not echoed, on a terminal), never from argv;
                                       --owner: an owner who reaches only that hosting account
  user passwd NAME                     a new password, read the same way; ends NAME's sessions
  user remove NAME

Hosting accounts:
  account list
  account show NAME
  account add NAME DOMAIN [--plan PLAN] [--limits LIMITS]
                                       an account with its primary domain; its uid and home are
                                       the manager's to give; every node gets the Unix user
  account edit NAME [--plan PLAN] [--limits LIMITS] [--revision N]
                                       a plan's limits are copied into the account when it is
                                       given; --revision: refuse if someone changed it since
  account suspend NAME --reason TEXT   its sites answer 503 until unsuspended
  account unsuspend NAME
  account remove NAME                  its sites and Unix user go; its files stay on the storage
  account resync [NAME]                send the accounts to the nodes again (a node that missed them)
  domain list ACCOUNT
  domain add ACCOUNT DOMAIN [--kind secondary|alias|subdomain] [--parent DOMAIN] [--nginx-extra TEXT]
                                       IDN may be typed in Unicode; aliases are served by their
                                       parent's site, subdomains end in their parent's name
  domain edit ACCOUNT DOMAIN --nginx-extra TEXT
  domain remove ACCOUNT DOMAIN
  plan list
  plan show NAME
  plan add NAME [--description TEXT] [--limits LIMITS]
  plan edit NAME [--description TEXT] [--limits LIMITS]
                                       accounts on the plan keep their limits until `plan apply`
  plan apply NAME                      give every account on the plan the plan's limits now
  plan remove NAME
  limits                               the limit names the loaded plugins declare
    LIMITS is NAME=N[,NAME=N...], N a whole number or "unlimited": http.domains=10,http.disk_mb=500

Load balancer (the lvs plugin), with ipvsadm's options:
  lb list [--stats | --rate]           virtual services, real servers, health and counters
  lb add    SERVICE_ADDRESS --service NAME [-s SCHEDULER] [-p [SECONDS]] [-M NETMASK] [-g|-m|-i]
  lb edit   SERVICE_ADDRESS [--service NAME] [-s SCHEDULER] [-p [SECONDS]] [-M NETMASK] [-g|-m|-i]
  lb delete SERVICE_ADDRESS
  lb add-server    SERVICE_ADDRESS -r ADDRESS:PORT [-w WEIGHT] [-g|-m|-i]
  lb edit-server   SERVICE_ADDRESS -r ADDRESS:PORT [-w WEIGHT] [-g|-m|-i]
  lb delete-server SERVICE_ADDRESS -r ADDRESS:PORT
  lb zero                              zero the counters
  lb sync                              send the balancer table to the director again
  lb schema                            the schedulers and forwarding methods the plugin offers
    SERVICE_ADDRESS is -t ADDRESS:PORT (TCP), -u ADDRESS:PORT (UDP), or -f MARK --listen
    ADDRESS:PORT[,ADDRESS:PORT...] (a firewall-mark group: one client sticks to one real server
    across all its ports). -s takes a scheduler `lb schema` lists (the plugin's own list, with
    its default). -p: persistence in seconds (default 300; -p alone 300; -p 0 off).
    -g direct routing, -m NAT, -i tunnel (`lb schema` names the default). Weights 0-65535
    (0: drained).
    --proxy-protocol v2 (add, edit): the userspace dataplane opens each connection to a real
    server with a PROXY protocol v2 header naming the client (none: off; IPVS refuses it).
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A password from standard input: on a terminal asked twice without echo, else the first line
// (so scripts pipe it: printf '%s\n' "$pw" | shoalctl user add NAME). Never from argv, which
// every user of the machine can read in the process list.
std::string readPassword(const std::string& prompt) {
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  auto readLine = [&](const std::string& ask) {
    termios saved{};
    if (terminal) {
      std::cerr << ask << ": " << std::flush;
      ::tcgetattr(STDIN_FILENO, &saved);
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    if (terminal) {
      ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
      std::cerr << "\n";
    }
    if (!got) throw UsageError("no password on standard input");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  };
  auto password = readLine(prompt);
  if (terminal && readLine("again") != password) throw UsageError("the two passwords differ");
  return password;
}

std::string percentEncoded(const std::string& text) {
  std::string out;
  Poco::URI::encode(text, "/?#&=+%", out);
  return out;
}

struct Options {
  bool json = false;
  std::string manager, tokenFile, caFile, configFile;
  std::vector<std::string> words;             // positional
  std::map<std::string, std::string> flags;   // --name value
  std::vector<std::string> switches;          // --name
};

Options parse(int argc, char** argv) {
  static const std::vector<std::string> valued{"--manager", "--token-file", "--ca", "--config", "--ttl",
                                               "--state",   "--limit",      "--payload", "--key", "--target", "--idempotency-key",
                                               "--batch", "--role", "--max-unavailable", "--service",
                                               "--listen", "--body", "--proxy-protocol", "--timeout",
                                               "--plan", "--limits", "--reason", "--kind", "--parent", "--nginx-extra",
                                               "--description", "--revision", "--owner"};
  static const std::vector<std::string> boolean{"--json", "--all", "--help", "-h", "--stats", "--rate", "--no-drain", "--wait",
                                                "-g", "-m", "-i", "-n"};
  // ipvsadm's short options of `lb`.
  static const std::vector<std::string> shortValued{"-t", "-u", "-f", "-s", "-M", "-r", "-w"};
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-p") {
      // ipvsadm's -p takes an optional timeout.
      if (i + 1 < argc && std::string(argv[i + 1]).find_first_not_of("0123456789") == std::string::npos &&
          argv[i + 1][0] != '\0')
        o.flags[a] = argv[++i];
      else
        o.flags[a] = "300";
    } else if (std::find(shortValued.begin(), shortValued.end(), a) != shortValued.end()) {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      o.flags[a] = argv[++i];
    } else if (a.rfind("--", 0) == 0 || (a.size() == 2 && a[0] == '-')) {
      auto eq = a.find('=');
      std::string name = eq == std::string::npos ? a : a.substr(0, eq);
      if (std::find(valued.begin(), valued.end(), name) != valued.end()) {
        std::string value;
        if (eq != std::string::npos) value = a.substr(eq + 1);
        else if (i + 1 < argc) value = argv[++i];
        else throw UsageError(name + " needs a value");
        o.flags[name] = value;
      } else if (std::find(boolean.begin(), boolean.end(), name) != boolean.end()) {
        o.switches.push_back(name);
      } else {
        throw UsageError("unknown option " + name);
      }
    } else {
      o.words.push_back(a);
    }
  }
  o.json = std::find(o.switches.begin(), o.switches.end(), "--json") != o.switches.end();
  return o;
}

bool has(const Options& o, const std::string& name) {
  return std::find(o.switches.begin(), o.switches.end(), name) != o.switches.end();
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string readToken(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw shoal::Error(shoal::ErrorCode::InvalidArgument, "cannot read the admin token file " + file +
                                                                     " (set --token-file or SHOAL_TOKEN)");
  std::string token;
  std::getline(in, token);
  return token;
}

std::int64_t parseId(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    long long id = std::stoll(text, &used);
    if (used == text.size() && id > 0) return id;
  } catch (const std::exception&) {
  }
  throw UsageError(what + " '" + text + "' must be a positive integer");
}

// `queue add --target`: all, node:ID or role:NAME, as the enqueue request's target object.
Poco::JSON::Object::Ptr queueTarget(const std::string& text) {
  Poco::JSON::Object::Ptr target = new Poco::JSON::Object;
  if (text == "all") {
    target->set("all", true);
  } else if (text.rfind("node:", 0) == 0) {
    target->set("node", parseId(text.substr(5), "--target node id"));
  } else if (text.rfind("role:", 0) == 0 && text.size() > 5) {
    target->set("role", text.substr(5));
  } else {
    throw UsageError("--target '" + text + "' must be all, node:ID or role:NAME");
  }
  return target;
}

std::string word(const Options& o, std::size_t i, const std::string& what) {
  if (o.words.size() <= i) throw UsageError("missing " + what);
  return o.words[i];
}

std::string text(const Poco::Dynamic::Var& v) { return v.isEmpty() ? "-" : v.convert<std::string>(); }

std::string when(const Poco::Dynamic::Var& ms) {
  if (ms.isEmpty()) return "never";
  std::time_t seconds = static_cast<std::time_t>(ms.convert<std::int64_t>() / 1000);
  std::ostringstream out;
  out << std::put_time(std::localtime(&seconds), "%Y-%m-%d %H:%M:%S");
  return out.str();
}

// Nodes as a table under a header, each column as wide as its widest cell.
void printNodes(const Array::Ptr& nodes) {
  std::vector<std::vector<std::string>> rows{{"ID", "HOSTNAME", "ADDRESS", "STATE", "ROLES", "OS", "LAST SEEN"}};
  for (std::size_t i = 0; nodes && i < nodes->size(); ++i) {
    auto n = nodes->getObject(static_cast<unsigned>(i));
    std::string roles;
    auto list = n->getArray("roles");
    for (std::size_t r = 0; list && r < list->size(); ++r)
      roles += (r ? "," : "") + list->getElement<std::string>(static_cast<unsigned>(r));
    rows.push_back({text(n->get("id")), text(n->get("hostname")), text(n->get("address")), text(n->get("state")),
                    roles.empty() ? "-" : roles,
                    text(n->get("os_id")) + " " + text(n->get("os_version")) + " " + text(n->get("arch")),
                    when(n->get("last_seen_ms"))});
  }
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c)
      line += c + 1 == row.size() ? row[c] : row[c] + std::string(widths[c] - row[c].size() + 2, ' ');
    std::cout << line << "\n";
  }
}

void printCommand(const Object::Ptr& c, bool withDeliveries) {
  auto deliveries = c->getArray("deliveries");
  std::map<std::string, int> states;
  for (std::size_t i = 0; deliveries && i < deliveries->size(); ++i)
    ++states[deliveries->getObject(static_cast<unsigned>(i))->getValue<std::string>("state")];
  std::string summary;
  for (const auto& [state, count] : states) summary += (summary.empty() ? "" : " ") + state + ":" + std::to_string(count);
  std::cout << std::left << std::setw(8) << text(c->get("id")) << std::setw(24) << text(c->get("kind"))
            << std::setw(20) << text(c->get("ordering_key")) << std::setw(14) << text(c->get("target"))
            << summary << "\n";
  if (!withDeliveries) return;
  std::cout << "payload: " << text(c->get("payload")) << "\n";
  for (std::size_t i = 0; deliveries && i < deliveries->size(); ++i) {
    auto d = deliveries->getObject(static_cast<unsigned>(i));
    std::cout << "  delivery " << text(d->get("id")) << " node " << text(d->get("node_id")) << ": "
              << text(d->get("state")) << ", " << text(d->get("attempts")) << " attempt(s)";
    if (!d->get("finished_at_ms").isEmpty()) std::cout << ", finished " << when(d->get("finished_at_ms"));
    std::string output = d->optValue<std::string>("output", "");
    if (!output.empty()) std::cout << "\n    " << output;
    std::cout << "\n";
  }
}

// "tcp:ADDRESS:PORT", "udp:..." or "fwm:MARK" from -t/-u/-f; UsageError without one.
std::string serviceKey(Options& o) {
  const int given = o.flags.count("-t") + o.flags.count("-u") + o.flags.count("-f");
  if (given != 1) throw UsageError("name the virtual service with one of -t ADDRESS:PORT, -u ADDRESS:PORT, -f MARK");
  if (o.flags.count("-f")) return "fwm:" + std::to_string(parseId(o.flags["-f"], "-f (firewall mark)"));
  return (o.flags.count("-t") ? "tcp:" : "udp:") + o.flags[o.flags.count("-t") ? "-t" : "-u"];
}

// Path-safe: IPv6 brackets and '%' are percent-encoded.
std::string pathSegment(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '[') out += "%5B";
    else if (c == ']') out += "%5D";
    else if (c == '%') out += "%25";
    else if (c == '/' || c == '?' || c == '#') throw UsageError("'" + text + "' contains '" + std::string(1, c) + "'");
    else out += c;
  }
  return out;
}

std::string forwardingFlag(const Options& o) {
  if (has(o, "-m")) return "nat";
  if (has(o, "-i")) return "tun";
  if (has(o, "-g")) return "dr";
  return "";
}

std::int64_t parseNumber(const std::string& text, const std::string& what, std::int64_t min, std::int64_t max) {
  try {
    std::size_t used = 0;
    long long n = std::stoll(text, &used);
    if (used == text.size() && n >= min && n <= max) return n;
  } catch (const std::exception&) {
  }
  throw UsageError(what + " '" + text + "' must be a number from " + std::to_string(min) + " to " + std::to_string(max));
}

// "http.domains=10,http.disk_mb=unlimited" as the API's limits object.
Object::Ptr parseLimitsFlag(const std::string& textValue) {
  Object::Ptr limits = new Object;
  std::istringstream list(textValue);
  for (std::string item; std::getline(list, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw UsageError("--limits takes NAME=N[,NAME=N...], not '" + item + "'");
    const auto name = item.substr(0, eq), value = item.substr(eq + 1);
    if (value == "unlimited")
      limits->set(name, Poco::Dynamic::Var());
    else if (value.find_first_not_of("0123456789") == std::string::npos && value.size() <= 15)
      limits->set(name, static_cast<std::int64_t>(std::stoll(value)));
    else
      throw UsageError("--limits: " + name + " must be a whole number or \"unlimited\", not '" + value + "'");
  }
  return limits;
}

// account, domain, plan and limits: the hosting routes of docs/api.md.
void hostingRequest(Options& o, const std::string& group, const std::string& verb, std::string& method,
                    std::string& path, Object::Ptr& body) {
  auto limitsInto = [&](Object::Ptr& b) {
    if (o.flags.count("--limits")) b->set("limits", parseLimitsFlag(o.flags["--limits"]));
  };
  if (group == "limits") {
    method = "GET", path = "/v1/limits";
  } else if (group == "account" && verb == "list") {
    method = "GET", path = "/v1/accounts";
  } else if (group == "account" && (verb == "show" || verb == "remove" || verb == "unsuspend")) {
    const auto name = percentEncoded(word(o, 2, "account name"));
    method = verb == "show" ? "GET" : verb == "remove" ? "DELETE" : "POST";
    path = "/v1/accounts/" + name + (verb == "unsuspend" ? "/unsuspend" : "");
  } else if (group == "account" && verb == "add") {
    method = "POST", path = "/v1/accounts", body = new Object;
    body->set("name", word(o, 2, "account name"));
    body->set("domain", word(o, 3, "primary domain"));
    if (o.flags.count("--plan")) body->set("plan", o.flags["--plan"]);
    limitsInto(body);
  } else if (group == "account" && verb == "edit") {
    method = "PUT", path = "/v1/accounts/" + percentEncoded(word(o, 2, "account name")), body = new Object;
    if (o.flags.count("--plan")) body->set("plan", o.flags["--plan"]);
    limitsInto(body);
    if (o.flags.count("--revision")) body->set("revision", parseId(o.flags["--revision"], "--revision"));
    if (body->size() == 0) throw UsageError("account edit needs --plan, --limits or both");
  } else if (group == "account" && verb == "suspend") {
    if (!o.flags.count("--reason")) throw UsageError("account suspend needs --reason TEXT (the owner and the logs see it)");
    method = "POST", path = "/v1/accounts/" + percentEncoded(word(o, 2, "account name")) + "/suspend", body = new Object;
    body->set("reason", o.flags["--reason"]);
  } else if (group == "account" && verb == "resync") {
    method = "POST", path = "/v1/accounts/resync", body = new Object;
    if (o.words.size() > 2) body->set("account", o.words[2]);
  } else if (group == "domain" && verb == "list") {
    method = "GET", path = "/v1/accounts/" + percentEncoded(word(o, 2, "account name")) + "/domains";
  } else if (group == "domain" && verb == "add") {
    method = "POST", path = "/v1/accounts/" + percentEncoded(word(o, 2, "account name")) + "/domains", body = new Object;
    body->set("name", word(o, 3, "domain"));
    if (o.flags.count("--kind")) body->set("kind", o.flags["--kind"]);
    if (o.flags.count("--parent")) body->set("parent", o.flags["--parent"]);
    if (o.flags.count("--nginx-extra")) body->set("nginx_extra", o.flags["--nginx-extra"]);
  } else if (group == "domain" && (verb == "edit" || verb == "remove")) {
    path = "/v1/accounts/" + percentEncoded(word(o, 2, "account name")) + "/domains/" + percentEncoded(word(o, 3, "domain"));
    if (verb == "remove") {
      method = "DELETE";
    } else {
      if (!o.flags.count("--nginx-extra")) throw UsageError("domain edit needs --nginx-extra TEXT (\"\" to clear it)");
      method = "PUT", body = new Object;
      body->set("nginx_extra", o.flags["--nginx-extra"]);
    }
  } else if (group == "plan" && verb == "list") {
    method = "GET", path = "/v1/plans";
  } else if (group == "plan" && (verb == "show" || verb == "remove" || verb == "apply")) {
    const auto name = percentEncoded(word(o, 2, "plan name"));
    method = verb == "show" ? "GET" : verb == "remove" ? "DELETE" : "POST";
    path = "/v1/plans/" + name + (verb == "apply" ? "/apply" : "");
  } else if (group == "plan" && (verb == "add" || verb == "edit")) {
    const auto name = word(o, 2, "plan name");
    body = new Object;
    if (verb == "add") {
      method = "POST", path = "/v1/plans";
      body->set("name", name);
    } else {
      method = "PUT", path = "/v1/plans/" + percentEncoded(name);
    }
    if (o.flags.count("--description")) body->set("description", o.flags["--description"]);
    limitsInto(body);
  } else {
    throw UsageError("unknown command '" + group + (verb.empty() ? "" : " " + verb) + "'");
  }
}

std::string limitsText(const Object::Ptr& limits) {
  std::string out;
  for (const auto& [name, value] : *limits) out += (out.empty() ? "" : ", ") + name + "=" + (value.isEmpty() ? "unlimited" : value.convert<std::string>());
  return out.empty() ? "none" : out;
}

void printAccount(const Object::Ptr& a, bool full) {
  std::cout << std::left << std::setw(20) << text(a->get("name")) << std::setw(8) << text(a->get("uid"))
            << std::setw(11) << text(a->get("state"));
  auto domains = a->getArray("domains");
  std::cout << (domains && domains->size() ? domains->getObject(0)->getValue<std::string>("unicode") : "-");
  if (domains && domains->size() > 1) std::cout << " (+" << domains->size() - 1 << ")";
  std::cout << "\n";
  if (!full) return;
  std::cout << "  home     " << text(a->get("home")) << "\n  plan     " << (a->getValue<std::string>("plan").empty() ? "-" : a->getValue<std::string>("plan"))
            << "\n  limits   " << limitsText(a->getObject("limits")) << "\n  revision " << text(a->get("revision")) << "\n";
  if (a->getValue<std::string>("state") == "suspended") std::cout << "  reason   " << text(a->get("suspend_reason")) << "\n";
  for (std::size_t i = 0; domains && i < domains->size(); ++i) {
    auto d = domains->getObject(static_cast<unsigned>(i));
    std::cout << "  domain   " << d->getValue<std::string>("unicode") << " (" << d->getValue<std::string>("kind");
    if (!d->getValue<std::string>("parent").empty()) std::cout << " of " << d->getValue<std::string>("parent");
    std::cout << ")\n";
  }
  auto certificate = a->getObject("certificate");
  if (certificate)
    std::cout << "  certificate " << text(certificate->get("issuer")) << ", until " << when(certificate->get("not_after_ms")) << "\n";
}

void printCommands(const Object::Ptr& b) {
  auto commands = b->getArray("commands");
  if (commands && commands->size()) {
    std::cout << "sent to the nodes as command(s)";
    for (std::size_t i = 0; i < commands->size(); ++i) std::cout << " " << text(commands->get(static_cast<unsigned>(i)));
    std::cout << " (shoalctl queue show ID)\n";
  }
  if (b->has("warning")) std::cerr << "warning: " << text(b->get("warning")) << "\n";
}

void lbRequest(Options& o, const std::string& verb, std::string& method, std::string& path, Object::Ptr& body) {
  const std::string base = "/v1/plugins/lvs";
  if (verb == "list") {
    method = "GET", path = base + "/services";
    return;
  }
  if (verb == "schema") {
    method = "GET", path = base + "/schema";
    return;
  }
  if (verb == "zero" || verb == "sync") {
    method = "POST", path = base + "/" + verb, body = new Object;
    return;
  }
  static const std::vector<std::string> verbs{"add", "edit", "delete", "add-server", "edit-server", "delete-server"};
  if (std::find(verbs.begin(), verbs.end(), verb) == verbs.end())
    throw UsageError("unknown command 'lb " + verb + "'");
  const std::string key = serviceKey(o);
  const std::string servicePath = base + "/services/" + pathSegment(key);
  if (verb == "add" || verb == "edit") {
    body = new Object;
    if (verb == "add") {
      if (!o.flags.count("--service")) throw UsageError("lb add needs --service NAME (http, https, smtp, imap, pop3, ftp...)");
      if (key.rfind("fwm:", 0) == 0) {
        body->set("fwmark", parseNumber(key.substr(4), "-f", 1, 4294967295LL));
        if (!o.flags.count("--listen")) throw UsageError("-f MARK needs --listen ADDRESS:PORT[,ADDRESS:PORT...]");
        Array::Ptr listeners = new Array;
        std::istringstream list(o.flags["--listen"]);
        for (std::string item; std::getline(list, item, ',');)
          if (!item.empty()) listeners->add(item);
        body->set("listeners", listeners);
      } else {
        const std::string hostPort = key.substr(4);
        const auto colon = hostPort.rfind(':');
        if (colon == std::string::npos) throw UsageError("'" + hostPort + "' must be ADDRESS:PORT");
        std::string host = hostPort.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        body->set("protocol", key.substr(0, 3));
        body->set("address", host);
        body->set("port", parseNumber(hostPort.substr(colon + 1), "port", 1, 65535));
      }
    }
    if (o.flags.count("--service")) body->set("service", o.flags["--service"]);
    if (o.flags.count("-s")) body->set("scheduler", o.flags["-s"]);
    if (o.flags.count("-p")) body->set("persistence", parseNumber(o.flags["-p"], "-p", 0, 31536000));
    if (o.flags.count("-M")) body->set("netmask", o.flags["-M"]);
    if (!forwardingFlag(o).empty()) body->set("forwarding", forwardingFlag(o));
    if (o.flags.count("--proxy-protocol")) body->set("proxy_protocol", o.flags["--proxy-protocol"]);
    method = verb == "add" ? "POST" : "PUT";
    path = verb == "add" ? base + "/services" : servicePath;
    return;
  }
  if (verb == "delete") {
    method = "DELETE", path = servicePath;
    return;
  }
  if (verb == "add-server" || verb == "edit-server" || verb == "delete-server") {
    if (!o.flags.count("-r")) throw UsageError("lb " + verb + " needs -r ADDRESS:PORT (the real server)");
    std::string real = o.flags["-r"];
    const auto colon = real.rfind(':');
    const bool hasPort = colon != std::string::npos && real.find(']') == std::string::npos ? real.find(':') == colon
                                                                                            : real.back() != ']';
    if (!hasPort) real += ":0";  // a firewall-mark group's real server: the client's port
    if (verb == "delete-server") {
      method = "DELETE", path = servicePath + "/members/" + pathSegment(real);
      return;
    }
    body = new Object;
    if (verb == "add-server") {
      const auto c = real.rfind(':');
      std::string host = real.substr(0, c);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      body->set("address", host);
      body->set("port", parseNumber(real.substr(c + 1), "real server port", 0, 65535));
    }
    if (o.flags.count("-w")) body->set("weight", parseNumber(o.flags["-w"], "-w", 0, 65535));
    if (!forwardingFlag(o).empty()) body->set("forwarding", forwardingFlag(o));
    method = verb == "add-server" ? "POST" : "PUT";
    path = verb == "add-server" ? servicePath + "/members" : servicePath + "/members/" + pathSegment(real);
    return;
  }
  throw UsageError("unknown command 'lb " + verb + "'");
}

// `lb schema`: the plugin's lists, as GET /v1/plugins/lvs/schema gives them.
void printLbSchema(const Object::Ptr& schema) {
  auto print = [&](const char* title, const char* list, const char* fallback) {
    std::cout << title << " (default " << text(schema->get(fallback)) << "):\n";
    auto choices = schema->getArray(list);
    for (std::size_t i = 0; choices && i < choices->size(); ++i) {
      auto c = choices->getObject(static_cast<unsigned>(i));
      std::cout << "  " << std::left << std::setw(8) << text(c->get("name")) << text(c->get("label")) << "\n";
    }
  };
  print("Schedulers", "schedulers", "default_scheduler");
  print("Forwarding methods", "forwarding", "default_forwarding");
}

std::string number(const Object::Ptr& o, const char* name) {
  return o && o->has(name) ? o->get(name).convert<std::string>() : "-";
}

void printBalancer(const Object::Ptr& b, bool stats, bool rate) {
  const char* forwardNames[] = {"dr", "Route", "nat", "Masq", "tun", "Tunnel"};
  auto forwardName = [&](const std::string& f) {
    for (int i = 0; i < 6; i += 2)
      if (f == forwardNames[i]) return std::string(forwardNames[i + 1]);
    return f;
  };
  std::cout << "balancer dataplane: " << (b->get("dataplane").isEmpty() ? std::string("on the director (counters there)") : text(b->get("dataplane"))) << "\n";
  if (stats) {
    std::cout << "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
                 "  -> RemoteAddress:Port\n";
  } else if (rate) {
    std::cout << "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
                 "  -> RemoteAddress:Port\n";
  } else {
    std::cout << "Prot LocalAddress:Port Scheduler Flags\n"
                 "  -> RemoteAddress:Port           Forward Weight Effective ActiveConn InActConn Health\n";
  }
  auto services = b->getArray("services");
  auto figures = [&](const Object::Ptr& counters) {
    std::ostringstream out;
    const char* statNames[] = {"connections", "packets_in", "packets_out", "bytes_in", "bytes_out"};
    const char* rateNames[] = {"cps", "packets_in_per_second", "packets_out_per_second", "bytes_in_per_second",
                               "bytes_out_per_second"};
    for (int i = 0; i < 5; ++i) out << std::right << std::setw(9) << number(counters, stats ? statNames[i] : rateNames[i]);
    return out.str();
  };
  for (std::size_t i = 0; services && i < services->size(); ++i) {
    auto s = services->getObject(static_cast<unsigned>(i));
    std::string where;
    if (s->has("fwmark")) {
      where = "FWM  " + text(s->get("fwmark"));
    } else {
      std::string address = text(s->get("address"));
      if (address.find(':') != std::string::npos) address = "[" + address + "]";
      where = (text(s->get("protocol")) == "udp" ? "UDP  " : "TCP  ") + address + ":" + text(s->get("port"));
    }
    if (stats || rate) {
      std::cout << std::left << std::setw(33) << where << figures(s->getObject("counters")) << "\n";
    } else {
      std::cout << where << " " << text(s->get("scheduler"));
      if (s->getValue<std::int64_t>("persistence") > 0) {
        std::cout << " persistent " << text(s->get("persistence"));
        if (!s->getValue<std::string>("netmask").empty()) std::cout << " mask " << text(s->get("netmask"));
      }
      if (s->has("proxy_protocol")) std::cout << " proxy-protocol " << text(s->get("proxy_protocol"));
      std::cout << "  (" << text(s->get("service")) << ")\n";
    }
    // The director could not hold this one (it holds the others); the reason is its own.
    if (s->optValue<std::string>("status", "") == "failed")
      std::cout << "  !! not applied on the director: " << s->optValue<std::string>("error", "") << "\n";
    auto members = s->getArray("members");
    for (std::size_t m = 0; members && m < members->size(); ++m) {
      auto r = members->getObject(static_cast<unsigned>(m));
      std::string address = text(r->get("address"));
      if (address.find(':') != std::string::npos) address = "[" + address + "]";
      const std::string real = "  -> " + address + ":" + text(r->get("port"));
      if (stats || rate) {
        std::cout << std::left << std::setw(33) << real << figures(r->getObject("counters")) << "\n";
        continue;
      }
      std::string health = text(r->get("health"));
      if (!r->getValue<bool>("serving")) health += ", drained";
      std::cout << std::left << std::setw(34) << real << std::setw(8)
                << forwardName(r->optValue<std::string>("forwarding", s->getValue<std::string>("forwarding")))
                << std::setw(7) << text(r->get("weight")) << std::setw(10) << text(r->get("effective_weight"))
                << std::setw(11) << number(r, "active_connections") << std::setw(10) << number(r, "inactive_connections")
                << health << "\n";
    }
  }
  if (!services || services->size() == 0) std::cout << "no virtual services; add one with: shoalctl lb add -t ADDRESS:PORT --service NAME\n";
}

void printHealth(const Object::Ptr& b) {
  auto list = b->getArray("services");
  std::cout << std::left << std::setw(6) << "NODE" << std::setw(22) << "ADDRESS" << std::setw(10) << "SERVICE"
            << std::setw(11) << "STATE" << std::setw(9) << "SERVING" << "REASON\n";
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    auto h = list->getObject(static_cast<unsigned>(i));
    std::string state = text(h->get("state"));
    if (h->getValue<bool>("maintenance")) state += "*";
    std::cout << std::left << std::setw(6) << text(h->get("node_id"))
              << std::setw(22) << (text(h->get("address")) + ":" + text(h->get("port"))) << std::setw(10)
              << text(h->get("service")) << std::setw(11) << state << std::setw(9)
              << (h->getValue<bool>("serving") ? "yes" : "no") << h->optValue<std::string>("reason", "") << "\n";
  }
  if (!list || list->size() == 0)
    std::cout << "no probed services: give nodes roles named after services (shoalctl node set-roles ID http)\n";
  else
    std::cout << "(* = in maintenance)\n";
}

int statusFor(const ApiReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return kExitOk;
  return reply.status == 404 ? kExitNotFound : kExitRefused;
}

// ---- node drain --wait -----------------------------------------------------------------

// --timeout of `node drain --wait`: 1-86400 seconds, 300 when absent.
std::int64_t drainTimeoutSeconds(const Options& o) {
  if (!o.flags.count("--timeout")) return 300;
  const auto seconds = parseId(o.flags.at("--timeout"), "--timeout (seconds)");
  if (seconds > 86400) throw UsageError("--timeout must be at most 86400 seconds");
  return seconds;
}

// "3 connection(s) open: http tcp:10.0.0.1:80 2 active, 1 inactive" or why it is unknown.
std::string describeConnections(const Object::Ptr& c) {
  if (c->get("connections").isEmpty()) {
    std::string why;
    auto unknown = c->getArray("unknown");
    for (std::size_t i = 0; unknown && i < unknown->size(); ++i) {
      auto u = unknown->getObject(static_cast<unsigned>(i));
      const auto plugin = u->optValue<std::string>("plugin", "");
      why += (why.empty() ? "" : "; ") + (plugin.empty() ? "" : plugin + ": ") + u->optValue<std::string>("reason", "");
    }
    return "connections unknown (" + why + ")";
  }
  std::string line = text(c->get("connections")) + " connection(s) open";
  auto detail = c->getArray("detail");
  const char* separator = ": ";
  for (std::size_t i = 0; detail && i < detail->size(); ++i) {
    auto d = detail->getObject(static_cast<unsigned>(i));
    if (d->getValue<std::int64_t>("active") + d->getValue<std::int64_t>("inactive") == 0) continue;
    line += separator + text(d->get("service")) + " " + text(d->get("where")) + " " + text(d->get("active")) +
            " active, " + text(d->get("inactive")) + " inactive";
    separator = "; ";
  }
  std::string serving;
  auto inRotation = c->getArray("serving");
  for (std::size_t i = 0; inRotation && i < inRotation->size(); ++i)
    serving += (serving.empty() ? "" : ", ") + inRotation->getElement<std::string>(static_cast<unsigned>(i));
  if (!serving.empty()) line += " (still in rotation: " + serving + ")";
  return line;
}

// Follows a drained node's connections once a second until none is left (exit 0), the
// count is unknown, or the timeout passes (exit 1).
int waitUntilEmpty(ManagerClient& client, const std::string& nodeId, const Options& o) {
  const auto timeout = std::chrono::seconds(drainTimeoutSeconds(o));
  const auto started = std::chrono::steady_clock::now();
  const std::string path = "/v1/nodes/" + nodeId + "/connections";
  if (!o.json) std::cout << "node " << nodeId << " is draining" << std::endl;
  for (;;) {
    ApiReply reply = client.call("GET", path);
    if (statusFor(reply) != kExitOk) {
      std::cerr << "shoalctl: " << reply.errorMessage() << "\n";
      return statusFor(reply);
    }
    const auto& c = reply.body;
    if (o.json) {
      Poco::JSON::Stringifier::condense(c, std::cout);
      std::cout << std::endl;
    } else {
      std::cout << "node " << nodeId << ": " << describeConnections(c) << std::endl;
    }
    if (c->get("connections").isEmpty()) {
      std::cerr << "shoalctl: cannot tell when node " << nodeId << " is empty: " << describeConnections(c) << "\n";
      return kExitRefused;
    }
    auto serving = c->getArray("serving");
    if (c->getValue<std::int64_t>("connections") == 0 && (!serving || serving->size() == 0)) {
      if (!o.json) std::cout << "node " << nodeId << " is empty" << std::endl;
      return kExitOk;
    }
    if (std::chrono::steady_clock::now() - started >= timeout) {
      std::cerr << "shoalctl: node " << nodeId << " still has " << text(c->get("connections"))
                << " connection(s) open after " << timeout.count() << " s\n";
      return kExitRefused;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "shoalctl: " << e.what() << "\n" << kUsage;
    return kExitUsage;
  }
  if (has(o, "--help") || has(o, "-h") || o.words.empty()) {
    (o.words.empty() && !has(o, "--help") && !has(o, "-h") ? std::cerr : std::cout) << kUsage;
    return o.words.empty() && !has(o, "--help") && !has(o, "-h") ? kExitUsage : kExitOk;
  }

  // Settings: flag, environment, config file, default.
  Poco::AutoPtr<Poco::Util::IniFileConfiguration> file;
  std::string configFile = o.flags.count("--config") ? o.flags["--config"] : env("SHOAL_CTL_CONFIG");
  if (configFile.empty() && std::filesystem::exists("/etc/shoal/shoalctl.conf")) configFile = "/etc/shoal/shoalctl.conf";
  try {
    if (!configFile.empty()) file = new Poco::Util::IniFileConfiguration(configFile);
  } catch (const std::exception& e) {
    std::cerr << "shoalctl: cannot read " << configFile << ": " << e.what() << "\n";
    return kExitUsage;
  }
  auto setting = [&](const char* flag, const char* variable, const char* key, const char* fallback) {
    if (o.flags.count(flag)) return o.flags[flag];
    if (!env(variable).empty()) return env(variable);
    if (file && file->hasProperty(std::string("shoalctl.") + key)) return file->getString(std::string("shoalctl.") + key);
    return std::string(fallback);
  };
  const std::string manager = setting("--manager", "SHOAL_MANAGER", "manager", "127.0.0.1:7443");
  const std::string caFile = setting("--ca", "SHOAL_CA", "ca_file", "/var/lib/shoal/tls/ca.crt");

  try {
    std::string token = o.flags.count("--token-file") ? readToken(o.flags["--token-file"]) : env("SHOAL_TOKEN");
    if (token.empty()) token = readToken(setting("--token-file", "SHOAL_TOKEN_FILE", "token_file", "/var/lib/shoal/admin.token"));
    if (!std::filesystem::exists(caFile)) {
      std::cerr << "shoalctl: the manager's CA certificate " << caFile << " does not exist (set --ca or SHOAL_CA)\n";
      return kExitUsage;
    }
    ManagerClient client(manager, shoal::tls::makeClientContext(caFile), token);

    const std::string group = o.words[0];
    const std::string verb = o.words.size() > 1 ? o.words[1] : "";
    std::string method, path;
    Object::Ptr body;
    std::map<std::string, std::string> headers;  // sent with the request
    if (group == "cluster") {
      method = "GET", path = "/v1/cluster";
    } else if (group == "node" && verb == "join-token") {
      method = "POST", path = "/v1/join-tokens", body = new Object;
      if (o.flags.count("--ttl")) body->set("ttl_seconds", parseId(o.flags["--ttl"], "--ttl"));
    } else if (group == "node" && verb == "list") {
      method = "GET", path = std::string("/v1/nodes") + (has(o, "--all") ? "?all=1" : "");
    } else if (group == "node" && (verb == "show" || verb == "remove")) {
      method = verb == "show" ? "GET" : "DELETE";
      path = "/v1/nodes/" + std::to_string(parseId(word(o, 2, "node id"), "node id"));
    } else if (group == "node" && verb == "set-roles") {
      method = "PUT", path = "/v1/nodes/" + std::to_string(parseId(word(o, 2, "node id"), "node id")) + "/roles";
      Array::Ptr roles = new Array;
      std::istringstream list(word(o, 3, "roles (comma-separated, \"\" for none)"));
      for (std::string role; std::getline(list, role, ',');)
        if (!role.empty()) roles->add(role);
      body = new Object;
      body->set("roles", roles);
    } else if (group == "node" && verb == "connections") {
      method = "GET", path = "/v1/nodes/" + std::to_string(parseId(word(o, 2, "node id"), "node id")) + "/connections";
    } else if (group == "node" && (verb == "drain" || verb == "undrain")) {
      if ((has(o, "--wait") || o.flags.count("--timeout")) && verb != "drain")
        throw UsageError("--wait and --timeout belong to node drain");
      if (o.flags.count("--timeout") && !has(o, "--wait")) throw UsageError("--timeout needs --wait");
      drainTimeoutSeconds(o);  // a bad --timeout is refused before the node is drained
      method = "PUT", path = "/v1/nodes/" + std::to_string(parseId(word(o, 2, "node id"), "node id")) + "/draining";
      body = new Object;
      body->set("draining", verb == "drain");
    } else if (group == "queue" && verb == "list") {
      method = "GET", path = "/v1/commands?limit=" + (o.flags.count("--limit") ? std::to_string(parseId(o.flags["--limit"], "--limit")) : std::string("50"));
      if (o.flags.count("--state")) path += "&state=" + o.flags["--state"];
    } else if (group == "queue" && verb == "show") {
      method = "GET", path = "/v1/commands/" + std::to_string(parseId(word(o, 2, "command id"), "command id"));
    } else if (group == "queue" && (verb == "retry" || verb == "skip")) {
      method = "POST", path = "/v1/deliveries/" + std::to_string(parseId(word(o, 2, "delivery id"), "delivery id")) + "/" + verb;
    } else if (group == "queue" && verb == "add") {
      method = "POST", path = "/v1/commands", body = new Object;
      body->set("kind", word(o, 2, "command kind"));
      // An enqueue request (docs/api.md): the payload as its JSON text, the target as an object.
      if (o.flags.count("--payload")) body->set("payload", o.flags["--payload"]);
      if (o.flags.count("--key")) body->set("key", o.flags["--key"]);
      body->set("target", queueTarget(o.flags.count("--target") ? o.flags["--target"] : "all"));
      if (o.flags.count("--idempotency-key")) {
        if (o.flags["--idempotency-key"].empty()) throw UsageError("--idempotency-key needs a key");
        headers["Idempotency-Key"] = o.flags["--idempotency-key"];
      }
    } else if (group == "service" && verb == "rollouts") {
      method = "GET", path = "/v1/rollouts?limit=" + (o.flags.count("--limit") ? std::to_string(parseId(o.flags["--limit"], "--limit")) : std::string("20"));
    } else if (group == "service" && verb == "restart") {
      if (!has(o, "--all")) throw UsageError("service restart needs --all (every node, batch by batch)");
      method = "POST", path = "/v1/rollouts", body = new Object;
      body->set("service", word(o, 2, "service name"));
      const char* limit = o.flags.count("--max-unavailable") ? "--max-unavailable" : "--batch";
      body->set("max_unavailable", o.flags.count(limit) ? parseId(o.flags[limit], limit) : 1);
      if (has(o, "--no-drain")) body->set("drain", false);
      if (o.flags.count("--role")) body->set("role", o.flags["--role"]);
    } else if (group == "health" && verb.empty()) {
      method = "GET", path = "/v1/health/services";
    } else if (group == "health" && verb == "maintenance") {
      method = "PUT", path = "/v1/nodes/" + std::to_string(parseId(word(o, 2, "node id"), "node id")) + "/maintenance";
      body = new Object;
      body->set("service", word(o, 3, "service name"));
      const auto on = word(o, 4, "on or off");
      if (on != "on" && on != "off") throw UsageError("maintenance must be on or off, not '" + on + "'");
      body->set("on", on == "on");
    } else if (group == "user" && verb == "list") {
      method = "GET", path = "/v1/users";
    } else if (group == "user" && (verb == "add" || verb == "passwd")) {
      const auto name = word(o, 2, "user name");
      body = new Object;
      body->set("password", readPassword("password for " + name));
      if (verb == "add") {
        method = "POST", path = "/v1/users";
        body->set("name", name);
        if (o.flags.count("--owner")) {
          body->set("kind", "owner");
          body->set("account", o.flags["--owner"]);
        }
      } else {
        method = "PUT", path = "/v1/users/" + percentEncoded(name) + "/password";
      }
    } else if (group == "user" && verb == "remove") {
      method = "DELETE", path = "/v1/users/" + percentEncoded(word(o, 2, "user name"));
    } else if (group == "lb") {
      lbRequest(o, verb, method, path, body);
    } else if (group == "account" || group == "domain" || group == "plan" || group == "limits") {
      hostingRequest(o, group, verb, method, path, body);
    } else if (group == "api") {
      method = verb;
      if (method != "GET" && method != "POST" && method != "PUT" && method != "DELETE")
        throw UsageError("api needs a method: GET, POST, PUT or DELETE");
      path = word(o, 2, "path (/v1/...)");
      if (path.rfind("/v1/", 0) != 0) throw UsageError("the path must start with /v1/");
      if (o.flags.count("--body")) {
        try {
          body = Poco::JSON::Parser().parse(o.flags["--body"]).extract<Object::Ptr>();
        } catch (const std::exception&) {
          throw UsageError("--body must be a JSON object");
        }
      }
    } else {
      throw UsageError("unknown command '" + group + (verb.empty() ? "" : " " + verb) + "'");
    }

    ApiReply reply = client.call(method, path, body, std::chrono::seconds(30), headers);
    int status = statusFor(reply);
    if (group == "service" && verb == "restart" && status == kExitOk) {
      // Follow the rollout until it ends, printing each node's progress as it changes.
      const std::string rolloutPath = "/v1/rollouts/" + reply.body->getValue<std::string>("id");
      std::map<std::string, std::string> shown;
      for (;;) {
        auto nodes = reply.body->getArray("nodes");
        for (std::size_t i = 0; !o.json && nodes && i < nodes->size(); ++i) {
          auto n = nodes->getObject(static_cast<unsigned>(i));
          auto host = n->getValue<std::string>("hostname") + " (node " + n->getValue<std::string>("id") + ")";
          auto state = n->getValue<std::string>("state");
          if (shown[host] != state) std::cout << host << ": " << state << std::endl;
          shown[host] = state;
        }
        const auto state = reply.body->getValue<std::string>("state");
        if (state != "running") {
          if (o.json) {
            Poco::JSON::Stringifier::condense(reply.body, std::cout);
            std::cout << "\n";
          } else {
            std::cout << reply.body->getValue<std::string>("message") << "\n";
          }
          return state == "done" ? kExitOk : kExitRefused;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        reply = client.call("GET", rolloutPath);
        if (statusFor(reply) != kExitOk) {
          std::cerr << "shoalctl: " << reply.errorMessage() << "\n";
          return statusFor(reply);
        }
      }
    }
    if (group == "node" && verb == "drain" && has(o, "--wait") && status == kExitOk)
      return waitUntilEmpty(client, reply.body->getValue<std::string>("id"), o);
    if (o.json || (group == "api" && status == kExitOk)) {
      Poco::JSON::Stringifier::condense(reply.body, std::cout);
      std::cout << "\n";
    }
    if (status != kExitOk) {
      std::cerr << "shoalctl: " << reply.errorMessage() << "\n";
      return status;
    }
    if (o.json || group == "api") return kExitOk;

    auto& b = reply.body;
    if (group == "cluster") {
      auto q = b->getObject("queue");
      std::cout << "cluster " << text(b->get("cluster_id")) << "\nmanager " << text(b->get("manager"))
                << "\nCA      " << text(b->get("ca_fingerprint")) << "\nversion " << text(b->get("version"))
                << "\nqueue   pending " << text(q->get("pending")) << ", running " << text(q->get("running"))
                << ", failed " << text(q->get("failed")) << "\n";
    } else if (group == "node" && verb == "join-token") {
      std::cout << b->getValue<std::string>("token") << "\n";
      std::cerr << "expires " << when(b->get("expires_at_ms")) << "; on the new node run:\n  shoald --role node --join "
                << b->getValue<std::string>("token") << "\n";
    } else if (group == "node" && verb == "list") {
      auto nodes = b->getArray("nodes");
      if (nodes->size() == 0) {
        std::cout << "no nodes; add one with: shoalctl node join-token\n";
      } else {
        printNodes(nodes);
      }
    } else if (group == "node" && verb == "connections") {
      std::cout << "node " << text(b->get("node_id")) << ": " << describeConnections(b) << "\n";
    } else if (group == "node") {
      if (b->has("id")) {
        Array::Ptr one = new Array;
        one->add(b);
        printNodes(one);
      }
    } else if (group == "queue" && verb == "list") {
      auto commands = b->getArray("commands");
      for (std::size_t i = 0; i < commands->size(); ++i) printCommand(commands->getObject(static_cast<unsigned>(i)), false);
    } else if (group == "queue" && (verb == "show" || verb == "add")) {
      printCommand(b, true);
    } else if (group == "service") {
      auto rollouts = b->getArray("rollouts");
      for (std::size_t i = 0; i < rollouts->size(); ++i) {
        auto r = rollouts->getObject(static_cast<unsigned>(i));
        std::map<std::string, int> states;
        auto nodes = r->getArray("nodes");
        for (std::size_t n = 0; nodes && n < nodes->size(); ++n)
          ++states[nodes->getObject(static_cast<unsigned>(n))->getValue<std::string>("state")];
        std::string summary;
        for (const auto& [state, count] : states) summary += (summary.empty() ? "" : " ") + state + ":" + std::to_string(count);
        std::cout << std::left << std::setw(6) << text(r->get("id")) << std::setw(22) << text(r->get("kind"))
                  << std::setw(10) << text(r->get("state")) << std::setw(28) << summary << text(r->get("message")) << "\n";
      }
      if (rollouts->size() == 0) std::cout << "no rollouts yet\n";
    } else if (group == "queue") {
      std::cout << "delivery " << text(b->get("id")) << " is " << text(b->get("state")) << "\n";
    } else if (group == "health" && verb.empty()) {
      printHealth(b);
    } else if (group == "health") {
      std::cout << text(b->get("service")) << " on node " << text(b->get("node_id"))
                << (b->getValue<bool>("maintenance") ? " is in maintenance (drained)" : " is back in rotation") << "\n";
    } else if (group == "user" && verb == "list") {
      auto users = b->getArray("users");
      for (std::size_t i = 0; i < users->size(); ++i) {
        auto u = users->getObject(static_cast<unsigned>(i));
        const bool owner = u->optValue<std::string>("kind", "admin") == "owner";
        std::cout << std::left << std::setw(24) << text(u->get("name")) << std::setw(24)
                  << (owner ? "owner of " + text(u->get("account")) : std::string("admin")) << "since "
                  << when(u->get("created_at_ms")) << (u->getValue<bool>("disabled") ? "  (disabled)" : "") << "\n";
      }
    } else if (group == "user") {
      if (verb == "add")
        std::cout << "added panel user " << text(b->get("name"))
                  << (b->optValue<std::string>("kind", "admin") == "owner" ? ", owner of " + text(b->get("account")) : "")
                  << "\n";
      if (verb == "passwd") std::cout << "changed the password of " << text(b->get("name")) << "; their sessions ended\n";
      if (verb == "remove") std::cout << "removed panel user " << text(b->get("deleted")) << "\n";
    } else if (group == "limits") {
      auto limits = b->getArray("limits");
      for (std::size_t i = 0; i < limits->size(); ++i) {
        auto l = limits->getObject(static_cast<unsigned>(i));
        std::cout << std::left << std::setw(24) << text(l->get("name")) << text(l->get("label")) << "\n";
      }
      if (limits->size() == 0) std::cout << "no loaded plugin declares a limit\n";
    } else if (group == "account" && verb == "list") {
      auto accounts = b->getArray("accounts");
      for (std::size_t i = 0; i < accounts->size(); ++i) printAccount(accounts->getObject(static_cast<unsigned>(i)), false);
      if (accounts->size() == 0) std::cout << "no accounts; add one with: shoalctl account add NAME DOMAIN\n";
    } else if (group == "account" && verb == "show") {
      printAccount(b, true);
    } else if (group == "account" && verb == "resync") {
      auto announced = b->getArray("announced");
      std::cout << "announced " << announced->size() << " account(s) to the nodes again\n";
    } else if (group == "account" || (group == "domain" && verb != "list")) {
      if (b->has("account")) printAccount(b->getObject("account"), group == "domain");
      printCommands(b);
    } else if (group == "domain") {
      auto domains = b->getArray("domains");
      for (std::size_t i = 0; i < domains->size(); ++i) {
        auto d = domains->getObject(static_cast<unsigned>(i));
        std::cout << std::left << std::setw(40) << d->getValue<std::string>("unicode") << std::setw(11)
                  << d->getValue<std::string>("kind") << d->getValue<std::string>("parent") << "\n";
      }
    } else if (group == "plan" && verb == "list") {
      auto plans = b->getArray("plans");
      for (std::size_t i = 0; i < plans->size(); ++i) {
        auto p = plans->getObject(static_cast<unsigned>(i));
        std::cout << std::left << std::setw(20) << text(p->get("name")) << std::setw(14)
                  << (text(p->get("accounts")) + " account(s)") << limitsText(p->getObject("limits")) << "\n";
      }
      if (plans->size() == 0) std::cout << "no plans; add one with: shoalctl plan add NAME --limits LIMITS\n";
    } else if (group == "plan" && verb == "apply") {
      auto changed = b->getArray("changed");
      std::cout << changed->size() << " account(s) took the plan's limits\n";
      for (std::size_t i = 0; i < changed->size(); ++i) printCommands(changed->getObject(static_cast<unsigned>(i)));
    } else if (group == "plan" && verb == "remove") {
      std::cout << "removed plan " << text(b->get("removed")) << "\n";
    } else if (group == "plan") {
      std::cout << text(b->get("name")) << ": " << limitsText(b->getObject("limits")) << " (" << text(b->get("accounts"))
                << " account(s))\n";
    } else if (group == "lb" && verb == "schema") {
      printLbSchema(b);
    } else if (group == "lb" && verb == "list") {
      printBalancer(b, has(o, "--stats"), has(o, "--rate"));
    } else if (group == "lb") {
      auto apply = b->getObject("apply");
      if (b->has("deleted")) std::cout << "deleted " << text(b->get("deleted")) << "\n";
      if (b->has("service")) std::cout << "stored " << text(b->getObject("service")->get("key")) << "\n";
      if (b->has("command") && !apply) std::cout << "sent as command " << text(b->get("command")) << "\n";
      if (apply && apply->has("command")) std::cout << "sent to the director as command " << text(apply->get("command")) << "\n";
      if (apply && apply->has("pending")) std::cerr << "note: " << text(apply->get("pending")) << "\n";
      if (apply && apply->has("unchanged")) std::cout << "the balancer table is unchanged\n";
    }
    return kExitOk;
  } catch (const UsageError& e) {
    std::cerr << "shoalctl: " << e.what() << "\n" << kUsage;
    return kExitUsage;
  } catch (const shoal::Error& e) {
    std::cerr << "shoalctl: " << e.what() << "\n";
    return e.code() == shoal::ErrorCode::InvalidArgument ? kExitUsage : kExitUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "shoalctl: " << e.what() << "\n";
    return kExitUnreachable;
  }
}
