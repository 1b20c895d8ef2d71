#!/usr/bin/env python3
"""Every command applied exactly once through manager crashes: a manager and three nodes as
separate shoald processes in network namespaces; 2,000 commands over eight ordering keys,
enqueued in batches with idempotency keys while the manager is killed with SIGKILL six times
and started again. Afterwards every node's handler has been called exactly once for every
command (the recorder plugin counts its calls itself, in <data>/applied.calls), in order per
key, and no delivery failed.

usage: queue_crash_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR STORE   (STORE: sqlite | mysql://...)
"""
import json
import os
import signal
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, ClusterTest, check, empty_mysql_database, log, run_test  # noqa: E402

SHOALD, SHOALCTL, PLUGIN_DIR, STORE = sys.argv[1:5]
COMMANDS = int(os.environ.get("SHOAL_E2E_COMMANDS", "2000"))
KILLS = 6
BATCH = 10
KEYS = [f"site{i}" for i in range(8)]


def run(cluster):
    cluster.up()
    api = cluster.api
    log("manager and three nodes up and enrolled")
    expected = []
    seq = {key: 0 for key in KEYS}

    def enqueue_batch(number):
        commands = []
        for _ in range(BATCH):
            key = KEYS[len(expected) % len(KEYS)]
            seq[key] += 1
            expected.append((key, seq[key]))
            commands.append({"kind": "recorder.apply", "payload": json.dumps({"key": key, "seq": seq[key]}),
                             "key": key, "target": {"all": True}})
        # A client that retries until the manager answers; the key makes a retry safe.
        deadline = time.time() + 60
        while True:
            try:
                status, body = api.call("POST", "/v1/commands", {"commands": commands},
                                        headers={"Idempotency-Key": f"crash-test-batch-{number}"})
                check(status in (200, 201), f"enqueue refused: {status} {body}")
                return
            except OSError:
                api.conn = None
                check(time.time() < deadline, "the manager did not come back within 60 s")
                time.sleep(0.1)

    batches = COMMANDS // BATCH
    kill_after = {batches * (i + 1) // (KILLS + 1) for i in range(KILLS)}
    started = time.time()
    kills = 0
    for number in range(batches):
        enqueue_batch(number)
        if number + 1 in kill_after:
            # The nodes are busy with what was just enqueued: kill the manager under them.
            check(cluster.stop("m", signal.SIGKILL) == -signal.SIGKILL, "the manager did not die of SIGKILL")
            kills += 1
            cluster.start_manager()
            log(f"manager killed with SIGKILL and started again ({kills} of {KILLS}) "
                f"after {len(expected)} commands")
    check(kills == KILLS, f"{kills} kills, not {KILLS}")
    log(f"{len(expected)} commands enqueued in {time.time() - started:.1f}s")

    queue = cluster.wait_drained()
    log(f"queue drained {time.time() - started:.1f}s after the first command: {queue}")
    check(queue["failed"] == 0, f"failed deliveries: {queue}")
    status, body = api.call("GET", "/v1/commands?limit=1")
    check(body["commands"][0]["id"] == len(expected),
          f"the last command is {body['commands'][0]['id']}, not {len(expected)}: a retried enqueue "
          "enqueued again")

    for name in cluster.nodes:
        # Every call of the handler, as the handler itself recorded it.
        calls = [(k, int(s)) for k, s in (l.split() for l in open(cluster.node_file(name, ".calls")).read().splitlines())]
        twice = sorted(c for c, n in Counter(calls).items() if n > 1)
        check(not twice, f"{name} applied {len(twice)} commands more than once, e.g. {twice[:5]}")
        missing = sorted(set(expected) - set(calls))
        check(not missing, f"{name} never applied {len(missing)} commands, e.g. {missing[:5]}")
        check(len(calls) == len(expected), f"{name}: {len(calls)} calls for {len(expected)} commands")
        last = {}
        for key, s in calls:
            check(last.get(key, 0) < s, f"{name} applied {key} {s} after {key} {last.get(key)}")
            last[key] = s
        log(f"{name}: {len(calls)} commands, each applied exactly once, in order per key")


def main():
    if STORE.startswith("mysql://"):
        empty_mysql_database(STORE)
    cluster = Cluster(SHOALD, SHOALCTL, PLUGIN_DIR, STORE, prefix="shx")
    return run_test(ClusterTest(cluster, run))


if __name__ == "__main__":
    sys.exit(main())
