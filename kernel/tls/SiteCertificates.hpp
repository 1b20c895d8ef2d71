#pragma once
// Certificates for the websites of hosting accounts (docs/adr/0013-hosting-accounts.md, the
// account's "certificate"): issued by the cluster's own CA (this file) or by an ACME server
// (AcmeClient.hpp). Both hand back the same SiteCertificate, which the caller stores in the
// account; nothing here keeps a copy.
#include "tls/CertificateAuthority.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace shoal::tls {

// The account's "certificate" object, field for field.
struct SiteCertificate {
  std::string issuer;               // "cluster-ca" or "acme"
  std::vector<std::string> names;   // as asked for; names.front() is the subject CN
  std::string certificatePem;       // the leaf, then its issuer chain: what nginx serves as is
  std::string keyPem;               // the leaf's private key, PKCS#8 unencrypted
  std::int64_t notAfterMs = 0;      // the leaf's notAfter, milliseconds since the epoch
  std::string fingerprint;          // "sha256:" + lowercase hex of SHA-256 over the leaf's DER
};

inline constexpr std::size_t kMaxSiteCertificateNames = 100;
inline constexpr int kSiteCertificateDays = 90;

// Checks the names of a site certificate: 1 to kMaxSiteCertificateNames entries, no
// duplicates, each a lower-case ASCII host name (labels of 1-63 of [a-z0-9-], not starting
// or ending with '-', at most 253 bytes, a last label that is not all digits), of which a
// "*" may only be the whole first label and must be followed by at least two labels. The
// first name becomes the subject common name, so it may be at most 64 bytes.
// Error(InvalidArgument) naming the field ("names" or "names[i]") and the fault.
void validateSiteCertificateNames(const std::vector<std::string>& names);

// Builds a SiteCertificate from PEM as a CA returned it: `certificatePem` holds the leaf first
// (then, optionally, its chain), `keyPem` the leaf's unencrypted private key. Fills notAfterMs
// and fingerprint from the leaf. Error(Failed) naming `source` when there is no certificate,
// no key, or the key does not belong to the leaf.
SiteCertificate siteCertificateFromPem(const std::string& issuer, const std::vector<std::string>& names,
                                       const std::string& certificatePem, const std::string& keyPem,
                                       const std::string& source);

// Issues site certificates from the cluster CA. Holds a copy of the CA handle (cheap: shared
// state); thread-safe, as the CA is immutable.
class SiteCertificates {
 public:
  explicit SiteCertificates(CertificateAuthority ca);

  // A certificate of the cluster CA for `names` (validated as validateSiteCertificateNames):
  // a fresh EC P-256 key, CN = names.front(), one dNSName SAN per name, CA:FALSE,
  // digitalSignature, EKU serverAuth, valid from one hour ago for kSiteCertificateDays days.
  // certificatePem is the leaf followed by the CA certificate; issuer is "cluster-ca".
  SiteCertificate issue(const std::vector<std::string>& names) const;

 private:
  CertificateAuthority ca_;
};

}  // namespace shoal::tls
