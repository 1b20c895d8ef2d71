#include "tls/SiteCertificates.hpp"

#include "TlsTestSupport.hpp"
#include "common/Error.hpp"
#include "tls/AcmeClient.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <set>

namespace shoal::tls {
namespace {

using test::TempDirectory;

struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using Certificate = std::unique_ptr<X509, X509Free>;

std::vector<Certificate> parseAll(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::vector<Certificate> certificates;
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate);
  }
  return certificates;
}

std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> parseKey(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return {PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
}

std::vector<std::string> dnsNames(X509* certificate) {
  std::vector<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
    EXPECT_EQ(name->type, GEN_DNS);
    if (name->type == GEN_DNS) {
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                         ASN1_STRING_length(name->d.dNSName));
    }
  }
  GENERAL_NAMES_free(general);
  return names;
}

std::string commonName(X509* certificate) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

// X509_V_OK when `leaf` verifies against `root` as a TLS server certificate.
int verify(X509* leaf, X509* root) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), root);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> context(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
  X509_verify_cert(context.get());
  return X509_STORE_CTX_get_error(context.get());
}

void expectInvalid(const std::vector<std::string>& names, const std::string& mentioned) {
  try {
    validateSiteCertificateNames(names);
    ADD_FAILURE() << "accepted " << (names.empty() ? "no names" : names.back());
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::InvalidArgument) << error.what();
    EXPECT_NE(std::string(error.what()).find(mentioned), std::string::npos) << error.what();
  }
}

TEST(SiteCertificates, IssuesALeafWithItsNamesChainedToTheClusterCa) {
  TempDirectory dir;
  const CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA");
  const SiteCertificates sites(ca);
  const std::vector<std::string> names{"acme.test", "www.acme.test", "*.shop.acme.test"};
  const auto before = std::chrono::system_clock::now();
  const SiteCertificate site = sites.issue(names);

  EXPECT_EQ(site.issuer, "cluster-ca");
  EXPECT_EQ(site.names, names);
  const std::vector<Certificate> chain = parseAll(site.certificatePem);
  ASSERT_EQ(chain.size(), 2u) << "the leaf, then the CA";
  X509* leaf = chain[0].get();
  EXPECT_EQ(fingerprintOfPem(ca.certificatePem()), fingerprintOfPem(site.certificatePem.substr(
                                                        site.certificatePem.find("-----END CERTIFICATE-----") + 26)));
  EXPECT_EQ(fingerprintOfPem(site.certificatePem), site.fingerprint);
  EXPECT_EQ(site.fingerprint.rfind("sha256:", 0), 0u);
  EXPECT_EQ(site.fingerprint.size(), 7u + 64u);

  EXPECT_EQ(commonName(leaf), "acme.test");
  const std::vector<std::string> sans = dnsNames(leaf);
  EXPECT_EQ(std::set<std::string>(sans.begin(), sans.end()), std::set<std::string>(names.begin(), names.end()));
  EXPECT_EQ(sans.size(), names.size());

  const std::vector<Certificate> caCertificate = parseAll(ca.certificatePem());
  ASSERT_EQ(caCertificate.size(), 1u);
  EXPECT_EQ(verify(leaf, caCertificate[0].get()), X509_V_OK);
  TempDirectory otherDir;
  const CertificateAuthority other = CertificateAuthority::loadOrCreate(otherDir.path() / "ca", "another CA");
  EXPECT_NE(verify(leaf, parseAll(other.certificatePem())[0].get()), X509_V_OK) << "the test can fail";

  EXPECT_TRUE(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ca(leaf), 0);

  auto key = parseKey(site.keyPem);
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  EXPECT_EQ(X509_check_private_key(leaf, key.get()), 1);
  EXPECT_EQ(site.keyPem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);

  const auto ninetyDays = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 90)).count();
  const auto beforeMs = std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count();
  EXPECT_GE(site.notAfterMs, beforeMs + ninetyDays - 2000);
  EXPECT_LE(site.notAfterMs, beforeMs + ninetyDays + 60'000);
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(leaf)), 1);
  EXPECT_TRUE(days == 89 || days == 90) << days;
}

TEST(SiteCertificates, EveryIssueHasItsOwnKeyAndSerial) {
  TempDirectory dir;
  const SiteCertificates sites(CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA"));
  const SiteCertificate first = sites.issue({"acme.test"});
  const SiteCertificate second = sites.issue({"acme.test"});
  EXPECT_NE(first.fingerprint, second.fingerprint);
  EXPECT_NE(first.keyPem, second.keyPem);
  auto a = parseAll(first.certificatePem);
  auto b = parseAll(second.certificatePem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a[0].get()), X509_get0_serialNumber(b[0].get())), 0);
}

