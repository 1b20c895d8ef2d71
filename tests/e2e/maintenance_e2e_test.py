#!/usr/bin/env python3
"""Maintenance end to end: a manager (AppServer0, the director, on the userspace dataplane)
and three nodes, each in its own network namespace with one real nginx answering both HTTP
on port 80 and HTTPS on 443, and a client in a fifth.

  maintenance_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR

Proves:
  - a rolling restart of http drains every service the restarted nginx serves: each node's
    http AND https members are out of the balancer before its nginx is restarted, and both
    come back only after it; a client loop through the virtual IP sees no failed request;
  - `node drain ID --wait` takes every service of the node out of every policy, prints the
    node's open connections (held by the client through the virtual IP) falling to zero and
    ends with "node ID is empty"; `node undrain` restores exactly what was there: a weight
    set by the admin comes back as it was and a service in maintenance stays drained; the
    client loop sees 0 failed requests across drain and undrain.
Needs root, nginx, openssl and iproute2.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Cluster, Failure, check, log, keep_failed_run, run_test  # noqa: E402
import nginx_ctl  # noqa: E402

VIP = "10.77.0.100"
INTERVAL_MS, TIMEOUT_MS, FALL, RISE = 500, 300, 2, 2
TCPFIN_TIMEOUT_S = 3
NGINX_CTL = os.path.join(HERE, "nginx_ctl.py")
NODES = ("n1", "n2", "n3")


# ---- the client side, run inside the client's namespace -------------------------------------
def fetch(port=80, timeout=2.0):
    if port == 443:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(VIP, 443, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(VIP, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode().strip()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        return body
    finally:
        conn.close()


def client_loop(outfile):
    """Alternates HTTP and HTTPS requests every 20 ms until SIGTERM, one line per request:
    time, ok|err, port, who or why."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    port = 80
    with open(outfile, "w", buffering=1) as out:
        while not stop:
            t = time.time()
            try:
                out.write(f"{t:.3f} ok {port} {fetch(port)}\n")
            except (OSError, ssl.SSLError) as e:
                out.write(f"{t:.3f} err {port} {e}\n")
            port = 443 if port == 80 else 80
            time.sleep(0.02)


def client_hold(target, count, seconds):
    """Opens keep-alive HTTP connections through the virtual IP until `count` of them are
    answered by `target`, prints {"held": N} once they are, keeps them open `seconds`, then
    closes them all."""
    held, others = [], []
    for _ in range(60):
        if len(held) >= count:
            break
        conn = http.client.HTTPConnection(VIP, 80, timeout=5)
        conn.request("GET", "/")  # HTTP/1.1: the connection stays open after the answer
        who = conn.getresponse().read().decode().strip()
        (held if who == target else others).append(conn)
    for s in others:
        s.close()
    print(json.dumps({"held": len(held)}), flush=True)
    time.sleep(seconds)
    for s in held:
        s.close()


