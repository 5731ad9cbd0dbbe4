#!/usr/bin/env bash
# The main job: fetch Debian 12's stock amd64 kernel (linux-image-amd64)
# and busybox-static with apt (no root needed once the package lists
# exist), build Leap's initramfs from them, and boot it headless in Leap
# with the JIT, the serial console on this terminal, to an interactive
# busybox shell. Quit with 'poweroff -f' or 'exit' (the guest powers off
# through ACPI) or Ctrl-A X.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAP_SKIP_QEMU=1 ./scripts/setup.sh
out=target/linux-amd64
bash test-images/linux/fetch-debian-amd64.sh "$out" >/dev/null
cargo build --release -q -p leap
exec ./target/release/leap -m 256 --jit on --kernel "$out/vmlinuz" \
    --initrd "$out/initramfs.gz" --append "console=ttyS0" "$@"
