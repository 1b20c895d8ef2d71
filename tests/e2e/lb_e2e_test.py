#!/usr/bin/env python3
"""The balancer end to end: a manager (AppServer0, the director, on the userspace dataplane)
and three nodes, each in its own network namespace with a real nginx, and a client in a fifth.

  lb_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR

Proves: requests to the virtual IP spread by the scheduler; with persistence one client stays
on one node; a killed nginx leaves the rotation within interval x fall + timeout and clients
see no failure after that; a restarted one comes back; a rolling restart of all three keeps
a healthy member behind the virtual IP at every moment and a client loop through it sees no
failed request. Needs root, nginx and iproute2.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Cluster, Failure, check, log, keep_failed_run, run_test  # noqa: E402

VIP = "10.77.0.100"
INTERVAL_MS, TIMEOUT_MS, FALL, RISE = 500, 300, 2, 2
NGINX_CTL = os.path.join(HERE, "nginx_ctl.py")


# ---- the client side, run inside the client's namespace -------------------------------------
def fetch(timeout=2.0):
    conn = http.client.HTTPConnection(VIP, 80, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode().strip()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        return body
    finally:
        conn.close()


def client_burst(count):
    """Prints one JSON list: who answered each of `count` requests (or the error)."""
    answers = []
    for _ in range(count):
        try:
            answers.append(fetch())
        except OSError as e:
            answers.append(f"error: {e}")
    print(json.dumps(answers))


def client_loop(outfile):
    """Requests every 20 ms until SIGTERM, one line per request: time, ok|err, who or why."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(outfile, "w", buffering=1) as out:
        while not stop:
            t = time.time()
            try:
                out.write(f"{t:.3f} ok {fetch()}\n")
            except OSError as e:
                out.write(f"{t:.3f} err {e}\n")
            time.sleep(0.02)


