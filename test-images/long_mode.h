/* Shared by the 32-bit and 64-bit halves of long_mode.elf and bench64.elf
 * (C and assembly). */
#ifndef LEAP_LONG_MODE_H
#define LEAP_LONG_MODE_H

#define LM64_BASE 0x800000      /* where the 64-bit part is linked and copied */

/* GDT entries added to the runtime's (selectors.h).  The order from 0x30 on
 * is what SYSCALL/SYSRET dictate: STAR[47:32] = 0x30 gives CS 0x30 and
 * SS 0x38 on SYSCALL; STAR[63:48] = 0x40 gives SS 0x48|3 and 64-bit CS
 * 0x50|3 on SYSRET (0x40 would be the 32-bit user CS). */
#define SEL_KCODE64 0x30
#define SEL_KDATA64 0x38
#define SEL_UCODE32 0x43
#define SEL_UDATA64 0x4b
#define SEL_UCODE64 0x53
#define SEL_TSS64   0x60        /* 16 bytes: GDT entries 12 and 13 */
#define SEL_CGATE   0x70        /* 16-byte call gate, DPL 3: entries 14 and 15 */
#define SEL_FSDATA  0x80        /* a data segment based at fs_area */

#ifndef __ASSEMBLER__
/* Handed from the 32-bit part to lm64_main (by address, below 4 GiB). */
struct lm_info {
    unsigned int gdt;           /* address of the runtime's GDT */
    unsigned int checks_run;    /* 64-bit side's checks, added to the total */
    unsigned int checks_failed;
};

/* 32-bit side (lm_enter.c): copy the 64-bit part (SIZE bytes at BLOB) to
 * LM64_BASE and call it in 64-bit mode with ARG in RDI; returns in 32-bit
 * protected mode with paging off. */
void lm_enter(const void *blob, unsigned int size, void *arg);
#endif
#endif
