/*
 * hello.elf: the smallest useful guest.  Prints a greeting, what the
 * multiboot loader told us (magic, flags, mem_lower/mem_upper, the memory
 * map), and a few computed values that exercise ordinary integer code.
 *
 * The memory lines depend on the RAM size (run-qemu.sh uses -m 128) and on
 * the firmware's E820 map, which the loader passes on.
 */
#include "runtime.h"

const char test_name[] = "hello";

/* The multiboot information structure (only the fields we read). */
struct mb_info {
    u32 flags;
    u32 mem_lower, mem_upper;          /* valid if flags bit 0 */
    u32 boot_device, cmdline, mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr;        /* valid if flags bit 6 */
};

/* One memory map entry; `size` does not count itself. */
struct mb_mmap {
    u32 size;
    u32 base_lo, base_hi, len_lo, len_hi;
    u32 type;
} __attribute__((packed));

static u32 fib(u32 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Bitwise CRC-32 (IEEE, reflected) of a string. */
static u32 crc32(const char *s)
{
    u32 crc = 0xFFFFFFFF;
    for (; *s; s++) {
        crc ^= (u8)*s;
        for (int i = 0; i < 8; i++)
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1));
    }
    return ~crc;
}

static u32 count_primes(u32 limit)
{
    static u8 sieve[10000];
    u32 n = 0;
    for (u32 i = 2; i < limit; i++) {
        if (sieve[i])
            continue;
        n++;
        for (u32 j = i * i; j < limit; j += i)
            sieve[j] = 1;
    }
    return n;
}

int kmain(u32 magic, u32 mbi_addr)
{
    printf("Hello from a Leap test guest!\n");
    check_eq("multiboot magic in EAX", magic, 0x2BADB002);

    const struct mb_info *mbi = phys(mbi_addr);
    /* Only the bits we asked for: which optional fields a loader adds
     * (command line, loader name, ...) is its own business. */
    printf("multiboot flags & 0x41 = %#x\n", mbi->flags & 0x41);
    check((mbi->flags & 1) != 0, "flags bit 0 (mem_lower/mem_upper present)");
    if (mbi->flags & 1)
        printf("mem_lower = %u KiB, mem_upper = %u KiB\n", mbi->mem_lower, mbi->mem_upper);
    if (mbi->flags & (1 << 6)) {
        printf("memory map:\n");
        u32 p = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
        while (p < end) {
            const struct mb_mmap *e = phys(p);
            printf("  base %08x%08x len %08x%08x type %u\n",
                   e->base_hi, e->base_lo, e->len_hi, e->len_lo, e->type);
            p += e->size + 4;
        }
    } else {
        printf("no memory map\n");
    }

    check_dec("fib(25)", fib(25), 75025);
    check_eq("crc32(\"123456789\")", crc32("123456789"), 0xCBF43926);
    check_dec("primes below 10000", count_primes(10000), 1229);
    u64 big = (u64)0xDEADBEEF * 0x12345678;
    check_eq("0xDEADBEEF * 0x12345678 (high)", (u32)(big >> 32), 0x0FD5BDEE);
    check_eq("0xDEADBEEF * 0x12345678 (low)", (u32)big, 0x5621CA08);
    s32 q = -1000000 / 7, r = -1000000 % 7;
    check_eq("-1000000 / 7", (u32)q, (u32)-142857);
    check_eq("-1000000 % 7", (u32)r, (u32)-1);
    return 0;
}
