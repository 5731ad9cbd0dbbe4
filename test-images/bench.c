/*
 * bench.elf / bench_straddle.elf: a compute-bound benchmark for measuring
 * emulator speed (wall time of the whole run; the guest itself prints only
 * deterministic values).
 *
 * One iteration runs bench_kernel() over a 64 KiB working set (integer ALU
 * mix, MUL and DIV, data-dependent loads, stores and branches, calls and
 * returns), then a REP MOVSD of 16 KiB and a REP STOSB of 4 KiB.  The number
 * of iterations is BENCH_ITERS (build.sh passes -DBENCH_ITERS=$BENCH_ITERS).
 *
 * bench_straddle.elf is the same program with bench_kernel() in the section
 * .benchhot, which link.ld places so that a 4 KiB page boundary falls in the
 * middle of the function: the hot loop then crosses a page boundary, which
 * stresses block lookup / chaining across pages in the emulator.
 */
#include "runtime.h"

#ifndef BENCH_ITERS
#define BENCH_ITERS 1000
#endif

#ifdef BENCH_STRADDLE
const char test_name[] = "bench_straddle";
#define HOT __attribute__((noinline, section(".benchhot")))
extern char __benchhot_start[], __benchhot_end[];
#else
const char test_name[] = "bench";
#define HOT __attribute__((noinline))
#endif

#define WORDS 16384                    /* 64 KiB working set */
static u32 work[WORDS] ALIGNED(64);
static u32 copy[WORDS / 4] ALIGNED(64);
static u8 fill[4096] ALIGNED(64);

/* A small leaf function, so the hot loop has calls and returns in it. */
static __attribute__((noinline)) u32 mix(u32 x)
{
    x ^= x >> 15;
    x *= 0x2C1B3C6D;
    x ^= x >> 12;
    return x;
}

HOT u32 bench_kernel(u32 seed)
{
    u32 h = seed * 0x9E3779B9u + 1, acc = 0;
    for (u32 i = 0; i < WORDS; i++) {
        u32 v = work[(h >> 10) & (WORDS - 1)];      /* data-dependent load */
        h = h * 1103515245u + 12345u;
        if (v & 1)                                  /* data-dependent branch */
            acc += v >> 3;
        else
            acc ^= v << 5;
        if ((h & 0x30) == 0)                        /* a call every 4th iteration or so */
            acc += mix(v);
        acc += v / ((i & 7) + 1);                   /* division */
        acc = (acc << 3) | (acc >> 29);             /* rotate */
        work[i] = v + h;                            /* store */
    }
    return acc;
}

int kmain(u32 magic, u32 mbi)
{
#ifdef BENCH_STRADDLE
    u32 start = (u32)bench_kernel, end = (u32)__benchhot_end;
    printf("%s: hot loop function at %#x-%#x (%u bytes)\n", test_name, start, end, end - start);
    check(end > start && (start >> 12) != ((end - 1) >> 12),
          "hot loop function straddles a 4 KiB page boundary");
#else
    printf("%s: hot loop function at %#x\n", test_name, (u32)bench_kernel);
#endif
    for (u32 i = 0; i < WORDS; i++)
        work[i] = i * 0x01010101u ^ 0x5A5A5A5A;

    u32 checksum = 0;
    for (u32 it = 0; it < BENCH_ITERS; it++) {
        checksum = (checksum * 31) ^ bench_kernel(it);
        /* String instructions: copy 16 KiB of the working set, fill 4 KiB. */
        const u32 *src = work + (it & 3) * (WORDS / 4);
        u32 *dst = copy, n = WORDS / 4;
        __asm__ volatile("cld; rep movsl" : "+S"(src), "+D"(dst), "+c"(n) :: "memory");
        u8 *f = fill;
        n = sizeof fill;
        __asm__ volatile("cld; rep stosb" : "+D"(f), "+c"(n) : "a"(it) : "memory");
        checksum += copy[it & (WORDS / 4 - 1)] + fill[it & 4095];
    }
    printf("%s: iterations=%u checksum=%#x\n", test_name, BENCH_ITERS, checksum);
    return 0;
}
