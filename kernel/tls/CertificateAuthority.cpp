#include "tls/CertificateAuthority.hpp"

#include "common/Error.hpp"
#include "tls/AtomicFile.hpp"
#include "tls/OpenSsl.hpp"

#include <openssl/bn.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <system_error>

namespace shoal::tls {

using detail::EvpPkeyPtr;
using detail::X509Ptr;

struct CertificateAuthority::State {
  std::filesystem::path certificateFile;
  X509Ptr certificate;
  EvpPkeyPtr key;
  std::string certificatePem;
  std::string fingerprint;
};

namespace {

constexpr int kCaValidityDays = 3650;
constexpr long kBackdateSeconds = 3600;
constexpr std::size_t kMaxCommonNameLength = 64;  // ub-common-name, RFC 5280

[[noreturn]] void failOpenSsl(const std::string& what) {
  const std::string errors = detail::takeErrors();
  throw Error(ErrorCode::Internal, what + (errors.empty() ? std::string() : ": " + errors));
}

void checkCommonName(const std::string& commonName) {
  if (commonName.empty() || commonName.size() > kMaxCommonNameLength) {
    throw Error(ErrorCode::InvalidArgument, "certificate common name must be 1 to 64 bytes long");
  }
}

EvpPkeyPtr generateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) failOpenSsl("cannot generate an EC P-256 key");
  return key;
}

void setRandomSerial(X509* certificate) {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) failOpenSsl("cannot draw a random serial");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // and never zero or short
  std::unique_ptr<BIGNUM, detail::OpenSslFree<BN_free>> number(
      BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!number || !BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(certificate))) {
    failOpenSsl("cannot set the certificate serial");
  }
}

// A v3 certificate for `subjectKey` with subject CN = commonName, a random serial and a
// validity from one hour ago to `days` days from now; issuer, extensions and signature to come.
X509Ptr newCertificate(const std::string& commonName, EVP_PKEY* subjectKey, int days) {
  X509Ptr certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1) {
    failOpenSsl("cannot create a certificate");
  }
  setRandomSerial(certificate.get());
  if (!X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -kBackdateSeconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(certificate.get()), days, 0, nullptr)) {
    failOpenSsl("cannot set the certificate validity");
  }
  X509_NAME* subject = X509_get_subject_name(certificate.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(commonName.c_str()), -1, -1, 0) != 1 ||
      X509_set_pubkey(certificate.get(), subjectKey) != 1) {
    failOpenSsl("cannot set the certificate subject");
  }
  return certificate;
}

void addExtension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  detail::X509ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    failOpenSsl(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid) + " = " + value);
  }
}

void addAlternativeNames(X509* certificate, const std::vector<std::string>& names) {
  detail::GeneralNamesPtr general(sk_GENERAL_NAME_new_null());
  if (!general) failOpenSsl("cannot allocate subject alternative names");
  std::vector<detail::AlternativeName> added;
  for (const std::string& name : names) {
    detail::AlternativeName alternative = detail::toAlternativeName(name);
    if (std::find(added.begin(), added.end(), alternative) != added.end()) continue;
    GENERAL_NAME* entry = GENERAL_NAME_new();
    ASN1_STRING* value = alternative.isIp ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    if (!entry || !value ||
        ASN1_STRING_set(value, alternative.value.data(), static_cast<int>(alternative.value.size())) != 1) {
      GENERAL_NAME_free(entry);
      ASN1_STRING_free(value);
      failOpenSsl("cannot encode subject alternative name " + name);
    }
    GENERAL_NAME_set0_value(entry, alternative.isIp ? GEN_IPADD : GEN_DNS, value);
    if (sk_GENERAL_NAME_push(general.get(), entry) <= 0) {
      GENERAL_NAME_free(entry);
      failOpenSsl("cannot add subject alternative name " + name);
    }
    added.push_back(std::move(alternative));
  }
  if (X509_add1_ext_i2d(certificate, NID_subject_alt_name, general.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    failOpenSsl("cannot add the subject alternative names");
  }
}

void sign(X509* certificate, EVP_PKEY* issuerKey) {
  if (X509_sign(certificate, issuerKey, EVP_sha256()) <= 0) failOpenSsl("cannot sign the certificate");
}

bool pathExists(const std::filesystem::path& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::symlink_status(path, error);
  if (error && error != std::errc::no_such_file_or_directory) {
    throw Error(ErrorCode::Failed, "cannot access " + path.string() + ": " + error.message());
  }
  return std::filesystem::exists(status);
}

}  // namespace

CertificateAuthority::CertificateAuthority(std::shared_ptr<const State> state) : state_(std::move(state)) {}

