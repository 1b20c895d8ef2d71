#!/usr/bin/env python3
"""`shoald plugins --plugin-dir DIR --json` over the test plugin directory: one JSON object
per plugin file; the example plugin loaded with its contributions; every broken plugin
refused with a reason a person understands; exit status 3 because some were refused."""
import json
import re
import os
import subprocess
import sys

shoald, plugin_dir = sys.argv[1], sys.argv[2]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


run = subprocess.run([shoald, "plugins", "--plugin-dir", plugin_dir, "--json"],
                     capture_output=True, text=True, timeout=60)
check(run.returncode == 3, f"exit status {run.returncode}, expected 3 (some refused); stderr: {run.stderr}")
records = {}
for line in run.stdout.splitlines():
    record = json.loads(line)
    records[os.path.basename(record["file"])] = record
files = sorted(f for f in os.listdir(plugin_dir) if f.endswith(".so"))
check(sorted(records) == files, f"reported {sorted(records)}, directory has {files}")

hello = records.get("hello.so", {})
check(hello.get("state") == "loaded", f"hello: {hello}")
check(hello.get("name") == "hello" and hello.get("version") == "1.0.0", f"hello identity: {hello}")
# The ABI this tree defines: hello is built with it.
ABI_MINOR = int(re.search(r"#define SHOAL_ABI_VERSION_MINOR (\d+)",
                          open(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "include", "shoal", "abi.h"))
                          .read()).group(1))
check(hello.get("abi_version") == f"1.{ABI_MINOR}", f"hello abi: {hello}")
check(hello.get("queue_handlers") == ["hello.greet"], f"hello queue handlers: {hello}")
check(hello.get("probes") == ["hello"], f"hello probes: {hello}")
check(hello.get("panels") == ["greetings"], f"hello panels: {hello}")
check(hello.get("hooks") == ["node.joined"], f"hello hooks: {hello}")
check(records.get("compat_v1_0.so", {}).get("state") == "loaded", f"compat: {records.get('compat_v1_0.so')}")
compat12 = records.get("compat_v1_2.so", {})
check(compat12.get("state") == "loaded" and compat12.get("abi_version") == "1.2", f"compat 1.2: {compat12}")
compat14 = records.get("compat_v1_4.so", {})
check(compat14.get("state") == "loaded" and compat14.get("abi_version") == "1.4", f"compat 1.4: {compat14}")
limits = records.get("limits.so", {})
check(limits.get("state") == "loaded" and limits.get("limits") == ["limits.sites", "limits.mailboxes"],
      f"limits: {limits}")

expected_reasons = {
    "not_elf.so": "not a loadable shared library",
    "no_entry_point.so": "does not export shoal_plugin_entry",
    "broken_abi_major.so": f"built for plugin ABI 2.{ABI_MINOR} but this shoald provides ABI 1.{ABI_MINOR}",
    "broken_table_large.so": "larger than the",
    "broken_declines.so": "declined to load",
    "broken_bad_name.so": "its name 'Bad Name!' must match",
    "broken_init_throws.so": "cannot open /nonexistent/broken.conf",
    "broken_init_fails.so": "required setting plugin.init_fails.endpoint is missing",
    "broken_bad_panel.so": "'html' is not one of",
    "x_duplicate_name.so": "a plugin named 'hello' is already loaded from",
    "x_duplicate_kind.so": "queue handler kind 'hello.greet' is already registered by plugin 'hello'",
    "broken_duplicate_limit.so": "limit 'broken_duplicate_limit.domains' declared twice",
}
for name, reason in expected_reasons.items():
    record = records.get(name, {})
    check(record.get("state") == "refused", f"{name} should be refused: {record}")
    check(reason in record.get("reason", ""), f"{name}: reason {record.get('reason')!r} lacks {reason!r}")
    check(record.get("queue_handlers") == [] and record.get("panels") == [] and record.get("limits") == [],
          f"{name}: a refused plugin lists contributions: {record}")

# Text form: one line per file, each naming its state.
text = subprocess.run([shoald, "plugins", "--plugin-dir", plugin_dir],
                      capture_output=True, text=True, timeout=60)
check(len(text.stdout.splitlines()) == len(files), f"text report: {text.stdout}")
check(f"hello.so: loaded hello 1.0.0 (ABI 1.{ABI_MINOR})" in text.stdout, f"text report: {text.stdout}")

# A directory that does not exist is a usage error with a clear message.
missing = subprocess.run([shoald, "plugins", "--plugin-dir", "/nonexistent/plugins", "--json"],
                         capture_output=True, text=True, timeout=60)
check(missing.returncode == 2, f"missing dir: exit {missing.returncode}")
check("/nonexistent/plugins does not exist" in missing.stderr, f"missing dir: {missing.stderr}")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"ok: {len(records)} plugin files reported")
