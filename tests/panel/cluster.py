#!/usr/bin/env python3
"""A small real cluster on loopback for the panel's tests: a manager (AppServer0, the
balancer's director on the userspace dataplane, embedded SQLite) and two nodes with role
`http`, each a shoald of its own, each node with a web server that the http plugin probes.
Statistics are sampled every second into RRD files with a 2 s step, so graphs have data soon.

Used as a library (tests/panel/panel_api_test.py) or as a program (the browser test):
  cluster.py SHOALD SHOALCTL PLUGIN_DIR WEB_DIR STATE_FILE
starts the cluster, writes STATE_FILE (JSON: url, ca, admin_password, token_file, ...) and
runs until SIGTERM or SIGINT, then stops everything.
"""
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class WebServer:
    """A web server on ADDRESS:PORT answering 'served by NAME' (what the http plugin probes)."""

    def __init__(self, address, port, name, root):
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(f"served by {name}\n")
        handler = lambda *a, **k: _Quiet(*a, directory=root, **k)  # noqa: E731
        socketserver.TCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((address, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    def __init__(self, shoald, shoalctl, plugin_dir, web_dir, nodes=2, extra_manager_config=""):
        self.shoald, self.shoalctl = shoald, shoalctl
        self.work = tempfile.mkdtemp(prefix="shoal-panel-")
        self.api_port = free_port()
        self.metrics_port = free_port()
        self.vip_port = free_port()
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.processes = []
        self.node_addresses = [f"127.0.0.{i + 2}" for i in range(nodes)]
        self.web_servers, self.web_port = self._bind_web_servers()
        self.data = os.path.join(self.work, "manager")
        common = (f"plugin_dir = {plugin_dir}\nstore = sqlite\nlog_level = information\n")
        http_plugin = (f"[plugin.http]\nport = {self.web_port}\ninterval_ms = 500\ntimeout_ms = 400\nrise = 2\n"
                       f"fall = 2\nrestart_command = /bin/true\n")
        self._write("manager.conf",
                    f"[shoald]\nrole = manager\ndata_dir = {self.data}\n{common}"
                    f"api_listen = 127.0.0.1\napi_port = {self.api_port}\nadvertise_address = 127.0.0.1\n"
                    f"app_server = true\nweb_dir = {web_dir}\nmetrics_listen = 127.0.0.1:{self.metrics_port}\n"
                    f"stats_step_seconds = 2\nstorage_root = {self.work}/storage\n{extra_manager_config}\n"
                    f"[plugin.lvs]\ndataplane = userspace\nstats_interval_ms = 1000\nreconcile_interval_ms = 1000\n"
                    f"{http_plugin}[plugin.hello]\ngreeting = Hello\n")
        for i, address in enumerate(self.node_addresses):
            # The panel's test is about the panel: the websites an account gets are rendered
            # into the node's own directories and "checked" and "reloaded" by /bin/true, never
            # by the machine's nginx (tests/e2e/hosting_e2e_test.py runs real ones).
            sites = f"{self.work}/node{i + 1}/sites"
            site_settings = "".join(f"{key} = {sites}/{key}\n" for key in
                                    ("sites_dir", "pools_dir", "cert_dir", "log_dir", "php_run_dir",
                                     "acme_challenge_root", "static_dir"))
            for key in ("sites_dir", "pools_dir", "cert_dir", "log_dir", "php_run_dir", "acme_challenge_root",
                        "static_dir"):
                os.makedirs(f"{sites}/{key}", exist_ok=True)
            site_settings += "".join(f"{key} = /bin/true\n" for key in
                                     ("nginx_command", "nginx_reload_command", "php_fpm_command",
                                      "php_fpm_reload_command"))
            self._write(f"node{i + 1}.conf",
                        f"[shoald]\nrole = node\ndata_dir = {self.work}/node{i + 1}\n{common}"
                        f"advertise_address = {address}\n{http_plugin}{site_settings}[plugin.hello]\ngreeting = Hello\n")
        self.env = dict(os.environ, SHOAL_MANAGER=f"127.0.0.1:{self.api_port}", SHOAL_CA=f"{self.data}/tls/ca.crt",
                        SHOAL_TOKEN_FILE=f"{self.data}/admin.token")
        self.env.pop("SHOAL_TOKEN", None)

    def _bind_web_servers(self, attempts=50):
        """One web server per node address, all on one port. A port free on 127.0.0.1 may be taken
        on another loopback address by a test running beside this one, so the port is the first one
        that every address could bind, and the servers hold it from here on."""
        for _ in range(attempts):
            port = free_port()
            servers = []
            try:
                for i, address in enumerate(self.node_addresses):
                    servers.append(WebServer(address, port, f"node{i + 1}", f"{self.work}/www{i + 1}"))
                return servers, port
            except OSError:
                for server in servers:
                    server.stop()
        raise RuntimeError(f"no port free on every one of {self.node_addresses} after {attempts} tries")

    def _write(self, name, text):
        with open(os.path.join(self.work, name), "w") as f:
            f.write(text)

    def _start(self, name, *extra):
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        return subprocess.Popen([self.shoald, "--config", os.path.join(self.work, f"{name}.conf")] + list(extra),
                                stdout=log, stderr=subprocess.STDOUT)

    def log(self, name):
        with open(os.path.join(self.work, f"{name}.log")) as f:
            return f.read()

    def ctl(self, *args, stdin=None):
        return subprocess.run([self.shoalctl, *args], capture_output=True, text=True, timeout=60, env=self.env,
                              input=stdin)

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        if r.returncode != 0:
            raise RuntimeError(f"shoalctl {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def wait(self, what, predicate, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except Exception:  # noqa: BLE001 - retried until the deadline
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def start(self):
        self.processes.append(self._start("manager"))
        self.wait("the manager", lambda: "shoald ready" in self.log("manager"))
        self.admin_password = open(os.path.join(self.data, "initial-admin-password")).read().strip()
        for i in range(len(self.node_addresses)):
            token = self.ctl("node", "join-token", "--ttl", "600").stdout.strip()
            self.processes.append(self._start(f"node{i + 1}", "--join", token))
        self.wait("every node online", lambda: len([n for n in self.ctl_json("node", "list")["nodes"]
                                                    if n["state"] == "online"]) == len(self.node_addresses) + 1)
        for n in self.ctl_json("node", "list")["nodes"]:
            roles = "director" if n["address"] == "127.0.0.1" else "http"
            r = self.ctl("node", "set-roles", str(n["id"]), roles)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
        self.wait("http healthy on every node", lambda: len([h for h in self.ctl_json("health")["services"]
                                                             if h["service"] == "http" and h["state"] == "healthy"])
                  == len(self.node_addresses))
        return self

    def restart_manager(self):
        """Stops the manager (SIGTERM) and starts it again on the same data directory."""
        manager = self.processes[0]
        manager.send_signal(signal.SIGTERM)
        manager.wait(timeout=30)
        self.processes[0] = self._start("manager")
        self.wait("the manager again", lambda: "shoald ready" in self.log("manager"))

    def stop(self):
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for w in self.web_servers:
            w.stop()

    def state(self):
        return {"url": self.url, "ca": f"{self.data}/tls/ca.crt", "admin_password": self.admin_password,
                "token_file": f"{self.data}/admin.token", "metrics_url": f"http://127.0.0.1:{self.metrics_port}/metrics",
                "web_port": self.web_port, "vip_port": self.vip_port, "node_addresses": self.node_addresses,
                "work": self.work}


def main():
    shoald, shoalctl, plugin_dir, web_dir, state_file = sys.argv[1:6]
    cluster = Cluster(shoald, shoalctl, plugin_dir, web_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cluster.start()
        with open(state_file + ".tmp", "w") as f:
            json.dump(cluster.state(), f)
        os.replace(state_file + ".tmp", state_file)
        print(f"cluster ready: {cluster.url}", flush=True)
        stop.wait()
    finally:
        cluster.stop()
        if os.environ.get("SHOAL_KEEP_WORK") != "1":
            shutil.rmtree(cluster.work, ignore_errors=True)


if __name__ == "__main__":
    main()
