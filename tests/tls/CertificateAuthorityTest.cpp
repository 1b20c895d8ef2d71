#include "tls/CertificateAuthority.hpp"

#include "TlsTestSupport.hpp"
#include "common/Error.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <set>

namespace shoal::tls {
namespace {

using test::TempDirectory;

struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using Certificate = std::unique_ptr<X509, X509Free>;

Certificate parse(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return Certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

mode_t permissions(const std::filesystem::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

// Days from now until `time` (negative when in the past).
int daysFromNow(const ASN1_TIME* time) {
  int days = 0;
  int seconds = 0;
  EXPECT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, time), 1);
  return days;
}

std::set<std::string> alternativeNames(X509* certificate) {
  std::set<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
    if (name->type == GEN_DNS) {
      names.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                                        ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      names.insert("IP:" + std::to_string(ASN1_STRING_length(name->d.iPAddress)) + "bytes");
    }
  }
  GENERAL_NAMES_free(general);
  return names;
}

template <class Body>
void expectError(ErrorCode code, const std::string& mentioned, Body body) {
  try {
    body();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    EXPECT_NE(std::string(error.what()).find(mentioned), std::string::npos) << error.what();
  }
}

TEST(CertificateAuthority, CreatesItsCaOnceAndReloadsTheSameOne) {
  TempDirectory dir;
  const CertificateAuthority created = CertificateAuthority::loadOrCreate(dir.path() / "pki", "shoal test CA");
  const std::string certificateOnDisk = readFile(dir.path() / "pki" / "ca.crt");
  const std::string keyOnDisk = readFile(dir.path() / "pki" / "ca.key");

  const CertificateAuthority reloaded = CertificateAuthority::loadOrCreate(dir.path() / "pki", "another name");

  EXPECT_EQ(reloaded.fingerprint(), created.fingerprint());
  EXPECT_EQ(reloaded.certificatePem(), created.certificatePem());
  EXPECT_EQ(created.certificatePem(), certificateOnDisk);
  EXPECT_EQ(readFile(dir.path() / "pki" / "ca.key"), keyOnDisk) << "reloading must not rewrite the key";
  EXPECT_EQ(reloaded.certificateFile(), dir.path() / "pki" / "ca.crt");
  EXPECT_EQ(created.fingerprint().rfind("sha256:", 0), 0u);
  EXPECT_EQ(created.fingerprint().size(), 7u + 64u);
}

TEST(CertificateAuthority, WritesTheKeyFileOwnerOnlyAndLeavesNoTemporaryFiles) {
  TempDirectory dir;
  CertificateAuthority::loadOrCreate(dir.path() / "pki", "shoal test CA");
  EXPECT_EQ(permissions(dir.path() / "pki" / "ca.key"), 0600);
  EXPECT_EQ(permissions(dir.path() / "pki" / "ca.crt"), 0644);
  EXPECT_EQ(permissions(dir.path() / "pki"), 0700) << "a directory created for the key is private";
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "pki")) {
    files.insert(entry.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"ca.crt", "ca.key"}));
}

TEST(CertificateAuthority, CreatesASelfSignedP256CaValidForTenYears) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  Certificate certificate = parse(ca.certificatePem());
  ASSERT_TRUE(certificate);

  EXPECT_EQ(X509_check_ca(certificate.get()), 1);
  EXPECT_EQ(X509_check_issued(certificate.get(), certificate.get()), X509_V_OK) << "self-signed";
  EXPECT_EQ(X509_verify(certificate.get(), X509_get0_pubkey(certificate.get())), 1);
  EXPECT_EQ(X509_get_key_usage(certificate.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

  const EVP_PKEY* key = X509_get0_pubkey(certificate.get());
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  std::array<char, 64> group{};
  size_t groupLength = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group.data(), group.size(), &groupLength), 1);
  EXPECT_STREQ(group.data(), "prime256v1");

  std::array<char, 128> commonName{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate.get()), NID_commonName, commonName.data(),
                            static_cast<int>(commonName.size()));
  EXPECT_STREQ(commonName.data(), "shoal test CA");

  const int days = daysFromNow(X509_get0_notAfter(certificate.get()));
  EXPECT_GE(days, 3649);
  EXPECT_LE(days, 3650);
  EXPECT_LE(daysFromNow(X509_get0_notBefore(certificate.get())), 0);
}

TEST(CertificateAuthority, RefusesADirectoryWithOnlyTheCertificate) {
  TempDirectory dir;
  CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  std::filesystem::remove(dir.path() / "ca.key");
  expectError(ErrorCode::Failed, (dir.path() / "ca.key").string(),
              [&] { CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA"); });
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "ca.key")) << "no new key may be created next to an old certificate";
}

