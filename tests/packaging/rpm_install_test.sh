#!/usr/bin/env bash
# Builds the shoal RPMs from a dedicated build of the source tree, inspects
# them, installs them into a scratch RPM root and runs the installed daemon.
#
# usage: rpm_install_test.sh SOURCE_DIR SCRATCH_DIR [BUILD_DIR]
# BUILD_DIR (default SCRATCH_DIR/build) is where the packages are built, emptied first.
# Environment: CMAKE and CPACK name the tools to use (default: from PATH); SHOAL_WERROR
# (ON/OFF, default OFF) is passed to the build.
# Exit status: 0 all checks passed, 1 a check failed, 77 rpm tools missing.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 SOURCE_DIR SCRATCH_DIR [BUILD_DIR]" >&2
  exit 2
fi
SRC=$(cd "$1" && pwd)
WORK=$2
BUILD=${3:-}
CMAKE=${CMAKE:-cmake}
CPACK=${CPACK:-cpack}

for tool in rpm rpmbuild "$CMAKE" "$CPACK"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool not found" >&2
    exit 77
  fi
done

for dir in "$WORK" "$BUILD"; do
  case "$dir" in
    / | "$SRC" | "$SRC"/) echo "refusing to use '$dir' as a scratch directory" >&2; exit 2 ;;
  esac
