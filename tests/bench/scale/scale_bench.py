#!/usr/bin/env python3
"""Scale benchmark: many real node agents against one manager, each figure beside a peer
measured in the same run.

Every node is its own shoald process in node mode, in a network namespace of its own (its
own source address), enrolled with a join token of its own and holding its own TLS
connection to the manager, over which it long-polls for deliveries as in production. The
manager is one shoald process (SQLite store). Commands go to all nodes through the
`recorder` test plugin, whose handler notes when it applied each one.

Figures:
- enqueue-to-applied p50/p99 over every (command, node): from just before the client sends
  `POST /v1/commands` to the node's handler applying it;
- admin `GET /v1/nodes` p50/p99 while the agents poll, on a new connection each time (as
  shoalctl makes one) and on a kept-alive one;
- the manager's CPU (user+system seconds, /proc/PID/stat), RSS and threads, peak and at the end.
Peers, in the same run: the same admin GETs once every agent has stopped (same manager, same
store, nothing connected), and a static answer from nginx over HTTPS in the manager's
namespace, with the same client, the same TLS key and certificate, during the load and
after it.

Nothing here waits without a deadline: agents that cannot enrol, requests the manager never
answers and deliveries never applied are counted and reported, and the run always ends.
Needs root, iproute2 and nginx.

usage: scale_bench.py --shoald PATH --plugin-dir DIR [--nodes 250] [--commands 40] ...
"""
import argparse
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))
import nginx_ctl  # noqa: E402
from fleet import MANAGER_ADDRESS, Fleet, node_address  # noqa: E402

API_PORT = 7443
NGINX_PORT = 443
PR_SET_PDEATHSIG = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


WORK_PARENT = tempfile.gettempdir()
WORK_PREFIX = "shoal-scale-"
RUNNING_MARK = "running.pid"  # in a work folder while its run lives; gone from a kept one


def remove_abandoned_work_folders():
    """Removes the work folders of runs killed outright (their pid is gone); called with the
    fleet's lock held, so no other run is live. Folders kept with --keep have no mark."""
    for name in os.listdir(WORK_PARENT):
        mark = os.path.join(WORK_PARENT, name, RUNNING_MARK)
        if not name.startswith(WORK_PREFIX) or not os.path.exists(mark):
            continue
        try:
            pid = int(open(mark).read().strip())
            os.kill(pid, 0)
            continue  # still alive (cannot be a run, since we hold the lock, but leave it)
        except (ValueError, ProcessLookupError):
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(WORK_PARENT, name), ignore_errors=True)


def die_with_parent():
    """Runs in each child before exec: the kernel kills it if this benchmark dies, so no agent
    outlives a run that was killed outright."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds):
    return "none" if seconds is None else ("timeout" if seconds == float("inf") else f"{seconds * 1000:.2f} ms")


class Series:
    """Latencies of one kind of request; a request that failed or timed out counts as
    infinitely slow, so a p99 above the failures reads 'timeout' rather than looking good."""

    def __init__(self, name):
        self.name, self.values, self.failures, self.lock = name, [], {}, threading.Lock()

    def add(self, seconds):
        with self.lock:
            self.values.append(seconds)

    def fail(self, reason):
        with self.lock:
            self.values.append(float("inf"))
            self.failures[reason] = self.failures.get(reason, 0) + 1

    def line(self):
        with self.lock:
            values, failures = list(self.values), dict(self.failures)
        if not values:
            return f"{self.name}: no request completed"
        text = (f"{self.name}: p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}, "
                f"max {ms(max(values))} ({len(values)} requests")
        if failures:
            text += ", failed: " + ", ".join(f"{n} {reason}" for reason, n in sorted(failures.items()))
        return text + ")"

    def percentiles(self):
        with self.lock:
            values = list(self.values)
        return (percentile(values, 50), percentile(values, 99)) if values else (None, None)


class Https:
    """One HTTPS client: kept-alive (reconnects after a failure) or a new connection per request."""

    def __init__(self, host, port, context, timeout, token=None, keep_alive=True):
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.token, self.keep_alive, self.conn = token, keep_alive, None

    def call(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        if not self.keep_alive:
            self.close()
        return response.status, data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def failure_reason(error):
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "reset/closed"
    return type(error).__name__


def timed(client, series, method, path, expect=200):
    started = time.perf_counter()
    try:
        status, _ = client.call(method, path)
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        series.fail(failure_reason(e))
        return
    if status != expect:
        series.fail(f"status {status}")
    else:
        series.add(time.perf_counter() - started)


class Sampler(threading.Thread):
    """Sends one request after another (a short pause between) until stopped."""

    def __init__(self, client, series, path, pause=0.1):
        super().__init__(daemon=True)
        self.client, self.series, self.path, self.pause = client, series, path, pause
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            timed(self.client, self.series, "GET", self.path)
            self.stopping.wait(self.pause)

    def stop(self):
        self.stopping.set()


def proc_figures(pid):
    """(user+system CPU seconds, RSS bytes, threads) of a live process, from /proc."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rfind(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = threads = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return cpu, rss, threads


