#pragma once
// Secrets of the cluster: join tokens and node credentials. They are random, shown once to
// whoever asked for them, and stored only as hashes.
#include <cstddef>
#include <string>

namespace shoal::cluster {

// `bytes` random bytes from OpenSSL's RAND_bytes as base64url without padding (32 bytes give 43
// characters). Throws Error(InvalidArgument) unless 16 <= bytes <= 1024, Error(Internal) when
// OpenSSL has no randomness to give.
std::string randomSecret(std::size_t bytes = 32);

// "sha256:" followed by 64 lowercase hex digits. A plain SHA-256 is enough: the secrets have at
// least 128 random bits, so a stored hash cannot be reversed by guessing. Throws
// Error(InvalidArgument) for an empty secret.
std::string hashSecret(const std::string& secret);

// Compares in time that depends only on the lengths (CRYPTO_memcmp).
bool constantTimeEquals(const std::string& a, const std::string& b);

}  // namespace shoal::cluster
