#!/usr/bin/env python3
"""A node's full disk: the node's data directory (its journal) on a small tmpfs, filled up.
A command whose handler ran but whose result the journal cannot record is applied once, not
again and again: its delivery fails with the disk's own message, visible in
GET /v1/commands/{id} and `shoalctl queue show`; once space is freed, a retry records and
reports the success without running the handler again. The handler (the recorder plugin)
counts its calls itself, in a file outside the tmpfs.

usage: node_disk_full_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR      (needs root: mount)
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, log, keep_failed_run, run_test  # noqa: E402

SHOALD, SHOALCTL, PLUGIN_DIR = sys.argv[1:4]
DISK_FULL = "No space left on device"


class DiskFullTest:
    def __init__(self):
        self.cluster = Cluster(SHOALD, SHOALCTL, PLUGIN_DIR, "sqlite", nodes=("n1",), prefix="shf")
        self.disk = os.path.join(self.cluster.work, "n1-disk")
        self.mounted = False

    def calls(self):
        path = self.cluster.node_file("n1", ".calls")
        return open(path).read().splitlines() if os.path.exists(path) else []

    def delivery(self, command_id):
        status, body = self.cluster.api.call("GET", f"/v1/commands/{command_id}")
        check(status == 200, f"GET /v1/commands/{command_id}: {status} {body}")
        return body["deliveries"][0]

    def wait_delivery(self, command_id, done, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self.delivery(command_id)
            if done(d):
                return d
            time.sleep(0.2)
        raise AssertionError(f"{what} within {timeout}s: {self.delivery(command_id)}")

    def run(self):
        c = self.cluster
        c.up()
        api = c.api
        # The node's data directory moves onto a 1 MiB tmpfs; the recorder's files stay outside.
        check(c.stop("n1") == 0, "n1 did not stop cleanly")
        os.makedirs(self.disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", self.disk], check=True)
        self.mounted = True
        data = os.path.join(c.work, "n1")
        for entry in os.listdir(data):
            if entry.startswith("applied"):
                continue
            source = os.path.join(data, entry)
            (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, os.path.join(self.disk, entry))
        conf = open(c.node_confs["n1"]).read().replace(f"data_dir = {data}\n", f"data_dir = {self.disk}\n")
        check(f"data_dir = {self.disk}\n" in conf, "the node's configuration names no data_dir to move")
        with open(c.node_confs["n1"], "w") as f:
            f.write(conf)
        c.restart_node("n1")

        status, body = api.call("POST", "/v1/commands", {"kind": "recorder.apply", "payload": {"key": "warm", "seq": 1},
                                                         "key": "warm", "target": {"all": True}})
        check(status == 201, f"enqueue: {status} {body}")
        self.wait_delivery(body["id"], lambda d: d["state"] == "done", "the first command was not applied")
        log(f"n1 runs on its tmpfs: {sorted(os.listdir(self.disk))}")

        # Fill the disk: every free block, and the rest of the journal's last block.
        filler = os.open(os.path.join(self.disk, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(filler, b"\0" * 4096) > 0:
                pass
        except OSError as e:
            check(e.errno == 28, f"filling the tmpfs: {e}")
        finally:
            os.close(filler)
        # A line the journal ignores (no ';' at its end) takes what its last block has left.
        journal = os.open(os.path.join(self.disk, "journal.log"), os.O_WRONLY | os.O_APPEND)
        room = -os.fstat(journal).st_size % 4096
        if room:
            os.write(journal, (b"#" * (room - 1)) + b"\n")
        os.close(journal)
        probe = os.open(os.path.join(self.disk, "probe"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(probe, b"x" * 4096)
            check(False, "the tmpfs still takes writes")
        except OSError as e:
            check(e.errno == 28, f"filling the tmpfs: {e}")
        finally:
            os.close(probe)
        log("n1's disk is full")

        status, body = api.call("POST", "/v1/commands", {"kind": "recorder.apply", "payload": {"key": "disk", "seq": 1},
                                                         "key": "disk", "target": {"all": True}})
        check(status == 201, f"enqueue: {status} {body}")
        command = body["id"]
        # Five attempts with backoff (0.5 + 1 + 2 + 4 s), then failed.
        failed = self.wait_delivery(command, lambda d: d["state"] == "failed", "the delivery did not fail")
        check(DISK_FULL in failed["output"] and "journal" in failed["output"],
              f"the delivery's output does not give the disk's reason: {failed['output']!r}")
        check(self.calls().count("disk 1") == 1,
              f"the handler ran {self.calls().count('disk 1')} times, not once: {self.calls()}")
        log(f"failed after {failed['attempts']} attempts, the handler ran once: {failed['output']}")
        shown = c.shoalctl("queue", "show", str(command))
        check(shown.returncode == 0 and DISK_FULL in shown.stdout, f"shoalctl queue show: {shown.stdout} {shown.stderr}")

        # While the disk is still full a retry answers the same failure, without the handler.
        status, body = api.call("POST", f"/v1/deliveries/{failed['id']}/retry")
        check(status == 200, f"retry: {status} {body}")
        self.wait_delivery(command, lambda d: d["attempts"] >= 1 and d["state"] != "running"
                           and d["finished_at_ms"] and d["finished_at_ms"] > failed["finished_at_ms"],
                           "the retry on a full disk did not answer")
        again = self.delivery(command)
        check(DISK_FULL in again["output"], f"a retry on the full disk: {again}")
        check(self.calls().count("disk 1") == 1, f"the handler ran again on a retry: {self.calls()}")

        # Space again: a retry records the result and reports the success; no second run.
        os.unlink(os.path.join(self.disk, "filler"))
        status, body = api.call("POST", f"/v1/deliveries/{failed['id']}/retry")
        check(status == 200 or (status == 409 and "pending" in json.dumps(body)), f"retry: {status} {body}")
        done = self.wait_delivery(command, lambda d: d["state"] == "done", "the retry did not succeed")
        check(done["output"] == "applied disk 1", f"the success's output: {done['output']!r}")
        check(self.calls().count("disk 1") == 1, f"the handler ran again after space was freed: {self.calls()}")
        log(f"after space was freed the retry reported {done['output']!r}; the handler ran once in all")

        # shoalctl's retry of an enqueue with its idempotency key: one command, shown twice.
        add = ["--json", "queue", "add", "recorder.apply", "--payload", '{"key": "ctl", "seq": 1}', "--key", "ctl",
               "--idempotency-key", "disk-test-ctl-1"]
        first, second = c.shoalctl(*add), c.shoalctl(*add)
        check(first.returncode == 0 and second.returncode == 0, f"queue add: {first.stderr} {second.stderr}")
        first_id, second_id = json.loads(first.stdout)["id"], json.loads(second.stdout)["id"]
        check(first_id == second_id, f"a repeated queue add enqueued again: {first_id} and {second_id}")
        status, body = api.call("GET", "/v1/commands?limit=10")
        check(sum(cmd["ordering_key"] == "ctl" for cmd in body["commands"]) == 1, f"commands: {body}")
        other = c.shoalctl("queue", "add", "recorder.apply", "--payload", '{"key": "ctl", "seq": 2}', "--key", "ctl",
                           "--idempotency-key", "disk-test-ctl-1")
        check(other.returncode == 1 and 'idempotency key "disk-test-ctl-1"' in other.stderr,
              f"the key with another payload: {other.returncode} {other.stdout} {other.stderr}")
        log(f"shoalctl queue add --idempotency-key twice: command {first_id} once; another payload refused")

    def close(self, failed):
        try:
            self.cluster.close(failed=failed, keep=keep_failed_run(failed))
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", self.disk], check=False)
                shutil.rmtree(self.cluster.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(DiskFullTest(), expected=(AssertionError,)))
