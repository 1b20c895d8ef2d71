#!/usr/bin/env python3
"""The panel's server side against a real cluster (tests/panel/cluster.py): signing in with the
first admin's one-time password, session cookies and CSRF tokens, the login rate limit, the
audit log, `shoalctl user`, the static pages and their headers, plugins' panels (markup in
values comes back as data, never interpreted), the balancer's statistics from real traffic
into RRD files and graphs, and /metrics both authenticated and on its own listener.

  panel_api_test.py SHOALD SHOALCTL PLUGIN_DIR WEB_DIR
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402

failures = []



def free_ports(count):
    """`count` distinct loopback ports nobody listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()

def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return condition


class Browser:
    """What a browser does: one cookie jar, JSON bodies, the CSRF header when it has one."""

    def __init__(self, cluster):
        self.host, self.port = "127.0.0.1", cluster.api_port
        self.context = ssl.create_default_context(cafile=cluster.state()["ca"])
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, raw=False, cookie=True, csrf=True):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
        h = {"Content-Type": "application/json"}
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        if raw:
            return r, payload
        try:
            return r, json.loads(payload) if payload else {}
        except ValueError:
            return r, {"raw": payload}

    def login(self, user, password):
        r, body = self.request("POST", "/v1/session", {"user": user, "password": password}, cookie=False)
        if r.status == 200:
            cookie = r.getheader("Set-Cookie")
            self.cookie = cookie.split(";")[0]
            self.csrf = body["csrf_token"]
        return r, body


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def main():
    shoald, shoalctl, plugin_dir, web_dir = sys.argv[1:5]
    cluster = Cluster(shoald, shoalctl, plugin_dir, web_dir)
    try:
        cluster.start()
        run(cluster)
    finally:
        cluster.stop()
    if failures:
        print(f"{len(failures)} failure(s); logs in {cluster.work}")
        sys.exit(1)
    shutil.rmtree(cluster.work, ignore_errors=True)
    print("panel API: all checks passed")


