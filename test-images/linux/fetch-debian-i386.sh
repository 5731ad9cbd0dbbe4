#!/bin/bash
# Fetch Debian 12's i386 netboot installer (kernel + initrd) and build Leap's
# small test initrd from it.  No root needed: apt-get download + dpkg-deb -x.
#
#   test-images/linux/fetch-debian-i386.sh OUTDIR
#
# Leaves in OUTDIR: linux (the installer's bzImage), initrd.gz (the
# installer's own initrd, unmodified), test-initrd.gz (busybox + /init from
# init.sh + known.bin) and known.md5 (the md5sum line /init must print).
# Files already present are reused.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
PKG=debian-installer-12-netboot-i386

if [ ! -s "$OUT/linux" ] || [ ! -s "$OUT/initrd.gz" ]; then
    for tool in apt-get dpkg-deb; do
        command -v "$tool" >/dev/null || { echo "$0: $tool not found (a Debian system is needed)" >&2; exit 1; }
    done
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    if ! (cd "$work" && apt-get download "$PKG" >/dev/null 2>"$work/apt.err"); then
        # A fresh machine may not have the package lists yet.
        if [ "$(id -u)" = 0 ]; then
            apt-get update >/dev/null
        fi
        (cd "$work" && apt-get download "$PKG") || {
            echo "$0: apt-get download $PKG failed (run 'apt-get update' as root first)" >&2
            cat "$work/apt.err" >&2
            exit 1
        }
    fi
    dpkg-deb -x "$work"/"$PKG"_*.deb "$work/x"
    img=$(find "$work/x" -path '*/text/debian-installer/i386' -type d | head -n 1)
    if [ -z "$img" ] || [ ! -s "$img/linux" ]; then
        echo "$0: no text/debian-installer/i386/linux in $PKG" >&2
        exit 1
    fi
    cp "$img/linux" "$img/initrd.gz" "$OUT/"
fi

if [ ! -s "$OUT/test-initrd.gz" ] || [ "$SRC/init.sh" -nt "$OUT/test-initrd.gz" ] \
        || [ "$SRC/mkinitrd.py" -nt "$OUT/test-initrd.gz" ]; then
    python3 "$SRC/mkinitrd.py" "$OUT/initrd.gz" "$SRC/init.sh" "$OUT/test-initrd.gz"
fi
echo "linux images in $OUT"
