/* Selectors of the GDT every image starts with (runtime.c runtime_init).
 * Shared by C and assembly, so only #defines here. */
#ifndef LEAP_SELECTORS_H
#define LEAP_SELECTORS_H
#define SEL_KCODE 0x08      /* ring 0 code, flat 4 GiB, 32-bit */
#define SEL_KDATA 0x10      /* ring 0 data, flat 4 GiB */
#define SEL_UCODE 0x1B      /* ring 3 code, flat (index 3, RPL 3) */
#define SEL_UDATA 0x23      /* ring 3 data, flat (index 4, RPL 3) */
#define SEL_TSS   0x28      /* the kernel's TSS (index 5), loaded into TR */
#define GDT_FIRST_FREE 6    /* entries from here on belong to the tests */
#define GDT_ENTRIES 64
#endif
