#!/usr/bin/env bash
# Installs shoal into a temporary prefix, builds examples/hello there as a third party
# would (its own CMake project, find_package(shoal CONFIG REQUIRED), nothing from the source
# tree), and loads it with the installed shoald beside the broken test plugins.
set -euo pipefail
build_dir=$1 source_dir=$2 work=$3 test_plugin_dir=$4
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
test -f "$prefix/include/shoal/abi.h" || { echo "FAIL: abi.h not installed"; exit 1; }
test -f "$prefix/include/shoal/sdk.hpp" || { echo "FAIL: sdk.hpp not installed"; exit 1; }
test -f "$prefix/include/shoal/panel.h" || { echo "FAIL: panel.h not installed"; exit 1; }

# Copy the example out of the source tree so nothing can reach back into it.
cp -r "$source_dir/examples/hello" "$work/hello-src"
cmake -S "$work/hello-src" -B "$work/hello-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/configure.log"
cmake --build "$work/hello-build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
if grep -q -i warning "$work/build.log"; then
  echo "FAIL: the example builds with warnings"; cat "$work/build.log"; exit 1
fi

# Only the entry point is exported.
exports=$(nm -D --defined-only "$work/hello-build/hello.so" | awk '$2 ~ /[TW]/ {print $3}')
if [ "$exports" != "shoal_plugin_entry" ]; then
  echo "FAIL: hello.so exports more than its entry point:"; echo "$exports"; exit 1
fi

plugins=$work/plugins
mkdir -p "$plugins"
cp "$work/hello-build/hello.so" "$plugins/"
for broken in not_elf no_entry_point broken_abi_major broken_table_large broken_init_throws \
              x_duplicate_name x_duplicate_kind; do
  cp "$test_plugin_dir/$broken.so" "$plugins/"
done

set +e
"$prefix/bin/shoald" plugins --plugin-dir "$plugins" --json >"$work/report.json" 2>"$work/report.err"
status=$?
set -e
cat "$work/report.json"
[ "$status" = 3 ] || { echo "FAIL: exit status $status, expected 3"; cat "$work/report.err"; exit 1; }

python3 - "$work/report.json" <<'PY'
import json, os, sys
records = {os.path.basename(r["file"]): r for r in map(json.loads, open(sys.argv[1]))}
hello = records["hello.so"]
assert hello["state"] == "loaded", hello
assert hello["queue_handlers"] == ["hello.greet"] and hello["probes"] == ["hello"], hello
assert hello["panels"] == ["greetings"] and hello["hooks"] == ["node.joined"], hello
refused = [name for name, r in records.items() if r["state"] == "refused"]
assert len(refused) == 7, refused
for name in refused:
    assert records[name]["reason"], name
print("ok: hello built out of tree and loaded; 7 broken plugins refused with reasons")
PY
