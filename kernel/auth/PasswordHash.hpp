#pragma once
// Password hashes of the panel's users: scrypt (RFC 7914) through OpenSSL, in a self-describing
// string that carries its own parameters,
//
//   scrypt$N=32768,r=8,p=1$<salt>$<hash>
//
// with salt (16 random bytes) and hash (32 bytes) in standard base64 without padding. Because
// verifyPassword reads the parameters from the string, the defaults can be raised later:
// passwordNeedsRehash tells which stored hashes are weaker than today's defaults, and
// UserStore::authenticate replaces them at the next successful login.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::auth {

struct ScryptParams {
  std::uint64_t n = 32768;  // CPU/memory cost, a power of two (2 to 2^20)
  std::uint32_t r = 8;      // block size (1 to 32)
  std::uint32_t p = 1;      // parallelism (1 to 16)
};
// N=2^15, r=8, p=1: 32 MiB and about a tenth of a second per hash.
inline constexpr ScryptParams kDefaultScryptParams{};

// A new hash with a fresh random salt (two calls for one password give different strings).
// Throws Error(InvalidArgument) for parameters out of range (or needing more than 256 MiB),
// Error(Internal) when OpenSSL fails. Accepts any password: checkPasswordStrength is the policy.
std::string hashPassword(std::string_view password);
std::string hashPassword(std::string_view password, const ScryptParams& params);

// True when `stored` is a well-formed hash of `password`; the final comparison takes time that
// does not depend on where the hashes differ. False for a malformed or unknown format, and for
// parameters beyond the limits above (a hostile string cannot make it allocate gigabytes).
// Throws Error(Internal) only when OpenSSL fails on well-formed input.
bool verifyPassword(std::string_view password, std::string_view stored);

// True when `stored` is malformed or its parameters, salt or hash length are weaker than
// kDefaultScryptParams, 16 and 32 bytes.
bool passwordNeedsRehash(std::string_view stored);

// The policy for new passwords. Throws Error(InvalidArgument):
//   "password: must be at least 10 characters"  (UTF-8 characters, not bytes)
//   "password: must be at most 1024 bytes"
//   "password: must not contain NUL bytes"
void checkPasswordStrength(std::string_view password);

inline constexpr std::size_t kMinPasswordChars = 10;
inline constexpr std::size_t kMaxPasswordBytes = 1024;

}  // namespace shoal::auth
