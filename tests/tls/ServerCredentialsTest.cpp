#include "TlsTestSupport.hpp"
#include "common/Error.hpp"
#include "tls/CertificateAuthority.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>

namespace shoal::tls {
namespace {

using test::TempDirectory;

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

bool certificateHasIp(const std::string& pem, const char* ip) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                         X509_free);
  return certificate && X509_check_ip_asc(certificate.get(), ip, 0) == 1;
}

class ServerCredentialsTest : public testing::Test {
 protected:
  TempDirectory dir;
  CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA");
  std::filesystem::path serverDir = dir.path() / "server";
};

TEST_F(ServerCredentialsTest, IssuesAKeyAndCertificateSignedByTheCa) {
  const ServerCredentials credentials = ensureServerCredentials(serverDir, ca, {"127.0.0.1", "manager.example"});
  EXPECT_EQ(credentials.certificateFile, serverDir / "server.crt");
  EXPECT_EQ(credentials.keyFile, serverDir / "server.key");
  EXPECT_EQ(credentials.caFile, ca.certificateFile());
  struct stat info {};
  ASSERT_EQ(::stat(credentials.keyFile.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_TRUE(certificateHasIp(readFile(credentials.certificateFile), "127.0.0.1"));
  EXPECT_NO_THROW(fingerprintOfPem(readFile(credentials.certificateFile)));
}

TEST_F(ServerCredentialsTest, KeepsTheCredentialsWhileTheNamesMatchInAnyOrderOrCase) {
  const ServerCredentials first = ensureServerCredentials(serverDir, ca, {"127.0.0.1", "Manager.Example"});
  const std::string certificate = readFile(first.certificateFile);
  const std::string key = readFile(first.keyFile);

  const ServerCredentials second = ensureServerCredentials(serverDir, ca, {"manager.example", "127.0.0.1", "127.0.0.1"});

  EXPECT_EQ(readFile(second.certificateFile), certificate);
  EXPECT_EQ(readFile(second.keyFile), key);
}

TEST_F(ServerCredentialsTest, ReissuesWhenTheNamesChange) {
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  const std::string before = readFile(serverDir / "server.crt");
  ensureServerCredentials(serverDir, ca, {"127.0.0.1", "10.0.0.9"});
  const std::string after = readFile(serverDir / "server.crt");
  EXPECT_NE(after, before);
  EXPECT_TRUE(certificateHasIp(after, "10.0.0.9"));
}

TEST_F(ServerCredentialsTest, ReissuesWhenTheCertificateExpiresWithinThirtyDays) {
  std::filesystem::create_directories(serverDir);
  const IssuedCertificate expiring = ca.issueServerCertificate("127.0.0.1", {"127.0.0.1"}, 29);
  writeFile(serverDir / "server.crt", expiring.certificatePem);
  writeFile(serverDir / "server.key", expiring.privateKeyPem);
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  EXPECT_NE(readFile(serverDir / "server.crt"), expiring.certificatePem);

  const IssuedCertificate lasting = ca.issueServerCertificate("127.0.0.1", {"127.0.0.1"}, 31);
  writeFile(serverDir / "server.crt", lasting.certificatePem);
  writeFile(serverDir / "server.key", lasting.privateKeyPem);
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  EXPECT_EQ(readFile(serverDir / "server.crt"), lasting.certificatePem);
}

TEST_F(ServerCredentialsTest, ReissuesWhenTheCaChanged) {
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  const std::string before = readFile(serverDir / "server.crt");
  const CertificateAuthority otherCa = CertificateAuthority::loadOrCreate(dir.path() / "other-ca", "other CA");
  const ServerCredentials credentials = ensureServerCredentials(serverDir, otherCa, {"127.0.0.1"});
  EXPECT_NE(readFile(serverDir / "server.crt"), before);
  EXPECT_EQ(credentials.caFile, otherCa.certificateFile());
}

TEST_F(ServerCredentialsTest, ReissuesWhenTheKeyDoesNotMatchOrIsMissing) {
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  const std::string before = readFile(serverDir / "server.crt");
  writeFile(serverDir / "server.key", ca.issueServerCertificate("x", {"127.0.0.1"}).privateKeyPem);
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  const std::string afterMismatch = readFile(serverDir / "server.crt");
  EXPECT_NE(afterMismatch, before);

  std::filesystem::remove(serverDir / "server.key");
  ensureServerCredentials(serverDir, ca, {"127.0.0.1"});
  EXPECT_NE(readFile(serverDir / "server.crt"), afterMismatch);
  EXPECT_TRUE(std::filesystem::exists(serverDir / "server.key"));
}

TEST_F(ServerCredentialsTest, RefusesAnEmptyNameList) {
  EXPECT_THROW(
      {
        try {
          ensureServerCredentials(serverDir, ca, {});
        } catch (const Error& error) {
          EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
          throw;
        }
      },
      Error);
}

}  // namespace
}  // namespace shoal::tls
