#!/usr/bin/env python3
"""`shoalctl lb` against a manager that is its own director (AppServer0) on loopback, with the
userspace dataplane: every verb, --json, the error messages and exit codes, and that a
virtual service really forwards once added. The schedulers and forwarding methods are the
plugin's one list: `lb schema` prints what GET /v1/plugins/lvs/schema gives, the panel offers
the same, the refusals name the same, and shoalctl's help carries no copy of them.

  lvs_cli_test.py SHOALD SHOALCTL PLUGIN_DIR [STORE]   (PLUGIN_DIR holds lvs.so;
                                                      STORE: sqlite (default) | mysql://...?socket=)
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

shoald, shoalctl, plugin_dir = sys.argv[1:4]
store = sys.argv[4] if len(sys.argv) > 4 else "sqlite"
if store.startswith("mysql://"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
    from harness import empty_mysql_database  # noqa: E402
    empty_mysql_database(store)
work = tempfile.mkdtemp(prefix="shoal-lb-cli-")
failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


api_port, vip_port = free_port(), free_port()
VIP = "127.0.0.1"
config = os.path.join(work, "shoald.conf")
with open(config, "w") as f:
    f.write(f"[shoald]\nrole = manager\ndata_dir = {work}/data\nplugin_dir = {plugin_dir}\nstore = {store}\n"
            f"api_listen = 127.0.0.1\napi_port = {api_port}\nadvertise_address = 127.0.0.1\napp_server = true\n"
            f"[plugin.lvs]\ndataplane = userspace\nreconcile_interval_ms = 1000\n")
env = dict(os.environ, SHOAL_MANAGER=f"127.0.0.1:{api_port}", SHOAL_CA=f"{work}/data/tls/ca.crt",
           SHOAL_TOKEN_FILE=f"{work}/data/admin.token")
env.pop("SHOAL_TOKEN", None)


def ctl(*args):
    return subprocess.run([shoalctl] + list(args), capture_output=True, text=True, timeout=30, env=env)


def metrics():
    """The manager's /metrics text, read with the admin token over the cluster's CA."""
    context = ssl.create_default_context(cafile=f"{work}/data/tls/ca.crt")
    context.check_hostname = False
    with open(f"{work}/data/admin.token") as f:
        token = f.read().strip()
    request = urllib.request.Request(f"https://127.0.0.1:{api_port}/metrics",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        return answer.read().decode()


def expect(result, code, text=None, where="stderr"):
    out = getattr(result, where)
    if result.returncode != code or (text and text not in out):
        failures.append(f"{result.args[1:]}: exit {result.returncode} (expected {code}), {where}: {out.strip()!r}"
                        + (f", expected to contain {text!r}" if text else ""))
    return result


# Two backends that say who they are.
def backend(name):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(name.encode())
    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def ask():
    with socket.create_connection((VIP, vip_port), timeout=2) as s:
        return s.recv(64).decode()


(b1, p1), (b2, p2) = backend("one"), backend("two")
log = open(os.path.join(work, "shoald.log"), "w")
manager = subprocess.Popen([shoald, "--config", config], stdout=log, stderr=log)
try:
    deadline = time.time() + 30
    while time.time() < deadline:
        nodes = ctl("--json", "node", "list")
        if nodes.returncode == 0 and json.loads(nodes.stdout)["nodes"]:
            break
        time.sleep(0.2)
    node_id = json.loads(nodes.stdout)["nodes"][0]["id"]

    svc = f"{VIP}:{vip_port}"
    # Before any director exists the policy is stored and the reply says what to do.
    expect(ctl("lb", "add", "-t", svc, "--service", "http", "-s", "rr", "-p", "0", "-m"), 0, "give a node the role 'director'")
    expect(ctl("lb", "add", "-t", svc, "--service", "http"), 1, "already exists")
    expect(ctl("node", "set-roles", str(node_id), "director"), 0)
    expect(ctl("lb", "sync"), 0, "sent to the director as command", where="stdout")
    expect(ctl("lb", "add-server", "-t", svc, "-r", f"127.0.0.1:{p1}", "-w", "1", "-m"), 0)
    expect(ctl("lb", "add-server", "-t", svc, "-r", f"127.0.0.1:{p2}", "-m"), 0)
    expect(ctl("lb", "add-server", "-t", svc, "-r", f"127.0.0.1:{p2}", "-m"), 1, "already in")

    # Both real servers held by the dataplane (the second add-server's table may still be on
    # its way) before round robin is judged.
    deadline = time.time() + 15
    while time.time() < deadline:
        held = json.loads(ctl("--json", "lb", "list").stdout)["services"][0]["members"]
        if len(held) == 2 and all("counters" in m for m in held):
            break
        time.sleep(0.1)
    answers = []
    while time.time() < deadline and len(answers) < 6:
        try:
            answers.append(ask())
        except OSError:
            time.sleep(0.1)
    if sorted(answers) != ["one", "one", "one", "two", "two", "two"]:
        failures.append(f"round robin through the userspace dataplane: {answers}")

    listed = expect(ctl("--json", "lb", "list"), 0)
    if listed.returncode == 0:
        body = json.loads(listed.stdout)
        service = body["services"][0]
        if body.get("dataplane") != "userspace" or service["key"] != f"tcp:{svc}" or len(service["members"]) != 2:
            failures.append(f"lb list --json: {body}")
        if service.get("counters", {}).get("connections", 0) < 6:
            failures.append(f"counters did not count the connections: {service.get('counters')}")
    expect(ctl("lb", "list"), 0, f"TCP  {svc} rr", where="stdout")
    if listed.returncode == 0 and json.loads(listed.stdout)["services"][0].get("status") != "applied":
        failures.append(f"a service the director holds is not 'applied': {listed.stdout}")
    expect(ctl("lb", "list", "--stats"), 0, "Conns", where="stdout")

    # Refused at the API, where it is knowable: udp on the userspace dataplane, and passive
    # FTP through a firewall-mark group without persistence.
    expect(ctl("lb", "add", "-u", f"{VIP}:53", "--service", "dns"), 1,
           "udp is not supported by the userspace dataplane")
    expect(ctl("lb", "add", "-f", "5", "--listen", f"{VIP}:21,{VIP}:30000", "--service", "ftp", "-p", "0"), 1,
           "needs 'persistence' above 0")

    # A port held by another socket fails only its own service: accepted (the manager cannot
    # know), reported with its reason, and the others keep being applied.
    squatter = socket.socket()
    squatter.bind((VIP, 0))
    squatter.listen(1)
    busy = squatter.getsockname()[1]
    busy_key = f"tcp:{VIP}:{busy}"
    expect(ctl("lb", "add", "-t", f"{VIP}:{busy}", "--service", "http", "-s", "rr", "-p", "0", "-m"), 0)
    expect(ctl("lb", "add-server", "-t", f"{VIP}:{busy}", "-r", f"127.0.0.1:{p1}", "-m"), 0)

    def status_of(key):
        body = json.loads(ctl("--json", "lb", "list").stdout)
        return next((s for s in body["services"] if s["key"] == key), {})
    deadline = time.time() + 10
    while time.time() < deadline and status_of(busy_key).get("status") != "failed":
        time.sleep(0.2)
    bad = status_of(busy_key)
    if bad.get("status") != "failed" or "Address already in use" not in bad.get("error", ""):
        failures.append(f"the service on a port in use is not reported failed with its reason: {bad}")
    expect(ctl("lb", "list"), 0, "!! not applied on the director: cannot listen on", where="stdout")
    # The same on /metrics, in the plugin's own families (ABI 1.3 plugin metrics).
    exposition = metrics()
    if f'shoal_lvs_service_failed{{virtual_service="{busy_key}"}} 1' not in exposition or \
            f'shoal_lvs_service_failed{{virtual_service="tcp:{svc}"}} 0' not in exposition or \
            "# TYPE shoal_lvs_services gauge" not in exposition:
        failures.append("/metrics does not show the failing service as shoal_lvs_service_failed 1 and the "
                        "applied one as 0: " + "; ".join(l for l in exposition.splitlines() if "shoal_lvs_serv" in l))

    expect(ctl("lb", "list", "--rate"), 0, "CPS", where="stdout")

    # One list of schedulers and forwarding methods, the plugin's.
    schema_run = expect(ctl("--json", "lb", "schema"), 0)
    schema = json.loads(schema_run.stdout) if schema_run.returncode == 0 else {}
    schedulers = [c["name"] for c in schema.get("schedulers", [])]
    methods = [c["name"] for c in schema.get("forwarding", [])]
    if schedulers != ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"] or \
            schema.get("default_scheduler") != "wlc" or methods != ["dr", "nat", "tun"] or \
            schema.get("default_forwarding") != "dr":
        failures.append(f"GET /v1/plugins/lvs/schema: {schema}")
    raw = expect(ctl("api", "GET", "/v1/plugins/lvs/schema"), 0, where="stdout")
    if raw.returncode == 0 and json.loads(raw.stdout) != schema:
        failures.append(f"lb schema --json differs from the route: {raw.stdout!r}")
    printed = expect(ctl("lb", "schema"), 0, "Schedulers (default wlc):", where="stdout")
    for c in schema.get("schedulers", []) + schema.get("forwarding", []):
        if not any(line.split(None, 1) == [c["name"], c["label"]] for line in printed.stdout.splitlines()):
            failures.append(f"lb schema does not print {c}: {printed.stdout!r}")
    usage = subprocess.run([shoalctl, "--help"], capture_output=True, text=True, timeout=30, env=env)
    if "lb schema" not in usage.stdout + usage.stderr or "rr wrr" in usage.stdout + usage.stderr:
        failures.append("shoalctl --help should point to `lb schema` and carry no copy of the schedulers")
    panels = expect(ctl("api", "GET", "/v1/panels"), 0, where="stdout")
    if panels.returncode == 0:
        balancer = next(p for p in json.loads(panels.stdout)["panels"] if p["plugin"] == "lvs")
        forms = {s["id"]: s for s in balancer["definition"]["sections"] if s["type"] == "form"}
        offered = {f["name"]: [o["value"] if isinstance(o, dict) else o for o in f["options"]] for f in forms.get("add-service", {}).get("fields", [])
                   if f["type"] == "select"}
        if offered.get("scheduler") != schedulers or offered.get("forwarding") != methods:
            failures.append(f"the panel offers other lists than the schema: {offered}")

    # Validation names the field; exit 1 (refused by the manager) or 2 (bad usage).
    expect(ctl("lb", "edit", "-t", svc, "-s", "fastest"), 1, "'scheduler' 'fastest' is not one of " + ", ".join(schedulers))
    expect(ctl("lb", "edit", "-t", svc, "--service", "http"), 0)
    refused = expect(ctl("api", "PUT", f"/v1/plugins/lvs/services/tcp:{svc}", "--body", '{"forwarding": "direct"}'), 1)
    if not methods or "must be " + ", ".join(methods[:-1]) + " or " + methods[-1] + ", not 'direct'" not in refused.stderr:
        failures.append(f"a bad forwarding method is refused naming the list: {refused.stderr!r}")
    expect(ctl("lb", "edit", "-t", svc, "-M", "255.0.255.0", "-p", "60"), 1, "'netmask'")
    expect(ctl("lb", "add", "-t", "192.0.2.300:80", "--service", "http"), 1, "is not an IPv4 or IPv6 address")
    expect(ctl("lb", "add", "-t", f"{VIP}:81"), 2, "needs --service")
    expect(ctl("lb", "add-server", "-t", svc, "-r", "127.0.0.1:8080", "-w", "70000"), 2, "-w '70000'")
    expect(ctl("lb", "edit-server", "-t", svc, "-r", "127.0.0.1:9", "-w", "2"), 4, "no real server 127.0.0.1:9")
    expect(ctl("lb", "delete", "-t", f"{VIP}:1"), 4, f"no virtual service tcp:{VIP}:1")
    expect(ctl("lb", "frob"), 2, "unknown command 'lb frob'")
    expect(ctl("lb", "edit", "--service", "http"), 2, "name the virtual service with one of -t")

    # Weight 0 drains: every new connection goes to the other real server.
    expect(ctl("lb", "edit-server", "-t", svc, "-r", f"127.0.0.1:{p1}", "-w", "0"), 0)
    time.sleep(1)
    drained = [ask() for _ in range(4)]
    if drained != ["two"] * 4:
        failures.append(f"after weight 0 on 'one': {drained}")
    # That drain went to the director after the failing service: no delivery of lvs.apply
    # failed, and the queue's ordering key is not blocked.
    queue = json.loads(ctl("--json", "queue", "list", "--limit", "100").stdout)
    applies = [d for c in queue["commands"] if c["kind"] == "lvs.apply" for d in c["deliveries"]]
    if len(applies) < 3:
        failures.append(f"expected the lvs.apply deliveries in the queue: {queue}")
    for delivery in applies:
        if delivery["state"] != "done":
            failures.append(f"lvs.apply delivery not done: {delivery}")
        elif '"lvs_apply"' not in delivery["output"]:
            failures.append(f"lvs.apply output without its JSON report: {delivery}")
    reported = [json.loads(d["output"].splitlines()[-1])["lvs_apply"] for d in applies
                if d["state"] == "done" and d["output"].splitlines()[-1:] and d["output"].splitlines()[-1].startswith("{")]
    if not any(f["virtual_service"] == busy_key and "Address already in use" in f["error"]
               for r in reported for f in r["failed"]):
        failures.append(f"no lvs.apply output reports {busy_key} failed: {reported}")
    # The freed port heals by itself within a reconcile interval or two.
    squatter.close()
    deadline = time.time() + 10
    while time.time() < deadline and status_of(busy_key).get("status") != "applied":
        time.sleep(0.2)
    if status_of(busy_key).get("status") != "applied":
        failures.append(f"the freed port was not applied by the reconciler: {status_of(busy_key)}")
    else:
        with socket.create_connection((VIP, busy), timeout=2) as s:
            if s.recv(64).decode() != "one":
                failures.append("the healed service does not forward")
    expect(ctl("lb", "delete", "-t", f"{VIP}:{busy}"), 0)

    # Concurrent add-server calls on one policy: each is a read-modify-write in one
    # transaction with the expected revision, so none is lost.
    crowd = f"{VIP}:{free_port()}"
    expect(ctl("lb", "add", "-t", crowd, "--service", "smtp", "-s", "rr", "-p", "0", "-m"), 0)
    start = threading.Barrier(16)
    results = [None] * 16

    def add_member(i):
        start.wait()
        results[i] = ctl("lb", "add-server", "-t", crowd, "-r", f"127.0.0.1:{20000 + i}", "-m")
    threads = [threading.Thread(target=add_member, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        expect(r, 0)
    members = status_of(f"tcp:{crowd}").get("members", [])
    if sorted(m["port"] for m in members) != list(range(20000, 20016)):
        failures.append(f"concurrent add-server lost members: {len(members)} of 16 present: "
                        f"{sorted(m['port'] for m in members)}")
    expect(ctl("lb", "delete", "-t", crowd), 0)

    expect(ctl("lb", "zero"), 0, "sent as command", where="stdout")

    # Deleting the service closes its listener.
    expect(ctl("lb", "delete", "-t", svc), 0, f"deleted tcp:{svc}", where="stdout")
    deadline = time.time() + 10
    closed = False
    while time.time() < deadline and not closed:
        try:
            ask()
            time.sleep(0.1)
        except OSError:
            closed = True
    if not closed:
        failures.append("the virtual service still answers after delete")
    expect(ctl("lb", "list"), 0, "no virtual services", where="stdout")
finally:
    manager.send_signal(signal.SIGTERM)
    manager.wait(timeout=30)
    log.close()
    if failures:
        print(open(os.path.join(work, "shoald.log")).read()[-4000:])
    shutil.rmtree(work, ignore_errors=True)

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("ok")
