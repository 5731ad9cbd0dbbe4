/*
 * Self-modifying snippets for smc.c.  They live in .text and write to their
 * own instruction bytes; with paging off (or identity mapped writable pages)
 * that is allowed, and the CPU must execute the modified bytes.
 */
#define GLOBAL(name) .globl name; name:

    .text

/* u32 smc_next_imm(u32 v): store v into the imm32 of the very next
 * instruction, then execute it. */
GLOBAL(smc_next_imm)
    movl 4(%esp), %eax
    movl %eax, 1f+1
1:  movl $0, %eax               /* B8 imm32 */
    ret

/* u32 smc_next_imm_byte(u8 v): a byte store into the middle of the imm32
 * of the next instruction (imm bits 15:8). */
GLOBAL(smc_next_imm_byte)
    movb 4(%esp), %al
    movb %al, 1f+2
1:  movl $0x11000022, %eax
    ret

/* int smc_next_opcode(u8 opcode): replace the opcode of the next one-byte
 * instruction: 0x40 = inc %eax, 0x48 = dec %eax. */
GLOBAL(smc_next_opcode)
    movb 4(%esp), %cl
    xorl %eax, %eax
    movb %cl, 1f
1:  incl %eax
    ret

/* u32 smc_later(u32 v): patch an instruction a few instructions further
 * down the same straight-line block. */
GLOBAL(smc_later)
    movl 4(%esp), %edx
    movl %edx, 1f+1
    xorl %eax, %eax
    addl $1, %eax
    addl $2, %eax
1:  movl $0, %ecx               /* B9 imm32 */
    addl %ecx, %eax
    ret

/* u32 smc_loop(u32 n): each iteration stores i into the imm32 of the add in
 * the loop body before it runs, so the result is 0 + 1 + ... + (n-1). */
GLOBAL(smc_loop)
    movl 4(%esp), %edx
    xorl %eax, %eax
    xorl %ecx, %ecx
    testl %edx, %edx
    jz 3f
2:  movl %ecx, 1f+1
1:  addl $0x7FFFFFFF, %eax      /* 05 imm32: must never run with this value */
    incl %ecx
    cmpl %edx, %ecx
    jb 2b
3:  ret
