#!/bin/bash
# Fetch Debian 12's stock amd64 kernel (the linux-image-amd64 package's
# kernel) and busybox-static, and build Leap's amd64 test initramfs.
# No root needed: apt-get download + dpkg-deb -x.
#
#   test-images/linux/fetch-debian-amd64.sh OUTDIR
#
# Leaves in OUTDIR: vmlinuz (the bzImage), initramfs.gz (busybox + /init
# from init64.sh + /test.sh from test64.sh + known.bin), known.md5 (the
# md5sum line /test.sh must print) and kernel-version.  Files already
# present are reused.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

for tool in apt-get apt-cache dpkg-deb python3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (a Debian system is needed)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# apt-get download PACKAGE into $work, updating the package lists once if
# a fresh machine has none yet.
download() {
    if ! (cd "$work" && apt-get download "$1" >/dev/null 2>"$work/apt.err"); then
        if [ "$(id -u)" = 0 ]; then
            apt-get update >/dev/null
        fi
        (cd "$work" && apt-get download "$1") || {
            echo "$0: apt-get download $1 failed (run 'apt-get update' as root first)" >&2
            cat "$work/apt.err" >&2
            exit 1
        }
    fi
}

if [ ! -s "$OUT/vmlinuz" ]; then
    # linux-image-amd64 is a metapackage: its dependency is the kernel.
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update >/dev/null
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    fi
    if [ -z "$pkg" ]; then
        echo "$0: cannot resolve linux-image-amd64 to a kernel package (run 'apt-get update' as root first)" >&2
        exit 1
    fi
    download "$pkg"
    dpkg-deb --fsys-tarfile "$work"/"$pkg"_*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
    k=$(ls "$work"/boot/vmlinuz-* | head -n 1)
    [ -s "$k" ] || { echo "$0: no /boot/vmlinuz-* in $pkg" >&2; exit 1; }
    cp "$k" "$OUT/vmlinuz.tmp"
    basename "$k" | sed 's/^vmlinuz-//' > "$OUT/kernel-version"
    mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
fi

if [ ! -s "$OUT/busybox" ]; then
    download busybox-static
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
    cp "$work/bb/bin/busybox" "$OUT/busybox"
fi

if [ ! -s "$OUT/initramfs.gz" ] || [ "$SRC/init64.sh" -nt "$OUT/initramfs.gz" ] \
        || [ "$SRC/test64.sh" -nt "$OUT/initramfs.gz" ] \
        || [ "$SRC/mkinitramfs64.py" -nt "$OUT/initramfs.gz" ]; then
    python3 "$SRC/mkinitramfs64.py" "$OUT/busybox" "$SRC/init64.sh" "$SRC/test64.sh" "$OUT/initramfs.gz"
fi
echo "amd64 linux images in $OUT"
