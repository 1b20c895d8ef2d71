#!/usr/bin/env python3
"""Writes the binary seeds of ipvs_netlink and proxy_protocol (run from this folder).

ipvs_netlink: datagrams as IPVS sends them to the lvs plugin: a dump of services and of
real servers (64-bit stats, IPv4 and IPv6, a firewall mark), acknowledgements with and
without an extended-ACK message, the end of a dump; and a few cut or inconsistent ones.
proxy_protocol: inputs the target turns into endpoints (a form byte, the address bytes,
two port bytes, twice; then the client's bytes), and real headers for the reader.
"""
import ipaddress
import os
import struct

IPVS_FAMILY = 0x1f  # a generic-netlink family id as the kernel assigns one
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x2, 0x100, 0x200
NESTED = 0x8000


def attr(kind, payload):
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def nest(kind, *attrs):
    return attr(kind | NESTED, b"".join(attrs))


def message(kind, flags, seq, payload):
    data = struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload
    return data + b"\0" * (-len(data) % 4)


def genl(cmd, *attrs):
    return struct.pack("=BBH", cmd, 1, 0) + b"".join(attrs)


def stats64():
    return nest(12, *[attr(i, struct.pack("=Q", i * 1000)) for i in range(1, 11)])


def service(af, proto, address, port, sched="wlc", persistent=0, fwmark=0):
    parts = [attr(1, struct.pack("=H", af))]
    if fwmark:
        parts.append(attr(5, struct.pack("=I", fwmark)))
    else:
        raw = ipaddress.ip_address(address).packed.ljust(16, b"\0")
        parts += [attr(2, struct.pack("=H", proto)), attr(3, raw), attr(4, struct.pack("!H", port))]
    parts += [attr(6, sched.encode() + b"\0"), attr(7, struct.pack("=II", 1 if persistent else 0, 0xffffffff)),
              attr(8, struct.pack("=I", persistent)), attr(9, struct.pack("=I", 0xffffffff if af == 2 else 128)),
              stats64()]
    return genl(1, nest(1, *parts))


def real(address, port, method=0, weight=1, family=None):
    raw = ipaddress.ip_address(address).packed.ljust(16, b"\0")
    parts = [attr(1, raw), attr(2, struct.pack("!H", port)), attr(3, struct.pack("=I", method)),
             attr(4, struct.pack("=I", weight)), attr(7, struct.pack("=I", 3)), attr(8, struct.pack("=I", 9)),
             stats64()]
    if family:
        parts.append(attr(11, struct.pack("=H", family)))
    return genl(5, nest(2, *parts))


def ack(seq, error=0, text=None):
    echoed = struct.pack("=IHHII", 16, IPVS_FAMILY, 5, seq, 0)
    payload = struct.pack("=i", -error) + echoed
    flags = NLM_F_CAPPED
    if text is not None:
        payload += attr(1, text.encode() + b"\0")
        flags |= NLM_F_ACK_TLVS
    return message(NLMSG_ERROR, flags, seq, payload)


def done(seq):
    return message(NLMSG_DONE, NLM_F_MULTI, seq, struct.pack("=i", 0))


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


services = (message(IPVS_FAMILY, NLM_F_MULTI, 7, service(2, 6, "192.0.2.10", 80, "wrr", 300)) +
            message(IPVS_FAMILY, NLM_F_MULTI, 7, service(10, 17, "2001:db8::10", 53, "rr")) +
            message(IPVS_FAMILY, NLM_F_MULTI, 7, service(2, 0, None, 0, "sh", 360, fwmark=7)) +
            done(7))
write("ipvs_netlink", "service_dump", services)
write("ipvs_netlink", "real_dump",
      message(IPVS_FAMILY, NLM_F_MULTI, 8, real("10.77.0.11", 8080, 0, 2)) +
      message(IPVS_FAMILY, NLM_F_MULTI, 8, real("10.77.0.12", 8080, 1, 0)) +
      message(IPVS_FAMILY, NLM_F_MULTI, 8, real("10.77.0.13", 0, 2, 5, family=2)) + done(8))
write("ipvs_netlink", "acks", ack(9) + ack(10, 17, "IPVS: Service already exists") + ack(11, 3))
write("ipvs_netlink", "ack_uncapped", message(NLMSG_ERROR, NLM_F_ACK_TLVS, 12,
                                              struct.pack("=i", -1) + struct.pack("=IHHII", 40, IPVS_FAMILY, 5, 12, 0)
                                              + b"\0" * 24 + attr(1, b"no\0")))
write("ipvs_netlink", "ack_cut_short", message(NLMSG_ERROR, 0, 13, b"\xfe\xff"))
write("ipvs_netlink", "service_cut", services[:70])
write("ipvs_netlink", "nested_lies", message(IPVS_FAMILY, 0, 14, genl(1, struct.pack("=HH", 200, 1 | NESTED) +
                                                                       attr(1, b"\2\0"))))


def endpoint(form, address, port):
    raw = ipaddress.ip_address(address).packed
    if form == 2:
        raw = raw[-4:]
    return bytes([form]) + raw.ljust(4 if form == 0 else 16, b"\0")[: 4 if form == 0 else 16] + struct.pack("!H", port)


write("proxy_protocol", "ipv4", endpoint(0, "192.0.2.7", 40000) + endpoint(0, "192.0.2.10", 80) + b"GET / HTTP/1.0\r\n\r\n")
write("proxy_protocol", "ipv6", endpoint(1, "2001:db8::7", 1) + endpoint(1, "2001:db8::10", 25) + b"EHLO x\r\n")
write("proxy_protocol", "mapped_and_mixed", endpoint(2, "::ffff:0:0", 4000) + endpoint(1, "::1", 65535))
signature = b"\r\n\r\n\0\r\nQUIT\n"
write("proxy_protocol", "header_ipv4", signature + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 7, 192, 0, 2, 10]) +
      struct.pack("!HH", 4000, 25) + b"EHLO client\r\n")
write("proxy_protocol", "header_with_tlv", signature + b"\x21\x21\x00\x2b" + b"\x20" * 16 + b"\x20" * 16 +
      struct.pack("!HH", 1, 2) + b"\x04\x00\x03abc")
write("proxy_protocol", "header_cut", signature + b"\x21\x11\xff\xff\x01")
