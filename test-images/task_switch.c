/*
 * task_switch.elf: hardware task switching (Intel SDM vol. 3, ch. 7 "Task
 * Management").
 *
 * The kernel runs as the "main" task (TR = SEL_TSS).  Tasks A-D have their
 * own TSS, stack, CR3 and (A, B) LDT:
 *  - JMP to task A and JMP back: outgoing state saved into the TSS, the busy
 *    bit moves with the JMP, no back-link, NT stays 0, LDTR and CR3 loaded
 *    from the TSS, CR0.TS set.
 *  - CALL to task B and IRET back: nested, NT=1 in B, back-link = main,
 *    both busy; IRET clears B's busy bit and NT in B's saved EFLAGS.
 *    A second CALL resumes B after its IRET.
 *  - INT $0x40 through a task gate (task C) and a #GP delivered through a
 *    task gate (task D) with the error code pushed on D's stack.
 *  - JMP/CALL to the busy running task: #GP(selector); IRET with NT=1 and a
 *    link to a non-busy TSS: #TS(link).
 * The CR3 of tasks A and B map linear 0x40000000 to different physical
 * pages, so reading there shows which page directory is live.
 */
#include "runtime.h"
#include "task_switch.h"

const char test_name[] = "task_switch";

typedef char label[];
extern label task_a_entry, task_a_resume, task_b_entry, task_b_resume, task_c_entry,
    task_d_entry, do_jmp_a, do_jmp_a_resume, do_call_b, do_call_b_resume, do_int_c,
    do_int_c_resume, do_gp_d, gp_d_insn, gp_d_recover, jmp_busy, jmp_busy_insn, call_busy,
    call_busy_insn, iret_nt, iret_nt_insn;
#define FN(x) ((void (*)(void))(x))
#define A(x) ((u32)(x))

struct tss tss_a, tss_b, tss_c, tss_d, tss_e;
u32 rec_a[REC_SLOTS], rec_b[REC_SLOTS], rec_c[REC_SLOTS], rec_d[REC_SLOTS];
u32 main_regs[8], main_esp_before;

static u8 stack_a[4096] ALIGNED(16), stack_b[4096] ALIGNED(16), stack_c[4096] ALIGNED(16),
    stack_d[4096] ALIGNED(16);
static u64 ldt_a[2], ldt_b[2];
static u32 ldt_a_buf[4], ldt_b_buf[4];

/* Page directories: identity map of 0-16 MiB with 4 MiB pages, plus
 * 0x40000000 -> a 4 MiB page that differs per directory. */
static volatile u32 pd_main[1024] ALIGNED(4096), pd_a[1024] ALIGNED(4096),
    pd_b[1024] ALIGNED(4096);
#define PAGE_MAIN 0x00400000
#define PAGE_A    0x00800000
#define PAGE_B    0x00C00000

static void make_pd(volatile u32 *pd, u32 page)
{
    for (u32 i = 0; i < 4; i++)
        pd[i] = (i << 22) | 0x83;            /* P, W, PS */
    pd[0x40000000 >> 22] = page | 0x83;
}

static void init_tss(struct tss *t, void *entry, u8 *stack, u32 cr3, u16 ldt)
{
    memset(t, 0, sizeof *t);
    t->link = 0xDEAD;                        /* must stay as is unless CALL/INT writes it */
    t->eip = A(entry);
    t->esp = A(stack) + 4096;
    t->eflags = 0x2;
    t->cs = SEL_KCODE;
    t->ss = t->ds = t->es = t->fs = t->gs = SEL_KDATA;
    t->cr3 = cr3;
    t->ldt = ldt;
    t->iomap_base = sizeof(struct tss);      /* no I/O bitmap */
}

static u8 access_byte(u16 sel) { return (u8)(gdt[sel >> 3] >> 40); }
static int busy(u16 sel) { return (access_byte(sel) & 0x0F) == 0x0B; }

static u32 cr0_ts(void)
{
    u32 ts = read_cr0() & 8;
    __asm__ volatile("clts");
    return ts;
}

