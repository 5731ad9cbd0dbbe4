/*
 * paging.elf: 32-bit paging (4 KiB and 4 MiB pages), PAE paging (4 KiB and
 * 2 MiB pages, NX), #PF error codes and CR2, accessed/dirty bits, INVLPG and
 * CR3 reloads.  References: Intel SDM vol. 3, ch. 4 "Paging" (4.3 32-bit
 * paging, 4.4 PAE paging, 4.7 page-fault exceptions, 4.8 accessed and dirty
 * flags, 4.10 TLBs).
 *
 * #PF error code bits: 0 P (protection violation, not not-present),
 * 1 W/R (write), 2 U/S (CPL3), 3 RSVD (reserved bit set in a paging entry),
 * 4 I/D (instruction fetch; only reported with PAE + EFER.NXE, or SMEP).
 *
 * The first 16 MiB are identity mapped (with U=1 so ring-3 snippets can run
 * from the kernel image); tests use virtual addresses from 0x40000000 up,
 * mapped onto the page-aligned buffers frames[0..3] ("frame A".."frame D").
 * Only architecturally defined results are checked: e.g. what a read returns
 * after a PTE changed but before INVLPG is up to the TLB, so it is not looked at.
 */
#include "runtime.h"

const char test_name[] = "paging";

typedef char label[];
extern label k_read, k_read_insn, k_write, k_write_insn, k_call, u_read, u_read_insn, u_write,
    u_write_insn, u_call;
#define FN(x) ((void (*)(void))(x))
#define A(x) ((u32)(x))

u32 probe_addr, probe_val;

#define PG_P   0x001u
#define PG_W   0x002u
#define PG_U   0x004u
#define PG_A   0x020u
#define PG_D   0x040u
#define PG_PS  0x080u
#define PG_NX  (1ull << 63)

#define CR0_PG (1u << 31)
#define CR0_WP (1u << 16)
#define CR4_PSE (1u << 4)
#define CR4_PAE (1u << 5)
#define MSR_EFER 0xC0000080
#define EFER_NXE (1u << 11)

#define MARK(i) (0xF00D0000u + (i))      /* first dword of frame i */

static u8 frames[4][4096] ALIGNED(4096);
#define FRAME(i) A(frames[i])

/* 32-bit paging structures.  volatile: the CPU writes A/D bits behind the
 * compiler's back, and every store must reach memory before the access that
 * depends on it (gcc would otherwise happily sink a PTE store past a load
 * through the address it maps). */
static volatile u32 pd[1024] ALIGNED(4096);
static volatile u32 pt_ident[4][1024] ALIGNED(4096);
static volatile u32 pt_test[1024] ALIGNED(4096);      /* 0x40000000 - 0x403FFFFF */
static volatile u32 pt_test2[1024] ALIGNED(4096);     /* 0x40400000 - 0x407FFFFF */

/* PAE structures. */
static volatile u64 pdpt[4] ALIGNED(32);
static volatile u64 pae_pd[3][512] ALIGNED(4096);
static volatile u64 pae_pt[512] ALIGNED(4096);

/* CR2 as seen by the #PF handler. */
static u32 fault_cr2;
static void pf_handler(struct frame *f)
{
    fault_cr2 = read_cr2();
    catch_trap(f);
}

static u32 rd(u32 addr) { return *(volatile u32 *)phys(addr); }
static void wr(u32 addr, u32 v) { *(volatile u32 *)phys(addr) = v; }

/* Kernel read/write/call of probe_addr that must not fault. */
static void k_ok(const char *desc, void *snippet, u32 addr)
{
    probe_addr = addr;
    int trapped = run_catch(FN(snippet));
    if (trapped)
        printf("     (got vec=%u err=%#x eip=%#x cr2=%#x)\n", last_trap.vector, last_trap.err,
               last_trap.eip, fault_cr2);
    check(!trapped, desc);
}

/* Kernel access of `addr` that must raise #PF with `err`; checks CR2 too. */
static void k_pf(const char *desc, void *snippet, void *insn, u32 addr, u32 err, const char *what)
{
    probe_addr = addr;
    fault_cr2 = 0xEEEEEEEE;
    run_catch(FN(snippet));
    check_trap(desc, 14, err, insn ? A(insn) : addr, what);
    check_addr("  ... CR2 = faulting address", fault_cr2, addr);
}

