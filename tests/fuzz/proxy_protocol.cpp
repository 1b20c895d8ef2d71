// The PROXY protocol v2 header: the userspace dataplane's writer (proxyProtocolV2Header)
// against the tests' reader, written independently from the specification.
// - The reader never fails on arbitrary bytes, and what it accepts is consistent.
// - Round trip: for endpoints made from the input (IPv4, IPv6 or IPv4-mapped, any ports),
//   the reader reads back exactly what the writer wrote, and the client's bytes after it.
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "FuzzSupport.hpp"
#include "ProxyProtocolV2Reader.hpp"
#include "ProxySession.hpp"

namespace {

namespace ip = boost::asio::ip;

// Reads fields from the front of the input, zeros once it is used up.
struct Input {
  const std::uint8_t* data;
  std::size_t size;
  std::uint8_t byte() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
};

ip::tcp::endpoint endpointFrom(Input& in) {
  const std::uint8_t form = in.byte() % 3;  // IPv4, IPv6, IPv4-mapped IPv6
  ip::address address;
  if (form == 0) {
    ip::address_v4::bytes_type b;
    for (auto& x : b) x = in.byte();
    address = ip::address_v4(b);
  } else {
    ip::address_v6::bytes_type b;
    for (auto& x : b) x = in.byte();
    if (form == 2) {
      std::memset(b.data(), 0, 10);
      b[10] = b[11] = 0xff;
    }
    address = ip::address_v6(b);
  }
  const std::uint16_t port = static_cast<std::uint16_t>((in.byte() << 8) | in.byte());
  return {address, port};
}

// The specification's rule, restated: mapped addresses count as IPv4; both IPv4 travel as
// INET, anything else as INET6 with IPv4 addresses mapped.
ip::address unmapped(const ip::address& a) {
  return a.is_v6() && a.to_v6().is_v4_mapped() ? ip::address(ip::make_address_v4(ip::v4_mapped, a.to_v6())) : a;
}
std::string expectedText(const ip::address& a, bool v4) {
  if (v4) return a.to_v4().to_string();
  return a.is_v4() ? ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_string() : a.to_v6().to_string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto read = shoal::test::parseProxyProtocolV2(bytes);
  if (read.valid) {
    FUZZ_CHECK(read.family == AF_INET || read.family == AF_INET6, "a header accepted with another family");
    FUZZ_CHECK(read.rest.size() + 16 <= bytes.size(), "the bytes after a header are more than were sent");
  } else {
    FUZZ_CHECK(!read.error.empty(), "a header refused without a reason");
  }

  Input in{data, size};
  const auto client = endpointFrom(in);
  const auto destination = endpointFrom(in);
  const std::string payload(reinterpret_cast<const char*>(in.data), in.size);
  const auto header = shoal::lvs::userspace::proxyProtocolV2Header(client, destination);
  const auto back = shoal::test::parseProxyProtocolV2(std::string(header.begin(), header.end()) + payload);
  FUZZ_CHECK(back.valid, "the reader refuses what the writer wrote");

  const auto source = unmapped(client.address()), target = unmapped(destination.address());
  const bool v4 = source.is_v4() && target.is_v4();
  FUZZ_CHECK(back.family == (v4 ? AF_INET : AF_INET6), "the header's family is not the endpoints'");
  FUZZ_CHECK(header.size() == (v4 ? 16u + 12u : 16u + 36u), "the header's length is not the family's");
  FUZZ_CHECK(back.source == expectedText(source, v4), "the client's address does not read back");
  FUZZ_CHECK(back.destination == expectedText(target, v4), "the destination's address does not read back");
  FUZZ_CHECK(back.sourcePort == client.port() && back.destinationPort == destination.port(),
             "a port does not read back");
  FUZZ_CHECK(back.rest == payload, "the client's bytes after the header are not passed intact");
  return 0;
}
