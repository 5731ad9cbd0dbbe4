/* Shared between vm86.c and vm86_code.S. */
#define V86_CODE_SEG  0x2000  /* the blob is copied to linear 0x20000 */
#define V86_DATA_SEG  0x3000  /* results live at linear 0x30000 */
#define V86_STACK_SEG 0x4000
#define V86_STACK_TOP 0x1000  /* SS:SP = 4000:1000, linear 0x41000 */
#define V86_IVT_VEC   0x31    /* reflected through the real-mode IVT by the monitor */
#define V86_IDT_VEC   0x30    /* delivered through the IDT when IOPL=3 */

/* Offsets of the results the v86 code stores in its data segment. */
#define R_ADD       0x00   /* 1234 + 4321 */
#define R_IMUL_LO   0x02   /* 300 * -7, low word */
#define R_IMUL_HI   0x04   /* ... high word (DX) */
#define R_DIV_Q     0x06   /* 100 / 7 */
#define R_DIV_R     0x08   /* 100 % 7 */
#define R_ADD32     0x0C   /* 0x12345678 + 0x11111111 with an operand-size prefix */
#define R_POP_AX    0x10   /* push 0x1111, push 0x2222, pop ax, pop bx */
#define R_POP_BX    0x12
#define R_SP_DELTA  0x14   /* SP after the pushes and pops minus SP before */
#define R_SEGALIAS  0x16   /* word written at 3000:0100, read back through 3010:0000 */
#define R_WRAP      0x18   /* word read at [bx+0x50] with bx=0xFFF0: offset wraps to 0x0040 */
#define R_FLAGS16   0x1A   /* pushf with IOPL=3 */
#define R_FLAGS32   0x1C   /* pushfl with IOPL=3 (VM and RF read as 0) */
#define R_INT30     0x20   /* AX after int $0x30 (set by the ring-0 handler) */
#define R_VFLAGS1   0x22   /* pushf after cli; sti (IOPL=0, emulated) */
#define R_VFLAGS2   0x24   /* pushf after popf of 0x0002 (IOPL=0, emulated) */
#define R_INT31     0x26   /* BX after int $0x31 (reflected to a v86 handler) */
#define R_AFTER     0x28   /* set to 1 just before the final hlt */
#define R_WRAPDATA  0x40   /* where the wrap test's word lives */
