#include "tls/PeerVerifier.hpp"

#include "common/Error.hpp"
#include "tls/OpenSsl.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace shoal::tls::detail {

namespace {

void freeVerifier(void*, void* pointer, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<PeerVerifier*>(pointer);
}

// The SSL_CTX ex_data slot that owns a context's verifier, so it lives exactly as long as
// the SSL_CTX (which every SSL object made from it keeps alive).
int verifierIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freeVerifier);
  return index;
}

int certificateVerifyCallback(X509_STORE_CTX* store, void* argument) {
  try {
    return static_cast<const PeerVerifier*>(argument)->verify(store);
  } catch (...) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
}

std::string peerAddress(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address.ss_family == AF_INET) {
    const auto* ipv4 = reinterpret_cast<const sockaddr_in*>(&address);
    if (!::inet_ntop(AF_INET, &ipv4->sin_addr, text.data(), text.size())) return {};
  } else if (address.ss_family == AF_INET6) {
    const auto* ipv6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_V4MAPPED(&ipv6->sin6_addr)) {
      in_addr ipv4{};
      std::memcpy(&ipv4, ipv6->sin6_addr.s6_addr + 12, sizeof ipv4);
      if (!::inet_ntop(AF_INET, &ipv4, text.data(), text.size())) return {};
    } else if (!::inet_ntop(AF_INET6, &ipv6->sin6_addr, text.data(), text.size())) {
      return {};
    }
  } else {
    return {};
  }
  return text.data();
}

// The name the certificate must carry: the server name the client asked for, else the
// address it is connected to.
std::string expectedServerName(X509_STORE_CTX* store) {
  const auto* ssl = static_cast<const SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (!ssl) return {};
  if (const char* requested = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name); requested && *requested) {
    std::string name = requested;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    return name;
  }
  return peerAddress(SSL_get_fd(ssl));
}

// Makes X509_verify_cert also check the server name; false (error set) when there is none.
bool requireServerName(X509_STORE_CTX* store) {
  const std::string name = expectedServerName(store);
  X509_VERIFY_PARAM* parameters = X509_STORE_CTX_get0_param(store);
  bool set = false;
  if (name.empty()) {
    set = false;
  } else if (parseIpLiteral(name)) {
    set = X509_VERIFY_PARAM_set1_ip_asc(parameters, name.c_str()) == 1;
  } else {
    X509_VERIFY_PARAM_set_hostflags(parameters,
                                    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    set = X509_VERIFY_PARAM_set1_host(parameters, name.c_str(), name.size()) == 1;
  }
  if (!set) {
    takeErrors();
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  }
  return set;
}

std::string describeFailure(X509_STORE_CTX* store) {
  const int error = X509_STORE_CTX_get_error(store);
  return "certificate verification failed at depth " + std::to_string(X509_STORE_CTX_get_error_depth(store)) +
         ": " + X509_verify_cert_error_string(error);
}

}  // namespace

PeerVerifier::PeerVerifier(std::string fingerprint, std::shared_ptr<PinResult> pin)
    : fingerprint_(std::move(fingerprint)), pin_(std::move(pin)) {}

void PeerVerifier::installTrustStore(SSL_CTX* context) { install(context, std::make_unique<PeerVerifier>("", nullptr)); }

void PeerVerifier::installPin(SSL_CTX* context, const std::string& fingerprint, std::shared_ptr<PinResult> pin) {
  if (fingerprint.empty() || !pin) {
    throw Error(ErrorCode::InvalidArgument, "a pinned verifier needs a fingerprint and a result holder");
  }
  install(context, std::make_unique<PeerVerifier>(fingerprint, std::move(pin)));
}

void PeerVerifier::install(SSL_CTX* context, std::unique_ptr<PeerVerifier> verifier) {
  const int index = verifierIndex();
  if (index < 0) {
    throw Error(ErrorCode::Internal, "cannot allocate an SSL_CTX ex_data index: " + takeErrors());
  }
  auto* previous = static_cast<PeerVerifier*>(SSL_CTX_get_ex_data(context, index));
  if (SSL_CTX_set_ex_data(context, index, verifier.get()) != 1) {
    throw Error(ErrorCode::Internal, "cannot attach the certificate verifier: " + takeErrors());
  }
  PeerVerifier* installed = verifier.release();  // owned by the SSL_CTX from here on
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(context, certificateVerifyCallback, installed);
  delete previous;
}

int PeerVerifier::verify(X509_STORE_CTX* store) const {
  if (!fingerprint_.empty()) return verifyPinned(store);
  if (!requireServerName(store)) return 0;
  return X509_verify_cert(store) > 0 ? 1 : 0;
}

int PeerVerifier::verifyPinned(X509_STORE_CTX* store) const {
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  STACK_OF(X509)* presented = X509_STORE_CTX_get0_untrusted(store);
  X509* anchor = nullptr;
  for (int i = 0; i < sk_X509_num(presented); ++i) {
    X509* candidate = sk_X509_value(presented, i);
    if (candidate != leaf && X509_check_ca(candidate) >= 1 && fingerprint(candidate) == fingerprint_) {
      anchor = candidate;
      break;
    }
  }
  if (!anchor) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_UNTRUSTED);
    recordFailure("the server's certificate chain holds no CA certificate with fingerprint " + fingerprint_);
    return 0;
  }
  if (!requireServerName(store)) {
    recordFailure("cannot tell which server name to verify");
    return 0;
  }

  // The pinned CA becomes the only trust anchor; everything else is ordinary verification.
  STACK_OF(X509)* anchors = sk_X509_new_null();
  if (!anchors || sk_X509_push(anchors, anchor) <= 0) {
    sk_X509_free(anchors);
    takeErrors();
    X509_STORE_CTX_set_error(store, X509_V_ERR_OUT_OF_MEM);
    recordFailure("out of memory");
    return 0;
  }
  X509_STORE_CTX_set0_trusted_stack(store, anchors);
  const int verified = X509_verify_cert(store);
  X509_STORE_CTX_set0_trusted_stack(store, nullptr);
  sk_X509_free(anchors);  // the certificate itself belongs to the presented chain
  if (verified <= 0) {
    recordFailure(describeFailure(store));
    return 0;
  }

  std::string pem = toPem(anchor);
  std::lock_guard lock(pin_->mutex);
  pin_->caCertificatePem = std::move(pem);
  pin_->lastError.clear();
  return 1;
}

void PeerVerifier::recordFailure(const std::string& reason) const {
  std::lock_guard lock(pin_->mutex);
  pin_->lastError = reason;
}

}  // namespace shoal::tls::detail
