#!/usr/bin/env python3
"""The Command Queue end to end: a manager and three nodes as separate shoald processes, each
in its own network namespace, over real TLS, enrolled with join tokens. 1,000 commands over
several ordering keys while one node is killed with SIGKILL and restarted, the manager is
restarted, and one node's link is cut for a while and restored. Afterwards every node has
applied every command exactly once, in order per key. Then rolling restarts: one that
succeeds batch by batch, and one that stops at a failing node with the rest left pending.

usage: queue_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR STORE   (STORE: sqlite | mysql://...)
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, ClusterTest, check, empty_mysql_database, log, run_test  # noqa: E402

SHOALD, SHOALCTL, PLUGIN_DIR, STORE = sys.argv[1:5]
COMMANDS = int(os.environ.get("SHOAL_E2E_COMMANDS", "1000"))
KEYS = [f"site{i}" for i in range(8)]


def run(cluster):
    cluster.up()
    api = cluster.api
    log("manager and three nodes up and enrolled")

    expected = []  # (key, seq) in enqueue order
    seq = {key: 0 for key in KEYS}

    def enqueue(n):
        for _ in range(n):
            key = KEYS[len(expected) % len(KEYS)]
            seq[key] += 1
            payload = json.dumps({"key": key, "seq": seq[key]})
            status, body = api.call("POST", "/v1/commands", {"kind": "recorder.apply", "payload": payload,
                                                             "key": key, "target": {"all": True}})
            check(status == 201, f"enqueue refused: {status} {body}")
            expected.append((key, seq[key]))

    started = time.time()
    enqueue(COMMANDS // 5)
    log("SIGKILL n1")
    cluster.stop("n1", signal.SIGKILL)
    enqueue(COMMANDS // 10)
    cluster.restart_node("n1")
    enqueue(COMMANDS // 10)

    log("restarting the manager")
    check(cluster.stop("m") == 0, "manager did not stop cleanly")
    cluster.start_manager()
    enqueue(COMMANDS // 5)

    log("cutting n2's link for 20 s")
    cluster.net.cut("n2")
    enqueue(COMMANDS // 5)
    saw_offline = False
    n2_address = cluster.net.hosts["n2"]["address"]
    cut_until = time.time() + 20
    while time.time() < cut_until:
        status, body = api.call("GET", "/v1/nodes")
        saw_offline |= any(n["address"] == n2_address and n["state"] == "offline" for n in body["nodes"])
        time.sleep(0.5)
    cluster.net.restore("n2")
    log(f"n2 restored (seen offline during the cut: {saw_offline})")
    enqueue(COMMANDS - len(expected))
    log(f"{len(expected)} commands enqueued in {time.time() - started:.1f}s")

    queue = cluster.wait_drained()
    log(f"queue drained {time.time() - started:.1f}s after the first command: {queue}")
    check(queue["failed"] == 0, f"failed deliveries: {queue}")
    check(saw_offline, "n2 was never shown offline while its link was cut")

    for name in cluster.nodes:
        applied = [(k, int(s)) for k, s in (l.split() for l in open(cluster.node_file(name)).read().splitlines())]
        check(len(applied) == len(set(applied)), f"{name} applied a command twice")
        missing = set(expected) - set(applied)
        check(sorted(applied) == sorted(expected),
              f"{name} applied {len(applied)} of {len(expected)} commands; missing e.g. {sorted(missing)[:5]}")
        last = {}
        for key, s in applied:
            check(last.get(key, 0) < s, f"{name} applied {key} {s} after {key} {last.get(key)}")
            last[key] = s
        calls = len(open(cluster.node_file(name, ".calls")).read().splitlines())
        log(f"{name}: {len(applied)} applied exactly once, in order per key; handler calls {calls} "
            f"({calls - len(applied)} re-applications answered idempotently)")

    status, body = api.call("GET", "/v1/nodes")
    check(sorted(n["state"] for n in body["nodes"]) == ["online"] * 3, f"not every node online at the end: {body}")

    # Rolling restart, two nodes at a time: every node restarts once.
    ctl = cluster.shoalctl("service", "restart", "recorder", "--all", "--batch", "2")
    check(ctl.returncode == 0, f"rolling restart failed: {ctl.returncode} {ctl.stdout} {ctl.stderr}")
    for name in cluster.nodes:
        restarts = open(cluster.node_file(name, ".restarts")).read().splitlines()
        check(restarts == ['{"service":"recorder"}'], f"{name} restarts: {restarts}")
    log("rolling restart of recorder: every node restarted once")

    # A rollout stops at the first failure and leaves the rest pending, visibly.
    ctl = cluster.shoalctl("--json", "service", "restart", "flaky", "--all")
    rollout = json.loads(ctl.stdout.strip().splitlines()[-1])
    by_node = [n["state"] for n in sorted(rollout["nodes"], key=lambda n: n["id"])]
    # Nodes enrolled in order n1, n2, n3; flaky fails on n2.
    check(ctl.returncode == 1 and rollout["state"] == "failed" and by_node == ["done", "failed", "pending"],
          f"a failing rollout did not stop with the rest pending: {ctl.returncode} {rollout}")
    check("flaky refuses to restart" in rollout["message"], f"the rollout's message does not say why: {rollout}")
    log(f"failing rollout stopped: {rollout['message']}")
    listed = cluster.shoalctl("service", "rollouts")
    check(listed.returncode == 0 and "flaky.restart" in listed.stdout and "failed" in listed.stdout
          and "recorder.restart" in listed.stdout, f"service rollouts: {listed.stdout} {listed.stderr}")


def main():
    if STORE.startswith("mysql://"):
        empty_mysql_database(STORE)
    # The default lease (60 s): a killed or cut-off node must not have to wait it out.
    cluster = Cluster(SHOALD, SHOALCTL, PLUGIN_DIR, STORE, node_plugin_extra={"n2": "flaky = fail\n"})
    return run_test(ClusterTest(cluster, run))


if __name__ == "__main__":
    sys.exit(main())
