#!/bin/bash
# Build every Leap test image from source.
#
#   test-images/build.sh OUTDIR [NAME...]
#
# With NAMEs (e.g. "hello realmode_rom") only those images are built.
# Needs only the host gcc and binutils (gcc -m32 works without gcc-multilib
# because the images are freestanding and include no system headers).
# Environment: CC, LD, OBJCOPY override the tools; BENCH_ITERS sets the
# iteration count of bench.elf / bench_straddle.elf, BENCH64_ITERS the
# rounds of bench64.elf.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [NAME...]" >&2
    exit 2
fi
OUT=$1
shift
ONLY=("$@")
want() {  # is image $1 selected?
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local n
    for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}
SRC=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-gcc}
LD=${LD:-ld}
OBJCOPY=${OBJCOPY:-objcopy}
BENCH_ITERS=${BENCH_ITERS:-1000}
# bench64's default is small because expected/bench64.txt checks its output;
# the mips bench sets a larger count.
BENCH64_ITERS=${BENCH64_ITERS:-20}

for tool in "$CC" "$LD" "$OBJCOPY"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build.sh: '$tool' not found; install gcc and binutils (apt-get install gcc binutils)" >&2
        exit 1
    fi
done

mkdir -p "$OUT/obj"
OUT=$(cd "$OUT" && pwd)
OBJ=$OUT/obj

# -mgeneral-regs-only: no x87/MMX/SSE code from the compiler (the kernels
# never enable SSE, and the emulator tests should not depend on it).
CFLAGS=(-m32 -march=i686 -mgeneral-regs-only -ffreestanding -nostdlib -fno-pic -fno-pie
        -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin
        -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration
        -I "$SRC/common" -DBENCH_ITERS="$BENCH_ITERS")
ASFLAGS=(-m32 -fno-pic -fno-pie -I "$SRC/common")
LDFLAGS=(-m elf_i386 -nostdlib -static --build-id=none -z max-page-size=0x1000 -z noexecstack)
ld_help=$("$LD" --help 2>/dev/null || true)   # (not piped into grep -q: pipefail + SIGPIPE)
if grep -q -- --no-warn-rwx-segments <<<"$ld_help"; then
    LDFLAGS+=(--no-warn-rwx-segments)
fi

# Make sure the compiler can target i386 at all before producing confusing errors.
if ! echo 'int x;' | "$CC" -m32 -ffreestanding -x c -c -o "$OBJ/probe.o" - 2>/dev/null; then
    echo "build.sh: '$CC -m32 -c' does not work; a gcc with x86 (i386) support is required" >&2
    exit 1
fi

compile() {  # compile SOURCE OBJECT [extra flags...]
    local src=$1 obj=$2
    shift 2
    case $src in
        *.c) "$CC" "${CFLAGS[@]}" "$@" -c "$src" -o "$obj" ;;
        *.S) "$CC" "${ASFLAGS[@]}" "$@" -c "$src" -o "$obj" ;;
        *) echo "build.sh: don't know how to build $src" >&2; exit 1 ;;
    esac
}

# The shared runtime, compiled once.
compile "$SRC/common/start.S" "$OBJ/start.o"
compile "$SRC/common/runtime.c" "$OBJ/runtime.o"

# Check that the multiboot header (magic 0x1BADB002) sits in the first 8 KiB.
check_multiboot() {
    local words
    words=$(od -A n -t x4 -v -N 8192 "$1")   # (no pipe into grep -q: pipefail + SIGPIPE)
    if ! grep -qw 1badb002 <<<"$words"; then
        echo "build.sh: multiboot header not within the first 8 KiB of $1" >&2
        exit 1
    fi
}

