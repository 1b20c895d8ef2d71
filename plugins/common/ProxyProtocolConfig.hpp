#pragma once
// How the service plugins let their daemons read the PROXY protocol header that the
// userspace balancer writes (a policy with "proxy_protocol": "v2"), from the director only.
//
// Each plugin reads two settings from its [plugin.NAME] section on the node, at start:
//   proxy_protocol_port = 8080        a second port where the daemon expects the header;
//                                     the plain port stays as it is (the health probes
//                                     connect there directly), the PROXY policy's members
//                                     name this one
//   proxy_protocol_from = 10.0.0.1    the director's addresses (IPv4 or IPv6, each with an
//                                     optional /prefix; blanks or commas between): only
//                                     their header is believed
// Both or neither: without them the plugin writes nothing (a file written at an earlier
// start stays until it is removed by hand). With them it renders the
// daemon's configuration, runs the daemon's own checker, and on a failure puts back what
// was there and refuses to start, with the checker's words. The daemon takes the new file
// up at its next reload or restart (`shoalctl service restart NAME --all` drains and
// restarts node by node). Header-only; includes only sdk/ and its siblings.
#include <shoal/sdk.hpp>

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ProbeConfig.hpp"
#include <shoal/process.hpp>

namespace shoal::plugins {

struct ProxyProtocolListener {
  std::uint16_t port = 0;
  std::vector<std::string> trustedFrom;  // addresses or networks, as written
  bool anyIpv6 = false;                  // a trusted address is IPv6: listen on IPv6 too
};

// The daemon's checker or configuration tool, by argv, with a generous time limit.
inline constexpr std::chrono::milliseconds kCheckerTimeout{30000};

[[noreturn]] inline void refuseSetting(std::string_view plugin, std::string_view key, std::string_view message) {
  throw PluginError("[plugin." + std::string(plugin) + "] " + std::string(key) + ": " + std::string(message),
                    SHOAL_ERR_INVALID_ARGUMENT);
}

// "10.0.0.1", "10.0.0.0/24", "2001:db8::1", "2001:db8::/64"; returns the family or 0.
inline int trustedNetworkFamily(const std::string& text) {
  const auto slash = text.find('/');
  const std::string address = text.substr(0, slash);
  unsigned char buffer[16];
  int family = 0;
  if (inet_pton(AF_INET, address.c_str(), buffer) == 1) family = AF_INET;
  else if (inet_pton(AF_INET6, address.c_str(), buffer) == 1) family = AF_INET6;
  if (family == 0 || slash == std::string::npos) return family;
  const std::string prefix = text.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 || prefix.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(prefix) <= (family == AF_INET ? 32 : 128) ? family : 0;
}

// Reads proxy_protocol_port and proxy_protocol_from; `plainPort` is the probed port, which
// the proxied one must differ from. Throws PluginError naming the key.
inline std::optional<ProxyProtocolListener> readProxyProtocolListener(const Host& host, std::string_view plugin,
                                                                      std::uint16_t plainPort) {
  const ProbeConfig config(host, plugin);
  const auto from = host.config("proxy_protocol_from");
  const bool hasPort = host.config("proxy_protocol_port").has_value();
  if (!hasPort && !from) return std::nullopt;
  if (!hasPort)
    refuseSetting(plugin, "proxy_protocol_from",
                  "is set without proxy_protocol_port, the port where the daemon expects the header");
  ProxyProtocolListener listener;
  listener.port = config.port("proxy_protocol_port", 0);
  if (listener.port == plainPort)
    refuseSetting(plugin, "proxy_protocol_port",
                  std::to_string(listener.port) + " is the plain port; it must be another one, since the health "
                  "probes connect to the plain port without a PROXY header");
  if (!from)
    refuseSetting(plugin, "proxy_protocol_from",
                  "is required with proxy_protocol_port: the director's address, the only sender whose PROXY "
                  "header the daemon believes");
  std::string words = *from;
  for (char& c : words)
    if (c == ',') c = ' ';
  std::istringstream in(words);
  for (std::string word; in >> word;) {
    const int family = trustedNetworkFamily(word);
    if (family == 0)
      refuseSetting(plugin, "proxy_protocol_from",
                    "'" + word + "' is not an IPv4 or IPv6 address (optionally with a /prefix)");
    listener.anyIpv6 = listener.anyIpv6 || family == AF_INET6;
    listener.trustedFrom.push_back(word);
  }
  if (listener.trustedFrom.empty())
    refuseSetting(plugin, "proxy_protocol_from", "names no address; write the director's address");
  return listener;
}

// A file path for a configuration file: absolute, no blanks or controls (it goes into a
// daemon's configuration and an argv).
inline std::string configFilePath(const Host& host, std::string_view plugin, std::string_view key,
                                  std::string fallback) {
  const std::string path = host.config(key, std::move(fallback));
  bool ok = !path.empty() && path[0] == '/' && path.size() < 4096 && path.back() != '/';
  for (unsigned char c : path) ok = ok && c > 0x20 && c != 0x7f && c != ';' && c != '"' && c != '\'';
  if (!ok) refuseSetting(plugin, key, "'" + path + "' must be an absolute file path without blanks, quotes or ';'");
  return path;
}

inline std::vector<std::string> commandSetting(const Host& host, std::string_view plugin, std::string_view key,
                                               const std::string& fallback) {
  try {
    return splitCommand(host.config(key, fallback));
  } catch (const std::invalid_argument& e) {
    refuseSetting(plugin, key, e.what());
  }
}

inline std::string commandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) line += (line.empty() ? "" : " ") + word;
  return line;
}

