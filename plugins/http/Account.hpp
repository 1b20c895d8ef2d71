#pragma once
// The hosting account as the http plugin reads it: docs/adr/0013-hosting-accounts.md's JSON,
// parsed and checked in one place (parseAccount). Everything the plugin renders comes from an
// Account that passed this parser, so the renderers may trust its names and paths.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::http {

struct Domain {
  std::string name;        // ASCII (punycode), lower-case, RFC 1123
  std::string kind;        // primary, secondary, alias, subdomain
  std::string parent;      // alias and subdomain: another domain of the account
  std::string nginxExtra;  // admin-written directives for the domain's server block
};

struct Certificate {
  std::string certificatePem;  // the chain, leaf first
  std::string keyPem;
};

struct Account {
  std::string name;
  std::uint32_t uid = 0, gid = 0;
  std::string home;  // absolute, no trailing slash
  bool suspended = false;
  std::vector<Domain> domains;
  std::optional<Certificate> certificate;
  std::int64_t revision = 0;

  // The domains that get their own server block (every kind but alias), in account order.
  std::vector<const Domain*> sites() const;
  // The names one site answers to: its own and those of the aliases whose parent it is.
  std::vector<std::string> serverNames(const Domain& site) const;
};

constexpr std::size_t kMaxNginxExtraBytes = 4096;

// Parses `json`, the account object itself. Throws std::invalid_argument naming the field
// ("account.domains[1].name: ...") on anything the ADR does not allow.
Account parseAccount(std::string_view json);

// The payload of http.site.put and http.site.remove: {"account": <account>}, nothing else.
Account parseSitePayload(std::string_view json);

}  // namespace shoal::http
