#!/usr/bin/env python3
"""The Command Queue end to end: a manager and three nodes as separate shoald processes, each
in its own network namespace, over real TLS, enrolled with join tokens. 1,000 commands over
several ordering keys while one node is killed with SIGKILL and restarted, the manager is
restarted, and one node's link is cut for a while and restored. Afterwards every node has
applied every command exactly once, in order per key.

usage: queue_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR STORE   (STORE: sqlite | mysql://...)
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import Network  # noqa: E402

SHOALD, SHOALCTL, PLUGIN_DIR, STORE = sys.argv[1:5]
COMMANDS = int(os.environ.get("SHOAL_E2E_COMMANDS", "1000"))
KEYS = [f"site{i}" for i in range(8)]
NODES = ["n1", "n2", "n3"]
work = tempfile.mkdtemp(prefix="shoal-e2e-")
net = None
processes = {}
failures = []


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fail(message):
    log("FAIL: " + message)
    raise SystemExit(1)


def write_config(name, role, address, extra="", plugin_extra=""):
    data = os.path.join(work, name)
    os.makedirs(data, exist_ok=True)
    store = STORE if role == "manager" else "sqlite"
    path = os.path.join(work, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"[shoald]\nrole = {role}\ndata_dir = {data}\nplugin_dir = {PLUGIN_DIR}\nstore = {store}\n"
                f"log_level = information\nadvertise_address = {address}\napi_port = 7443\n{extra}"
                f"[plugin.recorder]\nfile = {data}/applied\n{plugin_extra}")
    return path, data


def start(name, args):
    logfile = open(os.path.join(work, f"{name}.log"), "a")
    logfile.write(f"---- start {' '.join(args)}\n")
    logfile.flush()
    proc = subprocess.Popen(net.exec_prefix(name) + [SHOALD] + args, stdout=logfile, stderr=logfile)
    processes[name] = proc
    return proc


def wait_log(name, text, timeout=30, after=0):
    deadline = time.time() + timeout
    path = os.path.join(work, f"{name}.log")
    while time.time() < deadline:
        with open(path) as f:
            content = f.read()
        if text in content[after:]:
            return
        if processes[name].poll() is not None:
            fail(f"{name} exited ({processes[name].returncode}):\n{content[-3000:]}")
        time.sleep(0.05)
    fail(f"{name} did not log {text!r} in {timeout}s")


def log_size(name):
    return os.path.getsize(os.path.join(work, f"{name}.log"))


class Api:
    """The admin API from inside the manager's namespace (this process entered it)."""

    def __init__(self, data):
        self.token = open(os.path.join(data, "admin.token")).read().strip()
        self.context = ssl.create_default_context(cafile=os.path.join(data, "tls", "ca.crt"))
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", 7443, context=self.context, timeout=30)
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
                response = self.conn.getresponse()
                return response.status, json.loads(response.read())
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 1:
                    raise


def shoalctl(*args):
    env = dict(os.environ, SHOAL_MANAGER="127.0.0.1:7443", SHOAL_CA=os.path.join(work, "m", "tls", "ca.crt"),
               SHOAL_TOKEN_FILE=os.path.join(work, "m", "admin.token"))
    return subprocess.run(net.exec_prefix("m") + [SHOALCTL] + list(args), capture_output=True, text=True, env=env,
                          timeout=60)


def empty_mysql_database():
    """The e2e run starts from an empty database, whatever earlier tests left in it."""
    from urllib.parse import urlparse, parse_qs
    url = urlparse(STORE)
    socket = parse_qs(url.query)["socket"][0]
    cli = ["mariadb", f"--socket={socket}", f"--user={url.username}", f"--password={url.password}",
           url.path.lstrip("/"), "--batch", "--skip-column-names"]
    tables = subprocess.run(cli + ["-e", "SHOW TABLES"], check=True, capture_output=True, text=True).stdout.split()
    if tables:
        subprocess.run(cli + ["-e", "SET FOREIGN_KEY_CHECKS=0; DROP TABLE " + ", ".join(f"`{t}`" for t in tables)],
                       check=True)


