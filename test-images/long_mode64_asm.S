/*
 * Assembly for the 64-bit part of long_mode.elf: the entry point, 64-bit
 * interrupt stubs, setjmp/longjmp, ring-3 entry, the SYSCALL entry point,
 * the compatibility-mode round trips and the snippets whose faulting
 * instruction the tests name by label.
 */
#include "long_mode.h"

#define GLOBAL(name) .globl name; name:
#define SEL_KCODE 0x08      /* the runtime's 32-bit ring-0 code segment */
#define SEL_KDATA 0x10

    .section .text.entry, "ax"
GLOBAL(lm64_entry)
    jmp lm64_main

    .text
/* ---------------------------------------------------------------------------
 * 256 stubs.  Vectors with a CPU error code (8, 10-14, 17, 21, 29, 30) go
 * straight on; the others push a 0 so struct frame64 fits every vector.
 */
    .macro STUB vec
    .balign 16
isr64_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushq $0
    .endif
    pushq $\vec
    jmp isr64_common
    .endm

    .altmacro
    .set vec, 0
    .rept 256
    STUB %vec
    .set vec, vec + 1
    .endr

    .macro STUB_ADDR vec
    .quad isr64_\vec
    .endm
    .section .rodata
    .balign 8
GLOBAL(isr64_table)
    .set vec, 0
    .rept 256
    STUB_ADDR %vec
    .set vec, vec + 1
    .endr
    .noaltmacro

    .text
isr64_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    /* The CPU aligned the frame to 16, so after 22 qwords RSP is aligned
     * again as the C call wants. */
    movq %rsp, %rdi
    cld
    call trap64
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

/* ---------------------------------------------------------------------------
 * setjmp64/longjmp64.  Layout: rbx, rbp, r12-r15, rsp, rip, rflags.
 */
GLOBAL(setjmp64)
    movq %rbx, 0(%rdi)
    movq %rbp, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rax
    movq %rax, 48(%rdi)
    movq (%rsp), %rax
    movq %rax, 56(%rdi)
    pushfq
    popq 64(%rdi)
    xorl %eax, %eax
    ret

GLOBAL(longjmp64)
    /* A trap from ring 3 leaves SS null and DS/ES may hold user selectors. */
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %esi, %eax
    movq 0(%rdi), %rbx
    movq 8(%rdi), %rbp
    movq 16(%rdi), %r12
    movq 24(%rdi), %r13
    movq 32(%rdi), %r14
    movq 40(%rdi), %r15
    movq 48(%rdi), %rsp
    pushq 64(%rdi)
    popfq
    jmp *56(%rdi)

/* void enter_user64(u64 rip, u64 rsp, u64 rflags): IRETQ to ring 3. */
GLOBAL(enter_user64)
    movw $SEL_UDATA64, %ax
    movw %ax, %ds
    movw %ax, %es
    pushq $SEL_UDATA64
    pushq %rsi
    pushq %rdx
    pushq $SEL_UCODE64
    pushq %rdi
    iretq

/* ---------------------------------------------------------------------------
 * Snippets.  probe_addr is the address to touch; *_insn labels mark the
 * instruction that may fault.  u_* run at CPL3 and end with int $0x80.
 */
GLOBAL(k_read)
    movq probe_addr(%rip), %rcx
GLOBAL(k_read_insn)
    movq (%rcx), %rax
    movq %rax, probe_val(%rip)
    ret

GLOBAL(k_write)
    movq probe_addr(%rip), %rcx
    movq probe_val(%rip), %rax
GLOBAL(k_write_insn)
    movq %rax, (%rcx)
    ret

/* A fetch fault has RIP = probe_addr. */
GLOBAL(k_call)
    movq probe_addr(%rip), %rcx
    call *%rcx
    movq %rax, probe_val(%rip)
    ret

GLOBAL(k_div_overflow)
    movl $1, %edx
    xorl %eax, %eax
    movl $1, %ecx
GLOBAL(k_div_insn)
    divq %rcx
    ret

GLOBAL(k_ud2)
    ud2
    ret

/* PUSH ES (0x06) does not exist in 64-bit mode. */
GLOBAL(k_push_es)
    .byte 0x06
    ret

GLOBAL(k_int3)
    int3
GLOBAL(k_int3_after)
    ret

