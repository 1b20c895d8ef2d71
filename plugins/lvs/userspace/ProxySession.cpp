#include "ProxySession.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

namespace shoal::lvs::userspace {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// The most one splice moves; a pipe holds 64 KiB by default.
constexpr std::size_t kChunk = 64 * 1024;
// Reads start with a copy through this buffer; one that fills it means bulk data, which
// moves on to splice. A splice that moves less than kSmallSplice goes back to copying: for
// small exchanges a copy costs fewer system calls than two splices and a pipe (measured
// with the benchmark beside HAProxy, which decides the same way with splice-auto).
constexpr std::size_t kCopyBuffer = 16 * 1024;
constexpr std::size_t kSmallSplice = 4 * 1024;
// Operations one direction performs before it lets other connections on the loop run.
constexpr int kRoundsPerTurn = 32;

// The first 12 bytes of every version 2 header.
constexpr unsigned char kProxyV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr unsigned char kProxyV2Command = 0x21;  // version 2, PROXY (not LOCAL)
constexpr unsigned char kProxyV2TcpOverIpv4 = 0x11, kProxyV2TcpOverIpv6 = 0x21;

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

asio::ip::address_v6 asV6(const asio::ip::address& a) {
  return a.is_v6() ? a.to_v6() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
}

void appendPort(std::vector<unsigned char>& out, std::uint16_t port) {
  out.push_back(static_cast<unsigned char>(port >> 8));
  out.push_back(static_cast<unsigned char>(port & 0xFF));
}

}  // namespace

std::vector<unsigned char> proxyProtocolV2Header(const tcp::endpoint& client,
                                                 const tcp::endpoint& destination) {
  const asio::ip::address source = unmapped(client.address());
  const asio::ip::address target = unmapped(destination.address());
  const bool v4 = source.is_v4() && target.is_v4();
  std::vector<unsigned char> out(std::begin(kProxyV2Signature), std::end(kProxyV2Signature));
  out.push_back(kProxyV2Command);
  out.push_back(v4 ? kProxyV2TcpOverIpv4 : kProxyV2TcpOverIpv6);
  appendPort(out, v4 ? 12 : 36);  // the length, big-endian like the ports
  if (v4) {
    for (const auto& a : {source.to_v4().to_bytes(), target.to_v4().to_bytes()})
      out.insert(out.end(), a.begin(), a.end());
  } else {
    for (const auto& a : {asV6(source).to_bytes(), asV6(target).to_bytes()})
      out.insert(out.end(), a.begin(), a.end());
  }
  appendPort(out, client.port());
  appendPort(out, destination.port());
  return out;
}

ProxySession::ProxySession(tcp::socket client, std::shared_ptr<ServiceScheduler> service,
                           ServiceScheduler::Assignment assignment, std::uint16_t clientPort,
                           const UserspaceSettings& settings)
    : client_(std::move(client)),
      server_(client_.get_executor()),
      connectTimer_(client_.get_executor()),
      service_(std::move(service)),
      assignment_(std::move(assignment)),
      clientPort_(clientPort),
      connectTimeout_(settings.connectTimeout),
      retriesLeft_(settings.connectRetries) {
  directions_[0].from = &client_;
  directions_[0].to = &server_;
  directions_[0].inbound = true;
  directions_[1].from = &server_;
  directions_[1].to = &client_;
  for (Direction& d : directions_) {
    if (!settings.splice)
      d.copying = true;
    else if (::pipe2(d.pipe, O_NONBLOCK | O_CLOEXEC) != 0)
      d.copying = true;  // out of descriptors: copy rather than refuse the client
  }
}

ProxySession::~ProxySession() {
  for (Direction& d : directions_)
    for (int& fd : d.pipe)
      if (fd >= 0) ::close(fd);
  service_->release(assignment_);
}

void ProxySession::start() {
  boost::system::error_code ignored;
  client_.set_option(tcp::no_delay(true), ignored);
  connect();
}

void ProxySession::connect() {
  const RealTarget& target = *assignment_.target;
  const std::uint16_t port = target.spec.port != 0 ? target.spec.port : clientPort_;
  boost::system::error_code ignored;
  server_.close(ignored);
  auto self = shared_from_this();
  const unsigned attempt = ++attempt_;
  connectTimer_.expires_after(connectTimeout_);
  connectTimer_.async_wait([this, self, attempt](const boost::system::error_code& error) {
    // Closing makes the pending connect complete with operation_aborted. A timer that
    // expired for an earlier attempt must not close the socket of this one.
    if (!error && !aborted_ && attempt == attempt_) {
      boost::system::error_code ignored;
      server_.close(ignored);
    }
  });
  server_.async_connect(
      tcp::endpoint(target.address, port),
      [this, self](const boost::system::error_code& error) { onConnected(error); });
}

void ProxySession::onConnected(const boost::system::error_code& error) {
  connectTimer_.cancel();
  if (aborted_) return;
  // The timer may have closed the socket after the connect had already succeeded.
  if (error || !server_.is_open()) {
    if (retriesLeft_ > 0 && service_->redispatch(assignment_)) {
      --retriesLeft_;
      connect();
    } else {
      abort();
    }
    return;
  }
  assignment_.target->counters.connections.fetch_add(1, std::memory_order_relaxed);
  service_->connected(assignment_);
  boost::system::error_code ignored;
  server_.set_option(tcp::no_delay(true), ignored);
  client_.native_non_blocking(true, ignored);
  server_.native_non_blocking(true, ignored);
  if (service_->proxyProtocol() == ProxyProtocol::V2)
    sendProxyHeader();
  else
    startMoving();
}

