/*
 * Snippets for pm_strict.c.  As in pm_exceptions_asm.S, *_insn labels mark
 * the instruction expected to fault.  The probes take their operands from
 * C variables: probe_sel (selector to load) and probe_off (offset).
 */
#include "pm_strict.h"

#define GLOBAL(name) .globl name; name:

    .text

/* LOCK on an instruction that cannot be locked (register destination): #UD. */
GLOBAL(ud_lock)
GLOBAL(ud_lock_insn)
    .byte 0xF0, 0x89, 0xC1  /* lock movl %eax, %ecx */
    ret

/* Far CALL to an offset beyond the CS limit: #GP(0) (SDM CALL pseudo-code). */
GLOBAL(far_call_beyond)
GLOBAL(far_call_beyond_insn)
    lcall $SEL_CODE2M, $0x200000
    ret

/* Load ES with probe_sel, then read/write a dword/word/byte at ES:probe_off. */
    .macro ES_PROBE name, insn
GLOBAL(\name)
    pushl %es
    movw probe_sel, %ax
    movw %ax, %es
    movl probe_off, %ecx
GLOBAL(\name\()_insn)
    \insn
    popl %es
    ret
    .endm

    ES_PROBE es_read32, "movl %es:(%ecx), %eax"
    ES_PROBE es_read16, "movw %es:(%ecx), %ax"
    ES_PROBE es_read8, "movb %es:(%ecx), %al"
    ES_PROBE es_write32, "movl %eax, %es:(%ecx)"

/* The same through SS (loaded with probe_sel; ESP stays where it is, which
 * is inside both test stack segments). */
GLOBAL(ss_read32)
    movw probe_sel, %ax
    movl probe_off, %ecx
    movw %ax, %ss
GLOBAL(ss_read32_insn)
    movl %ss:(%ecx), %eax
    movw $SEL_KDATA, %ax
    movw %ax, %ss
    ret

/* rep stosb into ES = SEL_LIMITED from offset 0xFF0 with ECX = 0x20: 16 bytes
 * fit below the limit, the 17th faults with EDI = 0x1000, ECX = 0x10. */
GLOBAL(rep_stos_limit)
    pushl %es
    pushl %edi
    movw $SEL_LIMITED, %ax
    movw %ax, %es
    movl $0xFF0, %edi
    movl $0x20, %ecx
    movb $0x5A, %al
    cld
GLOBAL(rep_stos_limit_insn)
    rep stosb
    popl %edi
    popl %es
    ret

/* A read through CS while CS is an execute-only segment: #GP(0). */
GLOBAL(xonly_read)
    ljmp $SEL_XONLY, $1f
1:  movl $xonly_read, %ecx
GLOBAL(xonly_read_insn)
    movl %cs:(%ecx), %eax
    ljmp $SEL_KCODE, $2f
2:  ret

/* Run off the end of a code segment: tiny_code is at offset 0x100 of
 * SEL_TINYCODE, whose limit is 0x100, so the first NOP runs and fetching
 * the second faults with EIP = 0x101. */
GLOBAL(tiny_code_run)
    ljmp $SEL_TINYCODE, $0x100
    .balign 16
GLOBAL(tiny_code)
    nop
    nop
    ud2

/* Ring 3: a misaligned dword load with EFLAGS.AC set (CR0.AM is the C side's
 * business).  Ends with int $0x80 if no #AC happens. */
GLOBAL(u_misaligned)
    pushfl
    orl $0x40000, (%esp)    /* EFLAGS.AC: allowed at any CPL */
    popfl
GLOBAL(u_misaligned_insn)
    movl 1(%esp), %eax
    int $0x80

/* The same at CPL0, where alignment checking never applies. */
GLOBAL(k_misaligned)
    pushfl
    orl $0x40000, (%esp)
    popfl
    movl 1(%esp), %eax
    pushfl
    andl $~0x40000, (%esp)
    popfl
    ret

/* Read/write the dword at probe_off (flat DS), for the paging checks. */
GLOBAL(pg_read)
    movl probe_off, %ecx
GLOBAL(pg_read_insn)
    movl (%ecx), %eax
    ret

GLOBAL(pg_write)
    movl probe_off, %ecx
GLOBAL(pg_write_insn)
    movl %eax, (%ecx)
    ret
