#include "TlsTestSupport.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/Session.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace shoal::tls::test {

namespace {

class CountingHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit CountingHandler(std::shared_ptr<std::atomic<int>> requests) : requests_(std::move(requests)) {}
  void handleRequest(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse& response) override {
    ++*requests_;
    response.setContentType("text/plain");
    response.setContentLength(5);
    response.send() << "hello";
  }

 private:
  std::shared_ptr<std::atomic<int>> requests_;
};

class CountingFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit CountingFactory(std::shared_ptr<std::atomic<int>> requests) : requests_(std::move(requests)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new CountingHandler(requests_);
  }

 private:
  std::shared_ptr<std::atomic<int>> requests_;
};

Poco::Net::HTTPServerParams::Ptr serverParams() {
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(60, 0));
  params->setTimeout(Poco::Timespan(10, 0));
  params->setMaxThreads(4);
  return params;
}

void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

TempDirectory::TempDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "shoal-tls-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDirectory::~TempDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ServerCredentials writeCredentials(const std::filesystem::path& dir, const std::string& stem,
                                   const IssuedCertificate& issued, const std::filesystem::path& caFile) {
  ServerCredentials credentials{dir / (stem + ".crt"), dir / (stem + ".key"), caFile};
  writeFile(credentials.certificateFile, issued.certificatePem);
  writeFile(credentials.keyFile, issued.privateKeyPem);
  return credentials;
}

HttpsTestServer::HttpsTestServer(Poco::Net::Context::Ptr context)
    : requests_(std::make_shared<std::atomic<int>>(0)),
      pool_("https-test", 1, 8),
      socket_(Poco::Net::SocketAddress("127.0.0.1", 0), 16, context),
      server_(std::make_unique<Poco::Net::HTTPServer>(new CountingFactory(requests_), pool_, socket_, serverParams())) {
  server_->start();
}

HttpsTestServer::~HttpsTestServer() { stop(); }

Poco::UInt16 HttpsTestServer::port() const { return socket_.address().port(); }

bool HttpsTestServer::stop() {
  if (stopped_) return pool_.used() == 0;
  stopped_ = true;
  server_->stopAll(true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool_.used() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool clean = pool_.used() == 0;
  if (clean) pool_.joinAll();
  return clean;
}

HttpsReply httpsGet(Poco::Net::Context::Ptr context, Poco::UInt16 port, const std::string& host) {
  Poco::Net::HTTPSClientSession session(host, port, context);
  session.setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/", Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& body = session.receiveResponse(response);
  HttpsReply reply;
  reply.status = response.getStatus();
  Poco::StreamCopier::copyToString(body, reply.body);
  Poco::Net::SecureStreamSocket socket(session.socket());
  if (Poco::Net::Session::Ptr tls = socket.currentSession()) {
    const int version = SSL_SESSION_get_protocol_version(tls->sslSession());
    reply.protocol = version == TLS1_3_VERSION   ? "TLSv1.3"
                     : version == TLS1_2_VERSION ? "TLSv1.2"
                                                 : "other (" + std::to_string(version) + ")";
  }
  return reply;
}

RawHandshake rawHandshake(Poco::UInt16 port, int minVersion, int maxVersion, int securityLevel) {
  RawHandshake result;
  auto fail = [&result] {
    result.error = ERR_peek_error();
    std::array<char, 256> text{};
    if (result.error) ERR_error_string_n(result.error, text.data(), text.size());
    result.errorText = text.data();
    ERR_clear_error();
  };

  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (!context) {
    fail();
    return result;
  }
  SSL_CTX_set_security_level(context, securityLevel);
  if (securityLevel == 0) SSL_CTX_set_cipher_list(context, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_min_proto_version(context, minVersion) != 1 ||
      SSL_CTX_set_max_proto_version(context, maxVersion) != 1) {
    fail();
    SSL_CTX_free(context);
    return result;
  }

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    result.errorText = "connect failed";
    ::close(fd);
    SSL_CTX_free(context);
    return result;
  }
  SSL* ssl = SSL_new(context);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    result.connected = true;
    result.protocol = SSL_get_version(ssl);
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
      unsigned int length = 0;
      X509_digest(sk_X509_value(chain, i), EVP_sha256(), digest.data(), &length);
      std::string hex = "sha256:";
      for (unsigned int j = 0; j < length; ++j) {
        std::array<char, 3> pair{};
        std::snprintf(pair.data(), pair.size(), "%02x", digest[j]);
        hex += pair.data();
      }
      result.chainFingerprints.push_back(hex);
    }
    SSL_shutdown(ssl);
  } else {
    fail();
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(context);
  return result;
}

}  // namespace shoal::tls::test
