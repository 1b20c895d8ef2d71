#!/usr/bin/env bash
# Installs what shoal needs on Debian 12, skipping what is already there.
#   install-deps.sh build   compilers and libraries
#   install-deps.sh demo    the above plus nginx and php-fpm, which serve scripts/demo.sh's site
#   install-deps.sh test    the above plus what the test suite runs (MariaDB, the daemons the
#                           probes meet, qemu, Chromium and Node.js for the browser test)
set -euo pipefail
what=${1:-build}

build_packages=(g++ make cmake pkg-config git ca-certificates
  libpoco-dev libboost-dev libboost-filesystem-dev libboost-program-options-dev
  libnl-3-dev libnl-genl-3-dev librrd-dev fonts-dejavu-core libssl-dev libmariadb-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libidn2-dev
  python3)
# The services the probes are tested against, the peers of the benchmarks (haproxy, wrk),
# and what boots Debian's own kernel under qemu for the real-IPVS tests; clang and its
# runtime (libFuzzer, the sanitizers) for the fuzz targets; lego (the ACME client shoald
# runs) and pebble (a test ACME server) for the certificate tests; ccache, so the suite's
# second build of the same sources (the RPM's) compiles little.
test_packages=(ccache mariadb-server mariadb-client rpm python3 binutils iproute2
  nginx php8.2-fpm postfix dovecot-imapd dovecot-pop3d vsftpd haproxy wrk rrdtool lego pebble
  qemu-system-x86 busybox-static ipvsadm kmod cpio nftables curl openssl procps
  chromium clang libclang-rt-14-dev)
# The browser test drives Chromium with playwright-core from npm: Node.js and npm, unless the
# machine has them already (from another source than Debian's packages).
if [ "$what" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  test_packages+=(nodejs npm)
fi

packages=("${build_packages[@]}")
[ "$what" = test ] && packages+=("${test_packages[@]}")
[ "$what" = demo ] && packages+=(nginx php8.2-fpm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y --no-install-recommends -o DPkg::Lock::Timeout=600)
apt-get install "${apt_opts[@]}" "${missing[@]}" || {
  apt-get update -o DPkg::Lock::Timeout=600
  apt-get install "${apt_opts[@]}" "${missing[@]}"
}
