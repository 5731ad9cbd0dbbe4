/*
 * The A20 probe for pc_devices.c.  Closing the A20 gate makes every address
 * with bit 20 set alias the megabyte below it, and this kernel, its stack and
 * its descriptor tables all live between 1 and 2 MiB.  So the part that runs
 * with A20 closed is copied to low memory (A20_CODE) and called with IF=0;
 * it touches neither the stack nor any variable until A20 is open again.
 *
 * On a PC the CPU's A20M# input is asserted only when both gates are closed:
 * the 8042's output port bit 1 and port 0x92 bit 1.  (QEMU lets the last
 * write to either one decide.)  The probe closes the 8042 gate first, then
 * port 0x92, so A20 is closed in both models, and it opens port 0x92 again
 * before using memory above 1 MiB.  The caller reopens the 8042 gate.
 *
 * void a20_probe(void), results in a20_result[]:
 *   [0] port 0x92 read back while closed
 *   [1] 8042 output port (command 0xD0) while closed
 *   [2] the dword read at A20_HIGH while closed (expected: the one at A20_LOW)
 *   [3] the dword at A20_HIGH after reopening (expected: unchanged)
 *   [4] 0 if every 8042 wait finished, else the number that timed out
 * While closed it also writes A20_WRITTEN through A20_HIGH, which must land
 * at A20_LOW.
 */
#include "pc_devices.h"

#define GLOBAL(name) .globl name; name:

/* Wait (bounded) until the 8042 input buffer is empty: status bit 1 clear. */
.macro WAIT_IBF
    movl $2000000, %ecx
1:  inb $0x64, %al
    testb $0x02, %al
    jz 2f
    loop 1b
    incl %edi
2:
.endm

/* Wait (bounded) until the 8042 output buffer is full: status bit 0 set. */
.macro WAIT_OBF
    movl $2000000, %ecx
1:  inb $0x64, %al
    testb $0x01, %al
    jnz 2f
    loop 1b
    incl %edi
2:
.endm

    .text
GLOBAL(a20_probe_code)
    pushl %ebx
    pushl %esi
    pushl %edi
    pushl %ebp
    xorl %edi, %edi                 /* timeouts */

    /* 8042 output port := 0xDD: reset line released (bit 0), A20 off. */
    WAIT_IBF
    movb $0xD1, %al
    outb %al, $0x64
    WAIT_IBF
    movb $0xDD, %al
    outb %al, $0x60
    WAIT_IBF

    /* Port 0x92 := 0: A20 off.  Bit 0 stays 0 (a 0->1 edge resets the CPU). */
    movb $0x00, %al
    outb %al, $0x92
    inb $0x92, %al
    movzbl %al, %esi                /* [0] */

    WAIT_IBF
    movb $0xD0, %al
    outb %al, $0x64
    WAIT_OBF
    inb $0x60, %al
    movzbl %al, %ebp                /* [1] */

    movl A20_HIGH, %ebx             /* [2]: wraps to A20_LOW */
    movl $A20_WRITTEN, A20_HIGH     /* lands at A20_LOW */

    /* Port 0x92 := 2: A20 on again. */
    movb $0x02, %al
    outb %al, $0x92

    movl %esi, a20_result
    movl %ebp, a20_result + 4
    movl %ebx, a20_result + 8
    movl A20_HIGH, %eax
    movl %eax, a20_result + 12
    movl %edi, a20_result + 16

    popl %ebp
    popl %edi
    popl %esi
    popl %ebx
    ret
GLOBAL(a20_probe_end)
