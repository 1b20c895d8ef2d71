#!/usr/bin/env python3
"""shoald refuses a store it must not use, and leaves the cluster's files as they were:
- an empty (0-byte) SQLite store next to an existing cluster's CA, server credentials and
  admin token is not taken for a first start;
- a SQLite store with damaged pages is refused at start, with the recovery steps;
- with a MariaDB URL as argument, an emptied database next to an existing cluster's files is
  refused the same way, and the database stays empty.

usage: store_safety_test.py SHOALD [MYSQL_URL]"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

shoald = sys.argv[1]
mysql_url = sys.argv[2] if len(sys.argv) > 2 else ""
work = tempfile.mkdtemp(prefix="shoald-store-safety-")
CLUSTER_FILES = ("tls/ca.crt", "tls/ca.key", "tls/server.crt", "tls/server.key", "admin.token")


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def write_config(name, store):
    data = os.path.join(work, name)
    config = os.path.join(work, name + ".conf")
    with open(config, "w") as f:
        f.write(f"[shoald]\nrole = manager\ndata_dir = {data}\nplugin_dir = {work}/no-plugins\n"
                f"store = {store}\napi_listen = 127.0.0.1\napi_port = 0\nlog_level = information\n")
    return config, data


def first_start(config):
    """Starts a new cluster, waits until it is ready, and stops it cleanly."""
    proc = subprocess.Popen([shoald, "--config", config], stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if "shoald ready" in line:
            break
    else:
        proc.kill()
    if not any("created cluster" in line for line in seen) or not any("shoald ready" in l for l in seen):
        proc.kill()
        fail("the first start made no cluster:\n" + "".join(seen))
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=30)[1]
    if proc.returncode != 0:
        fail(f"first start ended with {proc.returncode}:\n{rest}")


def fingerprints(data):
    out = {}
    for name in CLUSTER_FILES:
        path = os.path.join(data, name)
        if not os.path.exists(path):
            fail(f"the first start left no {path}")
        with open(path, "rb") as f:
            out[name] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def refused_start(config, what):
    """Runs shoald, which must exit with an error; returns its log."""
    try:
        run = subprocess.run([shoald, "--config", config], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        fail(f"shoald kept running on {what}")
    if run.returncode == 0 or "shoald ready" in run.stderr:
        fail(f"shoald started on {what}:\n{run.stderr}")
    return run.stderr


def expect_in(log, texts, what):
    for text in texts:
        if text not in log:
            fail(f"the refusal of {what} does not say {text!r}:\n{log}")


def expect_unchanged(data, before, what):
    after = fingerprints(data)
    for name in CLUSTER_FILES:
        if after[name] != before[name]:
            fail(f"{name} changed when shoald was started on {what}")


# ---- SQLite: an empty store file -------------------------------------------------------
config, data = write_config("sqlite", "sqlite")
first_start(config)
db = os.path.join(data, "shoal.db")
shutil.copy(db, os.path.join(work, "good.db"))
before = fingerprints(data)
with open(db, "w"):
    pass  # 0 bytes, as a full disk or a bad copy leaves it
log = refused_start(config, "a 0-byte shoal.db")
expect_in(log, [f"the store sqlite {db} holds no cluster", os.path.join(data, "admin.token"),
                os.path.join(data, "tls/ca.crt"), "restore it from a backup", "move those files away"],
          "a 0-byte store")
expect_unchanged(data, before, "a 0-byte shoal.db")
if any(line.find("created cluster") >= 0 for line in log.splitlines()):
    fail("a new cluster was made:\n" + log)

# ---- SQLite: damaged pages -------------------------------------------------------------
shutil.copy(os.path.join(work, "good.db"), db)
for extra in ("-wal", "-shm"):
    if os.path.exists(db + extra):
        os.remove(db + extra)
pages = os.path.getsize(db) // 4096
if pages < 8:
    fail(f"the store has only {pages} pages")
with open(db, "r+b") as f:
    for page in range(pages // 2, pages // 2 + 3):  # pages in the middle of a real store
        f.seek(page * 4096)
        f.write(b"\xa5" * 4096)
log = refused_start(config, "a damaged shoal.db")
expect_in(log, [f"the store {db} is damaged", "restore " + db + " from a backup", f'sqlite3 {db} ".recover"'],
          "a damaged store")
expect_unchanged(data, before, "a damaged shoal.db")

# ---- MariaDB: an emptied database ------------------------------------------------------
if mysql_url:
    url = urllib.parse.urlparse(mysql_url)
    client = ["mariadb", "--no-defaults", "-h", url.hostname, "-P", str(url.port or 3306),
              "-u", urllib.parse.unquote(url.username or ""), url.path.lstrip("/"), "-N", "-B"]
    env = dict(os.environ, MYSQL_PWD=urllib.parse.unquote(url.password or ""))

    def sql(statement):
        run = subprocess.run(client + ["-e", statement], capture_output=True, text=True, env=env, timeout=60)
        if run.returncode != 0:
            fail(f"mariadb client: {statement}: {run.stderr}")
        return run.stdout.split()

    def tables():
        return sql("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")

    def empty_database():
        names = tables()
        if names:
            sql("SET FOREIGN_KEY_CHECKS = 0; " + " ".join(f"DROP TABLE `{t}`;" for t in names))

    empty_database()
    config, data = write_config("mariadb", mysql_url)
    first_start(config)
    before = fingerprints(data)
    empty_database()
    log = refused_start(config, "an empty MariaDB database")
    expect_in(log, ["holds no cluster", os.path.join(data, "admin.token"), "restore it from a backup",
                    "move those files away"], "an empty MariaDB database")
    expect_unchanged(data, before, "an empty MariaDB database")
    if tables():
        fail(f"shoald wrote to the database it refused: {tables()}")
    empty_database()

shutil.rmtree(work)
print("ok")
