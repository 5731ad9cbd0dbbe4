/* GDT layout and record slots private to task_switch (C and asm). */
#include "selectors.h"
#define SEL_TSS_A   0x30
#define SEL_TSS_B   0x38
#define SEL_TSS_C   0x40   /* reached through a task gate (int $0x40) */
#define SEL_TSS_D   0x48   /* reached through a task gate for #GP */
#define SEL_LDT_A   0x50
#define SEL_LDT_B   0x58
#define SEL_TSS_E   0x60   /* never run: an available TSS for the IRET/#TS check */
#define SEL_BEYOND  0x200  /* past the GDT limit */
#define SEL_LDT_DATA 0x0C  /* LDT index 1, TI=1, RPL0 */
#define TASK_GATE_VEC 0x40

/* Slots of the u32 arrays the tasks fill in (rec_a, rec_b, ...). */
#define REC_TR      0
#define REC_LDTR    1
#define REC_EFLAGS  2
#define REC_CR3     3
#define REC_PAGE    4      /* dword at linear 0x40000000 */
#define REC_BUSY_MAIN 5    /* access byte of the kernel TSS descriptor */
#define REC_BUSY_SELF 6    /* access byte of the task's own TSS descriptor */
#define REC_LINK    7      /* previous-task link field of the task's own TSS */
#define REC_COUNT   8      /* how many times the task body ran */
#define REC_ERR     9      /* error code found on the task's stack (task D) */
#define REC_OLD_EIP 10     /* EIP saved in the interrupted task's TSS (task D) */
#define REC_SLOTS   11
