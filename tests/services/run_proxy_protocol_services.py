#!/usr/bin/env python3
"""Runs proxy_protocol_services_tests against real daemons.

  run_proxy_protocol_services.py PATH/proxy_protocol_services_tests [gtest arguments...]

Starts nginx, postfix and dovecot (IMAP and POP3) on free ports of 127.0.0.1 from their own
configurations in a temporary directory (tests/support/daemons.py). Each configuration
includes a place (a glob matching nothing yet) where the service plugins will write their
PROXY protocol files: nginx inside its server {} (and, for the test of a refused file, in
http {}), dovecot at the end of dovecot.conf; postfix's master.cf is edited by the smtp
plugin through postconf. The test executable gets the paths and ports in SHOAL_PROXY_*
variables, loads the plugins, reloads the daemons, and sends clients through the real
userspace dataplane. The exit status is the executable's; on failure the daemons' logs are
printed. Needs root (postfix).
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import daemons  # noqa: E402

ADDRESS = "127.0.0.1"


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("run_proxy_protocol_services.py needs root: postfix runs as root")
    for program in ("nginx", "postfix", "postconf", "dovecot", "doveconf"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed; the test needs the real daemon")

    workdir = tempfile.mkdtemp(prefix="shoal-proxy-protocol-")
    os.chmod(workdir, 0o755)  # postfix and dovecot reach their files as their own users
    running = []
    status = 1
    try:
        port = lambda: daemons.free_port(ADDRESS)  # noqa: E731
        nginx_dir = os.path.join(workdir, "nginx")
        for d in ("snippets", "http-snippets"):
            os.makedirs(os.path.join(nginx_dir, d))
        web = daemons.start_nginx(nginx_dir, ADDRESS, http_port=port(), body="shoal\n",
                                  server_include=os.path.join(nginx_dir, "snippets", "*.conf"),
                                  http_include=os.path.join(nginx_dir, "http-snippets", "*.conf"))
        running.append(web)
        mail = daemons.start_postfix(os.path.join(workdir, "postfix"), ADDRESS, smtp_port=port())
        running.append(mail)
        dovecot_dir = os.path.join(workdir, "dovecot")
        os.makedirs(os.path.join(dovecot_dir, "conf.d"))
        boxes = daemons.start_dovecot(dovecot_dir, ADDRESS, imap_port=port(), pop3_port=port(),
                                      include=os.path.join(dovecot_dir, "conf.d", "*.conf"))
        running.append(boxes)

        env = dict(os.environ,
                   SHOAL_PROXY_NGINX_PREFIX=nginx_dir,
                   SHOAL_PROXY_NGINX_CONF=os.path.join(nginx_dir, "nginx.conf"),
                   SHOAL_PROXY_NGINX_ACCESS_LOG=os.path.join(nginx_dir, "access.log"),
                   SHOAL_PROXY_POSTFIX_CONF=os.path.join(mail.workdir, "conf"),
                   SHOAL_PROXY_POSTFIX_LOG=os.path.join(mail.workdir, "postfix.log"),
                   SHOAL_PROXY_DOVECOT_DIR=dovecot_dir,
                   SHOAL_PROXY_DOVECOT_CONF=os.path.join(dovecot_dir, "dovecot.conf"),
                   SHOAL_PROXY_DOVECOT_LOG=os.path.join(dovecot_dir, "dovecot.log"))
        for daemon in running:
            for service, number in daemon.ports.items():
                env[f"SHOAL_PROXY_PORT_{service.upper()}"] = str(number)
        for service in ("http", "smtp", "imap", "pop3"):
            env[f"SHOAL_PROXY_PROXIED_PORT_{service.upper()}"] = str(port())
        status = subprocess.run(argv[1:], env=env).returncode
    finally:
        for daemon in reversed(running):
            try:
                daemon.stop()
            except daemons.DaemonError as e:
                print(e, file=sys.stderr)
                status = status or 1
        if status != 0:
            for daemon in running:
                print(f"==== {daemon.name} logs\n{daemon.log_text()}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
