/*
 * Getting from the 32-bit runtime into 64-bit code, shared by long_mode.elf
 * and bench64.elf: the 64-bit GDT entries of long_mode.h, an identity map of
 * 0-1 GiB, the 64-bit part copied to LM64_BASE and entered through lm_run
 * (long_mode_asm.S), which comes back to 32-bit protected mode with paging
 * off.  Intel SDM vol. 3A 10.8.5.
 */
#include "runtime.h"
#include "long_mode.h"

void lm_run(u32 pml4, void *arg);

#define PG_P  0x001u
#define PG_W  0x002u
#define PG_U  0x004u
#define PG_PS 0x080u

/* 2 MiB pages are enough to get into 64-bit mode; long_mode's 64-bit part
 * builds its own tables for the paging tests. */
static u64 pml4[512] ALIGNED(4096);
static u64 pdpt[512] ALIGNED(4096);
static u64 pd[512] ALIGNED(4096);

void lm_enter(const void *blob, unsigned int size, void *arg)
{
    /* 64-bit CS (L=1, D=0), data, and the SYSRET block (see long_mode.h). */
    gdt_set(SEL_KCODE64 >> 3, 0, 0xFFFFF, ACC_CODE_R, FL_G | 0x2);
    gdt_set(SEL_KDATA64 >> 3, 0, 0xFFFFF, ACC_DATA_W, FL_G | FL_DB);
    gdt_set(SEL_UCODE32 >> 3, 0, 0xFFFFF, ACC_CODE_R | ACC_DPL3, FL_G | FL_DB);
    gdt_set(SEL_UDATA64 >> 3, 0, 0xFFFFF, ACC_DATA_W | ACC_DPL3, FL_G | FL_DB);
    gdt_set(SEL_UCODE64 >> 3, 0, 0xFFFFF, ACC_CODE_R | ACC_DPL3, FL_G | 0x2);

    for (int i = 0; i < 512; i++)
        pd[i] = ((u64)i << 21) | PG_P | PG_W | PG_U | PG_PS;
    pdpt[0] = (u32)pd | PG_P | PG_W | PG_U;
    pml4[0] = (u32)pdpt | PG_P | PG_W | PG_U;

    memcpy(phys(LM64_BASE), blob, size);
    lm_run((u32)pml4, arg);
}
