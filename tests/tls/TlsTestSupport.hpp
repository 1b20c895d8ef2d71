#pragma once
// Shared by the tls tests: a temporary directory, an HTTPS server on 127.0.0.1 that counts
// the requests reaching its handler, and clients (Poco's and a bare OpenSSL one).
#include "tls/CertificateAuthority.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace shoal::tls::test {

class TempDirectory {
 public:
  TempDirectory();
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  ~TempDirectory();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes `issued` as <dir>/<stem>.crt and <dir>/<stem>.key and returns credentials that
// present it with `caFile` as the chain.
ServerCredentials writeCredentials(const std::filesystem::path& dir, const std::string& stem,
                                   const IssuedCertificate& issued, const std::filesystem::path& caFile);

// A Poco HTTPServer on a SecureServerSocket bound to 127.0.0.1 (any port), keep-alive on,
// answering every request with 200 "hello". It owns its thread pool, so a test can see
// whether a connection thread is still running.
class HttpsTestServer {
 public:
  explicit HttpsTestServer(Poco::Net::Context::Ptr context);
  HttpsTestServer(const HttpsTestServer&) = delete;
  HttpsTestServer& operator=(const HttpsTestServer&) = delete;
  ~HttpsTestServer();

  Poco::UInt16 port() const;
  int requests() const { return requests_->load(); }
  Poco::ThreadPool& threads() { return pool_; }
  Poco::Net::HTTPServer& server() { return *server_; }

  // stopAll(true) (plain stop() leaves keep-alive connections running), then waits for every
  // connection thread to finish. True when none is left within 10 s.
  bool stop();

 private:
  std::shared_ptr<std::atomic<int>> requests_;
  Poco::ThreadPool pool_;
  Poco::Net::SecureServerSocket socket_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  bool stopped_ = false;
};

struct HttpsReply {
  int status = 0;
  std::string body;
  std::string protocol;  // negotiated TLS version, e.g. "TLSv1.3"
};

// GET / over HTTPSClientSession to host:port; throws what Poco throws.
HttpsReply httpsGet(Poco::Net::Context::Ptr context, Poco::UInt16 port, const std::string& host = "127.0.0.1");

// A handshake by a bare OpenSSL client that verifies nothing, limited to the given protocol
// versions and security level.
struct RawHandshake {
  bool connected = false;
  unsigned long error = 0;  // first OpenSSL error on failure
  std::string errorText;
  std::string protocol;
  std::vector<std::string> chainFingerprints;  // the chain the server presented, leaf first
};
RawHandshake rawHandshake(Poco::UInt16 port, int minVersion, int maxVersion, int securityLevel);

}  // namespace shoal::tls::test
