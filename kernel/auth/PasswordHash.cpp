#include "auth/PasswordHash.hpp"

#include <charconv>
#include <optional>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/Error.hpp"

namespace shoal::auth {

namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;
constexpr std::size_t kMinStoredBytes = 16;  // salt and hash read from a stored string
constexpr std::size_t kMaxStoredBytes = 64;
constexpr std::uint64_t kMaxN = std::uint64_t(1) << 20;
constexpr std::uint32_t kMaxR = 32;
constexpr std::uint32_t kMaxP = 16;
constexpr std::uint64_t kMaxMemory = std::uint64_t(256) << 20;
constexpr std::string_view kPrefix = "scrypt$";

const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string openSslReason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no reason given";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  return buffer;
}

// Standard base64 without padding.
std::string encodeBase64(const std::vector<unsigned char>& data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const unsigned v = (unsigned(data[i]) << 16) | (unsigned(data[i + 1]) << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    const unsigned v = unsigned(data[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (data.size() - i == 2) {
    const unsigned v = (unsigned(data[i]) << 16) | (unsigned(data[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict: only the canonical unpadded encoding decodes (unused trailing bits must be zero).
std::optional<std::vector<unsigned char>> decodeBase64(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::vector<unsigned char> out;
  out.reserve(text.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64Value(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | unsigned(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((buffer >> bits) & 0xff));
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool isPowerOfTwo(std::uint64_t n) {
  return n >= 2 && (n & (n - 1)) == 0;
}

// What OpenSSL allocates for these parameters (see crypto/evp/pbe_scrypt.c), with 1 MiB to spare.
std::uint64_t memoryFor(const ScryptParams& params) {
  return 128 * std::uint64_t(params.r) * (params.n + 2) + 128 * std::uint64_t(params.r) * params.p +
         (std::uint64_t(1) << 20);
}

bool withinLimits(const ScryptParams& params) {
  return isPowerOfTwo(params.n) && params.n <= kMaxN && params.r >= 1 && params.r <= kMaxR &&
         params.p >= 1 && params.p <= kMaxP && memoryFor(params) <= kMaxMemory;
}

std::vector<unsigned char> derive(std::string_view password, const std::vector<unsigned char>& salt,
                                  const ScryptParams& params, std::size_t length) {
  std::vector<unsigned char> key(length);
  static const char empty = 0;
  const char* pass = password.empty() ? &empty : password.data();
  if (EVP_PBE_scrypt(pass, password.size(), salt.data(), salt.size(), params.n, params.r, params.p,
                     memoryFor(params), key.data(), key.size()) != 1)
    throw Error(ErrorCode::Internal, "OpenSSL could not compute scrypt: " + openSslReason());
  return key;
}

struct ParsedHash {
  ScryptParams params;
  std::vector<unsigned char> salt, hash;
};

// A decimal number without sign or leading zeros.
std::optional<std::uint64_t> parseNumber(std::string_view text) {
  if (text.empty() || text.size() > 10 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "N=<n>,r=<r>,p=<p>", exactly in that order.
std::optional<ScryptParams> parseParams(std::string_view text) {
  std::uint64_t values[3];
  const char* names[3] = {"N=", "r=", "p="};
  for (int i = 0; i < 3; ++i) {
    if (text.substr(0, 2) != names[i]) return std::nullopt;
    text.remove_prefix(2);
    const std::size_t comma = text.find(',');
    if ((i < 2) != (comma != std::string_view::npos)) return std::nullopt;
    auto value = parseNumber(text.substr(0, comma));
    if (!value) return std::nullopt;
    values[i] = *value;
    text.remove_prefix(i < 2 ? comma + 1 : text.size());
  }
  if (values[1] > kMaxR || values[2] > kMaxP) return std::nullopt;
  ScryptParams params{values[0], static_cast<std::uint32_t>(values[1]),
                      static_cast<std::uint32_t>(values[2])};
  if (!withinLimits(params)) return std::nullopt;
  return params;
}

std::optional<ParsedHash> parse(std::string_view stored) {
  if (stored.size() > 512 || stored.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  stored.remove_prefix(kPrefix.size());
  const std::size_t first = stored.find('$');
  if (first == std::string_view::npos) return std::nullopt;
  const std::size_t second = stored.find('$', first + 1);
  if (second == std::string_view::npos || stored.find('$', second + 1) != std::string_view::npos)
    return std::nullopt;
  auto params = parseParams(stored.substr(0, first));
  auto salt = decodeBase64(stored.substr(first + 1, second - first - 1));
  auto hash = decodeBase64(stored.substr(second + 1));
  if (!params || !salt || !hash) return std::nullopt;
  if (salt->size() < kMinStoredBytes || salt->size() > kMaxStoredBytes ||
      hash->size() < kMinStoredBytes || hash->size() > kMaxStoredBytes)
    return std::nullopt;
  return ParsedHash{*params, std::move(*salt), std::move(*hash)};
}

}  // namespace

std::string hashPassword(std::string_view password) {
  return hashPassword(password, kDefaultScryptParams);
}

std::string hashPassword(std::string_view password, const ScryptParams& params) {
  if (!withinLimits(params))
    throw Error(ErrorCode::InvalidArgument,
                "scrypt parameters N=" + std::to_string(params.n) +
                    ",r=" + std::to_string(params.r) + ",p=" + std::to_string(params.p) +
                    " are out of range: N a power of two from 2 to 2^20, r 1 to 32, p 1 to 16, "
                    "at most 256 MiB");
  std::vector<unsigned char> salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    throw Error(ErrorCode::Internal, "OpenSSL could not produce random bytes: " + openSslReason());
  std::vector<unsigned char> key = derive(password, salt, params, kHashBytes);
  std::string out = std::string(kPrefix) + "N=" + std::to_string(params.n) +
                    ",r=" + std::to_string(params.r) + ",p=" + std::to_string(params.p) + "$" +
                    encodeBase64(salt) + "$" + encodeBase64(key);
  OPENSSL_cleanse(key.data(), key.size());
  return out;
}

bool verifyPassword(std::string_view password, std::string_view stored) {
  auto parsed = parse(stored);
  if (!parsed) return false;
  std::vector<unsigned char> key =
      derive(password, parsed->salt, parsed->params, parsed->hash.size());
  const bool equal = CRYPTO_memcmp(key.data(), parsed->hash.data(), key.size()) == 0;
  OPENSSL_cleanse(key.data(), key.size());
  return equal;
}

bool passwordNeedsRehash(std::string_view stored) {
  auto parsed = parse(stored);
  if (!parsed) return true;
  const ScryptParams& p = parsed->params;
  return p.n < kDefaultScryptParams.n || p.r < kDefaultScryptParams.r ||
         p.p < kDefaultScryptParams.p || parsed->salt.size() < kSaltBytes ||
         parsed->hash.size() < kHashBytes;
}

void checkPasswordStrength(std::string_view password) {
  if (password.size() > kMaxPasswordBytes)
    throw Error(ErrorCode::InvalidArgument,
                "password: must be at most " + std::to_string(kMaxPasswordBytes) + " bytes");
  if (password.find('\0') != std::string_view::npos)
    throw Error(ErrorCode::InvalidArgument, "password: must not contain NUL bytes");
  std::size_t characters = 0;
  for (char c : password)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++characters;  // not a continuation byte
  if (characters < kMinPasswordChars)
    throw Error(ErrorCode::InvalidArgument,
                "password: must be at least " + std::to_string(kMinPasswordChars) + " characters");
}

}  // namespace shoal::auth