done
[[ -n $WORK ]] || { echo "refusing an empty scratch directory" >&2; exit 2; }
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
BUILD=${BUILD:-$WORK/build}
rm -rf "$BUILD"
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
ROOT=$WORK/root
LOGS=$WORK/logs
mkdir -p "$LOGS" "$ROOT"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# Prints "ok: WHAT" when no check failed since the last call.
checked=0
ok() {
  if [[ $failures -eq $checked ]]; then
    echo "ok: $*"
  fi
  checked=$failures
}
# Runs a step whose failure makes the rest pointless; its output goes to a log.
step() {
  local name=$1
  shift
  echo "== $name"
  if ! "$@" >"$LOGS/$name.log" 2>&1; then
    echo "FAIL: $name failed: $*" >&2
    echo "---- last lines of $LOGS/$name.log" >&2
    tail -n 60 "$LOGS/$name.log" >&2
    exit 1
  fi
}
finish() {
  if [[ $failures -ne 0 ]]; then
    echo "$failures check(s) failed; logs and packages are in $WORK" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

# ---------------------------------------------------------------------------
# 1. Configure, build and package the tree the way an EL9 package is built.
step configure "$CMAKE" -S "$SRC" -B "$BUILD" \
  -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib64 \
  -DSHOAL_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_WERROR="${SHOAL_WERROR:-OFF}"
step build "$CMAKE" --build "$BUILD" -j2
# shellcheck disable=SC2016 # expanded by the inner shell
step cpack bash -c 'cd "$1" && "$2" -G RPM' cpack "$BUILD" "$CPACK"

VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
if [[ -z $VERSION ]]; then
  echo "FAIL: no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt" >&2
  exit 1
fi
echo "project version: $VERSION"

# ---------------------------------------------------------------------------
# 2. Inspect the packages.
shopt -s nullglob
runtime_rpms=("$BUILD"/shoal-[0-9]*.rpm)
devel_rpms=("$BUILD"/shoal-devel-[0-9]*.rpm)
shopt -u nullglob
if [[ ${#runtime_rpms[@]} -ne 1 ]]; then
  echo "FAIL: expected one shoal-<version>-*.rpm in $BUILD, found ${#runtime_rpms[@]}:" "${runtime_rpms[@]}" >&2
  ls -l "$BUILD"/*.rpm >&2 || true
  exit 1
fi
if [[ ${#devel_rpms[@]} -ne 1 ]]; then
  echo "FAIL: expected one shoal-devel-<version>-*.rpm in $BUILD, found ${#devel_rpms[@]}:" "${devel_rpms[@]}" >&2
  ls -l "$BUILD"/*.rpm >&2 || true
  exit 1
fi
RUNTIME_RPM=${runtime_rpms[0]}
DEVEL_RPM=${devel_rpms[0]}
echo "packages: $(basename "$RUNTIME_RPM") $(basename "$DEVEL_RPM")"
for pkg in "$RUNTIME_RPM" "$DEVEL_RPM"; do
  pkg_version=$(rpm -qp --qf '%{VERSION}' "$pkg")
  if [[ $pkg_version != "$VERSION" ]]; then
    fail "$(basename "$pkg") has version '$pkg_version', the project is '$VERSION'"
  fi
done
if [[ $(rpm -qp --qf '%{NAME}' "$RUNTIME_RPM") != shoal ]]; then
  fail "$(basename "$RUNTIME_RPM") is not named 'shoal'"
fi
if [[ $(rpm -qp --qf '%{NAME}' "$DEVEL_RPM") != shoal-devel ]]; then
  fail "$(basename "$DEVEL_RPM") is not named 'shoal-devel'"
fi
ok "package names and versions"

# Requirements: the EL9 package names, and no soname of the build host.
runtime_requires=$(rpm -qpR "$RUNTIME_RPM")
devel_requires=$(rpm -qpR "$DEVEL_RPM")
for name in poco-foundation poco-xml poco-util poco-json poco-net poco-crypto \
  poco-netssl poco-data poco-sqlite poco-mysql boost-filesystem \
  boost-program-options openssl-libs mariadb-connector-c libnl3 rrdtool systemd; do
  if ! awk '{print $1}' <<<"$runtime_requires" | grep -qx -- "$name"; then
    fail "shoal does not require '$name'; its requirements are:"$'\n'"$runtime_requires"
  fi
done
if ! grep -qx "shoal = $VERSION" <<<"$devel_requires"; then
  fail "shoal-devel does not require 'shoal = $VERSION'; its requirements are:"$'\n'"$devel_requires"
fi
for pkg in "$RUNTIME_RPM" "$DEVEL_RPM"; do
  sonames=$(rpm -qpR "$pkg" | grep -E '\.so(\.[0-9]+)*(\(|$|[[:space:]])|libPoco|GLIBC|GLIBCXX' || true)
  if [[ -n $sonames ]]; then
    fail "$(basename "$pkg") requires sonames of the build host (automatic requirements):"$'\n'"$sonames"
  fi
  provided=$(rpm -qp --provides "$pkg" | grep -E '\.so(\.[0-9]+)*(\(|$|[[:space:]])' || true)
  if [[ -n $provided ]]; then
    fail "$(basename "$pkg") provides sonames (automatic provides):"$'\n'"$provided"
  fi
done
ok "requirements checked"

# Contents.
runtime_files=$(rpm -qpl "$RUNTIME_RPM")
devel_files=$(rpm -qpl "$DEVEL_RPM")
for path in /usr/bin/shoald /etc/shoal/shoald.conf /usr/lib/systemd/system/shoald.service \
  /usr/lib64/shoal/plugins /var/lib/shoal /usr/share/shoal/web/index.html /usr/share/shoal/web/app.js; do
  if ! grep -qx -- "$path" <<<"$runtime_files"; then
    fail "shoal does not contain $path; it contains:"$'\n'"$runtime_files"
  fi
done
for path in /usr/include/shoal/abi.h /usr/include/shoal/panel.h /usr/lib64/cmake/shoal/shoalConfig.cmake; do
  if ! grep -qx -- "$path" <<<"$devel_files"; then
    fail "shoal-devel does not contain $path; it contains:"$'\n'"$devel_files"
  fi
done
# Directories owned by the distribution's filesystem, systemd and
# cmake-filesystem packages must not be claimed (file conflicts on install).
for path in / /etc /usr /usr/bin /usr/lib /usr/lib64 /usr/include /usr/lib/systemd \
  /usr/lib/systemd/system /usr/lib64/cmake /usr/share /var /var/lib; do
  for pkg in "$RUNTIME_RPM" "$DEVEL_RPM"; do
    if rpm -qpl "$pkg" | grep -qx -- "$path"; then
      fail "$(basename "$pkg") claims the system directory $path"
    fi
  done
done
# Only the configuration is a config file, and it is %config(noreplace).
config_files=$(rpm -qpc "$RUNTIME_RPM")
if [[ $config_files != /etc/shoal/shoald.conf ]]; then
  fail "shoal's config files are '$config_files', expected /etc/shoal/shoald.conf"
fi
conf_flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RUNTIME_RPM" |
  awk '$1 == "/etc/shoal/shoald.conf" {print $2}')
if [[ $conf_flags != *c* || $conf_flags != *n* ]]; then
  fail "/etc/shoal/shoald.conf has file flags '$conf_flags', expected config (c) and noreplace (n)"
fi
devel_config=$(rpm -qpc "$DEVEL_RPM")
if [[ -n $devel_config ]]; then
  fail "shoal-devel has config files: $devel_config"
fi
# Scriptlets must tolerate a missing systemctl.
scripts=$(rpm -qp --scripts "$RUNTIME_RPM")
if ! grep -q 'systemctl daemon-reload' <<<"$scripts"; then
  fail "shoal has no systemctl daemon-reload scriptlet:"$'\n'"$scripts"
fi
unguarded=$(grep 'systemctl ' <<<"$scripts" | grep -v 'command -v systemctl' || true)
if [[ -n $unguarded ]]; then
  fail "shoal has systemctl calls not guarded by 'command -v systemctl':"$'\n'"$unguarded"
fi
ok "contents checked"

# ---------------------------------------------------------------------------
# 3. Install into a scratch root. rpm runs the scriptlets chrooted into it:
# give the root a /bin/sh (the host's, with its libraries) and /dev/null, so
# they really run there, without systemctl.
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/tmp" "$ROOT/var/tmp"
cp -L /bin/sh "$ROOT/bin/sh"
while read -r lib; do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done < <(ldd /bin/sh | grep -o '/[^ ]*' || true)
if ! mknod -m 666 "$ROOT/dev/null" c 1 3 2>/dev/null; then
  echo "note: cannot create $ROOT/dev/null; scriptlet redirections will complain"
fi
if ! chroot "$ROOT" /bin/sh -c ':' 2>/dev/null; then
  echo "note: the host's /bin/sh does not run inside the scratch root; scriptlets cannot run there"
  sh_in_root=no
else
  sh_in_root=yes
fi

step initdb rpm --root "$ROOT" --initdb
echo "== install"
if ! rpm -ivh --root "$ROOT" --nodeps "$RUNTIME_RPM" "$DEVEL_RPM" >"$LOGS/install.log" 2>&1; then
  echo "FAIL: rpm -ivh --root $ROOT --nodeps failed:" >&2
  cat "$LOGS/install.log" >&2
  exit 1
fi
if [[ $sh_in_root == yes ]] && grep -i 'scriptlet failed' "$LOGS/install.log" >&2; then
  fail "a scriptlet failed during the install (see above)"
fi
for name in shoal shoal-devel; do
  if ! rpm --root "$ROOT" -q "$name" >/dev/null; then
    fail "$name is not installed in $ROOT"
  fi
done
ok "installed into $ROOT"

# The installed unit and configuration describe the packaged layout.
unit=$ROOT/usr/lib/systemd/system/shoald.service
conf=$ROOT/etc/shoal/shoald.conf
if ! grep -qx 'ExecStart=/usr/bin/shoald --config /etc/shoal/shoald.conf' "$unit"; then
  fail "$unit does not start /usr/bin/shoald --config /etc/shoal/shoald.conf:"$'\n'"$(grep -n ExecStart "$unit" || true)"
fi
for line in 'Type=simple' 'Restart=on-failure' 'StateDirectory=shoal'; do
  if ! grep -qx -- "$line" "$unit"; then
    fail "$unit lacks '$line'"
  fi
done
if ! grep -qx 'plugin_dir = /usr/lib64/shoal/plugins' "$conf"; then
  fail "$conf does not set plugin_dir = /usr/lib64/shoal/plugins:"$'\n'"$(grep -n plugin_dir "$conf" || true)"
fi
if ! grep -qx '\[shoald\]' "$conf"; then
  fail "$conf has no [shoald] section"
fi
ok "installed unit and configuration"

# ---------------------------------------------------------------------------
# 4. Run the installed daemon.
shoald=$ROOT/usr/bin/shoald
plugin_dir=$ROOT/usr/lib64/shoal/plugins
echo "== shoald --version"
if version_out=$("$shoald" --version 2>&1); then
  if ! grep -qF -- "$VERSION" <<<"$version_out"; then
    fail "shoald --version does not print $VERSION; it printed:"$'\n'"$version_out"
  fi
else
  fail "shoald --version exited with status $?; it printed:"$'\n'"$version_out"
fi
ok "shoald --version prints $VERSION"

# With the packaged configuration: shoald rejects settings it does not know,
# so this also checks that the default configuration is one it accepts.
echo "== shoald plugins --config $conf --plugin-dir $plugin_dir --json"
plugins_status=0
"$shoald" plugins --config "$conf" --plugin-dir "$plugin_dir" --json \
  >"$LOGS/plugins.out" 2>"$LOGS/plugins.err" || plugins_status=$?
if [[ $plugins_status -ne 0 ]]; then
  fail "shoald plugins exited with status $plugins_status; stdout:"$'\n'"$(cat "$LOGS/plugins.out")"$'\n'"stderr:"$'\n'"$(cat "$LOGS/plugins.err")"
else
  if grep -Eiq 'error|exception|fatal|terminate' "$LOGS/plugins.err"; then
    fail "shoald plugins reported an error on stderr:"$'\n'"$(cat "$LOGS/plugins.err")"
  fi
  plugin_files=$(find "$plugin_dir" -maxdepth 1 -type f -name '*.so' | wc -l)
  json_lines=$(grep -c . "$LOGS/plugins.out" || true)
  if [[ $json_lines -ne $plugin_files ]]; then
    fail "shoald plugins printed $json_lines line(s) for $plugin_files plugin file(s):"$'\n'"$(cat "$LOGS/plugins.out")"
  fi
  lineno=0
  while IFS= read -r line; do
    lineno=$((lineno + 1))
    [[ -z $line ]] && continue
    if command -v jq >/dev/null 2>&1; then
      valid=$(jq -e 'type == "object"' <<<"$line" 2>/dev/null || true)
    elif command -v python3 >/dev/null 2>&1; then
      valid=$(python3 -c 'import json,sys; print("true" if isinstance(json.loads(sys.argv[1]), dict) else "false")' "$line" 2>/dev/null || true)
    elif [[ $line =~ ^\{.*\}$ ]]; then
      valid=true
    else
      valid=false
    fi
    if [[ $valid != true ]]; then
      fail "shoald plugins line $lineno is not a JSON object: $line"
    fi
  done <"$LOGS/plugins.out"
  echo "shoald plugins printed $json_lines line(s) for $plugin_files plugin file(s)"
fi
ok "shoald plugins --json"

# A plugin built out of tree against the installed shoal-devel only (the
# example plugin), then loaded by the installed daemon.
example=$SRC/examples/hello
if [[ -f $example/CMakeLists.txt ]]; then
  step sdk-configure "$CMAKE" -S "$example" -B "$WORK/sdk-plugin" \
    -Dshoal_DIR="$ROOT/usr/lib64/cmake/shoal" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
  step sdk-build "$CMAKE" --build "$WORK/sdk-plugin" -j2
  if ! grep -q -- "-isystem $ROOT/usr/include\|-I$ROOT/usr/include" "$WORK/sdk-plugin/compile_commands.json"; then
    fail "the example plugin was not compiled against $ROOT/usr/include:"$'\n'"$(cat "$WORK/sdk-plugin/compile_commands.json")"
  fi
  sdk_plugins=$(find "$WORK/sdk-plugin" -maxdepth 1 -type f -name '*.so' | wc -l)
  echo "== shoald plugins --plugin-dir $WORK/sdk-plugin --json"
  sdk_status=0
  sdk_out=$("$shoald" plugins --config "$conf" --plugin-dir "$WORK/sdk-plugin" --json 2>&1) ||
    sdk_status=$?
  if [[ $sdk_plugins -lt 1 ]]; then
    fail "building $example against shoal-devel produced no plugin"
  elif [[ $sdk_status -ne 0 ]]; then
    fail "shoald refused the plugin built against shoal-devel (status $sdk_status):"$'\n'"$sdk_out"
  elif [[ $(grep -c '^{' <<<"$sdk_out") -ne $sdk_plugins ]]; then
    fail "shoald reported on the plugin built against shoal-devel:"$'\n'"$sdk_out"
  fi
  ok "a plugin built against shoal-devel loads"
else
  echo "note: no $example; plugin build against shoal-devel not checked"
fi

# ---------------------------------------------------------------------------
# 5. Verify, then reinstall over a locally modified configuration.
echo "== verify"
if ! verify_out=$(rpm --root "$ROOT" -V --nodeps shoal shoal-devel 2>&1); then
  fail "rpm -V reports changes right after the install:"$'\n'"$verify_out"
elif [[ -n $verify_out ]]; then
  fail "rpm -V printed:"$'\n'"$verify_out"
fi
ok "rpm -V shoal shoal-devel"

marker='; changed locally by rpm_install_test'
echo "$marker" >>"$conf"
echo "== reinstall over a modified configuration"
if ! rpm -Uvh --replacepkgs --root "$ROOT" --nodeps "$RUNTIME_RPM" >"$LOGS/reinstall.log" 2>&1; then
  fail "rpm -Uvh --replacepkgs failed:"$'\n'"$(cat "$LOGS/reinstall.log")"
else
  if [[ $sh_in_root == yes ]] && grep -i 'scriptlet failed' "$LOGS/reinstall.log" >&2; then
    fail "a scriptlet failed during the reinstall (see above)"
  fi
  if ! grep -qxF -- "$marker" "$conf"; then
    fail "the reinstall replaced the modified $conf (not noreplace); now:"$'\n'"$(cat "$conf")"
  fi
  if [[ -e $conf.rpmsave ]]; then
    fail "the reinstall moved the modified configuration to $conf.rpmsave"
  fi
  if [[ -e $conf.rpmnew ]]; then
    echo "note: rpm left the packaged configuration as $conf.rpmnew"
  fi
  verify_out=$(rpm --root "$ROOT" -V --nodeps shoal 2>&1 || true)
  if ! grep -Eq '^S\.5.{6} +c +/etc/shoal/shoald\.conf$' <<<"$verify_out" ||
    [[ $(grep -c . <<<"$verify_out") -ne 1 ]]; then
    fail "after the reinstall rpm -V should report only the modified configuration; it printed:"$'\n'"$verify_out"
  fi
fi
ok "modified configuration kept across the reinstall"

# Erasing keeps the modified configuration as .rpmsave, and the scriptlets
# of the erase run without systemctl.
echo "== erase"
if ! rpm -e --root "$ROOT" --nodeps shoal-devel shoal >"$LOGS/erase.log" 2>&1; then
  fail "rpm -e failed:"$'\n'"$(cat "$LOGS/erase.log")"
else
  if [[ $sh_in_root == yes ]] && grep -i 'scriptlet failed' "$LOGS/erase.log" >&2; then
    fail "a scriptlet failed during the erase (see above)"
  fi
  if ! grep -qxF -- "$marker" "$conf.rpmsave" 2>/dev/null; then
    fail "rpm -e did not keep the modified configuration as $conf.rpmsave"
  fi
  if [[ -e $ROOT/usr/bin/shoald ]]; then
    fail "rpm -e left $ROOT/usr/bin/shoald behind"
  fi
fi
ok "erased"

finish