/* CMPXCHG16B needs a 16-byte aligned operand (probe_addr). */
GLOBAL(k_cx16)
    pushq %rbx
    movq probe_addr(%rip), %rdi
    xorl %eax, %eax
    xorl %edx, %edx
    xorl %ebx, %ebx
    xorl %ecx, %ecx
GLOBAL(k_cx16_insn)
    lock cmpxchg16b (%rdi)
    popq %rbx
    ret

/* Opcodes that 64-bit mode dropped: AAA (37h), PUSHA (60h), INTO (CEh). */
GLOBAL(k_aaa)
    .byte 0x37
    ret
GLOBAL(k_pusha)
    .byte 0x60
    ret
GLOBAL(k_into)
    .byte 0xCE
    ret

/* POPFQ sets TF: the single-step trap comes after the next instruction. */
GLOBAL(k_tf)
    pushfq
    orq $0x100, (%rsp)
    popfq
    nop
GLOBAL(k_tf_after)
    pushfq
    andq $~0x100, (%rsp)
    popfq
    ret

/* SWAPGS exists only in 64-bit mode: #UD in compatibility mode. */
GLOBAL(k_compat_swapgs)
    pushq $SEL_KCODE
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
    .code32
1:
GLOBAL(k_compat_swapgs_insn)
    .byte 0x0f, 0x01, 0xf8
    ljmp $SEL_KCODE64, $2f
    .code64
2:  ret

/* int $0x43 with IF=1; returns RFLAGS as the handler saw them (in RAX). */
GLOBAL(int43_with_if)
    sti
    int $0x43
    cli
    ret

GLOBAL(k_push_cs)
    .byte 0x0e
    ret
GLOBAL(k_pop_ss)
    .byte 0x17
    ret

/* sti; hlt until an interrupt has come (the handler counts them). */
GLOBAL(wait_irq)
    sti
    hlt
GLOBAL(wait_irq_after)
    cli
    ret

GLOBAL(u_spin)
    jmp u_spin

GLOBAL(u_read)
    movq probe_addr(%rip), %rcx
GLOBAL(u_read_insn)
    movq (%rcx), %rax
    int $0x80

GLOBAL(u_write)
    movq probe_addr(%rip), %rcx
GLOBAL(u_write_insn)
    movq %rcx, (%rcx)
    int $0x80

/* Vector 0x42 has a DPL 0 gate. */
GLOBAL(u_int42)
    int $0x42
    int $0x80

GLOBAL(u_rdmsr)
    movl $0xC0000080, %ecx
GLOBAL(u_rdmsr_insn)
    rdmsr
    int $0x80

/* Report CS, SS and a marker in RAX/RBX/RCX to the int $0x80 catcher. */
GLOBAL(u_hello)
    movq %cs, %rax
    movq %ss, %rbx
    movabsq $0x1122334455667788, %rcx
    int $0x80

/* The selectors ring 3 sees after IRETQ (RAX..RDX = DS, ES, FS, GS). */
GLOBAL(u_segs)
    movq %ds, %rax
    movq %es, %rbx
    movq %fs, %rcx
    movq %gs, %rdx
    int $0x80

/* A null SS is allowed in 64-bit mode below CPL 3 only. */
GLOBAL(k_null_ss)
    movw %ss, %cx
    xorl %eax, %eax
    movw %ax, %ss
    movw %ss, %dx
    movw %cx, %ss
    movzwl %dx, %eax
    movq %rax, probe_val(%rip)
    ret
GLOBAL(u_null_ss)
    xorl %eax, %eax
GLOBAL(u_null_ss_insn)
    movw %ax, %ss
    int $0x80

/* Far CALL through the 64-bit call gate SEL_CGATE (the pointer's offset is
 * ignored); the target records its stack and returns with LRETQ. */
GLOBAL(u_callgate)
    lcall *cgate_ptr(%rip)
GLOBAL(u_callgate_ret)
    movq %cs, %rax
    movq %ss, %rbx
    movq %rsp, %rcx
    int $0x80

GLOBAL(k_callgate)
    lcall *cgate_ptr0(%rip)
GLOBAL(k_callgate_ret)
    ret

GLOBAL(cgate_target)
    movq %rsp, cg_rsp(%rip)
    movq 0(%rsp), %rax
    movq %rax, cg_rip(%rip)
    movq 8(%rsp), %rax
    movq %rax, cg_cs(%rip)
    movq 16(%rsp), %rax
    movq %rax, cg_outer_rsp(%rip)
    movq 24(%rsp), %rax
    movq %rax, cg_outer_ss(%rip)
    movq %ss, %rax
    movq %rax, cg_ss(%rip)
    lretq

    .section .rodata
