"""A shoal cluster for tests and benchmarks: a manager and nodes as separate shoald processes,
each in its own network namespace (netns.Network), enrolled with join tokens over real TLS.

The calling process enters the manager's namespace (so the admin API is on 127.0.0.1), which
is why a harness is one per process. Needs root.
"""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

from netns import Network


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class HarnessError(Exception):
    pass


class Failure(Exception):
    """A check of a test failed: the product did not do what it promises."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def run_test(test, expected=()):
    """Runs test.run(), then test.close(failed), logging a failure (and a failed program's
    output); exceptions of the types in `expected` count as failures too. Returns the
    process's exit status: 0 passed, 1 failed."""
    failed = True
    try:
        test.run()
        failed = False
    except (Failure, HarnessError, subprocess.CalledProcessError, *expected) as e:
        log(f"FAIL: {e}")
        if isinstance(e, subprocess.CalledProcessError):
            log(f"stdout: {e.stdout}\nstderr: {e.stderr}")
    finally:
        test.close(failed)
    return 1 if failed else 0


def keep_failed_run(failed):
    """True when a failed run's folders and namespaces are to be kept for a look:
    SHOAL_E2E_KEEP=1 in the environment."""
    return failed and os.environ.get("SHOAL_E2E_KEEP") == "1"


class ClusterTest:
    """A test that is one function of a Cluster, for run_test: `body(cluster)` is the test;
    the cluster is closed afterwards, kept when it failed and keep_failed_run says so."""

    def __init__(self, cluster, body):
        self.cluster, self.body = cluster, body

    def run(self):
        self.body(self.cluster)
        log("ok")

    def close(self, failed):
        self.cluster.close(failed=failed, keep=keep_failed_run(failed))


class Api:
    """The admin API over HTTPS with one kept-alive connection."""

    def __init__(self, data_dir, host="127.0.0.1", port=7443):
        self.token = open(os.path.join(data_dir, "admin.token")).read().strip()
        self.context = ssl.create_default_context(cafile=os.path.join(data_dir, "tls", "ca.crt"))
        self.host, self.port = host, port
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers={"Authorization": f"Bearer {self.token}",
                                           "Content-Type": "application/json", **(headers or {})})
                response = self.conn.getresponse()
                return response.status, json.loads(response.read())
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 1:
                    raise