/* The same from CPL3. */
static void u_pf(const char *desc, void *snippet, void *insn, u32 addr, u32 err, const char *what)
{
    probe_addr = addr;
    fault_cr2 = 0xEEEEEEEE;
    run_user(FN(snippet), 0x2);
    check_trap(desc, 14, err, insn ? A(insn) : addr, what);
    check_addr("  ... CR2 = faulting address", fault_cr2, addr);
}

/* Reserved-bit faults: the SDM says the error code has RSVD (bit 3) and, since
 * reserved bits are only checked in present entries, P (bit 0).  QEMU 7.x TCG
 * reports RSVD without P, so this check ignores bit 0; pm_strict.elf checks
 * the full error code. */
static void k_pf_rsvd(const char *desc, u32 addr, u32 err)
{
    probe_addr = addr;
    fault_cr2 = 0xEEEEEEEE;
    run_catch(FN(k_read));
    last_trap.err &= ~1u;
    check_trap(desc, 14, err & ~1u, A(k_read_insn), "mov");
    check_addr("  ... CR2 = faulting address", fault_cr2, addr);
}

static void reset_frames(void)
{
    for (int i = 0; i < 4; i++) {
        memset(frames[i], 0, 4096);
        wr(FRAME(i), MARK(i));
    }
}

static void flush_tlb(void) { write_cr3(read_cr3()); }