TEST(CertificateAuthority, RefusesADirectoryWithOnlyTheKey) {
  TempDirectory dir;
  CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  std::filesystem::remove(dir.path() / "ca.crt");
  expectError(ErrorCode::Failed, (dir.path() / "ca.crt").string(),
              [&] { CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA"); });
}

TEST(CertificateAuthority, RefusesAnUnreadableOrMalformedKeyFileNamingIt) {
  TempDirectory dir;
  CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  std::filesystem::remove(dir.path() / "ca.key");
  std::filesystem::create_directory(dir.path() / "ca.key");
  expectError(ErrorCode::Failed, (dir.path() / "ca.key").string(),
              [&] { CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA"); });

  std::filesystem::remove(dir.path() / "ca.key");
  writeFile(dir.path() / "ca.key", "not a key\n");
  expectError(ErrorCode::Failed, (dir.path() / "ca.key").string(),
              [&] { CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA"); });
}

TEST(CertificateAuthority, RefusesAKeyThatDoesNotBelongToTheCertificate) {
  TempDirectory first;
  TempDirectory second;
  CertificateAuthority::loadOrCreate(first.path(), "first");
  CertificateAuthority::loadOrCreate(second.path(), "second");
  std::filesystem::copy_file(second.path() / "ca.key", first.path() / "ca.key",
                             std::filesystem::copy_options::overwrite_existing);
  expectError(ErrorCode::Failed, "does not belong",
              [&] { CertificateAuthority::loadOrCreate(first.path(), "first"); });
}

TEST(CertificateAuthority, RefusesAnEmptyCommonName) {
  TempDirectory dir;
  expectError(ErrorCode::InvalidArgument, "common name", [&] { CertificateAuthority::loadOrCreate(dir.path(), ""); });
}

TEST(CertificateAuthority, FingerprintOfPemMatchesTheCaFingerprint) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  EXPECT_EQ(fingerprintOfPem(ca.certificatePem()), ca.fingerprint());
  EXPECT_EQ(fingerprintOfPem(readFile(ca.certificateFile())), ca.fingerprint());
}

TEST(CertificateAuthority, FingerprintOfGarbageIsInvalidArgument) {
  expectError(ErrorCode::InvalidArgument, "PEM", [] { fingerprintOfPem("garbage"); });
  expectError(ErrorCode::InvalidArgument, "PEM", [] {
    fingerprintOfPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  });
  expectError(ErrorCode::InvalidArgument, "PEM", [] { fingerprintOfPem(""); });
}

TEST(CertificateAuthority, IssuesServerCertificatesWithIpAndDnsSansForServerAuth) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  const IssuedCertificate issued =
      ca.issueServerCertificate("manager", {"127.0.0.1", "::1", "Manager.Example", "10.0.0.5"}, 90);

  Certificate certificate = parse(issued.certificatePem);
  Certificate caCertificate = parse(ca.certificatePem());
  ASSERT_TRUE(certificate);
  EXPECT_EQ(X509_check_issued(caCertificate.get(), certificate.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(certificate.get(), X509_get0_pubkey(caCertificate.get())), 1);
  EXPECT_EQ(X509_check_ca(certificate.get()), 0);
  EXPECT_EQ(X509_check_purpose(certificate.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_TRUE(X509_get_extended_key_usage(certificate.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "10.0.0.5", 0), 1);
  EXPECT_EQ(X509_check_host(certificate.get(), "manager.example", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr), 1);
  EXPECT_EQ(alternativeNames(certificate.get()),
            (std::set<std::string>{"IP:4bytes", "IP:16bytes", "DNS:manager.example"}));
  const int days = daysFromNow(X509_get0_notAfter(certificate.get()));
  EXPECT_GE(days, 89);
  EXPECT_LE(days, 90);

  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(issued.privateKeyPem.data(), static_cast<int>(issued.privateKeyPem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
                                                         EVP_PKEY_free);
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_private_key(certificate.get(), key.get()), 1);
}

TEST(CertificateAuthority, GivesEveryCertificateADifferentRandomSerial) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  Certificate first = parse(ca.issueServerCertificate("a", {"127.0.0.1"}).certificatePem);
  Certificate second = parse(ca.issueServerCertificate("a", {"127.0.0.1"}).certificatePem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(first.get()), X509_get0_serialNumber(second.get())), 0);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(first.get()), X509_get0_serialNumber(parse(ca.certificatePem()).get())), 0);
}

TEST(CertificateAuthority, RefusesNamesThatAreNeitherIpLiteralsNorDnsNames) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path(), "shoal test CA");
  for (const char* bad : {"", "bad name", "a,DNS:evil.example", "-leading.example", "[::1]", "1.2.3.4.5",
                                 "manager..example"}) {
    expectError(ErrorCode::InvalidArgument, "", [&] { ca.issueServerCertificate("m", {bad}); });
  }
  expectError(ErrorCode::InvalidArgument, "at least one name", [&] { ca.issueServerCertificate("m", {}); });
  expectError(ErrorCode::InvalidArgument, "one day", [&] { ca.issueServerCertificate("m", {"127.0.0.1"}, 0); });
  EXPECT_NO_THROW(ca.issueServerCertificate("m", {"*.cluster.example", "node-1", "fe80::1"}));
}

}  // namespace
}  // namespace shoal::tls