// The header is the real server's first bytes: nothing of the client's moves until it is
// written. It is no client traffic, so the counters leave it out.
void ProxySession::sendProxyHeader() {
  boost::system::error_code error;
  const tcp::endpoint peer = client_.remote_endpoint(error);
  tcp::endpoint local;
  if (!error) local = client_.local_endpoint(error);
  if (error) {
    abort();  // the client is already gone
    return;
  }
  proxyHeader_ = proxyProtocolV2Header(peer, local);
  auto self = shared_from_this();
  asio::async_write(server_, asio::buffer(proxyHeader_),
                    [this, self](const boost::system::error_code& error, std::size_t) {
                      if (aborted_) return;
                      if (error)
                        abort();
                      else
                        startMoving();
                    });
}

void ProxySession::startMoving() {
  for (Direction& d : directions_) copy(d);
}

void ProxySession::count(const Direction& d, std::size_t bytes) {
  CounterCells& service = service_->counters;
  CounterCells& real = assignment_.target->counters;
  auto& serviceBytes = d.inbound ? service.bytesIn : service.bytesOut;
  auto& servicePackets = d.inbound ? service.packetsIn : service.packetsOut;
  auto& realBytes = d.inbound ? real.bytesIn : real.bytesOut;
  auto& realPackets = d.inbound ? real.packetsIn : real.packetsOut;
  serviceBytes.fetch_add(bytes, std::memory_order_relaxed);
  servicePackets.fetch_add(1, std::memory_order_relaxed);
  realBytes.fetch_add(bytes, std::memory_order_relaxed);
  realPackets.fetch_add(1, std::memory_order_relaxed);
}

// Socket to pipe, pipe to socket, until the source would block (wait for it to be
// readable) or the destination would (wait for it to be writable). The pipe is only filled
// when empty, so EAGAIN from the source always means "no data yet".
void ProxySession::pump(Direction& d) {
  if (aborted_) return;
  auto self = shared_from_this();
  auto resume = [this, self, &d](const boost::system::error_code& error) {
    if (error)
      abort();
    else
      pump(d);
  };
  for (int round = 0; round < kRoundsPerTurn; ++round) {
    if (d.inPipe > 0) {
      const ssize_t n = ::splice(d.pipe[0], nullptr, d.to->native_handle(), nullptr, d.inPipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe -= static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        d.to->async_wait(tcp::socket::wait_write, resume);
        return;
      }
      abort();  // the peer is gone (EPIPE, ECONNRESET)
      return;
    }
    if (d.endOfInput) {
      finish(d);
      return;
    }
    if (d.lastSplice > 0 && d.lastSplice < kSmallSplice) {
      d.lastSplice = 0;  // the bulk is over: the pipe is empty, copying takes over cleanly
      copy(d);
      return;
    }
    const ssize_t n = ::splice(d.from->native_handle(), nullptr, d.pipe[1], nullptr, kChunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d.inPipe = d.lastSplice = static_cast<std::size_t>(n);
      count(d, d.inPipe);
      continue;
    }
    if (n == 0) {
      d.endOfInput = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      d.from->async_wait(tcp::socket::wait_read, resume);
      return;
    }
    if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
      d.copying = true;  // nothing is in the pipe: the copy loop starts clean
      copy(d);
      return;
    }
    abort();
    return;
  }
  asio::post(client_.get_executor(), [this, self, &d] { pump(d); });
}

void ProxySession::copy(Direction& d) {
  if (aborted_) return;
  if (d.buffer.empty()) d.buffer.resize(kCopyBuffer);
  auto self = shared_from_this();
  d.from->async_read_some(
      asio::buffer(d.buffer),
      [this, self, &d](const boost::system::error_code& error, std::size_t n) {
        if (aborted_) return;
        if (error == asio::error::eof) {
          finish(d);
          return;
        }
        if (error) {
          abort();
          return;
        }
        count(d, n);
        asio::async_write(*d.to, asio::buffer(d.buffer.data(), n),
                          [this, self, &d, n](const boost::system::error_code& error, std::size_t) {
                            if (error)
                              abort();
                            else if (!d.copying && n == d.buffer.size())
                              pump(d);  // a full buffer: bulk data, spliced from here on
                            else
                              copy(d);
                          });
      });
}

// One side has sent everything: pass the half-close on, and close both once both have.
void ProxySession::finish(Direction& d) {
  d.done = true;
  service_->halfClose(assignment_);
  boost::system::error_code ignored;
  d.to->shutdown(tcp::socket::shutdown_send, ignored);
  if (directions_[0].done && directions_[1].done) abort();
}

void ProxySession::abort() {
  if (aborted_) return;
  aborted_ = true;
  boost::system::error_code ignored;
  connectTimer_.cancel();
  client_.close(ignored);
  server_.close(ignored);
}

}  // namespace shoal::lvs::userspace
