#include "tls/SiteCertificates.hpp"

#include "common/Error.hpp"
#include "tls/OpenSsl.hpp"

#include <openssl/asn1.h>

#include <ctime>
#include <set>

namespace shoal::tls {

namespace {

constexpr std::size_t kMaxHostNameLength = 253;
constexpr std::size_t kMaxLabelLength = 63;
constexpr std::size_t kMaxCommonNameLength = 64;

// Empty when `name` is a valid name, else what is wrong with it.
std::string hostNameFault(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxHostNameLength) return "is longer than 253 bytes";
  std::vector<std::string> labels;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    labels.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i];
    if (label.empty()) return "has an empty label";
    if (label == "*") {
      if (i != 0) return "has a '*' that is not the whole first label";
      if (labels.size() < 3) return "is a wildcard over fewer than two labels";
      continue;
    }
    if (label.size() > kMaxLabelLength) return "has a label longer than 63 bytes";
    for (const char c : label) {
      if (c >= 'A' && c <= 'Z') return "is not lower-case";
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        if (c == '*') return "has a '*' that is not the whole first label";
        return "has a character other than a-z, 0-9, '-' and '.' (write IDNs in their xn-- form)";
      }
    }
    if (label.front() == '-' || label.back() == '-') return "has a label starting or ending with '-'";
  }
  if (labels.back().find_first_not_of("0123456789") == std::string::npos) {
    return "ends in an all-numeric label (an IP address is no host name)";
  }
  return {};
}

// Milliseconds since the epoch of an ASN.1 time.
std::int64_t toEpochMs(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) {
    detail::takeErrors();
    throw Error(ErrorCode::Internal, "cannot read a certificate time");
  }
  return static_cast<std::int64_t>(::timegm(&parts)) * 1000;
}

}  // namespace

void validateSiteCertificateNames(const std::vector<std::string>& names) {
  if (names.empty()) throw Error(ErrorCode::InvalidArgument, "names: at least one name is required");
  if (names.size() > kMaxSiteCertificateNames) {
    throw Error(ErrorCode::InvalidArgument, "names: at most 100 names fit one certificate, got " +
                                                std::to_string(names.size()));
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string field = "names[" + std::to_string(i) + "]";
    const std::string fault = hostNameFault(names[i]);
    if (!fault.empty()) throw Error(ErrorCode::InvalidArgument, field + ": '" + names[i] + "' " + fault);
    if (!seen.insert(names[i]).second) {
      throw Error(ErrorCode::InvalidArgument, field + ": '" + names[i] + "' is listed twice");
    }
  }
  if (names.front().size() > kMaxCommonNameLength) {
    throw Error(ErrorCode::InvalidArgument,
                "names[0]: '" + names.front() + "' is longer than 64 bytes, the limit of a certificate's common name");
  }
}

SiteCertificate siteCertificateFromPem(const std::string& issuer, const std::vector<std::string>& names,
                                       const std::string& certificatePem, const std::string& keyPem,
                                       const std::string& source) {
  detail::X509Ptr leaf = detail::parseCertificate(certificatePem);
  if (!leaf) {
    detail::takeErrors();
    throw Error(ErrorCode::Failed, source + ": holds no PEM certificate");
  }
  detail::EvpPkeyPtr key = detail::parsePrivateKey(keyPem);
  if (!key) {
    detail::takeErrors();
    throw Error(ErrorCode::Failed, source + ": holds no unencrypted PEM private key");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    detail::takeErrors();
    throw Error(ErrorCode::Failed, source + ": the private key does not belong to the certificate");
  }
  SiteCertificate site;
  site.issuer = issuer;
  site.names = names;
  site.certificatePem = certificatePem;
  site.keyPem = keyPem;
  site.notAfterMs = toEpochMs(X509_get0_notAfter(leaf.get()));
  site.fingerprint = detail::fingerprint(leaf.get());
  if (site.fingerprint.empty()) {
    detail::takeErrors();
    throw Error(ErrorCode::Internal, source + ": cannot compute the certificate fingerprint");
  }
  return site;
}

SiteCertificates::SiteCertificates(CertificateAuthority ca) : ca_(std::move(ca)) {}

SiteCertificate SiteCertificates::issue(const std::vector<std::string>& names) const {
  validateSiteCertificateNames(names);
  const IssuedCertificate issued = ca_.issueServerCertificate(names.front(), names, kSiteCertificateDays);
  std::string chain = issued.certificatePem;
  if (!chain.empty() && chain.back() != '\n') chain += '\n';
  chain += ca_.certificatePem();
  return siteCertificateFromPem("cluster-ca", names, chain, issued.privateKeyPem, "the cluster CA's certificate");
}

}  // namespace shoal::tls
