#!/usr/bin/env bash
# Installs what is missing, builds shoal, installs it under /opt/shoal with the example
# plugin, and runs a local demo cluster in the foreground: a manager on the embedded SQLite
# store and two nodes, each a shoald of its own with its own data directory. The manager is
# also AppServer0 and the load balancer's director: a virtual service on 127.0.0.1:8000
# spreads requests over a small web server per node (127.0.0.2:8080, 127.0.0.3:8080), which
# the health engine probes. Ctrl-C (or SIGTERM) stops it cleanly; run this again and it finds
# its stores and enrolments intact.
# It also hosts a demo site: the account `demo` with the domain demo.shoal.test, created once
# on the manager and served by both nodes, each with its own nginx and php-fpm (127.0.0.2:8081,
# 127.0.0.3:8081) that the http plugin configures, balanced on 127.0.0.1:8001.
#   SHOAL_PREFIX  install prefix (default /opt/shoal)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh demo

prefix=${SHOAL_PREFIX:-/opt/shoal}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib
cmake --build build -j "$(nproc)"
cmake --install build >/dev/null

# The example plugin, built against the installed SDK as any third-party plugin is.
# shoal_DIR named outright, so a build folder made for another prefix cannot find an old SDK.
cmake -S examples/hello -B build/examples/hello -DCMAKE_PREFIX_PATH="$prefix" \
  -Dshoal_DIR="$prefix/lib/cmake/shoal" >/dev/null
cmake --build build/examples/hello >/dev/null
install -m 0755 build/examples/hello/hello.so "$prefix/lib/shoal/plugins/hello.so"

etc=$prefix/etc
mkdir -p "$etc" "$prefix/var"
write_config() { # NAME ROLE ADDRESS [EXTRA]
  local file=$etc/$1.conf
  [ -f "$file" ] && return
  cat >"$file" <<CONF
[shoald]
role = $2
data_dir = $prefix/var/$1
plugin_dir = $prefix/lib/shoal/plugins
store = sqlite
log_level = information
advertise_address = $3
${4:-}
[plugin.hello]
greeting = Hello
CONF
}
# The demo's web servers listen on 8080; everything stays on loopback, where only the
# userspace dataplane can balance (IPVS does not forward loopback traffic).
write_config manager manager 127.0.0.1 "app_server = true

[plugin.http]
port = 8080
interval_ms = 1000
timeout_ms = 500

[plugin.lvs]
dataplane = userspace
"
# Each node's own nginx and php-fpm for the hosted site, configured by the http plugin.
web_settings() { # NODE ADDRESS
  local d=$prefix/var/$1/web
  cat <<CONF
[plugin.http]
port = 8080
interval_ms = 1000
timeout_ms = 500
site_port = 8081
site_tls_port = 8444
site_listen_address = $2
sites_dir = $d/sites
pools_dir = $d/pools
cert_dir = $d/certs
log_dir = $d/logs
php_run_dir = $d/run
static_dir = $d/static
acme_challenge_root = $prefix/var/storage/.acme
nginx_command = nginx -p $d/nginx/ -c $d/nginx/nginx.conf
nginx_reload_command = nginx -p $d/nginx/ -c $d/nginx/nginx.conf -s reload
php_fpm_reload_command = pkill --signal USR2 --pidfile $d/php/php-fpm.pid
CONF
}
# A node configuration from before the demo hosted a site is written anew.
for node in node1 node2; do grep -qs '^site_port' "$etc/$node.conf" || rm -f "$etc/$node.conf"; done
write_config node1 node 127.0.0.2 "$(web_settings node1 127.0.0.2)"
write_config node2 node 127.0.0.3 "$(web_settings node2 127.0.0.3)"
grep -q '^storage_root' "$etc/manager.conf" || sed -i "/^\[shoald\]/a storage_root = $prefix/var/storage" "$etc/manager.conf"
mkdir -p "$prefix/var/storage/.acme"