cgate_ptr:
    .long 0x12345678
    .word SEL_CGATE | 3
cgate_ptr0:
    .long 0x12345678
    .word SEL_CGATE
    .data
    .balign 8
    .globl cg_rsp, cg_rip, cg_cs, cg_outer_rsp, cg_outer_ss, cg_ss
cg_rsp: .quad 0
cg_rip: .quad 0
cg_cs: .quad 0
cg_outer_rsp: .quad 0
cg_outer_ss: .quad 0
cg_ss: .quad 0
    .text

/* ---------------------------------------------------------------------------
 * SYSCALL/SYSRET.  The user side sets DF (SFMASK clears it in the kernel,
 * SYSRET restores it from R11), the kernel side records what it sees in the
 * per-CPU block that SWAPGS makes GS point to; no stack is touched there.
 */
GLOBAL(u_syscall)
    std
    movabsq $0xAAAABBBBCCCCDDDD, %r11
    syscall
GLOBAL(u_syscall_ret)
    pushfq
    popq %rdx
    cld
    movq %cs, %rax
    movq %ss, %rbx
    int $0x80

GLOBAL(syscall_entry)
    swapgs
    movq %rcx, %gs:0
    movq %r11, %gs:8
    movq %cs, %rax
    movq %rax, %gs:16
    movq %ss, %rax
    movq %rax, %gs:24
    pushfq
    popq %rax
    movq %rax, %gs:32
    swapgs
    sysretq

/* SYSRET without REX.W returns to 32-bit code (CS = STAR[63:48] | 3),
 * EIP = ECX; there 40h is INC EAX again. */
GLOBAL(u_syscall32)
    syscall
GLOBAL(syscall_entry32)
    leaq 1f(%rip), %rcx
    movl $0x2, %r11d
    xorl %eax, %eax
    sysretl
    .code32
1:  .byte 0x40              /* inc %eax */
    movl %cs, %ebx
    int $0x80
    .code64

/* ---------------------------------------------------------------------------
 * Compatibility mode: in with a far return, a 32-bit stint (0x40 is INC EAX
 * there, not a REX prefix; PUSH moves ESP by 4; an INT3 is delivered through
 * the 64-bit IDT and IRETQ returns to 32-bit code), out with a direct far
 * jump; then in again with an indirect far jump and out with a far return.
 */
GLOBAL(compat_test)
    pushq %rbx
    pushq %rbp
    movq %rsp, compat_saved_rsp(%rip)
    pushq $SEL_KCODE
    leaq compat_a(%rip), %rax
    pushq %rax
    lretq

    .code32
compat_a:
    movl $0x7FFFFFFF, %eax
    .byte 0x40              /* inc %eax */
    movl %eax, compat_eax
    movl %esp, %ecx
    pushl $0x12345678
    subl %esp, %ecx
    popl %ebx
    movl %ecx, compat_push_size
    movl %ebx, compat_popped
    int3
    movl %cs, %eax
    movl %eax, compat_cs_after_iret
    ljmp $SEL_KCODE64, $compat_back1

    .code64
compat_back1:
    movq compat_saved_rsp(%rip), %rsp
    movq %cs, %rax
    movq %rax, compat_cs_back(%rip)
    ljmpl *compat_ptr(%rip)

    .code32
compat_b:
    movl $0xFFFFFFFF, %eax
    .byte 0x48              /* dec %eax */
    movl %eax, compat_eax2
    pushl $SEL_KCODE64
    pushl $compat_back2
    lret

    .code64
compat_back2:
    movq compat_saved_rsp(%rip), %rsp
    popq %rbp
    popq %rbx
    ret

    .section .rodata
    .balign 8
compat_ptr:                 /* m16:32 */
    .long compat_b
    .word SEL_KCODE

    .data
    .balign 8
compat_saved_rsp: .quad 0
    .globl compat_eax, compat_eax2, compat_push_size, compat_popped
    .globl compat_cs_after_iret, compat_cs_back
compat_eax: .quad 0
compat_eax2: .quad 0
compat_push_size: .quad 0
compat_popped: .quad 0
compat_cs_after_iret: .quad 0
compat_cs_back: .quad 0

/* ---------------------------------------------------------------------------
 * Instruction checks.  Each takes u64 *out in RDI and stores its results
 * there; the expected values in long_mode64.c were worked out by hand and
 * with Python integers, not by running this code.
 */
    .text
