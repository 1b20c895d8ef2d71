#!/usr/bin/env python3
"""A policy's "proxy_protocol" from `shoalctl lb` to the wire, through a real manager that is
its own director (AppServer0) on loopback:

- with the userspace dataplane, `lb add ... --proxy-protocol v2` is stored, shown by
  `lb list`, sent to the director through the Command Queue, and the real server (a
  loopback server here) receives a PROXY v2 header naming the client's own address
  (127.0.0.5) and the virtual service before the client's bytes; the member may listen on
  another port than the virtual service's without -m;
- with `dataplane = ipvs` the manager refuses the field with exit 1 and says why.

  proxy_protocol_cli_test.py SHOALD SHOALCTL PLUGIN_DIR   (PLUGIN_DIR holds lvs.so)
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

shoald, shoalctl, plugin_dir = sys.argv[1:4]
failures = []
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def free_port(address="127.0.0.1"):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Manager:
    def __init__(self, dataplane):
        self.work = tempfile.mkdtemp(prefix="shoal-lb-proxy-")
        api_port = free_port()
        config = os.path.join(self.work, "shoald.conf")
        with open(config, "w") as f:
            f.write(f"[shoald]\nrole = manager\ndata_dir = {self.work}/data\nplugin_dir = {plugin_dir}\n"
                    f"store = sqlite\napi_listen = 127.0.0.1\napi_port = {api_port}\n"
                    f"advertise_address = 127.0.0.1\napp_server = true\n"
                    f"[plugin.lvs]\ndataplane = {dataplane}\nreconcile_interval_ms = 1000\n")
        self.env = dict(os.environ, SHOAL_MANAGER=f"127.0.0.1:{api_port}", SHOAL_CA=f"{self.work}/data/tls/ca.crt",
                        SHOAL_TOKEN_FILE=f"{self.work}/data/admin.token")
        self.env.pop("SHOAL_TOKEN", None)
        self.log = open(os.path.join(self.work, "shoald.log"), "w")
        self.process = subprocess.Popen([shoald, "--config", config], stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            nodes = self.ctl("--json", "node", "list")
            if nodes.returncode == 0 and json.loads(nodes.stdout)["nodes"]:
                self.node_id = json.loads(nodes.stdout)["nodes"][0]["id"]
                return
            time.sleep(0.2)
        raise RuntimeError("the manager never listed its own node:\n" + self.log_text())

    def ctl(self, *args):
        return subprocess.run([shoalctl] + list(args), capture_output=True, text=True, timeout=30, env=self.env)

    def log_text(self):
        return open(os.path.join(self.work, "shoald.log")).read()[-4000:]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()
        if failures:
            print(self.log_text())
        shutil.rmtree(self.work, ignore_errors=True)


def expect(result, code, text=None, where="stderr"):
    out = getattr(result, where)
    if result.returncode != code or (text and text not in out):
        failures.append(f"{result.args[1:]}: exit {result.returncode} (expected {code}), {where}: {out.strip()!r}"
                        + (f", expected to contain {text!r}" if text else ""))
    return result


def recording_server():
    """A real server that records, per connection, everything it receives until EOF."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    received = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                received.append(data)
    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1], received


def parse_v2(data):
    """(source, source_port, destination, destination_port, rest) of an IPv4 v2 header."""
    if not data.startswith(SIGNATURE) or data[12] != 0x21 or data[13] != 0x11:
        return None
    length = struct.unpack("!H", data[14:16])[0]
    src, dst = socket.inet_ntoa(data[16:20]), socket.inet_ntoa(data[20:24])
    sport, dport = struct.unpack("!HH", data[24:28])
    return src, sport, dst, dport, data[16 + length:]


# ---- the userspace dataplane: the header reaches the real server -------------------------
manager = Manager("userspace")
try:
    server, real_port, received = recording_server()
    vip_port = free_port()
    svc = f"127.0.0.1:{vip_port}"
    expect(manager.ctl("node", "set-roles", str(manager.node_id), "director"), 0)
    expect(manager.ctl("lb", "add", "-t", svc, "--service", "smtp", "-s", "rr", "-p", "0",
                       "--proxy-protocol", "v2"), 0)
    # Another port than the virtual service's, under the default forwarding (dr).
    expect(manager.ctl("lb", "add-server", "-t", svc, "-r", f"127.0.0.1:{real_port}"), 0)
    expect(manager.ctl("lb", "list"), 0, f"TCP  {svc} rr proxy-protocol v2", where="stdout")
    listed = expect(manager.ctl("--json", "lb", "list"), 0)
    if listed.returncode == 0 and json.loads(listed.stdout)["services"][0].get("proxy_protocol") != "v2":
        failures.append(f"lb list --json lacks proxy_protocol v2: {listed.stdout}")

    header = None
    deadline = time.time() + 15
    while time.time() < deadline and header is None:
        try:
            with socket.socket() as client:
                client.bind(("127.0.0.5", 0))
                client.connect(("127.0.0.1", vip_port))
                client_port = client.getsockname()[1]
                client.sendall(b"EHLO client.invalid\r\n")
                client.shutdown(socket.SHUT_WR)
                client.settimeout(5)
                client.recv(16)
        except OSError:
            time.sleep(0.2)  # the director has not opened the listener yet
            continue
        end = time.time() + 5
        while not received and time.time() < end:
            time.sleep(0.05)
        header = parse_v2(received[-1]) if received else None
        if header is None:
            failures.append(f"the real server got no PROXY v2 header: {received[-1:]!r}")
            break
    if header is not None and header != ("127.0.0.5", client_port, "127.0.0.1", vip_port, b"EHLO client.invalid\r\n"):
        failures.append(f"the header says {header}, expected 127.0.0.5:{client_port} -> {svc} and the client's bytes")
    if header is None and not failures:
        failures.append("no connection through the virtual service within 15 s")

    # Off again by an edit; without the header, direct routing cannot move the member's port.
    expect(manager.ctl("lb", "edit", "-t", svc, "--proxy-protocol", "none"), 1,
           "direct routing and tunnelling cannot change the port")
    expect(manager.ctl("lb", "edit", "-t", svc, "--proxy-protocol", "none", "-m"), 0)
    expect(manager.ctl("lb", "list"), 0, f"TCP  {svc} rr  (smtp)", where="stdout")
    expect(manager.ctl("lb", "edit", "-t", svc, "--proxy-protocol", "v1"), 1,
           "'proxy_protocol' must be \"v2\" (PROXY protocol version 2) or \"none\", not 'v1'")
    server.close()
finally:
    manager.stop()

# ---- IPVS: refused at the API ------------------------------------------------------------
manager = Manager("ipvs")
try:
    expect(manager.ctl("lb", "add", "-t", f"127.0.0.1:{free_port()}", "--service", "http", "--proxy-protocol", "v2"),
           1, "'proxy_protocol' needs the userspace dataplane")
    expect(manager.ctl("lb", "list"), 0, "no virtual services", where="stdout")
finally:
    manager.stop()

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("ok")
