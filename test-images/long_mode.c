/*
 * long_mode.elf: x86-64 long mode.  This 32-bit part checks CPUID, builds
 * an identity map, enters IA-32e mode (lm_run in long_mode_asm.S) and runs
 * the 64-bit part (long_mode64.c, carried as a blob and copied to
 * LM64_BASE), then checks that it is back in legacy protected mode and the
 * 32-bit runtime still works.  References: Intel SDM vol. 3A 10.8.5
 * (initializing and leaving IA-32e mode), 2.2.1 (EFER), vol. 2 CPUID.
 */
#include "runtime.h"
#include "long_mode.h"

const char test_name[] = "long_mode";

extern u8 _binary_long_mode64_bin_start[], _binary_long_mode64_bin_end[];
void lm_run(u32 pml4, struct lm_info *info);
extern u32 efer_in_compat, efer_after_pg_off;

#define MSR_EFER 0xC0000080
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define PG_P  0x001u
#define PG_W  0x002u
#define PG_U  0x004u
#define PG_PS 0x080u

/* Just enough to get into 64-bit mode: 0-1 GiB identity mapped with 2 MiB
 * pages.  The 64-bit part builds its own tables for the paging tests. */
static u64 pml4[512] ALIGNED(4096);
static u64 pdpt[512] ALIGNED(4096);
static u64 pd[512] ALIGNED(4096);

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

    /* 64-bit CS (L=1, D=0), data, and the SYSRET block (see long_mode.h). */
    gdt_set(SEL_KCODE64 >> 3, 0, 0xFFFFF, ACC_CODE_R, FL_G | 0x2);
    gdt_set(SEL_KDATA64 >> 3, 0, 0xFFFFF, ACC_DATA_W, FL_G | FL_DB);
    gdt_set(SEL_UCODE32 >> 3, 0, 0xFFFFF, ACC_CODE_R | ACC_DPL3, FL_G | FL_DB);
    gdt_set(SEL_UDATA64 >> 3, 0, 0xFFFFF, ACC_DATA_W | ACC_DPL3, FL_G | FL_DB);
    gdt_set(SEL_UCODE64 >> 3, 0, 0xFFFFF, ACC_CODE_R | ACC_DPL3, FL_G | 0x2);

    for (int i = 0; i < 512; i++)
        pd[i] = ((u64)i << 21) | PG_P | PG_W | PG_U | PG_PS;
    pdpt[0] = (u32)pd | PG_P | PG_W | PG_U;
    pml4[0] = (u32)pdpt | PG_P | PG_W | PG_U;

    memcpy(phys(LM64_BASE), _binary_long_mode64_bin_start,
           _binary_long_mode64_bin_end - _binary_long_mode64_bin_start);
    info.gdt = (u32)gdt;
    lm_run((u32)pml4, &info);

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