# kernel NAME SOURCES... [-- extra link flags]
kernel() {
    local name=$1
    shift
    want "$name" || return 0
    local objs=("$OBJ/start.o" "$OBJ/runtime.o") ldextra=() cextra=()
    while [ $# -gt 0 ]; do
        case $1 in
            -D*) cextra+=("$1") ;;
            --defsym=*) ldextra+=("$1") ;;
            /*.o) objs+=("$1") ;;          # built by the caller
            *)
                local base
                base=$(basename "$1")
                local o="$OBJ/${name}__${base%.*}.o"
                compile "$SRC/$1" "$o" ${cextra[@]+"${cextra[@]}"}
                objs+=("$o")
                ;;
        esac
        shift
    done
    # (--defsym must come before -T for DEFINED() in the script to see it)
    "$LD" "${LDFLAGS[@]}" ${ldextra[@]+"${ldextra[@]}"} -T "$SRC/common/link.ld" \
        -o "$OUT/$name.elf" "${objs[@]}"
    check_multiboot "$OUT/$name.elf"
    echo "built $OUT/$name.elf"
}

kernel hello hello.c
kernel pm_exceptions pm_exceptions.c pm_exceptions_asm.S
kernel pm_strict pm_strict.c pm_strict_asm.S
kernel paging paging.c paging_asm.S
kernel vm86 vm86.c vm86_code.S
kernel task_switch task_switch.c task_switch_asm.S
kernel smc smc.c smc_asm.S
kernel pc_devices pc_devices.c pc_devices_asm.S
kernel bench bench.c

# long_mode and bench64: the 32-bit multiboot part enters long mode
# (lm_enter.c, long_mode_asm.S) and calls a 64-bit part, which is built with
# the x86-64 toolchain, linked at LM64_BASE and carried inside the ELF32
# image as a binary blob (QEMU's multiboot loader takes only ELF32) that the
# 32-bit part copies into place.
CFLAGS64=(-m64 -mno-red-zone -mcmodel=small -ffreestanding -nostdlib
          -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables
          -fno-builtin -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter
          -Werror=implicit-function-declaration -I "$SRC/common")

# blob64 NAME "EXTRA CFLAGS" SOURCES...: link the 64-bit part NAME with
# long_mode64.ld and wrap its flat binary as $OBJ/NAME_blob.o, whose symbols
# are _binary_NAME_bin_start/_end.
blob64() {
    local name=$1 extra=$2
    shift 2
    local objs=() src o
    for src in "$@"; do
        o="$OBJ/${name}__$(basename "${src%.*}")_${src##*.}.o"
        case $src in
            # (EXTRA is split into words on purpose)
            *.c) "$CC" "${CFLAGS64[@]}" $extra -c "$SRC/$src" -o "$o" ;;
            *.S) "$CC" -m64 -fno-pic -fno-pie -I "$SRC/common" -c "$SRC/$src" -o "$o" ;;
        esac
        objs+=("$o")
    done
    "$LD" -m elf_x86_64 "${LDFLAGS[@]:2}" -T "$SRC/long_mode64.ld" -o "$OBJ/$name.elf" "${objs[@]}"
    "$OBJCOPY" -O binary "$OBJ/$name.elf" "$OBJ/$name.bin"
    # (run in $OBJ so the symbol names carry no directory)
    (cd "$OBJ" && "$OBJCOPY" -I binary -O elf32-i386 -B i386 \
        --rename-section .data=.rodata.lm64,alloc,load,readonly,data,contents \
        "$name.bin" "${name}_blob.o")
}

if want long_mode; then
    blob64 long_mode64 -mgeneral-regs-only long_mode64_asm.S long_mode64.c
    kernel long_mode long_mode.c lm_enter.c long_mode_asm.S "$OBJ/long_mode64_blob.o"
fi

# bench64: a floating-point and integer SSE compute benchmark in 64-bit mode
# (bench64_64.c, compiled with SSE through SSE4.2 and no AVX), run for
# BENCH64_ITERS rounds.
if want bench64; then
    blob64 bench64_64 "-msse4.2 -mno-avx -fno-math-errno -DBENCH64_ITERS=$BENCH64_ITERS" \
        bench64_64.c
    kernel bench64 bench64.c lm_enter.c long_mode_asm.S "$OBJ/bench64_64_blob.o"
fi

# bench_straddle: the same benchmark with its hot loop function moved into
# the .benchhot section, which link.ld places so that a 4 KiB page boundary
# falls in the middle of it.  Compile first to learn the function's size.
if want bench_straddle; then
compile "$SRC/bench.c" "$OBJ/bench_straddle_probe.o" -DBENCH_STRADDLE
hot_hex=$(LC_ALL=C objdump -h "$OBJ/bench_straddle_probe.o" | awk '$2 == ".benchhot" { print $3 }')
if [ -z "$hot_hex" ] || [ $((16#$hot_hex)) -lt 16 ]; then
    echo "build.sh: could not find the .benchhot section in bench.c" >&2
    exit 1
fi
kernel bench_straddle -DBENCH_STRADDLE bench.c --defsym=HOT_SPLIT=$((16#$hot_hex / 2 & ~15))
fi

# The real-mode ROM: a raw 64 KiB image for 0xF0000-0xFFFFF.
want realmode_rom || exit 0
compile "$SRC/realmode_rom.S" "$OBJ/realmode_rom.o"
"$LD" "${LDFLAGS[@]}" -T "$SRC/rom.ld" \
    -o "$OBJ/realmode_rom.elf" "$OBJ/realmode_rom.o"
"$OBJCOPY" -O binary "$OBJ/realmode_rom.elf" "$OUT/realmode_rom.bin"
size=$(wc -c < "$OUT/realmode_rom.bin")
if [ "$size" -ne 65536 ]; then
    echo "build.sh: realmode_rom.bin is $size bytes, expected 65536" >&2
    exit 1
fi
echo "built $OUT/realmode_rom.bin"
