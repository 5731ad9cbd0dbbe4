/* GDT entries private to pm_strict (shared by the C and asm files). */
#include "selectors.h"
#define SEL_LIMITED    0x30   /* data, base = limbuf, limit 0xFFF (byte granular) */
#define SEL_EXPDOWN    0x38   /* data, expand-down, B=1, base = limbuf - 0x1000, limit 0xFFF */
#define SEL_RODATA     0x40   /* data, read-only, flat */
#define SEL_XONLY      0x48   /* code, execute-only, flat */
#define SEL_CODE2M     0x50   /* code, base 0, limit 0x1FFFFF */
#define SEL_SS_UP      0x58   /* stack, expand-up, base 0, ends at kernel_stack_top */
#define SEL_SS_DOWN    0x60   /* stack, expand-down, base 0, starts 4 KiB above kernel_stack */
#define SEL_TINYCODE   0x68   /* code, base = tiny_code - 0x100, limit 0x100 */
