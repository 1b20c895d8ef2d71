// ensureServerCredentials (declared with ServerCredentials in CertificateAuthority.hpp).
#include "common/Error.hpp"
#include "tls/AtomicFile.hpp"
#include "tls/CertificateAuthority.hpp"
#include "tls/OpenSsl.hpp"

#include <ctime>

namespace shoal::tls {

namespace {

constexpr std::time_t kRenewBeforeSeconds = 30L * 24 * 3600;

std::string readIfPossible(const std::filesystem::path& path) {
  try {
    return detail::readWholeFile(path);
  } catch (const Error&) {
    return {};
  }
}

// Whether server.crt/server.key as read can be kept: a matching key, signed by the CA,
// exactly the requested names, currently valid and not expiring within 30 days.
bool stillValid(const std::string& certificatePem, const std::string& keyPem, const CertificateAuthority& ca,
                const std::vector<detail::AlternativeName>& wanted) {
  const detail::X509Ptr certificate = detail::parseCertificate(certificatePem);
  const detail::EvpPkeyPtr key = detail::parsePrivateKey(keyPem);
  const detail::X509Ptr caCertificate = detail::parseCertificate(ca.certificatePem());
  if (!certificate || !key || !caCertificate) return false;

  bool valid = X509_check_private_key(certificate.get(), key.get()) == 1 &&
               X509_check_issued(caCertificate.get(), certificate.get()) == X509_V_OK &&
               X509_verify(certificate.get(), X509_get0_pubkey(caCertificate.get())) == 1;
  if (valid) {
    std::time_t renewAt = std::time(nullptr) + kRenewBeforeSeconds;
    valid = X509_cmp_current_time(X509_get0_notBefore(certificate.get())) < 0 &&
            X509_cmp_time(X509_get0_notAfter(certificate.get()), &renewAt) > 0;
  }
  detail::takeErrors();
  return valid && detail::alternativeNames(certificate.get()) == wanted;
}

}  // namespace

ServerCredentials ensureServerCredentials(const std::filesystem::path& dir, const CertificateAuthority& ca,
                                          const std::vector<std::string>& names) {
  const std::vector<detail::AlternativeName> wanted = detail::toAlternativeNames(names);
  ServerCredentials credentials{dir / "server.crt", dir / "server.key", ca.certificateFile()};
  if (stillValid(readIfPossible(credentials.certificateFile), readIfPossible(credentials.keyFile), ca, wanted)) {
    return credentials;
  }
  // The CN plays no part in verification (the SANs do); it only has to fit its 64 bytes.
  const std::string commonName = names.front().size() <= 64 ? names.front() : std::string("shoal");
  const IssuedCertificate issued = ca.issueServerCertificate(commonName, names);
  detail::createPrivateDirectory(dir);
  detail::writeFileAtomically(credentials.keyFile, issued.privateKeyPem, 0600);
  detail::writeFileAtomically(credentials.certificateFile, issued.certificatePem, 0644);
  return credentials;
}

}  // namespace shoal::tls
