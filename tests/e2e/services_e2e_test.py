#!/usr/bin/env python3
"""Health changes end to end, on nodes that carry several services, timed at the dataplane.

  services_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR

A manager (AppServer0, the director, on the userspace dataplane) and three nodes, each in its
own network namespace with a real nginx (http on 80, https on 443), a real postfix (smtp on
25) and a real dovecot (imap on 143, pop3 on 110); five virtual services on one virtual IP,
one per service, over the three nodes; a client in a fifth namespace connecting to all five
without pause. Each daemon of each node is killed (SIGKILL of its whole process tree) and
started again in turn, three rounds. Every member the daemon serves (http and https for
nginx, imap and pop3 for dovecot) must leave the dataplane's rotation within
interval x fall + timeout of the kill and come back within interval x rise + timeout of the
daemon accepting again, every time. After round 1 a policy the director cannot apply (its
VIP:port is held by another socket in the director's namespace) is added; rounds 2 and 3 must
keep the same bounds. Every late or missed change is listed in one table at the end.

What "in rotation" means here is the dataplane's own behaviour, not what the manager says:
a sniffer in each node's namespace records every TCP SYN the director sends to the node's
service ports. While a member holds a weight above 0 the dataplane keeps sending it the
client's connections (to a dead member too: it tries, is refused and redispatches), so its
SYNs keep coming; once its weight 0 is in force they stop. The health probes use other ports
of the same daemons (8080, 8443, 2525, 1143, 1110), so that their connections, which come
from the same address, are never taken for the dataplane's. `/v1/health/services` and the
lvs plugin's `effective_weight` (the weight the manager wants) are recorded beside it to say
where a change was lost: before the balancer, or between the balancer and the dataplane.

Needs root, nginx, postfix, dovecot, openssl and iproute2.
"""
import bisect
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import daemons  # noqa: E402
from harness import Api, Cluster, Failure, HarnessError, check, log, keep_failed_run, run_test  # noqa: E402

VIP = "10.77.0.100"
DIRECTOR = "10.77.0.1"
NODES = ("n1", "n2", "n3")
ROUNDS = 3

# service -> (balanced port, probe port). Both ports belong to the same daemon.
SERVICES = {"http": (80, 8080), "https": (443, 8443), "smtp": (25, 2525), "imap": (143, 1143),
            "pop3": (110, 1110)}
DAEMON_SERVICES = {"nginx": ("http", "https"), "postfix": ("smtp",), "dovecot": ("imap", "pop3")}

# Probe timing, short so that 3 rounds x 3 nodes x 3 daemons fit in a few minutes.
INTERVAL_MS, TIMEOUT_MS, FALL, RISE = 500, 300, 2, 2
# The promise is interval x fall + timeout (drain) and interval x rise + timeout (restore),
# counted from the moment the daemon is dead (every process gone) or accepts again. On top
# of it, a fixed allowance for what follows the probe's verdict and for how it is seen:
#   0.30 s  the apply path: health.changed -> lvs plugin -> Command Queue -> the director's
#           long poll -> dataplane apply (0.1 s is usual here);
#   0.20 s  observation: the client connects to each virtual service every CLIENT_GAP_S and
#           round robin gives a member every third connection, so the first (or last) SYN
#           is seen up to ~0.15 s after (before) the weight changed;
#   0.20 s  the probes' own timers running late on a 2-core CI machine busy with other
#           tests (seen: a rise of 2 x 500 ms completing 1.66 s after the daemon was back,
#           at a load average of 14);
#   0.50 s  a daemon that accepts before it can answer: postfix's master accepts as soon as
#           it listens, and the smtpd it then forks greets later on a loaded machine (seen:
#           an smtp restore whose probes, and so every later step, came 2.03 s after the
#           accept, with the browser test and the RPM build running beside it).
# A lost change is late by seconds (until some other change happens) or for ever.
SLACK_S = 1.2
DRAIN_BOUND_S = (INTERVAL_MS * FALL + TIMEOUT_MS) / 1000 + SLACK_S
RESTORE_BOUND_S = (INTERVAL_MS * RISE + TIMEOUT_MS) / 1000 + SLACK_S
# How long to wait for a change before calling it missed (and moving on).
GIVE_UP_S = 3.0
CLIENT_GAP_S = 0.05
# A member is seen out of rotation after this long without a SYN while the other members of
# its service keep getting theirs (many times the ~0.15 s between its SYNs in rotation).
QUIET_S = 0.8

