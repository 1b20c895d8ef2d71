#include "hosting/AccountNames.hpp"

#include <idn2.h>

#include <array>
#include <cstdlib>
#include <string_view>

#include "common/Error.hpp"

namespace shoal::hosting {
namespace {

// Names an account may not take because the same name is already a system user or group on
// a Debian node (base-passwd, and the packages a hosting node runs: nginx's www-data, the
// mail, FTP and database daemons), or is shoal's own service user. An account with one of
// these names would make useradd fail on the node, or worse share the daemon's identity.
constexpr std::array<std::string_view, 40> kReservedNames = {
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt",
    "systemd-network", "systemd-resolve", "systemd-timesync", "messagebus", "sshd",
    "postfix", "postdrop", "dovecot", "dovenull", "ftp", "vsftpd", "mysql", "nginx", "haproxy",
    "shoal", "admin", "sudo", "adm", "staff", "users"};

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, field + ": " + why);
}

bool isLdh(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

}  // namespace

void validateAccountName(const std::string& name, const std::string& field) {
  if (name.empty() || name.size() > 32) invalid(field, "must be 1 to 32 characters");
  const char first = name[0];
  if (!((first >= 'a' && first <= 'z') || first == '_'))
    invalid(field, "must start with a lower-case letter or '_'");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      invalid(field, "may contain only a-z, 0-9, '_' and '-'");
  }
  for (std::string_view reserved : kReservedNames) {
    if (name == reserved) invalid(field, "'" + name + "' is reserved for the system");
  }
}

DomainName normalizeDomain(const std::string& input, const std::string& field) {
  if (input.empty()) invalid(field, "must not be empty");
  if (input.find('\0') != std::string::npos) invalid(field, "must not contain NUL");
  char* ascii = nullptr;
  int rc = idn2_to_ascii_8z(input.c_str(), &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) invalid(field, std::string("is not a valid domain name: ") + idn2_strerror(rc));
  std::string name(ascii);
  idn2_free(ascii);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!name.empty() && name.back() == '.') name.pop_back();  // the root label is implied
  if (name.size() > 253) invalid(field, "must be at most 253 characters");
  std::size_t labels = 0, start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::string label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63) invalid(field, "every label must be 1 to 63 characters");
    for (char c : label) {
      if (!isLdh(c)) invalid(field, "may contain only letters, digits, '-' and '.'");
    }
    if (label.front() == '-' || label.back() == '-')
      invalid(field, "a label must not start or end with '-'");
    ++labels;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (labels < 2) invalid(field, "must have at least two labels");
  char* unicode = nullptr;
  rc = idn2_to_unicode_8z8z(name.c_str(), &unicode, 0);
  if (rc != IDN2_OK) invalid(field, std::string("has no Unicode form: ") + idn2_strerror(rc));
  DomainName result{name, unicode};
  idn2_free(unicode);
  return result;
}

}  // namespace shoal::hosting
