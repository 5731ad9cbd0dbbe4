/*
 * vm86.elf: virtual-8086 mode (Intel SDM vol. 3, ch. 20 "8086 Emulation").
 *
 * The kernel acts as a small v86 monitor.  It enters v86 mode with an IRET
 * whose EFLAGS image has VM=1 (at CPL0), runs the 16-bit code of
 * vm86_code.S at 2000:xxxx and takes it back on a #GP: the v86 code ends each
 * run with HLT, which is privileged.
 *
 *  run 1, IOPL=3: arithmetic, push/pop, seg*16+off addressing, 16-bit
 *    offset wrap-around, PUSHF without trapping, INT n delivered through the
 *    IDT to a ring-0 handler (DPL3 gate), INT3, OUT to port 0xE9 allowed by
 *    the TSS I/O bitmap.  The monitor checks the frame the CPU built on the
 *    TSS.esp0 stack: EIP/CS/EFLAGS/ESP/SS and the v86 ES/DS/FS/GS, and that
 *    DS/ES/FS/GS were zeroed on the way in.
 *  run 2, IOPL=0: CLI, STI, PUSHF, POPF, INT n and IRET all raise #GP(0); the
 *    monitor emulates them with a virtual IF and reflects INT n through the
 *    real-mode IVT at linear 0.  OUT to a denied port raises #GP(0); OUT to
 *    0xE9 still works (in v86 mode only the bitmap matters, not IOPL); INT3
 *    is not IOPL-sensitive and still goes through the IDT.
 */
#include "runtime.h"
#include "vm86.h"

const char test_name[] = "vm86";

typedef char label[];
extern label v86_blob_start, v86_blob_end, v86_basic, v86_sensitive, v86_int31_handler,
    v86_basic_hlt, v86_int3_after, v86_sensitive_int3_after;
void enter_v86(const u32 frame[9]) NORETURN;

#define A(x) ((u32)(x))
#define OFF(label) (A(label) - A(v86_blob_start))
#define LIN(seg, off) (((u32)(seg) << 4) + (u32)(off))

static u16 rd16(u32 lin) { return *(volatile u16 *)phys(lin); }
static void wr16(u32 lin, u16 v) { *(volatile u16 *)phys(lin) = v; }
static u32 rd32(u32 lin) { return *(volatile u32 *)phys(lin); }
static u16 result(u32 off) { return rd16(LIN(V86_DATA_SEG, off)); }

/* --- the monitor ----------------------------------------------------------- */

static int emulate;          /* run 2: emulate sensitive instructions */
static int vif;              /* the v86 task's virtual interrupt flag */
static int traps_seen;

/* The flags the monitor lets the v86 code see and change through
 * PUSHF/POPF: the arithmetic ones and DF (not TF, IF, IOPL, NT). */
#define VFLAGS_MASK (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_DF | FL_OF)

static u16 virtual_flags(struct frame *f)
{
    return (u16)((f->eflags & VFLAGS_MASK) | 0x2 | (vif ? FL_IF : 0));
}

static void vpush(struct frame *f, u16 v)
{
    u16 sp = (u16)(f->esp - 2);
    wr16(LIN(f->ss, sp), v);
    f->esp = (f->esp & 0xFFFF0000) | sp;
}

static u16 vpop(struct frame *f)
{
    u16 sp = (u16)f->esp;
    u16 v = rd16(LIN(f->ss, sp));
    f->esp = (f->esp & 0xFFFF0000) | (u16)(sp + 2);
    return v;
}

static void set_ip(struct frame *f, u32 ip) { f->eip = ip & 0xFFFF; }