# ---- the test -----------------------------------------------------------------------------------
class LbTest:
    def __init__(self, shoald, shoalctl, plugin_dir):
        probe = (f"interval_ms = {INTERVAL_MS}\ntimeout_ms = {TIMEOUT_MS}\nfall = {FALL}\nrise = {RISE}\n")
        self.cluster = Cluster(
            shoald, shoalctl, plugin_dir, "sqlite", prefix="shl",
            manager_extra="app_server = true\n",
            manager_plugin_extra=f"[plugin.http]\n{probe}[plugin.lvs]\ndataplane = userspace\n",
            node_plugin_extra={n: self.http_section(n) for n in ("n1", "n2", "n3")})
        self.nginx = {}
        self.work = self.cluster.work

    def http_section(self, name):
        prefix = os.path.join(self.cluster_work_placeholder(), f"nginx-{name}")
        return f"[plugin.http]\nrestart_command = {sys.executable} {NGINX_CTL} restart {prefix}\n"

    # The cluster's work directory is made by Cluster(); node configs are written later (in
    # up()), so their nginx prefix lives under a fixed directory of this test instead.
    def cluster_work_placeholder(self):
        if not hasattr(self, "_nginx_root"):
            import tempfile
            self._nginx_root = tempfile.mkdtemp(prefix="shoal-lb-nginx-")
        return self._nginx_root

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

    def burst(self, count):
        out = self.in_ns("c", sys.executable, os.path.abspath(__file__), "--client-burst", str(count)).stdout
        return json.loads(out)

    def members(self):
        services = self.ctl_json("lb", "list")["services"]
        check(len(services) == 1, f"expected one virtual service, got {services}")
        return {m["address"]: m for m in services[0]["members"]}

    def wait_for(self, what, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise Failure(f"timed out after {timeout}s waiting for {what}")

    def run(self):
        c = self.cluster
        c.net.add_host("c", 50)
        c.up()
        m_ns = c.net.hosts["m"]["netns"]
        subprocess.run(["ip", "netns", "exec", m_ns, "ip", "addr", "add", f"{VIP}/32", "dev", "eth0"], check=True)
        nodes = {n["address"]: n for n in c.api.call("GET", "/v1/nodes")[1]["nodes"]}
        director = nodes["10.77.0.1"]["id"]
        self.ctl("node", "set-roles", str(director), "director")
        addresses = {}
        for name in ("n1", "n2", "n3"):
            address = c.net.hosts[name]["address"]
            addresses[name] = address
            prefix = os.path.join(self.cluster_work_placeholder(), f"nginx-{name}")
            self.nginx[name] = prefix
            self.in_ns(name, sys.executable, NGINX_CTL, "start", prefix, address, name)
            self.ctl("node", "set-roles", str(nodes[address]["id"]), "http")
        self.addresses = addresses
        by_address = {v: k for k, v in addresses.items()}

        log("waiting for the three nginx to be probed healthy")
        def healthy_http():
            services = self.ctl_json("health")["services"]
            return sum(s["service"] == "http" and s["state"] == "healthy" for s in services) == 3
        self.wait_for("three healthy http services", healthy_http, 30)

        log("adding the virtual service with round robin and no persistence")
        self.ctl("lb", "add", "-t", f"{VIP}:80", "--service", "http", "-s", "rr", "-p", "0")
        for address in addresses.values():
            self.ctl("lb", "add-server", "-t", f"{VIP}:80", "-r", f"{address}:80")
        self.wait_for("the virtual IP to answer", lambda: not self.burst(1)[0].startswith("error"), 30)

        answers = self.burst(30)
        counts = {name: answers.count(name) for name in addresses}
        log(f"round robin over 30 requests: {counts}")
        check(all(a in addresses for a in answers), f"failed or unknown answers: {answers}")
        check(all(v == 10 for v in counts.values()), f"round robin should give 10 each: {counts}")

        stats = self.ctl_json("lb", "list")["services"][0]
        check(stats.get("counters", {}).get("connections", 0) >= 30, f"counters did not rise: {stats}")
        listing = self.ctl("lb", "list", "--stats")
        check(f"TCP  {VIP}:80" in listing, f"lb list --stats shows no service:\n{listing}")

        log("persistence: one client stays on one node")
        self.ctl("lb", "edit", "-t", f"{VIP}:80", "-p", "300")
        time.sleep(0.5)
        answers = self.burst(20)
        check(len(set(answers)) == 1 and answers[0] in addresses, f"with persistence one node should answer: {answers}")
        self.ctl("lb", "edit", "-t", f"{VIP}:80", "-p", "0")
        time.sleep(0.5)

        loop_file = os.path.join(self.work, "client-loop.log")
        loop = subprocess.Popen(c.net.exec_prefix("c") + [sys.executable, os.path.abspath(__file__), "--client-loop",
                                                         loop_file])
        try:
            time.sleep(1)
            log("killing nginx on n2")
            killed_at = time.time()
            self.in_ns("n2", sys.executable, NGINX_CTL, "kill", self.nginx["n2"])
            self.wait_for("n2 drained", lambda: self.members()[addresses["n2"]]["effective_weight"] == 0, 15)
            detected = time.time() - killed_at
            bound = (INTERVAL_MS * FALL + TIMEOUT_MS) / 1000
            log(f"n2 left the rotation {detected:.2f}s after the kill (bound: interval x fall + timeout = {bound:.2f}s)")
            check(detected <= bound, f"detection took {detected:.2f}s, more than {bound:.2f}s")
            drained_at = time.time()
            time.sleep(3)
            errors_after = [l for l in self.loop_lines(loop_file) if l[1] == "err" and l[0] > drained_at]
            check(not errors_after, f"clients saw errors after n2 was drained: {errors_after[:5]}")
            served = {l[2] for l in self.loop_lines(loop_file) if l[1] == "ok" and l[0] > drained_at}
            check(served == {"n1", "n3"}, f"after the drain only n1 and n3 should answer: {served}")

            log("starting nginx on n2 again")
            started_at = time.time()
            self.in_ns("n2", sys.executable, NGINX_CTL, "start", self.nginx["n2"])
            self.wait_for("n2 restored", lambda: self.members()[addresses["n2"]]["effective_weight"] == 1, 15)
            log(f"n2 back in rotation {time.time() - started_at:.2f}s after its start")
            restored_at = time.time()
            time.sleep(2)
            served = {l[2] for l in self.loop_lines(loop_file) if l[1] == "ok" and l[0] > restored_at}
            check(served == {"n1", "n2", "n3"}, f"after the restore all three should answer: {served}")

            log("rolling restart of http on all nodes")
            pids_before = {name: open(os.path.join(p, "nginx.pid")).read().strip() for name, p in self.nginx.items()}
            watcher_stop = threading.Event()
            minimum_serving = [3]
            first_drained, first_new_pid = {}, {}

            def pid_of(name):
                try:
                    return open(os.path.join(self.nginx[name], "nginx.pid")).read().strip()
                except OSError:
                    return None

            def watch():
                # Samples the balancer and the nginx pid files: each node must be seen drained
                # (effective weight 0) before its nginx is seen with a new master process.
                while not watcher_stop.is_set():
                    now = time.time()
                    for name in self.nginx:
                        pid = pid_of(name)
                        if pid and pid != pids_before[name]:
                            first_new_pid.setdefault(name, now)
                    try:
                        members = self.members()
                        serving = sum(m["effective_weight"] > 0 for m in members.values())
                        minimum_serving[0] = min(minimum_serving[0], serving)
                        for address, m in members.items():
                            if m["effective_weight"] == 0:
                                first_drained.setdefault(by_address[address], now)
                    except Exception:  # noqa: BLE001 — a failed sample is not a result
                        pass
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            rollout_started = time.time()
            try:
                out = self.ctl("service", "restart", "http", "--all", "--max-unavailable", "1")
            finally:
                watcher_stop.set()
                watcher.join()
            rollout_ended = time.time()
            log(f"rolling restart finished in {rollout_ended - rollout_started:.1f}s:\n{out}")
            rollout = self.ctl_json("service", "rollouts", "--limit", "1")["rollouts"][0]
            check(rollout["state"] == "done" and rollout["drain"], f"rollout did not finish drained: {rollout}")
            pids_after = {name: open(os.path.join(p, "nginx.pid")).read().strip() for name, p in self.nginx.items()}
            check(all(pids_before[n] != pids_after[n] for n in pids_before),
                  f"nginx was not restarted everywhere: {pids_before} -> {pids_after}")
            check(minimum_serving[0] >= 2, f"at some moment only {minimum_serving[0]} member(s) served")
            for name in self.nginx:
                check(name in first_drained, f"{name} was never seen drained during the rolling restart")
                check(name in first_new_pid, f"{name}'s new nginx was not seen during the rolling restart")
                check(first_drained[name] <= first_new_pid[name],
                      f"{name} restarted ({first_new_pid[name]:.2f}) before it was drained ({first_drained[name]:.2f})")
            log("each node was drained before its nginx restarted: " +
                ", ".join(f"{n} {first_new_pid[n] - first_drained[n]:.2f}s" for n in sorted(self.nginx)))
            time.sleep(1)
        finally:
            loop.send_signal(signal.SIGTERM)
            loop.wait(timeout=10)
        lines = self.loop_lines(loop_file)
        during = [l for l in lines if rollout_started <= l[0] <= rollout_ended]
        failed = [l for l in during if l[1] == "err"]
        log(f"client loop: {len(during)} requests during the rolling restart, {len(failed)} failed")
        check(len(during) > 50, "the client loop made too few requests during the rolling restart")
        check(not failed, f"requests failed during the rolling restart: {failed[:5]}")
        log("PASS")

    @staticmethod
    def loop_lines(path):
        lines = []
        for raw in open(path).read().splitlines():
            parts = raw.split(" ", 2)
            if len(parts) == 3:
                lines.append((float(parts[0]), parts[1], parts[2]))
        return lines

    def close(self, failed):
        for name, prefix in self.nginx.items():
            try:
                self.in_ns(name, sys.executable, NGINX_CTL, "stop", prefix, check_=False)
            except Exception:  # noqa: BLE001
                pass
        self.cluster.close(failed=failed, keep=keep_failed_run(failed))
        import shutil
        shutil.rmtree(self.cluster_work_placeholder(), ignore_errors=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--client-burst":
        client_burst(int(sys.argv[2]))
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "--client-loop":
        client_loop(sys.argv[2])
        return 0
    shoald, shoalctl, plugin_dir = sys.argv[1:4]
    test = LbTest(shoald, shoalctl, plugin_dir)
    return run_test(test)


if __name__ == "__main__":
    sys.exit(main())
