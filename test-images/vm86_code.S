/*
 * The virtual-8086 side of vm86.elf, plus the ring-0 helper that enters it.
 *
 * The .code16 blob between v86_blob_start and v86_blob_end is position
 * independent within its segment: vm86.c copies it to linear 0x20000 and runs
 * it with CS = 0x2000, so code offsets are `label - v86_blob_start` and jumps
 * are relative.  Data lives in DS = 0x3000 at the fixed offsets of vm86.h.
 */
#include "vm86.h"

#define OFF(label) ((label) - v86_blob_start)

    .section .rodata.v86, "a"
    .code16
    .globl v86_blob_start, v86_blob_end, v86_basic, v86_sensitive, v86_int31_handler
    .globl v86_basic_hlt, v86_int3_after, v86_sensitive_int3_after
v86_blob_start:

/* ---------------------------------------------------------------------------
 * Run 1, IOPL=3: ordinary 16-bit code, plus INT n through the IDT and
 * PUSHF/OUT without any trap.
 */
v86_basic:
    movw $V86_DATA_SEG, %ax
    movw %ax, %ds

    /* Arithmetic. */
    movw $1234, %ax
    addw $4321, %ax
    movw %ax, R_ADD
    movw $300, %ax
    movw $-7, %bx
    imulw %bx                   /* DX:AX = -2100 */
    movw %ax, R_IMUL_LO
    movw %dx, R_IMUL_HI
    movw $100, %ax
    xorw %dx, %dx
    movw $7, %cx
    divw %cx
    movw %ax, R_DIV_Q
    movw %dx, R_DIV_R
    movl $0x12345678, %eax      /* 66-prefixed in 16-bit code */
    addl $0x11111111, %eax
    movl %eax, R_ADD32

    /* Push/pop swap the two values; SP comes back where it was. */
    movw %sp, %cx
    movw $0x1111, %ax
    movw $0x2222, %bx
    pushw %ax
    pushw %bx
    popw %ax
    popw %bx
    movw %ax, R_POP_AX
    movw %bx, R_POP_BX
    movw %sp, %dx
    subw %cx, %dx
    movw %dx, R_SP_DELTA

    /* seg*16 + off: 3000:0100 and 3010:0000 are the same byte. */
    movw $0xABCD, 0x0100
    movw $0x3010, %ax
    movw %ax, %es
    movw %es:0x0000, %bx
    movw %bx, R_SEGALIAS
    /* 16-bit effective addresses wrap: 0xFFF0 + 0x50 = 0x0040. */
    movw $0x5A5A, R_WRAPDATA
    movw $0xFFF0, %bx
    movw 0x50(%bx), %ax
    movw %ax, R_WRAP

    /* With IOPL=3, PUSHF runs natively (and shows IOPL=3). */
    pushfw
    popw %ax
    movw %ax, R_FLAGS16
    pushfl
    popl %eax
    movl %eax, R_FLAGS32

    /* With IOPL=3, INT n goes through the protected-mode IDT to ring 0. */
    movw $0x1111, %ax
    int $V86_IDT_VEC
    movw %ax, R_INT30
    /* INT3 is never IOPL-sensitive: IDT vector 3 (a DPL3 gate). */
    int3
v86_int3_after:

    /* The TSS I/O bitmap allows port 0xE9, so this needs no monitor. */
    movw $OFF(msg_basic), %si
1:  lodsb %cs:(%si), %al
    testb %al, %al
    jz 2f
    outb %al, $0xE9
    jmp 1b
2:
    /* Segment registers for the monitor to find on its stack. */
    movw $0x1234, %ax
    movw %ax, %fs
    movw $0x5678, %ax
    movw %ax, %gs
    movw $1, R_AFTER
v86_basic_hlt:
    hlt                         /* privileged: #GP to the monitor, ends the run */

msg_basic:
    .asciz "     v86 (IOPL=3) writes to port 0xE9 directly\n"

/* ---------------------------------------------------------------------------
 * Run 2, IOPL=0: every IOPL-sensitive instruction traps to the monitor,
 * which emulates it.  OUT to a port the bitmap denies traps too.
 */
v86_sensitive:
    movw $V86_DATA_SEG, %ax
    movw %ax, %ds
    cli                         /* #GP: monitor clears its virtual IF */
    sti                         /* #GP: virtual IF = 1 */
    pushfw                      /* #GP: monitor pushes FLAGS with the virtual IF */
    popw %ax
    movw %ax, R_VFLAGS1
    pushw $0x0002
    popfw                       /* #GP: virtual IF = 0 */
    pushfw                      /* #GP */
    popw %ax
    movw %ax, R_VFLAGS2
    xorw %bx, %bx
    int $V86_IVT_VEC            /* #GP: monitor reflects it through the IVT */
    movw %bx, R_INT31
    movb $0x55, %al
    outb %al, $0x80             /* #GP: port 0x80 denied; monitor drops it */
    movw $OFF(msg_sensitive), %si
1:  lodsb %cs:(%si), %al
    testb %al, %al
    jz 2f
    outb %al, $0xE9             /* allowed: no trap even with IOPL=0 */
    jmp 1b
2:
    int3                        /* not IOPL-sensitive: IDT vector 3 */
v86_sensitive_int3_after:
    movw $1, R_AFTER
    hlt

/* The real-mode handler of int $0x31 (installed in the IVT at 0:00C4). */
v86_int31_handler:
    movw $0x4242, %bx
    iret                        /* #GP: monitor emulates IRET */

msg_sensitive:
    .asciz "     v86 (IOPL=0) writes to port 0xE9 directly\n"

v86_blob_end:

/* ---------------------------------------------------------------------------
 * void enter_v86(const u32 frame[9]): IRET into virtual-8086 mode.  frame is
 * EIP, CS, EFLAGS (with VM=1), ESP, SS, ES, DS, FS, GS: exactly the stack
 * image IRET pops when it finds VM=1 in the EFLAGS image at CPL0.
 */
    .text
    .code32
    .globl enter_v86
enter_v86:
    movl 4(%esp), %esi
    subl $36, %esp
    movl %esp, %edi
    movl $9, %ecx
    cld
    rep movsl
    iret
