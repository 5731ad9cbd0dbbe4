/*
 * smc.elf: self-modifying code.  An emulator that caches decoded or compiled
 * code must notice every write to bytes it has translated (Intel SDM vol. 3,
 * 8.1.3 "Handling Self- and Cross-Modifying Code": since the P6 family a
 * store to an instruction already prefetched or decoded is detected, even
 * for the very next instruction).
 *
 *  - patch the imm32 / one byte of the imm / the opcode of the very next
 *    instruction, and an instruction further down the same block;
 *  - patch an instruction in a loop body on every iteration (the loop runs
 *    long enough to be considered hot by a JIT);
 *  - generate code in a buffer, call it, overwrite it, call again; also with
 *    REP MOVSB as the writer, and 1000 times in a row;
 *  - code whose imm32 straddles a 4 KiB page boundary, patched in the
 *    second page only;
 *  - with paging: two linear aliases of one physical page, writing through
 *    one and executing through the other (and through the physical address).
 */
#include "runtime.h"

const char test_name[] = "smc";

u32 smc_next_imm(u32 v);
u32 smc_next_imm_byte(u32 v);
u32 smc_next_opcode(u32 opcode);
u32 smc_later(u32 v);
u32 smc_loop(u32 n);

typedef u32 (*code_fn)(void);
#define A(x) ((u32)(x))

static u8 codebuf[8192] ALIGNED(4096);
static u8 alias_page[4096] ALIGNED(4096);
static volatile u32 pd[1024] ALIGNED(4096);
static volatile u32 pt[1024] ALIGNED(4096);

/* Emit "mov $imm, %eax; ret" at p. */
static void emit_mov_ret(volatile u8 *p, u32 imm)
{
    p[0] = 0xB8;
    p[1] = (u8)imm;
    p[2] = (u8)(imm >> 8);
    p[3] = (u8)(imm >> 16);
    p[4] = (u8)(imm >> 24);
    p[5] = 0xC3;
}

static u32 call_at(u32 addr)
{
    /* The compiler must not cache anything across the call: the code we
     * call is data we just wrote. */
    __asm__ volatile("" ::: "memory");
    return ((code_fn)addr)();
}

static void test_next_instruction(void)
{
    printf("-- patching the next instruction\n");
    check_eq("imm32 of next insn := 0x11111111", smc_next_imm(0x11111111), 0x11111111);
    check_eq("imm32 of next insn := 0xCAFEBABE", smc_next_imm(0xCAFEBABE), 0xCAFEBABE);
    check_eq("imm32 of next insn := 0", smc_next_imm(0), 0);
    u32 sum = 0;
    for (u32 i = 0; i < 1000; i++)
        sum += smc_next_imm(i);
    check_dec("sum of 1000 patched calls (0..999)", sum, 499500);
    check_eq("one byte of the next insn's imm32", smc_next_imm_byte(0x5A), 0x11005A22);
    check_eq("opcode of next insn := inc", smc_next_opcode(0x40), 1);
    check_eq("opcode of next insn := dec", smc_next_opcode(0x48), 0xFFFFFFFF);
    check_eq("opcode of next insn := inc again", smc_next_opcode(0x40), 1);
    check_dec("insn three further down the block := 100 (+3)", smc_later(100), 103);
    check_dec("insn three further down the block := 7 (+3)", smc_later(7), 10);
}

static void test_loop(void)
{
    printf("-- patching a loop body every iteration\n");
    check_dec("smc_loop(1000)", smc_loop(1000), 499500);
    check_dec("smc_loop(10)", smc_loop(10), 45);
    check_dec("smc_loop(5000)", smc_loop(5000), 12497500);
}

