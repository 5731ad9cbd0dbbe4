#!/usr/bin/env bash
# The main job: build the demo guest from test-images/ and boot it in Leap.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAP_SKIP_QEMU=1 ./scripts/setup.sh
out=target/test-images
bash test-images/build.sh "$out" hello >/dev/null
cargo build --release -q -p leap
exec ./target/release/leap --kernel "$out/hello.elf" --timeout 60 "$@"
