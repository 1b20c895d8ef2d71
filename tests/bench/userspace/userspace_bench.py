#!/usr/bin/env python3
"""Benchmark (b): requests per second and p99 latency through the userspace dataplane,
beside HAProxy in TCP mode (balance roundrobin), both in front of the same three nginx
backends on 127.0.0.1, each driven by the same wrk command, one after the other.

Both balancers run two event-loop threads (HAProxy: nbthread 2); wrk, nginx and the
balancer share the machine's cores in the same way for both runs. With --rounds above 1 the
order alternates each round and the median round is reported.

    userspace_bench.py --balancer BUILD/tests/bench/userspace/userspace_lb
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SMALL_BODY = "<html><body>" + "shoal userspace dataplane benchmark " * 16 + "</body></html>\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, what, log, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log, errors="replace") as f:
                raise RuntimeError(f"{what} exited with status {process.returncode}:\n{f.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on 127.0.0.1:{port} after {within} s")


class Processes:
    """Everything started here, stopped (by pid) in reverse order."""

    def __init__(self):
        self.started = []

    def start(self, what, argv, log):
        out = open(log, "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.started.append((what, p))
        return p

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self):
        for _, p in reversed(self.started):
            self.stop(p)
        self.started.clear()


def start_nginx(procs, work, index, port, body):
    prefix = os.path.join(work, f"nginx{index}")
    os.makedirs(os.path.join(prefix, "html"))
    os.makedirs(os.path.join(prefix, "logs"))
    with open(os.path.join(prefix, "html", "index.html"), "w") as f:
        f.write(body)
    conf = os.path.join(prefix, "nginx.conf")
    # Workers run as root: the temporary prefix is readable by its owner only.
    with open(conf, "w") as f:
        f.write(f"""user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/html;
    location / {{ }}
  }}
}}
""")
    log = os.path.join(prefix, "stdout.log")
    p = procs.start(f"nginx {index}", ["nginx", "-p", prefix, "-c", conf], log)
    wait_listening(port, p, f"nginx {index}", log)


def start_haproxy(procs, work, port, backends):
    conf = os.path.join(work, "haproxy.cfg")
    servers = "\n".join(f"  server s{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    with open(conf, "w") as f:
        f.write(f"""global
  nbthread 2
  maxconn 4000
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:{port}
  default_backend nginx
backend nginx
  balance roundrobin
{servers}
""")
    log = os.path.join(work, "haproxy.log")
    p = procs.start("haproxy", ["haproxy", "-db", "-f", conf], log)
    wait_listening(port, p, "haproxy", log)
    return p


def start_userspace(procs, work, balancer, port, backends, splice=True):
    argv = [balancer, "--listen", f"127.0.0.1:{port}", "--threads", "2", "--scheduler", "rr",
            "--splice", "on" if splice else "off"]
    for p in backends:
        argv += ["--real", f"127.0.0.1:{p}"]
    log = os.path.join(work, "userspace.log")
    p = procs.start("userspace", argv, log)
    wait_listening(port, p, "userspace_lb", log)
    return p


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(args, port):
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
            f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rps or not p99:
        raise RuntimeError("cannot read wrk's output:\n" + out)
    return {"rps": float(rps.group(1)), "p99": to_ms(p99.group(1), p99.group(2)),
            "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else ""),
            "raw": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--balancer", required=True, help="the userspace_lb executable")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    parser.add_argument("--body-bytes", type=int, default=0,
                        help="size of the static body (default: a 603-byte page); large bodies exercise splice")
    parser.add_argument("--copy", action="store_true",
                        help="also run the userspace dataplane with its buffer copy instead of splice")
    args = parser.parse_args()
    for tool in ("nginx", "haproxy", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")

    body = SMALL_BODY if args.body_bytes <= 0 else ("x" * 63 + "\n") * (args.body_bytes // 64) + "x" * (args.body_bytes % 64)
    work = tempfile.mkdtemp(prefix="shoal-bench-userspace-")
    procs = Processes()
    results = {"haproxy": [], "userspace": [], "copy": []}
    try:
        backends = [free_port() for _ in range(3)]
        for i, port in enumerate(backends):
            start_nginx(procs, work, i, port, body)
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; "
              f"3 nginx backends (worker_processes 1, {len(body)}-byte static body); "
              f"{os.cpu_count()} cores")
        for round_ in range(args.rounds):
            order = ["haproxy", "userspace"] + (["copy"] if args.copy else [])
            if round_ % 2:
                order.reverse()
            for peer in order:
                port = free_port()
                if peer == "haproxy":
                    p = start_haproxy(procs, work, port, backends)
                else:
                    p = start_userspace(procs, work, args.balancer, port, backends, splice=peer != "copy")
                time.sleep(0.2)
                r = run_wrk(args, port)
                procs.stop(p)
                results[peer].append(r)
                print(f"  round {round_ + 1} {peer:9s} {r['rps']:10.0f} req/s  p99 {r['p99']:7.2f} ms"
                      + (f"  errors: {r['errors']}" if r["errors"] else ""))
                if args.verbose:
                    print(r["raw"])
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    def median(peer, field):
        return statistics.median(r[field] for r in results[peer])

    h_rps, u_rps = median("haproxy", "rps"), median("userspace", "rps")
    h_p99, u_p99 = median("haproxy", "p99"), median("userspace", "p99")
    print(f"{'':10s} {'req/s':>10s} {'p99 ms':>8s}")
    print(f"{'haproxy':10s} {h_rps:10.0f} {h_p99:8.2f}")
    print(f"{'userspace':10s} {u_rps:10.0f} {u_p99:8.2f}")
    if args.copy:
        print(f"{'(copy)':10s} {median('copy', 'rps'):10.0f} {median('copy', 'p99'):8.2f}")
    ratio = u_rps / h_rps if h_rps else 0.0
    print(f"userspace / haproxy throughput: {ratio:.2f}x (target >= 0.80x); p99 {u_p99 / h_p99 if h_p99 else 0:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