def main():
    global net
    if STORE.startswith("mysql://"):
        empty_mysql_database()
    net = Network("shq")
    net.add_host("m", 1)
    for i, name in enumerate(NODES):
        net.add_host(name, 11 + i)

    manager_conf, manager_data = write_config("m", "manager", "10.77.0.1", "queue_lease_seconds = 5\n")
    start("m", ["--config", manager_conf])
    wait_log("m", "shoald ready")
    net.enter("m")
    api = Api(manager_data)

    node_confs = {}
    for name in NODES:
        ctl = shoalctl("node", "join-token", "--ttl", "600")
        if ctl.returncode != 0:
            fail(f"join-token: {ctl.stderr}")
        token = ctl.stdout.strip()
        conf, _ = write_config(name, "node", net.hosts[name]["address"],
                               plugin_extra="flaky = fail\n" if name == "n2" else "")
        node_confs[name] = conf
        start(name, ["--config", conf, "--join", token])
        wait_log(name, "shoald ready")
    deadline = time.time() + 30
    while time.time() < deadline:
        status, body = api.call("GET", "/v1/nodes")
        if status == 200 and sum(n["state"] == "online" for n in body["nodes"]) == 3:
            break
        time.sleep(0.2)
    else:
        fail(f"nodes not online: {body}")
    log("manager and three nodes up and enrolled")

    expected = []  # (key, seq) in enqueue order
    seq = {key: 0 for key in KEYS}

    def enqueue(n):
        for _ in range(n):
            key = KEYS[len(expected) % len(KEYS)]
            seq[key] += 1
            payload = json.dumps({"key": key, "seq": seq[key]})
            status, body = api.call("POST", "/v1/commands", {"kind": "recorder.apply", "payload": payload,
                                                             "ordering_key": key, "target": "all"})
            if status != 201:
                fail(f"enqueue refused: {status} {body}")
            expected.append((key, seq[key]))

    started = time.time()
    enqueue(COMMANDS // 5)
    log("SIGKILL n1")
    processes["n1"].send_signal(signal.SIGKILL)
    processes["n1"].wait()
    enqueue(COMMANDS // 10)
    mark = log_size("n1")
    start("n1", ["--config", node_confs["n1"]])
    wait_log("n1", "shoald ready", after=mark)
    enqueue(COMMANDS // 10)

    log("restarting the manager")
    processes["m"].send_signal(signal.SIGTERM)
    if processes["m"].wait(timeout=60) != 0:
        fail("manager did not stop cleanly")
    mark = log_size("m")
    start("m", ["--config", manager_conf])
    wait_log("m", "shoald ready", after=mark)
    enqueue(COMMANDS // 5)

    log("cutting n2's link for 20 s")
    net.cut("n2")
    enqueue(COMMANDS // 5)
    saw_offline = False
    cut_until = time.time() + 20
    while time.time() < cut_until:
        status, body = api.call("GET", "/v1/nodes")
        saw_offline |= any(n["address"] == net.hosts["n2"]["address"] and n["state"] == "offline" for n in body["nodes"])
        time.sleep(0.5)
    net.restore("n2")
    log(f"n2 restored (seen offline during the cut: {saw_offline})")
    enqueue(COMMANDS - len(expected))
    log(f"{len(expected)} commands enqueued in {time.time() - started:.1f}s")

    deadline = time.time() + 240
    while time.time() < deadline:
        status, body = api.call("GET", "/v1/cluster")
        q = body["queue"]
        if q["pending"] == 0 and q["running"] == 0:
            break
        time.sleep(0.5)
    else:
        fail(f"queue did not drain: {body}")
    log(f"queue drained {time.time() - started:.1f}s after the first command: {body['queue']}")
    if body["queue"]["failed"] != 0:
        fail(f"failed deliveries: {body['queue']}")
    if not saw_offline:
        fail("n2 was never shown offline while its link was cut")

    for name in NODES:
        lines = [tuple(l.split()) for l in open(os.path.join(work, name, "applied")).read().splitlines()]
        applied = [(k, int(s)) for k, s in lines]
        if len(applied) != len(set(applied)):
            fail(f"{name} applied a command twice")
        if sorted(applied) != sorted(expected):
            missing = set(expected) - set(applied)
            fail(f"{name} applied {len(applied)} of {len(expected)} commands; missing e.g. {sorted(missing)[:5]}")
        last = {}
        for key, s in applied:
            if last.get(key, 0) >= s:
                fail(f"{name} applied {key} {s} after {key} {last[key]}")
            last[key] = s
        calls = len(open(os.path.join(work, name, "applied.calls")).read().splitlines())
        log(f"{name}: {len(applied)} applied exactly once, in order per key; handler calls {calls} "
            f"({calls - len(applied)} re-applications answered idempotently)")

    status, body = api.call("GET", "/v1/nodes")
    if sorted(n["state"] for n in body["nodes"]) != ["online"] * 3:
        fail(f"not every node online at the end: {body}")

    # Rolling restart, two nodes at a time: every node restarts once.
    ctl = shoalctl("service", "restart", "recorder", "--all", "--batch", "2")
    if ctl.returncode != 0:
        fail(f"rolling restart failed: {ctl.returncode} {ctl.stdout} {ctl.stderr}")
    for name in NODES:
        restarts = open(os.path.join(work, name, "applied.restarts")).read().splitlines()
        if restarts != ['{"service":"recorder"}']:
            fail(f"{name} restarts: {restarts}")
    log("rolling restart of recorder: every node restarted once")

    # A rollout stops at the first failure and leaves the rest pending, visibly.
    ctl = shoalctl("--json", "service", "restart", "flaky", "--all")
    rollout = json.loads(ctl.stdout.strip().splitlines()[-1])
    by_node = [n["state"] for n in sorted(rollout["nodes"], key=lambda n: n["id"])]
    # Nodes enrolled in order n1, n2, n3; flaky fails on n2.
    if ctl.returncode != 1 or rollout["state"] != "failed" or by_node != ["done", "failed", "pending"]:
        fail(f"a failing rollout did not stop with the rest pending: {ctl.returncode} {rollout}")
    if "flaky refuses to restart" not in rollout["message"]:
        fail(f"the rollout's message does not say why: {rollout['message']}")
    log(f"failing rollout stopped: {rollout['message']}")
    log("ok")


ok = False
try:
    main()
    ok = True
finally:
    for name, proc in processes.items():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if not ok:
        for name in processes:
            path = os.path.join(work, f"{name}.log")
            if os.path.exists(path):
                print(f"---- last lines of {name}.log")
                print("".join(open(path).readlines()[-25:]))
    if net:
        net.close()
    if os.environ.get("SHOAL_E2E_KEEP"):
        print("kept", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