CertificateAuthority CertificateAuthority::loadOrCreate(const std::filesystem::path& dir,
                                                        const std::string& commonName) {
  auto state = std::make_shared<State>();
  state->certificateFile = dir / "ca.crt";
  const std::filesystem::path keyFile = dir / "ca.key";
  const bool haveCertificate = pathExists(state->certificateFile);
  const bool haveKey = pathExists(keyFile);

  if (!haveCertificate && !haveKey) {
    checkCommonName(commonName);
    state->key = generateP256Key();
    state->certificate = newCertificate(commonName, state->key.get(), kCaValidityDays);
    X509* certificate = state->certificate.get();
    if (X509_set_issuer_name(certificate, X509_get_subject_name(certificate)) != 1) {
      failOpenSsl("cannot set the CA issuer");
    }
    addExtension(certificate, certificate, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    addExtension(certificate, certificate, NID_key_usage, "critical,keyCertSign,cRLSign");
    addExtension(certificate, certificate, NID_subject_key_identifier, "hash");
    sign(certificate, state->key.get());
    state->certificatePem = detail::toPem(certificate);
    const std::string keyPem = detail::toPem(state->key.get());
    if (state->certificatePem.empty() || keyPem.empty()) failOpenSsl("cannot encode the CA as PEM");
    detail::createPrivateDirectory(dir);
    // The key first: a crash in between leaves a key without certificate, which the next
    // start reports instead of silently creating a second CA.
    detail::writeFileAtomically(keyFile, keyPem, 0600);
    detail::writeFileAtomically(state->certificateFile, state->certificatePem, 0644);
  } else if (haveCertificate != haveKey) {
    const std::filesystem::path& present = haveCertificate ? state->certificateFile : keyFile;
    const std::filesystem::path& missing = haveCertificate ? keyFile : state->certificateFile;
    throw Error(ErrorCode::Failed, "CA file " + missing.string() + " is missing while " + present.string() +
                                       " exists; restore it, or remove both to create a new CA");
  } else {
    state->certificate = detail::parseCertificate(detail::readWholeFile(state->certificateFile));
    if (!state->certificate) {
      throw Error(ErrorCode::Failed, "CA certificate file " + state->certificateFile.string() +
                                         " holds no PEM certificate");
    }
    state->key = detail::parsePrivateKey(detail::readWholeFile(keyFile));
    if (!state->key) {
      throw Error(ErrorCode::Failed, "CA key file " + keyFile.string() + " holds no unencrypted PEM private key");
    }
    if (X509_check_private_key(state->certificate.get(), state->key.get()) != 1) {
      detail::takeErrors();
      throw Error(ErrorCode::Failed, "CA key file " + keyFile.string() + " does not belong to the certificate in " +
                                         state->certificateFile.string());
    }
    if (X509_check_ca(state->certificate.get()) < 1) {
      throw Error(ErrorCode::Failed, "CA certificate file " + state->certificateFile.string() +
                                         " holds a certificate that is not a CA");
    }
    state->certificatePem = detail::toPem(state->certificate.get());
  }
  state->fingerprint = detail::fingerprint(state->certificate.get());
  if (state->fingerprint.empty()) failOpenSsl("cannot compute the CA fingerprint");
  return CertificateAuthority(std::move(state));
}

const std::string& CertificateAuthority::certificatePem() const { return state_->certificatePem; }

const std::filesystem::path& CertificateAuthority::certificateFile() const { return state_->certificateFile; }

std::string CertificateAuthority::fingerprint() const { return state_->fingerprint; }

IssuedCertificate CertificateAuthority::issueServerCertificate(const std::string& commonName,
                                                               const std::vector<std::string>& names,
                                                               int days) const {
  checkCommonName(commonName);
  detail::toAlternativeNames(names);  // validates all names before any work
  if (days < 1) {
    throw Error(ErrorCode::InvalidArgument, "a server certificate must be valid for at least one day");
  }
  EvpPkeyPtr key = generateP256Key();
  X509Ptr certificate = newCertificate(commonName, key.get(), days);
  X509* issuer = state_->certificate.get();
  if (X509_set_issuer_name(certificate.get(), X509_get_subject_name(issuer)) != 1) {
    failOpenSsl("cannot set the certificate issuer");
  }
  addExtension(certificate.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
  addExtension(certificate.get(), issuer, NID_key_usage, "critical,digitalSignature");
  addExtension(certificate.get(), issuer, NID_ext_key_usage, "serverAuth");
  addExtension(certificate.get(), issuer, NID_subject_key_identifier, "hash");
  addExtension(certificate.get(), issuer, NID_authority_key_identifier, "keyid:always");
  addAlternativeNames(certificate.get(), names);
  sign(certificate.get(), state_->key.get());

  IssuedCertificate issued{detail::toPem(certificate.get()), detail::toPem(key.get())};
  if (issued.certificatePem.empty() || issued.privateKeyPem.empty()) {
    failOpenSsl("cannot encode the server certificate as PEM");
  }
  return issued;
}

std::string fingerprintOfPem(const std::string& certificatePem) {
  X509Ptr certificate = detail::parseCertificate(certificatePem);
  if (!certificate) throw Error(ErrorCode::InvalidArgument, "not a PEM certificate");
  std::string fingerprint = detail::fingerprint(certificate.get());
  if (fingerprint.empty()) failOpenSsl("cannot compute a certificate fingerprint");
  return fingerprint;
}

}  // namespace shoal::tls
