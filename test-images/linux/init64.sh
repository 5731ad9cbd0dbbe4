#!/bin/sh
# /init of Leap's amd64 initramfs (Debian's busybox-static): mount the
# pseudo filesystems, print the marker, then run /test.sh when the kernel
# command line says leap.run=test, or an interactive shell on the console.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "LEAP-MARKER: userland up"
case " $(cat /proc/cmdline) " in
*" leap.run=test "*)
    /bin/sh /test.sh
    ;;
esac
echo "Leap: busybox shell on the serial console; 'poweroff -f' or Ctrl-A X to quit."
# cttyhack gives the shell a controlling terminal (job control, Ctrl-C).
# When the shell ends (exit, or end of input) the machine powers off
# rather than letting init die and the kernel panic.
setsid cttyhack sh -l
poweroff -f
