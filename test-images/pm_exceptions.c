/*
 * pm_exceptions.elf: protected-mode exceptions and privilege transitions.
 *
 * Each check runs a small snippet from pm_exceptions_asm.S, catches the
 * exception it raises and compares vector, error code and saved EIP with
 * what the Intel SDM (vol. 3, ch. 6 "Interrupt and Exception Handling") says.
 * Faults save the EIP of the faulting instruction; traps (INT3, INT n, INTO)
 * save the EIP of the next one.  Selector error codes are the selector with
 * the RPL bits replaced by the EXT/IDT bits; for IDT vectors they are
 * vector*8 + 2.
 *
 * Checks that QEMU's TCG gets wrong (data segment limits and types, #AC,
 * LOCK on a non-lockable instruction, the error code of a far CALL beyond the
 * CS limit) live in pm_strict.elf instead, so this image can be validated
 * under QEMU.
 */
#include "runtime.h"
#include "pm_exceptions.h"

const char test_name[] = "pm_exceptions";

/* Snippets (pm_exceptions_asm.S). */
typedef char label[];
extern label de_div0, de_div0_insn, de_ovf32, de_ovf32_insn, de_ovf8, de_ovf8_insn,
    de_idiv, de_idiv_insn, bp_int3, bp_int3_after, bp_int_3, bp_int_3_after,
    of_into, of_into_after, of_into_clear, br_check, br_check_insn, ud_ud2, ud_ud2_insn,
    load_ds, load_ds_insn, load_ss, load_ss_insn, far_jmp,
    far_jmp_insn, far_jmp_ok, int_0x41, int_0x41_insn,
    int_0x41_after, int_0x41_sti, int_0x41_sti_after, u_syscall, u_syscall_after, u_int_dpl0, u_int_dpl0_insn, u_int3,
    u_int3_after, u_div0, u_div0_insn, u_load_kdata, u_load_kdata_insn, u_hlt, u_hlt_insn,
    u_mov_cr0, u_mov_cr0_insn, u_cli, u_cli_insn, u_cli_after, u_popf_iopl, u_callgate, u_callgate_ret,
    callgate_target, u_io_allowed, u_io_allowed_after, u_io_denied, u_io_denied_insn, u_io_word,
    u_io_word_insn, u_io_iopl3;

#define FN(x) ((void (*)(void))(x))
#define A(x) ((u32)(x))

/* Variables the snippets read or write. */
u32 br_index;
u16 seg_sel;
struct { u32 offset; u16 sel; } __attribute__((packed)) far_target;
u16 far_jmp_ok_cs;
u32 cg_frame[9];

/* Run a CPL0 snippet that must raise exactly the given exception. */
static void expect(const char *desc, void *fn, u32 vec, u32 err, void *eip, const char *what)
{
    run_catch(FN(fn));
    check_trap(desc, vec, err, A(eip), what);
}

/* Run a CPL0 snippet that must not raise anything. */
static void expect_none(const char *desc, void *fn)
{
    int trapped = run_catch(FN(fn));
    if (trapped)
        printf("     (got vec=%u err=%#x eip=%#x)\n", last_trap.vector, last_trap.err, last_trap.eip);
    check(!trapped, desc);
}

/* Run a CPL3 snippet with the given IOPL and check what ended it. */
static void expect_user(const char *desc, void *fn, u32 iopl, u32 vec, u32 err, void *eip,
                        const char *what)
{
    run_user(FN(fn), 0x2 | FL_IOPL(iopl));
    check_trap(desc, vec, err, A(eip), what);
}

static void test_divide(void)
{
    printf("-- #DE\n");
    expect("#DE div by zero", de_div0, 0, 0, de_div0_insn, "div");
    expect("#DE 64/32 quotient overflow", de_ovf32, 0, 0, de_ovf32_insn, "div");
    expect("#DE 16/8 quotient overflow", de_ovf8, 0, 0, de_ovf8_insn, "div");
    expect("#DE idiv INT_MIN / -1", de_idiv, 0, 0, de_idiv_insn, "idiv");
}

