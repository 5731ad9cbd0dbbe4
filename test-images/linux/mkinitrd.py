#!/usr/bin/env python3
"""Build Leap's small Linux test initrd from Debian's installer initrd.

Takes busybox and the C library out of the debian-installer initrd.gz (a
gzip'd cpio "newc" archive), adds an /init script and a file of known
content, and writes a new gzip'd newc archive. Pure Python, no root needed:
device nodes are written as archive entries, never created on the host.

usage: mkinitrd.py DI_INITRD_GZ INIT_SCRIPT OUT_GZ

Also writes known.md5 beside OUT_GZ: the line `md5sum /known.bin` must print.
"""
import gzip
import hashlib
import os
import stat
import sys


def read_newc(data):
    """Yield (name, mode, body, rdevmajor, rdevminor) for each entry."""
    off = 0
    while off + 110 <= len(data):
        if data[off:off + 6] != b"070701":
            raise SystemExit(f"mkinitrd: bad cpio magic at offset {off}")
        f = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        mode, fsize, rmaj, rmin, nsize = f[1], f[6], f[9], f[10], f[11]
        name = data[off + 110:off + 110 + nsize - 1].decode()
        off = (off + 110 + nsize + 3) & ~3
        body = data[off:off + fsize]
        off = (off + fsize + 3) & ~3
        if name == "TRAILER!!!":
            return
        yield name, mode, body, rmaj, rmin


class Writer:
    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def entry(self, name, mode, body=b"", rdev=(0, 0)):
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (self.ino, mode, 0, 0, 1, 0, len(body), 0, 0, rdev[0], rdev[1], len(nameb), 0)
        )
        self.ino += 1
        self.out += hdr.encode() + nameb
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += body
        self.out += b"\0" * (-len(self.out) % 4)

    def finish(self):
        self.entry("TRAILER!!!", 0)
        return bytes(self.out)


# What the test initrd needs from the installer: busybox and its libraries.
WANTED = ["bin/busybox", "lib/ld-linux.so.2", "lib/i386-linux-gnu/libc.so.6"]
APPLETS = ["sh", "mount", "echo", "cat", "uname", "md5sum", "reboot", "poweroff", "ls", "dmesg", "grep", "sleep", "seq", "head", "sync"]
# 64 KiB of a fixed pattern: its md5sum is checked against the host's.
KNOWN_FILE = bytes((i * 7 + (i >> 8)) & 0xff for i in range(65536))


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    src, init_script, dst = sys.argv[1:]
    entries = {e[0]: e for e in read_newc(gzip.open(src).read())}

    def resolve(name, depth=0):
        e = entries.get(name)
        if e is None:
            raise SystemExit(f"mkinitrd: {name} is not in {src}")
        if stat.S_ISLNK(e[1]) and depth < 8:
            target = e[2].decode()
            base = os.path.dirname(name)
            t = os.path.normpath(os.path.join(base, target)).lstrip("/") if not target.startswith("/") else target.lstrip("/")
            return [e] + resolve(t, depth + 1)
        return [e]

    w = Writer()
    for d in ["bin", "sbin", "dev", "proc", "sys", "lib", "lib/i386-linux-gnu", "tmp", "root"]:
        w.entry(d, stat.S_IFDIR | 0o755)
    w.entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    w.entry("dev/ttyS0", stat.S_IFCHR | 0o660, rdev=(4, 64))
    w.entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3))
    done = set()
    for want in WANTED:
        for name, mode, body, _, _ in resolve(want):
            if name not in done:
                done.add(name)
                w.entry(name, mode, body)
    for a in APPLETS:
        w.entry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox")
    w.entry("init", stat.S_IFREG | 0o755, open(init_script, "rb").read())
    w.entry("known.bin", stat.S_IFREG | 0o644, KNOWN_FILE)
    # mtime 0: the same inputs give the same archive bytes.
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
        f.write(w.finish())
    with open(os.path.join(os.path.dirname(os.path.abspath(dst)), "known.md5"), "w") as f:
        f.write(f"{hashlib.md5(KNOWN_FILE).hexdigest()}  /known.bin\n")


if __name__ == "__main__":
    main()
