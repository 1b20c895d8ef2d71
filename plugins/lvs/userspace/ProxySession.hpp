#pragma once
// One client connection through the userspace dataplane: connects to the scheduled real
// server (redispatching after a failed connect), then moves bytes both ways, small
// exchanges through a buffer and bulk data with splice(2) through a pipe per direction,
// shutting down the write side of one socket when the other has finished sending. When the
// service asks for it (VirtualService::proxyProtocol), the PROXY protocol v2 header goes to
// the real server first, before any byte of the client's. Lives on one event-loop thread;
// kept alive by its pending handlers.
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "ServiceScheduler.hpp"
#include "UserspaceDataplane.hpp"

namespace shoal::lvs::userspace {

// The PROXY protocol version 2 header (haproxy's proxy-protocol.txt, section 2.2) saying
// that `client` connected to `destination` over TCP: the 12-byte signature, version 2 with
// the PROXY command, family INET or INET6 with STREAM, the address block's length (12 or
// 36, big-endian) and the addresses and ports in network order, no TLVs. IPv4-mapped IPv6
// addresses are sent as IPv4 when both ends are such; a mix of families is sent as IPv6.
std::vector<unsigned char> proxyProtocolV2Header(const boost::asio::ip::tcp::endpoint& client,
                                                 const boost::asio::ip::tcp::endpoint& destination);

class ProxySession : public std::enable_shared_from_this<ProxySession> {
 public:
  // `client` is accepted and bound to the io_context the session will live on; `assignment`
  // has a target. `clientPort` is the port the client connected to (for reals with port 0).
  ProxySession(boost::asio::ip::tcp::socket client, std::shared_ptr<ServiceScheduler> service,
               ServiceScheduler::Assignment assignment, std::uint16_t clientPort,
               const UserspaceSettings& settings);
  ~ProxySession();
  ProxySession(const ProxySession&) = delete;
  ProxySession& operator=(const ProxySession&) = delete;

  // The session's event loop.
  boost::asio::any_io_executor executor() { return client_.get_executor(); }
  // Call on the session's own event loop.
  void start();

 private:
  struct Direction {
    boost::asio::ip::tcp::socket* from = nullptr;
    boost::asio::ip::tcp::socket* to = nullptr;
    bool inbound = false;  // client to real server
    int pipe[2] = {-1, -1};
    std::size_t inPipe = 0;      // bytes spliced in and not yet out
    std::size_t lastSplice = 0;  // what the last splice from `from` moved
    bool endOfInput = false;
    bool done = false;
    bool copying = false;  // splice refused or turned off: buffer copy only
    std::vector<char> buffer;
  };

  void connect();
  void onConnected(const boost::system::error_code& error);
  void sendProxyHeader();
  void startMoving();
  void pump(Direction& d);
  void copy(Direction& d);
  void count(const Direction& d, std::size_t bytes);
  void finish(Direction& d);
  void abort();

  boost::asio::ip::tcp::socket client_;
  boost::asio::ip::tcp::socket server_;
  boost::asio::steady_timer connectTimer_;
  std::shared_ptr<ServiceScheduler> service_;
  ServiceScheduler::Assignment assignment_;
  std::uint16_t clientPort_;
  std::chrono::milliseconds connectTimeout_;
  unsigned retriesLeft_;
  unsigned attempt_ = 0;  // which connect the pending timer belongs to
  bool aborted_ = false;
  std::array<Direction, 2> directions_;
  std::vector<unsigned char> proxyHeader_;  // kept alive while it is being written
};

}  // namespace shoal::lvs::userspace
