#pragma once
// Account and domain names as ADR 0013 defines them. Every layer (API, store, events) takes
// names through these functions, so one grammar holds everywhere.
#include <string>

namespace shoal::hosting {

// Throws Error(InvalidArgument) naming `field` unless `name` matches the Linux user-name
// grammar [a-z_][a-z0-9_-]{0,31} and is not a name the system or shoal itself uses.
void validateAccountName(const std::string& name, const std::string& field = "name");

// A domain in both forms: `ascii` is the lower-case punycode name that is stored and keyed
// on; `unicode` is how it displays.
struct DomainName {
  std::string ascii;
  std::string unicode;
};

// Converts a domain as typed (Unicode or ASCII, any case) with libidn2 (IDNA 2008, TR46
// non-transitional mapping, NFC input) and checks the result against RFC 1123: labels of
// 1-63 letters, digits and hyphens, no hyphen at either end, at least two labels, 253
// characters in all. Throws Error(InvalidArgument) naming `field`.
DomainName normalizeDomain(const std::string& input, const std::string& field = "name");

}  // namespace shoal::hosting
