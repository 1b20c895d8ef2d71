#!/usr/bin/env python3
"""shoald as an admin runs it: start as a manager on the embedded SQLite store, stay up,
refuse a second daemon on the same data directory, stop cleanly on SIGTERM and on SIGINT,
and find its migrated store (and cluster identity) intact at the next start."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

shoald, test_plugin_dir = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="shoald-lifecycle-")
plugin_dir = os.path.join(work, "plugins")
os.makedirs(plugin_dir)
for name in ("hello.so", "compat_v1_0.so"):
    shutil.copy(os.path.join(test_plugin_dir, name), plugin_dir)
config = os.path.join(work, "shoald.conf")
with open(config, "w") as f:
    f.write(f"[shoald]\nrole = manager\ndata_dir = {work}/data\nplugin_dir = {plugin_dir}\n"
            "store = sqlite\nlog_level = information\n[plugin.hello]\ngreeting = Hi\n")


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def start():
    return subprocess.Popen([shoald, "--config", config], stderr=subprocess.PIPE, text=True)


def wait_for(proc, pattern, timeout=30):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if re.search(pattern, line):
            return seen
    fail(f"did not see {pattern!r}; log was:\n{''.join(seen)}")


def stop(proc, sig):
    proc.send_signal(sig)
    try:
        rest = proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"shoald did not stop within 30 s of {sig.name}")
    if proc.returncode != 0:
        fail(f"exit status {proc.returncode} after {sig.name}; log:\n{rest}")
    if "shoald stopped cleanly" not in rest:
        fail(f"no clean-stop line after {sig.name}; log:\n{rest}")


# First start: migrates from nothing and creates the cluster's identity.
first = start()
log = "".join(wait_for(first, r"shoald ready"))
if "migrated from schema version 0" not in log:
    fail("first start did not migrate a new store:\n" + log)
cluster = re.search(r"created cluster ([0-9a-f-]{36})", log)
if not cluster:
    fail("first start created no cluster id:\n" + log)
if "2 plugin(s) loaded, 0 refused" not in log:
    fail("plugins not loaded:\n" + log)
time.sleep(1.0)
if first.poll() is not None:
    fail("shoald exited on its own")

# A second daemon on the same data directory is refused, and the first keeps running.
second = subprocess.run([shoald, "--config", config], capture_output=True, text=True, timeout=30)
if second.returncode == 0 or "another shoald is already running" not in second.stderr:
    fail(f"second daemon not refused: {second.returncode} {second.stderr}")
if first.poll() is not None:
    fail("the first shoald died when a second one was started")

# A second manager on another data directory but the same port cannot start either: the port
# is not shared (no SO_REUSEPORT), and the message says why.
other = os.path.join(work, "other.conf")
with open(other, "w") as f:
    f.write(f"[shoald]\nrole = manager\ndata_dir = {work}/other-data\nplugin_dir = {plugin_dir}\n"
            "store = sqlite\napi_listen = 0.0.0.0\napi_port = 7443\n")
second = subprocess.run([shoald, "--config", other], capture_output=True, text=True, timeout=30)
if second.returncode == 0 or "0.0.0.0:7443 is already in use; is another shoald running?" not in second.stderr:
    fail(f"second manager on the same port not refused: {second.returncode} {second.stderr}")
if first.poll() is not None:
    fail("the first shoald died when a second manager tried its port")
stop(first, signal.SIGTERM)

# Second start: nothing to migrate, the same cluster, a database file still there.
again = start()
log = "".join(wait_for(again, r"shoald ready"))
if "nothing to migrate" not in log:
    fail("second start migrated again:\n" + log)
if f"cluster {cluster.group(1)}" not in log:
    fail(f"second start lost cluster {cluster.group(1)}:\n" + log)
stop(again, signal.SIGINT)
if not os.path.exists(os.path.join(work, "data", "shoal.db")):
    fail("no SQLite store in the data directory")

# `shoald migrate` on the migrated store reports the version and changes nothing.
migrate = subprocess.run([shoald, "migrate", "--config", config], capture_output=True, text=True, timeout=30)
if migrate.returncode != 0 or "is at schema version" not in migrate.stdout:
    fail(f"migrate: {migrate.returncode} {migrate.stdout} {migrate.stderr}")

# Configuration errors are named and exit with status 2.
bad = subprocess.run([shoald, "--config", config, "--role", "director"], capture_output=True, text=True, timeout=30)
if bad.returncode != 2 or "shoald.role 'director'" not in bad.stderr:
    fail(f"bad role: {bad.returncode} {bad.stderr}")
bad_store = subprocess.run([shoald, "--config", config, "--store", "postgres://x"], capture_output=True,
                           text=True, timeout=30)
if bad_store.returncode == 0 or "postgres://x" not in bad_store.stderr:
    fail(f"bad store: {bad_store.returncode} {bad_store.stderr}")

shutil.rmtree(work)
print("ok")