#define SAVE  pushq %rbx; pushq %rbp; pushq %r12; pushq %r13; pushq %r14; pushq %r15
#define RESTORE popq %r15; popq %r14; popq %r13; popq %r12; popq %rbp; popq %rbx
#define FLAGS(slot) pushfq; popq %rax; movq %rax, 8*(slot)(%rdi)

/* REX.R/REX.B/REX.X registers in ALU ops, LEA and addressing. */
GLOBAL(ops_rex)
    SAVE
    movabsq $0x0123456789ABCDEF, %r8
    movabsq $0x0F1E2D3C4B5A6978, %r9
    leaq 0x10(%r8,%r9,4), %r10
    movq %r10, %r11
    xorq %r8, %r11
    movq %r11, %r12
    subq %r9, %r12
    movq %r12, %r13
    rolq $13, %r13
    movq %r13, %r14
    notq %r14
    andq %r8, %r14
    movq %r14, %r15
    orq %r10, %r15
    movq %r10, 0(%rdi)
    movq %r12, 8(%rdi)
    movq %r15, 16(%rdi)
    /* r15 as a base and r13 as an index into out[] itself */
    movq %rdi, %r15
    movl $2, %r13d
    movq (%r15,%r13,8), %rax
    movq %rax, 24(%rdi)
    RESTORE
    ret

/* SPL/BPL/SIL/DIL/R8B need a REX prefix; without one the same encodings are
 * AH/CH/DH/BH.  Sub-register writes: 32-bit ones zero-extend, 8/16-bit ones
 * keep the rest. */
GLOBAL(ops_bytes)
    SAVE
    movq %rdi, %r9
    movabsq $0x1122334455667788, %rsi
    movq %rsi, %rdi
    movq %rsi, %rbp
    movq %rsi, %r8
    movb $0xA1, %sil
    movb $0xA2, %dil
    movb $0xA3, %bpl
    movb $0xA4, %r8b
    addb %sil, %dil
    movq %rsi, 0(%r9)
    movq %rdi, 8(%r9)
    movq %rbp, 16(%r9)
    movq %r8, 24(%r9)
    movl $0xBB00, %edx
    xorl %eax, %eax
    movb %dh, %al
    movq %rax, 32(%r9)
    movq %rsp, %rcx
    movb $0x58, %spl
    movq %rsp, %rdx
    movq %rcx, %rsp
    andq $-256, %rcx
    subq %rcx, %rdx
    movq %rdx, 40(%r9)
    movq $-1, %rax
    movl $1, %eax
    movq %rax, 48(%r9)
    movq $-1, %rax
    movw $1, %ax
    movq %rax, 56(%r9)
    movq $-1, %rax
    movb $1, %al
    movq %rax, 64(%r9)
    movq $-1, %rax
    addl $0, %eax
    movq %rax, 72(%r9)
    RESTORE
    ret

GLOBAL(ops_muldiv)
    SAVE
    movq $-1, %rax
    movq $-1, %rcx
    mulq %rcx
    movq %rax, 0(%rdi)
    movq %rdx, 8(%rdi)
    FLAGS(2)
    movabsq $0x7FFFFFFFFFFFFFFF, %rax
    movq $-2, %rcx
    imulq %rcx
    movq %rax, 24(%rdi)
    movq %rdx, 32(%rdi)
    FLAGS(5)
    movq $-3, %rax
    movq $5, %rcx
    imulq %rcx
    movq %rax, 48(%rdi)
    movq %rdx, 56(%rdi)
    FLAGS(8)
    movabsq $0x123456789, %rcx
    imulq $-7, %rcx, %rax
    movq %rax, 72(%rdi)
    movl $1, %edx
    movl $6, %eax
    movl $7, %ecx
    divq %rcx
    movq %rax, 80(%rdi)
    movq %rdx, 88(%rdi)
    movq $-2, %rdx
    movq $-6, %rax
    movq $7, %rcx
    idivq %rcx
    movq %rax, 96(%rdi)
    movq %rdx, 104(%rdi)
    movl $100, %eax
    cqto
    movq $-7, %rcx
    idivq %rcx
    movq %rax, 112(%rdi)
    movq %rdx, 120(%rdi)
    movl $0x80000001, %ecx
    movslq %ecx, %rax
    movq %rax, 128(%rdi)
    movslq muldiv_dword(%rip), %rax
    movq %rax, 136(%rdi)
    movq $-5, %rax
    cqto
    movq %rdx, 144(%rdi)
    movl $0x80000000, %eax
    cltq
    movq %rax, 152(%rdi)
    RESTORE
    ret

