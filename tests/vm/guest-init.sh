#!/bin/busybox sh
# /init of the IPVS test guest: mount the kernel filesystems, load the modules listed by
# run_ipvs_vm.sh in order, run the program it placed, print one verdict line, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /run /tmp
ln -s /run /var/run
for module in $(cat /etc/shoal-vm/modules); do
  insmod "/lib/modules/$module" || echo "guest: insmod $module failed"
done
ip link set lo up
echo "guest: kernel $(uname -r), running $(cat /etc/shoal-vm/command)"
$(cat /etc/shoal-vm/command)
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "SHOAL-VM-RESULT: PASS"
else
  echo "SHOAL-VM-RESULT: FAIL (exit $rc)"
fi
sync
poweroff -f
