#!/usr/bin/env bash
# Runs the Command Queue benchmark on SQLite and on a MariaDB server it starts itself.
#   run_queue_bench.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
state=/tmp/shoal-bench-mariadb
socket=$state/mariadbd.sock
"$source/tests/support/mariadb.sh" start "$state" 33062 >/dev/null
trap '"$source/tests/support/mariadb.sh" stop "$state" >/dev/null' EXIT
for store in sqlite "mysql://shoal:shoalpw@localhost/shoal_test?socket=$socket"; do
  python3 "$source/tests/bench/queue_bench.py" "$build/kernel/shoald" "$build/kernel/shoalctl" \
    "$build/tests/e2e-plugins" "$store" "$build/tests/bench/store_insert_bench"
done