TEST(SiteCertificates, NamesAreValidatedNamingTheField) {
  expectInvalid({}, "names: at least one");
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("n" + std::to_string(i) + ".acme.test");
  expectInvalid(many, "at most 100");
  many.pop_back();
  EXPECT_NO_THROW(validateSiteCertificateNames(many));

  expectInvalid({"acme.test", ""}, "names[1]: '' is empty");
  expectInvalid({"Acme.test"}, "names[0]: 'Acme.test' is not lower-case");
  expectInvalid({"acme..test"}, "empty label");
  expectInvalid({"acme.test."}, "empty label");
  expectInvalid({"-acme.test"}, "starting or ending with '-'");
  expectInvalid({"acme_site.test"}, "a-z, 0-9");
  expectInvalid({"bücher.test"}, "xn--");
  expectInvalid({"acme.test", "www.*.acme.test"}, "names[1]");
  expectInvalid({"w*.acme.test"}, "whole first label");
  expectInvalid({"*.test"}, "fewer than two labels");
  expectInvalid({"10.0.0.1"}, "all-numeric");
  expectInvalid({"acme.test", "www.acme.test", "acme.test"}, "names[2]: 'acme.test' is listed twice");
  expectInvalid({std::string(64, 'a') + ".test"}, "label longer than 63");
  const std::string longName = std::string(40, 'a') + "." + std::string(40, 'b') + ".test";
  expectInvalid({longName}, "names[0]: '" + longName + "' is longer than 64 bytes");
  EXPECT_NO_THROW(validateSiteCertificateNames({"acme.test", longName}));
  std::string tooLong;
  while (tooLong.size() < 250) tooLong += std::string(60, 'c') + ".";
  tooLong += "test";
  expectInvalid({"acme.test", tooLong}, "longer than 253");

  EXPECT_NO_THROW(validateSiteCertificateNames({"xn--bcher-kva.test", "*.acme.test", "a-1.b2.test", "localhost"}));

  TempDirectory dir;
  const SiteCertificates sites(CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA"));
  EXPECT_THROW(sites.issue({"ACME.test"}), Error);
}

TEST(SiteCertificates, FromPemRefusesAKeyOfAnotherCertificate) {
  TempDirectory dir;
  const SiteCertificates sites(CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA"));
  const SiteCertificate first = sites.issue({"acme.test"});
  const SiteCertificate second = sites.issue({"acme.test"});
  try {
    siteCertificateFromPem("acme", {"acme.test"}, first.certificatePem, second.keyPem, "acme.test.crt");
    ADD_FAILURE() << "a foreign key was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(error.what()).find("acme.test.crt: the private key does not belong"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(siteCertificateFromPem("acme", {"acme.test"}, "junk", first.keyPem, "x"), Error);
  EXPECT_THROW(siteCertificateFromPem("acme", {"acme.test"}, first.certificatePem, "junk", "x"), Error);
  const SiteCertificate same =
      siteCertificateFromPem("acme", {"acme.test"}, first.certificatePem, first.keyPem, "acme.test.crt");
  EXPECT_EQ(same.fingerprint, first.fingerprint);
  EXPECT_EQ(same.notAfterMs, first.notAfterMs);
  EXPECT_EQ(same.issuer, "acme");
}

TEST(AcmeRenewalDue, WithinTheWindowOrExpired) {
  const std::int64_t day = 86'400'000;
  const std::int64_t now = 1'790'000'000'000;
  EXPECT_FALSE(renewalDue(now + 31 * day, now, 30));
  EXPECT_TRUE(renewalDue(now + 30 * day, now, 30));
  EXPECT_TRUE(renewalDue(now + 29 * day, now, 30));
  EXPECT_TRUE(renewalDue(now - day, now, 30));
  EXPECT_FALSE(renewalDue(now + 1, now, 0));
  EXPECT_TRUE(renewalDue(now, now, 0));
  EXPECT_FALSE(renewalDue(now + 1, now, -5));
}

TEST(AcmeClientSettings, AreValidatedNamingTheSetting) {
  TempDirectory dir;
  const AcmeSettings good{"https://acme.example/directory", "admin@example.org", {}, dir.path() / "webroot",
                          dir.path() / "state"};
  EXPECT_NO_THROW(AcmeClient{good});
  auto expectSetting = [&](AcmeSettings settings, const std::string& mentioned) {
    try {
      AcmeClient client(std::move(settings));
      ADD_FAILURE() << "accepted settings that name " << mentioned;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
      EXPECT_EQ(std::string(error.what()).rfind(mentioned, 0), 0u) << error.what();
    }
  };
  AcmeSettings s = good;
  s.directoryUrl = "acme.example/directory";
  expectSetting(s, "acme_directory");
  s = good;
  s.email = "admin";
  expectSetting(s, "acme_email");
  s = good;
  s.caFile = dir.path() / "missing.pem";
  expectSetting(s, "acme_ca_file");
  s = good;
  s.webroot = "relative/webroot";
  expectSetting(s, "acme_webroot");
  s = good;
  s.timeout = std::chrono::milliseconds(10);
  expectSetting(s, "acme timeout");

  const AcmeClient client(good);
  EXPECT_EQ(client.certificateFile("acme.test"), dir.path() / "state" / "certificates" / "acme.test.crt");
  try {
    client.obtain({"*.acme.test"});
    ADD_FAILURE() << "a wildcard was accepted for http-01";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(error.what()).find("names[0]"), std::string::npos) << error.what();
  }
  EXPECT_THROW(client.obtain({"Acme.test"}), Error);
}

}  // namespace
}  // namespace shoal::tls
