#pragma once
// Internal to shoal_tls: owning handles for OpenSSL objects and the PEM/DER conversions the
// PKI code and the TLS contexts share. Nothing outside kernel/tls includes this header.
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shoal::tls::detail {

template <auto FreeFunction>
struct OpenSslFree {
  template <class T>
  void operator()(T* object) const noexcept {
    FreeFunction(object);
  }
};

using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free_all>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree<GENERAL_NAMES_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree<X509_EXTENSION_free>>;

// Empties the calling thread's OpenSSL error queue and returns its entries joined by "; "
// (empty when there were none). Every failure path calls it, so no stale entry is left for
// the next TLS operation on the same thread to misread as its own.
std::string takeErrors();

// The first certificate in `pem`, or null when there is none.
X509Ptr parseCertificate(const std::string& pem);
// Every certificate in `pem`, in order (empty when there is none).
std::vector<X509Ptr> parseCertificates(const std::string& pem);
// An unencrypted private key in PEM, or null. Never prompts for a passphrase.
EvpPkeyPtr parsePrivateKey(const std::string& pem);

std::string toPem(const X509* certificate);
// PKCS#8, unencrypted.
std::string toPem(const EVP_PKEY* key);

// "sha256:" + lowercase hex of SHA-256 over the certificate's DER encoding.
std::string fingerprint(const X509* certificate);

// The address bytes of an IPv4 (4 bytes) or IPv6 (16 bytes) literal; nullopt for anything
// else (host names, bracketed or scoped IPv6).
std::optional<std::vector<unsigned char>> parseIpLiteral(const std::string& text);

// One subject alternative name: an IP address (raw bytes) or a DNS name (lowercase).
struct AlternativeName {
  bool isIp;
  std::string value;  // raw address bytes for an IP, the name for DNS
  auto operator<=>(const AlternativeName&) const = default;
};
// The IP and DNS subject alternative names of `certificate`, sorted, without duplicates.
std::vector<AlternativeName> alternativeNames(const X509* certificate);

// `name` as a subject alternative name: an IP literal, else a DNS name (letters, digits and
// '-' in dot-separated labels of 1-63 characters, optionally a leading "*." label, not
// all-numeric in the last label). Error(InvalidArgument) for anything else.
AlternativeName toAlternativeName(const std::string& name);
// Every entry of `names` as toAlternativeName(), sorted, without duplicates.
// Error(InvalidArgument) when `names` is empty or an entry is invalid.
std::vector<AlternativeName> toAlternativeNames(const std::vector<std::string>& names);

}  // namespace shoal::tls::detail
