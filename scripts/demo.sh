#!/usr/bin/env bash
# Installs what is missing, builds shoal, installs it under /opt/shoal with the example
# plugin, and runs a local demo cluster in the foreground: a manager on the embedded SQLite
# store and two nodes, each a shoald of its own with its own data directory. Ctrl-C (or
# SIGTERM) stops it cleanly; run this again and it finds its stores and enrolments intact.
#   SHOAL_PREFIX  install prefix (default /opt/shoal)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build

prefix=${SHOAL_PREFIX:-/opt/shoal}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib
cmake --build build -j "$(nproc)"
cmake --install build >/dev/null

# The example plugin, built against the installed SDK as any third-party plugin is.
cmake -S examples/hello -B build/examples/hello -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/examples/hello >/dev/null
install -m 0755 build/examples/hello/hello.so "$prefix/lib/shoal/plugins/hello.so"

etc=$prefix/etc
mkdir -p "$etc" "$prefix/var"
write_config() { # NAME ROLE
  local file=$etc/$1.conf
  [ -f "$file" ] && return
  cat >"$file" <<CONF
[shoald]
role = $2
data_dir = $prefix/var/$1
plugin_dir = $prefix/lib/shoal/plugins
store = sqlite
log_level = information
advertise_address = 127.0.0.1

[plugin.hello]
greeting = Hello
CONF
}
write_config manager manager
write_config node1 node
write_config node2 node

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop_all INT TERM EXIT

log=$prefix/var/demo.log
: >"$log"
"$prefix/bin/shoald" --config "$etc/manager.conf" > >(sed -u 's/^/[manager] /' >>"$log") 2>&1 &
pids+=($!)
for _ in $(seq 150); do grep -q "shoald ready" "$log" && break; sleep 0.1; done
grep -q "shoald ready" "$log" || { cat "$log"; echo "demo: the manager did not start" >&2; exit 1; }

export SHOAL_MANAGER=127.0.0.1:7443 SHOAL_CA=$prefix/var/manager/tls/ca.crt \
  SHOAL_TOKEN_FILE=$prefix/var/manager/admin.token
ctl=$prefix/bin/shoalctl
for node in node1 node2; do
  join=()
  if [ ! -f "$prefix/var/$node/node-identity.json" ]; then
    join=(--join "$("$ctl" node join-token --ttl 600 2>/dev/null)")
  fi
  "$prefix/bin/shoald" --config "$etc/$node.conf" "${join[@]}" > >(sed -u "s/^/[$node] /" >>"$log") 2>&1 &
  pids+=($!)
done
sleep 2
"$ctl" node list
"$ctl" queue add hello.greet --payload '{"name":"admin"}' --key demo --target all >/dev/null
sleep 1
"$ctl" queue list --limit 1
echo
echo "demo: a manager and two nodes are running; their logs follow (also in $log)."
echo "  export SHOAL_MANAGER=$SHOAL_MANAGER SHOAL_CA=$SHOAL_CA SHOAL_TOKEN_FILE=$SHOAL_TOKEN_FILE"
echo "  $ctl queue add hello.greet --payload '{\"name\":\"you\"}' --key demo --target all"
echo "Ctrl-C stops the cluster; running this again finds it as it was."
tail -n +1 -f "$log" &
pids+=($!)
wait "${pids[0]}"
