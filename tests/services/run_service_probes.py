#!/usr/bin/env python3
"""Runs service_probe_tests against real daemons.

  run_service_probes.py PATH/service_probe_tests [gtest arguments...]

Starts nginx (HTTP and HTTPS, plus a second one answering 503), postfix, dovecot (IMAP and
POP3) and vsftpd on free ports of 127.0.0.1, each from its own configuration in a
temporary directory (tests/support/daemons.py), runs the test executable with their
address and ports in SHOAL_SERVICE_ADDRESS and SHOAL_SERVICE_PORT_<SERVICE>, then stops
them all. It also checks in postfix's and dovecot's logs that the probes' sessions ended
with the probe's last command processed. The exit status is the executable's (or 1 when a
log check fails); on failure the daemons' logs are printed.
Needs root (postfix and vsftpd drop privileges themselves).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import daemons  # noqa: E402

ADDRESS = "127.0.0.1"


# What each daemon logs when a probe's conversation ran to its polite end (the probe sent
# its last command and the server processed it) rather than being dropped halfway.
CLEAN_ENDS = {
    "postfix": ["disconnect from localhost[127.0.0.1] ehlo=1 quit=1 commands=2"],
    "dovecot": ["imap-login: Info: Disconnected: Aborted login by logging out",
                "pop3-login: Info: Disconnected: Aborted login by logging out"],
}


def check_sessions_ended_cleanly(running, wait=5):
    deadline = time.monotonic() + wait  # postfix logs through postlogd, a moment later
    for daemon in running:
        for line in CLEAN_ENDS.get(daemon.name, []):
            while line not in daemon.log_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            if line not in daemon.log_text():
                print(f"{daemon.name} never logged a probe session ending cleanly "
                      f"(\"{line}\")", file=sys.stderr)
                return 1
    return 0


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("run_service_probes.py needs root: postfix and vsftpd run as root")
    for program in ("nginx", "postfix", "dovecot", "vsftpd", "openssl"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed; the probes need the real daemon")

    workdir = tempfile.mkdtemp(prefix="shoal-services-")
    os.chmod(workdir, 0o755)  # postfix and dovecot reach their files as their own users
    running = []
    status = 1
    try:
        port = lambda: daemons.free_port(ADDRESS)  # noqa: E731
        running.append(daemons.start_nginx(os.path.join(workdir, "nginx"), ADDRESS,
                                           http_port=port(), https_port=port(), body="shoal\n"))
        running.append(daemons.start_nginx(os.path.join(workdir, "nginx-503"), ADDRESS,
                                           http_port=port(), body="sick\n", status=503))
        running.append(daemons.start_postfix(os.path.join(workdir, "postfix"), ADDRESS, smtp_port=port()))
        running.append(daemons.start_dovecot(os.path.join(workdir, "dovecot"), ADDRESS,
                                             imap_port=port(), pop3_port=port()))
        running.append(daemons.start_vsftpd(os.path.join(workdir, "vsftpd"), ADDRESS, ftp_port=port()))

        env = dict(os.environ, SHOAL_SERVICE_ADDRESS=ADDRESS)
        web, sick = running[0], running[1]
        env["SHOAL_SERVICE_PORT_HTTP_503"] = str(sick.ports["http"])
        for daemon in [web] + running[2:]:
            for service, number in daemon.ports.items():
                env[f"SHOAL_SERVICE_PORT_{service.upper()}"] = str(number)
                print(f"{daemon.name}: {service} on {ADDRESS}:{number}", flush=True)
        status = subprocess.run(argv[1:], env=env).returncode
        if status == 0:
            status = check_sessions_ended_cleanly(running)
        if status != 0:
            for daemon in running:
                print(f"==== {daemon.name} logs\n{daemon.log_text()}")
    finally:
        errors = []
        for daemon in reversed(running):
            try:
                daemon.stop()
            except daemons.DaemonError as e:
                errors.append(str(e))
        if errors:
            print("\n".join(errors), file=sys.stderr)
            status = status or 1
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