# Starts a node's nginx and php-fpm (again, on a later run) from configuration of its own.
start_web() { # NODE ADDRESS
  local d=$prefix/var/$1/web
  mkdir -p "$d"/{nginx,php,sites,pools,certs,logs,run,static}
  cat >"$d/nginx/nginx.conf" <<CONF
user www-data;
worker_processes 1;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/nginx/body;
  proxy_temp_path $d/nginx/proxy;
  fastcgi_temp_path $d/nginx/fastcgi;
  uwsgi_temp_path $d/nginx/uwsgi;
  scgi_temp_path $d/nginx/scgi;
  include $d/sites/*.conf;
}
CONF
  cat >"$d/php/php-fpm.conf" <<CONF
[global]
pid = $d/php/php-fpm.pid
error_log = $d/php/php-fpm.log
include = $d/pools/*.conf
; keeps the master up while no account has a pool
[keeper]
user = www-data
group = www-data
listen = $d/php/keeper.sock
pm = ondemand
pm.max_children = 1
CONF
  [ -f "$d/nginx/nginx.pid" ] && nginx -p "$d/nginx/" -c "$d/nginx/nginx.conf" -s quit 2>/dev/null || true
  [ -f "$d/php/php-fpm.pid" ] && pkill --pidfile "$d/php/php-fpm.pid" 2>/dev/null || true
  sleep 0.5
  nginx -p "$d/nginx/" -c "$d/nginx/nginx.conf"
  php-fpm8.2 -y "$d/php/php-fpm.conf"
}
start_web node1 127.0.0.2
start_web node2 127.0.0.3

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for node in node1 node2; do
    d=$prefix/var/$node/web
    nginx -p "$d/nginx/" -c "$d/nginx/nginx.conf" -s quit 2>/dev/null || true
    pkill --pidfile "$d/php/php-fpm.pid" 2>/dev/null || true
  done
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

# A web server per node, each saying which node it is.
for n in 1 2; do
  www=$prefix/var/www-node$n
  mkdir -p "$www"
  echo "served by node$n" >"$www/index.html"
  python3 -m http.server 8080 --bind "127.0.0.$((n + 1))" --directory "$www" >/dev/null 2>&1 &
  pids+=($!)
done
# Roles: the manager's own node directs the balancer; node1 and node2 run http.
node_id() { "$ctl" --json node list | python3 -c "import json,sys; print(next(n['id'] for n in json.load(sys.stdin)['nodes'] if n['address'] == sys.argv[1]))" "$1"; }
for _ in $(seq 50); do "$ctl" --json node list | grep -q '"127.0.0.1"' && break; sleep 0.2; done
"$ctl" node set-roles "$(node_id 127.0.0.1)" director >/dev/null
"$ctl" node set-roles "$(node_id 127.0.0.2)" http >/dev/null
"$ctl" node set-roles "$(node_id 127.0.0.3)" http >/dev/null
if ! "$ctl" --json lb list | grep -q 'tcp:127.0.0.1:8000'; then
  "$ctl" lb add -t 127.0.0.1:8000 --service http -s rr -p 0 -m >/dev/null
  "$ctl" lb add-server -t 127.0.0.1:8000 -r 127.0.0.2:8080 -m >/dev/null
  "$ctl" lb add-server -t 127.0.0.1:8000 -r 127.0.0.3:8080 -m >/dev/null
else
  "$ctl" lb sync >/dev/null
fi
# The demo site: one account, created once on the manager; both nodes get its Unix user and
# its vhost and php-fpm pool through the queue.
if ! "$ctl" account show demo >/dev/null 2>&1; then
  "$ctl" account add demo demo.shoal.test
fi
docroot=$prefix/var/storage/demo/demo.shoal.test/public_html
for _ in $(seq 100); do [ -d "$docroot" ] && break; sleep 0.2; done
if [ -d "$docroot" ] && [ ! -f "$docroot/index.php" ]; then
  cat >"$docroot/index.php" <<'PHP'
<?php echo "Hello from the demo site, served by ", $_SERVER['SERVER_ADDR'], " with PHP as uid ", posix_geteuid(), "\n";
PHP
  chown --reference="$docroot" "$docroot/index.php"
fi
if ! "$ctl" --json lb list | grep -q 'tcp:127.0.0.1:8001'; then
  "$ctl" lb add -t 127.0.0.1:8001 --service http -s rr -p 0 -m >/dev/null
  "$ctl" lb add-server -t 127.0.0.1:8001 -r 127.0.0.2:8081 -m >/dev/null
  "$ctl" lb add-server -t 127.0.0.1:8001 -r 127.0.0.3:8081 -m >/dev/null
fi
sleep 3
"$ctl" lb list
python3 - <<'PY'
import urllib.request
for _ in range(4):
    try:
        print("GET http://127.0.0.1:8000/ ->", urllib.request.urlopen("http://127.0.0.1:8000/", timeout=2).read().decode().strip())
    except OSError as e:
        print("GET http://127.0.0.1:8000/ ->", e)
for _ in range(4):
    request = urllib.request.Request("http://127.0.0.1:8001/", headers={"Host": "demo.shoal.test"})
    try:
        print("GET http://demo.shoal.test/ via 127.0.0.1:8001 ->", urllib.request.urlopen(request, timeout=5).read().decode().strip())
    except OSError as e:
        print("GET http://demo.shoal.test/ via 127.0.0.1:8001 ->", e)
PY
echo
echo "demo: a manager and two nodes are running; their logs follow (also in $log)."
echo "  export SHOAL_MANAGER=$SHOAL_MANAGER SHOAL_CA=$SHOAL_CA SHOAL_TOKEN_FILE=$SHOAL_TOKEN_FILE"
echo "  $ctl queue add hello.greet --payload '{\"name\":\"you\"}' --key demo --target all"
echo "  $ctl lb list --stats; $ctl health     # stop a node's web server and watch it drain"
echo "  curl -H 'Host: demo.shoal.test' http://127.0.0.1:8001/   # the demo account's site, from either node"
echo "  $ctl account show demo; $ctl domain add demo www.demo.shoal.test --kind alias --parent demo.shoal.test"
password_file=$prefix/var/manager/initial-admin-password
echo "  the panel: https://127.0.0.1:7443/panel/ (the cluster's own CA signed its certificate)"
if [ -f "$password_file" ]; then
  echo "    user admin, one-time password $(cat "$password_file") (change it: $ctl user passwd admin)"
fi
echo "Ctrl-C stops the cluster; running this again finds it as it was."
tail -n +1 -f "$log" &
pids+=($!)
wait "${pids[0]}"
