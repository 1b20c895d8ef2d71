#include "LoopbackServer.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace shoal::health::test {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct LoopbackServer::Impl {
  asio::io_context io;  // first: outlives every socket below
  Behaviour behaviour;
  std::shared_ptr<asio::ssl::context> tls;
  tcp::acceptor acceptor{io};
  std::atomic<int> acceptedCount{0};
  std::uint16_t port = 0;
  mutable std::mutex mutex;
  std::string greeting, request, serverName;
  std::vector<std::shared_ptr<void>> held;  // silent peers' sessions, kept open
  std::thread thread;

  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl& server, tcp::socket s) : server(server), plain(std::move(s)), pause(server.io) {}
    Impl& server;
    tcp::socket plain;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    asio::steady_timer pause;
    std::array<char, 4096> buffer{};
    std::string in;
    std::vector<std::string> outQueue;
    bool closeAfterWrite = false;

    template <class H>
    void write(const std::string& data, H handler) {
      auto copy = std::make_shared<std::string>(data);
      auto h = [copy, handler = std::move(handler)](const error_code& ec, std::size_t) mutable { handler(ec); };
      if (tls) {
        asio::async_write(*tls, asio::buffer(*copy), std::move(h));
      } else {
        asio::async_write(plain, asio::buffer(*copy), std::move(h));
      }
    }
    template <class H>
    void readSome(H handler) {
      if (tls) {
        tls->async_read_some(asio::buffer(buffer), std::move(handler));
      } else {
        plain.async_read_some(asio::buffer(buffer), std::move(handler));
      }
    }
    void close() {
      error_code ignored;
      (tls ? tls->next_layer() : plain).close(ignored);
    }

    void begin() {
      if (!server.tls) return greet();
      tls.emplace(std::move(plain), *server.tls);
      tls->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](const error_code& ec) {
        if (ec) return self->close();
        const char* name = SSL_get_servername(self->tls->native_handle(), TLSEXT_NAMETYPE_host_name);
        {
          std::lock_guard lock(self->server.mutex);
          self->server.serverName = name ? name : "";
        }
        self->greet();
      });
    }
    void greet() {
      std::string greeting;
      {
        std::lock_guard lock(server.mutex);
        greeting = server.greeting;
      }
      if (greeting.empty()) return read();
      write(greeting, [self = shared_from_this()](const error_code& ec) {
        if (!ec) self->read();
      });
    }
    void read() {
      readSome([self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (ec) return self->close();
        self->in.append(self->buffer.data(), n);
        self->handleInput();
      });
    }
    void handleInput() {
      if (!server.behaviour.httpResponse.empty()) {
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) return read();
        {
          std::lock_guard lock(server.mutex);
          server.request = in.substr(0, end);
        }
        outQueue = {server.behaviour.httpResponse};
        closeAfterWrite = true;
        return writeNext();
      }
      const auto eol = in.find('\n');
      if (eol == std::string::npos || !server.behaviour.reply) return read();
      std::string line = in.substr(0, eol);
      in.erase(0, eol + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      outQueue = server.behaviour.reply(line);
      closeAfterWrite = server.behaviour.closeOnQuit && line.rfind("QUIT", 0) == 0;
      writeNext();
    }
    void writeNext() {
      if (outQueue.empty()) {
        if (closeAfterWrite) return close();
        return handleInput();
      }
      auto part = outQueue.front();
      outQueue.erase(outQueue.begin());
      write(part, [self = shared_from_this()](const error_code& ec) {
        if (ec) return self->close();
        if (self->outQueue.empty()) return self->writeNext();
        // Parts of one reply go out apart, as separate segments.
        self->pause.expires_after(std::chrono::milliseconds(20));
        self->pause.async_wait([self](const error_code&) { self->writeNext(); });
      });
    }
  };

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec) return;  // closed
      acceptedCount++;
      if (behaviour.closeAtOnce) {
        error_code ignored;
        socket.close(ignored);
      } else {
        auto session = std::make_shared<Session>(*this, std::move(socket));
        if (behaviour.silent) {
          held.push_back(session);
        } else {
          session->begin();
        }
      }
      accept();
    });
  }
};

LoopbackServer::LoopbackServer(Behaviour behaviour, std::shared_ptr<asio::ssl::context> tls,
                               const std::string& address, std::uint16_t port)
    : impl_(std::make_unique<Impl>()) {
  impl_->behaviour = std::move(behaviour);
  impl_->greeting = impl_->behaviour.greeting;
  impl_->tls = std::move(tls);
  tcp::endpoint endpoint(asio::ip::make_address(address), port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen(1024);
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

LoopbackServer::~LoopbackServer() {
  impl_->io.stop();
  impl_->thread.join();
  impl_->held.clear();
}

std::uint16_t LoopbackServer::port() const { return impl_->port; }

int LoopbackServer::accepted() const { return impl_->acceptedCount.load(); }

void LoopbackServer::setGreeting(const std::string& greeting) {
  std::lock_guard lock(impl_->mutex);
  impl_->greeting = greeting;
}

void LoopbackServer::closeListener() {
  std::promise<void> done;
  asio::post(impl_->io, [this, &done] {
    error_code ignored;
    impl_->acceptor.close(ignored);
    done.set_value();
  });
  done.get_future().wait();
}

std::string LoopbackServer::lastRequest() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->request;
}

std::string LoopbackServer::lastServerName() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->serverName;
}

std::shared_ptr<asio::ssl::context> makeSelfSignedServerContext() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("EC key generation failed");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  if (X509_sign(cert, key, EVP_sha256()) == 0) throw std::runtime_error("certificate signing failed");
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  const bool ok = SSL_CTX_use_certificate(context->native_handle(), cert) == 1 &&
                  SSL_CTX_use_PrivateKey(context->native_handle(), key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) throw std::runtime_error("loading the certificate failed");
  return context;
}

std::uint16_t deadPort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace shoal::health::test
