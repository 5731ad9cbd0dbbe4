#!/bin/bash
# Run one test image under QEMU and pass its exit status through.
#
#   test-images/run-qemu.sh OUTDIR NAME      (NAME without .elf; "realmode_rom" for the ROM)
#
# The guest's port 0xE9 output goes to stdout.  Exit status: 1 = guest PASS,
# 3 = guest FAIL (isa-debug-exit turns code N into (N<<1)|1), 124 = timeout,
# anything else = QEMU itself failed.
#
# Environment:
#   QEMU     qemu binary (default qemu-system-i386)
#   QEMU64   qemu binary for the images with 64-bit code, long_mode and
#            bench64 (default qemu-system-x86_64; qemu-system-i386 has no
#            long mode)
#   ACCEL    tcg (default) or kvm (run on the host CPU, for cross-checking)
#   CPU      -cpu model (default: max, which has PSE, PAE and NX under TCG)
#   TIMEOUT  seconds (default 60)
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 OUTDIR NAME" >&2
    exit 2
fi
OUT=$1
NAME=$2
if [ "$NAME" = long_mode ] || [ "$NAME" = bench64 ]; then
    QEMU=${QEMU64:-qemu-system-x86_64}
else
    QEMU=${QEMU:-qemu-system-i386}
fi
ACCEL=${ACCEL:-tcg}
TIMEOUT=${TIMEOUT:-60}
if [ "$ACCEL" = kvm ]; then
    CPU=${CPU:-host}
else
    CPU=${CPU:-max}
fi

if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "run-qemu.sh: $QEMU not found (apt-get install qemu-system-x86)" >&2
    exit 2
fi

if [ "$NAME" = realmode_rom ]; then
    boot=(-bios "$OUT/realmode_rom.bin")
else
    boot=(-kernel "$OUT/$NAME.elf")
fi

exec timeout "$TIMEOUT" "$QEMU" \
    -machine pc,accel="$ACCEL" -cpu "$CPU" -m 128 \
    -display none -no-reboot -nodefaults -serial null \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -debugcon stdio \
    "${boot[@]}"
