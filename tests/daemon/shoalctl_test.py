#!/usr/bin/env python3
"""shoalctl against a running manager on loopback: output, --json, and the exit codes scripts
rely on (0 done, 1 refused by the manager, 2 bad usage, 3 unreachable, 4 not found). Nodes join
it with a token from argv, from a file and from the environment, and none of them shows the
token in /proc/PID/cmdline."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

shoald, shoalctl, plugin_dir = sys.argv[1:4]
work = tempfile.mkdtemp(prefix="shoalctl-test-")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
config = os.path.join(work, "shoald.conf")
with open(config, "w") as f:
    f.write(f"[shoald]\nrole = manager\ndata_dir = {work}/data\nplugin_dir = {plugin_dir}\nstore = sqlite\n"
            f"api_listen = 127.0.0.1\napi_port = {port}\nadvertise_address = 127.0.0.1\n")
manager = subprocess.Popen([shoald, "--config", config], stderr=subprocess.PIPE, text=True)
failures = []
env = dict(os.environ, SHOAL_MANAGER=f"127.0.0.1:{port}", SHOAL_CA=f"{work}/data/tls/ca.crt",
           SHOAL_TOKEN_FILE=f"{work}/data/admin.token")
env.pop("SHOAL_TOKEN", None)


def ctl(*args, extra_env=None):
    return subprocess.run([shoalctl] + list(args), capture_output=True, text=True, timeout=30,
                          env=dict(env, **(extra_env or {})))


def expect(result, code, text=None, where="stderr"):
    out = getattr(result, where)
    if result.returncode != code or (text and text not in out):
        failures.append(f"{result.args[1:]}: exit {result.returncode} (expected {code}), {where}: {out.strip()!r}"
                        + (f", expected to contain {text!r}" if text else ""))


try:
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(f"{work}/data/admin.token"):
        time.sleep(0.05)
    time.sleep(0.3)

    status = ctl("--json", "cluster")
    expect(status, 0)
    if status.returncode == 0 and "cluster_id" not in json.loads(status.stdout):
        failures.append(f"cluster --json: {status.stdout}")
    expect(ctl("cluster"), 0, "queue   pending 0", where="stdout")
    expect(ctl("node", "list"), 0, "no nodes", where="stdout")
    token = ctl("node", "join-token", "--ttl", "600")
    expect(token, 0, "shoal-join-1.", where="stdout")
    expect(ctl("node", "join-token", "--ttl", "10"), 1, "ttl")
    expect(ctl("node", "show", "999"), 4, "no node 999")
    expect(ctl("node", "show", "abc"), 2, "node id 'abc' must be a positive integer")
    expect(ctl("node", "frobnicate"), 2, "unknown command 'node frobnicate'")
    expect(ctl(), 2, "usage:")
    expect(ctl("--bogus", "cluster"), 2, "unknown option --bogus")
    expect(ctl("queue", "add", "nosuch.kind", "--payload", "{}"), 1, "no plugin handles command kind 'nosuch.kind'")
    expect(ctl("queue", "add", "hello.greet", "--payload", '{"name":"ada"}'), 1, "matches no node")
    # The kernel's own kinds are there in every shoald, validated where they are enqueued.
    expect(ctl("queue", "add", "account.identity.put", "--payload",
               '{"name":"root","uid":20001,"gid":20001,"home":"/srv/shoal/root"}'), 1,
           "account.identity.put: name: 'root' is reserved for the system")
    expect(ctl("queue", "add", "account.identity.put", "--payload",
               '{"name":"acme","uid":20001,"gid":20001,"home":"srv"}'), 1,
           "account.identity.put: home: 'srv' is not an absolute path")
    expect(ctl("queue", "add", "account.identity.put", "--payload",
               '{"name":"acme","uid":20001,"gid":20001,"home":"/srv/shoal/acme"}'), 1, "matches no node")
    expect(ctl("queue", "add", "account.identity.remove", "--payload", '{"name":"acme"}'), 1,
           "account.identity.remove: uid: missing")
    expect(ctl("queue", "add", "hello.greet", "--target", "everyone"), 2, "must be all, node:ID or role:NAME")
    expect(ctl("queue", "add", "hello.greet", "--payload", "{not json"), 1, "payload: is a string but not")
    expect(ctl("--json", "queue", "list"), 0, '"commands":[]', where="stdout")
    expect(ctl("queue", "retry", "5"), 4, "does not exist")
    expect(ctl("service", "restart", "hello"), 2, "needs --all")
    expect(ctl("service", "rollouts"), 0, "no rollouts yet", where="stdout")
    expect(ctl("service", "restart", "hello", "--all"), 1, "no plugin handles 'hello.restart'")
    expect(ctl("cluster", extra_env={"SHOAL_MANAGER": "127.0.0.1:1"}), 3, "cannot reach the manager")
    expect(ctl("cluster", extra_env={"SHOAL_TOKEN": "shoal-admin-wrong"}), 1, "not valid for this route")
    expect(ctl("cluster", extra_env={"SHOAL_CA": "/nonexistent/ca.crt"}), 2, "does not exist")

    # Three nodes join: the token on the command line, in a file, in the environment.
    def start_node(name, extra_args, extra_env=None):
        node_config = os.path.join(work, f"{name}.conf")
        with open(node_config, "w") as f:
            f.write(f"[shoald]\nrole = node\ndata_dir = {work}/{name}\nplugin_dir = {plugin_dir}\n"
                    f"advertise_address = 127.0.0.1\n")
        log = open(os.path.join(work, f"{name}.log"), "w")
        node_env = dict(os.environ, **(extra_env or {}))
        return subprocess.Popen([shoald, "--config", node_config] + extra_args, stderr=log,
                                env=node_env)

    def wait_for_log(name, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(os.path.join(work, f"{name}.log")) as f:
                if text in f.read():
                    return True
            time.sleep(0.1)
        with open(os.path.join(work, f"{name}.log")) as f:
            failures.append(f"{name}: no {text!r} in its log: {f.read()[-2000:]}")
        return False

    def new_token():
        return ctl("node", "join-token").stdout.strip()

    nodes, ids = [], []
    argv_token = new_token()
    nodes.append(start_node("node-argv", ["--join", argv_token]))
    file_token = new_token()
    token_file = os.path.join(work, "join.token")
    with open(token_file, "w") as f:
        f.write(file_token + "\n")
    os.chmod(token_file, 0o600)
    nodes.append(start_node("node-file", ["--join-token-file", token_file]))
    env_token = new_token()
    nodes.append(start_node("node-env", [], {"SHOAL_JOIN_TOKEN": env_token}))
    try:
        for name, proc, token in zip(["node-argv", "node-file", "node-env"], nodes,
                                     [argv_token, file_token, env_token]):
            if not wait_for_log(name, "shoald ready"):
                continue
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
            secret = token.split(".", 1)[1] if "." in token else token
            if secret[:16] in cmdline:
                failures.append(f"{name}: the join token is visible in /proc/{proc.pid}/cmdline: {cmdline!r}")
            with open(f"/proc/{proc.pid}/environ", "rb") as f:
                if secret[:16].encode() in f.read():
                    failures.append(f"{name}: the join token is visible in /proc/{proc.pid}/environ")
        listed = ctl("--json", "node", "list")
        expect(listed, 0)
        ids = [n["id"] for n in json.loads(listed.stdout)["nodes"]] if listed.returncode == 0 else []
        if len(ids) != 3:
            failures.append(f"three nodes should have joined: {listed.stdout}")
        else:
            expect(ctl("node", "set-roles", str(ids[0]), "http,https,smtp,imap,pop3,ftp"), 0)
        # A header, and each column starts where its header does, however long the roles.
        table = ctl("node", "list")
        expect(table, 0, "ID", where="stdout")
        lines = table.stdout.splitlines()
        header = lines[0] if lines else ""
        if header.split() != ["ID", "HOSTNAME", "ADDRESS", "STATE", "ROLES", "OS", "LAST", "SEEN"]:
            failures.append(f"node list header: {header!r}")
        elif len(lines) != 4:
            failures.append(f"node list: {table.stdout!r}")
        else:
            os_at, roles_at = header.index(" OS ") + 1, header.index(" ROLES ") + 1
            for row in lines[1:]:
                if row[os_at - 1] != " " or row[os_at] == " " or row[roles_at - 1] != " ":
                    failures.append(f"node list columns do not line up:\n{table.stdout}")
                    break
            if "ftp,http,https,imap,pop3,smtp  " not in lines[1]:
                failures.append(f"node list: roles run into the next column:\n{table.stdout}")
        # A token file may stay in place: an enrolled node starts again without using it.
        nodes[1].send_signal(signal.SIGTERM)
        nodes[1].wait(timeout=30)
        nodes[1] = start_node("node-file", ["--join-token-file", token_file])
        wait_for_log("node-file", "is not used")
        wait_for_log("node-file", "shoald ready")
    finally:
        for proc in nodes:
            proc.send_signal(signal.SIGTERM)
        for proc in nodes:
            proc.wait(timeout=30)
        # The app server below must be the only node.
        for node_id in ids:
            expect(ctl("node", "remove", str(node_id)), 0)
finally:
    manager.send_signal(signal.SIGTERM)
    manager.wait(timeout=30)

# AppServer0: a manager with app_server = true is also a node of its own cluster and applies
# commands itself.
with open(config, "a") as f:
    f.write("app_server = true\n")
manager = subprocess.Popen([shoald, "--config", config], stderr=subprocess.PIPE, text=True)
try:
    deadline = time.time() + 30
    listed = None
    while time.time() < deadline:
        listed = ctl("--json", "node", "list")
        if listed.returncode == 0 and json.loads(listed.stdout)["nodes"]:
            break
        time.sleep(0.2)
    nodes = json.loads(listed.stdout)["nodes"] if listed and listed.returncode == 0 else []
    if len(nodes) != 1 or nodes[0]["state"] != "online":
        failures.append(f"app server: node list {listed.stdout if listed else None}")
    added = ctl("--json", "queue", "add", "hello.greet", "--payload", '{"name":"zero"}', "--key", "z")
    expect(added, 0)
    command_id = json.loads(added.stdout)["id"] if added.returncode == 0 else 0
    state = None
    while time.time() < deadline:
        shown = json.loads(ctl("--json", "queue", "show", str(command_id)).stdout)
        state = shown["deliveries"][0]["state"]
        if state == "done":
            if "Hello, zero" not in shown["deliveries"][0]["output"]:
                failures.append(f"app server output: {shown}")
            break
        time.sleep(0.1)
    if state != "done":
        failures.append(f"app server did not apply the command: {state}")

    # A plugin's own API endpoint (ABI 1.1): hello enqueues through the host and lists counts.
    greeted = ctl("api", "POST", "/v1/plugins/hello/greetings", "--body", '{"name":"api"}')
    expect(greeted, 0, '"deliveries":1', where="stdout")
    expect(ctl("api", "POST", "/v1/plugins/hello/greetings", "--body", '{"name":"no spaces"}'), 1, "must be 1-64")
    counted = None
    while time.time() < deadline:
        counted = ctl("api", "GET", "/v1/plugins/hello/greetings")
        if '"name":"api"' in counted.stdout:
            break
        time.sleep(0.1)
    expect(counted, 0, '"name":"api"', where="stdout")
    expect(ctl("api", "GET", "/v1/plugins/nosuch/x"), 4, "no loaded plugin serves /v1/plugins/nosuch")
    expect(ctl("api", "PATCH", "/v1/cluster"), 2, "api needs a method")
    expect(ctl("lb", "list"), 4, "no loaded plugin serves /v1/plugins/lvs")
    expect(ctl("lb", "add", "--service", "http"), 2, "name the virtual service with one of -t")
    expect(ctl("health"), 0, "no probed services", where="stdout")
    expect(ctl("health", "maintenance", "1", "hello", "sometimes"), 2, "must be on or off")
finally:
    manager.send_signal(signal.SIGTERM)
    _, manager_log = manager.communicate(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

# The manager enrolled its own node: examples/hello's node.joined hook ran and logged it.
if "a node joined: " not in manager_log or '"reason":"enrolled"' not in manager_log:
    failures.append("examples/hello's node.joined hook did not log the app server's enrolment")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("ok")
