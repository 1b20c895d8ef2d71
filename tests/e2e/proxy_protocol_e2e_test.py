#!/usr/bin/env python3
"""Client addresses through the userspace dataplane end to end: a manager (AppServer0, the
director, userspace dataplane) and a node, each in its own network namespace, the node with
a real nginx and a real postfix, and a client in a third namespace.

  proxy_protocol_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR   (PLUGIN_DIR: lvs, http, smtp)

The node's shoald is configured with [plugin.http] and [plugin.smtp] proxy_protocol_port
(and the director's address for nginx); at its start the plugins write nginx's snippet and
postfix's second smtpd and check them with nginx -t and postfix check; the daemons are
reloaded. Two policies with proxy_protocol v2 send the client's requests to those ports.
Proves that nginx's access log and postfix's smtpd log name the client namespace's address
(10.77.0.50), not the director's (10.77.0.1). Needs root, nginx, postfix and iproute2.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.dont_write_bytecode = True

from harness import Cluster, Failure, HarnessError, log  # noqa: E402
import daemons  # noqa: E402

VIP = "10.77.0.100"
CLIENT = "10.77.0.50"
NODE = "10.77.0.11"
WEB_PROXIED, SMTP_PROXIED = 8080, 10025


def client_http():
    with socket.create_connection((VIP, 80), timeout=3) as s:
        s.sendall(b"GET /through-the-vip HTTP/1.0\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    print(answer.decode("utf-8", "replace").splitlines()[0])


def client_smtp():
    with socket.create_connection((VIP, 25), timeout=3) as s:
        f = s.makefile("rwb")
        lines = [f.readline()]
        f.write(b"EHLO client.invalid\r\n")
        f.flush()
        while True:
            line = f.readline()
            lines.append(line)
            if not line or line[3:4] == b" ":
                break
        f.write(b"QUIT\r\n")
        f.flush()
        lines.append(f.readline())
    print(lines[-1].decode().strip())


def eventually(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def run(shoald, shoalctl, plugin_dir, root):
    nginx_dir = os.path.join(root, "nginx")
    os.makedirs(os.path.join(nginx_dir, "snippets"))
    postfix_dir = os.path.join(root, "postfix")
    node_plugins = (
        f"[plugin.http]\nproxy_protocol_port = {WEB_PROXIED}\nproxy_protocol_from = 10.77.0.1\n"
        f"proxy_protocol_snippet = {nginx_dir}/snippets/shoal-proxy-protocol.conf\n"
        f"proxy_protocol_check = nginx -t -p {nginx_dir}/ -c {nginx_dir}/nginx.conf\n"
        f"[plugin.smtp]\nproxy_protocol_port = {SMTP_PROXIED}\npostfix_config_directory = {postfix_dir}/conf\n")
    cluster = Cluster(shoald, shoalctl, plugin_dir, "sqlite", nodes=("n1",), prefix="shp",
                      manager_extra="app_server = true\n",
                      manager_plugin_extra="[plugin.lvs]\ndataplane = userspace\n",
                      node_plugin_extra={"n1": node_plugins})
    running = []
    failed = True
    try:
        cluster.net.add_host("c", 50)
        ns = cluster.net.hosts["n1"]["netns"]
        # The daemons first, with their plain ports, as a node has them before shoald starts.
        running.append(daemons.start_nginx(nginx_dir, NODE, http_port=80, body="n1\n", netns=ns,
                                           server_include=os.path.join(nginx_dir, "snippets", "*.conf")))
        running.append(daemons.start_postfix(postfix_dir, NODE, smtp_port=25, netns=ns))
        cluster.up()
        node_log = open(cluster.log_path("n1")).read()
        for expected in (f"nginx accepts the PROXY protocol on port {WEB_PROXIED}",
                         f"postfix accepts the PROXY protocol on port {SMTP_PROXIED}"):
            if expected not in node_log:
                raise Failure(f"the node never logged {expected!r}:\n{node_log[-3000:]}")
        subprocess.run(["ip", "netns", "exec", ns, "nginx", "-p", nginx_dir + "/", "-c",
                        os.path.join(nginx_dir, "nginx.conf"), "-s", "reload"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "postfix", "-c", os.path.join(postfix_dir, "conf"), "reload"],
                       check=True, capture_output=True)

        m_ns = cluster.net.hosts["m"]["netns"]
        subprocess.run(["ip", "netns", "exec", m_ns, "ip", "addr", "add", f"{VIP}/32", "dev", "eth0"], check=True)
        director = [n for n in cluster.api.call("GET", "/v1/nodes")[1]["nodes"] if n["address"] == "10.77.0.1"][0]
        ctl = lambda *a: cluster.shoalctl(*a)  # noqa: E731
        for args in (("node", "set-roles", str(director["id"]), "director"),
                     ("lb", "add", "-t", f"{VIP}:80", "--service", "http", "-s", "rr", "-p", "0",
                      "--proxy-protocol", "v2"),
                     ("lb", "add-server", "-t", f"{VIP}:80", "-r", f"{NODE}:{WEB_PROXIED}"),
                     ("lb", "add", "-t", f"{VIP}:25", "--service", "smtp", "-s", "rr", "-p", "0",
                      "--proxy-protocol", "v2"),
                     ("lb", "add-server", "-t", f"{VIP}:25", "-r", f"{NODE}:{SMTP_PROXIED}")):
            result = ctl(*args)
            if result.returncode != 0:
                raise Failure(f"shoalctl {' '.join(args)}: {result.stderr}{result.stdout}")

        def from_client(flag):
            r = subprocess.run(cluster.net.exec_prefix("c") + [sys.executable, os.path.abspath(__file__), flag],
                               capture_output=True, text=True, timeout=30)
            return r.stdout.strip() if r.returncode == 0 else ""

        status = eventually(lambda: from_client("--client-http"), 20)
        if "200" not in status:
            raise Failure(f"GET through {VIP}:80 answered {status!r}")
        access = os.path.join(nginx_dir, "access.log")
        line = eventually(lambda: next((l for l in open(access) if "/through-the-vip" in l), None), 5)
        log(f"nginx on n1 logged: {line.strip() if line else None}")
        if not line or not line.startswith(CLIENT + " "):
            raise Failure(f"nginx's access log should start with the client's {CLIENT}: {line!r}")

        reply = eventually(lambda: from_client("--client-smtp"), 20)
        if not reply.startswith("221"):
            raise Failure(f"SMTP through {VIP}:25 ended with {reply!r}")
        maillog = os.path.join(postfix_dir, "postfix.log")
        seen = eventually(lambda: next((l for l in open(maillog) if f"connect from" in l and f"[{CLIENT}]" in l), None), 5)
        log(f"postfix on n1 logged: {seen.strip() if seen else None}")
        if not seen:
            raise Failure(f"postfix's smtpd never logged a connection from [{CLIENT}]:\n{open(maillog).read()[-2000:]}")
        failed = False
    except (Failure, HarnessError, daemons.DaemonError, subprocess.CalledProcessError) as e:
        log(f"FAIL: {e}")
    finally:
        for daemon in reversed(running):
            try:
                daemon.stop()
            except daemons.DaemonError as e:
                log(str(e))
        if failed:
            for daemon in running:
                print(f"==== {daemon.name}\n{daemon.log_text()}")
        cluster.close(failed=failed)
    return 1 if failed else 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--client-http":
        client_http()
        return 0
    if len(sys.argv) == 2 and sys.argv[1] == "--client-smtp":
        client_smtp()
        return 0
    shoald, shoalctl, plugin_dir = sys.argv[1:4]
    root = tempfile.mkdtemp(prefix="shoal-proxy-e2e-")
    os.chmod(root, 0o755)  # postfix reaches its files as the postfix user
    try:
        return run(shoald, shoalctl, plugin_dir, root)
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