static void test_traps(void)
{
    printf("-- #BP, #OF, #BR, #UD\n");
    expect("#BP int3", bp_int3, 3, 0, bp_int3_after, "after int3");
    expect("#BP int $3 (CD 03)", bp_int_3, 3, 0, bp_int_3_after, "after int $3");
    expect("#OF into with OF=1", of_into, 4, 0, of_into_after, "after into");
    expect_none("into with OF=0 does nothing", of_into_clear);

    br_index = 25;
    expect("#BR bound 25 in [10,20]", br_check, 5, 0, br_check_insn, "bound");
    br_index = 9;
    expect("#BR bound 9 in [10,20]", br_check, 5, 0, br_check_insn, "bound");
    br_index = 10;
    expect_none("bound 10 in [10,20]: no fault", br_check);
    br_index = 20;
    expect_none("bound 20 in [10,20]: no fault", br_check);

    expect("#UD ud2", ud_ud2, 6, 0, ud_ud2_insn, "ud2");
}

static void test_segments(void)
{
    printf("-- segment loads\n");
    seg_sel = SEL_BEYOND;
    expect("#GP mov ds, selector past GDT limit", load_ds, 13, SEL_BEYOND, load_ds_insn, "mov ds");
    seg_sel = 0x0C;  /* LDT index 1, but LDTR is null */
    expect("#GP mov ds, LDT selector with null LDTR", load_ds, 13, 0x0C, load_ds_insn, "mov ds");
    seg_sel = SEL_TSS;
    expect("#GP mov ds, TSS selector", load_ds, 13, SEL_TSS, load_ds_insn, "mov ds");
    seg_sel = SEL_XONLY;
    expect("#GP mov ds, execute-only code", load_ds, 13, SEL_XONLY, load_ds_insn, "mov ds");
    seg_sel = SEL_KDATA | 3;  /* RPL 3 > DPL 0 */
    expect("#GP mov ds, RPL3 selector of DPL0 data", load_ds, 13, SEL_KDATA, load_ds_insn,
           "mov ds");
    seg_sel = SEL_NOTPRESENT;
    expect("#NP mov ds, not-present data", load_ds, 11, SEL_NOTPRESENT, load_ds_insn, "mov ds");
    seg_sel = SEL_KCODE;
    expect_none("mov ds, readable code segment is allowed", load_ds);
    seg_sel = 0;
    expect_none("mov ds, null selector is allowed", load_ds);

    seg_sel = 0;
    expect("#GP mov ss, null", load_ss, 13, 0, load_ss_insn, "mov ss");
    seg_sel = SEL_RODATA;
    expect("#GP mov ss, read-only data", load_ss, 13, SEL_RODATA, load_ss_insn, "mov ss");
    seg_sel = SEL_KCODE;
    expect("#GP mov ss, code segment", load_ss, 13, SEL_KCODE, load_ss_insn, "mov ss");
    seg_sel = SEL_UDATA;
    expect("#GP mov ss, DPL3 data at CPL0", load_ss, 13, SEL_UDATA & ~3, load_ss_insn, "mov ss");
    seg_sel = SEL_NOTPRESENT;
    expect("#SS mov ss, not-present data", load_ss, 12, SEL_NOTPRESENT, load_ss_insn, "mov ss");
    seg_sel = SEL_KDATA2;
    expect_none("mov ss, second flat data segment is allowed", load_ss);

    printf("-- far jumps and calls\n");
    far_target.offset = 0;
    far_target.sel = 0;
    expect("#GP ljmp to null selector", far_jmp, 13, 0, far_jmp_insn, "ljmp");
    far_target.sel = SEL_BEYOND;
    expect("#GP ljmp past GDT limit", far_jmp, 13, SEL_BEYOND, far_jmp_insn, "ljmp");
    far_target.sel = SEL_KDATA;
    expect("#GP ljmp to data segment", far_jmp, 13, SEL_KDATA, far_jmp_insn, "ljmp");
    far_target.sel = SEL_CODE_NP;
    expect("#NP ljmp to not-present code", far_jmp, 11, SEL_CODE_NP, far_jmp_insn, "ljmp");
    far_target.sel = SEL_CODE2M;
    far_target.offset = 0x200000;  /* just beyond the 2 MiB limit */
    expect("#GP ljmp beyond code segment limit", far_jmp, 13, 0, far_jmp_insn, "ljmp");
    expect_none("ljmp within the 2 MiB code segment", far_jmp_ok);
    check_eq("CS after that ljmp", far_jmp_ok_cs, SEL_CODE2M);
    far_target.offset = 0;
    far_target.sel = SEL_BADTSS;
    expect("#TS ljmp to TSS with limit < 0x67", far_jmp, 10, SEL_BADTSS, far_jmp_insn, "ljmp");
}

/* IF as seen inside the handler of vector 0x41 (interrupt vs trap gate). */
static u32 eflags_in_handler;
static void record_eflags(struct frame *f)
{
    eflags_in_handler = read_eflags();
    catch_trap(f);
}

