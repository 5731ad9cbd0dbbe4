#!/bin/sh
# /init of Leap's 32-bit Linux test initrd: report, then power the machine off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "LEAP-MARKER: userland up"
uname -a
cat /proc/cpuinfo
cat /proc/interrupts
md5sum /known.bin
i=0; s=0
while [ $i -lt 100 ]; do i=$((i + 1)); s=$((s + i * i)); done
echo "LEAP-ARITH: $s"
echo "LEAP-MARKER: done"
# ACPI S5 through the PIIX4's PM1a_CNT: Leap stops with status 0.
poweroff -f
