#!/usr/bin/env python3
"""A hosting account created once on the manager, served by every web node through the VIP.

  hosting_e2e_test.py SHOALD SHOALCTL PLUGIN_DIR   (PLUGIN_DIR: lvs, http)

A manager (SQLite store; AppServer0, the director, on the userspace dataplane, with a virtual
IP for ports 80 and 443 over the three nodes), three nodes with the roles http and https and
a client, each in its own network namespace. Every node has its OWN nginx and php-fpm8.2
(their own prefix, configuration, pid and pool folders), and its [plugin.http] settings point
the plugin at that node's folders and reload commands, so each node renders and reloads its
own daemons. One folder stands in for the NFS storage root: [shoald] storage_root on the
manager, the accounts' homes (and so the docroots) under it, seen by every node.

The nodes share this machine's /etc/passwd (network namespaces do not separate users), so
the Unix identity the three agents create is one user created once and found in place twice;
the uid conflict is a user the test makes before the account, which every node then sees.

Checks, in order (each failure names the check):
  identity    plan, account and alias through shoalctl; every command of each change is done
              on every node; the account's Unix user exists with the cluster's uid
  php         index.php in the docroot prints posix_geteuid() and the node's address; many
              requests through the VIP: every node answers, always as the account's uid
  https       https://acme.test through the VIP (SNI acme.test) verifies against the
              cluster CA <data_dir>/tls/ca.crt
  acme        pebble (the ACME server, with pebble-challtestsrv answering every name with the
              VIP) started as the manager's acme_directory: the account's certificate
              becomes issuer "acme", obtained through the http-01 challenge the manager writes
              on the storage root and the nodes serve through the VIP, and HTTPS for both names
              through the VIP verifies with pebble's root from every node
  suspend     suspended: every node answers 503; unsuspended: 200 and the uid again
  uid-clash   a local user "clash" with another uid: account add clash fails the identity
              delivery on every node naming both uids, and nothing of clash is written;
              after userdel and a retry the account goes in and is removed again
  manager-down  the manager stopped: every node still serves acme.test (asked directly, the
              director being the manager); started again, the VIP serves again
  remove      the account removed: no vhost or pool on any node, the site no longer answers,
              the Unix user is gone

Needs root, nginx, php8.2-fpm, pebble, lego, curl, openssl, procps and iproute2.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import daemons  # noqa: E402
from harness import Cluster, Failure, HarnessError, keep_failed_run, log, run_test  # noqa: E402

SUBNET = "10.79.0"
DIRECTOR = f"{SUBNET}.1"
VIP = f"{SUBNET}.100"
CLIENT = 50
NODES = ("n1", "n2", "n3")
# Far from the default 20000 and from the uids other tests pick (29000-39000), so that a
# test beside this one cannot take the uids this cluster hands out.
UID_BASE = 46100
CLASH_UID = UID_BASE + 700  # the local user's: never one this cluster gives in one run
REQUESTS = 30               # through the VIP per round: round robin gives each node 10
# pebble (the ACME server) and pebble-challtestsrv (its DNS: every name is the VIP) in the
# manager's namespace, on fixed ports: the namespace is the test's own.
PEBBLE_PORT, PEBBLE_MANAGEMENT_PORT, CHALLTESTSRV_DNS_PORT, CHALLTESTSRV_MANAGEMENT_PORT = 14000, 15000, 8053, 8055
ACME_CHECK_SECONDS = 2
PHP = "<?php echo posix_geteuid(), ' ', $_SERVER['SERVER_ADDR'], \"\\n\";\n"


class HostingTest:
    def __init__(self, shoald, shoalctl, plugin_dir):
        self.root = tempfile.mkdtemp(prefix="shoal-hosting-e2e-")
        os.chmod(self.root, 0o755)  # nginx's workers (www-data) reach the docroots below
        self.storage = os.path.join(self.root, "storage")
        os.makedirs(self.storage, mode=0o755)
        self.node_dirs = {n: os.path.join(self.root, n) for n in NODES}
        self.pebble_dir = os.path.join(self.root, "pebble")
        # The ACME renewer runs from the start but finds no server until check_acme starts
        # pebble: until then every account keeps its cluster-CA certificate (check_https).
        manager_extra = (f"app_server = true\nstorage_root = {self.storage}\naccount_uid_base = {UID_BASE}\n"
                         f"acme_directory = https://127.0.0.1:{PEBBLE_PORT}/dir\nacme_email = hostmaster@acme.test\n"
                         f"acme_ca_file = {self.pebble_dir}/tls-ca.crt\nacme_check_seconds = {ACME_CHECK_SECONDS}\n")
        # The stagger is the manager's (the plugin's hook runs there): short, still one node after another.
        manager_plugins = ("[plugin.http]\nreload_stagger_ms = 200\n"
                           "[plugin.lvs]\ndataplane = userspace\n")
        self.cluster = Cluster(shoald, shoalctl, plugin_dir, "sqlite", nodes=NODES, prefix="shh",
                               subnet=SUBNET, manager_extra=manager_extra,
                               manager_plugin_extra=manager_plugins,
                               node_plugin_extra={n: self.node_plugin_settings(n) for n in NODES})
        self.started = []  # (node, pid file) of the daemons this test started
        self.acme_processes = []  # pebble and pebble-challtestsrv (Popen)
        self.made_users = []
        self.web_node_ids = []

    # ---- each node's own nginx and php-fpm ----
    def address(self, node):
        return self.cluster.net.hosts[node]["address"]

    def nginx_argv(self, node):
        d = self.node_dirs[node]
        return ["nginx", "-p", d + "/nginx/", "-c", d + "/nginx/nginx.conf"]

    def node_plugin_settings(self, node):
        d = self.node_dirs[node]
        nginx_line = " ".join(self.nginx_argv(node))
        return ("[plugin.http]\n"
                f"site_listen_address = {SUBNET}.{11 + NODES.index(node)}\n"
                f"sites_dir = {d}/sites\npools_dir = {d}/pools\ncert_dir = {d}/certs\n"
                f"log_dir = {d}/logs\nphp_run_dir = {d}/run\nstatic_dir = {d}/static\n"
                f"acme_challenge_root = {self.storage}/.acme\n"
                f"nginx_command = {nginx_line}\nnginx_reload_command = {nginx_line} -s reload\n"
                # SIGUSR2 is php-fpm's graceful reload.
                f"php_fpm_reload_command = pkill --signal USR2 --pidfile {d}/php/php-fpm.pid\n")

    def start_web(self, node):
        d, address = self.node_dirs[node], self.address(node)
        for sub in ("nginx", "php", "sites", "pools"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(d, 0o755)
        cert, key = daemons.make_self_signed_certificate(os.path.join(d, "nginx"), f"{node}.shoal-test.invalid")
        n = d + "/nginx"
        # The default servers answer the health probes (GET / on 80 and 443, no SNI) whatever
        # accounts there are; an account's vhosts are the files the plugin puts in sites/.
        with open(n + "/nginx.conf", "w") as f:
            f.write(f"""user www-data;
