#!/usr/bin/env bash
# The main job: fetch Debian 12's 32-bit kernel (its netboot installer
# package, with apt; no root needed once the package lists exist), build
# Leap's small busybox initrd from it, and boot it headless in Leap with the
# serial console on this terminal. The guest prints what it found and resets
# the machine, which ends the run.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAP_SKIP_QEMU=1 ./scripts/setup.sh
out=target/linux-i386
bash test-images/linux/fetch-debian-i386.sh "$out" >/dev/null
cargo build --release -q -p leap
exec ./target/release/leap -m 256 --kernel "$out/linux" --initrd "$out/test-initrd.gz" \
    --append "console=ttyS0" --timeout 1200 "$@"
