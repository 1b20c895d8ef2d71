#include "health/Probe.hpp"

#include <openssl/ssl.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <optional>
#include <string_view>

namespace shoal::health {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// Replies are cut here: a probe reads greetings and status lines, never bodies.
constexpr std::size_t kMaxReply = 64 * 1024;
constexpr std::size_t kShownChars = 80;

// Text for a failure message: the first line, printable, short.
std::string shown(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\r' || c == '\n') break;
    if (out.size() >= kShownChars) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (std::isprint(u) && c != '"' && c != '\\') {
      out += c;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string quote(std::string_view text) { return "\"" + shown(text) + "\""; }

bool isReplyCode(std::string_view line) {
  return line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
         std::isdigit(static_cast<unsigned char>(line[1])) && std::isdigit(static_cast<unsigned char>(line[2]));
}

// Whether `text` holds one whole reply: a complete first line, and for an SMTP/FTP-style
// multi-line reply ("250-a", "250-b", "250 c") every line up to the last one.
bool replyComplete(std::string_view text) {
  std::size_t start = 0;
  bool multiLine = false;
  while (true) {
    const auto end = text.find('\n', start);
    if (end == std::string_view::npos) return false;
    const auto line = text.substr(start, end - start);
    const bool continues = isReplyCode(line) && line.size() > 3 && line[3] == '-';
    if (start == 0) multiLine = continues;
    if (!multiLine || (isReplyCode(line) && !continues)) return true;
    start = end + 1;
  }
}

bool closedByPeer(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

class Run final : public ProbeRun, public std::enable_shared_from_this<Run> {
 public:
  Run(asio::any_io_executor executor, asio::ssl::context& tls, ProbeSpec spec, Done done)
      : tlsContext_(tls),
        spec_(std::move(spec)),
        done_(std::move(done)),
        plain_(executor),
        deadline_(executor) {}

  void begin() {
    if (finished_) return;
    auto self = shared_from_this();
    deadline_.expires_after(spec_.timeout);
    deadline_.async_wait([self](const error_code& ec) {
      // An expiry that the event loop took in the same turn as the probe's last reply runs
      // after that reply finished the run, with no error (cancel() came too late to turn
      // it into operation_aborted): it is no timeout, and timeoutMessage() must not run on
      // a finished run, whose step_ is one past the last step.
      if (ec || self->finished_) return;
      self->finish(self->timeoutMessage());
    });
    if (spec_.port == 0) {
      // Posted, so `done` never runs inside start() (the caller has not stored the run yet).
      asio::post(deadline_.get_executor(), [self] { self->finish("no port to probe"); });
      return;
    }
    error_code ec;
    const auto address = asio::ip::make_address(spec_.host, ec);
    if (!ec) {
      phase_ = Phase::Connecting;
      plain_.async_connect(tcp::endpoint(address, spec_.port),
                           [self](const error_code& e) { self->onConnected(e); });
      return;
    }
    hostIsName_ = true;
    phase_ = Phase::Resolving;
    resolver_.emplace(deadline_.get_executor());
    resolver_->async_resolve(spec_.host, std::to_string(spec_.port),
                            [self](const error_code& e, const tcp::resolver::results_type& results) {
                              if (self->finished_) return;
                              if (e) return self->finish("cannot resolve " + quote(self->spec_.host) + ": " + e.message());
                              self->phase_ = Phase::Connecting;
                              asio::async_connect(self->plain_, results,
                                                  [self](const error_code& e2, const tcp::endpoint&) {
                                                    self->onConnected(e2);
                                                  });
                            });
  }

  void cancel() override { finish("cancelled"); }

 private:
  enum class Phase { Starting, Resolving, Connecting, Handshake, Sending, Waiting, HttpWaiting };

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  void onConnected(const error_code& ec) {
    if (finished_) return;
    if (ec == asio::error::connection_refused) return finish("connection refused");
    if (ec) return finish("connect failed: " + ec.message());
    connected_ = true;
    if (!spec_.tls) return startExchange();
    tls_.emplace(std::move(plain_), tlsContext_);
    // SNI only for names: RFC 6066 forbids IP literals in server_name.
    if (hostIsName_) SSL_set_tlsext_host_name(tls_->native_handle(), spec_.host.c_str());
    phase_ = Phase::Handshake;
    auto self = shared_from_this();
    tls_->async_handshake(asio::ssl::stream_base::client, [self](const error_code& e) {
      if (self->finished_) return;
      if (e) return self->finish("TLS handshake failed: " + e.message());
      self->startExchange();
    });
  }

  void startExchange() {
    if (spec_.kind == SHOAL_PROBE_HTTP) return sendHttpRequest();
    runStep();
  }

  // ---- TCP steps ----

  void runStep() {
    if (step_ == spec_.steps.size()) return finish("");
    received_.clear();  // what a previous reply left over is not this step's text
    const auto& [send, expect] = spec_.steps[step_];
    if (send.empty()) return afterSend();
    phase_ = Phase::Sending;
    write(send, [self = shared_from_this()] { self->afterSend(); });
  }

  void afterSend() {
    if (spec_.steps[step_].second.empty()) {
      ++step_;
      return runStep();
    }
    phase_ = Phase::Waiting;
    checkStepReply();
  }

  void checkStepReply() {
    const auto& expect = spec_.steps[step_].second;
    const auto n = std::min(received_.size(), expect.size());
    if (received_.compare(0, n, expect, 0, n) != 0)
      return finish("expected " + quote(expect) + " but got " + quote(received_));
    const bool lastStep = step_ + 1 == spec_.steps.size();
    if (received_.size() >= expect.size() && (lastStep || replyComplete(received_))) {
      ++step_;
      return runStep();
    }
    readMore([self = shared_from_this()] { self->checkStepReply(); },
             "before " + quote(expect));
  }

  // ---- HTTP ----

  void sendHttpRequest() {
    std::string host = spec_.httpHost;
    if (host.empty()) {
      host = spec_.host.find(':') != std::string::npos ? "[" + spec_.host + "]" : spec_.host;
      const std::uint16_t defaultPort = spec_.tls ? 443 : 80;
      if (spec_.port != defaultPort) host += ":" + std::to_string(spec_.port);
    }
    const std::string request = spec_.httpMethod + " " + spec_.httpPath + " HTTP/1.1\r\nHost: " + host +
                                "\r\nConnection: close\r\nUser-Agent: shoal-health/1\r\nAccept: */*\r\n\r\n";
    phase_ = Phase::Sending;
    write(request, [self = shared_from_this()] {
      self->phase_ = Phase::HttpWaiting;
      self->checkStatusLine(false);
    });
  }

  void checkStatusLine(bool closed) {
    static constexpr std::string_view kPrefix = "HTTP/";
    const auto n = std::min(received_.size(), kPrefix.size());
    if (received_.compare(0, n, kPrefix, 0, n) != 0) return finish("malformed HTTP status line: " + quote(received_));
    const auto eol = received_.find('\n');
    if (eol == std::string::npos && !closed) {
      return readMore([self = shared_from_this()] { self->checkStatusLine(false); }, "",
                      [self = shared_from_this()] { self->checkStatusLine(true); });
    }
    if (received_.empty()) return finish("connection closed by peer before the HTTP status line");
    // "HTTP/1.1 200 OK": the code is the three digits after the first space.
    const std::string_view line(received_.data(), eol == std::string::npos ? received_.size() : eol);
    const auto space = line.find(' ');
    const auto code = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    if (!isReplyCode(code) || (code.size() > 3 && code[3] != ' ' && code[3] != '\r'))
      return finish("malformed HTTP status line: " + quote(line));
    const int status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    const auto expected = spec_.httpExpectStatus;
    if (expected == 0 ? (status >= 200 && status < 400) : status == static_cast<int>(expected)) return finish("");
    finish("HTTP status " + std::to_string(status) + ", expected " +
           (expected == 0 ? std::string("2xx or 3xx") : std::to_string(expected)));
  }

  // ---- I/O ----

  template <class Next>
  void write(const std::string& data, Next next) {
    out_ = data;
    auto handler = [self = shared_from_this(), next = std::move(next)](const error_code& ec, std::size_t) {
      if (self->finished_) return;
      if (closedByPeer(ec)) return self->finish("connection closed by peer while sending");
      if (ec) return self->finish("send failed: " + ec.message());
      next();
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(out_), std::move(handler));
    } else {
      asio::async_write(plain_, asio::buffer(out_), std::move(handler));
    }
  }

  // Appends what arrives to received_, then calls `next`. When the peer closes: `onClosed`
  // if given, else the probe fails with "connection closed by peer <what>".
  template <class Next>
  void readMore(Next next, std::string what) {
    readMore(std::move(next), std::move(what), std::function<void()>{});
  }
  template <class Next>
  void readMore(Next next, std::string what, std::function<void()> onClosed) {
    if (received_.size() >= kMaxReply) return finish("reply longer than " + std::to_string(kMaxReply) + " bytes");
    auto handler = [self = shared_from_this(), next = std::move(next), what = std::move(what),
                    onClosed = std::move(onClosed)](const error_code& ec, std::size_t n) {
      if (self->finished_) return;
      self->received_.append(self->buffer_.data(), n);
      if (closedByPeer(ec)) {
        if (onClosed) return onClosed();
        std::string reason = "connection closed by peer " + what;
        if (!self->received_.empty()) reason += " (got " + quote(self->received_) + ")";
        return self->finish(reason);
      }
      if (ec) return self->finish("receive failed: " + ec.message());
      next();
    };
    if (tls_) {
      tls_->async_read_some(asio::buffer(buffer_), std::move(handler));
    } else {
      plain_.async_read_some(asio::buffer(buffer_), std::move(handler));
    }
  }

  // Only for a run that has not finished: phase_ and step_ then name what it waits for.
  std::string timeoutMessage() const {
    std::string m = "timed out after " + std::to_string(spec_.timeout.count()) + " ms ";
    switch (phase_) {
      case Phase::Starting: return m + "before starting";
      case Phase::Resolving: return m + "resolving " + quote(spec_.host);
      case Phase::Connecting: return m + "connecting";
      case Phase::Handshake: return m + "in the TLS handshake";
      case Phase::Sending: return m + "sending";
      case Phase::Waiting: return m + "waiting for " + quote(spec_.steps[step_].second);
      case Phase::HttpWaiting: return m + "waiting for the HTTP status line";
    }
    return m;
  }

  void finish(const std::string& error) {
    if (finished_) return;
    finished_ = true;
    auto self = shared_from_this();  // `done` may drop the caller's reference
    deadline_.cancel();
    if (resolver_) resolver_->cancel();
    error_code ignored;
    // A plain connect check ends with a reset, as HAProxy's do: the service never sees a
    // half-made connection to log, and no TIME_WAIT piles up on the manager (thousands of
    // targets every few seconds). After an exchange the connection closes normally. No
    // TLS close_notify either way: waiting for the peer's would only add a round trip.
    if (connected_ && spec_.kind == SHOAL_PROBE_TCP && spec_.steps.empty() && !spec_.tls)
      socket().set_option(tcp::socket::linger(true, 0), ignored);
    socket().close(ignored);
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(error);
  }

  asio::ssl::context& tlsContext_;
  ProbeSpec spec_;
  Done done_;
  std::optional<tcp::resolver> resolver_;  // only for names
  tcp::socket plain_;  // moved into tls_ when the probe uses TLS
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  asio::steady_timer deadline_;
  Phase phase_ = Phase::Starting;
  bool hostIsName_ = false;
  bool connected_ = false;
  bool finished_ = false;
  std::size_t step_ = 0;
  std::string out_;
  std::string received_;
  std::array<char, 4096> buffer_{};
};

}  // namespace

std::shared_ptr<ProbeRun> ProbeRun::start(asio::any_io_executor executor, asio::ssl::context& tls, ProbeSpec spec,
                                          Done done) {
  auto run = std::make_shared<Run>(executor, tls, std::move(spec), std::move(done));
  // begin() only initiates operations on objects nobody else sees yet, so it may run on the
  // caller's thread; it never calls `done`. (Saves one post per probe.)
  run->begin();
  return run;
}

asio::ssl::context makeProbeTlsContext() {
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);
  return context;
}

}  // namespace shoal::health
