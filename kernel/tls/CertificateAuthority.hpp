#pragma once
// The Cluster Manager's own certificate authority: it signs the manager's server certificate,
// and joining nodes pin it by fingerprint (docs/adr/0004-tls-and-pinning.md).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace shoal::tls {

struct IssuedCertificate {
  std::string certificatePem;
  std::string privateKeyPem;  // PKCS#8, unencrypted
};

class CertificateAuthority {
 public:
  // Loads <dir>/ca.crt + <dir>/ca.key, or creates them when both are absent: an EC P-256
  // key, a self-signed certificate with CA:TRUE (path length 0), keyCertSign, valid 10 years,
  // subject CN = commonName. Both files are written atomically (temporary file + rename); the
  // key file has mode 0600; a directory created here has mode 0700. `commonName` is used only
  // when creating. Exactly one of the two files present, a file unreadable or not PEM, a key
  // that does not belong to the certificate, or a certificate that is no CA: Error(Failed)
  // naming the file. An empty or over-long commonName: Error(InvalidArgument).
  static CertificateAuthority loadOrCreate(const std::filesystem::path& dir, const std::string& commonName);

  // The CA certificate, PEM.
  const std::string& certificatePem() const;
  // <dir>/ca.crt, the file certificatePem() was loaded from or written to.
  const std::filesystem::path& certificateFile() const;
  // "sha256:" + lowercase hex of SHA-256 over the CA certificate's DER encoding.
  std::string fingerprint() const;

  // A server certificate signed by this CA: a fresh EC P-256 key, subject CN = commonName,
  // CA:FALSE, digitalSignature, extended key usage serverAuth, one subject alternative name
  // per entry of `names` (an IPv4/IPv6 literal becomes an IP SAN, anything else a DNS SAN),
  // a random serial (126 random bits), valid from one hour ago (clock skew between hosts)
  // until `days` days from now. Error(InvalidArgument) for an empty `names`, a name that is
  // neither an IP literal nor a DNS name (letters, digits, '-', dots; optionally a leading
  // "*."), an empty or over-long commonName, or days < 1.
  IssuedCertificate issueServerCertificate(const std::string& commonName, const std::vector<std::string>& names,
                                           int days = 825) const;

 private:
  struct State;
  explicit CertificateAuthority(std::shared_ptr<const State> state);
  std::shared_ptr<const State> state_;
};

// The same fingerprint as CertificateAuthority::fingerprint() for the first certificate in
// `certificatePem`; Error(InvalidArgument) if it holds no PEM certificate.
std::string fingerprintOfPem(const std::string& certificatePem);

struct ServerCredentials {
  std::filesystem::path certificateFile;  // the server certificate alone (no chain)
  std::filesystem::path keyFile;          // its private key, mode 0600
  std::filesystem::path caFile;           // the CA certificate (CertificateAuthority::certificateFile())
};

// Ensures <dir>/server.crt + <dir>/server.key hold a certificate of `ca` for exactly the set
// of `names` (order and case of DNS names do not matter) and its key. They are (re-)issued,
// with CN = names.front() ("shoal" if that exceeds 64 bytes) and the default lifetime, when a
// file is missing or unreadable, the key does not match, the certificate was not signed by
// `ca`, its SANs differ from `names`, or it is not yet valid or expires within 30 days.
// Returns the paths. Error(InvalidArgument) for invalid names (as issueServerCertificate),
// Error(Failed) when the files cannot be written.
ServerCredentials ensureServerCredentials(const std::filesystem::path& dir, const CertificateAuthority& ca,
                                          const std::vector<std::string>& names);

}  // namespace shoal::tls
