#pragma once
// Small real servers on 127.0.0.1 for the health engine's tests: banner/line protocols,
// HTTP, silent and closing peers, optionally over TLS. Each runs its own event loop thread.
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shoal::health::test {

struct Behaviour {
  bool silent = false;       // accept, then never send or read
  bool closeAtOnce = false;  // accept, then close
  std::string greeting;      // sent right after connect (and the TLS handshake)
  // Per line received ("\n"-terminated, without it): parts written 20 ms apart.
  std::function<std::vector<std::string>(const std::string& line)> reply;
  bool closeOnQuit = true;   // close after replying to a line starting with "QUIT"
  std::string httpResponse;  // non-empty: read a request up to the blank line, send this, close
};

class LoopbackServer {
 public:
  // `tls`: when set, every connection starts with a TLS handshake (server side).
  // Listens on `address`:`port` (port 0 = any free port), with SO_REUSEADDR so a server
  // stopped and started again gets the same address back, as a restarted daemon does.
  explicit LoopbackServer(Behaviour behaviour, std::shared_ptr<boost::asio::ssl::context> tls = nullptr,
                          const std::string& address = "127.0.0.1", std::uint16_t port = 0);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const;
  int accepted() const;
  // Replaces the greeting for connections accepted from now on.
  void setGreeting(const std::string& greeting);
  // Stops listening: later connects are refused.
  void closeListener();
  std::string lastRequest() const;     // the last HTTP request head received
  std::string lastServerName() const;  // SNI of the last TLS handshake ("" when none)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A server TLS context with a fresh self-signed certificate for "localhost" (EC P-256).
std::shared_ptr<boost::asio::ssl::context> makeSelfSignedServerContext();

// A port on 127.0.0.1 that nothing listens on (bound once, then released).
std::uint16_t deadPort();

}  // namespace shoal::health::test
