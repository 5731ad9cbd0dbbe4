#!/usr/bin/env bash
# Install what Leap's tests and demo need on a fresh Debian machine that
# has Rust: gcc/binutils (test guests), QEMU (reference runs), Unicorn
# (CPU oracle). Safe to run again; skips what is already there.
set -euo pipefail

need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v ld >/dev/null 2>&1 || need_apt+=(binutils)
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ "${LEAP_SKIP_QEMU:-0}" != 1 ]; then
    command -v qemu-system-i386 >/dev/null 2>&1 || need_apt+=(qemu-system-x86)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing ${need_apt[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "setup: please install: ${need_apt[*]} (not root, cannot apt-get)" >&2
    fi
fi
if ! python3 -c "import unicorn, iced_x86" 2>/dev/null; then
    echo "setup: installing the unicorn Python package" >&2
    python3 -m pip install -q unicorn iced-x86 2>/dev/null \
        || python3 -m pip install -q --break-system-packages unicorn iced-x86
fi
