#!/usr/bin/env python3
"""Runs one nginx per test host, in whatever network namespace the caller is in.

  nginx_ctl.py start   PREFIX ADDRESS NAME   write the configuration (first time) and start
  nginx_ctl.py stop    PREFIX                graceful stop (SIGQUIT), waits until it is gone
  nginx_ctl.py restart PREFIX                stop, then start with the same configuration
  nginx_ctl.py kill    PREFIX                SIGKILL the master and its workers (a crash)

Every answer of the server is NAME, so a client sees which host served it. The http
plugin's `restart_command` points here in the end-to-end test, so a rolling restart really
stops and starts nginx.
"""
import os
import signal
import socket
import subprocess
import sys
import time


def config(prefix, address, name, tls=False):
    """nginx.conf answering NAME on ADDRESS:80; with `tls`, on ADDRESS:443 too, with
    PREFIX/cert.pem and key.pem, and keep-alive connections held for 120 s."""
    https = (f"""    listen {address}:443 ssl;
    ssl_certificate {prefix}/cert.pem;
    ssl_certificate_key {prefix}/key.pem;
""" if tls else "")
    keepalive = "  keepalive_timeout 120s;\n" if tls else ""
    return f"""daemon on;
worker_processes 1;
user root root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
{keepalive}  server {{
    listen {address}:80;
{https}    location / {{ return 200 "{name}\\n"; }}
  }}
}}
"""


def master_pid(prefix):
    try:
        pid = int(open(os.path.join(prefix, "nginx.pid")).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def wait_listening(address, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((address, 80), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nginx did not listen on {address}:80 within {timeout}s")


def start(prefix, address=None, name=None):
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    if address is not None:
        with open(conf, "w") as f:
            f.write(config(prefix, address, name))
        with open(os.path.join(prefix, "address"), "w") as f:
            f.write(address)
    address = open(os.path.join(prefix, "address")).read().strip()
    subprocess.run(["nginx", "-p", prefix, "-c", conf], check=True)
    wait_listening(address)


def stop(prefix):
    pid = master_pid(prefix)
    if pid is None:
        return
    os.kill(pid, signal.SIGQUIT)
    deadline = time.time() + 20
    while time.time() < deadline and master_pid(prefix) is not None:
        time.sleep(0.02)


def kill(prefix):
    pid = master_pid(prefix)
    if pid is None:
        return
    # The master first, so it cannot respawn a worker it sees die; then every process of its
    # session (nginx's master starts one), which its workers stay in even once orphaned.
    try:
        session = os.getsid(pid)
    except OSError:
        session = None
    workers = children(pid)
    for p in [pid] + workers:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    if session is not None:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getsid(int(entry)) == session:
                        os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
    os.unlink(os.path.join(prefix, "nginx.pid"))


def main(argv):
    action, prefix = argv[1], argv[2]
    if action == "start":
        start(prefix, *(argv[3:5] if len(argv) >= 5 else []))
    elif action == "stop":
        stop(prefix)
    elif action == "restart":
        stop(prefix)
        start(prefix)
    elif action == "kill":
        kill(prefix)
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv)
