/*
 * pm_strict.elf: protected-mode checks that QEMU's TCG does not implement
 * (it skips segment limit and type checks on ordinary memory accesses and
 * never raises #AC), so the expected output was derived from the Intel SDM
 * rather than captured from QEMU.  Under QEMU TCG this image FAILs; see
 * README.md for the exact lines.
 *
 *  - LOCK prefix on a non-lockable instruction: #UD (SDM vol. 2, LOCK).
 *  - far CALL to an offset beyond the CS limit: #GP(0) (QEMU: #GP(selector)).
 *  - data segment limit (expand-up and expand-down), read-only data segment,
 *    execute-only and readable code segments, null DS: #GP(0).
 *  - a REP STOS that hits the limit part way: #GP(0) with EDI/ECX showing the
 *    iterations already done (faults are precise, string ops restartable).
 *  - stack segment limit (expand-up and expand-down): #SS(0).
 *  - instruction fetch past the CS limit: #GP(0), EIP = the offset.
 *  - alignment check: #AC(0) at CPL3 with CR0.AM=1 and EFLAGS.AC=1 only.
 *  - #PF for a reserved bit in a paging entry: error code RSVD|P (SDM 4.7:
 *    reserved bits are only checked in present entries, so P is always set
 *    with RSVD); QEMU 7.x TCG leaves P clear.  paging.elf checks the rest.
 */
#include "runtime.h"
#include "pm_strict.h"

const char test_name[] = "pm_strict";

typedef char label[];
extern label ud_lock, ud_lock_insn, far_call_beyond, far_call_beyond_insn, es_read32,
    es_read32_insn, es_read16, es_read16_insn, es_read8, es_read8_insn, es_write32,
    es_write32_insn, ss_read32, ss_read32_insn, rep_stos_limit, rep_stos_limit_insn, xonly_read,
    xonly_read_insn, tiny_code_run, tiny_code, u_misaligned, u_misaligned_insn, k_misaligned,
    pg_read, pg_read_insn, pg_write, pg_write_insn;

#define FN(x) ((void (*)(void))(x))
#define A(x) ((u32)(x))

u16 probe_sel;
u32 probe_off;
u32 probe_val;
/* 12 KiB although the segments only cover 4 KiB: an emulator that ignores the
 * limit (QEMU TCG) then scribbles here instead of on other variables. */
static u8 limbuf[0x3000] ALIGNED(4096);

static void expect(const char *desc, void *fn, u32 vec, u32 err, void *eip, const char *what)
{
    run_catch(FN(fn));
    check_trap(desc, vec, err, A(eip), what);
}

static void expect_none(const char *desc, void *fn)
{
    int trapped = run_catch(FN(fn));
    if (trapped)
        printf("     (got vec=%u err=%#x eip=%#x)\n", last_trap.vector, last_trap.err, last_trap.eip);
    check(!trapped, desc);
}

/* One ES probe: selector, offset, snippet; vec < 0 means "must not fault". */
static void es_probe(const char *desc, u16 sel, u32 off, void *fn, void *insn, int vec)
{
    probe_sel = sel;
    probe_off = off;
    if (vec < 0)
        expect_none(desc, fn);
    else
        expect(desc, fn, (u32)vec, 0, insn, "access");
}

/* Reserved bits in paging entries. */
static volatile u32 pd32[1024] ALIGNED(4096);
static volatile u64 pdpt[4] ALIGNED(32);
static volatile u64 pae_pd[512] ALIGNED(4096);
static u32 fault_cr2;

static void pf_handler(struct frame *f)
{
    fault_cr2 = read_cr2();
    catch_trap(f);
}

static void rsvd_probe(const char *desc, void *fn, void *insn, u32 addr, u32 err)
{
    probe_off = addr;
    fault_cr2 = 0;
    run_catch(FN(fn));
    check_trap(desc, 14, err, A(insn), "mov");
    check_addr("  ... CR2", fault_cr2, addr);
}

