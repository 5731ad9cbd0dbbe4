/*
 * long_mode.elf: x86-64 long mode.  This 32-bit part checks CPUID, builds
 * an identity map, enters IA-32e mode (lm_enter.c, long_mode_asm.S) and runs
 * the 64-bit part (long_mode64.c, carried as a blob and copied to
 * LM64_BASE), then checks that it is back in legacy protected mode and the
 * 32-bit runtime still works.  References: Intel SDM vol. 3A 10.8.5
 * (initializing and leaving IA-32e mode), 2.2.1 (EFER), vol. 2 CPUID.
 */
#include "runtime.h"
#include "long_mode.h"

const char test_name[] = "long_mode";

extern u8 _binary_long_mode64_bin_start[], _binary_long_mode64_bin_end[];
extern u32 efer_in_compat, efer_after_pg_off;

#define MSR_EFER 0xC0000080
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
static struct lm_info info;

static void ud2_snippet(void) { __asm__ volatile("ud2"); }

int kmain(u32 magic, u32 mbi)
{
    u32 a, b, c, d;

    printf("long_mode: IA-32e mode, 64-bit code, IDT, paging, rings, compatibility mode\n");
    printf("-- entering long mode (32-bit part)\n");
    cpuid(0x80000000, &a, &b, &c, &d);
    check(a >= 0x80000001, "CPUID 0x80000000: extended leaf 0x80000001 exists");
    cpuid(0x80000001, &a, &b, &c, &d);
    check_eq("CPUID 0x80000001 EDX.LM (bit 29)", (d >> 29) & 1, 1);
    if (!((d >> 29) & 1))
        fail("no long mode: nothing more to test");
    check_eq("EFER.LME/LMA before", (u32)rdmsr(MSR_EFER) & (EFER_LME | EFER_LMA), 0);

    info.gdt = (u32)gdt;
    lm_enter(_binary_long_mode64_bin_start,
             _binary_long_mode64_bin_end - _binary_long_mode64_bin_start, &info);

    printf("-- back in 32-bit protected mode\n");
    check_eq("EFER.LMA right after CR0.PG=1 (compatibility mode)", efer_in_compat & EFER_LMA,
             EFER_LMA);
    check_eq("EFER.LME/LMA right after CR0.PG=0", efer_after_pg_off & (EFER_LME | EFER_LMA),
             EFER_LME);
    check_eq("EFER.LME/LMA after clearing LME", (u32)rdmsr(MSR_EFER) & (EFER_LME | EFER_LMA), 0);
    check_eq("CR0.PG", read_cr0() >> 31, 0);

    /* Back to the runtime's IDT and 32-bit TSS (the 64-bit part loaded its
     * own; LTR needs the old TSS descriptor marked available again). */
    struct __attribute__((packed)) { u16 limit; u32 base; } idtr = { sizeof idt - 1, (u32)idt };
    __asm__ volatile("lidt %0" :: "m"(idtr));
    gdt[SEL_TSS >> 3] &= ~(2ull << 40);
    __asm__ volatile("ltr %w0" :: "r"(SEL_TSS));
    run_catch(ud2_snippet);
    check_eq("32-bit IDT again: ud2 gives vector", last_trap.vector, 6);
    check_eq("  ... with a 32-bit CS in the frame", last_trap.cs & 0xFFFF, SEL_KCODE);

    checks_run += info.checks_run;
    checks_failed += info.checks_failed;
    return 0;
}
