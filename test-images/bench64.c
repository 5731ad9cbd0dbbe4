/*
 * bench64.elf: a compute benchmark in 64-bit mode with SSE arithmetic, for
 * measuring emulator speed (benches/src/mips.rs) and, through its exact
 * checksums, SSE correctness in 64-bit code.  This 32-bit part checks
 * CPUID, enables SSE (Intel SDM vol. 3A 14.1.3: CR4.OSFXSR and OSXMMEXCPT,
 * CR0.MP set and EM clear), enters long mode (lm_enter.c) and runs the
 * 64-bit part (bench64_64.c) for BENCH64_ITERS rounds, then prints its
 * checksums.
 */
#include "runtime.h"
#include "long_mode.h"
#include "bench64.h"

const char test_name[] = "bench64";

extern u8 _binary_bench64_64_bin_start[], _binary_bench64_64_bin_end[];

#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)

static struct bench64_result res;

static void print_sum(const char *what, unsigned long long v)
{
    printf("bench64: %s = %08x%08x\n", what, (u32)(v >> 32), (u32)v);
}

int kmain(u32 magic, u32 mbi)
{
    u32 a, b, c, d;

    printf("bench64: 64-bit SSE compute: double matmul (packed), n-body (scalar, sqrt, div), "
           "float saxpy/dot, integer SSE\n");
    cpuid(0x80000001, &a, &b, &c, &d);
    check_eq("CPUID 0x80000001 EDX.LM (bit 29)", (d >> 29) & 1, 1);
    u32 lm = (d >> 29) & 1;
    cpuid(1, &a, &b, &c, &d);
    check_eq("CPUID 1 EDX.FXSR, SSE, SSE2 (bits 24-26)", (d >> 24) & 7, 7);
    check_eq("CPUID 1 ECX.SSE4.1, SSE4.2 (bits 19-20)", (c >> 19) & 3, 3);
    if (!lm || ((d >> 24) & 7) != 7 || ((c >> 19) & 3) != 3)
        fail("the 64-bit part needs long mode and SSE through SSE4.2");

    write_cr0((read_cr0() & ~CR0_EM) | CR0_MP);
    write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
    lm_enter(_binary_bench64_64_bin_start,
             _binary_bench64_64_bin_end - _binary_bench64_64_bin_start, &res);

    printf("bench64: rounds=%u\n", res.rounds);
    print_sum("matmul", res.sum[B64_MATMUL]);
    print_sum("nbody", res.sum[B64_NBODY]);
    print_sum("saxpy", res.sum[B64_SAXPY]);
    print_sum("intsse", res.sum[B64_INTSSE]);
    print_sum("checksum", res.sum[B64_TOTAL]);
    return 0;
}