GLOBAL(ops_shift)
    SAVE
    movabsq $0x8000000000000001, %rax
    shlq $1, %rax
    movq %rax, 0(%rdi)
    FLAGS(1)
    movabsq $0x8000000000000000, %rax
    sarq $63, %rax
    movq %rax, 16(%rdi)
    movabsq $0x8000000000000000, %rax
    shrq $63, %rax
    movq %rax, 24(%rdi)
    movb $33, %cl
    movl $1, %eax
    shlq %cl, %rax
    movq %rax, 32(%rdi)
    movb $67, %cl
    movl $1, %eax
    shlq %cl, %rax
    movq %rax, 40(%rdi)
    movabsq $0x0123456789ABCDEF, %rax
    rolq $8, %rax
    movq %rax, 48(%rdi)
    rorq $12, %rax
    movq %rax, 56(%rdi)
    stc
    movabsq $0x8000000000000000, %rax
    rclq $1, %rax
    movq %rax, 64(%rdi)
    FLAGS(9)
    movabsq $0x0123456789ABCDEF, %rax
    movabsq $0xFEDCBA9876543210, %rdx
    shldq $16, %rdx, %rax
    movq %rax, 80(%rdi)
    movabsq $0x0123456789ABCDEF, %rax
    shrdq $16, %rdx, %rax
    movq %rax, 88(%rdi)
    movabsq $0x0102030405060708, %rax
    bswapq %rax
    movq %rax, 96(%rdi)
    movabsq $0x1122334455667788, %r9
    bswapq %r9
    movq %r9, 104(%rdi)
    xorl %eax, %eax
    btsq $40, %rax
    movq %rax, 112(%rdi)
    /* SAHF with AH = SF ZF AF PF CF (0xD5); LAHF gives them back with the
     * always-one bit 1 (0xD7).  MOV does not touch the flags in between. */
    movl $0xD500, %eax
    sahf
    pushfq
    popq %rcx
    movzbl %cl, %ecx
    movq %rcx, 120(%rdi)
    movl $0, %eax
    lahf
    shrl $8, %eax
    movq %rax, 128(%rdi)
    RESTORE
    ret

GLOBAL(ops_stack_riprel)
    SAVE
    movq %rsp, %rcx
    pushq $-2
    movq %rsp, %rdx
    popq %rax
    subq %rdx, %rcx
    movq %rax, 0(%rdi)
    movq %rcx, 8(%rdi)
    movq %rsp, %rcx
    pushw $0x1234
    movq %rsp, %rdx
    popw %ax
    subq %rdx, %rcx
    movzwl %ax, %eax
    movq %rax, 16(%rdi)
    movq %rcx, 24(%rdi)
    movabsq $0x1122334455667788, %r10
    pushq %r10
    popq %r11
    movq %r11, 32(%rdi)
    pushq riprel_var(%rip)
    popq %rax
    movq %rax, 40(%rdi)
    leaq riprel_var(%rip), %rax
    movabsq $riprel_var, %rcx
    subq %rcx, %rax
    movq %rax, 48(%rdi)
    movq riprel_var+8(%rip), %rax
    movq %rax, 56(%rdi)
    /* RIP-relative is relative to the next instruction, which here has an
     * immediate after the displacement */
    movq $0, riprel_scratch(%rip)
    movl $0x5A5A5A5A, riprel_scratch(%rip)
    movq riprel_scratch(%rip), %rax
    movq %rax, 64(%rdi)
    RESTORE
    ret

/* CMPXCHG16B on cx16_buf: first with the right comparand, then the stale one. */
GLOBAL(ops_cx16)
    SAVE
    movq %rdi, %r8
    leaq cx16_buf(%rip), %rsi
    movq $0x1111, 0(%rsi)
    movq $0x2222, 8(%rsi)
    movl $0x1111, %eax
    movl $0x2222, %edx
    movl $0x3333, %ebx
    movl $0x4444, %ecx
    lock cmpxchg16b (%rsi)
    pushfq
    popq %r9
    andl $0x40, %r9d
    movq %r9, 0(%r8)
    movq 0(%rsi), %r9
    movq %r9, 8(%r8)
    movq 8(%rsi), %r9
    movq %r9, 16(%r8)
    movl $0x1111, %eax
    movl $0x2222, %edx
    movl $0x5555, %ebx
    movl $0x6666, %ecx
    lock cmpxchg16b (%rsi)
    pushfq
    popq %r9
    andl $0x40, %r9d
    movq %r9, 24(%r8)
    movq %rax, 32(%r8)
    movq %rdx, 40(%r8)
    movq 0(%rsi), %r9
    movq %r9, 48(%r8)
    RESTORE
    ret

