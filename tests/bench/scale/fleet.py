"""Many hosts for the scale benchmark: one network namespace per node agent, so that every
agent reaches the manager from an address of its own, as real nodes do.

A switch namespace holds one bridge; the manager, a client and every node get a namespace
with a veth pair into it, on 10.78.0.0/16 (10.77.x belongs to the end-to-end tests). The
links are made with `ip -batch`, a few invocations in all rather than several per host.

Only one fleet exists at a time: open() takes /tmp/shoal-netns-10.78.lock and first removes
what an earlier run that was killed outright left behind (its namespaces, by this module's
prefix, and the processes still inside them, by pid). close() removes everything it made.
"""
import ctypes
import fcntl
import os
import signal
import subprocess
import time

PREFIX = "shsc-"
LOCK_FILE = "/tmp/shoal-netns-10.78.lock"
MANAGER_ADDRESS = "10.78.0.1"
CLIENT_ADDRESS = "10.78.0.2"
CLONE_NEWNET = 0x40000000


def node_address(index):
    """10.78.1.1 … 10.78.1.200, 10.78.2.1 …: 200 nodes per third octet."""
    return f"10.78.{1 + index // 200}.{1 + index % 200}"


def _ip_batch(lines, netns=None):
    if not lines:
        return
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    out = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")


def _our_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def _pids_in(netns):
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _kill_and_delete(namespaces):
    """SIGKILLs every process inside `namespaces` (each by its pid, never this process, which
    may have entered one) and deletes them."""
    for ns in namespaces:
        for pid in _pids_in(ns):
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    while time.time() < deadline and any(set(_pids_in(ns)) - {os.getpid()} for ns in namespaces):
        time.sleep(0.05)
    _ip_batch([f"netns del {ns}" for ns in namespaces])


class Fleet:
    def __init__(self, nodes):
        self.node_count = nodes
        self.switch = PREFIX + "sw"
        self.manager = PREFIX + "m"
        self.client = PREFIX + "c"
        self.nodes = [f"{PREFIX}n{i}" for i in range(nodes)]
        self.made = []
        self.lock = None

    def open(self):
        self.lock = open(LOCK_FILE, "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        leftovers = _our_namespaces()
        if leftovers:
            print(f"removing {len(leftovers)} namespaces (and their processes) an earlier run left behind", flush=True)
            _kill_and_delete(leftovers)

        hosts = [(self.manager, MANAGER_ADDRESS), (self.client, CLIENT_ADDRESS)]
        hosts += [(ns, node_address(i)) for i, ns in enumerate(self.nodes)]
        self.made = [self.switch] + [ns for ns, _ in hosts]
        root = [f"netns add {ns}" for ns in self.made]
        # Both ends are created where they belong: "eth0" in the host, "p<i>" on the switch.
        root += [f"link add eth0 netns {ns} type veth peer name p{i} netns {self.switch}"
                 for i, (ns, _) in enumerate(hosts)]
        _ip_batch(root)
        switch = ["link add br0 type bridge", "link set br0 up", "link set lo up"]
        for i in range(len(hosts)):
            switch += [f"link set p{i} master br0", f"link set p{i} up"]
        _ip_batch(switch, self.switch)
        for ns, address in hosts:
            _ip_batch(["link set lo up", f"addr add {address}/16 dev eth0", "link set eth0 up"], ns)

    def exec_prefix(self, netns):
        return ["ip", "netns", "exec", netns]

    def enter(self, netns):
        """Moves this process into `netns`; call before starting threads (they inherit it)."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns} failed")
        finally:
            os.close(fd)

    def close(self):
        if self.made:
            _kill_and_delete([ns for ns in self.made if ns in _our_namespaces()])
            self.made = []
        if self.lock is not None:
            self.lock.close()
            self.lock = None
