#include "tls/Contexts.hpp"

#include "TlsTestSupport.hpp"
#include "common/Error.hpp"

#include <Poco/Delegate.h>
#include <Poco/Exception.h>
#include <Poco/Net/AcceptCertificateHandler.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/VerificationErrorArgs.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace shoal::tls {
namespace {

using test::HttpsTestServer;
using test::TempDirectory;
using test::httpsGet;

// Why a Poco call failed, for assertion messages.
template <class Body>
std::string failureOf(Body body) {
  try {
    body();
  } catch (const Poco::Exception& e) {
    return e.displayText();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

class TlsHandshake : public testing::Test {
 protected:
  TempDirectory dir;
  CertificateAuthority ca = CertificateAuthority::loadOrCreate(dir.path() / "ca", "shoal test CA");
  ServerCredentials credentials = ensureServerCredentials(dir.path() / "server", ca, {"127.0.0.1", "localhost"});

  // Credentials signed by `issuer` for `names`, presented with the chain file `caFile`.
  ServerCredentials credentialsFor(const CertificateAuthority& issuer, const std::string& commonName,
                                   const std::vector<std::string>& names, const std::filesystem::path& caFile) {
    static int counter = 0;
    return test::writeCredentials(dir.path(), "extra" + std::to_string(counter++),
                                  issuer.issueServerCertificate(commonName, names), caFile);
  }
};

TEST_F(TlsHandshake, HttpsRoundTripWithTheCaTrustingClientSucceeds) {
  HttpsTestServer server(makeServerContext(credentials));
  const test::HttpsReply reply = httpsGet(makeClientContext(ca.certificateFile()), server.port());
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "hello");
  EXPECT_EQ(server.requests(), 1);
  std::cout << "[   INFO   ] negotiated " << reply.protocol << " with " << OpenSSL_version(OPENSSL_VERSION) << "\n";
  EXPECT_TRUE(reply.protocol == "TLSv1.3" || reply.protocol == "TLSv1.2") << reply.protocol;
}

TEST_F(TlsHandshake, HttpsRoundTripByDnsNameSucceeds) {
  HttpsTestServer server(makeServerContext(credentials));
  const test::HttpsReply reply = httpsGet(makeClientContext(ca.certificateFile()), server.port(), "localhost");
  EXPECT_EQ(reply.status, 200);
}

TEST_F(TlsHandshake, TlsOneTwoClientIsServedToo) {
  HttpsTestServer server(makeServerContext(credentials));
  const test::RawHandshake handshake = test::rawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION, 1);
  EXPECT_TRUE(handshake.connected) << handshake.errorText;
  EXPECT_EQ(handshake.protocol, "TLSv1.2");
}

TEST_F(TlsHandshake, ServerPresentsTheCaCertificateAtTheEndOfItsChain) {
  HttpsTestServer server(makeServerContext(credentials));
  const test::RawHandshake handshake = test::rawHandshake(server.port(), TLS1_2_VERSION, TLS1_3_VERSION, 1);
  ASSERT_TRUE(handshake.connected) << handshake.errorText;
  ASSERT_EQ(handshake.chainFingerprints.size(), 2u);
  EXPECT_EQ(handshake.chainFingerprints.back(), ca.fingerprint());
}

TEST_F(TlsHandshake, ClientTrustingAnotherCaFailsTheHandshake) {
  const CertificateAuthority otherCa = CertificateAuthority::loadOrCreate(dir.path() / "other-ca", "other CA");
  HttpsTestServer server(makeServerContext(credentials));
  const std::string failure = failureOf([&] { httpsGet(makeClientContext(otherCa.certificateFile()), server.port()); });
  EXPECT_NE(failure.find("certificate verify failed"), std::string::npos) << failure;
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(TlsHandshake, ServerCertificateWithoutTheAddressAsIpSanIsRefused) {
  const ServerCredentials elsewhere = credentialsFor(ca, "manager", {"10.0.0.7", "manager.example"}, ca.certificateFile());
  HttpsTestServer server(makeServerContext(elsewhere));
  const std::string failure = failureOf([&] { httpsGet(makeClientContext(ca.certificateFile()), server.port()); });
  EXPECT_NE(failure.find("certificate verify failed"), std::string::npos) << failure;
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
}

// Poco's own host check (X509_check_host with default flags) would fall back to the CN when a
// certificate has no DNS SAN, and would accept this certificate for 127.0.0.1.
TEST_F(TlsHandshake, CommonNameIsNeverTakenForTheServerAddress) {
  const ServerCredentials cnOnly = credentialsFor(ca, "127.0.0.1", {"10.0.0.7"}, ca.certificateFile());
  HttpsTestServer server(makeServerContext(cnOnly));
  EXPECT_THROW(httpsGet(makeClientContext(ca.certificateFile()), server.port()), Poco::Exception);
  auto pin = std::make_shared<PinResult>();
  EXPECT_THROW(httpsGet(makePinnedClientContext(ca.fingerprint(), pin), server.port()), Poco::Exception);
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(TlsHandshake, PinnedClientWithTheRightFingerprintSucceedsAndRecordsTheCa) {
  HttpsTestServer server(makeServerContext(credentials));
  auto pin = std::make_shared<PinResult>();
  const test::HttpsReply reply = httpsGet(makePinnedClientContext(ca.fingerprint(), pin), server.port());
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(server.requests(), 1);
  std::lock_guard lock(pin->mutex);
  EXPECT_EQ(pin->caCertificatePem, ca.certificatePem());
  EXPECT_EQ(pin->lastError, "");
  EXPECT_EQ(fingerprintOfPem(pin->caCertificatePem), ca.fingerprint());
}

TEST_F(TlsHandshake, PinnedFingerprintMayBeUppercase) {
  HttpsTestServer server(makeServerContext(credentials));
  std::string fingerprint = ca.fingerprint();
  for (std::size_t i = 7; i < fingerprint.size(); ++i) fingerprint[i] = static_cast<char>(std::toupper(fingerprint[i]));
  EXPECT_EQ(httpsGet(makePinnedClientContext(fingerprint, std::make_shared<PinResult>()), server.port()).status, 200);
}

TEST_F(TlsHandshake, PinnedClientWithAWrongFingerprintSendsNothing) {
  const CertificateAuthority otherCa = CertificateAuthority::loadOrCreate(dir.path() / "other-ca", "other CA");
  HttpsTestServer server(makeServerContext(credentials));
  auto pin = std::make_shared<PinResult>();
  const std::string failure =
      failureOf([&] { httpsGet(makePinnedClientContext(otherCa.fingerprint(), pin), server.port()); });
  EXPECT_NE(failure.find("certificate verify failed"), std::string::npos) << failure;
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
  std::lock_guard lock(pin->mutex);
  EXPECT_EQ(pin->caCertificatePem, "");
  EXPECT_NE(pin->lastError.find(otherCa.fingerprint()), std::string::npos) << pin->lastError;
}

// The CA certificate is public: an impostor can append it to its own chain. The fingerprint
// then matches, but the leaf is not signed by that CA.
TEST_F(TlsHandshake, PinnedClientRefusesALeafNotSignedByThePinnedCa) {
  const CertificateAuthority impostorCa = CertificateAuthority::loadOrCreate(dir.path() / "impostor", "impostor");
  const ServerCredentials impostor = credentialsFor(impostorCa, "manager", {"127.0.0.1"}, ca.certificateFile());
  HttpsTestServer server(makeServerContext(impostor));
  const test::RawHandshake presented = test::rawHandshake(server.port(), TLS1_2_VERSION, TLS1_3_VERSION, 1);
  ASSERT_TRUE(presented.connected);
  ASSERT_EQ(presented.chainFingerprints.back(), ca.fingerprint()) << "the impostor presents the real CA";

  auto pin = std::make_shared<PinResult>();
  EXPECT_THROW(httpsGet(makePinnedClientContext(ca.fingerprint(), pin), server.port()), Poco::Exception);
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
  std::lock_guard lock(pin->mutex);
  EXPECT_EQ(pin->caCertificatePem, "");
  EXPECT_NE(pin->lastError.find("depth 0"), std::string::npos) << pin->lastError;
}

TEST_F(TlsHandshake, PinnedClientChecksTheServerAddressToo) {
  const ServerCredentials elsewhere = credentialsFor(ca, "manager", {"10.0.0.7"}, ca.certificateFile());
  HttpsTestServer server(makeServerContext(elsewhere));
  auto pin = std::make_shared<PinResult>();
  EXPECT_THROW(httpsGet(makePinnedClientContext(ca.fingerprint(), pin), server.port()), Poco::Exception);
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
  std::lock_guard lock(pin->mutex);
  EXPECT_NE(pin->lastError.find("IP address mismatch"), std::string::npos) << pin->lastError;
}

// Poco's SSLManager callback would ask these process-wide hooks whether to ignore a failed
// verification; the contexts here must not consult them, in either direction.
class AcceptEverything {
 public:
  void onVerificationError(const void*, Poco::Net::VerificationErrorArgs& args) {
    ++calls;
    args.setIgnoreError(true);
  }
  int calls = 0;
};

TEST_F(TlsHandshake, GlobalAcceptAllCertificateHandlersCannotOverrideARefusal) {
  using Poco::Net::SSLManager;
  const CertificateAuthority otherCa = CertificateAuthority::loadOrCreate(dir.path() / "other-ca", "other CA");
  AcceptEverything hook;
  SSLManager::instance().initializeClient(nullptr, new Poco::Net::AcceptCertificateHandler(false),
                                          makeClientContext(otherCa.certificateFile()));
  SSLManager::instance().ClientVerificationError += Poco::delegate(&hook, &AcceptEverything::onVerificationError);

  HttpsTestServer server(makeServerContext(credentials));
  EXPECT_THROW(httpsGet(makeClientContext(otherCa.certificateFile()), server.port()), Poco::Exception);
  auto pin = std::make_shared<PinResult>();
  EXPECT_THROW(httpsGet(makePinnedClientContext(otherCa.fingerprint(), pin), server.port()), Poco::Exception);
  EXPECT_EQ(httpsGet(makeClientContext(ca.certificateFile()), server.port()).status, 200);

  SSLManager::instance().ClientVerificationError -= Poco::delegate(&hook, &AcceptEverything::onVerificationError);
  SSLManager::instance().initializeClient(nullptr, nullptr, nullptr);
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(hook.calls, 0);
}

TEST_F(TlsHandshake, PlainHttpToTheTlsPortGetsNoHttpResponse) {
  HttpsTestServer server(makeServerContext(credentials));
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", server.port()));
  socket.setReceiveTimeout(Poco::Timespan(5, 0));
  const std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  socket.sendBytes(request.data(), static_cast<int>(request.size()));
  std::string received;
  try {
    char buffer[1024];
    while (const int n = socket.receiveBytes(buffer, sizeof buffer)) {
      if (n < 0) break;
      received.append(buffer, static_cast<std::size_t>(n));
    }
  } catch (const Poco::Exception&) {
    // reset by the server: no response either
  }
  EXPECT_EQ(received.rfind("HTTP/", 0), std::string::npos) << received;
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(TlsHandshake, TlsOneOneClientIsRefusedByTheServer) {
  HttpsTestServer server(makeServerContext(credentials));
  // OpenSSL 3 only builds a TLS 1.1 ClientHello at security level 0 (SHA-1 signatures).
  const test::RawHandshake handshake = test::rawHandshake(server.port(), TLS1_1_VERSION, TLS1_1_VERSION, 0);
  if (!handshake.connected && ERR_GET_REASON(handshake.error) == SSL_R_NO_PROTOCOLS_AVAILABLE) {
    GTEST_SKIP() << "this OpenSSL cannot build a TLS 1.1 client: " << handshake.errorText;
  }
  EXPECT_FALSE(handshake.connected) << handshake.protocol;
  // The refusal is the server's: it answered with a protocol_version alert.
  EXPECT_EQ(ERR_GET_REASON(handshake.error), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) << handshake.errorText;
  ASSERT_TRUE(server.stop());
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(TlsHandshake, FailedHandshakesDoNotDisturbLaterConnectionsOnTheSameServer) {
  const CertificateAuthority otherCa = CertificateAuthority::loadOrCreate(dir.path() / "other-ca", "other CA");
  HttpsTestServer server(makeServerContext(credentials));
  for (int round = 0; round < 4; ++round) {
    EXPECT_THROW(httpsGet(makeClientContext(otherCa.certificateFile()), server.port()), Poco::Exception);
    EXPECT_EQ(httpsGet(makeClientContext(ca.certificateFile()), server.port()).status, 200) << "round " << round;
  }
  EXPECT_EQ(server.requests(), 4);
}

TEST(TlsContexts, RejectMalformedInputsWithClearErrors) {
  TempDirectory dir;
  auto pin = std::make_shared<PinResult>();
  const std::vector<std::string> malformed = {"", "sha256:abc", "md5:" + std::string(64, 'a'),
                                              "sha256:" + std::string(64, 'g'), std::string(64, 'a')};
  for (const std::string& bad : malformed) {
    try {
      makePinnedClientContext(bad, pin);
      ADD_FAILURE() << "accepted fingerprint " << bad;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::InvalidArgument) << bad;
    }
  }
  try {
    makePinnedClientContext("sha256:" + std::string(64, 'a'), nullptr);
    ADD_FAILURE() << "accepted a null PinResult";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::InvalidArgument);
  }
  try {
    makeClientContext(dir.path() / "missing.crt");
    ADD_FAILURE() << "accepted a missing CA file";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(error.what()).find("missing.crt"), std::string::npos) << error.what();
  }
  try {
    makeServerContext({dir.path() / "server.crt", dir.path() / "server.key", dir.path() / "ca.crt"});
    ADD_FAILURE() << "accepted missing credentials";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::Failed);
    EXPECT_NE(std::string(error.what()).find("server.key"), std::string::npos) << error.what();
  }
}

TEST_F(TlsHandshake, ServerRefusesAKeyThatDoesNotMatchItsCertificate) {
  ServerCredentials mismatched = credentials;
  mismatched.keyFile = credentialsFor(ca, "x", {"127.0.0.1"}, ca.certificateFile()).keyFile;
  try {
    makeServerContext(mismatched);
    ADD_FAILURE() << "accepted a mismatched key";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::Failed) << error.what();
  }
}

TEST_F(TlsHandshake, StopLeavesAKeepAliveConnectionRunningButStopAllEndsIt) {
  HttpsTestServer server(makeServerContext(credentials));
  Poco::Net::HTTPSClientSession session("127.0.0.1", server.port(), makeClientContext(ca.certificateFile()));
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/", Poco::Net::HTTPMessage::HTTP_1_1);
  request.setKeepAlive(true);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  session.receiveResponse(response).ignore(1 << 20);
  ASSERT_TRUE(response.getKeepAlive());
  EXPECT_EQ(server.threads().used(), 1) << "the keep-alive connection's thread";

  server.server().stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(server.threads().used(), 1) << "stop() alone leaves the keep-alive connection running";

  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.stop()) << "a connection thread outlived stopAll(true)";
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(server.threads().used(), 0);

  Poco::Net::HTTPRequest again(Poco::Net::HTTPRequest::HTTP_GET, "/", Poco::Net::HTTPMessage::HTTP_1_1);
  EXPECT_ANY_THROW({
    session.sendRequest(again);
    session.receiveResponse(response);
  });
  EXPECT_EQ(server.requests(), 1);
}

}  // namespace
}  // namespace shoal::tls