BAD_PORT = 8081  # the policy the director cannot apply: VIP:BAD_PORT is held by a socket of ours


# ---- run inside a node's namespace: the dataplane's SYNs ---------------------------------------
def watch_syns(outfile, source, ports):
    """Writes "TIME PORT" for every TCP SYN (without ACK) that arrives on eth0 from `source`
    to one of `ports`, until SIGTERM."""
    ports = set(ports)
    want = socket.inet_aton(source)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind(("eth0", 0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(outfile, "w", buffering=1) as out:
        print("ready", flush=True)
        while True:
            frame, meta = sock.recvfrom(256)
            if meta[2] != socket.PACKET_HOST or len(frame) < 34 or frame[23] != 6 or frame[26:30] != want:
                continue
            tcp = 14 + (frame[14] & 0x0F) * 4
            if len(frame) < tcp + 14:
                continue
            port = struct.unpack("!H", frame[tcp + 2:tcp + 4])[0]
            flags = frame[tcp + 13]
            if port in ports and flags & 0x02 and not flags & 0x10:
                out.write(f"{time.time():.4f} {port}\n")


# ---- run inside the client's namespace ---------------------------------------------------------
def client_loop(outfile, ports):
    """Connects to VIP:port for each port, every CLIENT_GAP_S, each port in its own thread,
    until SIGTERM; writes "TIME PORT ok|err" per attempt. The connection is closed at once:
    what matters is that the dataplane picks a member for it."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    out = open(outfile, "w", buffering=1)

    def loop(port):
        while not stop.is_set():
            t = time.time()
            try:
                socket.create_connection((VIP, port), timeout=1).close()
                result = "ok"
            except OSError:
                result = "err"
            with lock:
                out.write(f"{t:.4f} {port} {result}\n")
            stop.wait(CLIENT_GAP_S)

    threads = [threading.Thread(target=loop, args=(p,)) for p in ports]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(0.2)
    for t in threads:
        t.join()
    out.close()


# ---- the test ------------------------------------------------------------------------------------
class LineLog:
    """A file another process appends "TIME PORT ..." lines to, read as it grows:
    times[port] is the list of times, in order as far as the writer's clock and threads
    allow (the sniffer has one thread; the client's threads each write their own port)."""

    def __init__(self, path):
        self.path, self.offset, self.partial = path, 0, ""
        self.times = {}
        self.results = {}

    def refresh(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.split()
            if len(parts) < 2:
                continue
            t, port = float(parts[0]), int(parts[1])
            self.times.setdefault(port, []).append(t)
            if len(parts) > 2:
                self.results.setdefault(port, []).append((t, parts[2]))

    def between(self, port, start, end):
        times = self.times.get(port, [])
        return times[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]


class ApiWatcher(threading.Thread):
    """Polls the manager every 0.1 s: the health of every service on every node and the
    weight the lvs plugin wants for every member. history[(service, address)] lists
    (time, serving, effective_weight) whenever one of them changed."""

    def __init__(self, data_dir):
        super().__init__(daemon=True)
        self.api = Api(data_dir)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.history = {}
        self.errors = 0

    def sample(self):
        now = time.time()
        _, health = self.api.call("GET", "/v1/health/services")
        _, lvs = self.api.call("GET", "/v1/plugins/lvs/services")
        serving = {(h["service"], h["address"]): h["serving"] for h in health["services"]}
        weights = {}
        for policy in lvs["services"]:
            if policy.get("address") != VIP or policy.get("port") not in [p for p, _ in SERVICES.values()]:
                continue
            for m in policy["members"]:
                weights[(policy["service"], m["address"])] = m["effective_weight"]
        with self.lock:
            for key in set(serving) | set(weights):
                value = (serving.get(key), weights.get(key))
                entries = self.history.setdefault(key, [])
                if not entries or entries[-1][1:] != value:
                    entries.append((now,) + value)

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 — a failed sample is not a result; counted
                self.errors += 1
            self.stop_event.wait(0.1)

    def settled(self, key, start, end, predicate):
        """The earliest time in [start, end] from which predicate(serving, weight) held
        without a break until `end` (`start` when it held all along), or None when it did
        not hold at `end`."""
        with self.lock:
            entries = list(self.history.get(key, []))
        since = None
        for t, serving, weight in entries:
            if t > end:
                break
            if predicate(serving, weight):
                if since is None:
                    since = max(t, start)
            else:
                since = None
        return since


class Event:
    """One kill or one restore of one member, as measured."""

    def __init__(self, round_, node, daemon, service, kind, start, bound):
        self.round, self.node, self.daemon, self.service, self.kind = round_, node, daemon, service, kind
        self.start, self.bound = start, bound
        self.in_force = None     # seconds after start at which the dataplane changed, or None
        self.absent = False      # a drain of a member that was out of rotation already
        self.note = ""
        self.end = None          # the end of what the manager's answers are read over
        self.health = None       # seconds after start from which /v1/health/services agreed
        self.wanted = None       # ... and the lvs plugin's effective_weight

    def verdict(self):
        if self.absent:
            return "ABSENT"
        if self.in_force is None:
            return "MISSED"
        return "ok" if self.in_force <= self.bound else "LATE"

    @staticmethod
    def cell(value):
        return "-" if value is None else f"{value:.2f}"

    def row(self):
        return (f"{self.round:>5} {self.node:<4} {self.daemon:<8} {self.service:<6} {self.kind:<8} "
                f"{self.cell(self.health):>7} {self.cell(self.wanted):>7} {self.cell(self.in_force):>8} "
                f"{self.bound:>6.2f}  {self.verdict():<6} {self.note}")

    HEADER = ("  health:   from when /v1/health/services said so (until the next kill or restart)\n"
              "  wanted:   from when the lvs plugin's effective_weight said so (lb list)\n"
              "  in-force: when the dataplane's SYNs to the member stopped (drain) or came back (restore)\n"
              "round node daemon   member kind      health  wanted in-force  bound  result note\n"
              "                                        (s)     (s)      (s)    (s)")


class ServicesTest:
    def __init__(self, shoald, shoalctl, plugin_dir):
        timing = f"interval_ms = {INTERVAL_MS}\ntimeout_ms = {TIMEOUT_MS}\nfall = {FALL}\nrise = {RISE}\n"
        probes = (f"[plugin.http]\nport = {SERVICES['http'][1]}\nhttps_port = {SERVICES['https'][1]}\n{timing}"
                  f"[plugin.smtp]\nport = {SERVICES['smtp'][1]}\n{timing}"
                  f"[plugin.imap]\nport = {SERVICES['imap'][1]}\n{timing}"
                  f"[plugin.pop3]\nport = {SERVICES['pop3'][1]}\n{timing}")
        self.cluster = Cluster(shoald, shoalctl, plugin_dir, "sqlite", prefix="shs",
                               manager_extra="app_server = true\n",
                               manager_plugin_extra=f"{probes}[plugin.lvs]\ndataplane = userspace\n")
        self.work = self.cluster.work
        # postfix and dovecot reach their files as their own users: every folder above must
        # let others through.
        self.daemon_root = tempfile.mkdtemp(prefix="shoal-services-e2e-")
        os.chmod(self.daemon_root, 0o755)
        self.daemons = {}      # (node, daemon name) -> daemons.Daemon
        self.sniffers = {}     # node -> Popen
        self.syns = {}         # node -> LineLog
        self.client = None
        self.client_log = None
        self.watcher = None
        self.events = []
        self.restores = {}     # (node, daemon name) -> the events of its last restore
        self.bad_listener = None

    # ---- helpers ----
    def ctl(self, *args, allow_failure=False):
        result = self.cluster.shoalctl(*args)
        if result.returncode != 0 and not allow_failure:
            raise Failure(f"shoalctl {' '.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}")
        return result

    def address(self, node):
        return self.cluster.net.hosts[node]["address"]

    def refresh(self):
        for syns in self.syns.values():
            syns.refresh()
        self.client_log.refresh()

    def wait_for(self, what, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise Failure(f"timed out after {timeout}s waiting for {what}")

    def member_port(self, service):
        return SERVICES[service][0]

    # ---- setup ----
    def start_daemons(self, node):
        ns, address = self.cluster.net.hosts[node]["netns"], self.address(node)
        root = os.path.join(self.daemon_root, node)
        os.makedirs(root)
        os.chmod(root, 0o755)
        self.daemons[(node, "nginx")] = daemons.start_nginx(
            os.path.join(root, "nginx"), address, http_port=80, https_port=443, body=f"{node}\n", netns=ns,
            extra_http_ports=[SERVICES["http"][1]], extra_https_ports=[SERVICES["https"][1]])
        self.daemons[(node, "postfix")] = daemons.start_postfix(
            os.path.join(root, "postfix"), address, smtp_port=25, netns=ns, hostname=f"mx.{node}.shoal-test.invalid",
            extra_smtp_ports=[SERVICES["smtp"][1]])
        self.daemons[(node, "dovecot")] = daemons.start_dovecot(
            os.path.join(root, "dovecot"), address, imap_port=143, pop3_port=110, netns=ns,
            extra_imap_ports=[SERVICES["imap"][1]], extra_pop3_ports=[SERVICES["pop3"][1]],
            reuse_login_processes=True)

    def start_sniffer(self, node):
        path = os.path.join(self.work, f"syns-{node}.log")
        ports = [str(p) for p, _ in SERVICES.values()]
        proc = subprocess.Popen(self.cluster.net.exec_prefix(node) + [
            sys.executable, os.path.abspath(__file__), "--watch-syns", path, DIRECTOR] + ports,
            stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise HarnessError(f"the SYN sniffer of {node} did not start")
        self.sniffers[node] = proc
        self.syns[node] = LineLog(path)

    def setup(self):
        c = self.cluster
        c.net.add_host("c", 50)
        c.up()
        subprocess.run(["ip", "netns", "exec", c.net.hosts["m"]["netns"], "ip", "addr", "add", f"{VIP}/32",
                        "dev", "eth0"], check=True)
        nodes = {n["address"]: n for n in c.api.call("GET", "/v1/nodes")[1]["nodes"]}
        self.ctl("node", "set-roles", str(nodes[DIRECTOR]["id"]), "director")
        log("starting nginx, postfix and dovecot on every node")
        for node in NODES:
            self.start_daemons(node)
            self.start_sniffer(node)
            self.ctl("node", "set-roles", str(nodes[self.address(node)]["id"]), ",".join(SERVICES))

        log("waiting for the 15 services to be probed healthy")

        def all_healthy():
            services = c.api.call("GET", "/v1/health/services")[1]["services"]
            return sum(s["state"] == "healthy" for s in services) == len(NODES) * len(SERVICES)
        self.wait_for("15 healthy services", all_healthy, 30)

        log("adding one virtual service per service, round robin, no persistence")
        for service, (port, _) in SERVICES.items():
            self.ctl("lb", "add", "-t", f"{VIP}:{port}", "--service", service, "-s", "rr", "-p", "0")
            for node in NODES:
                self.ctl("lb", "add-server", "-t", f"{VIP}:{port}", "-r", f"{self.address(node)}:{port}")

        self.client_log = LineLog(os.path.join(self.work, "client.log"))
        self.client = subprocess.Popen(c.net.exec_prefix("c") + [
            sys.executable, os.path.abspath(__file__), "--client-loop", self.client_log.path] +
            [str(p) for p, _ in SERVICES.values()])

        log("waiting for every member to get the dataplane's connections")
        since = time.time()

        def all_in_rotation():
            self.refresh()
            return all(self.syns[n].between(p, since + 0.5, time.time()) for n in NODES for p, _ in SERVICES.values())
        self.wait_for("all 15 members in rotation", all_in_rotation, 30)

        self.watcher = ApiWatcher(os.path.join(self.work, "m"))
        self.watcher.start()

    # ---- one kill or restore ----
    def traffic_check(self, node, service, start, end):
        """Harness sanity: the client kept connecting to the service's VIP:port over
        [start, end], so a member without SYNs there really was out of rotation."""
        port = self.member_port(service)
        attempts = self.client_log.between(port, start, end)
        if end - start > 0.5 and len(attempts) < (end - start) / (CLIENT_GAP_S * 4):
            raise HarnessError(f"the client made only {len(attempts)} connections to {VIP}:{port} "
                               f"in {end - start:.2f}s: no evidence either way")

    def others_got_syns(self, node, service, start, end):
        port = self.member_port(service)
        return sum(len(self.syns[n].between(port, start, end)) for n in NODES if n != node)

    def kill(self, round_, node, name):
        daemon = self.daemons[(node, name)]
        services = DAEMON_SERVICES[name]
        accepting = daemon.accepting()
        if sorted(accepting) != sorted(daemon.ports):
            raise HarnessError(f"{name} on {node} accepts only on {accepting} before its kill")
        daemon.kill()
        killed_at = time.time()
        still = daemon.accepting() + [p for p in self.probe_ports(name) if self.accepts_here(node, p)]
        if still:
            raise HarnessError(f"{name} on {node} still accepts on {still} after its kill")
        events = {s: Event(round_, node, name, s, "drain", killed_at, DRAIN_BOUND_S) for s in services}
        # Wait until every member has gone QUIET_S without a SYN while its service's other
        # members kept getting theirs, or until it is clearly missed.
        deadline = killed_at + DRAIN_BOUND_S + GIVE_UP_S
        pending = set(services)
        while pending and time.time() < deadline:
            time.sleep(0.05)
            self.refresh()
            now = time.time()
            for s in list(pending):
                port = self.member_port(s)
                seen = self.syns[node].between(port, killed_at - 5, now)
                last = seen[-1] if seen else killed_at - 5
                quiet_from = max(last, killed_at)
                if now - quiet_from >= QUIET_S and self.others_got_syns(node, s, quiet_from, now) >= 3:
                    pending.discard(s)
                    if last < killed_at:
                        # The restore before this kill never reached the dataplane.
                        events[s].absent = True
                        events[s].note = "out of rotation already when its daemon was killed"
                    else:
                        events[s].in_force = last - killed_at
        for s in services:
            self.traffic_check(node, s, killed_at, time.time())
            if s in pending:
                events[s].note = f"SYNs still arriving {time.time() - killed_at:.1f}s after the kill"
        return list(events.values())

    def probe_ports(self, name):
        return [SERVICES[s][1] for s in DAEMON_SERVICES[name]]

    def accepts_here(self, node, port, timeout=0.2):
        """A connect from this process, in the director's namespace as the probes are. Only
        probe ports: a connect to a balanced port would be counted as the dataplane's SYN."""
        try:
            socket.create_connection((self.address(node), port), timeout=timeout).close()
            return True
        except OSError:
            return False

    def restore(self, round_, node, name):
        daemon = self.daemons[(node, name)]
        services = DAEMON_SERVICES[name]
        # The restore is timed from the moment the daemon accepts where the probes connect,
        # seen from the director's namespace every 10 ms while start() (which also checks
        # every port from inside the node, and takes postfix a second) runs beside it.
        started = []
        starter = threading.Thread(target=lambda: started.append(self.start_daemon(daemon)))
        starter.start()
        up_at = None
        pending_ports = self.probe_ports(name)
        deadline = time.time() + 20
        while pending_ports and time.time() < deadline:
            pending_ports = [p for p in pending_ports if not self.accepts_here(node, p, 0.05)]
            if pending_ports:
                time.sleep(0.01)
        up_at = time.time()
        starter.join()
        if started != [None]:
            raise HarnessError(f"{name} on {node} did not start again: {started}")
        if pending_ports:
            raise HarnessError(f"{name} on {node} started but refuses {pending_ports} from the director")
        events = {s: Event(round_, node, name, s, "restore", up_at, RESTORE_BOUND_S) for s in services}
        self.refresh()
        for s in services:
            if self.syns[node].between(self.member_port(s), up_at - QUIET_S, up_at):
                events[s].note = "had not left the rotation"
        deadline = up_at + RESTORE_BOUND_S + GIVE_UP_S
        pending = set(services)
        while pending and time.time() < deadline:
            time.sleep(0.05)
            self.refresh()
            for s in list(pending):
                seen = self.syns[node].between(self.member_port(s), up_at, time.time())
                if seen:
                    pending.discard(s)
                    events[s].in_force = seen[0] - up_at
        for s in services:
            self.traffic_check(node, s, up_at, time.time())
            if s in pending:
                events[s].note = f"no SYN {time.time() - up_at:.1f}s after the daemon accepted again"
        return list(events.values())

    @staticmethod
    def start_daemon(daemon):
        try:
            daemon.start()
            return None
        except daemons.DaemonError as e:
            return str(e)

    def annotate(self, event, end):
        """Adds what the manager said: from when on the health and the weight the lvs
        plugin wants had the new value, up to `end` (the end of the observation)."""
        key = (event.service, self.address(event.node))
        start = event.start - 0.2  # a probe may have failed while the tree was being frozen
        if event.kind == "drain":
            health = self.watcher.settled(key, start, end, lambda serving, weight: serving is False)
            wanted = self.watcher.settled(key, start, end, lambda serving, weight: weight == 0)
        else:
            health = self.watcher.settled(key, start, end, lambda serving, weight: serving is True)
            wanted = self.watcher.settled(key, start, end, lambda serving, weight: bool(weight))
        event.health = None if health is None else max(0.0, health - event.start)
        event.wanted = None if wanted is None else max(0.0, wanted - event.start)

    def cycle(self, round_, node, name):
        for e in self.restores.get((node, name), []):
            e.end = time.time()  # the manager's answers about a restore count until the next kill
        drains = self.kill(round_, node, name)
        for e in drains:
            e.end = time.time()
        restores = self.restore(round_, node, name)
        self.restores[(node, name)] = restores
        self.events += drains + restores
        log(f"round {round_} {node} {name}: " + ", ".join(
            f"{e.service} {e.kind} {e.verdict()}" + ("" if e.in_force is None else f" {e.in_force:.2f}s")
            for e in drains + restores))
        for proc_name, proc in self.cluster.processes.items():
            if proc.poll() is not None:
                raise Failure(f"shoald {proc_name} exited with status {proc.returncode} "
                              f"({'signal ' + str(-proc.returncode) if proc.returncode < 0 else 'exit'})")

    # ---- the policy the director cannot apply ----
    def add_bad_policy(self):
        # This process is in the director's (the manager's) namespace: the dataplane cannot
        # listen where this socket already does.
        self.bad_listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.bad_listener.bind((VIP, BAD_PORT))
        self.bad_listener.listen(16)
        result = self.ctl("lb", "add", "-t", f"{VIP}:{BAD_PORT}", "--service", "http", "-s", "rr", "-p", "0",
                          "-m", allow_failure=True)
        if result.returncode != 0:
            # Refusing it at the API is as good as isolating it, if the answer names it.
            check(f"{VIP}:{BAD_PORT}" in result.stderr + result.stdout,
                  f"lb add of the unusable {VIP}:{BAD_PORT} was refused without naming it: {result.stderr}")
            log(f"lb add -t {VIP}:{BAD_PORT} refused: {result.stderr.strip()}")
            return
        self.ctl("lb", "add-server", "-t", f"{VIP}:{BAD_PORT}", "-r", f"{self.address('n1')}:80", "-m")
        log(f"added the policy {VIP}:{BAD_PORT}, whose address a socket of the test holds")
        # Sanity: VIP:BAD_PORT is really ours, so the director really cannot listen there.
        probe = subprocess.run(self.cluster.net.exec_prefix("c") + [
            sys.executable, "-c", "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)",
            VIP, str(BAD_PORT)], capture_output=True)
        self.bad_listener.settimeout(2)
        try:
            conn, _ = self.bad_listener.accept()
            conn.close()
        except OSError:
            raise HarnessError(f"{VIP}:{BAD_PORT} did not reach the test's own listener ({probe.stderr})")

    def remove_bad_policy(self):
        if self.bad_listener is not None:
            self.bad_listener.close()
            self.bad_listener = None
            self.ctl("lb", "delete", "-t", f"{VIP}:{BAD_PORT}", allow_failure=True)

    # ---- the whole test ----
    def run(self):
        self.setup()
        log(f"bounds: drain {DRAIN_BOUND_S:.2f}s = {INTERVAL_MS} ms x {FALL} + {TIMEOUT_MS} ms + {SLACK_S}s, "
            f"restore {RESTORE_BOUND_S:.2f}s = {INTERVAL_MS} ms x {RISE} + {TIMEOUT_MS} ms + {SLACK_S}s")
        for round_ in range(1, ROUNDS + 1):
            if round_ == 2:
                self.add_bad_policy()
            for node in NODES:
                for name in DAEMON_SERVICES:
                    self.cycle(round_, node, name)
        time.sleep(1)  # the last restores' health and weights, for the table
        for e in self.events:
            self.annotate(e, e.end or time.time())
        log("every change, in seconds after the kill (drain) or after the daemon accepted again "
            "(restore):\n" + Event.HEADER + "\n" + "\n".join(e.row() for e in self.events))
        self.remove_bad_policy()
        self.report_queue()
        self.refresh()
        results = [r for rs in self.client_log.results.values() for _, r in rs]
        log(f"client: {len(results)} connections to the virtual IP, {results.count('err')} failed")
        bad = [e for e in self.events if e.verdict() != "ok"]
        check(self.watcher.errors < 10, f"{self.watcher.errors} samples of the manager's API failed")
        log(f"{len(self.events)} changes measured at the dataplane, {len(bad)} late or missed")
        if bad:
            raise Failure("late or missed health changes at the dataplane:\n" + Event.HEADER + "\n" +
                          "\n".join(e.row() for e in bad))
        log("PASS")

    def report_queue(self):
        """Logs how the balancer's applies ended, for the reader of a failure."""
        _, body = self.cluster.api.call("GET", "/v1/commands?limit=1000")
        states = {}
        failed = []
        for command in body["commands"]:
            if command["kind"] != "lvs.apply":
                continue
            for d in command["deliveries"]:
                states[d["state"]] = states.get(d["state"], 0) + 1
                if d["state"] == "failed":
                    failed.append(d["output"][:300])
        log(f"lvs.apply deliveries by state: {states}")
        for output in failed[:3]:
            log(f"  failed: {output}")

    def close(self, failed):
        self.remove_bad_policy()
        if self.watcher is not None:
            self.watcher.stop_event.set()
            self.watcher.join(timeout=5)
        for proc in [self.client] + list(self.sniffers.values()):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for (node, name), daemon in self.daemons.items():
            try:
                daemon.stop()
            except daemons.DaemonError as e:
                log(f"stopping {name} on {node}: {e}")
        self.cluster.close(failed=failed, keep=keep_failed_run(failed))
        import shutil
        shutil.rmtree(self.daemon_root, ignore_errors=True)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--watch-syns":
        watch_syns(sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]])
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "--client-loop":
        client_loop(sys.argv[2], [int(p) for p in sys.argv[3:]])
        return 0
    if os.geteuid() != 0:
        raise SystemExit("services_e2e_test.py needs root: network namespaces, postfix")
    shoald, shoalctl, plugin_dir = sys.argv[1:4]
    test = ServicesTest(shoald, shoalctl, plugin_dir)
    started = time.time()
    try:
        return run_test(test, (daemons.DaemonError,))
    finally:
        log(f"took {time.time() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
