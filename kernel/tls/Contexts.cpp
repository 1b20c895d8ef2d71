#include "tls/Contexts.hpp"

#include "common/Error.hpp"
#include "tls/AtomicFile.hpp"
#include "tls/OpenSsl.hpp"
#include "tls/PeerVerifier.hpp"

#include <Poco/Exception.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

namespace shoal::tls {

namespace {

using Poco::Net::Context;

// TLS 1.2 suites; TLS 1.3 keeps OpenSSL's default AEAD suites. The keys are EC P-256, so
// only ECDSA suites could be negotiated anyway; listing them keeps CBC and RSA out.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";
constexpr const char* kKeyExchangeGroups = "X25519:P-256:P-384";
constexpr int kMaxChainDepth = 4;

Context::Params baseParams(Context::VerificationMode mode) {
  Context::Params params;
  params.verificationMode = mode;
  params.verificationDepth = kMaxChainDepth;
  params.loadDefaultCAs = false;
  params.cipherList = kTls12Ciphers;
  params.ecdhCurve = kKeyExchangeGroups;
  return params;
}

Context::Ptr newContext(Context::Usage usage, const Context::Params& params, const std::string& what) {
  Context::Ptr context;
  try {
    context = new Context(usage, params);
  } catch (const Poco::Exception& e) {
    detail::takeErrors();
    throw Error(ErrorCode::Failed, "cannot create the " + what + ": " + e.displayText());
  }
  SSL_CTX* ssl = context->sslContext();
  if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1) {
    throw Error(ErrorCode::Internal, "cannot require TLS 1.2 for the " + what + ": " + detail::takeErrors());
  }
  SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  return context;
}

std::vector<detail::X509Ptr> readCertificates(const std::filesystem::path& file) {
  std::vector<detail::X509Ptr> certificates = detail::parseCertificates(detail::readWholeFile(file));
  if (certificates.empty()) {
    throw Error(ErrorCode::Failed, "CA file " + file.string() + " holds no PEM certificate");
  }
  return certificates;
}

void requireReadable(const std::filesystem::path& file) { detail::readWholeFile(file); }

std::string normalisedFingerprint(const std::string& fingerprint) {
  constexpr std::string_view prefix = "sha256:";
  std::string lower = fingerprint;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool wellFormed = lower.size() == prefix.size() + 64 && lower.starts_with(prefix) &&
                          std::all_of(lower.begin() + static_cast<long>(prefix.size()), lower.end(),
                                      [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!wellFormed) {
    throw Error(ErrorCode::InvalidArgument, "CA fingerprint must be \"sha256:\" followed by 64 hex digits");
  }
  return lower;
}

}  // namespace

Poco::Net::Context::Ptr makeServerContext(const ServerCredentials& credentials) {
  requireReadable(credentials.keyFile);
  requireReadable(credentials.certificateFile);
  const std::vector<detail::X509Ptr> chain = readCertificates(credentials.caFile);

  Context::Params params = baseParams(Context::VERIFY_NONE);
  params.privateKeyFile = credentials.keyFile.string();
  params.certificateFile = credentials.certificateFile.string();
  Context::Ptr context = newContext(Context::TLS_SERVER_USE, params, "TLS server context from " +
                                                                        credentials.certificateFile.string());
  SSL_CTX* ssl = context->sslContext();
  if (SSL_CTX_check_private_key(ssl) != 1) {
    detail::takeErrors();
    throw Error(ErrorCode::Failed, "key file " + credentials.keyFile.string() + " does not belong to " +
                                       credentials.certificateFile.string());
  }
  for (const detail::X509Ptr& certificate : chain) {
    STACK_OF(X509)* present = nullptr;
    SSL_CTX_get0_chain_certs(ssl, &present);
    bool already = false;
    for (int i = 0; i < sk_X509_num(present) && !already; ++i) {
      already = X509_cmp(sk_X509_value(present, i), certificate.get()) == 0;
    }
    if (!already && SSL_CTX_add1_chain_cert(ssl, certificate.get()) != 1) {
      throw Error(ErrorCode::Internal, "cannot add " + credentials.caFile.string() +
                                           " to the server's chain: " + detail::takeErrors());
    }
  }
  // Poco installs SSLManager's callback even with VERIFY_NONE; nothing is verified here.
  SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  return context;
}

Poco::Net::Context::Ptr makeClientContext(const std::filesystem::path& caFile) {
  const std::vector<detail::X509Ptr> anchors = readCertificates(caFile);
  // VERIFY_STRICT also keeps Poco's own post-handshake host check from exempting loopback
  // addresses; it can only refuse what the verifier already accepted, never the reverse.
  Context::Ptr context = newContext(Context::TLS_CLIENT_USE, baseParams(Context::VERIFY_STRICT),
                                    "TLS client context trusting " + caFile.string());
  X509_STORE* store = SSL_CTX_get_cert_store(context->sslContext());
  for (const detail::X509Ptr& anchor : anchors) {
    if (!store || X509_STORE_add_cert(store, anchor.get()) != 1) {
      throw Error(ErrorCode::Internal, "cannot trust " + caFile.string() + ": " + detail::takeErrors());
    }
  }
  detail::PeerVerifier::installTrustStore(context->sslContext());
  return context;
}

Poco::Net::Context::Ptr makePinnedClientContext(const std::string& expectedFingerprint,
                                                std::shared_ptr<PinResult> pin) {
  if (!pin) throw Error(ErrorCode::InvalidArgument, "a pinned client context needs a PinResult");
  const std::string fingerprint = normalisedFingerprint(expectedFingerprint);
  Context::Ptr context = newContext(Context::TLS_CLIENT_USE, baseParams(Context::VERIFY_STRICT),
                                    "pinned TLS client context");
  detail::PeerVerifier::installPin(context->sslContext(), fingerprint, std::move(pin));
  return context;
}

}  // namespace shoal::tls
