/*
 * Task bodies and main-task snippets for task_switch.c.
 *
 * Each task body records what it sees (TR, LDTR, EFLAGS, CR3, the dword at
 * 0x40000000, the busy bits in the GDT, its TSS's link field) into its rec_X
 * array, loads recognisable values into the general registers, and switches
 * back.  After switching back a task resumes at the instruction following the
 * switch, so each body ends with a jump to its start: the next switch to it
 * runs the body again.
 */
#include "task_switch.h"

#define GLOBAL(name) .globl name; name:
#define BUSY(sel) (gdt + (sel) + 5)

    .text

/* Record TR, LDTR, EFLAGS, CR3, [0x40000000], busy bytes, link, count. */
    .macro RECORD rec, sel, tss
    str %eax
    movl %eax, \rec + 4*REC_TR
    sldt %eax
    movl %eax, \rec + 4*REC_LDTR
    pushfl
    popl \rec + 4*REC_EFLAGS
    movl %cr3, %eax
    movl %eax, \rec + 4*REC_CR3
    movl 0x40000000, %eax
    movl %eax, \rec + 4*REC_PAGE
    movzbl BUSY(SEL_TSS), %eax
    movl %eax, \rec + 4*REC_BUSY_MAIN
    movzbl BUSY(\sel), %eax
    movl %eax, \rec + 4*REC_BUSY_SELF
    movzwl \tss, %eax
    movl %eax, \rec + 4*REC_LINK
    incl \rec + 4*REC_COUNT
    .endm

    .macro MAGIC base
    movl $(\base + 1), %eax
    movl $(\base + 2), %ebx
    movl $(\base + 3), %ecx
    movl $(\base + 4), %edx
    movl $(\base + 5), %esi
    movl $(\base + 6), %edi
    movl $(\base + 7), %ebp
    .endm

/* Task A: entered by JMP, leaves by JMP. */
GLOBAL(task_a_entry)
    RECORD rec_a, SEL_TSS_A, tss_a
    /* FS from this task's LDT: its base is ldt_a_buf. */
    movw $SEL_LDT_DATA, %ax
    movw %ax, %fs
    movl $0xA1A1A1A1, %fs:0
    MAGIC 0xAAAA0000
    ljmp $SEL_TSS, $0
GLOBAL(task_a_resume)
    jmp task_a_entry

/* Task B: entered by CALL (nested), leaves by IRET. */
GLOBAL(task_b_entry)
    RECORD rec_b, SEL_TSS_B, tss_b
    movw $SEL_LDT_DATA, %ax
    movw %ax, %fs
    movl $0xB1B1B1B1, %fs:0
    MAGIC 0xBBBB0000
    iret
GLOBAL(task_b_resume)
    jmp task_b_entry

/* Task C: entered through a task gate by INT $0x40, leaves by IRET. */
GLOBAL(task_c_entry)
    RECORD rec_c, SEL_TSS_C, tss_c
    iret
    jmp task_c_entry

/* Task D: the #GP handler task.  The CPU pushed the error code on this
 * task's stack.  The faulting (main) task's saved EIP points at the faulting
 * instruction, so move it to the recovery point before returning. */
GLOBAL(task_d_entry)
    popl %eax
    movl %eax, rec_d + 4*REC_ERR
    RECORD rec_d, SEL_TSS_D, tss_d
    movl kernel_tss + 32, %eax              /* offset of EIP in the TSS */
    movl %eax, rec_d + 4*REC_OLD_EIP
    movl $gp_d_recover, kernel_tss + 32
    iret
    jmp task_d_entry

/* ------------------------------------------------------------------------ */
/* Main-task snippets (called from C). */

/* JMP to task A with known registers; afterwards store the registers the
 * CPU restored from the kernel TSS into main_regs[] (eax..ebp, esp). */
    .macro STORE_MAIN_REGS
    movl %eax, main_regs + 0
    movl %ebx, main_regs + 4
    movl %ecx, main_regs + 8
    movl %edx, main_regs + 12
    movl %esi, main_regs + 16
    movl %edi, main_regs + 20
    movl %ebp, main_regs + 24
    movl %esp, main_regs + 28
    .endm

GLOBAL(do_jmp_a)
    pushal
    MAGIC 0x11110000
    movl %esp, main_esp_before
    ljmp $SEL_TSS_A, $0
GLOBAL(do_jmp_a_resume)
    STORE_MAIN_REGS
    popal
    ret

GLOBAL(do_call_b)
    pushal
    MAGIC 0x22220000
    movl %esp, main_esp_before
    lcall $SEL_TSS_B, $0
GLOBAL(do_call_b_resume)
    STORE_MAIN_REGS
    popal
    ret

GLOBAL(do_int_c)
    int $TASK_GATE_VEC
GLOBAL(do_int_c_resume)
    ret

/* Raise #GP(SEL_BEYOND); IDT vector 13 is a task gate to task D. */
GLOBAL(do_gp_d)
    movw $SEL_BEYOND, %ax
GLOBAL(gp_d_insn)
    movw %ax, %es
    ud2                     /* never reached: task D moves us to gp_d_recover */
GLOBAL(gp_d_recover)
    ret

/* Busy-bit checks: switching to the running task is a #GP(selector). */
GLOBAL(jmp_busy)
GLOBAL(jmp_busy_insn)
    ljmp $SEL_TSS, $0
    ret

GLOBAL(call_busy)
GLOBAL(call_busy_insn)
    lcall $SEL_TSS, $0
    ret

/* IRET with NT=1 whose link names a TSS that is not busy: #TS(link). */
GLOBAL(iret_nt)
    pushfl
    orl $0x4000, (%esp)
    popfl
GLOBAL(iret_nt_insn)
    iret
    ret
