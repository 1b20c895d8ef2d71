#pragma once
// The TLS contexts of the manager's API: the server's, a client's that trusts the manager's
// CA file, and a joining node's that pins the CA by fingerprint (docs/adr/0004).
//
// All of them: TLS 1.2 and 1.3 only, TLS 1.2 limited to ECDHE-ECDSA AEAD suites; no
// renegotiation or compression; a peer closing without close_notify reads as end of stream
// (OpenSSL 3 otherwise reports it as an error, which Poco 1.11 turns into an exception; a
// truncated HTTP message is still caught by its Content-Length or chunked framing).
// No context here uses Poco's SSLManager handlers: the certificate decision of a client
// context is made in its own verify callback (PeerVerifier.hpp), so process-global
// InvalidCertificateHandlers and the ClientVerificationError event cannot override it.
// Errors: Error(Failed) naming the file when credentials cannot be loaded,
// Error(InvalidArgument) for a malformed fingerprint or a null PinResult.
#include "tls/CertificateAuthority.hpp"
#include "tls/PinResult.hpp"

#include <Poco/Net/Context.h>

#include <filesystem>
#include <memory>
#include <string>

namespace shoal::tls {

// Server: presents credentials.certificateFile followed by the CA certificate from
// credentials.caFile (so a pinning client sees the root in the handshake); asks for no client
// certificate.
Poco::Net::Context::Ptr makeServerContext(const ServerCredentials& credentials);

// Client that trusts only the certificate(s) in `caFile`: normal chain verification, and the
// server's certificate must carry the host the client connects to (the HTTPSClientSession's
// host, else the peer's address) as a SAN: an IP literal as an IP SAN, a DNS name as a DNS
// SAN; the CN is never used. Checked inside the handshake.
Poco::Net::Context::Ptr makeClientContext(const std::filesystem::path& caFile);

// Client that accepts a server only if the chain it presents contains a CA certificate whose
// fingerprint equals `expectedFingerprint` ("sha256:" + 64 hex digits, either case) and the
// leaf verifies up to that CA (signatures, validity, serverAuth) and carries the host the
// client connects to, as for makeClientContext. Decided inside the TLS handshake, so a wrong
// server gets no HTTP bytes. Every accepted handshake records the CA's PEM in
// pin->caCertificatePem; a refused one records its reason in pin->lastError.
Poco::Net::Context::Ptr makePinnedClientContext(const std::string& expectedFingerprint,
                                                std::shared_ptr<PinResult> pin);

}  // namespace shoal::tls