// Runs a configuration tool or checker; throws PluginError with its output unless it succeeds.
inline void runConfigTool(std::string_view plugin, const std::vector<std::string>& argv) {
  ProgramResult result;
  try {
    result = runProgram(argv, kCheckerTimeout);
  } catch (const std::exception& e) {
    throw PluginError("[plugin." + std::string(plugin) + "] " + e.what());
  }
  if (!result.succeeded())
    throw PluginError("[plugin." + std::string(plugin) + "] " + commandLine(argv) + " " + result.describe() +
                      (result.output.empty() ? "" : ": " + result.output));
}

// Writes `text` to `path` (a temporary file beside it, then rename) and runs `check`. When the
// check fails the previous content is put back (or the file removed when there was none),
// so the daemon's next start finds a configuration that passed, and PluginError carries the
// checker's words.
inline void installCheckedFile(std::string_view plugin, const std::string& path, const std::string& text,
                               const std::vector<std::string>& check) {
  std::optional<std::string> previous;
  if (std::ifstream old(path, std::ios::binary); old) {
    std::ostringstream content;
    content << old.rdbuf();
    previous = content.str();
  }
  auto write = [&](const std::string& content) {
    const std::string temporary = path + ".shoal-new";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << content;
      if (!out.flush())
        throw PluginError("[plugin." + std::string(plugin) + "] cannot write " + temporary);
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
      throw PluginError("[plugin." + std::string(plugin) + "] cannot replace " + path);
  };
  write(text);
  try {
    runConfigTool(plugin, check);
  } catch (const PluginError& e) {
    if (previous)
      write(*previous);
    else
      ::unlink(path.c_str());
    throw PluginError(std::string(e.what()) + " (the PROXY protocol configuration " + path +
                          (previous ? " was put back as it was)" : " was removed)"),
                      SHOAL_ERR_INVALID_ARGUMENT);
  }
}

// Dovecot (imap and pop3 plugins): a file with haproxy_trusted_networks (added to what
// other files say, so imap's and pop3's directors both count) and a second inet_listener of
// `protocol`-login with haproxy = yes, written to proxy_protocol_config (a conf.d file that
// dovecot.conf includes) and checked with proxy_protocol_check ("doveconf -n"). Dovecot
// refuses a connection to that listener from outside the trusted networks.
inline void configureDovecotProxyProtocol(const Host& host, std::string_view protocol, std::uint16_t plainPort) {
  const auto listener = readProxyProtocolListener(host, protocol, plainPort);
  if (!listener) return;
  const std::string name(protocol);
  const auto file = configFilePath(host, protocol, "proxy_protocol_config",
                                   "/etc/dovecot/conf.d/95-shoal-proxy-protocol-" + name + ".conf");
  const auto check = commandSetting(host, protocol, "proxy_protocol_check", "doveconf -n");
  std::string trusted;
  for (const auto& from : listener->trustedFrom) trusted += " " + from;
  const std::string text = "# Written by shoal's " + name + " plugin at each start, from [plugin." + name +
                           "] proxy_protocol_port and\n# proxy_protocol_from.\n"
                           "haproxy_trusted_networks = $haproxy_trusted_networks" + trusted + "\n"
                           "service " + name + "-login {\n"
                           "  inet_listener " + name + "_proxy_protocol {\n"
                           "    port = " + std::to_string(listener->port) + "\n"
                           "    haproxy = yes\n"
                           "  }\n"
                           "}\n";
  installCheckedFile(protocol, file, text, check);
  host.info("dovecot accepts the PROXY protocol for " + name + " on port " + std::to_string(listener->port) +
            " from" + trusted + " (" + file + ", checked by " + commandLine(check) + ")");
}

}  // namespace shoal::plugins