static void test_rsvd(void)
{
    printf("-- reserved bits in paging entries\n");
    trap_handlers[14] = pf_handler;
    /* 32-bit paging, identity map of 0-16 MiB with 4 MiB pages, and at
     * 0x80000000 a 4 MiB PDE with reserved bit 21 set. */
    for (u32 i = 0; i < 4; i++)
        pd32[i] = (i << 22) | 0x83;                       /* P, W, PS */
    pd32[0x80000000u >> 22] = 0x00400000 | 0x83 | (1u << 21);
    write_cr3(A(pd32));
    write_cr4(read_cr4() | (1u << 4));                    /* PSE */
    write_cr0(read_cr0() | 0x80000000u);                  /* PG */
    rsvd_probe("#PF read, 4 MiB PDE bit 21 set", pg_read, pg_read_insn, 0x80000010, 0x9);
    rsvd_probe("#PF write, 4 MiB PDE bit 21 set", pg_write, pg_write_insn, 0x80000020, 0xB);
    write_cr0(read_cr0() & ~0x80000000u);

    /* PAE, 2 MiB pages, EFER.NXE=0: bit 63 (XD) is reserved. */
    for (u32 i = 0; i < 8; i++)
        pae_pd[i] = ((u64)i << 21) | 0x83;
    pae_pd[0x20000000u >> 21] = 0x00400000 | 0x83 | (1ull << 63);
    pdpt[0] = A(pae_pd) | 1;
    pdpt[1] = pdpt[2] = pdpt[3] = 0;
    write_cr4(read_cr4() | (1u << 5));                    /* PAE */
    write_cr3(A(pdpt));
    write_cr0(read_cr0() | 0x80000000u);
    rsvd_probe("#PF read, PAE PDE bit 63 set, NXE=0", pg_read, pg_read_insn, 0x20000030, 0x9);
    write_cr0(read_cr0() & ~0x80000000u);
    write_cr4(read_cr4() & ~((1u << 4) | (1u << 5)));
    trap_handlers[14] = NULL;
}