static void test_gates(void)
{
    printf("-- IDT gates\n");
    /* A gate with P=0: #NP with the IDT bit set in the error code. */
    idt_set_stub(0x41, GATE_INT32 & 0x7F);
    expect("#NP int $0x41 through not-present gate", int_0x41, 11, 0x41 * 8 + 2, int_0x41_insn,
           "int");

    /* Interrupt gate clears IF, trap gate leaves it.  The PICs are masked, so
     * running with IF=1 for a moment is safe. */
    trap_handlers[0x41] = record_eflags;
    idt_set_stub(0x41, GATE_INT32);
    expect("int $0x41 through interrupt gate", int_0x41_sti, 0x41, 0, int_0x41_sti_after,
           "after int");
    check_eq("IF in handler (interrupt gate)", eflags_in_handler & FL_IF, 0);
    check_eq("IF in saved EFLAGS", last_trap.eflags & FL_IF, FL_IF);
    idt_set_stub(0x41, GATE_TRAP32);
    expect("int $0x41 through trap gate", int_0x41_sti, 0x41, 0, int_0x41_sti_after, "after int");
    check_eq("IF in handler (trap gate)", eflags_in_handler & FL_IF, FL_IF);
    trap_handlers[0x41] = NULL;
}

/* SS inside the handler of int $0x80, to see that it came from TSS.ss0. */
static u32 ss_in_handler;
static void record_ss(struct frame *f)
{
    u16 ss;
    __asm__ volatile("mov %%ss, %0" : "=r"(ss));
    ss_in_handler = ss;
    catch_trap(f);
}

