/*
 * Entry point, interrupt stubs and the few helpers that must be assembly.
 *
 * The multiboot loader enters _start in 32-bit protected mode with flat
 * segments, paging and interrupts off, EAX = 0x2BADB002 and EBX = the
 * physical address of the multiboot information structure.
 */

#include "selectors.h"

#define MB_MAGIC 0x1BADB002
/* bit 0: page-align modules, bit 1: we want mem_lower/mem_upper and the map.
 * Bit 16 (a.out kludge) is deliberately clear: the loader must parse the ELF. */
#define MB_FLAGS 0x00000003

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    movl $kernel_stack_top, %esp
    /* Remember the loader's registers before we clobber them clearing .bss. */
    movl %eax, %esi
    movl %ebx, %ebp
    /* Zero .bss ourselves rather than trusting the loader to (the ELF memsz >
     * filesz tail); the stack lives in .bss but nothing is on it yet. */
    cld
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    pushl %ebp              /* kmain(magic, mbi) */
    pushl %esi
    call runtime_init
    call kmain
    call finish             /* prints PASS/FAIL and exits through port 0xF4 */
1:  hlt
    jmp 1b

/* void reload_segments(void): CS = kernel code, everything else kernel data. */
    .text
    .globl reload_segments
reload_segments:
    ljmp $SEL_KCODE, $1f
1:  movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    ret

/* void enter_user(u32 eip, u32 esp, u32 eflags): iret to ring 3 with flat
 * user segments.  The ring-0 stack used when the user code traps comes from
 * kernel_tss.esp0 (the separate interrupt stack), not from this stack. */
    .globl enter_user
enter_user:
    movl 4(%esp), %eax
    movl 8(%esp), %ecx
    movl 12(%esp), %edx
    movw $SEL_UDATA, %bx
    movw %bx, %ds
    movw %bx, %es
    movw %bx, %fs
    movw %bx, %gs
    pushl $SEL_UDATA        /* SS */
    pushl %ecx              /* ESP */
    pushl %edx              /* EFLAGS */
    pushl $SEL_UCODE        /* CS */
    pushl %eax              /* EIP */
    iret

/* int setjmp(struct jmp_buf *) / void longjmp(struct jmp_buf *, int).
 * Layout: ebx, esi, edi, ebp, esp, eip, eflags. */
    .globl setjmp
setjmp:
    movl 4(%esp), %eax
    movl %ebx, 0(%eax)
    movl %esi, 4(%eax)
    movl %edi, 8(%eax)
    movl %ebp, 12(%eax)
    leal 4(%esp), %ecx      /* esp as it will be after our ret */
    movl %ecx, 16(%eax)
    movl (%esp), %ecx       /* return address */
    movl %ecx, 20(%eax)
    pushfl
    popl 24(%eax)
    xorl %eax, %eax
    ret

    .globl longjmp
longjmp:
    /* We may arrive from a trap taken with strange segments loaded (that is
     * the point of many tests), so reload the flat kernel ones first. */
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movl 4(%esp), %edx
    movl 8(%esp), %eax
    testl %eax, %eax
    jnz 1f
    incl %eax
1:  movw $SEL_KDATA, %cx
    movw %cx, %ss
    movl 16(%edx), %esp
    movl 0(%edx), %ebx
    movl 4(%edx), %esi
    movl 8(%edx), %edi
    movl 12(%edx), %ebp
    pushl 24(%edx)
    popfl
    jmp *20(%edx)

/* ---------------------------------------------------------------------------
 * 256 interrupt stubs.  Vectors for which the CPU pushes an error code
 * (8, 10-14, 17, 21, 29, 30) go straight on; the others push a dummy 0 so
 * every frame has the same layout (struct frame in runtime.h).
 */
    .macro STUB vec
    .balign 8
isr_stub_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushl $0
    .endif
    pushl $\vec
    jmp isr_common
    .endm

    .balign 16
    .altmacro
    .set vec, 0
    .rept 256
    STUB %vec
    .set vec, vec + 1
    .endr

    .macro STUB_ADDR vec
    .long isr_stub_\vec
    .endm
    .section .rodata
    .balign 4
    .globl isr_stub_table
isr_stub_table:
    .set vec, 0
    .rept 256
    STUB_ADDR %vec
    .set vec, vec + 1
    .endr
    .noaltmacro

    .text
isr_common:
    /* Save the data segment registers as they were when the CPU entered the
     * stub: after a trap from v86 mode the CPU has loaded them with 0, and
     * tests check that. */
    pushl %gs
    pushl %fs
    pushl %es
    pushl %ds
    pushal
    cld                     /* the C ABI wants DF=0 */
    movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    pushl %esp              /* trap_dispatch(struct frame *) */
    call trap_dispatch
    addl $4, %esp
    .globl isr_return
isr_return:
    popal
    popl %ds
    popl %es
    popl %fs
    popl %gs
    addl $8, %esp           /* vector and error code */
    iret

/* ---------------------------------------------------------------------------
 * Stacks.  The kernel runs on kernel_stack; traps from ring 3 / v86 switch to
 * intr_stack (kernel_tss.esp0), so a longjmp from a handler back into a test
 * never collides with live kernel frames.  The guard above intr_stack_top lets
 * the dispatcher copy a full-size struct frame even for short frames.
 */
    .section .bss
    .balign 4096
    .globl kernel_stack_top, intr_stack_top
kernel_stack:
    .skip 16384
kernel_stack_top:
    .skip 64
intr_stack:
    .skip 16384
intr_stack_top:
    .skip 64