static void test_jmp(void)
{
    printf("-- JMP to task A and back\n");
    FN(do_jmp_a)();
    check_eq("task A: TR", rec_a[REC_TR] & 0xFFFF, SEL_TSS_A);
    check_eq("task A: LDTR from its TSS", rec_a[REC_LDTR] & 0xFFFF, SEL_LDT_A);
    check_addr("task A: CR3 from its TSS", rec_a[REC_CR3], A(pd_a));
    check_eq("task A: [0x40000000] through its CR3", rec_a[REC_PAGE], 0xAAAAAAAA);
    check_eq("task A: EFLAGS.NT (JMP does not nest)", rec_a[REC_EFLAGS] & FL_NT, 0);
    check_eq("task A: own TSS busy", (rec_a[REC_BUSY_SELF] & 0xF) == 0xB, 1);
    check_eq("task A: kernel TSS not busy (JMP clears it)", (rec_a[REC_BUSY_MAIN] & 0xF) == 0xB, 0);
    check_eq("task A: back-link field untouched", rec_a[REC_LINK], 0xDEAD);
    check_eq("task A: wrote through its LDT data segment", ldt_a_buf[0], 0xA1A1A1A1);

    check_eq("main: TR after return", read_tr(), SEL_TSS);
    check_eq("main: LDTR after return (null)", read_ldtr(), 0);
    check_addr("main: CR3 after return", read_cr3(), A(pd_main));
    check_eq("main: [0x40000000]", *(volatile u32 *)phys(0x40000000), 0x4A4A4A4A);
    check_eq("main: CR0.TS set by the task switch", cr0_ts(), 8);
    check_eq("main: kernel TSS busy again", busy(SEL_TSS), 1);
    check_eq("main: TSS A no longer busy", busy(SEL_TSS_A), 0);

    /* State saved into the kernel TSS when main left, and reloaded. */
    struct tss *m = &kernel_tss.tss;
    check_addr("kernel TSS: saved EIP = after the ljmp", m->eip, A(do_jmp_a_resume));
    check_addr("kernel TSS: saved ESP", m->esp, main_esp_before);
    check_eq("kernel TSS: saved EAX", m->eax, 0x11110001);
    check_eq("kernel TSS: saved EBX", m->ebx, 0x11110002);
    check_eq("kernel TSS: saved ECX", m->ecx, 0x11110003);
    check_eq("kernel TSS: saved EDX", m->edx, 0x11110004);
    check_eq("kernel TSS: saved ESI", m->esi, 0x11110005);
    check_eq("kernel TSS: saved EDI", m->edi, 0x11110006);
    check_eq("kernel TSS: saved EBP", m->ebp, 0x11110007);
    check_eq("kernel TSS: saved CS", m->cs & 0xFFFF, SEL_KCODE);
    check_eq("kernel TSS: saved SS", m->ss & 0xFFFF, SEL_KDATA);
    check_eq("kernel TSS: saved DS", m->ds & 0xFFFF, SEL_KDATA);
    check_eq("kernel TSS: saved FS", m->fs & 0xFFFF, SEL_KDATA);
    check_addr("kernel TSS: CR3 field not written", m->cr3, A(pd_main));
    check_eq("main: EAX reloaded from the TSS", main_regs[0], 0x11110001);
    check_eq("main: EBP reloaded from the TSS", main_regs[6], 0x11110007);
    check_addr("main: ESP reloaded from the TSS", main_regs[7], main_esp_before);

    check_addr("TSS A: saved EIP = after its ljmp", tss_a.eip, A(task_a_resume));
    check_eq("TSS A: saved EAX", tss_a.eax, 0xAAAA0001);
    check_eq("TSS A: saved EDI", tss_a.edi, 0xAAAA0006);
    check_eq("TSS A: saved FS (LDT selector)", tss_a.fs & 0xFFFF, SEL_LDT_DATA);
    check_eq("TSS A: saved EFLAGS.NT", tss_a.eflags & FL_NT, 0);
    check_addr("TSS A: CR3 field unchanged", tss_a.cr3, A(pd_a));
    check_eq("TSS A: link field unchanged", tss_a.link, 0xDEAD);
}