worker_processes 1;
pid {n}/nginx.pid;
error_log {n}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {n}/body;
  proxy_temp_path {n}/proxy;
  fastcgi_temp_path {n}/fastcgi;
  uwsgi_temp_path {n}/uwsgi;
  scgi_temp_path {n}/scgi;
  include {d}/sites/*.conf;
  server {{
    listen {address}:80 default_server;
    listen {address}:443 ssl default_server;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ return 200 "default {node}\\n"; }}
  }}
}}
""")
        p = d + "/php"
        # A pool of its own keeps the master up while no account has one (suspended, removed).
        with open(p + "/php-fpm.conf", "w") as f:
            f.write(f"[global]\npid = {p}/php-fpm.pid\nerror_log = {p}/php-fpm.log\n"
                    f"include = {d}/pools/*.conf\n"
                    f"[keeper]\nuser = www-data\ngroup = www-data\nlisten = {p}/keeper.sock\n"
                    "pm = ondemand\npm.max_children = 1\n")
        ns = self.cluster.net.exec_prefix(node)
        subprocess.run(ns + self.nginx_argv(node), check=True, capture_output=True, text=True)
        self.started.append((node, n + "/nginx.pid"))
        subprocess.run(ns + ["php-fpm8.2", "-y", p + "/php-fpm.conf"], check=True, capture_output=True, text=True)
        self.started.append((node, p + "/php-fpm.pid"))

    # ---- helpers ----
    def ctl(self, *args, expect=0):
        r = self.cluster.shoalctl(*args)
        if expect is not None and r.returncode != expect:
            raise Failure(f"shoalctl {' '.join(args)} exited {r.returncode} (expected {expect}): {r.stderr}{r.stdout}")
        return r

    def change(self, *args):
        """Runs a shoalctl command that answers a change; returns its command ids."""
        body = json.loads(self.ctl("--json", *args).stdout)
        if body.get("warning"):
            log(f"  {' '.join(args)}: {body['warning']}")
        check_that(body.get("commands"), f"shoalctl {' '.join(args)} answered no commands: {body}")
        return body["commands"]

    def command(self, command_id):
        return json.loads(self.ctl("--json", "queue", "show", str(command_id)).stdout)

    def wait_done(self, what, ids, timeout=30):
        """Every delivery of every command in `ids` done, on each of the nodes it targets."""
        deadline = time.time() + timeout
        while True:
            commands = [self.command(i) for i in ids]
            failed = [(c["kind"], d["node_id"], d["output"]) for c in commands for d in c["deliveries"]
                      if d["state"] == "failed"]
            if failed:
                raise Failure(f"{what}: deliveries failed: {failed}")
            if all(c["deliveries"] and all(d["state"] == "done" for d in c["deliveries"]) for c in commands):
                kinds = sorted({c["kind"] for c in commands})
                counts = {c["kind"]: len(c["deliveries"]) for c in commands}
                log(f"  {what}: {len(ids)} command(s) done on every node ({', '.join(kinds)}; deliveries {counts})")
                return commands
            if time.time() > deadline:
                raise Failure(f"{what}: not done after {timeout}s: " +
                              "; ".join(f"{c['kind']} " + ",".join(f"node {d['node_id']} {d['state']} {d['output'][:200]}"
                                                                  for d in c["deliveries"]) for c in commands))
            time.sleep(0.2)

    def curl(self, where, *args, timeout=5):
        """curl in the client's namespace; returns (status, body) or (0, error text)."""
        r = subprocess.run(self.cluster.net.exec_prefix("c") + ["curl", "-s", "-S", "-m", str(timeout),
                                                                "-w", "\n%{http_code}", *args, where],
                           capture_output=True, text=True, timeout=timeout + 10)
        if r.returncode != 0:
            return 0, r.stderr.strip()
        body, _, status = r.stdout.rpartition("\n")
        return int(status), body.strip()

    def through_vip(self, host, count=REQUESTS, path="/"):
        """`count` requests through the VIP, one connection each: a list of (status, body)."""
        urls = [f"http://{VIP}{path}"] * count
        r = subprocess.run(self.cluster.net.exec_prefix("c") + [
            "curl", "-s", "-m", "5", "-H", f"Host: {host}", "-H", "Connection: close",
            "-w", "\n@@%{http_code}\n"] + urls, capture_output=True, text=True, timeout=60)
        answers = []
        # Each answer is BODY "\n@@" STATUS "\n"; parse them in order.
        text = r.stdout
        while "\n@@" in text:
            body, _, rest = text.partition("\n@@")
            status, _, text = rest.partition("\n")
            answers.append((int(status) if status.isdigit() else 0, body.strip()))
        if len(answers) != count:
            raise Failure(f"{count} requests through {VIP} for {host}: {len(answers)} answers "
                          f"(curl {r.returncode}: {r.stderr.strip()[:300]})")
        return answers

    def eventually(self, what, predicate, timeout=15):
        deadline = time.time() + timeout
        while True:
            value, detail = predicate()
            if value:
                return detail
            if time.time() > deadline:
                raise Failure(f"{what} (after {timeout}s): {detail}")
            time.sleep(0.3)

    def site_files(self, name):
        """The vhost and pool files of account `name` that exist on each node."""
        found = {}
        for n in NODES:
            d = self.node_dirs[n]
            files = [p for p in (f"{d}/sites/{name}.conf", f"{d}/pools/shoal-{name}.conf") if os.path.exists(p)]
            files += [f"{d}/sites/{f}" for f in os.listdir(f"{d}/sites") if f.startswith(name + ".")]
            if os.path.isdir(f"{d}/certs/{name}"):
                files.append(f"{d}/certs/{name}")
            if files:
                found[n] = sorted(set(files))
        return found

    def serves_php(self, host, uid):
        """(True, detail) when all REQUESTS through the VIP answer 200 as `uid`, from every node."""
        answers = self.through_vip(host)
        nodes = {}
        bad = []
        for status, body in answers:
            parts = body.split()
            if status != 200 or len(parts) != 2 or parts[0] != str(uid):
                bad.append((status, body[:80]))
            else:
                nodes[parts[1]] = nodes.get(parts[1], 0) + 1
        every = sorted(nodes) == sorted(self.address(n) for n in NODES)
        return (not bad and every), f"answers by node {nodes}, others {bad[:5]}"

    # ---- the test ----
    def run(self):
        c = self.cluster
        for user in ("acme", "clash"):
            self.remove_leftover_user(user)
        c.net.add_host("c", CLIENT)
        self.make_pebble_tls()  # acme_ca_file must exist when the manager starts
        c.up()
        subprocess.run(c.net.exec_prefix("m") + ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"], check=True)
        nodes = {n["address"]: n for n in c.api.call("GET", "/v1/nodes")[1]["nodes"]}
        self.ctl("node", "set-roles", str(nodes[DIRECTOR]["id"]), "director")
        self.web_node_ids = [nodes[self.address(n)]["id"] for n in NODES]
        for n in NODES:
            self.start_web(n)
            self.ctl("node", "set-roles", str(nodes[self.address(n)]["id"]), "http,https")
        for port, service in ((80, "http"), (443, "https")):
            self.ctl("lb", "add", "-t", f"{VIP}:{port}", "--service", service, "-s", "rr", "-p", "0")
            for n in NODES:
                self.ctl("lb", "add-server", "-t", f"{VIP}:{port}", "-r", f"{self.address(n)}:{port}")

        def all_healthy():
            services = c.api.call("GET", "/v1/health/services")[1]["services"]
            healthy = sum(s["state"] == "healthy" for s in services if s["service"] in ("http", "https"))
            return healthy == 2 * len(NODES), f"{healthy} of {2 * len(NODES)} healthy: {services}"
        self.eventually("the nodes' http and https probes healthy", all_healthy, 30)

        def default_everywhere():
            answers = self.through_vip("nothing.test", count=9)
            seen = sorted({b for s, b in answers if s == 200})
            return seen == sorted(f"default {n}" for n in NODES), f"answers {answers}"
        self.eventually("the VIP balancing over the three nodes' default servers", default_everywhere, 20)

        uid = self.check_identity()
        self.check_php(uid)
        self.check_https()
        self.check_acme()
        self.check_suspend(uid)
        self.check_uid_clash(uid)
        self.check_manager_down(uid)
        self.check_remove(uid)
        log("PASS")

    def check_identity(self):
        log("check identity: plan, account and alias through shoalctl, done on every node")
        self.ctl("plan", "add", "basic", "--limits", "http.domains=5,http.disk_mb=unlimited")
        ids = self.change("account", "add", "acme", "acme.test", "--plan", "basic")
        self.wait_done("account add acme", ids)
        ids = self.change("domain", "add", "acme", "www.acme.test", "--kind", "alias", "--parent", "acme.test")
        commands = self.wait_done("domain add www.acme.test", ids)
        check_that(any(c["kind"] == "http.site.put" and len(c["deliveries"]) == len(NODES) for c in commands),
                   f"identity: the alias's change reached no http.site.put on all {len(NODES)} nodes: "
                   f"{[(c['kind'], len(c['deliveries'])) for c in commands]}")
        account = json.loads(self.ctl("--json", "account", "show", "acme").stdout)
        account = account.get("account", account)
        uid = account["uid"]
        check_that(UID_BASE <= uid < CLASH_UID, f"identity: uid {uid} is not from account_uid_base {UID_BASE}")
        try:
            entry = pwd.getpwnam("acme")
        except KeyError:
            raise Failure("identity: no Unix user acme after the account's commands were done on every node")
        check_that(entry.pw_uid == uid and entry.pw_gid == uid,
                   f"identity: user acme has uid {entry.pw_uid} gid {entry.pw_gid}, the cluster gave {uid}")
        check_that(account["home"] == f"{self.storage}/acme", f"identity: home {account['home']} is not under storage_root")
        log(f"  user acme uid {uid}, home {account['home']}")
        return uid

    def check_php(self, uid):
        log("check php: index.php through the VIP answers from every node as the account's uid")
        docroot = f"{self.storage}/acme/acme.test/public_html"
        check_that(os.path.isdir(docroot), f"php: no docroot {docroot} on the storage root")
        st = os.stat(docroot)
        check_that(st.st_uid == uid, f"php: docroot {docroot} belongs to uid {st.st_uid}, not {uid}")
        path = docroot + "/index.php"
        with open(path, "w") as f:
            f.write(PHP)
        os.chown(path, uid, uid)
        detail = self.eventually("php: www.acme.test through the VIP from every node as the account's uid",
                                 lambda: self.serves_php("www.acme.test", uid))
        log(f"  {detail}")

    def check_https(self):
        log("check https: https://acme.test through the VIP verifies against the cluster CA")
        ca = os.path.join(self.cluster.work, "m", "tls", "ca.crt")

        def verified():
            seen = {}
            for _ in range(6):
                status, body = self.curl("https://acme.test/", "--cacert", ca, "--resolve", f"acme.test:443:{VIP}",
                                         "-H", "Connection: close")
                if status != 200:
                    return False, f"answered {status}: {body}"
                seen[body.split()[-1] if body.split() else body] = True
            return len(seen) == len(NODES), f"served by {sorted(seen)}"
        log(f"  {self.eventually('https: acme.test through the VIP with the cluster CA from every node', verified)}")
        r = subprocess.run(self.cluster.net.exec_prefix("c") + [
            "openssl", "s_client", "-connect", f"{VIP}:443", "-servername", "acme.test", "-CAfile", ca,
            "-verify_return_error", "-verify_hostname", "acme.test"], input="", capture_output=True, text=True,
            timeout=20)
        check_that(r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout,
                   f"https: openssl s_client -servername acme.test did not verify: {r.stdout[-600:]}{r.stderr[-300:]}")

    def make_pebble_tls(self):
        """pebble's own HTTPS certificate for 127.0.0.1, from a CA of the test's, which the
        manager's ACME client trusts through acme_ca_file."""
        d = self.pebble_dir
        os.makedirs(d, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, text=True)  # noqa: E731
        openssl("req", "-x509", *ec, "-keyout", f"{d}/tls-ca.key", "-out", f"{d}/tls-ca.crt", "-days", "2",
                "-subj", "/CN=pebble TLS test CA")
        openssl("req", *ec, "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.csr", "-subj", "/CN=127.0.0.1")
        with open(f"{d}/tls.ext", "w") as f:
            f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
        openssl("x509", "-req", "-in", f"{d}/tls.csr", "-CA", f"{d}/tls-ca.crt", "-CAkey", f"{d}/tls-ca.key",
                "-CAcreateserial", "-out", f"{d}/tls.crt", "-days", "2", "-extfile", f"{d}/tls.ext")
        with open(f"{d}/pebble.json", "w") as f:
            json.dump({"pebble": {"listenAddress": f"127.0.0.1:{PEBBLE_PORT}",
                                  "managementListenAddress": f"127.0.0.1:{PEBBLE_MANAGEMENT_PORT}",
                                  "certificate": f"{d}/tls.crt", "privateKey": f"{d}/tls.key",
                                  # http-01 is fetched from port 80 of the name: the VIP.
                                  "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "",
                                  "externalAccountBindingRequired": False}}, f)

    def start_pebble(self):
        d = self.pebble_dir
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # pebble fetches directly
        ns = self.cluster.net.exec_prefix("m")
        self.acme_processes.append(subprocess.Popen(
            ns + ["pebble-challtestsrv", "-defaultIPv4", VIP, "-defaultIPv6", "",
                  "-dns01", f"127.0.0.1:{CHALLTESTSRV_DNS_PORT}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                  "-management", f"127.0.0.1:{CHALLTESTSRV_MANAGEMENT_PORT}"],
            stdout=open(f"{d}/challtestsrv.log", "w"), stderr=subprocess.STDOUT, env=env))
        self.acme_processes.append(subprocess.Popen(
            ns + ["pebble", "-config", f"{d}/pebble.json", "-dnsserver", f"127.0.0.1:{CHALLTESTSRV_DNS_PORT}"],
            stdout=open(f"{d}/pebble.log", "w"), stderr=subprocess.STDOUT,
            env=dict(env, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")))
        for port in (PEBBLE_PORT, PEBBLE_MANAGEMENT_PORT):
            self.eventually(f"acme: pebble listening on 127.0.0.1:{port}",
                            lambda: (accepts("127.0.0.1", port), open(f"{d}/pebble.log").read()[-500:]), 15)

    def check_acme(self):
        log("check acme: pebble issues the account's certificate; every node serves it through the VIP")
        self.start_pebble()

        def issued():
            account = json.loads(self.ctl("--json", "account", "show", "acme").stdout)
            certificate = account.get("account", account).get("certificate") or {}
            return certificate.get("issuer") == "acme", f"certificate {dict((k, v) for k, v in certificate.items() if k != 'certificate_pem')}"
        detail = self.eventually("acme: the account's certificate issuer 'acme'", issued, 40)
        log(f"  {detail[:300]}")
        # The challenge went the way a real one goes: pebble fetched the token from a node,
        # through the VIP, and the node found it on the storage root (its access log says so).
        fetched = {}
        for n in NODES:
            for log_name in ("acme.test.access.log", "www.acme.test.access.log"):
                path = f"{self.node_dirs[n]}/logs/{log_name}"
                if os.path.exists(path):
                    fetched[n] = fetched.get(n, 0) + sum(
                        "/.well-known/acme-challenge/" in line and '" 200 ' in line for line in open(path))
        check_that(sum(fetched.values()) > 0,
                   f"acme: no node's access log shows a challenge fetched with 200 (by node: {fetched})")
        log(f"  challenge fetches answered 200, by node: {fetched}")
        root = f"{self.pebble_dir}/root.pem"
        r = subprocess.run(["curl", "-s", "-S", "-f", "--cacert", f"{self.pebble_dir}/tls-ca.crt", "-o", root,
                            f"https://127.0.0.1:{PEBBLE_MANAGEMENT_PORT}/roots/0"], capture_output=True, text=True)
        check_that(r.returncode == 0, f"acme: pebble's root from /roots/0: {r.stderr}")

        def pebble_everywhere():
            seen = {}
            for host in ("acme.test", "www.acme.test"):
                for _ in range(6):
                    status, body = self.curl(f"https://{host}/", "--cacert", root, "--resolve", f"{host}:443:{VIP}",
                                             "-H", "Connection: close")
                    if status != 200:
                        return False, f"{host} answered {status}: {body}"
                    seen[body.split()[-1] if body.split() else body] = True
            return len(seen) == len(NODES), f"served by {sorted(seen)}"
        log(f"  {self.eventually('acme: https through the VIP verifies with pebble root from every node', pebble_everywhere, 20)}")

    def check_suspend(self, uid):
        log("check suspend: 503 from every node, then 200 again")
        self.wait_done("account suspend", self.change("account", "suspend", "acme", "--reason", "e2e unpaid"))

        def all_503():
            answers = self.through_vip("acme.test")
            statuses = sorted({s for s, _ in answers})
            # And each node asked directly: a 503 page does not say which node served it.
            direct = {n: self.curl(f"http://{self.address(n)}/", "-H", "Host: acme.test")[0] for n in NODES}
            return statuses == [503] and set(direct.values()) == {503}, \
                f"statuses through the VIP {statuses}, from each node {direct}"
        self.eventually("suspend: every answer through the VIP 503", all_503)
        self.wait_done("account unsuspend", self.change("account", "unsuspend", "acme"))
        self.eventually("unsuspend: acme.test from every node as the account's uid again",
                        lambda: self.serves_php("acme.test", uid))

    def check_uid_clash(self, acme_uid):
        log(f"check uid-clash: a local user clash with uid {CLASH_UID}, then account add clash")
        subprocess.run(["groupadd", "--gid", str(CLASH_UID), "clash"], check=True, capture_output=True, text=True)
        subprocess.run(["useradd", "--uid", str(CLASH_UID), "--gid", str(CLASH_UID), "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "clash"],
                       check=True, capture_output=True, text=True)
        self.made_users.append("clash")
        ids = self.change("account", "add", "clash", "clash.test")
        account = json.loads(self.ctl("--json", "account", "show", "clash").stdout)
        account = account.get("account", account)
        cluster_uid = account["uid"]
        check_that(cluster_uid != CLASH_UID and cluster_uid > acme_uid,
                   f"uid-clash: the cluster gave clash uid {cluster_uid}")

        def identity_failed():
            commands = [self.command(i) for i in ids]
            identity = [c for c in commands if c["kind"] == "account.identity.put"]
            if not identity:
                return False, f"no account.identity.put among {[c['kind'] for c in commands]}"
            deliveries = [d for d in identity[0]["deliveries"] if d["node_id"] in self.web_node_ids]
            failed = sorted(d["node_id"] for d in deliveries if d["state"] == "failed")
            return failed == sorted(self.web_node_ids), \
                f"identity deliveries {[(d['node_id'], d['state'], d['output'][:200]) for d in identity[0]['deliveries']]}"
        self.eventually("uid-clash: the identity delivery failed on every node", identity_failed, 20)
        commands = [self.command(i) for i in ids]
        identity = [c for c in commands if c["kind"] == "account.identity.put"][0]
        for d in identity["deliveries"]:
            if d["state"] == "failed":
                check_that(str(CLASH_UID) in d["output"] and str(cluster_uid) in d["output"],
                           f"uid-clash: node {d['node_id']}'s failure does not name both uids "
                           f"{CLASH_UID} and {cluster_uid}: {d['output']}")
        log(f"  node failure: {identity['deliveries'][0]['output'][:200]}")
        sites = [c for c in commands if c["kind"] == "http.site.put"]
        check_that(sites, f"uid-clash: the change enqueued no http.site.put: {[c['kind'] for c in commands]}")
        time.sleep(1.0)  # the stagger is 200 ms a node: time enough for a delivery that should not run
        sites = [self.command(c["id"]) for c in sites]
        ran = [(d["node_id"], d["state"]) for c in sites for d in c["deliveries"] if d["state"] == "done"]
        check_that(not ran, f"uid-clash: http.site.put ran behind the failed identity: {ran}")
        written = self.site_files("clash")
        check_that(not written, f"uid-clash: files of clash were written: {written}")
        status, body = self.curl(f"http://{self.address('n1')}/", "-H", "Host: clash.test")
        check_that(status == 200 and body == "default n1",
                   f"uid-clash: clash.test answered {status} {body!r}, not n1's default server")
        check_that(pwd.getpwnam("clash").pw_uid == CLASH_UID, "uid-clash: the local user clash was changed")

        log("  resolving: userdel clash, retry the failed deliveries, then remove the account")
        self.remove_user("clash")
        for d in identity["deliveries"]:
            if d["state"] == "failed":
                self.ctl("queue", "retry", str(d["id"]))
        self.wait_done("account add clash after the retry", ids)
        check_that(pwd.getpwnam("clash").pw_uid == cluster_uid, "uid-clash: after the retry clash has not the cluster's uid")
        self.wait_done("account remove clash", self.change("account", "remove", "clash"))
        check_that(not self.site_files("clash"), f"uid-clash: clash's files stayed: {self.site_files('clash')}")
        check_that(not user_exists("clash"), "uid-clash: user clash stayed after the account's removal")

    def check_manager_down(self, uid):
        log("check manager-down: the nodes keep serving acme.test without the manager")
        c = self.cluster
        c.stop("m")
        for n in NODES:
            status, body = self.curl(f"http://{self.address(n)}/", "-H", "Host: acme.test")
            check_that(status == 200 and body == f"{uid} {self.address(n)}",
                       f"manager-down: {n} answered {status} {body!r} for acme.test with the manager stopped")
        log("  every node served acme.test as uid %d; starting the manager again" % uid)
        c.start_manager()
        self.eventually("manager-down: acme.test through the VIP from every node after the manager's restart",
                        lambda: self.serves_php("acme.test", uid), 30)

    def check_remove(self, uid):
        log("check remove: account remove acme leaves no vhost, pool or user")
        self.wait_done("account remove acme", self.change("account", "remove", "acme"))
        left = self.site_files("acme")
        check_that(not left, f"remove: files of acme stayed: {left}")
        for n in NODES:
            status, body = self.curl(f"http://{self.address(n)}/", "-H", "Host: acme.test")
            check_that(status == 200 and body == f"default {n}",
                       f"remove: {n} still answers acme.test with {status} {body!r}")
        check_that(not user_exists("acme"), "remove: the Unix user acme stayed")
        # Its files stay on the storage (api.md: DELETE removes its sites and user, not its files).
        check_that(os.path.exists(f"{self.storage}/acme/acme.test/public_html/index.php"),
                   "remove: the account's files on the storage root were deleted")

    # ---- users ----
    def remove_leftover_user(self, name):
        """A user of an earlier, killed run of this test (its uid in this test's range) goes;
        any other user of that name stops the test: it is not ours to delete."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return
        if not UID_BASE <= entry.pw_uid <= CLASH_UID:
            raise HarnessError(f"a user {name} with uid {entry.pw_uid} exists already; this test needs the name")
        log(f"removing the leftover user {name} (uid {entry.pw_uid}) of an earlier run")
        self.remove_user(name)

    @staticmethod
    def remove_user(name):
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)

    def close(self, failed):
        for proc in self.acme_processes:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for node, pidfile in reversed(self.started):
            try:
                pid = int(open(pidfile).read().strip())
                os.kill(pid, 3)  # SIGQUIT: graceful stop of nginx and php-fpm
            except (OSError, ValueError):
                pass
        if failed:
            for n in NODES:
                for log_file in (f"{self.node_dirs[n]}/nginx/error.log", f"{self.node_dirs[n]}/php/php-fpm.log"):
                    if os.path.exists(log_file):
                        print(f"---- {log_file}\n" + "".join(open(log_file).readlines()[-10:]))
        self.cluster.close(failed=failed, keep=keep_failed_run(failed))
        for name in self.made_users + ["acme"]:
            try:
                if UID_BASE <= pwd.getpwnam(name).pw_uid <= CLASH_UID:
                    self.remove_user(name)
            except KeyError:
                pass
        if not keep_failed_run(failed):
            shutil.rmtree(self.root, ignore_errors=True)


def accepts(address, port):
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check_that(condition, message):
    if not condition:
        raise Failure(message)


def main():
    if os.geteuid() != 0:
        raise SystemExit("hosting_e2e_test.py needs root: network namespaces, useradd, nginx, php-fpm")
    shoald, shoalctl, plugin_dir = sys.argv[1:4]
    started = time.time()
    try:
        return run_test(HostingTest(shoald, shoalctl, plugin_dir), (daemons.DaemonError, KeyError, ValueError))
    finally:
        log(f"took {time.time() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
