#!/usr/bin/env python3
"""Starts a real cluster (../cluster.py), installs playwright-core (package-lock.json) into
WORK_DIR once, and runs panel.spec.mjs in Debian's Chromium against it.

  run_browser_test.py SHOALD SHOALCTL PLUGIN_DIR WEB_DIR WORK_DIR
Screenshots land in WORK_DIR/artifacts.
"""
import json
import os
import shutil
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(here))
from cluster import Cluster  # noqa: E402

shoald, shoalctl, plugin_dir, web_dir, work = sys.argv[1:6]
os.makedirs(work, exist_ok=True)
for name in ("package.json", "package-lock.json", "panel.spec.mjs"):
    shutil.copy(os.path.join(here, name), work)
if not os.path.isdir(os.path.join(work, "node_modules", "playwright-core")):
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True, timeout=600)
if not os.path.exists(os.environ.get("SHOAL_CHROMIUM", "/usr/bin/chromium")):
    sys.exit("Chromium is not installed (apt-get install chromium); scripts/install-deps.sh test installs it")

artifacts = os.path.join(work, "artifacts")
shutil.rmtree(artifacts, ignore_errors=True)
cluster = Cluster(shoald, shoalctl, plugin_dir, web_dir)
code = 1
try:
    cluster.start()
    state = os.path.join(work, "cluster.json")
    with open(state, "w") as f:
        json.dump(cluster.state(), f)
    code = subprocess.run(["node", "panel.spec.mjs", state, artifacts], cwd=work, timeout=600).returncode
finally:
    cluster.stop()
    if code != 0:
        print(f"cluster logs in {cluster.work}")
    else:
        shutil.rmtree(cluster.work, ignore_errors=True)
sys.exit(code)