static void test_call(void)
{
    printf("-- CALL to task B (nested) and IRET back\n");
    FN(do_call_b)();
    check_eq("task B: TR", rec_b[REC_TR] & 0xFFFF, SEL_TSS_B);
    check_eq("task B: LDTR", rec_b[REC_LDTR] & 0xFFFF, SEL_LDT_B);
    check_eq("task B: [0x40000000] through its CR3", rec_b[REC_PAGE], 0xBBBBBBBB);
    check_eq("task B: EFLAGS.NT set", rec_b[REC_EFLAGS] & FL_NT, FL_NT);
    check_eq("task B: back-link = kernel TSS", rec_b[REC_LINK], SEL_TSS);
    check_eq("task B: own TSS busy", (rec_b[REC_BUSY_SELF] & 0xF) == 0xB, 1);
    check_eq("task B: kernel TSS still busy (CALL keeps it)", (rec_b[REC_BUSY_MAIN] & 0xF) == 0xB, 1);
    check_eq("task B: wrote through its LDT data segment", ldt_b_buf[0], 0xB1B1B1B1);
    check_eq("main: TR after IRET", read_tr(), SEL_TSS);
    check_eq("main: EFLAGS.NT after IRET", read_eflags() & FL_NT, 0);
    check_eq("main: CR0.TS set", cr0_ts(), 8);
    check_eq("main: TSS B not busy after IRET", busy(SEL_TSS_B), 0);
    check_eq("main: kernel TSS busy", busy(SEL_TSS), 1);
    check_addr("kernel TSS: saved EIP = after the lcall", kernel_tss.tss.eip, A(do_call_b_resume));
    check_eq("main: EAX reloaded from the TSS", main_regs[0], 0x22220001);
    check_addr("TSS B: saved EIP = after its iret", tss_b.eip, A(task_b_resume));
    check_eq("TSS B: saved EBX", tss_b.ebx, 0xBBBB0002);
    check_eq("TSS B: saved EFLAGS.NT cleared by IRET", tss_b.eflags & FL_NT, 0);

    tss_b.link = 0xDEAD;
    FN(do_call_b)();
    check_eq("second CALL: task B body ran again", rec_b[REC_COUNT], 2);
    check_eq("  ... back-link written again", rec_b[REC_LINK], SEL_TSS);
    __asm__ volatile("clts");
}

static void test_gates(void)
{
    printf("-- task gates in the IDT\n");
    /* Task gate: selector in bits 31:16, type 5, present. */
    idt[TASK_GATE_VEC] = ((u64)SEL_TSS_C << 16) | ((u64)GATE_TASK << 40);
    FN(do_int_c)();
    check_eq("int $0x40 -> task C: TR", rec_c[REC_TR] & 0xFFFF, SEL_TSS_C);
    check_eq("  ... EFLAGS.NT", rec_c[REC_EFLAGS] & FL_NT, FL_NT);
    check_eq("  ... back-link", rec_c[REC_LINK], SEL_TSS);
    check_addr("kernel TSS: saved EIP = after the int", kernel_tss.tss.eip, A(do_int_c_resume));
    check_eq("TSS C not busy after IRET", busy(SEL_TSS_C), 0);

    u64 saved_gp = idt[13];
    idt[13] = ((u64)SEL_TSS_D << 16) | ((u64)GATE_TASK << 40);
    FN(do_gp_d)();
    idt[13] = saved_gp;
    check_eq("#GP -> task D: TR", rec_d[REC_TR] & 0xFFFF, SEL_TSS_D);
    check_eq("  ... error code on task D's stack", rec_d[REC_ERR], SEL_BEYOND);
    check_eq("  ... back-link", rec_d[REC_LINK], SEL_TSS);
    check_eq("  ... EFLAGS.NT", rec_d[REC_EFLAGS] & FL_NT, FL_NT);
    check_addr("  ... kernel TSS EIP seen by task D = the faulting mov", rec_d[REC_OLD_EIP],
               A(gp_d_insn));
    check_addr("main resumed where task D pointed it", kernel_tss.tss.eip, A(gp_d_recover));
    check_addr("TSS D: ESP back at the top after popping the error code",
               tss_d.esp, A(stack_d) + 4096);
    __asm__ volatile("clts");
}

