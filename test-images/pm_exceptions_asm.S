/*
 * Code snippets for pm_exceptions.c.  Each snippet is a function that either
 * returns normally or raises exactly one exception; the label *_insn marks
 * the instruction expected to fault (or *_after the instruction after a trap),
 * so the C side can check the saved EIP.  Snippets whose name starts with
 * "u_" run at CPL3 and always end with `int $0x80` (or a fault).
 */
#include "pm_exceptions.h"

    .text

#define GLOBAL(name) .globl name; name:

/* #DE: divide by zero. */
GLOBAL(de_div0)
    xorl %ecx, %ecx
    movl $1, %eax
    xorl %edx, %edx
GLOBAL(de_div0_insn)
    divl %ecx
    ret

/* #DE: the quotient 0x10_0000_0000 / 2 does not fit in 32 bits. */
GLOBAL(de_ovf32)
    movl $0x10, %edx
    xorl %eax, %eax
    movl $2, %ecx
GLOBAL(de_ovf32_insn)
    divl %ecx
    ret

/* #DE: 8-bit divide, AX=0x1000 / 2 = 0x800 does not fit in AL. */
GLOBAL(de_ovf8)
    movw $0x1000, %ax
    movb $2, %cl
GLOBAL(de_ovf8_insn)
    divb %cl
    ret

/* #DE: signed INT_MIN / -1 overflows. */
GLOBAL(de_idiv)
    movl $0x80000000, %eax
    cltd
    movl $-1, %ecx
GLOBAL(de_idiv_insn)
    idivl %ecx
    ret

/* #BP is a trap: the saved EIP is the instruction after int3. */
GLOBAL(bp_int3)
    int3
GLOBAL(bp_int3_after)
    ret

/* The two-byte form `int $3` (CD 03): also a trap, EIP after both bytes. */
GLOBAL(bp_int_3)
    .byte 0xCD, 0x03
GLOBAL(bp_int_3_after)
    ret

/* #OF: INTO traps when OF=1; EIP after the INTO. */
GLOBAL(of_into)
    movl $0x7FFFFFFF, %eax
    addl $1, %eax           /* signed overflow: OF=1 */
    into
GLOBAL(of_into_after)
    ret

/* ... and does nothing when OF=0. */
GLOBAL(of_into_clear)
    xorl %eax, %eax         /* OF=0 */
    into
    movl $0x1234, %eax
    ret

/* #BR: BOUND with the index in EAX against [10, 20] (inclusive). */
    .data
    .balign 8
bounds:
    .long 10, 20
    .text
GLOBAL(br_check)            /* EAX = index, set by the caller via br_index */
    movl br_index, %eax
GLOBAL(br_check_insn)
    boundl %eax, bounds
    ret

/* #UD: UD2. */
GLOBAL(ud_ud2)
GLOBAL(ud_ud2_insn)
    ud2
    ret


/* Segment register loads.  The selector to load comes from seg_sel. */
GLOBAL(load_ds)
    movw seg_sel, %ax
GLOBAL(load_ds_insn)
    movw %ax, %ds
    movw $SEL_KDATA, %ax    /* put the flat one back */
    movw %ax, %ds
    ret

GLOBAL(load_ss)
    movw seg_sel, %ax
GLOBAL(load_ss_insn)
    movw %ax, %ss
    movw $SEL_KDATA, %ax
    movw %ax, %ss
    ret

/* Far jumps to the selector:offset in far_target (6 bytes: off, sel). */
GLOBAL(far_jmp)
GLOBAL(far_jmp_insn)
    ljmp *far_target
    ret


/* A far jump through the 2 MiB-limit code segment that lands inside its
 * limit: it comes back here with CS = SEL_CODE2M, then returns to CS=KCODE. */
GLOBAL(far_jmp_ok)
    ljmp $SEL_CODE2M, $1f
1:  movw %cs, %ax
    movw %ax, far_jmp_ok_cs
    ljmp $SEL_KCODE, $2f
2:  ret

/* INT n through whatever gate the C side prepared. */
GLOBAL(int_0x41)
GLOBAL(int_0x41_insn)
    int $0x41
GLOBAL(int_0x41_after)
    ret

/* The same with IF=1 at the time of the INT (the caller's EFLAGS, with IF=0,
 * come back on the longjmp).  The PICs are masked, so IF=1 is harmless. */
GLOBAL(int_0x41_sti)
    sti
    int $0x41
GLOBAL(int_0x41_sti_after)
    cli
    ret

/* ------------------------------------------------------------------------ */
/* Ring 3 snippets. */

/* A plain system call: known registers, then int $0x80.  The kernel checks
 * the frame the CPU pushed on the TSS.esp0 stack. */