/* Encodings and operand-size rules that are easy to get wrong. */
GLOBAL(ops_misc)
    SAVE
    /* CMOVcc with a 32-bit operand zero-extends even when the condition is false. */
    movq $-1, %rax
    movl $5, %ecx
    testl %ecx, %ecx
    cmovzl %ecx, %eax
    movq %rax, 0(%rdi)
    /* 90h is NOP (no zero-extension); 87 C0 is a real XCHG EAX, EAX. */
    movabsq $0x1111111122222222, %rax
    .byte 0x90
    movq %rax, 8(%rdi)
    .byte 0x87, 0xC0
    movq %rax, 16(%rdi)
    /* imm32 operands of 64-bit ALU ops are sign-extended */
    movq $-1, %rax
    andq $-0x80000000, %rax
    movq %rax, 24(%rdi)
    movq $-2, 32(%rdi)
    /* A1 with a 64-bit absolute address (moffs64) */
    movabsq riprel_var, %rax
    movq %rax, 40(%rdi)
    /* 67h: 32-bit address arithmetic wraps at 4 GiB */
    movl $0xFFFFFFF8, %eax
    leaq 0x10(%eax), %rcx
    movq %rcx, 48(%rdi)
    /* 32-bit LEA truncates and zero-extends */
    movabsq $0x100000000, %rax
    movl $5, %ebx
    leal 1(%rax,%rbx), %ecx
    movq %rcx, 56(%rdi)
    /* ADC/SBB carry chains */
    movq $-1, %rax
    movl $1, %edx
    addq $1, %rax
    adcq $2, %rdx
    movq %rdx, 64(%rdi)
    xorl %eax, %eax
    xorl %edx, %edx
    subq $1, %rax
    sbbq $0, %rdx
    movq %rdx, 72(%rdi)
    /* XADD */
    movabsq $0x200000000, %rax
    movq %rax, 80(%rdi)
    movabsq $0x100000000, %rax
    xaddq %rax, 80(%rdi)
    movq %rax, 88(%rdi)
    /* NEG, BSR, BSF, MOVSX, MOVZX with REX */
    movl $1, %eax
    negq %rax
    movq %rax, 96(%rdi)
    movabsq $0x8000000000000000, %rax
    bsrq %rax, %rcx
    movq %rcx, 104(%rdi)
    movabsq $0x10000000000, %rax
    bsfq %rax, %rcx
    movq %rcx, 112(%rdi)
    movl $0x8000, %eax
    movswq %ax, %rcx
    movq %rcx, 120(%rdi)
    movq $-1, %rsi
    movzbq %sil, %r12
    movq %r12, 128(%rdi)
    /* two-operand IMUL overflow */
    movabsq $0x100000000, %rax
    imulq %rax, %rax
    movq %rax, 136(%rdi)
    FLAGS(18)
    /* CALL pushes 8 bytes; RET imm16 releases the arguments */
    movq %rsp, %rcx
    call 1f
1:  movq %rsp, %rdx
    addq $8, %rsp
    subq %rdx, %rcx
    movq %rcx, 152(%rdi)
    movq %rsp, %rcx
    pushq $0
    pushq $0
    call ret16
    subq %rsp, %rcx
    movq %rcx, 160(%rdi)
    /* PUSH FS is a 64-bit push of the selector */
    movq %rsp, %rcx
    pushq %fs
    movq %rsp, %rdx
    popq %rax
    subq %rdx, %rcx
    movq %rcx, 168(%rdi)
    movzwl %ax, %eax
    movq %rax, 176(%rdi)
    /* LOOP and JRCXZ use all of RCX, JECXZ (67h) only ECX */
    xorl %eax, %eax
    movabsq $0x100000001, %rcx
    loop 2f
    orl $1, %eax
2:  movabsq $0x100000000, %rcx
    jrcxz 3f
    orl $2, %eax