# ---- the test -----------------------------------------------------------------------------------
class MaintenanceTest:
    def __init__(self, shoald, shoalctl, plugin_dir):
        import tempfile
        self.nginx_root = tempfile.mkdtemp(prefix="shoal-maint-nginx-")
        probe = f"interval_ms = {INTERVAL_MS}\ntimeout_ms = {TIMEOUT_MS}\nfall = {FALL}\nrise = {RISE}\n"
        self.cluster = Cluster(
            shoald, shoalctl, plugin_dir, "sqlite", prefix="shm",
            manager_extra="app_server = true\n",
            # A closed connection stays counted as inactive for tcpfin_timeout, as IPVS keeps its
            # entry (120 s by default); `--wait` counts it, so a short one keeps the test short.
            manager_plugin_extra=f"[plugin.http]\n{probe}[plugin.lvs]\ndataplane = userspace\n"
                                 f"tcpfin_timeout = {TCPFIN_TIMEOUT_S}\n",
            node_plugin_extra={n: f"[plugin.http]\nrestart_command = {sys.executable} {NGINX_CTL} restart "
                                  f"{os.path.join(self.nginx_root, n)}\n" for n in NODES})
        self.nginx = {}
        self.work = self.cluster.work

    def in_ns(self, host, *argv, check_=True, timeout=60):
        return subprocess.run(self.cluster.net.exec_prefix(host) + list(argv), capture_output=True, text=True,
                              check=check_, timeout=timeout)

    def ctl(self, *args):
        result = self.cluster.shoalctl(*args)
        if result.returncode != 0:
            raise Failure(f"shoalctl {' '.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}")
        return result.stdout

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args))

    def members(self):
        """(port, node name) -> member, over both virtual services."""
        out = {}
        for service in self.ctl_json("lb", "list")["services"]:
            for m in service["members"]:
                out[(service["port"], self.by_address[m["address"]])] = m
        return out

    def weights(self):
        return {k: (m["weight"], m["effective_weight"]) for k, m in self.members().items()}

    def wait_for(self, what, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise Failure(f"timed out after {timeout}s waiting for {what}")

    def start_nginx(self, name, address):
        prefix = os.path.join(self.nginx_root, name)
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", f"/CN={name}.invalid", "-keyout", os.path.join(prefix, "key.pem"),
                        "-out", os.path.join(prefix, "cert.pem")], check=True, capture_output=True)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(nginx_ctl.config(prefix, address, name, tls=True))
        with open(os.path.join(prefix, "address"), "w") as f:
            f.write(address)
        self.nginx[name] = prefix
        self.in_ns(name, sys.executable, NGINX_CTL, "start", prefix)

    def start_loop(self, name):
        path = os.path.join(self.work, f"{name}.log")
        process = subprocess.Popen(self.cluster.net.exec_prefix("c") +
                                   [sys.executable, os.path.abspath(__file__), "--client-loop", path])
        return process, path

    @staticmethod
    def stop_loop(process):
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    @staticmethod
    def loop_lines(path):
        lines = []
        for raw in open(path).read().splitlines():
            parts = raw.split(" ", 3)
            if len(parts) == 4:
                lines.append((float(parts[0]), parts[1], int(parts[2]), parts[3]))
        return lines

    def run(self):
        c = self.cluster
        c.net.add_host("c", 50)
        c.up()
        subprocess.run(["ip", "netns", "exec", c.net.hosts["m"]["netns"], "ip", "addr", "add", f"{VIP}/32",
                        "dev", "eth0"], check=True)
        nodes = {n["address"]: n for n in c.api.call("GET", "/v1/nodes")[1]["nodes"]}
        self.ctl("node", "set-roles", str(nodes["10.77.0.1"]["id"]), "director")
        self.ids, self.by_address = {}, {}
        for name in NODES:
            address = c.net.hosts[name]["address"]
            self.ids[name] = str(nodes[address]["id"])
            self.by_address[address] = name
            self.start_nginx(name, address)
            self.ctl("node", "set-roles", self.ids[name], "http,https")

        log("waiting for http and https to be probed healthy on the three nodes")
        def all_healthy():
            services = self.ctl_json("health")["services"]
            return sum(s["state"] == "healthy" for s in services) == 6
        self.wait_for("six healthy services", all_healthy, 30)

        for port in (80, 443):
            self.ctl("lb", "add", "-t", f"{VIP}:{port}", "--service", "http" if port == 80 else "https",
                     "-s", "rr", "-p", "0")
            for name in NODES:
                self.ctl("lb", "add-server", "-t", f"{VIP}:{port}", "-r", f"{c.net.hosts[name]['address']}:{port}")
        self.wait_for("all six members in rotation",
                      lambda: len(self.members()) == 6 and all(m["effective_weight"] == 1
                                                               for m in self.members().values()), 30)
        for port in (80, 443):
            self.wait_for(f"the virtual IP to answer on {port}", lambda: self.in_ns(
                "c", sys.executable, "-c", f"import sys; sys.path.insert(0, {HERE!r}); "
                f"import maintenance_e2e_test as t; print(t.fetch({port}))", check_=False).returncode == 0, 30)

        self.rolling_restart()
        self.node_drain()
        log("PASS")

    # ---- a rolling restart drains http and https together --------------------------------------
    def rolling_restart(self):
        log("rolling restart of http: nginx also serves https, so both must be drained")
        pids_before = {n: open(os.path.join(p, "nginx.pid")).read().strip() for n, p in self.nginx.items()}
        stop = threading.Event()
        drained = {}      # (port, node) -> first time seen at effective weight 0
        restored = {}     # (port, node) -> first time seen back at weight 1 after its drain
        new_pid = {}      # node -> first time its new nginx master was seen

        def watch():
            while not stop.is_set():
                now = time.time()
                for name, prefix in self.nginx.items():
                    try:
                        pid = open(os.path.join(prefix, "nginx.pid")).read().strip()
                    except OSError:
                        pid = None
                    if pid and pid != pids_before[name]:
                        new_pid.setdefault(name, now)
                try:
                    for key, m in self.members().items():
                        if m["effective_weight"] == 0:
                            drained.setdefault(key, now)
                        elif key in drained:
                            restored.setdefault(key, now)
                except Exception:  # noqa: BLE001 — a failed sample is not a result
                    pass
                time.sleep(0.03)

        loop, loop_file = self.start_loop("rollout-loop")
        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.time()
        try:
            time.sleep(0.5)
            out = self.ctl("service", "restart", "http", "--all", "--max-unavailable", "1")
            time.sleep(0.5)
        finally:
            stop.set()
            watcher.join()
            ended = time.time()
            self.stop_loop(loop)
        log(f"rolling restart finished in {ended - started:.1f}s:\n{out}")
        rollout = self.ctl_json("service", "rollouts", "--limit", "1")["rollouts"][0]
        check(rollout["state"] == "done" and rollout["drain"], f"rollout did not finish drained: {rollout}")
        for n in rollout["nodes"]:
            check(n.get("services") == ["http", "https"], f"node {n['id']} did not restart both services: {n}")
        pids_after = {n: open(os.path.join(p, "nginx.pid")).read().strip() for n, p in self.nginx.items()}
        check(all(pids_before[n] != pids_after[n] for n in NODES), f"nginx not restarted: {pids_before} -> {pids_after}")
        for name in NODES:
            check(name in new_pid, f"{name}'s new nginx was never seen")
            for port in (80, 443):
                key = (port, name)
                check(key in drained, f"{name}'s port {port} member was never drained during its restart")
                check(drained[key] <= new_pid[name],
                      f"{name}'s port {port} member was drained at {drained[key]:.2f}, after its nginx "
                      f"restarted at {new_pid[name]:.2f}")
                check(key in restored and restored[key] >= new_pid[name],
                      f"{name}'s port {port} member was not restored after its restart")
        log("each node's http and https members were drained before its nginx restarted: " +
            ", ".join(f"{n} {new_pid[n] - max(drained[(80, n)], drained[(443, n)]):.2f}s" for n in NODES))
        check(all(m["effective_weight"] == 1 for m in self.members().values()),
              f"not every member is back in rotation: {self.weights()}")
        self.check_loop(loop_file, started, ended, "the rolling restart")

    def check_loop(self, path, started, ended, what):
        during = [l for l in self.loop_lines(path) if started <= l[0] <= ended]
        failed = [l for l in during if l[1] == "err"]
        log(f"client loop: {len(during)} requests during {what}, {len(failed)} failed")
        check(len(during) > 20, f"the client loop made too few requests during {what}: {len(during)}")
        check(not failed, f"requests failed during {what}: {failed[:5]}")
        return during

    # ---- node drain --wait, node undrain --------------------------------------------------------
    def node_drain(self):
        c = self.cluster
        n2 = self.ids["n2"]
        address = c.net.hosts["n2"]["address"]
        # What there was: an admin's weight on n2's http member, and n2's https in maintenance.
        self.ctl("lb", "edit-server", "-t", f"{VIP}:80", "-r", f"{address}:80", "-w", "3")
        self.ctl("health", "maintenance", n2, "https", "on")
        self.wait_for("n2's weight 3 and https drained",
                      lambda: self.weights()[(80, "n2")] == (3, 3) and self.weights()[(443, "n2")][1] == 0, 15)
        before = self.weights()
        log(f"weights before the drain: {before}")

        loop, loop_file = self.start_loop("drain-loop")
        holder = subprocess.Popen(c.net.exec_prefix("c") + [sys.executable, os.path.abspath(__file__), "--client-hold",
                                                           "n2", "2", "4"], stdout=subprocess.PIPE, text=True)
        try:
            held = json.loads(holder.stdout.readline())["held"]
            check(held == 2, f"the client could not hold two connections to n2: {held}")
            counted = self.ctl_json("node", "connections", n2)
            log(f"n2 before its drain: {counted}")
            check(counted["connections"] is not None and counted["connections"] >= 2,
                  f"GET /v1/nodes/{n2}/connections does not count the two held connections: {counted}")
            started = time.time()
            drain = c.shoalctl("node", "drain", n2, "--wait", "--timeout", "60")
            ended = time.time()
            log(f"node drain {n2} --wait exited {drain.returncode} after {ended - started:.1f}s:\n"
                f"{drain.stdout}{drain.stderr}")
            check(drain.returncode == 0, f"node drain --wait failed: {drain.stderr}")
            lines = drain.stdout.strip().splitlines()
            check(lines[-1] == f"node {n2} is empty", f"node drain --wait did not end empty: {lines}")
            counts = [int(l.split(": ", 1)[1].split(" ", 1)[0]) for l in lines
                      if l.startswith(f"node {n2}: ") and "connection(s) open" in l]
            check(counts and counts[0] >= 2 and counts[-1] == 0,
                  f"the connections were not seen falling from the held two to zero: {counts}")
            check(all(a >= b for a, b in zip(counts, counts[1:])), f"the count rose while draining: {counts}")
            drained = self.weights()
            check(drained[(80, "n2")][1] == 0 and drained[(443, "n2")][1] == 0,
                  f"n2's members are not drained: {drained}")
            time.sleep(1)
            after_drain = [l for l in self.loop_lines(loop_file) if l[0] > time.time() - 0.9]
            check(after_drain and all(l[3] != "n2" for l in after_drain if l[1] == "ok"),
                  f"n2 still answered after its drain: {after_drain[-5:]}")

            self.ctl("node", "undrain", n2)
            self.wait_for("n2's http back at weight 3", lambda: self.weights()[(80, "n2")] == (3, 3), 15)
            time.sleep(1.5)  # the in-maintenance https must not come back by itself
            restored = self.weights()
            log(f"weights after the undrain: {restored}")
            check(restored == before, f"the undrain did not restore what was there: {before} -> {restored}")
            served = {l[3] for l in self.loop_lines(loop_file) if l[1] == "ok" and l[2] == 80
                      and l[0] > time.time() - 1}
            check("n2" in served, f"n2 does not answer http after its undrain: {served}")
            ended = time.time()
        finally:
            holder.wait(timeout=30)
            self.stop_loop(loop)
        self.check_loop(loop_file, started, ended, "the drain and undrain")

        self.ctl("health", "maintenance", n2, "https", "off")
        self.wait_for("n2's https back", lambda: self.weights()[(443, "n2")] == (1, 1), 15)

    def close(self, failed):
        for name, prefix in self.nginx.items():
            try:
                self.in_ns(name, sys.executable, NGINX_CTL, "stop", prefix, check_=False)
            except Exception:  # noqa: BLE001
                pass
        self.cluster.close(failed=failed, keep=keep_failed_run(failed))
        import shutil
        shutil.rmtree(self.nginx_root, ignore_errors=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--client-loop":
        client_loop(sys.argv[2])
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "--client-hold":
        client_hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return 0
    shoald, shoalctl, plugin_dir = sys.argv[1:4]
    test = MaintenanceTest(shoald, shoalctl, plugin_dir)
    return run_test(test)


if __name__ == "__main__":
    sys.exit(main())
