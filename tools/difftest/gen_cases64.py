#!/usr/bin/env python3
"""64-bit differential-test cases for Leap's CPU, run on Unicorn.

Random 64-bit-mode integer instruction streams (all operand sizes, REX
registers R8-R15 and SPL/BPL/SIL/DIL, memory operands through R15, the
stack through RSP) are single-stepped on Unicorn (UC_MODE_64); the state
after each instruction is written as JSON Lines, one case per line, for
cpu/tests/unicorn_diff64.rs to replay on Leap and compare.

Generation is online: every instruction is chosen knowing the state after
the previous one, so DIV/IDIV never fault, BSF/BSR never see a zero source
(their destination would be undefined), pushes and pops stay in the stack
region. `undef` is the mask of flags the Intel SDM leaves undefined for the
instruction; only those are not compared.

usage: gen_cases64.py --seed S --count N --out FILE [--sse]

--sse writes SSE..SSE4.2 streams in 64-bit mode instead (generator in
gen_sse64.py): XMM0-XMM15, every 64-bit addressing form, the REX.W forms.
"""

import argparse
import json
import random

import iced_x86 as I
from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64
from unicorn import x86_const as X

CODE, DATA, STACK = 0x1000, 0x2000, 0x3000
DATA_SIZE = 0x200
STACK_TOP = 0x3400
CODE_MAX = 0xC00
CF, PF, AF, ZF, SF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x400, 0x800
ARITH = CF | PF | AF | ZF | SF | OF
REPORT = ARITH | DF | 0x2

NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
UC_REGS = [getattr(X, "UC_X86_REG_" + n.upper()) for n in NAMES]
R = I.Register
REG = {
    64: [R.RAX, R.RCX, R.RDX, R.RBX, R.RSP, R.RBP, R.RSI, R.RDI,
         R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15],
    32: [R.EAX, R.ECX, R.EDX, R.EBX, R.ESP, R.EBP, R.ESI, R.EDI,
         R.R8D, R.R9D, R.R10D, R.R11D, R.R12D, R.R13D, R.R14D, R.R15D],
    16: [R.AX, R.CX, R.DX, R.BX, R.SP, R.BP, R.SI, R.DI,
         R.R8W, R.R9W, R.R10W, R.R11W, R.R12W, R.R13W, R.R14W, R.R15W],
    8: [R.AL, R.CL, R.DL, R.BL, R.SPL, R.BPL, R.SIL, R.DIL,
        R.R8L, R.R9L, R.R10L, R.R11L, R.R12L, R.R13L, R.R14L, R.R15L],
}
# RSP is the stack and R15 the data base: never a destination.
DEST = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
SPECIAL = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
           0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
           0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x8000000000000001]
CONDS = ["O", "NO", "B", "AE", "E", "NE", "BE", "A", "S", "NS", "P", "NP", "L", "GE", "LE", "G"]
M64 = (1 << 64) - 1


def code(name):
    return getattr(I.Code, name)


def mask(s):
    return (1 << s) - 1


def sx(v, s):
    v &= mask(s)
    return v - (1 << s) if v >> (s - 1) else v


