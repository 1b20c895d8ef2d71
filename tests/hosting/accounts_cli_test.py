#!/usr/bin/env python3
"""Hosting accounts through shoalctl and the API against a real manager with the real http plugin
loaded (which declares the limits http.domains and http.disk_mb): plans, limits copied and
applied, IDN domains, the refusals an admin meets, suspension, and what survives a restart of
the manager (uids that never go back). No node has joined, so nothing is rendered here; the
e2e tests take accounts to real nginx on real nodes."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

shoald, shoalctl, plugin_dir = sys.argv[1:4]
work = tempfile.mkdtemp(prefix="shoal-accounts-cli-")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
config = os.path.join(work, "shoald.conf")
with open(config, "w") as f:
    f.write(f"[shoald]\nrole = manager\ndata_dir = {work}/data\nplugin_dir = {plugin_dir}\nstore = sqlite\n"
            f"api_listen = 127.0.0.1\napi_port = {port}\nadvertise_address = 127.0.0.1\n"
            f"account_uid_base = 30000\nstorage_root = {work}/storage\n")
env = dict(os.environ, SHOAL_MANAGER=f"127.0.0.1:{port}", SHOAL_CA=f"{work}/data/tls/ca.crt",
           SHOAL_TOKEN_FILE=f"{work}/data/admin.token")
env.pop("SHOAL_TOKEN", None)
failures = []
manager = None


def start():
    global manager
    log = open(os.path.join(work, "manager.log"), "a")
    manager = subprocess.Popen([shoald, "--config", config], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if ctl("cluster").returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("the manager did not start: " + open(os.path.join(work, "manager.log")).read()[-2000:])


def stop():
    manager.terminate()
    manager.wait(timeout=30)


def ctl(*args):
    return subprocess.run([shoalctl, *args], capture_output=True, text=True, timeout=30, env=env)


def ctl_input(text, *args):
    return subprocess.run([shoalctl, *args], capture_output=True, text=True, timeout=30, env=env, input=text)


def expect(result, code, text=None, where="stderr"):
    out = getattr(result, where)
    if result.returncode != code or (text and text not in out):
        failures.append(f"shoalctl {' '.join(result.args[1:])}: exit {result.returncode} (expected {code}), {where}: "
                        f"{out.strip()!r}" + (f", expected to contain {text!r}" if text else ""))
    return result


def account(name):
    r = ctl("--json", "account", "show", name)
    return json.loads(r.stdout) if r.returncode == 0 else None


try:
    start()
    expect(ctl("limits"), 0, "http.domains            Domains", where="stdout")
    expect(ctl("limits"), 0, "http.disk_mb", where="stdout")
    expect(ctl("account", "list"), 0, "no accounts", where="stdout")

    # Plans: limits must be declared, values whole numbers or unlimited.
    expect(ctl("plan", "add", "basic", "--limits", "http.domains=2,http.disk_mb=unlimited"), 0)
    expect(ctl("plan", "add", "basic"), 1, "plan 'basic' already exists")
    expect(ctl("plan", "add", "mail", "--limits", "smtp.mailboxes=5"), 1,
           "limits.smtp.mailboxes: no loaded plugin declares this limit (declared: http.domains, http.disk_mb)")
    expect(ctl("plan", "add", "neg", "--limits", "http.domains=-1"), 2, "must be a whole number")
    expect(ctl("plan", "add", "Big"), 1, "name: must start with a-z or 0-9")
    expect(ctl("plan", "list"), 0, "basic", where="stdout")

    # An account: its uid from the base, its home under the storage root, an IDN primary domain.
    created = expect(ctl("--json", "account", "add", "acme", "bücher.example", "--plan", "basic"), 0)
    body = json.loads(created.stdout) if created.returncode == 0 else {"account": {}}
    a = body["account"]
    if (a.get("uid"), a.get("gid"), a.get("home")) != (30000, 30000, f"{work}/storage/acme"):
        failures.append(f"account identity: {a}")
    if a.get("limits") != {"http.disk_mb": None, "http.domains": 2}:
        failures.append(f"limits copied from the plan: {a.get('limits')}")
    if [d["name"] for d in a.get("domains", [])] != ["xn--bcher-kva.example"]:
        failures.append(f"domains: {a.get('domains')}")
    certificate = a.get("certificate") or {}
    if certificate.get("issuer") != "cluster-ca" or certificate.get("names") != ["xn--bcher-kva.example"]:
        failures.append(f"certificate: {certificate}")
    if "key_pem" in created.stdout or "PRIVATE KEY" in created.stdout:
        failures.append("the API showed the certificate's private key")
    if body.get("commands") != []:
        failures.append(f"no node, so no command expected: {body.get('commands')}")

    expect(ctl("domain", "add", "acme", "www.bücher.example", "--kind", "alias", "--parent", "bücher.example"), 0)
    expect(ctl("domain", "add", "acme", "third.test"), 1,
           "account 'acme' is at its limit of 2 for http.domains (Domains)")
    expect(ctl("account", "add", "bob", "WWW.Bücher.Example"), 1, "belongs to account 'acme'")
    expect(ctl("account", "add", "bob", "shop.bücher.example"), 1, "which belongs to account 'acme'")
    expect(ctl("account", "add", "root", "root.test"), 1, "'root' is reserved")
    expect(ctl("account", "add", "bob", "bad_name.test"), 1, "domain:")
    expect(ctl("api", "POST", "/v1/accounts", "--body", '{"name": "bob", "domain": "bob.test", "colour": 1}'), 1,
           "colour: is not a field here")
    expect(ctl("domain", "remove", "acme", "bücher.example"), 1, "primary domain")
    expect(ctl("domain", "remove", "acme", "nothere.test"), 4, "has no domain 'nothere.test'")
    expect(ctl("account", "show", "nobody1"), 4, "no account 'nobody1'")

    # Editing the plan changes no account until it is applied.
    expect(ctl("plan", "edit", "basic", "--limits", "http.domains=5"), 0)
    if (account("acme") or {}).get("limits", {}).get("http.domains") != 2:
        failures.append("editing the plan changed the account's limits")
    expect(ctl("plan", "apply", "basic"), 0, "1 account(s) took the plan's limits", where="stdout")
    if (account("acme") or {}).get("limits", {}).get("http.domains") != 5:
        failures.append("plan apply did not give the account the plan's limits")
    expect(ctl("domain", "add", "acme", "third.test"), 0)
    cert_names = ((account("acme") or {}).get("certificate") or {}).get("names")
    if cert_names != ["xn--bcher-kva.example", "www.xn--bcher-kva.example", "third.test"]:
        failures.append(f"the certificate does not follow the domains: {cert_names}")
    expect(ctl("plan", "remove", "basic"), 1, "plan of 1 account(s)")

    # Concurrent edits: an edit made against an older revision is refused.
    revision = (account("acme") or {}).get("revision", 0)
    expect(ctl("account", "edit", "acme", "--limits", "http.disk_mb=500", "--revision", str(revision - 1)), 1,
           f"is at revision {revision}, not {revision - 1}")
    expect(ctl("account", "edit", "acme", "--limits", "http.disk_mb=500", "--revision", str(revision)), 0)

    expect(ctl("account", "suspend", "acme"), 2, "needs --reason")
    expect(ctl("account", "suspend", "acme", "--reason", "unpaid invoice"), 0, "suspended", where="stdout")
    expect(ctl("account", "show", "acme"), 0, "reason   unpaid invoice", where="stdout")

    # The manager restarts: everything is there, and uids go on from where they were.
    stop()
    start()
    after = account("acme") or {}
    if after.get("state") != "suspended" or len(after.get("domains", [])) != 3:
        failures.append(f"after a restart: {after}")
    expect(ctl("account", "unsuspend", "acme"), 0)

    # Owners: bound to an account that exists, removed with it.
    expect(ctl_input("olivia's long password\n", "user", "add", "olivia", "--owner", "acme"), 0,
           "added panel user olivia, owner of acme", where="stdout")
    expect(ctl_input("otto's long password\n", "user", "add", "otto", "--owner", "ghost"), 4, "no account 'ghost'")
    expect(ctl("user", "list"), 0, "owner of acme", where="stdout")
    expect(ctl("account", "remove", "acme"), 0)
    listed = expect(ctl("user", "list"), 0)
    if "olivia" in listed.stdout:
        failures.append(f"the owner outlived the account: {listed.stdout!r}")
    expect(ctl("account", "show", "acme"), 4)
    recreated = expect(ctl("--json", "account", "add", "acme", "bücher.example"), 0)
    if recreated.returncode == 0 and json.loads(recreated.stdout)["account"]["uid"] != 30001:
        failures.append(f"a uid was reused: {recreated.stdout[:200]}")
    expect(ctl("account", "resync"), 0, "announced 1 account(s)", where="stdout")
finally:
    if manager and manager.poll() is None:
        stop()
    if failures and os.environ.get("SHOAL_E2E_KEEP") == "1":
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

for failure in failures:
    print("FAIL:", failure)
if failures:
    sys.exit(1)
print("accounts through shoalctl: ok")
