#!/usr/bin/env bash
# Everything: set-up, then every test in the workspace (unit tests, the
# Unicorn differential run, the test-image boots and the QEMU comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --release "$@"
