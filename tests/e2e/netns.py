"""Network namespaces joined by one bridge: several 'hosts' on one machine.

A switch namespace holds the bridge; each host namespace gets a veth pair whose far end is
plugged into the bridge, so a host's link can be cut (and restored) from the switch side.
Needs root and iproute2. Everything is named with a per-run suffix and removed by close().
"""
import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000


def ip(*args, netns=None, check=True):
    cmd = ["ip"] + (["netns", "exec", netns, "ip"] if netns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Network:
    def __init__(self, prefix, subnet="10.77.0"):
        self.suffix = f"{os.getpid() % 100000}"
        self.prefix = prefix
        self.subnet = subnet
        self.switch = f"{prefix}sw{self.suffix}"
        self.hosts = {}
        ip("netns", "add", self.switch)
        ip("link", "add", "br0", "type", "bridge", netns=self.switch)
        ip("link", "set", "br0", "up", netns=self.switch)
        ip("link", "set", "lo", "up", netns=self.switch)

    def add_host(self, name, last_octet):
        ns = f"{self.prefix}{name}{self.suffix}"
        ip("netns", "add", ns)
        inside, outside = f"v{name}{self.suffix}"[:15], f"s{name}{self.suffix}"[:15]
        ip("link", "add", inside, "type", "veth", "peer", "name", outside)
        ip("link", "set", inside, "netns", ns)
        ip("link", "set", outside, "netns", self.switch)
        ip("link", "set", outside, "master", "br0", netns=self.switch)
        ip("link", "set", outside, "up", netns=self.switch)
        ip("link", "set", "lo", "up", netns=ns)
        ip("link", "set", inside, "name", "eth0", netns=ns)
        address = f"{self.subnet}.{last_octet}"
        ip("addr", "add", f"{address}/24", "dev", "eth0", netns=ns)
        ip("link", "set", "eth0", "up", netns=ns)
        self.hosts[name] = {"netns": ns, "address": address, "switch_port": outside}
        return ns, address

    def cut(self, name):
        ip("link", "set", self.hosts[name]["switch_port"], "down", netns=self.switch)

    def restore(self, name):
        ip("link", "set", self.hosts[name]["switch_port"], "up", netns=self.switch)

    def exec_prefix(self, name):
        return ["ip", "netns", "exec", self.hosts[name]["netns"]]

    def enter(self, name):
        """Moves this (single-threaded) process into host `name`'s namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.hosts[name]['netns']}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)

    def close(self):
        for host in self.hosts.values():
            ip("netns", "del", host["netns"], check=False)
        ip("netns", "del", self.switch, check=False)
