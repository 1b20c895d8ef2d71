"""Real service daemons for tests: nginx, postfix, dovecot (IMAP and POP3) and vsftpd.

Each runs from its own configuration in a directory of the caller's choosing (usually a
temporary one), listens on the address and ports given, and touches nothing of the
system's own instance: no /etc configuration, no system pid file, no system queue or log.
Any of them can run inside a network namespace (`netns="NAME"`, run with
`ip netns exec NAME ...`); the namespace must exist already and `address` must be one of
its addresses.

Every start_* function returns a Daemon once the daemon accepts TCP connections on every
port it was given, or raises DaemonError with the daemon's own log text when it does not
within `timeout` seconds. Daemon.stop() stops it and waits until it is gone; Daemon.kill()
kills it as a crash would (SIGKILL of its master and every process under it) and
Daemon.start() starts it again from the same configuration. Daemons are context managers too:

    with start_nginx(workdir, "127.0.0.1", http_port=8080, body="n1\\n") as web:
        ...  # GET http://127.0.0.1:8080/ answers 200 "n1\\n"

postfix needs root (it drops privileges to the `postfix` user itself); so do ports below
1024 and network namespaces. The others run as any user on high ports.

Programs run by argv, never through a shell.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

__all__ = ["Daemon", "DaemonError", "start_nginx", "start_postfix", "start_dovecot",
           "start_vsftpd", "make_self_signed_certificate", "free_port"]


class DaemonError(RuntimeError):
    """A daemon did not start (the message holds its log) or did not stop."""


def free_port(address="127.0.0.1"):
    """A TCP port on `address` that nothing listens on now (the kernel's choice)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _in_netns(netns, argv):
    return ["ip", "netns", "exec", netns] + list(argv) if netns else list(argv)


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def _accepts(address, port, netns):
    """True when a TCP connect to address:port succeeds (from inside `netns` if given)."""
    if not netns:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return True
        except OSError:
            return False
    # This process stays in its own namespace; a short child does the connect there.
    probe = ("import socket,sys\n"
             "try: socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()\n"
             "except OSError: sys.exit(1)\n")
    return subprocess.run(_in_netns(netns, [sys.executable, "-c", probe, address, str(port)]),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class Daemon:
    """A started daemon. `ports` maps a service name ("http", "smtp", ...) to its port."""

    def __init__(self, name, workdir, address, ports, logs, netns=None, process=None,
                 stop_argv=None, pid_file=None, launch=None):
        self.name = name
        self.workdir = workdir
        self.address = address
        self.ports = dict(ports)
        self.netns = netns
        self.logs = list(logs)          # files whose text explains a failure
        self._process = process         # a foreground daemon we started (Popen)
        self._stop_argv = stop_argv     # or the daemon's own stop command
        self._pid_file = pid_file       # whose pid must be gone after that command
        self._launch = launch           # starts it again: returns a Popen (foreground) or None
        self._stopped = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        return "\n".join(f"--- {path}\n{_tail(path)}" for path in self.logs if os.path.exists(path))

    def running(self):
        if self._process is not None:
            return self._process.poll() is None
        return _pid_alive(self._pid_file)

    def wait_accepting(self, timeout):
        deadline = time.monotonic() + timeout
        pending = dict(self.ports)
        while pending:
            for service, port in list(pending.items()):
                if _accepts(self.address, port, self.netns):
                    del pending[service]
            if not pending:
                return
            if self._process is not None and self._process.poll() is not None:
                raise DaemonError(f"{self.name} exited with status {self._process.returncode} "
                                  f"before listening\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                missing = ", ".join(f"{s} {self.address}:{p}" for s, p in pending.items())
                raise DaemonError(f"{self.name} did not accept connections on {missing} within "
                                  f"{timeout} s\n{self.log_text()}")
            time.sleep(0.05)

    def master_pid(self):
        """The pid of the daemon's master process, or None when it is not running."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        try:
            pid = int(open(self._pid_file).read().split()[0])
        except (OSError, ValueError, IndexError, TypeError):
            return None
        return pid if _pid_alive(self._pid_file) else None

    def accepting(self):
        """The services (keys of `ports`) that accept a TCP connection now."""
        return [s for s, p in self.ports.items() if _accepts(self.address, p, self.netns)]

    def kill(self, timeout=10):
        """Kills the daemon as a crash would: its master and every process under it get
        SIGKILL, with no chance to clean up or to respawn one another. The whole tree is
        frozen (SIGSTOP) first, so that no process can fork or restart a worker while the
        others die. Returns once every one of them is gone; its ports then refuse
        connections (nothing is left holding a listening socket). Does nothing when it is
        not running."""
        self._stopped = True
        root = self.master_pid()
        if root is None:
            return
        tree = _freeze_tree(root)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self._process is not None:
            self._process.wait(timeout)
        deadline = time.monotonic() + timeout
        while any(_running(pid) for pid in tree):
            if time.monotonic() > deadline:
                raise DaemonError(f"{self.name}: processes {[p for p in tree if _running(p)]} "
                                  f"still running {timeout} s after SIGKILL")
            time.sleep(0.01)

    def start(self, timeout=15):
        """Starts the daemon again, from the configuration it was first started with, after
        stop() or kill(); returns once it accepts on every port (DaemonError otherwise)."""
        if self.master_pid() is not None:
            raise DaemonError(f"{self.name} is already running (pid {self.master_pid()})")
        self._process = self._launch()
        self._stopped = False
        self.wait_accepting(timeout)

    def stop(self, timeout=20):
        """Stops the daemon and waits until it is gone. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                    raise DaemonError(f"{self.name} ignored SIGTERM for {timeout} s; killed")
            return
        if self._stop_argv:
            subprocess.run(_in_netns(self.netns, self._stop_argv), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while _pid_alive(self._pid_file):
            if time.monotonic() > deadline:
                raise DaemonError(f"{self.name} still running {timeout} s after stop\n{self.log_text()}")
            time.sleep(0.05)


def _state(pid):
    """The process state letter from /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or None when
    there is no such process."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _running(pid):
    """True while the process exists and is not a zombie (a zombie holds no socket)."""
    return _state(pid) not in (None, "Z")


def _children_of(parents):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in parents:
            found.append(int(entry))
    return found


def _freeze_tree(root, timeout=5):
    """SIGSTOPs `root` and then, level by level, every process under it, each one seen
    stopped before its children are listed (a stopped process cannot fork, so none is
    missed). Returns the pids, root first."""
    frozen = []
    wave = [root]
    deadline = time.monotonic() + timeout
    while wave:
        for pid in wave:
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                continue
            frozen.append(pid)
        for pid in wave:
            while _state(pid) not in (None, "Z", "T", "t"):
                if time.monotonic() > deadline:
                    raise DaemonError(f"process {pid} did not stop within {timeout} s")
                time.sleep(0.001)
        wave = [p for p in _children_of(set(frozen)) if p not in frozen and _running(p)]
    return frozen


def _pid_alive(pid_file):
    if not pid_file:
        return False
    try:
        pid = int(open(pid_file).read().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _require_traversable(path, who):
    """Raises DaemonError unless every folder above `path` lets others pass (o+x): daemons
    that drop privileges reach their files under `path` as another user (`who`)."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(parent).st_mode & 0o001:
            raise DaemonError(f"{who} could not reach {path}: {parent} is not searchable by "
                              f"others (chmod o+x it, e.g. make the temporary directory 0755)")
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


def _spawn(argv, netns, log_path, cwd=None):
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(_in_netns(netns, argv), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=cwd)
    finally:
        log.close()


def _listen(address, port):
    """address:port as daemons write it (IPv6 in brackets)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# ---- certificates ---------------------------------------------------------------------

def make_self_signed_certificate(directory, common_name="localhost"):
    """Writes cert.pem and key.pem (EC P-256, valid 2 days) into `directory` with
    openssl; returns (cert_path, key_path)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={common_name}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


# ---- nginx ----------------------------------------------------------------------------

def start_nginx(workdir, address="127.0.0.1", http_port=80, https_port=None, body="ok\n",
                netns=None, status=200, timeout=10, extra_http_ports=(), extra_https_ports=(),
                server_include=None, http_include=None):
    """Starts nginx serving `body` (text/plain) with HTTP status `status` at every path.

    workdir    its prefix: nginx.conf, nginx.pid, error.log, temp folders, the page and,
               with https_port, cert.pem/key.pem (self-signed, made with openssl) all go
               here; created if missing.
    address    the one address it listens on (IPv4 or IPv6 text).
    http_port  plain HTTP port.
    https_port TLS port for the same page, or None for no TLS.
    body       the response body for GET / (and any other path).
    status     the response status (e.g. 503 for a "sick" web server).
    netns      run inside this network namespace (`ip netns exec`), or None.
    extra_http_ports, extra_https_ports
               more ports serving the same page (plain, TLS), in `ports` as "http-PORT"
               and "https-PORT": one nginx, so they die and come back together.
    server_include, http_include
               an `include` pattern (a glob may match nothing) inside the server {} or the
               http {} block, for files written later (then `nginx ... -s reload`).

    Runs in the foreground (`daemon off;`) as a child of this process, so stop() is
    SIGTERM and wait. Returns a Daemon with ports {"http": ..., "https": ...}.
    """
    workdir = os.path.abspath(workdir)
    os.makedirs(os.path.join(workdir, "www"), exist_ok=True)
    with open(os.path.join(workdir, "www", "index.txt"), "w") as f:
        f.write(body)
    ports = {"http": http_port}
    tls = ""
    for port in extra_http_ports:
        ports[f"http-{port}"] = port
        tls += f"    listen {_listen(address, port)};\n"
    tls_ports = ([https_port] if https_port is not None else []) + list(extra_https_ports)
    if tls_ports:
        cert, key = make_self_signed_certificate(workdir)
        for port in tls_ports:
            ports["https" if port == https_port else f"https-{port}"] = port
            tls += f"    listen {_listen(address, port)} ssl;\n"
        tls += f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
    # `return` text would expand $variables in the body; a file is served byte for byte.
    # A non-200 status comes from error_page pointing at the same file.
    if status == 200:
        page = "    location / { try_files /index.txt =404; }\n"
    else:
        page = (f"    error_page {status} /index.txt;\n"
                f"    location = /index.txt {{ internal; }}\n"
                f"    location / {{ return {status}; }}\n")
    # Workers run as root because the caller's workdir is often a private (0700) temporary
    # directory that nginx's usual `nobody` could not read the page from.
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
user root root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {workdir}/access.log;
  default_type text/plain;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
{f"  include {http_include};" if http_include else ""}
  server {{
    listen {_listen(address, http_port)};
{f"    include {server_include};" if server_include else ""}
{tls}    root {workdir}/www;
{page}  }}
}}
""")
    log = os.path.join(workdir, "nginx.out")
    launch = lambda: _spawn(["nginx", "-p", workdir + "/", "-c", conf], netns, log)  # noqa: E731
    daemon = Daemon("nginx", workdir, address, ports, [log, os.path.join(workdir, "error.log")],
                    netns=netns, process=launch(), launch=launch)
    daemon.wait_accepting(timeout)
    return daemon


# ---- postfix --------------------------------------------------------------------------

def start_postfix(workdir, address="127.0.0.1", smtp_port=25, netns=None,
                  hostname="mx.shoal-test.invalid", timeout=15, extra_smtp_ports=()):
    """Starts a postfix instance whose config_directory, queue_directory and
    data_directory are under `workdir` (conf/, queue/, data/), listening for SMTP on
    address:smtp_port only (inet_interfaces = address). Logs go to workdir/postfix.log
    (postlogd), since a test machine has no syslog. Started with `postfix -c DIR start`,
    stopped with `postfix -c DIR stop`. Needs root. Returns a Daemon with {"smtp": port};
    each of extra_smtp_ports is one more smtpd listener of the same master, in `ports` as
    "smtp-PORT".
    """
    if os.geteuid() != 0:
        raise DaemonError("postfix needs root (it changes to the postfix user itself)")
    workdir = os.path.abspath(workdir)
    _require_traversable(workdir, "postfix (as user postfix)")
    conf_dir, queue_dir, data_dir = (os.path.join(workdir, d) for d in ("conf", "queue", "data"))
    for d in (conf_dir, queue_dir, data_dir):
        os.makedirs(d, exist_ok=True)
    # postfix refuses a queue that others could write; the data directory is postfix's.
    os.chmod(workdir, 0o755)
    os.chmod(queue_dir, 0o755)
    shutil.chown(data_dir, "postfix", "postfix")
    log = os.path.join(workdir, "postfix.log")
    with open(os.path.join(conf_dir, "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
config_directory = {conf_dir}
queue_directory = {queue_dir}
data_directory = {data_dir}
maillog_file = {log}
maillog_file_prefixes = {workdir}
myhostname = {hostname}
mydestination =
relayhost =
inet_interfaces = {address}
inet_protocols = {"ipv6" if ":" in address else "ipv4"}
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP
biff = no
alias_maps =
alias_database =
""")
    # The smallest master.cf that accepts SMTP and could deliver: no chroot (the queue is
    # not laid out for one), postlogd for maillog_file.
    services = [
        (_listen(address, port), "inet", "n", "-", "n", "-", "-", "smtpd")
        for port in [smtp_port] + list(extra_smtp_ports)
    ] + [
        ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
        ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
        ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
        ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
        ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
        ("error", "unix", "-", "-", "n", "-", "-", "error"),
        ("retry", "unix", "-", "-", "n", "-", "-", "error"),
        ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
        ("local", "unix", "-", "n", "n", "-", "-", "local"),
        ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
        ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
        ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
    ]
    with open(os.path.join(conf_dir, "master.cf"), "w") as f:
        for fields in services:
            f.write("  ".join(fields) + "\n")
    postfix = ["postfix", "-c", conf_dir]
    ports = {"smtp": smtp_port}
    ports.update({f"smtp-{port}": port for port in extra_smtp_ports})

    def launch():
        started = subprocess.run(_in_netns(netns, postfix + ["start"]), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        if started.returncode != 0:
            daemon.stop()
            raise DaemonError(f"postfix -c {conf_dir} start failed (status {started.returncode}):\n"
                              f"{started.stdout.decode('utf-8', 'replace')}\n{daemon.log_text()}")
        return None  # postfix detaches; its master's pid is in pid_file

    daemon = Daemon("postfix", workdir, address, ports, [log], netns=netns,
                    stop_argv=postfix + ["stop"], pid_file=os.path.join(queue_dir, "pid", "master.pid"),
                    launch=launch)
    launch()
    daemon.wait_accepting(timeout)
    return daemon


# ---- dovecot --------------------------------------------------------------------------

def start_dovecot(workdir, address="127.0.0.1", imap_port=143, pop3_port=110, netns=None,
                  timeout=15, extra_imap_ports=(), extra_pop3_ports=(), reuse_login_processes=False,
                  include=None):
    """Starts dovecot with IMAP on imap_port and POP3 on pop3_port (either may be None to
    leave that protocol out) on `address` only, plain text (no TLS), from its own
    workdir/dovecot.conf with base_dir and state_dir under workdir, logging to
    workdir/dovecot.log. Runs in the foreground (`dovecot -F -c CONF`) as a child of this
    process. Logins are refused (no user exists): it is there to greet and answer.
    Returns a Daemon with {"imap": ..., "pop3": ...}; extra_imap_ports and extra_pop3_ports
    are more listeners of the same login services, in `ports` as "imap-PORT", "pop3-PORT".
    reuse_login_processes: Dovecot's "high-performance" login mode (one long-lived login
    process per protocol serving many connections) instead of its default of one process
    forked per connection, which greets late (seconds) under a flood of short connections.
    `include` is a `!include_try` pattern at the end of dovecot.conf, for files written
    later (then `dovecot -c CONF reload`).
    """
    workdir = os.path.abspath(workdir)
    _require_traversable(workdir, "dovecot (as users dovecot and dovenull)")
    base_dir, state_dir = os.path.join(workdir, "run"), os.path.join(workdir, "state")
    for d in (base_dir, state_dir):
        os.makedirs(d, exist_ok=True)
    os.chmod(workdir, 0o755)  # the login processes run as dovenull and reach base_dir
    log = os.path.join(workdir, "dovecot.log")
    protocols, ports, services = [], {}, ""
    login_mode = "  service_count = 0\n  process_min_avail = 1\n" if reuse_login_processes else ""
    for name, port, extra in (("imap", imap_port, extra_imap_ports), ("pop3", pop3_port, extra_pop3_ports)):
        if port is None:
            continue
        protocols.append(name)
        ports[name] = port
        listeners = "".join(f"  inet_listener {name}_{p} {{\n    port = {p}\n  }}\n" for p in extra)
        ports.update({f"{name}-{p}": p for p in extra})
        services += (f"service {name}-login {{\n  inet_listener {name} {{\n    port = {port}\n  }}\n"
                     f"{listeners}  inet_listener {name}s {{\n    port = 0\n  }}\n{login_mode}}}\n")
    if not protocols:
        raise ValueError("start_dovecot needs imap_port or pop3_port")
    # An empty user list: every login fails, so nothing can reach a mailbox.
    users = os.path.join(workdir, "users")
    open(users, "w").close()
    conf = os.path.join(workdir, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(f"""base_dir = {base_dir}
state_dir = {state_dir}
instance_name = dovecot-{os.path.basename(workdir)}
protocols = {" ".join(protocols)}
listen = {address}
log_path = {log}
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{workdir}/mail/%u
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
{services}{f"!include_try {include}" if include else ""}
""")
    launch = lambda: _spawn(["dovecot", "-F", "-c", conf], netns,  # noqa: E731
                            os.path.join(workdir, "dovecot.out"))
    daemon = Daemon("dovecot", workdir, address, ports, [os.path.join(workdir, "dovecot.out"), log],
                    netns=netns, process=launch(), launch=launch)
    daemon.wait_accepting(timeout)
    return daemon


# ---- vsftpd ---------------------------------------------------------------------------

def start_vsftpd(workdir, address="127.0.0.1", ftp_port=21, netns=None, timeout=10):
    """Starts vsftpd on address:ftp_port from its own workdir/vsftpd.conf (listen=YES,
    background=NO), logging to workdir/vsftpd.log. vsftpd refuses to run with no login
    at all, so anonymous may log in to an empty read-only directory, with no transfer
    possible (no PASV, no PORT). Runs in the foreground as a child of this process. Needs
    root (vsftpd drops to `nobody` and chroots into an empty directory under workdir for
    each session). Returns a Daemon with {"ftp": port}.
    """
    workdir = os.path.abspath(workdir)
    empty = os.path.join(workdir, "empty")
    os.makedirs(empty, exist_ok=True)
    # vsftpd refuses a chroot directory that others can write to.
    os.chmod(empty, 0o555)
    os.chmod(workdir, 0o755)
    log = os.path.join(workdir, "vsftpd.log")
    conf = os.path.join(workdir, "vsftpd.conf")
    with open(conf, "w") as f:
        # vsftpd has one switch and one address setting per family.
        if ":" in address:
            f.write(f"listen=NO\nlisten_ipv6=YES\nlisten_address6={address}\n")
        else:
            f.write(f"listen=YES\nlisten_ipv6=NO\nlisten_address={address}\n")
        f.write(f"""listen_port={ftp_port}
background=NO
anonymous_enable=YES
anon_root={empty}
no_anon_password=YES
local_enable=NO
write_enable=NO
pasv_enable=NO
port_enable=NO
secure_chroot_dir={empty}
nopriv_user=nobody
xferlog_enable=YES
vsftpd_log_file={log}
dual_log_enable=NO
syslog_enable=NO
ftpd_banner=shoal test FTP
seccomp_sandbox=NO
""")
    out = os.path.join(workdir, "vsftpd.out")
    launch = lambda: _spawn(["vsftpd", conf], netns, out)  # noqa: E731
    daemon = Daemon("vsftpd", workdir, address, {"ftp": ftp_port}, [out, log], netns=netns,
                    process=launch(), launch=launch)
    daemon.wait_accepting(timeout)
    return daemon