static void test_32bit(void)
{
    printf("-- 32-bit paging\n");
    /* Identity map 0-16 MiB with 4 KiB pages, user accessible. */
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 1024; i++)
            pt_ident[t][i] = ((u32)t << 22) + ((u32)i << 12) + (PG_P | PG_W | PG_U);
        pd[t] = A(pt_ident[t]) | PG_P | PG_W | PG_U;
    }
    pd[0x40000000 >> 22] = A(pt_test) | PG_P | PG_W | PG_U;
    /* Read-only, supervisor-only page table directory entry over user PTEs. */
    pd[0x40400000 >> 22] = A(pt_test2) | PG_P;
    reset_frames();

    write_cr3(A(pd));
    write_cr4(read_cr4() | CR4_PSE);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
    check_eq("CR0.PG set, still running; frame A via identity map", rd(FRAME(0)), MARK(0));

    /* Aliases. */
    pt_test[0] = FRAME(0) | PG_P | PG_W | PG_U;
    check_eq("read frame A through 0x40000000", rd(0x40000000), MARK(0));
    wr(0x40000004, 0x12345678);
    check_eq("write through 0x40000004 seen at frame A + 4", rd(FRAME(0) + 4), 0x12345678);

    /* A 4 MiB page: 0x80000000 -> physical 0x00400000. */
    pd[0x80000000u >> 22] = 0x00400000 | PG_P | PG_W | PG_PS;
    wr(0x00400000 + 0x1230, 0xCAFE4444);
    check_eq("4 MiB page: read 0x80001230 = phys 0x401230", rd(0x80001230), 0xCAFE4444);
    wr(0x803FF000, 0xBEEF4444);
    check_eq("4 MiB page: write 0x803FF000 seen at phys 0x7FF000", rd(0x007FF000), 0xBEEF4444);
    check_eq("4 MiB PDE: A and D set by the CPU", pd[0x80000000u >> 22] & (PG_A | PG_D), PG_A | PG_D);

    printf("-- #PF error codes (32-bit paging)\n");
    k_pf("#PF read, PDE not present", k_read, k_read_insn, 0x50000000, 0x0, "mov");
    k_pf("#PF write, PDE not present", k_write, k_write_insn, 0x50000010, 0x2, "mov");
    pt_test[1] = 0;
    k_pf("#PF read, PTE not present", k_read, k_read_insn, 0x40001008, 0x0, "mov");
    k_pf("#PF fetch, not present (no I/D bit without NX)", k_call, NULL, 0x50000000, 0x0,
         "target");

    pt_test[2] = FRAME(1) | PG_P | PG_U;     /* read-only user page */
    k_ok("read of read-only page at CPL0", k_read, 0x40002000);
    probe_val = 0x77777777;
    k_pf("#PF write read-only page at CPL0, CR0.WP=1", k_write, k_write_insn, 0x40002004, 0x3,
         "mov");
    write_cr0(read_cr0() & ~CR0_WP);
    k_ok("write read-only page at CPL0, CR0.WP=0: allowed", k_write, 0x40002004);
    check_eq("  ... value landed in frame B", rd(FRAME(1) + 4), 0x77777777);
    check_eq("  ... PTE dirty", pt_test[2] & PG_D, PG_D);
    write_cr0(read_cr0() | CR0_WP);

    pt_test[3] = FRAME(2) | PG_P | PG_W;     /* supervisor page */
    u_pf("#PF user read of supervisor page", u_read, u_read_insn, 0x40003000, 0x5, "mov");
    u_pf("#PF user write of supervisor page", u_write, u_write_insn, 0x40003004, 0x7, "mov");
    u_pf("#PF user write of read-only user page", u_write, u_write_insn, 0x40002000, 0x7, "mov");
    probe_addr = 0x40002000;
    run_user(FN(u_read), 0x2);
    check_eq("user read of read-only user page", last_trap.eax, MARK(1));

    pt_test2[0] = FRAME(3) | PG_P | PG_W | PG_U;   /* PDE: supervisor, read-only */
    u_pf("#PF user read, PTE U=1 but PDE U=0", u_read, u_read_insn, 0x40400000, 0x5, "mov");
    k_pf("#PF CPL0 write, PTE W=1 but PDE W=0 (WP=1)", k_write, k_write_insn, 0x40400000, 0x3,
         "mov");
    k_ok("CPL0 read through that PDE", k_read, 0x40400000);
    check_eq("  ... value", probe_val, MARK(3));

    /* Bit 21 of a 4 MiB PDE is reserved (bits 20:13 are PA bits 39:32). */
    pd[0x80800000u >> 22] = 0x00400000 | PG_P | PG_W | PG_PS | (1u << 21);
    k_pf_rsvd("#PF reserved bit 21 in a 4 MiB PDE (err & ~P)", 0x80800000, 0x9);

    printf("-- accessed/dirty bits, INVLPG, CR3 reload\n");
    pt_test[4] = FRAME(0) | PG_P | PG_W;
    pd[0x40000000 >> 22] &= ~PG_A;
    flush_tlb();
    (void)rd(0x40004000);
    check_eq("after a read: PTE A=1 D=0", pt_test[4] & (PG_A | PG_D), PG_A);
    check_eq("after a read: PDE A=1", pd[0x40000000 >> 22] & PG_A, PG_A);
    wr(0x40004010, 1);
    check_eq("after a write: PTE A=1 D=1", pt_test[4] & (PG_A | PG_D), PG_A | PG_D);

    pt_test[5] = FRAME(0) | PG_P | PG_W;
    check_eq("0x40005000 -> frame A", rd(0x40005000), MARK(0));
    pt_test[5] = FRAME(1) | PG_P | PG_W;
    invlpg(0x40005000);
    check_eq("PTE -> frame B, INVLPG: reads frame B", rd(0x40005000), MARK(1));
    pt_test[5] = FRAME(2) | PG_P | PG_W;
    flush_tlb();
    check_eq("PTE -> frame C, CR3 reload: reads frame C", rd(0x40005000), MARK(2));
    pt_test[5] = 0;
    invlpg(0x40005000);
    k_pf("PTE cleared, INVLPG: #PF", k_read, k_read_insn, 0x40005000, 0x0, "mov");

    write_cr0(read_cr0() & ~CR0_PG);
    write_cr4(read_cr4() & ~CR4_PSE);
    check_eq("paging off again: frame A via physical address", rd(FRAME(0)), MARK(0));
}