def run(cluster):
    b = Browser(cluster)

    # ---- the first admin and signing in ----
    check("one-time password" in cluster.log("manager"), "the first start prints the admin's one-time password")
    r, body = b.request("POST", "/v1/session", {"user": "admin", "password": "wrong-password"}, cookie=False)
    check(r.status == 401 and "wrong user name or password" in body["error"]["message"], f"wrong password: {r.status}")
    r, body = b.request("POST", "/v1/session", json.dumps({"user": "admin", "password": cluster.admin_password}),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, cookie=False)
    check(r.status == 400, f"a sign-in that is not JSON is refused (a cross-site form cannot send JSON): {r.status}")
    r, body = b.login("admin", cluster.admin_password)
    check(r.status == 200, f"admin signs in with the one-time password: {r.status} {body}")
    cookie = r.getheader("Set-Cookie") or ""
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        check(attribute in cookie, f"the session cookie is {attribute}: {cookie}")
    check(len(b.csrf or "") >= 32, "a CSRF token comes with the session")

    r, body = b.request("GET", "/v1/session")
    check(r.status == 200 and body["user"]["name"] == "admin" and body["csrf_token"] == b.csrf, f"GET /v1/session: {body}")
    r, body = Browser(cluster).request("GET", "/v1/session", cookie=False)
    check(r.status == 200 and body == {"user": None}, f"GET /v1/session signed out says only that: {body}")
    r, body = b.request("GET", "/v1/session", headers={"Cookie": "shoal_session=forged"}, cookie=False)
    check(r.status == 200 and body == {"user": None}, f"a forged session cookie is nobody: {body}")
    r, body = b.request("GET", "/v1/nodes")
    check(r.status == 200 and len(body["nodes"]) == 3, f"a session reads the API: {r.status}")

    # ---- CSRF: a change needs the session's token ----
    r, body = b.request("POST", "/v1/join-tokens", {}, csrf=False)
    check(r.status == 403 and body["error"]["code"] == "csrf", f"a change without the CSRF token is refused: {r.status}")
    r, body = b.request("POST", "/v1/join-tokens", {}, headers={"X-CSRF-Token": "not-the-token"}, csrf=False)
    check(r.status == 403, f"a change with a wrong CSRF token is refused: {r.status}")
    r, body = b.request("POST", "/v1/join-tokens", {})
    check(r.status == 201 and "token" in body, f"a change with the CSRF token works: {r.status} {body}")

    # ---- users, through the API and shoalctl ----
    r, body = b.request("POST", "/v1/users", {"name": "<b>eve</b>", "password": "long enough password"})
    check(r.status == 400 and "name" in body["error"]["message"], f"a user name with markup is refused: {body}")
    r, body = b.request("POST", "/v1/users", {"name": "carol", "password": "short"})
    check(r.status == 400 and "password" in body["error"]["message"], f"a short password is refused: {body}")
    res = cluster.ctl("user", "add", "alice", stdin="alice's long password\n")
    check(res.returncode == 0, f"shoalctl user add: {res.stderr}")
    res = cluster.ctl("user", "add", "alice", stdin="alice's long password\n")
    check(res.returncode == 1 and "alice" in res.stderr, f"shoalctl user add twice: {res.returncode} {res.stderr}")
    res = cluster.ctl("--json", "user", "list")
    check(res.returncode == 0 and {"admin", "alice"} <= {u["name"] for u in json.loads(res.stdout)["users"]},
          f"shoalctl user list: {res.stdout}")
    alice = Browser(cluster)
    r, _ = alice.login("alice", "alice's long password")
    check(r.status == 200, "alice signs in")
    res = cluster.ctl("user", "passwd", "alice", stdin="alice's new password\n")
    check(res.returncode == 0, f"shoalctl user passwd: {res.stderr}")
    r, _ = alice.request("GET", "/v1/nodes")
    check(r.status == 401, f"a password change ends the user's sessions: {r.status}")

    # ---- the login rate limit ----
    mallory = Browser(cluster)
    statuses = [mallory.request("POST", "/v1/session", {"user": "alice", "password": f"guess {i}"}, cookie=False)[0]
                for i in range(6)]
    check([s.status for s in statuses[:5]] == [401] * 5, f"five wrong passwords: {[s.status for s in statuses]}")
    check(statuses[5].status == 429 and int(statuses[5].getheader("Retry-After") or 0) > 0,
          f"the sixth attempt is limited with Retry-After: {statuses[5].status}")
    r, _ = mallory.login("alice", "alice's new password")
    check(r.status == 429, f"even the right password waits out the limit: {r.status}")

    # ---- the audit log says who changed what ----
    r, body = b.request("GET", "/v1/audit?limit=200")
    entries = body.get("entries", [])
    check(any(e["actor"] == "user:admin" and e["action"] == "POST /v1/join-tokens" and e["outcome"] == "ok"
              for e in entries), "the audit log records admin's join token")
    check(any(e["actor"] == "user:admin" and e["outcome"] == "refused" and e["status"] == 403 for e in entries),
          "the audit log records the refused CSRF-less change")
    check(any(e["actor"] == "token:admin" and e["action"] == "POST /v1/users" for e in entries),
          "the audit log records shoalctl's user add as the admin token")
    check(any(e["action"] == "sign in" and e["outcome"] == "refused" and e["actor"] == "user:alice" for e in entries),
          "the audit log records failed sign-ins")
    typed = "<b>é v</b>"
    Browser(cluster).request("POST", "/v1/session", {"user": typed, "password": "whatever"}, cookie=False)
    r, body = b.request("GET", "/v1/audit?limit=1")
    last = body["entries"][0]
    check(last["actor"] == "anonymous" and last["target"] == "user name as typed: " + typed and last["status"] == 401,
          f"a sign-in as a name no user can have is recorded with the name as typed: {last}")

    # ---- pages and headers ----
    r, page = b.request("GET", "/panel/", raw=True, cookie=False)
    check(r.status == 200 and r.getheader("Content-Type", "").startswith("text/html") and b"<meta charset=\"utf-8\">" in page,
          f"the panel's page is served to anyone: {r.status}")
    csp = r.getheader("Content-Security-Policy") or ""
    check("script-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"the page carries a strict CSP: {csp}")
    check(r.getheader("X-Content-Type-Options") == "nosniff", "nosniff")
    r, _ = b.request("GET", "/", raw=True, cookie=False)
    check(r.status == 302 and r.getheader("Location") == "/panel/", f"/ leads to the panel: {r.status}")
    for path in ("/panel/../manager/admin.token", "/panel/%2e%2e/%2e%2e/etc/passwd", "/panel/.hidden", "/panel/js/../../x"):
        r, _ = b.request("GET", path, raw=True, cookie=False)
        check(r.status == 404, f"{path} is not served: {r.status}")

    # ---- plugins' panels: declarations and data; markup is data ----
    r, body = b.request("GET", "/v1/panels")
    panels = {(p["plugin"], p["id"]) for p in body.get("panels", [])}
    for expected in (("lvs", "balancer"), ("http", "status"), ("smtp", "status"), ("imap", "status"),
                     ("pop3", "status"), ("ftp", "status"), ("hello", "greetings"), ("markup", "markup")):
        check(expected in panels, f"panel {expected} is offered")
    r, body = b.request("GET", "/v1/panels/http/status/sections/nodes")
    rows = body.get("rows", [])
    check(r.status == 200 and {row["address"] for row in rows if row["service"] == "http"} == set(cluster.node_addresses),
          f"the http panel shows http on every node: {body}")
    r, body = b.request("POST", "/v1/panels/hello/greetings/actions/greet", {"name": "visitor"})
    check(r.status == 200 and "visitor" in body.get("message", ""), f"the hello panel's form runs: {r.status} {body}")
    r, body = b.request("GET", "/v1/panels/hello/greetings/sections/counts")
    check(any(row.get("name") == "visitor" for row in body.get("rows", [])), f"and its table shows it: {body}")
    r, body = b.request("POST", "/v1/panels/hello/greetings/actions/greet", {"name": "<b>x</b>"})
    check(r.status == 400, f"the plugin's own validation answers 400: {r.status} {body}")
    r, raw = b.request("GET", "/v1/panels/markup/markup/sections/rows", raw=True)
    check(r.getheader("Content-Type") == "application/json" and b"<img src=x" in raw,
          "a plugin's value with markup comes back as JSON data, never as a page")
    r, body = b.request("POST", "/v1/panels/hello/greetings/actions/no-such-action", {})
    check(r.status == 404, f"an unknown action is refused: {r.status}")
    r, body = b.request("GET", "/v1/panels/hello/no-such-panel/sections/counts")
    check(r.status == 404, f"an unknown panel: {r.status}")

    # ---- the balancer's panel: a firewall-mark group through its actions ----
    # (Listeners the userspace director can really open: a table it cannot apply would hold
    # up the applies that follow.)
    lvs_panel = "/v1/panels/lvs/balancer"
    first_port, second_port = free_ports(2)
    r, body = b.request("POST", f"{lvs_panel}/actions/add-service",
                        {"kind": "fwm", "fwmark": 7, "listeners": [f"127.0.0.1:{first_port}", f"127.0.0.1:{second_port}"],
                         "service": "http", "scheduler": "sh", "persistence": 60, "forwarding": "dr"})
    check(r.status == 200 and "Added fwm:7" in body.get("message", ""), f"a firewall-mark group from the form: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/add-server", {"row": "fwm:7", "address": "127.0.0.2", "weight": 2})
    check(r.status == 200, f"a real server from its row, port left empty: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/edit-service",
                        {"row": "fwm:7", "listeners": [f"127.0.0.1:{first_port}"], "service": "http", "netmask": ""})
    check(r.status == 200, f"its listeners edited: {r.status} {body}")
    r, body = b.request("GET", f"{lvs_panel}/sections/services")
    group = next((row for row in body.get("rows", []) if row.get("key") == "fwm:7"), {})
    check(group.get("kind") == "fwm" and group.get("listeners") == [f"127.0.0.1:{first_port}"] and group.get("scheduler") == "sh"
          and [s.get("server") for s in group.get("servers", [])] == ["127.0.0.2:0"]
          and group["servers"][0].get("weight") == 2 and "note" in body,
          f"the table shows it with its real server nested: {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/edit-service", {"row": "fwm:7", "scheduler": "fastest"})
    check(r.status == 400 and "is not one of rr, wrr" in body.get("error", {}).get("message", ""),
          f"a refusal from the panel names the plugin's list: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/add-server", {"address": "127.0.0.3"})
    check(r.status == 400 and "'row'" in body.get("error", {}).get("message", ""), f"a row action needs its row: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/delete-server", {"row": "127.0.0.2:0", "parent": "fwm:7"})
    check(r.status == 200, f"the real server removed from its row: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/delete-service", {"row": "fwm:7"})
    check(r.status == 200 and "Deleted fwm:7" in body.get("message", ""), f"and the group deleted: {r.status} {body}")
    r, body = b.request("POST", f"{lvs_panel}/actions/frob", {})
    check(r.status == 404, f"an unknown balancer action: {r.status}")

    # ---- statistics: real traffic through the director, into RRD files ----
    vip = f"tcp:127.0.0.1:{cluster.vip_port}"
    r, body = b.request("POST", "/v1/plugins/lvs/services",
                        {"service": "http", "protocol": "tcp", "address": "127.0.0.1", "port": cluster.vip_port,
                         "scheduler": "rr", "persistence": 0, "forwarding": "nat",
                         "members": [{"address": a, "port": cluster.web_port, "weight": 1} for a in cluster.node_addresses]})
    check(r.status == 201, f"a policy is created through the session: {r.status} {body}")
    cluster.wait("the virtual service forwards", lambda: fetch(cluster.vip_port).startswith("served by"))
    for _ in range(20):
        fetch(cluster.vip_port)
    series = f"lvs.service.{vip}"

    # The traffic has stopped: the director's next samples carry exactly the totals its
    # dataplane counted, and the RRD file's last update must hold those very numbers.
    path = "/v1/plugins/lvs/services/" + urllib.parse.quote(vip, safe="")

    def same_totals():
        r, lb = b.request("GET", path)
        live = lb.get("counters") or {}
        r, body = b.request("GET", "/v1/stats/series")
        mine = next((s for s in body["series"] if s["series"] == series), None)
        if not mine or live.get("connections", 0) < 21:
            return None
        pairs = [("conns", "connections"), ("packets_in", "packets_in"), ("packets_out", "packets_out"),
                 ("bytes_in", "bytes_in"), ("bytes_out", "bytes_out")]
        return (lb, mine) if all(mine[a] == live[b_] for a, b_ in pairs) else None

    lb, mine = cluster.wait("the RRD file to hold the dataplane's totals", same_totals, timeout=30)
    check(lb.get("stats_series") == series, f"the policy names its series: {lb.get('stats_series')}")
    check(mine["conns"] >= 21 and mine["bytes_out"] > 0, f"the recorded totals are real traffic: {mine}")
    members = [m for m in lb["members"]]
    for m in members:
        r, body = b.request("GET", "/v1/stats/series")
        recorded = next((s for s in body["series"] if s["series"] == m["stats_series"]), None)
        check(recorded is not None and recorded["conns"] == m["counters"]["connections"],
              f"real server {m['address']}: the RRD holds its {m['counters']['connections']} connections: {recorded}")
    rrd = os.path.join(cluster.data, "rrd", series + ".rrd")
    check(os.path.isfile(rrd), f"the series has its RRD file {rrd}")

    for rng in ("hour", "day", "week", "month", "year"):
        r, image = b.request("GET", f"/v1/stats/graph?series={urllib.parse.quote(series)}&range={rng}", raw=True)
        size = png_size(image)
        check(r.status == 200 and r.getheader("Content-Type") == "image/png" and size and size[0] > 640,
              f"a {rng} graph is a PNG image: {r.status} {size}")
    r, image = b.request("GET", f"/v1/stats/graph?series={urllib.parse.quote(series)}&format=svg&metric=bytes", raw=True)
    check(r.status == 200 and b"<svg" in image[:2000], "an SVG graph")
    r, body = b.request("GET", "/v1/stats/graph?series=lvs.service.tcp:192.0.2.1:1")
    check(r.status == 404, f"a graph of an unknown series: {r.status}")
    r, body = b.request("GET", f"/v1/stats/graph?series={urllib.parse.quote(series)}&range=decade")
    check(r.status == 400 and "range" in body["error"]["message"], f"a bad range is named: {body}")

    # A manager restart: the session, the RRD files and the sampling all carry on.
    before = next(x for x in b.request("GET", "/v1/stats/series")[1]["series"] if x["series"] == series)
    cluster.restart_manager()
    r, _ = b.request("GET", "/v1/nodes")
    check(r.status == 200, f"a session outlives a manager restart: {r.status}")
    for _ in range(5):
        fetch(cluster.vip_port)

    def sampled_again():
        r, body = b.request("GET", "/v1/stats/series")
        now = next((x for x in body["series"] if x["series"] == series), None)
        return now if now and now["last_update"] > before["last_update"] else None

    after = cluster.wait("samples after the restart", sampled_again, timeout=30)
    check(after is not None, f"the series is still there and updated after the restart: {before} -> {after}")
    r, image = b.request("GET", f"/v1/stats/graph?series={urllib.parse.quote(series)}&range=hour", raw=True)
    check(r.status == 200 and png_size(image), "its graph draws after the restart")

    # A deleted policy keeps its history.
    r, _ = b.request("DELETE", "/v1/plugins/lvs/services/" + urllib.parse.quote(vip, safe=""))
    check(r.status == 200, f"the policy is deleted: {r.status}")
    r, image = b.request("GET", f"/v1/stats/graph?series={urllib.parse.quote(series)}&range=hour", raw=True)
    check(r.status == 200 and png_size(image), "a deleted policy's graph still draws from its kept file")

    # ---- /metrics ----
    r, body = Browser(cluster).request("GET", "/metrics", cookie=False)
    check(r.status == 401, f"/metrics on the API needs credentials: {r.status}")
    token = open(cluster.state()["token_file"]).read().strip()
    r, text = b.request("GET", "/metrics", raw=True, headers={"Authorization": f"Bearer {token}"}, cookie=False)
    text = text.decode()
    check(r.status == 200 and r.getheader("Content-Type", "").startswith("text/plain; version=0.0.4"),
          f"/metrics with the admin token: {r.status}")
    for needle in ('shoal_node_up{', 'shoal_service_healthy{', 'service="http"', 'shoal_queue_deliveries{state="failed"}',
                   f'shoal_lvs_connections_total{{series="{series}"'):
        check(needle in text, f"/metrics has {needle}")
    check("shoal_lb_" not in text, "no plugin's series is passed off as the kernel's balancer (shoal_lb_*)")
    conn = http.client.HTTPConnection("127.0.0.1", cluster.metrics_port, timeout=10)
    conn.request("GET", "/metrics")
    plain = conn.getresponse()
    check(plain.status == 200 and b"shoal_node_up" in plain.read(), "/metrics on the configured plain listener")

    # ---- signing out ----
    r, _ = b.request("DELETE", "/v1/session", csrf=False)
    check(r.status == 403, "signing out needs the CSRF token too")
    r, _ = b.request("DELETE", "/v1/session")
    check(r.status == 200 and "Max-Age=0" in (r.getheader("Set-Cookie") or ""), "signing out clears the cookie")
    r, _ = b.request("GET", "/v1/nodes")
    check(r.status == 401, f"the old session no longer opens anything: {r.status}")


def fetch(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
