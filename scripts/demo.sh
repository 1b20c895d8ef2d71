#!/usr/bin/env bash
# Installs what is missing, builds shoal, installs it under /opt/shoal with the example
# plugin, and runs shoald in the foreground as a manager on the embedded SQLite store.
# Stop it with Ctrl-C (or SIGTERM); run this again and it finds its store intact.
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

config=$prefix/etc/shoald.conf
if [ ! -f "$config" ]; then
  mkdir -p "$prefix/etc"
  cat >"$config" <<CONF
[shoald]
role = manager
data_dir = $prefix/var
plugin_dir = $prefix/lib/shoal/plugins
store = sqlite
log_level = information

[plugin.hello]
greeting = Hello
CONF
fi
echo "demo: $prefix/bin/shoald --config $config (Ctrl-C stops it)"
exec "$prefix/bin/shoald" --config "$config"