static void gp_monitor(struct frame *f)
{
    if (!(f->eflags & FL_VM))
        catch_trap(f);          /* a #GP in protected mode: the test's business */

    u8 *ip = phys(LIN(f->cs & 0xFFFF, f->eip & 0xFFFF));
    if (ip[0] == 0xF4 || !emulate)   /* HLT (or anything in run 1) ends the run */
        catch_trap(f);

    traps_seen++;
    const char *what;
    switch (ip[0]) {
    case 0xFA:
        what = "cli";
        vif = 0;
        set_ip(f, f->eip + 1);
        break;
    case 0xFB:
        what = "sti";
        vif = 1;
        set_ip(f, f->eip + 1);
        break;
    case 0x9C:
        what = "pushf";
        vpush(f, virtual_flags(f));
        set_ip(f, f->eip + 1);
        break;
    case 0x9D: {
        what = "popf";
        u16 v = vpop(f);
        vif = (v & FL_IF) != 0;
        f->eflags = (f->eflags & ~VFLAGS_MASK) | (v & VFLAGS_MASK);
        set_ip(f, f->eip + 1);
        break;
    }
    case 0xCD: {
        /* Reflect INT n like a real-mode CPU would: push FLAGS, CS, IP,
         * clear IF, continue at the vector from the IVT at linear 0. */
        what = "int n (reflected through the IVT)";
        u8 n = ip[1];
        vpush(f, virtual_flags(f));
        vpush(f, (u16)f->cs);
        vpush(f, (u16)(f->eip + 2));
        vif = 0;
        set_ip(f, rd16(n * 4));
        f->cs = rd16(n * 4 + 2);
        break;
    }
    case 0xCF: {
        what = "iret";
        u16 nip = vpop(f), ncs = vpop(f), fl = vpop(f);
        set_ip(f, nip);
        f->cs = ncs;
        vif = (fl & FL_IF) != 0;
        f->eflags = (f->eflags & ~VFLAGS_MASK) | (fl & VFLAGS_MASK);
        break;
    }
    case 0xE6:
        what = "out imm8 (denied by the I/O bitmap, dropped)";
        set_ip(f, f->eip + 2);
        break;
    default:
        fail("monitor: unexpected #GP in v86 at %x:%x, opcode %x", f->cs & 0xFFFF,
             f->eip & 0xFFFF, ip[0]);
    }
    printf("     monitor: #GP(%#x) from v86: %s\n", f->err, what);
}

/* Ring-0 handler of INT 0x30 from v86 mode (IOPL=3): returns AX=0xBEEF. */
static struct frame int30_frame;
static void int30_handler(struct frame *f)
{
    int30_frame = *f;
    f->eax = (f->eax & 0xFFFF0000) | 0xBEEF;
}

/* INT3 from v86 mode: record the frame and go back. */
static struct frame int3_frame;
static int int3_count;
static void int3_handler(struct frame *f)
{
    int3_frame = *f;
    int3_count++;
}

/* Enter v86 mode at CS:IP = 2000:entry with the given IOPL; returns when the
 * monitor ends the run (the final frame is in last_trap). */
static void run_v86(void *entry, u32 iopl)
{
    const u32 frame[9] = {
        OFF(entry), V86_CODE_SEG, FL_VM | FL_IOPL(iopl) | 0x2, V86_STACK_TOP, V86_STACK_SEG,
        0x0000 /* ES */, 0x0000 /* DS */, 0x0000 /* FS */, 0x0000 /* GS */,
    };
    memset(&last_trap, 0xEE, sizeof last_trap);
    if (setjmp(&catch_buf) == 0) {
        catch_armed = 1;
        enter_v86(frame);
    }
}

