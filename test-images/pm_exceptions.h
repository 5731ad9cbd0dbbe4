/* GDT entries private to pm_exceptions (shared by the C and asm files). */
#include "selectors.h"
#define SEL_XONLY      0x30   /* code, execute-only */
#define SEL_NOTPRESENT 0x38   /* writable data, P=0 */
#define SEL_RODATA     0x40   /* data, read-only */
#define SEL_CODE2M     0x48   /* code, base 0, limit 0x1FFFFF (2 MiB) */
#define SEL_BADTSS     0x50   /* 32-bit TSS whose limit (0x60) is below 0x67 */
#define SEL_CALLGATE   0x5B   /* 32-bit call gate, DPL3 (used with RPL3) */
#define SEL_KDATA2     0x60   /* a second flat ring-0 data segment, for TSS.ss0 */
#define SEL_CODE_NP    0x68   /* code, P=0 */
#define SEL_BEYOND     0x200  /* index 64: just past the GDT limit */