int kmain(u32 magic, u32 mbi)
{
    printf("pm_strict: segment limits/types, #AC, LOCK (not emulated by QEMU TCG)\n");

    gdt_set(SEL_LIMITED >> 3, A(limbuf), 0xFFF, ACC_DATA_W, FL_DB);
    gdt_set(SEL_EXPDOWN >> 3, A(limbuf) - 0x1000, 0xFFF, ACC_DATA_WD, FL_DB);
    gdt_set(SEL_RODATA >> 3, 0, 0xFFFFF, ACC_DATA_R, FL_G | FL_DB);
    gdt_set(SEL_XONLY >> 3, 0, 0xFFFFF, ACC_CODE_X, FL_G | FL_DB);
    gdt_set(SEL_CODE2M >> 3, 0, 0x1FF, ACC_CODE_R, FL_G | FL_DB);
    /* kernel_stack_top is page aligned: offsets 0 .. kernel_stack_top-1. */
    gdt_set(SEL_SS_UP >> 3, 0, (A(kernel_stack_top) >> 12) - 1, ACC_DATA_W, FL_G | FL_DB);
    /* Expand-down, G=1: valid offsets are above (field << 12 | 0xFFF), i.e.
     * from 4 KiB above the bottom of the 16 KiB kernel stack. */
    u32 stack_bottom = A(kernel_stack_top) - 16384;
    gdt_set(SEL_SS_DOWN >> 3, 0, stack_bottom >> 12, ACC_DATA_WD, FL_G | FL_DB);
    gdt_set(SEL_TINYCODE >> 3, A(tiny_code) - 0x100, 0x100, ACC_CODE_R, FL_DB);

    printf("-- instruction checks\n");
    expect("#UD lock mov reg,reg", ud_lock, 6, 0, ud_lock_insn, "lock mov");
    expect("#GP(0) lcall beyond code segment limit", far_call_beyond, 13, 0, far_call_beyond_insn,
           "lcall");

    printf("-- data segment limits (base limbuf, limit 0xFFF)\n");
    es_probe("dword read at 0xFFC", SEL_LIMITED, 0xFFC, es_read32, es_read32_insn, -1);
    es_probe("#GP dword read at 0xFFD", SEL_LIMITED, 0xFFD, es_read32, es_read32_insn, 13);
    es_probe("byte read at 0xFFF", SEL_LIMITED, 0xFFF, es_read8, es_read8_insn, -1);
    es_probe("#GP word read at 0xFFF", SEL_LIMITED, 0xFFF, es_read16, es_read16_insn, 13);
    es_probe("#GP byte read at 0x1000", SEL_LIMITED, 0x1000, es_read8, es_read8_insn, 13);
    es_probe("#GP dword write at 0x2000", SEL_LIMITED, 0x2000, es_write32, es_write32_insn, 13);

    printf("-- expand-down data segment (limit 0xFFF, B=1: offsets 0x1000..0xFFFFFFFF)\n");
    es_probe("dword read at 0x1000", SEL_EXPDOWN, 0x1000, es_read32, es_read32_insn, -1);
    es_probe("dword read at 0xFFFFFFF0", SEL_EXPDOWN, 0xFFFFFFF0, es_read32, es_read32_insn, -1);
    es_probe("#GP byte read at 0xFFF", SEL_EXPDOWN, 0xFFF, es_read8, es_read8_insn, 13);
    es_probe("#GP dword read at 0xFFE", SEL_EXPDOWN, 0xFFE, es_read32, es_read32_insn, 13);
    es_probe("#GP byte read at 0", SEL_EXPDOWN, 0, es_read8, es_read8_insn, 13);

    printf("-- segment types\n");
    es_probe("read through read-only data", SEL_RODATA, A(limbuf), es_read32, es_read32_insn, -1);
    es_probe("#GP write through read-only data", SEL_RODATA, A(limbuf), es_write32,
             es_write32_insn, 13);
    es_probe("read through readable code in ES", SEL_KCODE, A(limbuf), es_read32, es_read32_insn,
             -1);
    es_probe("#GP write through code segment in ES", SEL_KCODE, A(limbuf), es_write32,
             es_write32_insn, 13);
    es_probe("#GP read through null ES", 0, A(limbuf), es_read32, es_read32_insn, 13);
    expect("#GP read through execute-only CS", xonly_read, 13, 0, xonly_read_insn, "mov cs:");
    check_eq("  ... saved CS", last_trap.cs & 0xFFFF, SEL_XONLY);

    printf("-- string instruction stopped by the limit\n");
    memset(limbuf, 0, 0x1000);
    expect("#GP rep stosb across the limit", rep_stos_limit, 13, 0, rep_stos_limit_insn,
           "rep stosb");
    check_eq("  ... EDI at the fault", last_trap.edi, 0x1000);
    check_eq("  ... ECX at the fault", last_trap.ecx, 0x10);
    check_eq("  ... last byte stored", limbuf[0xFFF], 0x5A);
    check_eq("  ... bytes before 0xFF0 untouched", limbuf[0xFEF], 0);

    printf("-- stack segment limits\n");
    probe_sel = SEL_SS_UP;
    probe_off = A(kernel_stack_top) - 4;
    expect_none("SS expand-up: read at top - 4", ss_read32);
    probe_off = A(kernel_stack_top);
    expect("#SS SS expand-up: read at top", ss_read32, 12, 0, ss_read32_insn, "mov ss:");
    probe_sel = SEL_SS_DOWN;
    probe_off = stack_bottom + 0x1000;
    expect_none("SS expand-down: read at lowest valid offset", ss_read32);
    probe_off = stack_bottom + 0xFFC;
    expect("#SS SS expand-down: read below the limit", ss_read32, 12, 0, ss_read32_insn,
           "mov ss:");

    printf("-- code segment limit\n");
    expect("#GP fetch past CS limit", tiny_code_run, 13, 0, (void *)0x101, "offset 0x101");
    check_eq("  ... saved CS", last_trap.cs & 0xFFFF, SEL_TINYCODE);

    printf("-- alignment check\n");
    run_user(FN(u_misaligned), 0x2);
    check_eq("CR0.AM=0, AC=1, CPL3: no #AC (vector)", last_trap.vector, 0x80);
    write_cr0(read_cr0() | (1u << 18));   /* CR0.AM */
    run_user(FN(u_misaligned), 0x2);
    check_trap("#AC CR0.AM=1, AC=1, CPL3", 17, 0, A(u_misaligned_insn), "mov");
    check_eq("  ... pushed CS", last_trap.cs & 0xFFFF, SEL_UCODE);
    expect_none("CR0.AM=1, AC=1, CPL0: no #AC", k_misaligned);
    write_cr0(read_cr0() & ~(1u << 18));

    test_rsvd();
    return 0;
}