int kmain(u32 magic, u32 mbi)
{
    printf("vm86: virtual-8086 mode\n");

    /* The v86 code, its IVT entry, and an I/O bitmap allowing port 0xE9. */
    memcpy(phys(LIN(V86_CODE_SEG, 0)), v86_blob_start, A(v86_blob_end) - A(v86_blob_start));
    memset(phys(LIN(V86_DATA_SEG, 0)), 0, 0x100);
    wr16(V86_IVT_VEC * 4, (u16)OFF(v86_int31_handler));
    wr16(V86_IVT_VEC * 4 + 2, V86_CODE_SEG);
    kernel_tss.iomap[0xE9 / 8] &= (u8)~(1 << (0xE9 % 8));

    trap_handlers[13] = gp_monitor;
    trap_handlers[V86_IDT_VEC] = int30_handler;
    trap_handlers[3] = int3_handler;
    idt_set_stub(V86_IDT_VEC, GATE_INT32 | GATE_DPL3);
    idt_set_stub(3, GATE_INT32 | GATE_DPL3);

    printf("-- run 1: IOPL=3\n");
    emulate = 0;
    run_v86(v86_basic, 3);
    struct frame *f = &last_trap;
    check_eq("ended with #GP", f->vector, 13);
    check_eq("  ... error code", f->err, 0);
    check_addr("  ... saved EIP = the hlt", f->eip, OFF(v86_basic_hlt));
    check_eq("  ... saved CS", f->cs & 0xFFFF, V86_CODE_SEG);
    check_eq("  ... saved EFLAGS.VM", f->eflags & FL_VM, FL_VM);
    check_eq("  ... saved EFLAGS.IOPL", f->eflags & FL_IOPL(3), FL_IOPL(3));
    check_eq("  ... saved SS", f->ss & 0xFFFF, V86_STACK_SEG);
    check_eq("  ... saved ESP", f->esp, V86_STACK_TOP);
    check_eq("  ... saved v86 ES", f->v86_es & 0xFFFF, 0x3010);
    check_eq("  ... saved v86 DS", f->v86_ds & 0xFFFF, V86_DATA_SEG);
    check_eq("  ... saved v86 FS", f->v86_fs & 0xFFFF, 0x1234);
    check_eq("  ... saved v86 GS", f->v86_gs & 0xFFFF, 0x5678);
    check_eq("  ... DS/ES/FS/GS zeroed on entry to ring 0",
             (f->ds | f->es | f->fs | f->gs) & 0xFFFF, 0);
    check_addr("  ... frame (with v86 segments) ends at TSS.esp0",
               last_trap_frame_addr + sizeof(struct frame), A(intr_stack_top));

    check_dec("1234 + 4321", result(R_ADD), 5555);
    check_eq("300 * -7 (AX)", result(R_IMUL_LO), (u16)-2100);
    check_eq("300 * -7 (DX)", result(R_IMUL_HI), 0xFFFF);
    check_dec("100 / 7", result(R_DIV_Q), 14);
    check_dec("100 % 7", result(R_DIV_R), 2);
    check_eq("32-bit add with operand-size prefix", rd32(LIN(V86_DATA_SEG, R_ADD32)), 0x23456789);
    check_eq("push 0x1111, push 0x2222, pop ax", result(R_POP_AX), 0x2222);
    check_eq("  ... pop bx", result(R_POP_BX), 0x1111);
    check_eq("  ... SP change", result(R_SP_DELTA), 0);
    check_eq("word at 3000:0100 read via 3010:0000", result(R_SEGALIAS), 0xABCD);
    check_eq("[bx+0x50] with bx=0xFFF0 wraps to offset 0x40", result(R_WRAP), 0x5A5A);
    check_eq("pushf with IOPL=3: IOPL bits", result(R_FLAGS16) & 0x3000, 0x3000);
    check_eq("pushfl: VM and RF read as 0", rd32(LIN(V86_DATA_SEG, R_FLAGS32)) & (FL_VM | FL_RF), 0);
    check_eq("int $0x30 reached the ring-0 handler: AX", result(R_INT30), 0xBEEF);
    check_eq("  ... handler frame EFLAGS.VM", int30_frame.eflags & FL_VM, FL_VM);
    check_eq("  ... handler frame v86 DS", int30_frame.v86_ds & 0xFFFF, V86_DATA_SEG);
    check_eq("  ... handler frame AX on entry", int30_frame.eax & 0xFFFF, 0x1111);
    check_eq("int3 reached IDT vector 3", int3_count, 1);
    check_addr("  ... saved EIP after int3", int3_frame.eip, OFF(v86_int3_after));
    check_eq("  ... saved CS", int3_frame.cs & 0xFFFF, V86_CODE_SEG);
    check_eq("reached the end of run 1", result(R_AFTER), 1);

    printf("-- run 2: IOPL=0, sensitive instructions emulated by the monitor\n");
    memset(phys(LIN(V86_DATA_SEG, 0)), 0, 0x100);
    emulate = 1;
    vif = 1;
    int3_count = 0;
    run_v86(v86_sensitive, 0);
    check_eq("ended with #GP at hlt", f->vector, 13);
    check_eq("traps emulated by the monitor", traps_seen, 8);
    check_eq("pushf after cli; sti: virtual IF", result(R_VFLAGS1) & FL_IF, FL_IF);
    check_eq("pushf after popf 0x0002: virtual IF", result(R_VFLAGS2) & FL_IF, 0);
    check_eq("int $0x31 reflected to the v86 handler: BX", result(R_INT31), 0x4242);
    check_eq("int3 (not IOPL-sensitive) reached IDT vector 3", int3_count, 1);
    check_addr("  ... saved EIP after int3", int3_frame.eip, OFF(v86_sensitive_int3_after));
    check_eq("  ... saved EFLAGS.VM", int3_frame.eflags & FL_VM, FL_VM);
    check_eq("reached the end of run 2", result(R_AFTER), 1);
    return 0;
}
