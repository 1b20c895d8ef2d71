#pragma once
// Reading a service plugin's probe settings from its [plugin.NAME] section, each value
// checked before anything is registered. A bad value throws PluginError(INVALID_ARGUMENT)
// from init, which refuses the plugin with a message naming the key, the value and what
// is allowed: an admin's typo must stop the plugin, not silently probe the wrong thing.
// Header-only; includes only sdk/.
#include <shoal/sdk.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::plugins {

// Probe timing. The plugins always register explicit values (never "0 = engine default"),
// so that timeout < interval can be checked here, against the values that will run.
// The defaults are HAProxy's (inter 2 s, rise 2, fall 3), which the engine shares.
struct ProbeTiming {
  std::uint32_t intervalMs = 2000;
  std::uint32_t timeoutMs = 1000;
  std::uint32_t rise = 2;
  std::uint32_t fall = 3;
};

class ProbeConfig {
 public:
  ProbeConfig(const Host& host, std::string_view plugin) : host_(host), plugin_(plugin) {}

  std::uint16_t port(std::string_view key, std::uint16_t fallback) const {
    return static_cast<std::uint16_t>(number(key, fallback, 1, 65535));
  }

  // interval_ms (>= 100), timeout_ms (< interval_ms), rise and fall (1-100).
  ProbeTiming timing() const {
    ProbeTiming t;
    t.intervalMs = number("interval_ms", t.intervalMs, 100, 86400000);
    t.timeoutMs = number("timeout_ms", t.timeoutMs, 1, 86400000);
    if (t.timeoutMs >= t.intervalMs)
      refuse("timeout_ms", std::to_string(t.timeoutMs),
             "must be less than interval_ms (" + std::to_string(t.intervalMs) + ")");
    t.rise = number("rise", t.rise, 1, 100);
    t.fall = number("fall", t.fall, 1, 100);
    return t;
  }

  // A whole number in [min, max]; leading zeros and signs are refused with the rest.
  std::uint32_t number(std::string_view key, std::uint32_t fallback, std::uint32_t min,
                       std::uint32_t max) const {
    const auto value = host_.config(key);
    if (!value) return fallback;
    const std::string allowed =
        "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    if (value->empty() || value->size() > 10) refuse(key, *value, allowed);
    std::uint64_t n = 0;
    for (char c : *value) {
      if (c < '0' || c > '9') refuse(key, *value, allowed);
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n < min || n > max) refuse(key, *value, allowed);
    return static_cast<std::uint32_t>(n);
  }

  // An HTTP request path: it goes verbatim into the request line, so no blanks or controls.
  std::string httpPath(std::string_view key, std::string fallback) const {
    const auto value = host_.config(key);
    if (!value) return fallback;
    bool ok = !value->empty() && value->size() <= 1024 && (*value)[0] == '/';
    for (unsigned char c : *value) ok = ok && c > 0x20 && c != 0x7f;
    if (!ok)
      refuse(key, *value,
             "must start with \"/\" and hold no spaces, CR, LF or other control characters "
             "(at most 1024 characters)");
    return *value;
  }

  // A DNS host name (RFC 1123 labels; a dotted IPv4 address is one too), or empty.
  std::string hostName(std::string_view key, std::string fallback) const {
    const auto value = host_.config(key);
    if (!value) return fallback;
    if (!validHostName(*value))
      refuse(key, *value,
             "must be a host name: labels of letters, digits and '-' (not first or last), "
             "1-63 characters each, separated by '.', at most 253 characters");
    return *value;
  }

  // The daemon serving the service (key "daemon"): services naming the same one on a node
  // are drained and restored together by a rolling restart. Empty = a daemon of its own.
  std::string daemon(std::string fallback) const {
    const auto value = host_.config("daemon");
    if (!value) return fallback;
    bool ok = value->size() <= 64;
    for (char c : *value)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-');
    if (!ok) refuse("daemon", *value, "must be empty or 1-64 of a-z, 0-9, '_', '.', '-'");
    return *value;
  }

  static bool validHostName(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    char previous = '.';
    for (char c : name) {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (c == '.') {
        if (label == 0 || previous == '-') return false;
        label = 0;
      } else if (alnum || (c == '-' && label > 0)) {
        if (++label > 63) return false;
      } else {
        return false;
      }
      previous = c;
    }
    return label > 0 && previous != '-';
  }

 private:
  [[noreturn]] void refuse(std::string_view key, std::string_view value,
                           std::string_view allowed) const {
    throw PluginError("[plugin." + plugin_ + "] " + std::string(key) + " = \"" + printable(value) +
                          "\": " + std::string(allowed),
                      SHOAL_ERR_INVALID_ARGUMENT);
  }

  // The value as it can be shown in a log line: control bytes escaped, long values cut.
  static std::string printable(std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : value.substr(0, 120)) {
      if (c == '\r')
        out += "\\r";
      else if (c == '\n')
        out += "\\n";
      else if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
        out += std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
      else
        out += static_cast<char>(c);
    }
    if (value.size() > 120) out += "...";
    return out;
  }

  const Host& host_;
  std::string plugin_;
};

}  // namespace shoal::plugins
