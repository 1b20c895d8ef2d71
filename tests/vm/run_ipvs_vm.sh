#!/usr/bin/env bash
# Boots Debian's own kernel under qemu with a small initramfs and runs one program in it as
# root, where IPVS is real (this host's kernel may have none). The guest holds busybox,
# iproute2's ip, ipvsadm, the IPVS modules and the program with its shared libraries.
# qemu exits 0 whatever the guest did: the verdict is the guest's "SHOAL-VM-RESULT:" line.
#
# usage: run_ipvs_vm.sh --cache DIR --run PROGRAM [ARG...]
#   DIR keeps the kernel package and its unpacked tree across runs.
#   SHOAL_VM_TIMEOUT (seconds, default 840) bounds the boot.
set -euo pipefail

cache= program=
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    --run) program=$2; shift 2; break ;;
    *) echo "usage: $0 --cache DIR --run PROGRAM [ARG...]" >&2; exit 2 ;;
  esac
done
[ -n "$cache" ] && [ -x "$program" ] || { echo "usage: $0 --cache DIR --run PROGRAM [ARG...]" >&2; exit 2; }
program_args=("$@")
timeout_s=${SHOAL_VM_TIMEOUT:-840}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

for tool in qemu-system-x86_64 busybox ipvsadm nft modinfo cpio apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "vm: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
busybox_bin=/bin/busybox
[ -x "$busybox_bin" ] || busybox_bin=$(command -v busybox)
ip_bin=/usr/sbin/ip; [ -x "$ip_bin" ] || ip_bin=/sbin/ip
ipvsadm_bin=$(command -v ipvsadm)
nft_bin=$(command -v nft)

# ---- the kernel: the versioned package linux-image-amd64 depends on, unpacked once --------
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
exec 9>"$cache/.lock"
flock 9
package=$(kernel_package)
if [ -z "$package" ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  package=$(kernel_package)
fi
[ -n "$package" ] || { echo "vm: apt-cache knows no linux-image-amd64 dependency" >&2; exit 1; }
tree=$cache/$package
if [ ! -f "$tree/.unpacked" ]; then
  echo "vm: fetching $package"
  rm -rf "$tree" && mkdir -p "$tree/download"
  if ! (cd "$tree/download" && apt-get download "$package" >/dev/null 2>&1); then
    # Stale package lists name a version the archive no longer has: refresh once.
    apt-get update -qq >/dev/null 2>&1 || true
    package=$(kernel_package)
    tree=$cache/$package
    rm -rf "$tree" && mkdir -p "$tree/download"
    (cd "$tree/download" && apt-get download "$package") || { echo "vm: cannot download $package" >&2; exit 1; }
  fi
  dpkg -x "$tree"/download/*.deb "$tree/root"
  rm -rf "$tree/download"
  touch "$tree/.unpacked"
fi
flock -u 9
vmlinuz=$(ls "$tree"/root/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$tree"/root/lib/modules/* | head -1)

# ---- the initramfs ---------------------------------------------------------------------
work=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,var,usr/sbin,etc/shoal-vm,lib/modules}
cp "$busybox_bin" "$root/bin/busybox"
mknod "$root/dev/console" c 5 1 2>/dev/null || true

# A binary at the same path inside, with every library ldd lists (and the loader).
copy_with_libraries() {
  local from=$1 to=$2
  mkdir -p "$(dirname "$root$to")"
  strip -o "$root$to" "$from" 2>/dev/null || cp "$from" "$root$to"
  chmod 755 "$root$to"
  for lib in $(ldd "$from" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$(dirname "$root$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_with_libraries "$ip_bin" /usr/sbin/ip
copy_with_libraries "$ipvsadm_bin" /usr/sbin/ipvsadm
# nft marks the packets of firewall-mark services.
copy_with_libraries "$nft_bin" /usr/sbin/nft
copy_with_libraries "$program" /bin/shoal-guest-program

# Modules in load order: each after what `modinfo -F depends` says it needs.
# crc32c_generic first: libcrc32c needs a crc32c implementation but does not name one.
declare -A placed=()
ordered=()
module_file() { find "$moddir" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -1; }
place() {
  local name=$1 file dep
  [ -n "${placed[$name]:-}" ] && return 0
  file=$(module_file "$name")
  [ -n "$file" ] || { echo "vm: the kernel has no module $name" >&2; return 1; }
  placed[$name]=1
  for dep in $(modinfo -F depends "$file" | tr ',' ' '); do place "$dep"; done
  case "$file" in
    *.xz) xz -dc "$file" > "$root/lib/modules/$name.ko" ;;
    *.zst) zstd -qdc "$file" > "$root/lib/modules/$name.ko" ;;
    *) cp "$file" "$root/lib/modules/$name.ko" ;;
  esac
  ordered+=("$name.ko")
}
schedulers=()
for file in $(find "$moddir" -path '*netfilter/ipvs/ip_vs_*.ko*' | sort); do
  name=$(basename "$file"); name=${name%%.ko*}
  case "$name" in ip_vs_ftp|ip_vs_pe_*) continue ;; esac  # helpers, not schedulers
  schedulers+=("${name#ip_vs_}")
done
for name in crc32c_generic nf_defrag_ipv4 nf_defrag_ipv6 libcrc32c nf_conntrack ip_vs veth nf_tables; do
  place "$name"
done
for s in "${schedulers[@]}"; do place "ip_vs_$s"; done
printf '%s\n' "${ordered[@]}" > "$root/etc/shoal-vm/modules"
printf '%s\n' "${schedulers[@]}" > "$root/etc/shoal-vm/schedulers"
echo "/bin/shoal-guest-program ${program_args[*]:-}" > "$root/etc/shoal-vm/command"

cp "$(dirname "$0")/guest-init.sh" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$work/initrd.gz"

# ---- boot ------------------------------------------------------------------------------
echo "vm: booting $(basename "$vmlinuz") with $(basename "$program") ($(du -h "$work/initrd.gz" | cut -f1) initramfs)"
log=$work/console.log
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot -nic none \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1" </dev/null 2>&1 | tr -d '\r' | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ]; then
  echo "vm: the guest did not finish within ${timeout_s} s" >&2
  exit 1
fi
if grep -q '^SHOAL-VM-RESULT: PASS' "$log"; then
  exit 0
fi
grep -q '^SHOAL-VM-RESULT:' "$log" || echo "vm: the guest printed no verdict (qemu exit $status)" >&2
exit 1
