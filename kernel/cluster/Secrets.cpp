#include "cluster/Secrets.hpp"

#include <vector>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/Error.hpp"

namespace shoal::cluster {

namespace {

constexpr std::size_t kMinSecretBytes = 16;
constexpr std::size_t kMaxSecretBytes = 1024;

std::string openSslReason() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "no reason given";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  ERR_clear_error();
  return buffer;
}

std::string base64Url(const unsigned char* data, std::size_t size) {
  static const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const unsigned v = (unsigned(data[i]) << 16) | (unsigned(data[i + 1]) << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (size - i == 1) {
    const unsigned v = unsigned(data[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (size - i == 2) {
    const unsigned v = (unsigned(data[i]) << 16) | (unsigned(data[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

}  // namespace

std::string randomSecret(std::size_t bytes) {
  if (bytes < kMinSecretBytes || bytes > kMaxSecretBytes)
    throw Error(ErrorCode::InvalidArgument, "secret size " + std::to_string(bytes) +
                                                " bytes is out of range: use 16 to 1024 bytes");
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1)
    throw Error(ErrorCode::Internal, "OpenSSL could not produce random bytes: " + openSslReason());
  std::string secret = base64Url(buffer.data(), buffer.size());
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return secret;
}

std::string hashSecret(const std::string& secret) {
  if (secret.empty()) throw Error(ErrorCode::InvalidArgument, "secret is empty");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(secret.data(), secret.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorCode::Internal, "OpenSSL could not compute SHA-256: " + openSslReason());
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  out.reserve(7 + 2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool constantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace shoal::cluster