static void test_pae(void)
{
    printf("-- PAE paging\n");
    u32 a, b, c, d;
    u32 maxphys = 36;
    cpuid(0x80000000, &a, &b, &c, &d);
    u32 max_ext = a;
    if (max_ext >= 0x80000008) {
        cpuid(0x80000008, &a, &b, &c, &d);
        maxphys = a & 0xFF;
    }
    int have_nx = 0;
    if (max_ext >= 0x80000001) {
        cpuid(0x80000001, &a, &b, &c, &d);
        have_nx = (d >> 20) & 1;
    }

    for (int i = 0; i < 8; i++)    /* identity 0-16 MiB with 2 MiB pages */
        pae_pd[0][i] = ((u64)i << 21) | PG_P | PG_W | PG_U | PG_PS;
    pae_pd[1][0] = A(pae_pt) | PG_P | PG_W | PG_U;                  /* 0x40000000 */
    pae_pd[2][2] = 0x00400000 | PG_P | PG_W | PG_PS;                /* 0x80400000 */
    /* PDPTEs have only P/PWT/PCD: R/W and U/S are reserved here. */
    for (int i = 0; i < 3; i++)
        pdpt[i] = A(pae_pd[i]) | PG_P;
    pdpt[3] = 0;                                                    /* 0xC0000000 */
    reset_frames();

    write_cr4(read_cr4() | CR4_PAE);
    write_cr3(A(pdpt));
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
    check_eq("PAE on, still running; frame A via identity map", rd(FRAME(0)), MARK(0));

    pae_pt[0] = FRAME(0) | PG_P | PG_W;
    check_eq("read frame A through 0x40000000", rd(0x40000000), MARK(0));
    wr(0x00400000 + 0x100, 0xCAFE2222);
    check_eq("2 MiB page: read 0x80400100 = phys 0x400100", rd(0x80400100), 0xCAFE2222);
    check_eq("2 MiB PDE: A set, D clear", (u32)pae_pd[2][2] & (PG_A | PG_D), PG_A);

    k_pf("#PF read, PDPTE not present", k_read, k_read_insn, 0xC0000000, 0x0, "mov");
    pae_pt[1] = FRAME(1) | PG_P | PG_W | PG_NX;
    k_pf_rsvd("#PF bit 63 set with EFER.NXE=0 (reserved; err & ~P)", 0x40001000, 0x9);
    if (maxphys < 52) {
        pae_pt[2] = FRAME(1) | PG_P | PG_W | (1ull << maxphys);
        k_pf_rsvd("#PF PTE bit MAXPHYADDR set (reserved; err & ~P)", 0x40002000, 0x9);
        pae_pt[2] = FRAME(1) | PG_P;
        probe_val = 1;
        k_pf("#PF write to read-only PTE", k_write, k_write_insn, 0x40002000, 0x3, "mov");
    }

    pae_pt[3] = FRAME(0) | PG_P | PG_W;
    (void)rd(0x40003000);
    check_eq("after a read: PTE A=1 D=0", (u32)pae_pt[3] & (PG_A | PG_D), PG_A);
    wr(0x40003008, 2);
    check_eq("after a write: PTE A=1 D=1", (u32)pae_pt[3] & (PG_A | PG_D), PG_A | PG_D);
    pae_pt[3] = FRAME(2) | PG_P | PG_W;
    invlpg(0x40003000);
    check_eq("PTE -> frame C, INVLPG: reads frame C", rd(0x40003000), MARK(2));

    printf("-- NX\n");
    if (!have_nx) {
        printf("     CPUID 0x80000001 EDX bit 20 (NX) clear: NX checks skipped\n");
    } else {
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
        /* mov $0x12345678, %eax; ret */
        static const u8 code[] = { 0xB8, 0x78, 0x56, 0x34, 0x12, 0xC3 };
        memcpy(frames[3], code, sizeof code);
        pae_pt[4] = FRAME(3) | PG_P | PG_W | PG_U;
        pae_pt[5] = FRAME(3) | PG_P | PG_W | PG_U | PG_NX;
        pae_pt[6] = 0;
        k_ok("call code in an executable page", k_call, 0x40004000);
        check_eq("  ... it returned", probe_val, 0x12345678);
        k_pf("#PF fetch from NX page", k_call, NULL, 0x40005000, 0x11, "target");
        k_ok("data read from NX page", k_read, 0x40005000);
        check_eq("  ... value", probe_val, 0x345678B8);
        k_pf("#PF fetch, not present, NXE=1 (I/D bit)", k_call, NULL, 0x40006000, 0x10,
             "target");
        u_pf("#PF user fetch from NX page", u_call, NULL, 0x40005000, 0x15, "target");
        k_ok("bit 63 with NXE=1 is XD, not reserved: read ok", k_read, 0x40001000);
        check_eq("  ... value", probe_val, MARK(1));
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~(u64)EFER_NXE);
    }

    write_cr0(read_cr0() & ~CR0_PG);
    write_cr4(read_cr4() & ~CR4_PAE);
    check_eq("paging off again", rd(FRAME(2)), MARK(2));
}

int kmain(u32 magic, u32 mbi)
{
    printf("paging: 32-bit and PAE paging, #PF, A/D bits, TLB\n");
    trap_handlers[14] = pf_handler;
    test_32bit();
    test_pae();
    return 0;
}
