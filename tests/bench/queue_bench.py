#!/usr/bin/env python3
"""Command Queue benchmark, each figure beside a peer measured in the same run:

- propagation: enqueue-to-applied latency on each of three nodes (p50/p99), beside the raw
  HTTPS request round trip to the manager over the same namespaces and links;
- throughput: commands per second enqueued and applied on all three nodes, beside the raw
  rate of single-row transactional inserts into the same database.

usage: queue_bench.py SHOALD SHOALCTL PLUGIN_DIR STORE STORE_INSERT_BENCH
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import Api, Cluster, empty_mysql_database, log  # noqa: E402

SHOALD, SHOALCTL, PLUGIN_DIR, STORE, INSERT_BENCH = sys.argv[1:6]
LATENCY_COMMANDS = int(os.environ.get("SHOAL_BENCH_LATENCY_COMMANDS", "300"))
THROUGHPUT_COMMANDS = int(os.environ.get("SHOAL_BENCH_COMMANDS", "3000"))
WRITERS = int(os.environ.get("SHOAL_BENCH_WRITERS", "8"))
BATCH = int(os.environ.get("SHOAL_BENCH_BATCH", "50"))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def applied_times(cluster, name):
    times = {}
    path = cluster.node_file(name, ".times")
    if os.path.exists(path):
        for line in open(path):
            key, seq, micros = line.split()
            times[(key, int(seq))] = int(micros) / 1e6
    return times


def wait_applied(cluster, count, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(len(applied_times(cluster, n)) >= count for n in cluster.nodes):
            return
        time.sleep(0.1)
    raise SystemExit(f"not every node applied {count} commands in {timeout}s")


def main():
    backend = "mariadb" if STORE.startswith("mysql://") else "sqlite"
    if backend == "mariadb":
        empty_mysql_database(STORE)
    cluster = Cluster(SHOALD, SHOALCTL, PLUGIN_DIR, STORE, prefix="shb")
    try:
        cluster.up()
        # Measure from a client host of its own, across the bridge, like a node's traffic.
        cluster.net.add_host("c", 5)
        cluster.net.enter("c")
        data = os.path.join(cluster.work, "m")
        api = Api(data, host="10.77.0.1")

        for _ in range(50):
            api.call("GET", "/v1/health")
        rtts = []
        for _ in range(1000):
            t = time.perf_counter()
            status, _ = api.call("GET", "/v1/health")
            rtts.append(time.perf_counter() - t)
            assert status == 200

        # The same request on a new connection each time: TCP connect, TLS handshake, request.
        fresh = []
        for _ in range(300):
            one = Api(data, host="10.77.0.1")
            t = time.perf_counter()
            status, _ = one.call("GET", "/v1/health")
            fresh.append(time.perf_counter() - t)
            one.conn.close()
            assert status == 200

        sent = {}
        for i in range(LATENCY_COMMANDS):
            key, seq = f"lat{i % 8}", i // 8 + 1
            sent[(key, seq)] = time.time()
            status, body = api.call("POST", "/v1/commands", {"kind": "recorder.apply", "key": key, "target": {"all": True},
                                                             "payload": json.dumps({"key": key, "seq": seq})})
            assert status == 201, body
            time.sleep(0.02)
        wait_applied(cluster, LATENCY_COMMANDS)
        latency = {}
        for name in cluster.nodes:
            times = applied_times(cluster, name)
            latency[name] = [times[k] - sent[k] for k in sent]

        # Throughput: several writers, many keys, all nodes; first one command per request,
        # then batches of BATCH commands per request.
        throughput = {}
        done = LATENCY_COMMANDS
        for label, batch in (("one command per request", 1), (f"{BATCH} commands per request", BATCH)):
            prefix = f"tp{batch}-"
            counter = iter(range(0, THROUGHPUT_COMMANDS, batch))
            lock = threading.Lock()
            errors = []

            def writer():
                own = Api(data, host="10.77.0.1")
                while True:
                    with lock:
                        start = next(counter, None)
                    if start is None:
                        return
                    items = []
                    for i in range(start, min(start + batch, THROUGHPUT_COMMANDS)):
                        key, seq = f"{prefix}{i % 64}", i // 64 + 1
                        items.append({"kind": "recorder.apply", "key": key, "target": {"all": True},
                                      "payload": json.dumps({"key": key, "seq": seq})})
                    status, body = own.call("POST", "/v1/commands", items[0] if batch == 1 else {"commands": items})
                    if status != 201:
                        errors.append(body)

            first_send = time.time()
            threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            enqueued_in = time.time() - first_send
            if errors:
                raise SystemExit(f"enqueue errors: {errors[:3]}")
            done += THROUGHPUT_COMMANDS
            wait_applied(cluster, done)
            last_applied = max(max(v for k, v in applied_times(cluster, n).items() if k[0].startswith(prefix))
                               for n in cluster.nodes)
            throughput[label] = (enqueued_in, THROUGHPUT_COMMANDS / (last_applied - first_send))

        insert_store = STORE if backend == "mariadb" else f"sqlite:{data}/shoal.db"
        raw = {}
        for writers in (1, WRITERS):
            out = subprocess.run([INSERT_BENCH, insert_store, data, str(2000), str(writers)], check=True,
                                 capture_output=True, text=True)
            raw[writers] = int(out.stdout.strip())

        rtt50, rtt99 = percentile(rtts, 50) * 1000, percentile(rtts, 99) * 1000
        every = [v for values in latency.values() for v in values]
        print(f"\n== Command Queue benchmark, store: {backend} ==")
        print(f"raw HTTPS round trip (GET /v1/health, keep-alive, client netns -> manager netns): "
              f"p50 {rtt50:.2f} ms, p99 {rtt99:.2f} ms ({len(rtts)} requests)")
        fresh50, fresh99 = percentile(fresh, 50) * 1000, percentile(fresh, 99) * 1000
        print(f"raw HTTPS request on a new connection (connect + TLS handshake + GET /v1/health): "
              f"p50 {fresh50:.2f} ms, p99 {fresh99:.2f} ms ({len(fresh)} requests)")
        for name, values in latency.items():
            print(f"enqueue-to-applied on {name}: p50 {percentile(values, 50) * 1000:.2f} ms, "
                  f"p99 {percentile(values, 99) * 1000:.2f} ms ({len(values)} commands)")
        p99 = percentile(every, 99) * 1000
        print(f"enqueue-to-applied, all nodes: p50 {percentile(every, 50) * 1000:.2f} ms, p99 {p99:.2f} ms "
              f"= {p99 / rtt99:.1f}x the kept-alive round trip's p99, {p99 / fresh99:.1f}x the new-connection "
              f"request's p99 (target <= 5x)")
        for label, (enqueued_in, rate) in throughput.items():
            print(f"throughput, {label}: {THROUGHPUT_COMMANDS} commands from {WRITERS} writers over 64 keys "
                  f"to 3 nodes: enqueued in {enqueued_in:.1f}s, {rate:.0f} commands/s enqueued-and-applied "
                  f"end to end ({rate * 3:.0f} deliveries/s)")
        print(f"raw single-row transactional inserts into the same {backend}: {raw[1]} rows/s with 1 writer, "
              f"{raw[WRITERS]} rows/s with {WRITERS} writers")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