def pss_bytes(pid):
    """Proportional set size: shared library pages split between the processes sharing them,
    so a sum over many agents is the memory they really take together."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class ProcessWatch(threading.Thread):
    """Samples one process every `period` seconds: its CPU, RSS and thread count."""

    def __init__(self, pid, period=0.25):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak_rss = self.peak_threads = 0
        self.last = None
        self.stopping = threading.Event()

    def sample(self):
        try:
            figures = proc_figures(self.pid)
        except OSError:
            return self.last
        self.last = figures
        self.peak_rss = max(self.peak_rss, figures[1])
        self.peak_threads = max(self.peak_threads, figures[2])
        return figures

    def run(self):
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.period)

    def stop(self):
        self.stopping.set()


def netns_output(netns, argv):
    return subprocess.run(["ip", "netns", "exec", netns] + argv, capture_output=True, text=True, timeout=30).stdout


def listen_counters(netns):
    """TcpExt ListenOverflows and ListenDrops of a namespace: connections the kernel dropped
    because the listener's accept queue was full."""
    lines = [line.split() for line in netns_output(netns, ["cat", "/proc/net/netstat"]).splitlines()
             if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    values = dict(zip(lines[0][1:], lines[1][1:]))
    return {name: int(values.get(name, 0)) for name in ("ListenOverflows", "ListenDrops")}


class ConnectionWatch(threading.Thread):
    """Counts the manager's TCP connections on the API port by state, every `period` seconds:
    ESTAB ones are held open; CLOSE-WAIT ones the client has closed while the server has not
    yet read from them (queued for a worker that has not come)."""

    def __init__(self, netns, port, period=2.0):
        super().__init__(daemon=True)
        self.netns, self.port, self.period = netns, port, period
        self.peak, self.last = {}, {}
        self.stopping = threading.Event()

    def sample(self):
        counts = {}
        for line in netns_output(self.netns, ["ss", "-Htan", f"sport = :{self.port}"]).splitlines():
            state = line.split()[0]
            if state != "LISTEN":
                counts[state] = counts.get(state, 0) + 1
        self.last = counts
        for state, n in counts.items():
            self.peak[state] = max(self.peak.get(state, 0), n)
        return counts

    def run(self):
        while not self.stopping.is_set():
            try:
                self.sample()
            except (OSError, subprocess.SubprocessError):
                pass
            self.stopping.wait(self.period)

    def stop(self):
        self.stopping.set()


def states(counts):
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"


def cpu_seconds(pids):
    """User+system CPU seconds of every process in `pids` that still runs, summed."""
    total = 0.0
    for pid in pids:
        try:
            total += proc_figures(pid)[0]
        except OSError:
            pass
    return total


class ScaleBench:
    def __init__(self, args):
        self.args = args
        self.fleet = Fleet(args.nodes)
        self.work = None  # made once the fleet's lock is held, see run()
        self.manager = None
        self.agents = {}  # index -> Popen
        self.logs = []

    # ---- processes ----
    def start(self, netns, argv, name):
        logfile = open(os.path.join(self.work, f"{name}.log"), "a")
        self.logs.append(logfile)
        return subprocess.Popen(self.fleet.exec_prefix(netns) + argv, stdout=logfile, stderr=logfile,
                                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def log_text(self, name):
        if self.work is None:
            return ""
        try:
            with open(os.path.join(self.work, f"{name}.log")) as f:
                return f.read()
        except OSError:
            return ""

    def write_config(self, name, role, address):
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        path = os.path.join(self.work, f"{name}.conf")
        with open(path, "w") as f:
            f.write(f"[shoald]\nrole = {role}\ndata_dir = {data}\nplugin_dir = {self.args.plugin_dir}\n"
                    f"store = sqlite\nlog_level = information\nadvertise_address = {address}\n"
                    f"api_port = {API_PORT}\n[plugin.recorder]\nfile = {data}/applied\n")
        return path

    def start_manager(self):
        conf = self.write_config("m", "manager", MANAGER_ADDRESS)
        self.manager = self.start(self.fleet.manager, [self.args.shoald, "--config", conf], "m")
        deadline = time.time() + 30
        while "shoald ready" not in self.log_text("m"):
            if self.manager.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the manager did not start:\n{self.log_text('m')[-3000:]}")
            time.sleep(0.05)

    def start_nginx(self):
        """nginx in the manager's namespace with the manager's own certificate and key, so the
        peer's TLS costs what the manager's does."""
        os.makedirs(self.nginx_prefix)
        tls = os.path.join(self.work, "m", "tls")
        shutil.copy(os.path.join(tls, "server.crt"), os.path.join(self.nginx_prefix, "cert.pem"))
        shutil.copy(os.path.join(tls, "server.key"), os.path.join(self.nginx_prefix, "key.pem"))
        conf = os.path.join(self.nginx_prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_ctl.config(self.nginx_prefix, MANAGER_ADDRESS, "peer", tls=True))
        subprocess.run(self.fleet.exec_prefix(self.fleet.manager) + ["nginx", "-p", self.nginx_prefix, "-c", conf],
                       check=True, capture_output=True, timeout=30)

    def stop_nginx(self):
        """Fast shutdown (SIGTERM): a graceful one would wait for the samplers' open connections."""
        pid = nginx_ctl.master_pid(self.nginx_prefix)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and nginx_ctl.master_pid(self.nginx_prefix) is not None:
            time.sleep(0.05)

    def agent_ready(self, index):
        return "shoald ready" in self.log_text(f"n{index}")

    def start_agents(self, tokens):
        """Starts the agents in waves, each wave given until its deadline to report ready;
        returns the indexes of agents that are ready (enrolled; they pull from then on)."""
        ready, gave_up = set(), set()
        deadline = time.time() + self.args.enrol_timeout
        for first in range(0, self.args.nodes, self.args.wave):
            wave = range(first, min(first + self.args.wave, self.args.nodes))
            for i in wave:
                conf = self.write_config(f"n{i}", "node", node_address(i))
                argv = [self.args.shoald, "--config", conf, "--join", tokens[i]]
                self.agents[i] = self.start(self.fleet.nodes[i], argv, f"n{i}")
            wave_deadline = min(deadline, time.time() + self.args.wave_timeout)
            while time.time() < wave_deadline:
                for i in wave:
                    if i not in ready and self.agent_ready(i):
                        ready.add(i)
                if all(i in ready or self.agents[i].poll() is not None for i in wave):
                    break
                time.sleep(0.1)
            waiting = [i for i in wave if i not in ready]
            gave_up.update(waiting)
            log(f"agents started: {first + len(wave)}, ready: {len(ready)}"
                + (f" (wave {first}-{wave[-1]}: {len(waiting)} not ready in time)" if waiting else ""))
            if time.time() >= deadline:
                log(f"enrolment deadline ({self.args.enrol_timeout:.0f} s) reached; no more agents are started")
                break
        # Agents that were slow may have become ready meanwhile.
        for i in gave_up:
            if self.agent_ready(i):
                ready.add(i)
        return ready

    def stop_agents(self):
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for proc in self.agents.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ---- measurements ----
    def applied_times(self, index):
        times = {}
        path = os.path.join(self.work, f"n{index}", "applied.times")
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3:
                        times[(parts[0], int(parts[1]))] = int(parts[2]) / 1e6
        except OSError:
            pass
        return times

    def peer_requests(self, label, api_context, nginx_context, token):
        """The same requests, one after another, with nothing else happening."""
        count = self.args.peer_requests
        t = self.args.request_timeout
        results = []
        for name, client, path in (
                (f"admin GET /v1/nodes, new connection each time, {label}",
                 Https(MANAGER_ADDRESS, API_PORT, api_context, t, token, keep_alive=False), "/v1/nodes"),
                (f"admin GET /v1/nodes, kept-alive connection, {label}",
                 Https(MANAGER_ADDRESS, API_PORT, api_context, t, token), "/v1/nodes"),
                (f"nginx GET /, new connection each time, {label}",
                 Https(MANAGER_ADDRESS, NGINX_PORT, nginx_context, t, keep_alive=False), "/"),
                (f"nginx GET /, kept-alive connection, {label}",
                 Https(MANAGER_ADDRESS, NGINX_PORT, nginx_context, t), "/")):
            series = Series(name)
            timed(client, Series("warm-up"), "GET", path)
            for _ in range(count):
                timed(client, series, "GET", path)
            client.close()
            results.append(series)
        return results

    def run(self):
        args = self.args
        log(f"building {args.nodes + 3} network namespaces on 10.78.0.0/16")
        started = time.time()
        self.fleet.open()
        log(f"namespaces up in {time.time() - started:.1f} s")
        remove_abandoned_work_folders()
        self.work = tempfile.mkdtemp(prefix=WORK_PREFIX, dir=WORK_PARENT)
        with open(os.path.join(self.work, RUNNING_MARK), "w") as f:
            f.write(str(os.getpid()))
        self.nginx_prefix = os.path.join(self.work, "nginx")
        self.start_manager()
        self.start_nginx()
        self.fleet.enter(self.fleet.client)
        token = open(os.path.join(self.work, "m", "admin.token")).read().strip()
        api_context = ssl.create_default_context(cafile=os.path.join(self.work, "m", "tls", "ca.crt"))
        nginx_context = api_context
        admin = Https(MANAGER_ADDRESS, API_PORT, api_context, args.request_timeout, token)

        watch = ProcessWatch(self.manager.pid)
        cpu_at_start = watch.sample()[0]
        idle_peers = self.peer_requests("no agent yet (empty cluster)", api_context, nginx_context, token)

        # One join token per agent, made while the manager is idle.
        tokens = []
        for _ in range(args.nodes):
            status, body = admin.call("POST", "/v1/join-tokens", {"ttl_seconds": 3600})
            if status != 201 and status != 200:
                raise RuntimeError(f"join token refused: {status} {body[:300]}")
            tokens.append(json.loads(body)["token"])

        watch.start()
        connections = ConnectionWatch(self.fleet.manager, API_PORT)
        connections.start()
        listen_before = listen_counters(self.fleet.manager)
        cpu_before_agents = watch.sample()[0]
        agents_started_at = time.time()
        ready = self.start_agents(tokens)
        enrol_seconds = time.time() - agents_started_at
        log(f"{len(ready)} of {args.nodes} agents ready in {enrol_seconds:.1f} s")

        # Online as the manager sees it (bounded: the admin API may not answer at all).
        online = None
        deadline = time.time() + args.online_timeout
        while time.time() < deadline:
            try:
                status, body = admin.call("GET", "/v1/nodes")
                if status == 200:
                    online = sum(n["state"] == "online" for n in json.loads(body)["nodes"])
                    if online >= len(ready):
                        break
            except (OSError, http.client.HTTPException, ssl.SSLError):
                pass
            time.sleep(0.5)
        log(f"manager sees {'an unknown number of' if online is None else online} nodes online")

        # The load: commands to every node, while admin requests and nginx requests go on.
        t = args.request_timeout
        samplers = [
            Sampler(Https(MANAGER_ADDRESS, API_PORT, api_context, t, token, keep_alive=False),
                    Series("admin GET /v1/nodes, new connection each time, while the agents poll"), "/v1/nodes"),
            Sampler(Https(MANAGER_ADDRESS, API_PORT, api_context, t, token),
                    Series("admin GET /v1/nodes, kept-alive connection, while the agents poll"), "/v1/nodes"),
            Sampler(Https(MANAGER_ADDRESS, NGINX_PORT, nginx_context, t, keep_alive=False),
                    Series("nginx GET /, new connection each time, while the agents poll"), "/"),
            Sampler(Https(MANAGER_ADDRESS, NGINX_PORT, nginx_context, t),
                    Series("nginx GET /, kept-alive connection, while the agents poll"), "/"),
        ]
        cpu_before_load = watch.sample()[0]
        machine_before, load_average_before = machine_cpu(), os.getloadavg()[0]
        agents_cpu_before = cpu_seconds(p.pid for p in self.agents.values())
        for s in samplers:
            s.start()
        load_started = time.time()
        enqueue = Series("enqueue POST /v1/commands, kept-alive connection")
        sent = {}
        enqueue_deadline = time.time() + args.commands * args.interval + args.enqueue_timeout
        for i in range(args.commands):
            if time.time() > enqueue_deadline:
                enqueue.fail("not sent: the enqueue deadline had passed")
                continue
            key, seq = f"k{i % args.keys}", i // args.keys + 1
            at = time.time()
            before = time.perf_counter()
            try:
                status, body = admin.call("POST", "/v1/commands",
                                          {"kind": "recorder.apply", "key": key, "target": {"all": True},
                                           "payload": json.dumps({"key": key, "seq": seq})})
                if status == 201:
                    sent[(key, seq)] = at
                    enqueue.add(time.perf_counter() - before)
                else:
                    enqueue.fail(f"status {status}")
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                enqueue.fail(failure_reason(e))
            time.sleep(max(0.0, args.interval - (time.perf_counter() - before)))
        enqueued_seconds = time.time() - load_started

        # Wait until every ready agent applied every accepted command, or the deadline.
        deadline = time.time() + args.apply_timeout
        expected = len(sent) * len(ready)
        applied = {}
        while True:
            applied = {i: self.applied_times(i) for i in ready}
            done = sum(sum(1 for k in sent if k in times) for times in applied.values())
            if done >= expected or time.time() > deadline:
                break
            time.sleep(0.5)
        applied_seconds = time.time() - load_started
        while time.time() - load_started < args.min_load_seconds:
            time.sleep(0.2)
        for s in samplers:
            s.stop()
        for s in samplers:
            s.join(timeout=args.request_timeout + 5)
        load_seconds = time.time() - load_started
        cpu_after_load, rss_end, threads_end = watch.sample()
        machine_after, load_average_after = machine_cpu(), os.getloadavg()[0]
        agents_cpu_after = cpu_seconds(p.pid for p in self.agents.values())
        connections_end = connections.sample()
        listen_after = listen_counters(self.fleet.manager)
        exited = {i: p.returncode for i, p in self.agents.items() if p.poll() is not None}
        exit_reasons = {}
        for i in exited:
            lines = self.log_text(f"n{i}").strip().splitlines()
            reason = lines[-1] if lines else "(no output)"
            exit_reasons[reason] = exit_reasons.get(reason, 0) + 1
        # The agents alone: nothing but their long-polls, for the manager's cost of holding them.
        time.sleep(args.quiet_seconds)
        cpu_after_quiet = watch.sample()[0]
        agent_pids = [p.pid for i, p in self.agents.items() if p.poll() is None]
        agent_pss = sum(pss_bytes(pid) for pid in agent_pids)
        agent_rss = []
        agent_threads = []
        for pid in agent_pids:
            try:
                _, rss, threads = proc_figures(pid)
                agent_rss.append(rss)
                agent_threads.append(threads)
            except OSError:
                pass

        latencies = []
        for i in ready:
            for k, at in sent.items():
                if k in applied[i]:
                    latencies.append(applied[i][k] - at)
        nodes_complete = sum(all(k in applied[i] for k in sent) for i in ready)

        log("stopping the agents")
        self.stop_agents()
        time.sleep(1)
        after_peers = self.peer_requests("every agent stopped (250-node registry, nothing connected)"
                                         if args.nodes == 250 else
                                         f"every agent stopped ({args.nodes}-node registry, nothing connected)",
                                         api_context, nginx_context, token)
        watch.stop()
        connections.stop()
        cpu_final, rss_final, threads_final = watch.sample()

        # ---- report ----
        out = []
        out.append(f"== Scale benchmark: {args.nodes} node agents (shoald processes, one network namespace "
                   f"and source address each) against one manager (SQLite) ==")
        seen = ("GET /v1/nodes unanswered for {:.0f} s".format(args.online_timeout) if online is None
                else f"{online} online")
        out.append(f"agents enrolled (logged 'shoald ready'): {len(ready)} of {args.nodes} in {enrol_seconds:.1f} s; "
                   f"the manager saw {seen}")
        if exited:
            out.append(f"agents that exited before the end of the load: {len(exited)}; last lines: "
                       + "; ".join(f"{n}x {reason!r}"
                                   for reason, n in sorted(exit_reasons.items(), key=lambda x: -x[1])))
        p50 = percentile(latencies, 50) if latencies else None
        p99 = percentile(latencies, 99) if latencies else None
        missing = expected - len(latencies)
        out.append(f"commands: {len(sent)} of {args.commands} accepted in {enqueued_seconds:.1f} s "
                   f"({args.interval * 1000:.0f} ms apart, {args.keys} ordering keys, target all) -> "
                   f"{expected} deliveries to the ready agents")
        slowest = max(latencies) if latencies else None
        out.append(f"enqueue-to-applied, all agents: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(slowest)} "
                   f"({len(latencies)} of {expected} applied within {args.apply_timeout:.0f} s of the last enqueue"
                   + (f"; {missing} NOT applied" if missing else "")
                   + (f"; {nodes_complete} agents applied all" if sent else "") + "; "
                   f"waited {applied_seconds:.1f} s from the first enqueue)")
        if missing and expected:
            # With a 99th percentile over every delivery, missing ones are slower than any.
            out.append(f"enqueue-to-applied p99 counting the {missing} unapplied as infinitely late: "
                       f"{ms(percentile(latencies + [float('inf')] * missing, 99))}")
        out.append(enqueue.line())
        for s in samplers:
            out.append(s.series.line())
        for s in idle_peers + after_peers:
            out.append("peer: " + s.line())
        out.append(f"manager CPU (user+system): {cpu_after_load - cpu_before_agents:.2f} s from the first agent's "
                   f"start to the end of the load ({time.time() - agents_started_at:.0f} s wall), of which "
                   f"{cpu_after_load - cpu_before_load:.2f} s during the load ({load_seconds:.1f} s wall); "
                   f"{cpu_before_agents - cpu_at_start:.2f} s for the idle peers and join tokens; "
                   f"{cpu_after_quiet - cpu_after_load:.2f} s in {args.quiet_seconds:.0f} s after the load with only "
                   f"the agents' long-polls")
        out.append(f"manager RSS: peak {watch.peak_rss / 2**20:.1f} MiB, "
                   f"at the end of the load {rss_end / 2**20:.1f} MiB, "
                   f"after the agents stopped {rss_final / 2**20:.1f} MiB")
        out.append(f"manager threads: peak {watch.peak_threads}, at the end of the load {threads_end}, "
                   f"after the agents stopped {threads_final}")
        out.append(f"manager TCP connections on the API port: peak {states(connections.peak)}; "
                   f"at the end of the load {states(connections_end)}")
        if listen_before and listen_after:
            out.append("manager namespace, connections the kernel dropped from a full accept queue during the run: "
                       + ", ".join(f"{k} {listen_after[k] - listen_before[k]}" for k in listen_after))
        busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
        out.append(f"machine during the load ({os.cpu_count()} CPUs, every process on it, this run's and others'): "
                   f"CPU {busy * 100:.0f}% busy, load average {load_average_before:.1f} at the start, "
                   f"{load_average_after:.1f} at the end")
        if agent_rss:
            out.append(f"agents: {len(agent_pids)} processes, RSS {sum(agent_rss) / 2**20:.0f} MiB summed "
                       f"({max(agent_rss) / 2**20:.1f} MiB the largest), PSS {agent_pss / 2**20:.0f} MiB summed "
                       f"(shared pages split), {max(agent_threads)} threads each at most; "
                       f"{agents_cpu_after - agents_cpu_before:.2f} s CPU summed during the load")
        print("\n" + "\n".join(out), flush=True)
        shortfalls = []
        if len(ready) < args.nodes:
            shortfalls.append(f"{args.nodes - len(ready)} agents not ready")
        if len(sent) < args.commands:
            shortfalls.append(f"{args.commands - len(sent)} enqueues not accepted")
        if missing:
            shortfalls.append(f"{missing} deliveries not applied")
        if shortfalls and args.require_all:
            log("FAIL (--require-all): " + ", ".join(shortfalls))
            return False
        return True

    def close(self):
        self.stop_agents()
        if self.manager is not None and self.manager.poll() is None:
            self.manager.send_signal(signal.SIGTERM)
            try:
                self.manager.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.manager.kill()
                self.manager.wait()
        if self.work is not None:
            self.stop_nginx()
        self.fleet.close()
        for f in self.logs:
            f.close()
        if self.work is None:
            return
        if self.args.keep:
            os.unlink(os.path.join(self.work, RUNNING_MARK))
            print("kept", self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def interrupted(signum, frame):
    """SIGTERM (a ctest timeout, a kill) unwinds like Ctrl-C, so that close() cleans up."""
    raise KeyboardInterrupt()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shoald", required=True)
    p.add_argument("--plugin-dir", required=True, help="a folder holding the recorder plugin")
    p.add_argument("--nodes", type=int, default=250, help="node agents (default 250)")
    p.add_argument("--commands", type=int, default=40, help="commands enqueued, each to every node (default 40)")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between enqueues (default 0.25)")
    p.add_argument("--keys", type=int, default=8, help="ordering keys the commands spread over (default 8)")
    p.add_argument("--wave", type=int, default=25, help="agents started together (default 25)")
    p.add_argument("--wave-timeout", type=float, default=20, help="seconds a wave of agents is given to enrol")
    p.add_argument("--enrol-timeout", type=float, default=180, help="seconds for starting every agent")
    p.add_argument("--online-timeout", type=float, default=30,
                   help="seconds to wait for the manager to see them online")
    p.add_argument("--enqueue-timeout", type=float, default=60,
                   help="seconds beyond commands x interval after which no more commands are sent")
    p.add_argument("--apply-timeout", type=float, default=90,
                   help="seconds after the last enqueue to wait for applications")
    p.add_argument("--min-load-seconds", type=float, default=20, help="admin requests are sampled at least this long")
    p.add_argument("--quiet-seconds", type=float, default=10,
                   help="seconds of nothing but long-polls after the load, for the manager's CPU")
    p.add_argument("--request-timeout", type=float, default=10, help="seconds before a request counts as timed out")
    p.add_argument("--peer-requests", type=int, default=200, help="requests per peer series (default 200)")
    p.add_argument("--require-all", action="store_true",
                   help="exit 1 unless every agent enrolled and applied every command (for ctest)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, stores)")
    args = p.parse_args(argv)
    if not 1 <= args.nodes <= 2000:
        p.error(f"--nodes {args.nodes}: must be between 1 and 2000")
    for name in ("commands", "keys", "wave", "peer_requests"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not os.access(args.shoald, os.X_OK):
        p.error(f"--shoald {args.shoald}: not an executable file")
    if not os.path.isdir(args.plugin_dir):
        p.error(f"--plugin-dir {args.plugin_dir}: not a folder")
    if shutil.which("nginx") is None:
        p.error("nginx is not installed (it is the peer)")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces)")
    return args


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    bench = ScaleBench(args)
    failed = True
    try:
        failed = not bench.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:  # noqa: BLE001 - a benchmark reports what stopped it, then cleans up
        log(f"benchmark failed: {type(e).__name__}: {e}")
        print(bench.log_text("m")[-3000:])
    finally:
        bench.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
