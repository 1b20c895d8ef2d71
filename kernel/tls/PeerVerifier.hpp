#pragma once
// Internal to shoal_tls: the client-side certificate decision, made inside the TLS handshake.
#include "tls/PinResult.hpp"

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace shoal::tls::detail {

// Installed on a client SSL_CTX, it replaces OpenSSL's built-in chain verification
// (SSL_CTX_set_cert_verify_callback) and clears the per-certificate verify callback. Poco's
// Context puts SSLManager's callback there, which hands failures to process-global
// InvalidCertificateHandlers and the ClientVerificationError event; either can turn a refused
// certificate into an accepted one, so neither may be consulted.
//
// The chain is verified by X509_verify_cert (signatures, validity, CA constraints, the
// serverAuth purpose) together with the server's name: the name the client asked for
// (SNI, which Poco sets to the host it connects to) or, without one, the peer's IP address.
// An IP literal must match an IP SAN; a DNS name must match a DNS SAN, and the subject CN is
// never used as a name. Failing any of it aborts the handshake, so the server gets no
// application data.
class PeerVerifier {
 public:
  // Anchors: the certificates already in the context's X509_STORE.
  static void installTrustStore(SSL_CTX* context);
  // Anchor: the CA certificate within the chain the server presents whose fingerprint is
  // `fingerprint` (normalised "sha256:<lowercase hex>"); the outcome goes to `pin`.
  static void installPin(SSL_CTX* context, const std::string& fingerprint, std::shared_ptr<PinResult> pin);

  PeerVerifier(std::string fingerprint, std::shared_ptr<PinResult> pin);
  // The cert_verify_callback body: 1 to accept, 0 to refuse (error set on `store`).
  int verify(X509_STORE_CTX* store) const;

 private:
  static void install(SSL_CTX* context, std::unique_ptr<PeerVerifier> verifier);
  int verifyPinned(X509_STORE_CTX* store) const;
  void recordFailure(const std::string& reason) const;

  std::string fingerprint_;  // empty: anchors from the trust store
  std::shared_ptr<PinResult> pin_;
};

}  // namespace shoal::tls::detail
