#!/usr/bin/env python3
"""Build Leap's amd64 test initramfs from Debian's busybox-static.

A gzip'd cpio "newc" archive with /bin/busybox (statically linked, so no
C library is needed), applet links, /init, /test.sh and a file of known
content. Pure Python, no root: device nodes are archive entries only.

usage: mkinitramfs64.py BUSYBOX INIT_SCRIPT TEST_SCRIPT OUT_GZ

Also writes known.md5 beside OUT_GZ: the line `md5sum /known.bin` must print.
"""
import gzip
import hashlib
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkinitrd import KNOWN_FILE, Writer  # noqa: E402


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    busybox, init_script, test_script, dst = sys.argv[1:]
    # The applets this busybox build has; every one gets a link in /bin.
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    w = Writer()
    for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "root", "etc"]:
        w.entry(d, stat.S_IFDIR | 0o755)
    w.entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    w.entry("dev/ttyS0", stat.S_IFCHR | 0o660, rdev=(4, 64))
    w.entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3))
    w.entry("bin/busybox", stat.S_IFREG | 0o755, open(busybox, "rb").read())
    for a in sorted(set(applets)):
        if a != "busybox" and "/" not in a:
            w.entry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox")
    w.entry("init", stat.S_IFREG | 0o755, open(init_script, "rb").read())
    w.entry("test.sh", stat.S_IFREG | 0o755, open(test_script, "rb").read())
    w.entry("etc/profile", stat.S_IFREG | 0o644, b"export PATH=/bin\nexport PS1='leap# '\n")
    w.entry("known.bin", stat.S_IFREG | 0o644, KNOWN_FILE)
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
        f.write(w.finish())
    with open(os.path.join(os.path.dirname(os.path.abspath(dst)), "known.md5"), "w") as f:
        f.write(f"{hashlib.md5(KNOWN_FILE).hexdigest()}  /known.bin\n")


if __name__ == "__main__":
    main()