class Cluster:
    def __init__(self, shoald, shoalctl, plugin_dir, store, nodes=("n1", "n2", "n3"), prefix="shq",
                 manager_extra="", node_plugin_extra=None, manager_plugin_extra="", subnet="10.77.0"):
        # `subnet`: the first three octets of every host's address; the manager is .1, the
        # nodes .11 on. A test on its own subnet can run beside the others (own RESOURCE_LOCK).
        self.shoald, self.shoalctl_path, self.plugin_dir, self.store = shoald, shoalctl, plugin_dir, store
        self.nodes = list(nodes)
        self.work = tempfile.mkdtemp(prefix="shoal-cluster-")
        self.processes = {}
        self.node_confs = {}
        self.manager_extra = manager_extra
        self.manager_plugin_extra = manager_plugin_extra
        self.node_plugin_extra = node_plugin_extra or {}
        self.subnet = subnet
        self.net = Network(prefix, subnet)
        self.net.add_host("m", 1)
        for i, name in enumerate(self.nodes):
            self.net.add_host(name, 11 + i)
        self.manager_conf = None
        self.api = None

    # ---- processes ----
    def write_config(self, name, role, address, extra="", plugin_extra=""):
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        store = self.store if role == "manager" else "sqlite"
        path = os.path.join(self.work, f"{name}.conf")
        with open(path, "w") as f:
            f.write(f"[shoald]\nrole = {role}\ndata_dir = {data}\nplugin_dir = {self.plugin_dir}\n"
                    f"store = {store}\nlog_level = information\nadvertise_address = {address}\n"
                    f"api_port = 7443\n{extra}[plugin.recorder]\nfile = {data}/applied\n{plugin_extra}")
        return path

    def start(self, name, args):
        logfile = open(self.log_path(name), "a")
        logfile.write(f"---- start {' '.join(args)}\n")
        logfile.flush()
        proc = subprocess.Popen(self.net.exec_prefix(name) + [self.shoald] + args, stdout=logfile, stderr=logfile)
        self.processes[name] = proc
        return proc

    def log_path(self, name):
        return os.path.join(self.work, f"{name}.log")

    def log_size(self, name):
        return os.path.getsize(self.log_path(name))

    def wait_log(self, name, text, timeout=30, after=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path(name)) as f:
                content = f.read()
            if text in content[after:]:
                return
            if self.processes[name].poll() is not None:
                raise HarnessError(f"{name} exited ({self.processes[name].returncode}):\n{content[-3000:]}")
            time.sleep(0.05)
        raise HarnessError(f"{name} did not log {text!r} in {timeout}s")

    def start_manager(self):
        if self.manager_conf is None:
            self.manager_conf = self.write_config("m", "manager", f"{self.subnet}.1", self.manager_extra,
                                                  self.manager_plugin_extra)
        mark = self.log_size("m") if os.path.exists(self.log_path("m")) else 0
        self.start("m", ["--config", self.manager_conf])
        self.wait_log("m", "shoald ready", after=mark)

    def stop(self, name, sig=signal.SIGTERM):
        proc = self.processes[name]
        proc.send_signal(sig)
        return proc.wait(timeout=60)

    def restart_node(self, name):
        mark = self.log_size(name)
        self.start(name, ["--config", self.node_confs[name]])
        self.wait_log(name, "shoald ready", after=mark)

    def up(self):
        """Starts the manager, enrols every node and waits until all are online."""
        self.start_manager()
        self.net.enter("m")
        self.api = Api(os.path.join(self.work, "m"))
        for name in self.nodes:
            ctl = self.shoalctl("node", "join-token", "--ttl", "600")
            if ctl.returncode != 0:
                raise HarnessError(f"join-token: {ctl.stderr}")
            conf = self.write_config(name, "node", self.net.hosts[name]["address"],
                                     plugin_extra=self.node_plugin_extra.get(name, ""))
            self.node_confs[name] = conf
            self.start(name, ["--config", conf, "--join", ctl.stdout.strip()])
            self.wait_log(name, "shoald ready")
        deadline = time.time() + 30
        while time.time() < deadline:
            status, body = self.api.call("GET", "/v1/nodes")
            if status == 200 and sum(n["state"] == "online" for n in body["nodes"]) >= len(self.nodes):
                return
            time.sleep(0.2)
        raise HarnessError(f"nodes not online: {body}")

    def shoalctl(self, *args):
        env = dict(os.environ, SHOAL_MANAGER="127.0.0.1:7443",
                   SHOAL_CA=os.path.join(self.work, "m", "tls", "ca.crt"),
                   SHOAL_TOKEN_FILE=os.path.join(self.work, "m", "admin.token"))
        env.pop("SHOAL_TOKEN", None)
        return subprocess.run(self.net.exec_prefix("m") + [self.shoalctl_path] + list(args), capture_output=True,
                              text=True, env=env, timeout=120)

    def wait_drained(self, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = self.api.call("GET", "/v1/cluster")
            if body["queue"]["pending"] == 0 and body["queue"]["running"] == 0:
                return body["queue"]
            time.sleep(0.2)
        raise HarnessError(f"queue did not drain: {body}")

    def node_file(self, name, suffix=""):
        return os.path.join(self.work, name, "applied" + suffix)

    def close(self, failed=False, keep=False):
        for name, proc in self.processes.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if failed:
            for name in self.processes:
                if os.path.exists(self.log_path(name)):
                    print(f"---- last lines of {name}.log")
                    print("".join(open(self.log_path(name)).readlines()[-25:]))
        self.net.close()
        if keep:
            print("kept", self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def empty_mysql_database(url_text):
    """Drops every table of the database a mysql://...?socket= URL names."""
    from urllib.parse import urlparse, parse_qs
    url = urlparse(url_text)
    socket = parse_qs(url.query)["socket"][0]
    cli = ["mariadb", f"--socket={socket}", f"--user={url.username}", f"--password={url.password}",
           url.path.lstrip("/"), "--batch", "--skip-column-names"]
    tables = subprocess.run(cli + ["-e", "SHOW TABLES"], check=True, capture_output=True, text=True).stdout.split()
    if tables:
        subprocess.run(cli + ["-e", "SET FOREIGN_KEY_CHECKS=0; DROP TABLE " + ", ".join(f"`{t}`" for t in tables)],
                       check=True)
