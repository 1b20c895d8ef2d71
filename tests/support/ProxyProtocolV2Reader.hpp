#pragma once
// A reader of PROXY protocol version 2 headers, written for the tests from haproxy's
// proxy-protocol.txt (section 2.2), independently of the userspace dataplane's writer
// (proxyProtocolV2Header): the unit tests read what real servers received with it, and the
// proxy_protocol fuzz target checks that it reads back what the writer wrote and never
// fails on arbitrary bytes. Only what shoal sends is accepted: PROXY over STREAM, INET or
// INET6; TLVs after the addresses are skipped.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace shoal::test {

// A version 2 header as the specification lays it out, and what follows it.
struct ParsedHeader {
  bool valid = false;
  std::string error;
  int family = 0;  // AF_INET or AF_INET6
  std::string source, destination;
  std::uint16_t sourcePort = 0, destinationPort = 0;
  std::string rest;  // the bytes after the header
};

// `bytes` as a header and what follows; `valid` false with `error` saying why otherwise.
inline ParsedHeader parseProxyProtocolV2(const std::string& bytes) {
  static const unsigned char signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                              0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  ParsedHeader h;
  auto u = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if (bytes.size() < 16 || std::memcmp(bytes.data(), signature, 12) != 0) {
    h.error = "no v2 signature";
    return h;
  }
  if (u(12) >> 4 != 2) h.error = "version is not 2";
  if ((u(12) & 0x0F) != 1) h.error = "command is not PROXY";
  if ((u(13) & 0x0F) != 1) h.error = "transport is not STREAM";
  const std::size_t length = (u(14) << 8) | u(15);
  if (bytes.size() < 16 + length) h.error = "address block cut short";
  if (!h.error.empty()) return h;
  const std::size_t addressSize = (u(13) >> 4) == 1 ? 4 : (u(13) >> 4) == 2 ? 16 : 0;
  if (addressSize == 0 || length < 2 * addressSize + 4) {
    h.error = "family is neither INET nor INET6, or the block is too short for it";
    return h;
  }
  h.family = addressSize == 4 ? AF_INET : AF_INET6;
  char text[INET6_ADDRSTRLEN];
  inet_ntop(h.family, bytes.data() + 16, text, sizeof text);
  h.source = text;
  inet_ntop(h.family, bytes.data() + 16 + addressSize, text, sizeof text);
  h.destination = text;
  const std::size_t ports = 16 + 2 * addressSize;
  h.sourcePort = static_cast<std::uint16_t>((u(ports) << 8) | u(ports + 1));
  h.destinationPort = static_cast<std::uint16_t>((u(ports + 2) << 8) | u(ports + 3));
  h.rest = bytes.substr(16 + length);
  h.valid = true;
  return h;
}

}  // namespace shoal::test