static void test_ring3(void)
{
    printf("-- ring 3 -> ring 0 through an interrupt gate\n");
    kernel_tss.tss.ss0 = SEL_KDATA2;
    trap_handlers[SYSCALL_VECTOR] = record_ss;
    expect_user("int $0x80 from CPL3", u_syscall, 0, 0x80, 0, u_syscall_after, "after int");
    trap_handlers[SYSCALL_VECTOR] = NULL;
    kernel_tss.tss.ss0 = SEL_KDATA;
    check_eq("SS in handler (TSS.ss0)", ss_in_handler, SEL_KDATA2);
    check_eq("pushed CS", last_trap.cs & 0xFFFF, SEL_UCODE);
    check_eq("pushed SS", last_trap.ss & 0xFFFF, SEL_UDATA);
    check_addr("pushed ESP = user ESP", last_trap.esp, USER_STACK_TOP - 16);
    check_addr("frame ends at TSS.esp0", last_trap_frame_addr + __builtin_offsetof(struct frame, ss) + 4,
               A(intr_stack_top));
    check_eq("EAX preserved", last_trap.eax, 0x11111111);
    check_eq("EBX preserved", last_trap.ebx, 0x22222222);
    check_eq("DS at entry still user data", last_trap.ds & 0xFFFF, SEL_UDATA);

    printf("-- ring 3 faults\n");
    idt_set_stub(0x41, GATE_INT32);  /* present, DPL0 */
    expect_user("#GP int $0x41 (DPL0 gate) from CPL3", u_int_dpl0, 0, 13, 0x41 * 8 + 2,
                u_int_dpl0_insn, "int");
    check_eq("  ... CS of faulting code", last_trap.cs & 0xFFFF, SEL_UCODE);
    expect_user("#GP int3 (DPL0 gate) from CPL3", u_int3, 0, 13, 3 * 8 + 2, u_int3, "int3");
    idt_set_stub(3, GATE_INT32 | GATE_DPL3);
    expect_user("#BP int3 (DPL3 gate) from CPL3", u_int3, 0, 3, 0, u_int3_after, "after int3");
    idt_set_stub(3, GATE_INT32);
    expect_user("#DE from CPL3 (exceptions ignore gate DPL)", u_div0, 0, 0, 0, u_div0_insn, "div");
    check_eq("  ... pushed SS", last_trap.ss & 0xFFFF, SEL_UDATA);
    expect_user("#GP mov ds, DPL0 data at CPL3", u_load_kdata, 0, 13, SEL_KDATA,
                u_load_kdata_insn, "mov ds");
    expect_user("#GP hlt at CPL3", u_hlt, 0, 13, 0, u_hlt_insn, "hlt");
    expect_user("#GP mov eax, cr0 at CPL3", u_mov_cr0, 0, 13, 0, u_mov_cr0_insn, "mov cr0");
    expect_user("#GP cli at CPL3 with IOPL=0", u_cli, 0, 13, 0, u_cli_insn, "cli");
    expect_user("cli at CPL3 with IOPL=3 is allowed", u_cli, 3, 0x80, 0, u_cli_after, "after int");
    check_eq("  ... EAX", last_trap.eax, 0xC1C1C1C1);
    run_user(FN(u_popf_iopl), 0x2);
    check_eq("popf at CPL3 leaves IOPL alone (IOPL bits)", last_trap.eax & 0x3000, 0);

    printf("-- call gate from ring 3\n");
    /* 32-bit call gate, DPL3, to callgate_target in the ring 0 code segment,
     * copying 2 dword parameters. */
    u32 off = A(callgate_target);
    gdt[SEL_CALLGATE >> 3] = (u64)(off & 0xFFFF) | ((u64)SEL_KCODE << 16) | ((u64)2 << 32) |
                             ((u64)(0x80 | 0x60 | 0x0C) << 40) | ((u64)(off >> 16) << 48);
    memset(cg_frame, 0, sizeof cg_frame);
    run_user(FN(u_callgate), 0x2);
    check_eq("back in ring 3 after lret: CS", last_trap.edx & 0xFFFF, SEL_UCODE);
    check_eq("value returned in EAX", last_trap.eax, 0xC0FFEE);
    check_addr("ESP after lret $8 = ESP before the pushes", last_trap.ecx, last_trap.ebp);
    check_addr("gate stack: return EIP", cg_frame[0], A(u_callgate_ret));
    check_eq("gate stack: return CS", cg_frame[1] & 0xFFFF, SEL_UCODE);
    check_eq("gate stack: parameter 1", cg_frame[2], 0x11111111);
    check_eq("gate stack: parameter 2", cg_frame[3], 0x22222222);
    check_addr("gate stack: caller ESP", cg_frame[4], last_trap.ebp - 8);
    check_eq("gate stack: caller SS", cg_frame[5] & 0xFFFF, SEL_UDATA);
    check_addr("gate stack at TSS.esp0 - 24", cg_frame[6], A(intr_stack_top) - 24);
    check_eq("CS in gate target", cg_frame[7], SEL_KCODE);
    check_eq("SS in gate target (TSS.ss0)", cg_frame[8], SEL_KDATA);

    printf("-- I/O permission bitmap (IOPL=0 at CPL3)\n");
    kernel_tss.iomap[0xE9 / 8] &= (u8)~(1 << (0xE9 % 8));   /* allow port 0xE9 only */
    printf("     user writes: ");
    run_user(FN(u_io_allowed), 0x2);
    check_trap("out/in to allowed port 0xE9", 0x80, 0, A(u_io_allowed_after), "after int");
    check_eq("  ... EAX", last_trap.eax, 0xA110);
    expect_user("#GP in from denied port 0x80", u_io_denied, 0, 13, 0, u_io_denied_insn, "in");
    expect_user("#GP inw 0xE9 (0xEA denied)", u_io_word, 0, 13, 0, u_io_word_insn, "inw");
    run_user(FN(u_io_iopl3), 0x2 | FL_IOPL(3));
    check_eq("in from port 0x80 with IOPL=3 (no bitmap check)", last_trap.eax, 0x10F3);
}

int kmain(u32 magic, u32 mbi)
{
    printf("pm_exceptions: protected-mode exceptions\n");

    gdt_set(SEL_XONLY >> 3, 0, 0xFFFFF, ACC_CODE_X, FL_G | FL_DB);
    gdt_set(SEL_NOTPRESENT >> 3, 0, 0xFFFFF, ACC_DATA_W & 0x7F, FL_G | FL_DB);
    gdt_set(SEL_RODATA >> 3, 0, 0xFFFFF, ACC_DATA_R, FL_G | FL_DB);
    gdt_set(SEL_CODE2M >> 3, 0, 0x1FF, ACC_CODE_R, FL_G | FL_DB);   /* limit 0x1FFFFF */
    static u8 bad_tss[0x61];
    gdt_set(SEL_BADTSS >> 3, A(bad_tss), 0x60, ACC_TSS32, 0);
    gdt_set(SEL_KDATA2 >> 3, 0, 0xFFFFF, ACC_DATA_W, FL_G | FL_DB);
    gdt_set(SEL_CODE_NP >> 3, 0, 0xFFFFF, ACC_CODE_R & 0x7F, FL_G | FL_DB);
    ldt_load(0);   /* make LDTR null (after reset it is base 0, limit 0xFFFF) */

    test_divide();
    test_traps();
    test_segments();
    test_gates();
    test_ring3();
    return 0;
}