class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def val(self):
        r = self.r
        k = r.random()
        if k < 0.35:
            return r.choice(SPECIAL)
        if k < 0.5:
            return r.getrandbits(8)
        if k < 0.65:
            return r.getrandbits(32)
        return r.getrandbits(64)

    def mem(self, size):
        disp = self.r.randrange(0, DATA_SIZE - size // 8 + 1)
        return I.MemoryOperand(R.R15, R.NONE, 1, disp, 1)

    def pick(self, st):
        """(Instruction, undefined-flag mask) for state `st` (regs, flags)."""
        r = self.r
        regs = st["regs"]
        s = r.choice([8, 16, 32, 64, 64, 64])
        d, src = r.choice(DEST), r.randrange(16)
        D, S = REG[s][d], REG[s][src]
        fam = r.randrange(20)
        if fam <= 3:
            op = r.choice(["ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP"])
            undef = AF if op in ("OR", "AND", "XOR") else 0
            form = r.randrange(4)
            if form == 0:
                return I.Instruction.create_reg_reg(code(f"{op}_RM{s}_R{s}"), D, S), undef
            if form == 1:
                imm = "IMM8" if s == 8 else ("IMM16" if s == 16 else "IMM32")
                v = sx(self.val(), 8 if s == 8 else (16 if s == 16 else 32))
                return I.Instruction.create_reg_i32(code(f"{op}_RM{s}_{imm}"), D, v), undef
            if form == 2:
                return I.Instruction.create_reg_mem(code(f"{op}_R{s}_RM{s}"), D, self.mem(s)), undef
            return I.Instruction.create_mem_reg(code(f"{op}_RM{s}_R{s}"), self.mem(s), S), undef
        if fam == 4:
            op = r.choice(["INC", "DEC", "NEG", "NOT"])
            return I.Instruction.create_reg(code(f"{op}_RM{s}"), D), 0
        if fam == 5:
            return I.Instruction.create_reg_reg(code(f"TEST_RM{s}_R{s}"), D, S), AF
        if fam in (6, 7):
            op = r.choice(["SHL", "SHR", "SAR", "ROL", "ROR", "RCL", "RCR"])
            if r.random() < 0.5:
                cnt = r.choice([0, 1, 1, 2, s - 1, s, s + 1, r.randrange(64)])
                ins = I.Instruction.create_reg_u32(code(f"{op}_RM{s}_IMM8"), D, cnt)
            else:
                cnt = regs[1] & 0xFF
                ins = I.Instruction.create_reg_reg(code(f"{op}_RM{s}_CL"), D, R.CL)
                if d == 1:
                    return None
            m = cnt & (0x3F if s == 64 else 0x1F)
            if m == 0:
                return ins, 0
            undef = 0 if m == 1 else OF
            if op in ("SHL", "SHR", "SAR"):
                undef |= AF
                if m >= s:
                    undef |= CF | (OF if op != "SAR" else 0)
            return ins, undef
        if fam == 8:
            if s == 8:
                return None
            op = r.choice(["SHLD", "SHRD"])
            cnt = r.randrange(s if s < 64 else 64)
            m = cnt & (0x3F if s == 64 else 0x1F)
            if s == 16 and m > 16:
                return None
            ins = I.Instruction.create_reg_reg_u32(code(f"{op}_RM{s}_R{s}_IMM8"), D, S, cnt)
            return ins, (0 if m == 0 else AF | (OF if m != 1 else 0))
        if fam == 9:
            if s == 8:
                return None
            if r.random() < 0.5:
                return I.Instruction.create_reg_reg(code(f"IMUL_R{s}_RM{s}"), D, S), SF | ZF | AF | PF
            imm = "IMM16" if s == 16 else "IMM32"
            v = sx(self.val(), 16 if s == 16 else 32)
            return I.Instruction.create_reg_reg_i32(code(f"IMUL_R{s}_RM{s}_{imm}"), D, S, v), SF | ZF | AF | PF
        if fam == 10:
            op = r.choice(["MUL", "IMUL", "DIV", "IDIV"])
            if src in (0, 2) and op in ("DIV", "IDIV"):
                return None
            if op in ("MUL", "IMUL"):
                return I.Instruction.create_reg(code(f"{op}_RM{s}"), S), SF | ZF | AF | PF
            div = regs[src] & mask(s)
            if s == 8:
                num = regs[0] & 0xFFFF
            else:
                num = ((regs[2] & mask(s)) << s) | (regs[0] & mask(s))
            if div == 0:
                return None
            if op == "DIV":
                q = num // div
                if q >> s:
                    return None
            else:
                n, dv = sx(num, 2 * s), sx(div, s)
                q = abs(n) // abs(dv)
                if (n < 0) != (dv < 0):
                    q = -q
                if not (-(1 << (s - 1)) <= q < (1 << (s - 1))):
                    return None
            return I.Instruction.create_reg(code(f"{op}_RM{s}"), S), ARITH
        if fam == 11:
            k = r.randrange(6)
            if k == 0:
                return I.Instruction.create_reg_u64(code("MOV_R64_IMM64"), REG[64][d], self.val()), 0
            if k == 1:
                return I.Instruction.create_reg_reg(code("MOVSXD_R64_RM32"), REG[64][d], REG[32][src]), 0
            if k == 2 and s > 8:
                t = r.choice([8, 16] if s > 16 else [8])
                op = r.choice(["MOVZX", "MOVSX"])
                return I.Instruction.create_reg_reg(code(f"{op}_R{s}_RM{t}"), D, REG[t][src]), 0
            if k == 3:
                return I.Instruction.create_reg_mem(code(f"MOV_R{s}_RM{s}"), D, self.mem(s)), 0
            if k == 4:
                return I.Instruction.create_mem_reg(code(f"MOV_RM{s}_R{s}"), self.mem(s), S), 0
            if s == 8:
                return None
            base, index = r.randrange(16), r.choice([x for x in range(16) if x != 4])
            m = I.MemoryOperand(REG[64][base], REG[64][index], r.choice([1, 2, 4, 8]),
                                sx(self.val(), 32), 4)
            return I.Instruction.create_reg_mem(code(f"LEA_R{s}_M"), D, m), 0
        if fam == 12:
            op = r.choice(["XCHG", "XADD", "CMPXCHG"])
            if src in (4, 15) or (op == "CMPXCHG" and d == 0):
                return None
            return I.Instruction.create_reg_reg(code(f"{op}_RM{s}_R{s}"), D, S), 0
        if fam == 13:
            if s < 32:
                return None
            return I.Instruction.create_reg(code(f"BSWAP_R{s}"), D), 0
        if fam == 14:
            if s == 8:
                return None
            op = r.choice(["BT", "BTS", "BTR", "BTC"])
            if r.random() < 0.5:
                return I.Instruction.create_reg_reg(code(f"{op}_RM{s}_R{s}"), D, S), OF | SF | AF | PF
            return I.Instruction.create_reg_u32(code(f"{op}_RM{s}_IMM8"), D, r.randrange(256)), OF | SF | AF | PF
        if fam == 15:
            if s == 8 or regs[src] & mask(s) == 0:
                return None
            op = r.choice(["BSF", "BSR"])
            return I.Instruction.create_reg_reg(code(f"{op}_R{s}_RM{s}"), D, S), CF | OF | SF | AF | PF
        if fam == 16:
            cc = r.choice(CONDS)
            if s == 8:
                return I.Instruction.create_reg(code(f"SET{cc}_RM8"), D), 0
            return I.Instruction.create_reg_reg(code(f"CMOV{cc}_R{s}_RM{s}"), D, S), 0
        if fam == 17:
            rsp = regs[4]
            if r.random() < 0.5 and rsp - 8 >= STACK:
                return I.Instruction.create_reg(code("PUSH_R64"), REG[64][src]), 0
            if rsp + 8 <= STACK_TOP:
                return I.Instruction.create_reg(code("POP_R64"), REG[64][d]), 0
            return None
        if fam == 18:
            name = r.choice(["CBW", "CWDE", "CDQE", "CWD", "CDQ", "CQO", "LAHF", "SAHF",
                             "CLC", "STC", "CMC"])
            return I.Instruction.create(code(name)), 0
        return I.Instruction.create_reg_reg(code(f"MOV_RM{s}_R{s}"), D, S), 0


def uc_state(uc):
    return {
        "regs": [uc.reg_read(x) for x in UC_REGS],
        "rip": uc.reg_read(X.UC_X86_REG_RIP),
        "rflags": uc.reg_read(X.UC_X86_REG_RFLAGS),
    }


def one_case(rnd, n_insns):
    gen = Gen(rnd)
    regs = [gen.val() for _ in range(16)]
    regs[4] = STACK_TOP - 8 * rnd.randrange(1, 64)
    regs[15] = DATA
    flags = (rnd.getrandbits(12) & ARITH) | 0x2
    data = bytes(rnd.getrandbits(8) for _ in range(DATA_SIZE))
    stack = bytes(rnd.getrandbits(8) for _ in range(STACK_TOP - STACK))
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x3000)
    uc.mem_write(DATA, data)
    uc.mem_write(STACK, stack)
    for x, v in zip(UC_REGS, regs):
        uc.reg_write(x, v)
    uc.reg_write(X.UC_X86_REG_RFLAGS, flags)
    enc = I.Encoder(64)
    fmt = I.Formatter(I.FormatterSyntax.NASM)
    rip = CODE
    code_bytes = bytearray()
    steps = []
    st = uc_state(uc)
    st["rip"] = CODE
    while len(steps) < n_insns and rip - CODE < CODE_MAX:
        picked = gen.pick(st)
        if picked is None:
            continue
        ins, undef = picked
        try:
            enc.encode(ins, rip)
        except ValueError:
            continue  # e.g. AH with a REX prefix: not encodable
        b = enc.take_buffer()
        uc.mem_write(rip, bytes(b))
        try:
            uc.emu_start(rip, CODE + 0x1000, count=1)
        except UcError:
            return None
        nst = uc_state(uc)
        if nst["rip"] != rip + len(b):
            return None
        code_bytes += b
        steps.append({
            "asm": fmt.format(ins),
            "regs": [str(v) for v in nst["regs"]],
            "rip": nst["rip"],
            "rflags": (nst["rflags"] & REPORT) | 2,
            "undef": undef,
        })
        rip += len(b)
        st = nst
    return {
        "regs": [str(v) for v in regs],
        "rflags": flags,
        "code": code_bytes.hex(),
        "mem": [{"addr": DATA, "data": data.hex()}, {"addr": STACK, "data": stack.hex()}],
        "steps": steps,
        "final_mem": [{"addr": DATA, "data": bytes(uc.mem_read(DATA, DATA_SIZE)).hex()},
                      {"addr": STACK, "data": bytes(uc.mem_read(STACK, STACK_TOP - STACK)).hex()}],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=20000, help="instructions in all")
    ap.add_argument("--per-case", type=int, default=40)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sse", action="store_true",
                    help="SSE..SSE4.2 streams in 64-bit mode (gen_sse64.py)")
    ap.add_argument("--quiet", action="store_true", help="no per-instruction histogram")
    a = ap.parse_args()
    if a.sse:
        return sse(a)
    rnd = random.Random(a.seed)
    total = 0
    with open(a.out + ".tmp", "w") as f:
        while total < a.count:
            c = one_case(rnd, min(a.per_case, a.count - total))
            if c is None or not c["steps"]:
                continue
            total += len(c["steps"])
            f.write(json.dumps(c) + "\n")
    import os
    os.replace(a.out + ".tmp", a.out)


def sse(a):
    import os
    import sys
    import time
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gen_sse64 import generate_sse64
    t0 = time.time()
    r = generate_sse64(a.seed, a.count, a.out + ".tmp")
    os.replace(a.out + ".tmp", a.out)
    print("difftest64 --sse: seed=%d cases=%d steps=%d time=%.1fs -> %s"
          % (a.seed, r["cases"], r["steps"], time.time() - t0, a.out), file=sys.stderr)
    if not a.quiet:
        items = sorted(r["hist"].items(), key=lambda kv: (-kv[1], kv[0]))
        for i in range(0, len(items), 6):
            print("  " + "".join("%-10s%6d  " % kv for kv in items[i:i + 6]), file=sys.stderr)


if __name__ == "__main__":
    main()
