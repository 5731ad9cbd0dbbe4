/* Shared by the 32-bit and 64-bit halves of bench64.elf. */
#ifndef LEAP_BENCH64_H
#define LEAP_BENCH64_H

enum { B64_MATMUL, B64_NBODY, B64_SAXPY, B64_INTSSE, B64_TOTAL, B64_PARTS };

/* Filled in by the 64-bit part.  The explicit alignment gives the u64s the
 * same offsets under -m32 (which aligns them to 4 in structs) and -m64. */
struct bench64_result {
    unsigned int rounds;
    unsigned long long sum[B64_PARTS] __attribute__((aligned(8)));
};
#endif
