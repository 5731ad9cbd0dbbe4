/*
 * The 32-bit side of the mode switches (Intel SDM vol. 3A 10.8.5
 * "Initializing IA-32e Mode" and 10.8.5.4 "Switching Out of IA-32e Mode").
 */
#include "selectors.h"
#include "long_mode.h"

#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define CR0_PG 0x80000000
#define CR4_PAE (1 << 5)

    .text
/* void lm_run(u32 pml4, void *arg): enter long mode, run the 64-bit part
 * (ARG in RDI) and come back to 32-bit protected mode with paging off. */
    .globl lm_run
lm_run:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl 24(%esp), %esi
    movl 20(%esp), %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax
    movl %eax, %cr0
    /* Paging with LME set makes this IA-32e mode, but CS is still the
     * 32-bit 0x08: compatibility mode until the far jump. */
    movl $MSR_EFER, %ecx
    rdmsr
    movl %eax, efer_in_compat
    ljmp $SEL_KCODE64, $1f

    .code64
1:  movl %esp, %esp         /* RSP[63:32] are undefined after the switch */
    movq %rsp, %rbx
    andq $-16, %rsp         /* the SysV ABI alignment at a call */
    movl %esi, %edi
    movl $LM64_BASE, %eax
    call *%rax
    movq %rbx, %rsp
    /* Far return to the 32-bit code segment: compatibility mode again,
     * where paging may be switched off. */
    pushq $SEL_KCODE
    leaq 2f(%rip), %rax
    pushq %rax
    lretq

    .code32
2:  movw $SEL_KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl %cr0, %eax
    andl $~CR0_PG, %eax
    movl %eax, %cr0
    movl $MSR_EFER, %ecx
    rdmsr
    movl %eax, efer_after_pg_off
    andl $~EFER_LME, %eax
    wrmsr
    movl %cr4, %eax
    andl $~CR4_PAE, %eax
    movl %eax, %cr4
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

    .bss
    .balign 4
    .globl efer_in_compat, efer_after_pg_off
efer_in_compat:
    .long 0
efer_after_pg_off:
    .long 0
