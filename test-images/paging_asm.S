/*
 * Snippets for paging.c.  The address to touch is in probe_addr; loads store
 * what they read in probe_val, stores write probe_val.  *_insn labels mark
 * the instruction that may fault.  u_* snippets run at CPL3 and end with
 * `int $0x80` (EAX = value read / returned).
 */
#include "selectors.h"

#define GLOBAL(name) .globl name; name:

    .text

GLOBAL(k_read)
    movl probe_addr, %ecx
GLOBAL(k_read_insn)
    movl (%ecx), %eax
    movl %eax, probe_val
    ret

GLOBAL(k_write)
    movl probe_addr, %ecx
    movl probe_val, %eax
GLOBAL(k_write_insn)
    movl %eax, (%ecx)
    ret

/* Call the code at probe_addr; a fetch fault has EIP = probe_addr. */
GLOBAL(k_call)
    movl probe_addr, %ecx
    call *%ecx
    movl %eax, probe_val
    ret

GLOBAL(u_read)
    movl probe_addr, %ecx
GLOBAL(u_read_insn)
    movl (%ecx), %eax
    int $0x80

GLOBAL(u_write)
    movl probe_addr, %ecx
    movl $0x5555AAAA, %eax
GLOBAL(u_write_insn)
    movl %eax, (%ecx)
    int $0x80

GLOBAL(u_call)
    movl probe_addr, %ecx
    call *%ecx
    int $0x80