static void test_busy(void)
{
    printf("-- busy and NT checks\n");
    run_catch(FN(jmp_busy));
    check_trap("#GP ljmp to the running (busy) task", 13, SEL_TSS, A(jmp_busy_insn), "ljmp");
    run_catch(FN(call_busy));
    check_trap("#GP lcall to the running (busy) task", 13, SEL_TSS, A(call_busy_insn), "lcall");
    kernel_tss.tss.link = SEL_TSS_E;
    run_catch(FN(iret_nt));
    kernel_tss.tss.link = 0;
    check_trap("#TS iret with NT=1, link to a non-busy TSS", 10, SEL_TSS_E, A(iret_nt_insn), "iret");
    check_eq("kernel TSS still busy", busy(SEL_TSS), 1);
    check_eq("TSS E still available", busy(SEL_TSS_E), 0);
}

int kmain(u32 magic, u32 mbi)
{
    printf("task_switch: hardware task switching\n");

    make_pd(pd_main, PAGE_MAIN);
    make_pd(pd_a, PAGE_A);
    make_pd(pd_b, PAGE_B);
    *(volatile u32 *)phys(PAGE_MAIN) = 0x4A4A4A4A;
    *(volatile u32 *)phys(PAGE_A) = 0xAAAAAAAA;
    *(volatile u32 *)phys(PAGE_B) = 0xBBBBBBBB;
    write_cr3(A(pd_main));
    write_cr4(read_cr4() | (1u << 4));       /* PSE */
    write_cr0(read_cr0() | 0x80000000u);     /* PG */
    /* The CPU never writes CR3 into a TSS but loads it when switching to the
     * task, so the kernel TSS must hold the right value before the first
     * switch back to it. */
    kernel_tss.tss.cr3 = read_cr3();
    ldt_load(0);

    ldt_a[1] = make_desc(A(ldt_a_buf), sizeof ldt_a_buf - 1, ACC_DATA_W, FL_DB);
    ldt_b[1] = make_desc(A(ldt_b_buf), sizeof ldt_b_buf - 1, ACC_DATA_W, FL_DB);
    gdt_set(SEL_LDT_A >> 3, A(ldt_a), sizeof ldt_a - 1, ACC_LDT, 0);
    gdt_set(SEL_LDT_B >> 3, A(ldt_b), sizeof ldt_b - 1, ACC_LDT, 0);

    init_tss(&tss_a, task_a_entry, stack_a, A(pd_a), SEL_LDT_A);
    init_tss(&tss_b, task_b_entry, stack_b, A(pd_b), SEL_LDT_B);
    init_tss(&tss_c, task_c_entry, stack_c, A(pd_main), 0);
    init_tss(&tss_d, task_d_entry, stack_d, A(pd_main), 0);
    init_tss(&tss_e, NULL, stack_d, A(pd_main), 0);
    gdt_set(SEL_TSS_A >> 3, A(&tss_a), sizeof(struct tss) - 1, ACC_TSS32, 0);
    gdt_set(SEL_TSS_B >> 3, A(&tss_b), sizeof(struct tss) - 1, ACC_TSS32, 0);
    gdt_set(SEL_TSS_C >> 3, A(&tss_c), sizeof(struct tss) - 1, ACC_TSS32, 0);
    gdt_set(SEL_TSS_D >> 3, A(&tss_d), sizeof(struct tss) - 1, ACC_TSS32, 0);
    gdt_set(SEL_TSS_E >> 3, A(&tss_e), sizeof(struct tss) - 1, ACC_TSS32, 0);

    check_eq("kernel TSS busy after LTR", busy(SEL_TSS), 1);
    check_eq("TSS A available", busy(SEL_TSS_A), 0);

    test_jmp();
    test_call();
    test_gates();
    test_busy();

    write_cr0(read_cr0() & ~0x80000000u);
    return 0;
}