static void test_buffer(void)
{
    printf("-- generated code in a buffer\n");
    u32 buf = A(codebuf) + 0x100;
    emit_mov_ret(codebuf + 0x100, 0x12345678);
    check_eq("call generated code", call_at(buf), 0x12345678);
    emit_mov_ret(codebuf + 0x100, 0x87654321);
    check_eq("overwrite imm, call again", call_at(buf), 0x87654321);
    static const u8 two[] = { 0x31, 0xC0, 0x40, 0x40, 0xC3 };  /* xor eax,eax; inc; inc; ret */
    memcpy(codebuf + 0x100, two, sizeof two);
    check_eq("overwrite with different instructions", call_at(buf), 2);
    u32 sum = 0;
    for (u32 i = 0; i < 1000; i++) {
        emit_mov_ret(codebuf + 0x100, i * 3);
        sum += call_at(buf);
    }
    check_dec("1000 x (rewrite, call)", sum, 1498500);

    /* REP MOVSB as the writer. */
    static const u8 one[] = { 0xB8, 1, 0, 0, 0, 0xC3 }, nine[] = { 0xB8, 9, 0, 0, 0, 0xC3 };
    for (int round = 0; round < 2; round++) {
        const u8 *src = round ? nine : one;
        u32 dst = buf, n = sizeof one;
        __asm__ volatile("cld; rep movsb" : "+S"(src), "+D"(dst), "+c"(n) :: "memory");
        check_eq(round ? "rep movsb new code over it (9)" : "rep movsb code into buffer (1)",
                 call_at(buf), round ? 9 : 1);
    }

    /* mov $imm32, %eax; ret with the imm32 across the page boundary:
     * B8 at 0xFFD, imm bytes at 0xFFE..0x1001, ret at 0x1002. */
    u32 straddle = A(codebuf) + 0x1000 - 3;
    emit_mov_ret(codebuf + 0x1000 - 3, 0x44332211);
    check_eq("imm32 straddling a page boundary", call_at(straddle), 0x44332211);
    codebuf[0x1001] = 0x99;                          /* top imm byte, second page */
    check_eq("  ... patch its top byte (second page)", call_at(straddle), 0x99332211);
    codebuf[0x1002] = 0x40;                          /* inc %eax where ret was */
    codebuf[0x1003] = 0xC3;
    check_eq("  ... insert inc before ret (second page)", call_at(straddle), 0x99332212);
    codebuf[0xFFE] = 0x00;                           /* lowest imm byte, first page */
    check_eq("  ... patch its low byte (first page)", call_at(straddle), 0x99332201);
}

static void test_alias(void)
{
    printf("-- two linear aliases of one physical page (paging)\n");
    for (u32 i = 0; i < 4; i++)
        pd[i] = (i << 22) | 0x83;                    /* identity 0-16 MiB, 4 MiB pages */
    pd[0x40000000 >> 22] = A(pt) | 0x3;
    pt[0] = A(alias_page) | 0x3;                     /* 0x40000000 -> alias_page */
    pt[1] = A(alias_page) | 0x3;                     /* 0x40001000 -> alias_page */
    write_cr3(A(pd));
    write_cr4(read_cr4() | (1u << 4));
    write_cr0(read_cr0() | 0x80000000u);

    volatile u8 *v1 = phys(0x40000000), *p = phys(A(alias_page));
    emit_mov_ret(v1 + 0x40, 0xA11A5001);
    check_eq("write via 0x40000000, run via 0x40001000", call_at(0x40001040), 0xA11A5001);
    check_eq("  ... and run via 0x40000000", call_at(0x40000040), 0xA11A5001);
    emit_mov_ret(v1 + 0x40, 0xA11A5002);
    check_eq("rewrite via 0x40000000, run via 0x40001000", call_at(0x40001040), 0xA11A5002);
    emit_mov_ret(p + 0x40, 0xA11A5003);
    check_eq("rewrite via physical address, run via 0x40000000", call_at(0x40000040), 0xA11A5003);
    check_eq("  ... and via 0x40001000", call_at(0x40001040), 0xA11A5003);
    u32 sum = 0;
    for (u32 i = 0; i < 1000; i++) {
        emit_mov_ret((i & 1) ? v1 + 0x40 : p + 0x40, i);
        sum += call_at((i & 2) ? 0x40001040 : 0x40000040);
    }
    check_dec("1000 x (rewrite via one alias, run via another)", sum, 499500);

    write_cr0(read_cr0() & ~0x80000000u);
}

int kmain(u32 magic, u32 mbi)
{
    printf("smc: self-modifying code\n");
    test_next_instruction();
    test_loop();
    test_buffer();
    test_alias();
    return 0;
}