3:  jecxz 4f
    orl $4, %eax
4:  movq %rax, 184(%rdi)
    /* REP STOSQ */
    movq %rdi, %rbx
    leaq 192(%rbx), %rdi
    movabsq $0x0102030405060708, %rax
    movl $3, %ecx
    rep stosq
    leaq 192(%rbx), %rdx
    subq %rdx, %rdi
    movq %rdi, 216(%rbx)
    movq %rcx, 224(%rbx)
    movq %rbx, %rdi
    /* 67h REP STOSB counts with ECX and stores through EDI; their 32-bit
     * updates clear the upper halves */
    leaq 232(%rdi), %rax
    movabsq $0x100000000, %rdx
    leaq (%rax,%rdx), %rdi
    leaq 2(%rdx), %rcx
    movl $0xAB, %eax
    addr32 rep stosb
    movq %rdi, %rdx
    movq %rbx, %rdi
    leaq 232(%rdi), %rax
    subq %rax, %rdx
    movq %rdx, 240(%rdi)
    movq %rcx, 248(%rdi)
    /* ENTER pushes 8-byte frame pointers */
    movq %rsp, %rcx
    enter $16, $0
    movq %rsp, %rdx
    leave
    subq %rdx, %rcx
    movq %rcx, 256(%rdi)
    movq %rsp, %rcx
    enter $16, $1
    movq %rsp, %rdx
    leave
    subq %rdx, %rcx
    movq %rcx, 264(%rdi)
    RESTORE
    ret

ret16:
    ret $16

/* IDIV of INT64_MIN by -1 overflows. */
GLOBAL(k_idiv_overflow)
    movabsq $0x8000000000000000, %rax
    cqto
    movq $-1, %rcx
GLOBAL(k_idiv_insn)
    idivq %rcx
    ret

GLOBAL(u_cli)
    cli
    int $0x80

GLOBAL(u_in)
    inb $0x80, %al
    int $0x80

/* A hot loop (5000 rounds) for the JIT: 64-bit LCG, shifts, rotates,
 * scaled-index loads and stores, CMOV and SETcc. */
GLOBAL(ops_hot)
    SAVE
    movabsq $0x9E3779B97F4A7C15, %rax
    xorl %ebx, %ebx
    xorl %r11d, %r11d
    xorl %r13d, %r13d
    leaq hot_buf(%rip), %r8
    movl $5000, %ecx
1:  movabsq $6364136223846793005, %rdx
    imulq %rdx, %rax
    movabsq $1442695040888963407, %rdx
    addq %rdx, %rax
    movq %rax, %rdx
    shrq $29, %rdx
    xorq %rdx, %rbx
    rolq $7, %rbx
    movzbl %al, %r9d
    addq %rbx, (%r8,%r9,8)
    movq (%r8,%r9,8), %r10
    xorq %r10, %rbx
    cmpq %r10, %rbx
    cmovbq %r10, %r11
    setc %r12b
    movzbl %r12b, %r12d
    addq %r12, %r13
    decl %ecx
    jnz 1b
    xorl %eax, %eax
    xorl %ecx, %ecx
2:  addq (%r8,%rcx,8), %rax
    rolq $3, %rax
    incq %rcx
    cmpq $256, %rcx
    jb 2b
    movq %rbx, 0(%rdi)
    movq %rax, 8(%rdi)
    movq %r11, 16(%rdi)
    movq %r13, 24(%rdi)
    RESTORE
    ret

    .bss
    .balign 8
hot_buf: .skip 256 * 8
    .text

/* int3 with RSP = 16n (rdi = 0) or 16n + 8 (rdi = 1); returns that RSP. */
GLOBAL(int3_at_rsp)
    pushq %rbx
    movq %rsp, %rbx
    andq $-16, %rsp
    shlq $3, %rdi
    subq %rdi, %rsp
    movq %rsp, %rax
GLOBAL(int3_at_rsp_insn)
    int3
    movq %rbx, %rsp
    popq %rbx
    ret

/* int $0x41 (an IST gate); returns RSP at the INT. */
GLOBAL(int41)
    movq %rsp, %rax
    int $0x41
    ret

    .section .rodata
    .balign 8
muldiv_dword: .long 0xFFFFFFF0
    .balign 8
riprel_var: .quad 0x0BADC0DE12345678, 0x7766554433221100
    .data
    .balign 16
cx16_buf: .quad 0, 0
riprel_scratch: .quad 0