GLOBAL(u_syscall)
    subl $16, %esp          /* so the pushed ESP differs from the stack top */
    movl $0x11111111, %eax
    movl $0x22222222, %ebx
    int $0x80
GLOBAL(u_syscall_after)
    jmp .

/* INT n through a DPL0 gate from CPL3: #GP(vector*8 + 2). */
GLOBAL(u_int_dpl0)
GLOBAL(u_int_dpl0_insn)
    int $0x41
    int $0x80

/* INT3 from CPL3 (gate DPL decides between #BP and #GP). */
GLOBAL(u_int3)
    int3
GLOBAL(u_int3_after)
    int $0x80

/* An exception from CPL3 ignores the gate DPL: #DE arrives at ring 0. */
GLOBAL(u_div0)
    xorl %ecx, %ecx
    movl $1, %eax
    xorl %edx, %edx
GLOBAL(u_div0_insn)
    divl %ecx
    int $0x80

/* Loading a DPL0 data segment at CPL3: #GP(selector). */
GLOBAL(u_load_kdata)
    movw $SEL_KDATA, %ax
GLOBAL(u_load_kdata_insn)
    movw %ax, %ds
    int $0x80

/* Privileged instructions at CPL3: #GP(0). */
GLOBAL(u_hlt)
GLOBAL(u_hlt_insn)
    hlt
    int $0x80

GLOBAL(u_mov_cr0)
GLOBAL(u_mov_cr0_insn)
    movl %cr0, %eax
    int $0x80

/* CLI: #GP(0) when CPL > IOPL, allowed when IOPL=3 (IF is 0 anyway). */
GLOBAL(u_cli)
GLOBAL(u_cli_insn)
    cli
    movl $0xC1C1C1C1, %eax
    int $0x80
GLOBAL(u_cli_after)

/* POPF at CPL3 cannot change IOPL (silently ignored, no fault). */
GLOBAL(u_popf_iopl)
    pushfl
    orl $0x3000, (%esp)
    popfl
    pushfl
    popl %eax
    int $0x80

/* Call gate from CPL3 with two dword parameters.  The gate target (ring 0,
 * below) records its stack and returns with `lret $8`; back here ESP must be
 * where it was before the parameters were pushed. */
GLOBAL(u_callgate)
    movl %esp, %ebp
    pushl $0x22222222       /* second parameter */
    pushl $0x11111111       /* first parameter (lowest address) */
    lcall $SEL_CALLGATE, $0
GLOBAL(u_callgate_ret)
    movl %esp, %ecx         /* must equal %ebp: lret $8 released the params */
    movw %cs, %dx
    int $0x80

/* Ring 0 end of the call gate: copy the stack the CPU built into cg_frame. */
GLOBAL(callgate_target)
    movl 0(%esp), %ecx      /* return EIP */
    movl %ecx, cg_frame+0
    movl 4(%esp), %ecx      /* return CS */
    movl %ecx, cg_frame+4
    movl 8(%esp), %ecx      /* first parameter */
    movl %ecx, cg_frame+8
    movl 12(%esp), %ecx     /* second parameter */
    movl %ecx, cg_frame+12
    movl 16(%esp), %ecx     /* caller's ESP */
    movl %ecx, cg_frame+16
    movl 20(%esp), %ecx     /* caller's SS */
    movl %ecx, cg_frame+20
    movl %esp, cg_frame+24  /* our ESP: TSS.esp0 - 24 */
    movw %cs, %cx
    movzwl %cx, %ecx
    movl %ecx, cg_frame+28
    movw %ss, %cx
    movzwl %cx, %ecx
    movl %ecx, cg_frame+32
    movl $0xC0FFEE, %eax
    lret $8

/* I/O at CPL3 with IOPL=0: the TSS I/O bitmap allows port 0xE9 only. */
GLOBAL(u_io_allowed)
    movb $'U', %al
    outb %al, $0xE9
    movb $'3', %al
    outb %al, $0xE9
    movb $'\n', %al
    outb %al, $0xE9
    inb $0xE9, %al          /* reading an allowed port: no fault */
    movl $0xA110, %eax
    int $0x80
GLOBAL(u_io_allowed_after)

GLOBAL(u_io_denied)
GLOBAL(u_io_denied_insn)
    inb $0x80, %al          /* bit for port 0x80 is set: #GP(0) */
    int $0x80

/* A word access needs the bits of both ports 0xE9 and 0xEA clear. */
GLOBAL(u_io_word)
GLOBAL(u_io_word_insn)
    inw $0xE9, %ax
    int $0x80

/* The same denied port with IOPL=3: the bitmap is not consulted. */
GLOBAL(u_io_iopl3)
    inb $0x80, %al
    movl $0x10F3, %eax
    int $0x80
