#!/usr/bin/env python3
"""Differential-test case generator for Leap's CPU, using the Unicorn engine.

Builds short random i686 integer instruction streams, runs them on Unicorn
and writes the CPU state after every instruction as JSON Lines (one test case
per line).  The Rust side replays each case on Leap's CPU and compares.

Generation is "online": every instruction is chosen knowing the real CPU
state (taken from Unicorn after the previous instruction), so memory operands
always land in the data region, the stack stays inside the stack region,
DIV/IDIV never fault and branch outcomes are known in advance.  Each
instruction is single-stepped (emu_start count=1) and the state read after
emu_start returns is what is written.  The finished stream is then run again
from the initial state, in one emu_start on a Unicorn instance without hooks;
its final registers and memory must agree, or the case is dropped.  A
reference model written from the Intel SDM checks the defined results.

See README.md beside this file for the format and unicorn_deviations.md for the
places where Unicorn is known to differ from the manuals.
"""

import argparse
import ctypes
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter

import iced_x86 as iced
from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_16, UC_MODE_32
from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn import x86_const as X

try:  # raw batched register read: one C call instead of ten Python ones
    from unicorn.unicorn_py3.unicorn import uclib as _uclib
except Exception:  # pragma: no cover - older/newer binding layout
    _uclib = None

# --------------------------------------------------------------------------
# Layout and constants
# --------------------------------------------------------------------------

CODE_ADDR = 0x1000          # code page 0x1000-0x1fff
CODE_SOFT_LIMIT = 0xB00     # stop adding instructions past this many code bytes
DATA_ADDR = 0x2000          # data region (memory operands, string ops, xlat)
DATA_SIZE = 0x100
DATA_END = DATA_ADDR + DATA_SIZE
STACK_ADDR = 0x3000         # stack region
STACK_SIZE = 0x100
STACK_END = STACK_ADDR + STACK_SIZE
MAP_ADDR, MAP_SIZE = 0x1000, 0x3000   # what Unicorn maps (pages); accesses
STOP_ADDR = 0x1FFF          # are checked against DATA/STACK by a hook

CF, PF, AF, ZF, SF, TF, IF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800
ARITH = CF | PF | AF | ZF | SF | OF
REPORT_MASK = ARITH | TF | IF | DF | 0x2   # bits 0-11 that matter, bit 1 always set

REG32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi']
REG16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di']
REG8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh']
EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI = range(8)
M32 = 0xFFFFFFFF
SEG_PREFIXES = [0x26, 0x36, 0x3E, 0x64, 0x65]     # es ss ds fs gs (never cs)

UC_REGS = [X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
           X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI,
           X.UC_X86_REG_EIP, X.UC_X86_REG_EFLAGS]

SPECIAL = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
           0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x80000001, 0x99, 0x09]

# Places where Unicorn (QEMU's TCG x86 front end, as shipped in the unicorn
# PyPI package) was observed to differ from the Intel/AMD manuals.  Each entry
# says what the generator does about it.  Mirrors unicorn_deviations.md.
DEVIATIONS = {
    'enter-frame-pointer-width': {
        'insn': 'ENTER imm16, imm8 with an operand size different from the stack size '
                '(66 C8 in 32-bit mode; 66 C8 in real mode)',
        'manual': 'Intel SDM Vol. 2A, ENTER, Operation: "IF OperandSize = 32 THEN ... EBP <- FrameTemp '
                  'ELSE (* OperandSize = 16 *) BP <- FrameTemp[15:0]"; 80386 PRM, ENTER: '
                  '"IF OperandSize = 16 THEN BP := frame-ptr ELSE EBP := frame-ptr"',
        'unicorn': 'writes the frame pointer with the stack size: 16-bit ENTER on a 32-bit stack sets all of '
                   'EBP (EBP[31:16] <- ESP[31:16]); 32-bit ENTER on a 16-bit stack sets only BP '
                   '(EBP[31:16] kept)',
        'reason': 'QEMU gen_enter() stores EBP with the stack address size (a_ot) rather than the operand size',
        'generator': 'mixed-size ENTER is generated only when EBP[31:16] == ESP[31:16] (both rules agree); '
                     'otherwise ENTER uses the default operand size',
    },
    'loopcc-block-flags': {
        'insn': 'LOOPE/LOOPNE (E1/E0) when the decremented count reaches 0, executed in the same translated '
                'block as an earlier flag-setting instruction',
        'manual': 'Intel SDM Vol. 2A, LOOP/LOOPcc, "Flags Affected: None"',
        'unicorn': 'EFLAGS after the instruction are garbage (e.g. ADD EAX,EBX; LOOPE with ECX=1 sets CF). '
                   'Not seen when the instruction starts its own block (single-stepping, as here)',
        'reason': 'QEMU 5 translate.c: loopz/loopnz branch to the exit when ECX becomes 0 before '
                  'gen_jcc1() stores the lazy cc_op, so the stale cc_op is used afterwards (later QEMU '
                  'calls gen_update_cc_op() first)',
        'generator': 'none needed: every step is recorded with count=1 single-stepping, where it does not '
                     'occur; the block-mode cross-check drops such cases (counted as a known deviation)',
    },
}

# Unicorn engine behaviour (not ISA deviations) that the generator works around.
ENGINE_QUIRKS = {
    'stale-tb-after-write': 'uc.mem_write() does not drop translated blocks that already cover the bytes '
                            '(e.g. int3 padding translated after a jump): ctl_remove_cache() after each write',
    'stale-tb-after-exception': 'after a CPU exception the next emu_start may run an old block for '
                                'rewritten code: ctl_flush_tb() at the start of every case',
    'eflags-in-code-hook': 'EFLAGS read inside UC_HOOK_CODE can be stale (lazy flags not yet stored): '
                           'states are read only after emu_start returns',
    'code-and-mem-hook-flags': 'with a code hook and a memory hook both installed, flags computed inside a '
                               'block can be wrong (e.g. PUSHF pushing stale flags): the cross-check run '
                               'uses an instance with no hooks',
}


class Drop(Exception):
    """The case cannot be completed as generated: discard it, make another."""


class Skip(Exception):
    """This instruction family cannot be generated in the current state."""


class Bug(Exception):
    """The generator's own prediction was wrong (a bug here, or in Unicorn)."""


def sx(v, s):
    v &= (1 << s) - 1
    return v - (1 << s) if v >> (s - 1) else v


def le(v, n):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, 'little')


def parity(v):
    return PF if bin(v & 0xFF).count('1') % 2 == 0 else 0


def szp(r, s):
    r &= (1 << s) - 1
    return (ZF if r == 0 else 0) | (SF if (r >> (s - 1)) & 1 else 0) | parity(r)


def msb(v, s):
    return (v >> (s - 1)) & 1


def cond_true(cc, fl):
    """Jcc/SETcc/CMOVcc condition cc (0-15) against EFLAGS value fl."""
    c, z, s, o, p = bool(fl & CF), bool(fl & ZF), bool(fl & SF), bool(fl & OF), bool(fl & PF)
    base = [o, c, z, c or z, s, p, s != o, z or (s != o)][cc >> 1]
    return base != bool(cc & 1)


# --------------------------------------------------------------------------
# Reference model ("oracle") written from the Intel SDM Vol. 2 instruction
# pages.  Used to find where Unicorn differs from the manuals on *defined*
# results.  Each function returns (outputs, eflags): outputs is a list of
# (location, value); eflags is the full expected value (bits that the
# instruction leaves undefined are ignored by the comparison).
# --------------------------------------------------------------------------

def o_alu(op, s, a, b, fin, dst):
    m = (1 << s) - 1
    c = 1 if fin & CF else 0
    f = 0
    if op in ('add', 'adc', 'xadd'):
        r = a + b + (c if op == 'adc' else 0)
        f = szp(r, s) | (CF if r > m else 0) | (AF if (a ^ b ^ r) & 0x10 else 0)
        f |= OF if msb(~(a ^ b) & (a ^ r), s) else 0
    elif op in ('sub', 'sbb', 'cmp', 'neg', 'cmpxchg'):
        r = a - b - (c if op == 'sbb' else 0)
        f = szp(r, s) | (CF if r < 0 else 0) | (AF if (a ^ b ^ r) & 0x10 else 0)
        f |= OF if msb((a ^ b) & (a ^ r), s) else 0
    elif op in ('and', 'test'):
        r = a & b
        f = szp(r, s)
    elif op == 'or':
        r = a | b
        f = szp(r, s)
    elif op == 'xor':
        r = a ^ b
        f = szp(r, s)
    elif op in ('inc', 'dec'):
        b = 1
        r = a + 1 if op == 'inc' else a - 1
        f = szp(r, s) | (AF if (a ^ b ^ r) & 0x10 else 0) | (fin & CF)
        if op == 'inc':
            f |= OF if msb(~(a ^ b) & (a ^ r), s) else 0
        else:
            f |= OF if msb((a ^ b) & (a ^ r), s) else 0
    else:
        raise ValueError(op)
    outs = [(dst, r & m)] if dst is not None else []
    return outs, (fin & ~ARITH) | f


def o_shift(op, s, a, cnt, fin, dst):
    """Shifts and rotates; cnt is the raw count (imm8 or CL)."""
    m = (1 << s) - 1
    c = cnt & 0x1F
    if c == 0:
        return [(dst, a)], fin
    f = fin
    cin = 1 if fin & CF else 0
    if op in ('shl', 'sal'):
        r = (a << c) & m
        cf = (a >> (s - c)) & 1 if c <= s else 0
        f = (f & ~ARITH) | szp(r, s) | (CF if cf else 0)
        if c == 1 and msb(r, s) != cf:
            f |= OF
    elif op == 'shr':
        r = a >> c
        cf = (a >> (c - 1)) & 1
        f = (f & ~ARITH) | szp(r, s) | (CF if cf else 0)
        if c == 1 and msb(a, s):
            f |= OF
    elif op == 'sar':
        sa = sx(a, s)
        r = (sa >> c) & m
        cf = (sa >> (c - 1)) & 1
        f = (f & ~ARITH) | szp(r, s) | (CF if cf else 0)
    elif op in ('rol', 'ror'):
        t = c % s
        if op == 'rol':
            r = ((a << t) | (a >> (s - t))) & m if t else a
            cf = r & 1
            of = msb(r, s) ^ cf
        else:
            r = ((a >> t) | (a << (s - t))) & m if t else a
            cf = msb(r, s)
            of = msb(r, s) ^ ((r >> (s - 2)) & 1)
        f = (f & ~(CF | OF)) | (CF if cf else 0) | (OF if (c == 1 and of) else 0)
    elif op in ('rcl', 'rcr'):
        t = c % (s + 1) if s < 32 else c
        v = (cin << s) | a            # s+1 bit quantity, CF on top
        w = s + 1
        if op == 'rcl':
            v = ((v << t) | (v >> (w - t))) & ((1 << w) - 1) if t else v
        else:
            v = ((v >> t) | (v << (w - t))) & ((1 << w) - 1) if t else v
        r = v & m
        cf = v >> s
        if op == 'rcl':
            of = msb(r, s) ^ cf
        else:
            of = msb(a, s) ^ cin
        f = (f & ~(CF | OF)) | (CF if cf else 0) | (OF if (c == 1 and of) else 0)
    else:
        raise ValueError(op)
    return [(dst, r)], f


def o_shxd(op, s, a, b, cnt, fin, dst):
    m = (1 << s) - 1
    c = cnt & 0x1F
    if c == 0:
        return [(dst, a)], fin
    if op == 'shld':
        r = ((a << c) | (b >> (s - c))) & m
        cf = (a >> (s - c)) & 1
    else:
        r = ((a >> c) | (b << (s - c))) & m
        cf = (a >> (c - 1)) & 1
    f = (fin & ~ARITH) | szp(r, s) | (CF if cf else 0)
    if c == 1 and msb(r, s) != msb(a, s):
        f |= OF
    return [(dst, r)], f


def o_muldiv(op, s, acc, b, fin):
    """acc = the implicit dividend / multiplicand (AX, DX:AX, EDX:EAX or AL..)."""
    m = (1 << s) - 1
    if s == 8:
        lo_loc, hi_loc = ('r', EAX, 8), ('r', 4, 8)      # AL, AH
    else:
        lo_loc, hi_loc = ('r', EAX, s), ('r', EDX, s)
    if op in ('mul', 'imul'):
        a = acc & m
        p = (sx(a, s) * sx(b, s)) if op == 'imul' else a * b
        lo, hi = p & m, (p >> s) & m
        if op == 'imul':
            ovf = p != sx(lo, s)
        else:
            ovf = hi != 0
        f = (fin & ~(CF | OF)) | ((CF | OF) if ovf else 0)
        return [(lo_loc, lo), (hi_loc, hi)], f
    if op == 'div':
        q, r = acc // b, acc % b
    else:
        n, d = sx(acc, 2 * s), sx(b, s)
        q = abs(n) // abs(d)
        if (n < 0) != (d < 0):
            q = -q
        r = n - q * d
    return [(lo_loc, q & m), (hi_loc, r & m)], fin


def o_imul2(s, a, b, fin, dst):
    m = (1 << s) - 1
    p = sx(a, s) * sx(b, s)
    r = p & m
    ovf = p != sx(r, s)
    return [(dst, r)], (fin & ~(CF | OF)) | ((CF | OF) if ovf else 0)


def o_bcd(op, ax, fin, imm):
    al, ah = ax & 0xFF, (ax >> 8) & 0xFF
    cf, af = bool(fin & CF), bool(fin & AF)
    f = fin
    if op == 'daa':
        old_al, old_cf = al, cf
        cf = False
        if (al & 0xF) > 9 or af:
            cf = old_cf or (al + 6 > 0xFF)
            al = (al + 6) & 0xFF
            af = True
        else:
            af = False
        if old_al > 0x99 or old_cf:
            al = (al + 0x60) & 0xFF
            cf = True
        else:
            cf = False
        f = (f & ~(CF | AF | SF | ZF | PF)) | szp(al, 8) | (CF if cf else 0) | (AF if af else 0)
        return [(('r', EAX, 8), al)], f
    if op == 'das':
        old_al, old_cf = al, cf
        cf = False
        if (al & 0xF) > 9 or af:
            cf = old_cf or (al < 6)
            al = (al - 6) & 0xFF
            af = True
        else:
            af = False
        if old_al > 0x99 or old_cf:
            al = (al - 0x60) & 0xFF
            cf = True
        f = (f & ~(CF | AF | SF | ZF | PF)) | szp(al, 8) | (CF if cf else 0) | (AF if af else 0)
        return [(('r', EAX, 8), al)], f
    if op in ('aaa', 'aas'):
        if (al & 0xF) > 9 or af:
            if op == 'aaa':
                axv = (ax + 0x106) & 0xFFFF
            else:
                axv = (ax - 6) & 0xFFFF
                axv = (axv - 0x100) & 0xFFFF
            axv &= 0xFF0F
            f = f | AF | CF
        else:
            axv = ax & 0xFF0F
            f = f & ~(AF | CF)
        return [(('r', EAX, 16), axv)], f
    if op == 'aam':
        ah, al = al // imm, al % imm
        f = (f & ~(SF | ZF | PF)) | szp(al, 8)
        return [(('r', EAX, 16), (ah << 8) | al)], f
    if op == 'aad':
        al = (al + ah * imm) & 0xFF
        f = (f & ~(SF | ZF | PF)) | szp(al, 8)
        return [(('r', EAX, 16), al)], f
    raise ValueError(op)


def o_bt(op, s, val, bit, fin, dst):
    cf = (val >> bit) & 1
    f = (fin & ~CF) | (CF if cf else 0)
    if op == 'bt':
        return [], f
    if op == 'bts':
        r = val | (1 << bit)
    elif op == 'btr':
        r = val & ~(1 << bit)
    else:
        r = val ^ (1 << bit)
    return [(dst, r & ((1 << s) - 1))], f


def o_bsx(op, s, src, fin, dst):
    if src == 0:
        return [], fin | ZF
    if op == 'bsf':
        r = (src & -src).bit_length() - 1
    else:
        r = src.bit_length() - 1
    return [(dst, r)], fin & ~ZF


def o_set(outs, fl):
    """Plain data movement: expected outputs given directly, flags unchanged."""
    return outs, fl


def o_setcc(cc, fin, dst):
    return [(dst, 1 if cond_true(cc, fin) else 0)], fin


def o_cmov(cc, s, old, src, fin, dst):
    return [(dst, src if cond_true(cc, fin) else old)], fin


def o_sahf(ah, fin):
    return [], (fin & ~(SF | ZF | AF | PF | CF)) | (ah & (SF | ZF | AF | PF | CF))


def o_popf(v, s, fin):
    m = 0xFFFF if s == 16 else M32
    keep = fin & ~m
    return [], keep | (v & m & (ARITH | DF | TF | IF)) | 2


# --------------------------------------------------------------------------
# Unicorn wrapper
# --------------------------------------------------------------------------

class Emu:
    def __init__(self, bits):
        self.bits = bits
        self.uc = Uc(UC_ARCH_X86, UC_MODE_16 if bits == 16 else UC_MODE_32)
        self.uc.mem_map(MAP_ADDR, MAP_SIZE)
        if bits == 16:
            for r in (X.UC_X86_REG_CS, X.UC_X86_REG_DS, X.UC_X86_REG_ES,
                      X.UC_X86_REG_SS, X.UC_X86_REG_FS, X.UC_X86_REG_GS):
                self.uc.reg_write(r, 0)
        n = len(UC_REGS)
        self._ids = (ctypes.c_int * n)(*UC_REGS)
        self._vals = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])
        self.bad = None
        self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._memhook)

    def _memhook(self, uc, access, addr, size, value, ud):
        end = addr + size
        if not ((DATA_ADDR <= addr and end <= DATA_END) or (STACK_ADDR <= addr and end <= STACK_END)):
            self.bad = (access, addr, size)

    def state(self):
        """[eax..edi, eip, eflags] as Python ints."""
        if _uclib is not None:
            for i in range(len(UC_REGS)):
                self._vals[i] = 0
            _uclib.uc_reg_read_batch(self.uc._uch, self._ids, self._ptrs, len(UC_REGS))
            v = list(self._vals)
        else:
            v = [self.uc.reg_read(r) for r in UC_REGS]
        return [x & M32 for x in v]

    def load(self, regs, eflags, mem):
        for i in range(8):
            self.uc.reg_write(UC_REGS[i], regs[i])
        self.uc.reg_write(X.UC_X86_REG_EFLAGS, eflags)
        for addr, data in mem:
            self.uc.mem_write(addr, bytes(data))

    def read(self, addr, n):
        return bytes(self.uc.mem_read(addr, n))

    def run(self, begin, until, count=0):
        self.bad = None
        try:
            self.uc.emu_start(begin, until, count=count)
        except UcError as e:
            raise Drop('unicorn: %s at %#x' % (e, self.uc.reg_read(X.UC_X86_REG_EIP)))
        if self.bad is not None:
            raise Drop('access outside regions: %r' % (self.bad,))


# --------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------

class Mem:
    """A memory operand: ModRM/SIB/displacement plus its address size."""
    __slots__ = ('asz', 'seg', 'mod', 'rm', 'sib', 'disp', 'addr')

    def __init__(self, asz, mod, rm, sib, disp, addr, seg=None):
        self.asz, self.mod, self.rm, self.sib, self.disp, self.addr, self.seg = \
            asz, mod, rm, sib, disp, addr, seg

    def encode(self, reg):
        return bytes([(self.mod << 6) | (reg << 3) | self.rm]) + self.sib + self.disp


class Insn:
    __slots__ = ('b', 'undef', 'uregs', 'chk', 'rep', 'fam')

    def __init__(self, b, fam, undef=0, uregs=(), chk=None, rep=False):
        self.b, self.fam, self.undef, self.uregs, self.chk, self.rep = b, fam, undef, list(uregs), chk, rep


class Pending:
    """A not-taken branch whose displacement is patched later to a forward boundary."""
    __slots__ = ('pos', 'size', 'next', 'window')

    def __init__(self, pos, size, nxt, window):
        self.pos, self.size, self.next, self.window = pos, size, nxt, window


class Frame:
    """An open CALL: body being generated, closed by RET then a jump over the body."""
    __slots__ = ('floor', 'osz', 'args', 'cont_pos', 'cont_len', 'cont_short')

    def __init__(self, floor, osz, args, cont_pos, cont_len, cont_short):
        self.floor, self.osz, self.args = floor, osz, args
        self.cont_pos, self.cont_len, self.cont_short = cont_pos, cont_len, cont_short


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------

class Gen:
    def __init__(self, bits, seed, check=True):
        self.bits = bits
        self.rng = random.Random('leap-difftest-%d-%d' % (bits, seed))
        self.emu = Emu(bits)
        self.pure = Uc(UC_ARCH_X86, UC_MODE_16 if bits == 16 else UC_MODE_32)
        self.pure.mem_map(MAP_ADDR, MAP_SIZE)
        if bits == 16:
            for r in (X.UC_X86_REG_CS, X.UC_X86_REG_DS, X.UC_X86_REG_ES,
                      X.UC_X86_REG_SS, X.UC_X86_REG_FS, X.UC_X86_REG_GS):
                self.pure.reg_write(r, 0)
        self.check = check
        self.mismatch = Counter()
        self.checked = Counter()
        self.mismatch_samples = {}
        self.drops = Counter()
        self.fam_count = Counter()
        dec_fmt = iced.Formatter(iced.FormatterSyntax.INTEL)
        dec_fmt.space_after_operand_separator = True
        dec_fmt.hex_prefix = '0x'
        dec_fmt.hex_suffix = ''
        dec_fmt.uppercase_hex = False
        self.fmt = dec_fmt
        fams = [
            (self.g_alu, 16), (self.g_test, 3), (self.g_incdec, 4), (self.g_negnot, 3),
            (self.g_mov, 7), (self.g_movx, 3), (self.g_lea, 3), (self.g_xchg, 2),
            (self.g_cmpxchg, 2), (self.g_xadd, 2), (self.g_bswap, 1),
            (self.g_shift, 12), (self.g_shxd, 4), (self.g_muldiv, 7), (self.g_bcd, 4),
            (self.g_bt, 4), (self.g_bsx, 3), (self.g_setcc, 3), (self.g_cmov, 3),
            (self.g_jcc, 5), (self.g_jmp, 2), (self.g_loop, 2), (self.g_call, 2),
            (self.g_ret, 3), (self.g_pushret, 1), (self.g_jmpind, 1),
            (self.g_push, 4), (self.g_pop, 3), (self.g_pusha, 1), (self.g_pushf, 1),
            (self.g_popf, 2), (self.g_lahf, 2), (self.g_cbw, 2), (self.g_flagop, 2),
            (self.g_string, 7), (self.g_xlat, 1), (self.g_enter, 1), (self.g_leave, 1),
            (self.g_nop, 1),
        ]
        self.fam_funcs = [f for f, _ in fams]
        self.fam_weights = []
        acc = 0
        for _, w in fams:
            acc += w
            self.fam_weights.append(acc)

    # ---- random values ----------------------------------------------------
    def rval(self, s):
        r = self.rng.random()
        if r < 0.25:
            v = self.rng.choice(SPECIAL)
        elif r < 0.45:
            v = self.rng.randint(0, 16)
        elif r < 0.55:
            v = -self.rng.randint(1, 16)
        else:
            v = self.rng.getrandbits(s)
        return v & ((1 << s) - 1)

    def osize(self, byte=True):
        r = self.rng.random()
        if byte and r < 0.3:
            return 8
        other = 48 - self.bits
        return other if self.rng.random() < 0.3 else self.bits

    def wreg(self, s):
        """A register that may be written (never ESP/SP)."""
        if s == 8:
            return self.rng.randrange(8)
        return self.rng.choice((0, 1, 2, 3, 5, 6, 7))

    def anyreg(self, s):
        return self.rng.randrange(8)

    def getr(self, i, s):
        if s == 8:
            return self.R[i] & 0xFF if i < 4 else (self.R[i - 4] >> 8) & 0xFF
        return self.R[i] & ((1 << s) - 1)

    def sp(self):
        return self.R[ESP] & (0xFFFF if self.bits == 16 else M32)

    def memval(self, addr, nbytes):
        return int.from_bytes(self.emu.read(addr, nbytes), 'little')

    def val(self, opnd, s):
        if isinstance(opnd, Mem):
            return self.memval(opnd.addr, s // 8)
        return self.getr(opnd, s)

    def loc(self, opnd, s):
        if isinstance(opnd, Mem):
            return ('m', opnd.addr, s)
        return ('r', opnd, s)

    def imm(self, s):
        v = self.rval(s)
        return v, le(v, s // 8)

    # ---- memory operands ----------------------------------------------------
    def mem(self, w, target=None, asz=None, no_esp_base=False, seg=True):
        """Memory operand of w bytes inside the data region (or at `target`)."""
        rng = self.rng
        if asz is None:
            asz = self.bits if rng.random() < 0.75 else 48 - self.bits
        lo, hi = DATA_ADDR, DATA_END - w
        sp = rng.choice(SEG_PREFIXES) if (seg and rng.random() < 0.1) else None
        if asz == 32:
            m = self._mem32(lo, hi, target, no_esp_base)
        else:
            m = self._mem16(lo, hi, target)
        m.seg = sp
        return m

    def _mem32(self, lo, hi, target, no_esp_base):
        rng, R = self.rng, self.R
        bases = [i for i in range(8) if not (no_esp_base and i == ESP)]
        if target is None:
            near = [i for i in bases if lo - 127 <= R[i] <= hi + 128]
            if near and rng.random() < 0.6:
                b = rng.choice(near)
                tlo, thi = max(lo, R[b] - 128), min(hi, R[b] + 127)
                if tlo <= thi:
                    t = R[b] if (tlo <= R[b] <= thi and rng.random() < 0.4) else rng.randint(tlo, thi)
                    idx = None
                    if rng.random() < 0.2:
                        zero = [i for i in range(8) if i != ESP and R[i] == 0]
                        if zero:
                            idx = rng.choice(zero)
                    return self._enc32(b, idx, rng.randrange(4), t)
            target = rng.randint(lo, hi)
        r = rng.random()
        if r < 0.1:
            return self._enc32(None, None, 0, target)
        base = rng.choice(bases) if r > 0.2 else None
        idx = rng.choice((0, 1, 2, 3, 5, 6, 7)) if rng.random() < 0.4 or base is None else None
        return self._enc32(base, idx, rng.randrange(4) if idx is not None else 0, target)

    def _enc32(self, base, idx, scale, target):
        rng, R = self.rng, self.R
        s = (R[base] if base is not None else 0) + ((R[idx] << scale) if idx is not None else 0)
        d = (target - s) & M32
        sd = sx(d, 32)
        if base is None:
            if idx is None:
                return Mem(32, 0, 5, b'', le(d, 4), target)
            return Mem(32, 0, 4, bytes([(scale << 6) | (idx << 3) | 5]), le(d, 4), target)
        if d == 0 and base != EBP and rng.random() < 0.8:
            mod, disp = 0, b''
        elif -128 <= sd <= 127 and rng.random() < 0.9:
            mod, disp = 1, le(d, 1)
        else:
            mod, disp = 2, le(d, 4)
        if idx is not None or base == ESP or rng.random() < 0.05:
            i = idx if idx is not None else 4
            return Mem(32, mod, 4, bytes([(scale << 6) | (i << 3) | base]), disp, target)
        return Mem(32, mod, base, b'', disp, target)

    RM16 = {0: (EBX, ESI), 1: (EBX, EDI), 2: (EBP, ESI), 3: (EBP, EDI),
            4: (ESI,), 5: (EDI,), 6: (EBP,), 7: (EBX,)}

    def _mem16(self, lo, hi, target):
        rng, R = self.rng, self.R
        sums = {rm: sum(R[i] & 0xFFFF for i in regs) & 0xFFFF for rm, regs in self.RM16.items()}
        if target is None:
            near = [rm for rm, s in sums.items() if lo - 127 <= s <= hi + 128]
            if near and rng.random() < 0.6:
                rm = rng.choice(near)
                s = sums[rm]
                tlo, thi = max(lo, s - 128), min(hi, s + 127)
                if tlo <= thi:
                    t = s if (tlo <= s <= thi and rng.random() < 0.4) else rng.randint(tlo, thi)
                    return self._enc16(rm, t, sums)
            target = rng.randint(lo, hi)
        if rng.random() < 0.1:
            return Mem(16, 0, 6, b'', le(target, 2), target)
        return self._enc16(rng.randrange(8), target, sums)

    def _enc16(self, rm, target, sums):
        d = (target - sums[rm]) & 0xFFFF
        sd = sx(d, 16)
        if d == 0 and rm != 6 and self.rng.random() < 0.8:
            return Mem(16, 0, rm, b'', b'', target)
        if -128 <= sd <= 127 and self.rng.random() < 0.9:
            return Mem(16, 1, rm, b'', le(d, 1), target)
        return Mem(16, 2, rm, b'', le(d, 2), target)

    def any_mem(self):
        """Random addressing form with no access (LEA, NOP r/m)."""
        rng = self.rng
        asz = self.bits if rng.random() < 0.75 else 48 - self.bits
        if asz == 16:
            rm, mod = rng.randrange(8), rng.randrange(3)
            disp = {0: b'', 1: le(rng.getrandbits(8), 1), 2: le(self.rval(16), 2)}[mod]
            if mod == 0 and rm == 6:
                disp = le(self.rval(16), 2)
            return Mem(16, mod, rm, b'', disp, None)
        mod = rng.randrange(3)
        rm = rng.randrange(8)
        sib = b''
        if rm == 4:
            sib = bytes([rng.getrandbits(8)])
        disp = {0: b'', 1: le(rng.getrandbits(8), 1), 2: le(self.rval(32), 4)}[mod]
        if mod == 0 and (rm == 5 or (rm == 4 and sib[0] & 7 == 5)):
            disp = le(self.rval(32), 4)
        return Mem(32, mod, rm, sib, disp, None)

    def build(self, op, osz=None, rm=None, reg=0, imm=b'', rep=None, asz=None, seg=None):
        pf = []
        if osz is not None and osz != 8 and osz != self.bits:
            pf.append(0x66)
        modrm = b''
        if isinstance(rm, Mem):
            if rm.asz != self.bits:
                pf.append(0x67)
            if rm.seg is not None:
                pf.append(rm.seg)
            modrm = rm.encode(reg)
        elif rm is not None:
            modrm = bytes([0xC0 | (reg << 3) | rm])
        if asz is not None and asz != self.bits:
            pf.append(0x67)
        if seg is not None:
            pf.append(seg)
        if rep is not None:
            pf.append(rep)
        if len(pf) > 1:
            self.rng.shuffle(pf)
        return bytes(pf) + op + modrm + imm

    def rm_opnd(self, s, write=True, mem_p=0.4, **kw):
        if self.rng.random() < mem_p:
            return self.mem(s // 8, **kw)
        return self.wreg(s) if write else self.anyreg(s)

    # ---- setup instructions (executed as ordinary steps) ---------------------
    def mov_reg_imm(self, i, v, s):
        if s == 8:
            b = self.build(bytes([0xB0 + i]), 8, imm=le(v, 1))
        else:
            b = self.build(bytes([0xB8 + i]), s, imm=le(v, s // 8))
        return Insn(b, 'mov')

    def set_reg(self, i, v, s):
        self.step(self.mov_reg_imm(i, v, s))

    def set_mem(self, m, v, s):
        if s == 8:
            b = self.build(b'\xC6', 8, m, 0, le(v, 1))
        else:
            b = self.build(b'\xC7', s, m, 0, le(v, s // 8))
        self.step(Insn(b, 'mov'))

    # ---- layout / execution ----------------------------------------------------
    def place(self, b):
        L = len(b)
        keep = []
        for p in self.pending:
            if p.window <= 0 or (p.size == 1 and self.cur + L - p.next > 127):
                self.patch(p.pos, p.size, self.cur - p.next)
            else:
                p.window -= 1
                keep.append(p)
        self.pending = keep
        pos = self.cur
        self.code[pos:pos + L] = b
        self.cur += L
        return pos

    def patch(self, pos, size, disp):
        if size == 1 and not -128 <= disp <= 127:
            raise Bug('rel8 patch out of range')
        self.code[pos:pos + size] = le(disp, size)

    def step(self, ins, expect=None):
        pos = self.place(ins.b)
        self.exec_at(CODE_ADDR + pos, ins, expect)

    def exec_at(self, addr, ins, expect=None):
        self.emu.uc.mem_write(addr, ins.b)
        # mem_write alone does not drop translated blocks that already cover
        # these bytes (e.g. the int3 padding translated after a jump).
        self.emu.uc.ctl_remove_cache(addr, addr + len(ins.b))
        pre_R, pre_fl = self.R, self.fl
        n = 0
        while True:
            self.emu.run(addr, STOP_ADDR, count=1)
            st = self.emu.state()
            n += 1
            if not ins.rep or st[8] != addr:
                break
            if n > 64:
                raise Drop('rep did not finish')
        self.R, self.eip, self.fl = st[:8], st[8], st[9]
        nxt = (addr + len(ins.b)) if expect is None else expect
        if self.eip != nxt:
            raise Bug('eip %#x expected %#x after %s (%s)' % (self.eip, nxt, ins.b.hex(), ins.fam))
        self.steps.append((addr, ins, st))
        self.fam_count[ins.fam] += 1
        if self.check and ins.chk is not None:
            self.run_oracle(ins, pre_R, pre_fl)

    def run_oracle(self, ins, pre_R, pre_fl):
        fn, args, key = ins.chk
        self.checked[key] += 1
        outs, fexp = fn(*args)
        bad = []
        for lc, v in outs:
            if lc[0] == 'r':
                i, s = lc[1], lc[2]
                act = (self.R[i] & 0xFF) if (s == 8 and i < 4) else \
                      ((self.R[i - 4] >> 8) & 0xFF if s == 8 else self.R[i] & ((1 << s) - 1))
            else:
                act = self.memval(lc[1], lc[2] // 8)
            if act != v:
                bad.append('%s=%#x want %#x' % (lc, act, v))
        diff = (fexp ^ self.fl) & ARITH & ~ins.undef
        if diff:
            bad.append('flags %#x want %#x (diff %#x)' % (self.fl & ARITH, fexp & ARITH, diff))
        if bad:
            self.mismatch[key] += 1
            if self.mismatch[key] <= 3:
                self.mismatch_samples.setdefault(key, []).append(
                    '%s fin=%#x args=%s: %s' % (ins.b.hex(), pre_fl & ARITH,
                                                [hex(a) if isinstance(a, int) else a for a in args[1:]],
                                                '; '.join(bad)))

    # ---- branches --------------------------------------------------------------
    def filler(self, maxlen):
        """Valid instructions that are jumped over (never executed)."""
        rng = self.rng
        out = b''
        for _ in range(rng.randint(0, 4)):
            r = rng.random()
            s = self.bits
            if r < 0.15:
                b = b'\xCC'                       # int3: would trap if ever executed
            elif r < 0.4:
                b = bytes([rng.choice((0x01, 0x29, 0x31, 0x09, 0x21, 0x39)), 0xC0 | rng.getrandbits(6)])
            elif r < 0.6:
                b = bytes([0xB8 + rng.randrange(8)]) + le(self.rval(s), s // 8)
            elif r < 0.75:
                b = bytes([rng.choice((0x40, 0x48)) + rng.randrange(8)])
            elif r < 0.85:
                b = b'\x0F\x0B'                   # ud2
            else:
                b = bytes([0xC1, 0xE0 | rng.randrange(8), rng.randrange(32)])
            if len(out) + len(b) > maxlen:
                break
            out += b
        return out

    def filler_cap(self):
        return 16 if any(f.cont_short for f in self.frames) else 60

    def branch(self, prefix_op, dsize, taken, fam, chk=None):
        """Emit a relative branch; prefix_op = prefixes+opcode, dsize = disp bytes."""
        if taken:
            fill = self.filler(min(self.filler_cap(), 127 if dsize == 1 else 200))
            ins = Insn(prefix_op + le(len(fill), dsize), fam, chk=chk)
            pos = self.place(ins.b)
            tgt = CODE_ADDR + pos + len(ins.b) + len(fill)
            self.exec_at(CODE_ADDR + pos, ins, tgt)
            self.place(fill)
        else:
            ins = Insn(prefix_op + b'\x00' * dsize, fam, chk=chk)
            pos = self.place(ins.b)
            self.exec_at(CODE_ADDR + pos, ins)
            self.pending.append(Pending(pos + len(prefix_op), dsize, pos + len(ins.b),
                                        self.rng.randint(0, 4)))

    # ---- case driver -----------------------------------------------------------------
    def init_state(self):
        rng = self.rng
        R = [self.rval(32) for _ in range(8)]
        for i in rng.sample((EAX, ECX, EDX, EBX, EBP, ESI, EDI), rng.randint(1, 4)):
            p = rng.randint(DATA_ADDR, DATA_END - 1)
            if self.bits == 16 and rng.random() < 0.3:
                p |= rng.getrandbits(16) << 16      # upper half ignored by 16-bit addressing
            R[i] = p
        for i in rng.sample((ECX, EDX, EAX, EBX), rng.randint(0, 2)):
            R[i] = rng.randint(0, 8)
        R[ESP] = STACK_ADDR + rng.randint(0x60, 0xD0)
        if rng.random() < 0.8:
            R[ESP] &= ~(3 if self.bits == 32 else 1)
        fl = 0x2 | (rng.getrandbits(12) & ARITH) | (DF if rng.random() < 0.3 else 0)
        data = bytearray(rng.getrandbits(8) for _ in range(DATA_SIZE))
        for _ in range(8):       # sprinkle interesting values
            off = rng.randrange(DATA_SIZE - 4)
            data[off:off + 4] = le(rng.choice(SPECIAL), 4)
        stack = bytearray(rng.getrandbits(8) for _ in range(STACK_SIZE))
        return R, fl, data, stack

    def gen_case(self):
        rng = self.rng
        R, fl, data, stack = self.init_state()
        self.init = (list(R), fl, bytes(data), bytes(stack))
        self.emu.load(R, fl, [(DATA_ADDR, data), (STACK_ADDR, stack)])
        self.emu.uc.mem_write(CODE_ADDR, b'\xCC' * 0x1000)
        # Unicorn keeps stale translated blocks after a CPU exception even
        # when the code bytes are rewritten: start every case from a clean cache.
        self.emu.uc.ctl_flush_tb()
        self.R, self.fl, self.eip = list(R), fl, CODE_ADDR
        self.code = bytearray()
        self.cur = 0
        self.pending = []
        self.frames = []
        self.steps = []
        self.loopcc_hit = False
        n = rng.randint(1, 16) if rng.random() < 0.3 else rng.randint(8, 16)
        skips = 0
        while len(self.steps) < n and self.cur < CODE_SOFT_LIMIT and skips < 200:
            self.force_close()
            fam = rng.choices(self.fam_funcs, cum_weights=self.fam_weights)[0]
            try:
                ins = fam()
            except Skip:
                skips += 1
                continue
            if ins is not None:
                self.step(ins)
        while self.frames:
            self.close_frame()
        for p in self.pending:
            self.patch(p.pos, p.size, self.cur - p.next)
        self.pending = []
        return self.finish()

    def force_close(self):
        for k, f in enumerate(self.frames):
            if f.cont_short and self.cur - (f.cont_pos + f.cont_len) > 40:
                while len(self.frames) > k:
                    self.close_frame()
                return

    # ---- final run and JSON ------------------------------------------------------------
    def finish(self):
        R0, fl0, data0, stack0 = self.init
        code = bytes(self.code)
        end = CODE_ADDR + len(code)
        online_mem = (self.emu.read(DATA_ADDR, DATA_SIZE), self.emu.read(STACK_ADDR, STACK_SIZE))
        online_final = self.emu.state()
        # Second, independent run of the finished stream from the initial state
        # on a Unicorn instance with no hooks at all, in one emu_start (blocks
        # of several instructions, chained).  Its final registers and memory
        # must equal those of the single-step run; EFLAGS bits that some step
        # left undefined may differ.  Why not a code hook here: EFLAGS read in
        # a hook can be stale, and with a code hook *and* a memory hook
        # installed Unicorn sometimes computes wrong flags inside a block (see
        # README.md, "Unicorn engine quirks").
        pure = self.pure
        for i in range(8):
            pure.reg_write(UC_REGS[i], R0[i])
        pure.reg_write(X.UC_X86_REG_EFLAGS, fl0)
        pure.mem_write(DATA_ADDR, data0)
        pure.mem_write(STACK_ADDR, stack0)
        pure.mem_write(CODE_ADDR, code + b'\xCC' * (0x1000 - len(code)))
        pure.ctl_flush_tb()
        try:
            pure.emu_start(CODE_ADDR, end)
        except UcError as e:
            raise Drop('pure replay: %s' % e)
        final = [pure.reg_read(r) & M32 for r in UC_REGS]
        mem_final = (bytes(pure.mem_read(DATA_ADDR, DATA_SIZE)), bytes(pure.mem_read(STACK_ADDR, STACK_SIZE)))
        undef_any = 0
        for _, ins, _ in self.steps:
            undef_any |= ins.undef
        if mem_final != online_mem or final[:9] != online_final[:9] or \
                (final[9] ^ online_final[9]) & REPORT_MASK & ~undef_any:
            if self.loopcc_hit:
                # DEVIATIONS['loopcc-block-flags']: the single-step data is right,
                # but the block-mode replay cannot confirm it.
                raise Drop('replay differs after LOOPE/LOOPNE reached ECX=0 (known deviation)')
            raise Drop('replay final state differs: mem %s regs %s flags %#x/%#x' % (
                mem_final != online_mem, final[:9] != online_final[:9], online_final[9], final[9]))
        after = [st for _, _, st in self.steps]

        dec = iced.Decoder(self.bits, code, ip=CODE_ADDR)
        eipmask = 0xFFFF if self.bits == 16 else M32
        steps = []
        hist = []
        for (a, ins, _), st in zip(self.steps, after):
            dec.position = a - CODE_ADDR
            dec.ip = a
            d = dec.decode()
            if d.code == iced.Code.INVALID or d.len != len(ins.b):
                raise Bug('iced decodes %s as len %d (%s)' % (ins.b.hex(), d.len, ins.fam))
            asm = self.fmt.format(d)
            mn = self.fmt.format_mnemonic(d, iced.FormatMnemonicOptions.NONE)
            hist.append(mn)
            regs = {REG32[i]: st[i] for i in range(8)}
            regs['eip'] = st[8] & eipmask
            steps.append({'asm': asm, 'len': len(ins.b), 'regs': regs,
                          'eflags': (st[9] & REPORT_MASK) | 2, 'undef': ins.undef,
                          'undef_regs': ins.uregs})
        init = {REG32[i]: R0[i] for i in range(8)}
        init['eip'] = CODE_ADDR
        init['eflags'] = fl0
        if self.bits == 16:
            for s in ('cs', 'ds', 'es', 'ss', 'fs', 'gs'):
                init[s] = 0
        case = {'mode': self.bits, 'code_addr': CODE_ADDR, 'code': code.hex(), 'init': init,
                'mem': [{'addr': DATA_ADDR, 'data': data0.hex()},
                        {'addr': STACK_ADDR, 'data': stack0.hex()}],
                'steps': steps,
                'final_mem': [{'addr': DATA_ADDR, 'data': mem_final[0].hex()},
                              {'addr': STACK_ADDR, 'data': mem_final[1].hex()}]}
        return case, hist

    # ======================================================================
    # Instruction families.  Each returns an Insn to execute next, or emits
    # its own steps (setup instructions, branches) and returns None, or raises
    # Skip when the current state does not allow it.
    # ======================================================================

    ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp']

    def g_alu(self):
        rng = self.rng
        op = rng.randrange(8)
        name = self.ALU[op]
        s = self.osize()
        w = 0 if s == 8 else 1
        writes = name != 'cmp'
        undef = AF if name in ('and', 'or', 'xor') else 0
        r = rng.random()
        if r < 0.3:                                   # r/m, reg
            dst = self.rm_opnd(s, write=writes)
            src = self.anyreg(s)
            b = self.build(bytes([op * 8 + w]), s, dst, src)
            a, bv = self.val(dst, s), self.getr(src, s)
            form = 'rm,r'
        elif r < 0.5:                                 # reg, r/m
            dst = self.wreg(s) if writes else self.anyreg(s)
            src = self.rm_opnd(s, write=False)
            if rng.random() < 0.1 and not isinstance(src, Mem):
                src = dst
            b = self.build(bytes([op * 8 + 2 + w]), s, src, dst)
            a, bv = self.getr(dst, s), self.val(src, s)
            form = 'r,rm'
        elif r < 0.62:                                # AL/eAX, imm
            dst = EAX
            bv, ib = self.imm(s)
            b = self.build(bytes([op * 8 + 4 + w]), s, imm=ib)
            a = self.getr(EAX, s)
            form = 'acc,imm'
        else:                                         # group 1: 80/81/82/83
            dst = self.rm_opnd(s, write=writes)
            a = self.val(dst, s)
            if s == 8:
                opc = 0x82 if rng.random() < 0.2 else 0x80
                bv, ib = self.imm(8)
            elif rng.random() < 0.5:
                opc = 0x83
                i8 = rng.getrandbits(8)
                ib, bv = bytes([i8]), sx(i8, 8) & ((1 << s) - 1)
            else:
                opc = 0x81
                bv, ib = self.imm(s)
            b = self.build(bytes([opc]), s, dst, op, ib)
            form = '%02x' % opc
        dl = self.loc(dst, s) if writes else None
        key = '%s%d %s%s' % (name, s, form, ' mem' if isinstance(dst, Mem) else '')
        return Insn(b, name, undef, chk=(o_alu, (name, s, a, bv, self.fl, dl), key))

    def g_test(self):
        rng = self.rng
        s = self.osize()
        w = 0 if s == 8 else 1
        r = rng.random()
        if r < 0.4:
            dst = self.rm_opnd(s, write=False)
            src = self.anyreg(s)
            b = self.build(bytes([0x84 + w]), s, dst, src)
            a, bv = self.val(dst, s), self.getr(src, s)
        elif r < 0.6:
            bv, ib = self.imm(s)
            b = self.build(bytes([0xA8 + w]), s, imm=ib)
            a = self.getr(EAX, s)
        else:
            dst = self.rm_opnd(s, write=False)
            bv, ib = self.imm(s)
            b = self.build(bytes([0xF6 + w]), s, dst, 0, ib)
            a = self.val(dst, s)
        return Insn(b, 'test', AF, chk=(o_alu, ('test', s, a, bv, self.fl, None), 'test%d' % s))

    def g_incdec(self):
        rng = self.rng
        s = self.osize()
        dec = rng.random() < 0.5
        name = 'dec' if dec else 'inc'
        if s != 8 and rng.random() < 0.4:
            dst = self.wreg(s)
            b = self.build(bytes([(0x48 if dec else 0x40) + dst]), s)
        else:
            dst = self.rm_opnd(s)
            b = self.build(bytes([0xFE if s == 8 else 0xFF]), s, dst, 1 if dec else 0)
        a = self.val(dst, s)
        return Insn(b, name, chk=(o_alu, (name, s, a, 0, self.fl, self.loc(dst, s)), '%s%d' % (name, s)))

    def g_negnot(self):
        s = self.osize()
        dst = self.rm_opnd(s)
        neg = self.rng.random() < 0.6
        b = self.build(bytes([0xF6 if s == 8 else 0xF7]), s, dst, 3 if neg else 2)
        a = self.val(dst, s)
        if neg:
            return Insn(b, 'neg', chk=(o_alu, ('neg', s, 0, a, self.fl, self.loc(dst, s)), 'neg%d' % s))
        return Insn(b, 'not', chk=(lambda s, a, fin, d: ([(d, ~a & ((1 << s) - 1))], fin),
                                   (s, a, self.fl, self.loc(dst, s)), 'not%d' % s))

    def g_mov(self):
        rng = self.rng
        s = self.osize()
        w = 0 if s == 8 else 1
        r = rng.random()
        if r < 0.25:
            b = self.build(bytes([0x88 + w]), s, self.rm_opnd(s), self.anyreg(s))
        elif r < 0.5:
            b = self.build(bytes([0x8A + w]), s, self.rm_opnd(s, write=False), self.wreg(s))
        elif r < 0.65:
            v, ib = self.imm(s)
            b = self.build(bytes([(0xB0 if s == 8 else 0xB8) + self.wreg(s)]), s, imm=ib)
        elif r < 0.8:
            v, ib = self.imm(s)
            b = self.build(bytes([0xC6 + w]), s, self.rm_opnd(s), 0, ib)
        else:                                          # moffs forms A0-A3
            asz = self.bits if rng.random() < 0.75 else 48 - self.bits
            addr = rng.randint(DATA_ADDR, DATA_END - s // 8)
            seg = rng.choice(SEG_PREFIXES) if rng.random() < 0.15 else None
            store = rng.random() < 0.5
            b = self.build(bytes([(0xA2 if store else 0xA0) + w]), s, imm=le(addr, asz // 8),
                           asz=asz, seg=seg)
        return Insn(b, 'mov')

    def g_movx(self):
        rng = self.rng
        sx_ = rng.random() < 0.5
        if rng.random() < 0.5:
            ds, ss = self.osize(byte=False), 8
            src, dst = self.rm_opnd(8, write=False), self.wreg(ds)
            b = self.build(bytes([0x0F, 0xBE if sx_ else 0xB6]), ds, src, dst)
        else:
            ds, ss = 32, 16
            src, dst = self.rm_opnd(16, write=False), self.wreg(32)
            b = self.build(bytes([0x0F, 0xBF if sx_ else 0xB7]), 32, src, dst)
        v = self.val(src, ss)
        v = (sx(v, ss) & ((1 << ds) - 1)) if sx_ else v
        return Insn(b, 'movsx' if sx_ else 'movzx',
                    chk=(o_set, ([(('r', dst, ds), v)], self.fl), 'movx%d' % ds))

    def g_lea(self):
        s = self.osize(byte=False)
        return Insn(self.build(b'\x8D', s, self.any_mem(), self.wreg(s)), 'lea')

    def g_xchg(self):
        rng = self.rng
        s = self.osize()
        if s != 8 and rng.random() < 0.3:
            a, r = EAX, rng.choice((1, 2, 3, 5, 6, 7))
            b = self.build(bytes([0x90 + r]), s)
        else:
            a, r = self.rm_opnd(s), self.wreg(s)
            b = self.build(bytes([0x86 if s == 8 else 0x87]), s, a, r)
        la, lr = self.loc(a, s), ('r', r, s)
        outs = [] if la == lr else [(la, self.getr(r, s)), (lr, self.val(a, s))]
        return Insn(b, 'xchg', chk=(o_set, (outs, self.fl), 'xchg%d' % s))

    def g_cmpxchg(self):
        rng = self.rng
        s = self.osize()
        dst = self.rm_opnd(s)
        src = self.anyreg(s)
        if rng.random() < 0.4:                         # make the compare succeed
            dv = self.val(dst, s)
            self.set_reg(EAX, dv, s)
            if isinstance(dst, Mem):
                dst = self.mem(s // 8, target=dst.addr)
        a, dv, sv = self.getr(EAX, s), self.val(dst, s), self.getr(src, s)
        b = self.build(bytes([0x0F, 0xB0 if s == 8 else 0xB1]), s, dst, src)

        def o_cx(s, a, dv, sv, fin, dl):
            _, f = o_alu('cmp', s, a, dv, fin, None)
            if a == dv:
                return [(dl, sv)], f
            return [(('r', EAX, s), dv)], f
        return Insn(b, 'cmpxchg', chk=(o_cx, (s, a, dv, sv, self.fl, self.loc(dst, s)), 'cmpxchg%d' % s))

    def g_xadd(self):
        s = self.osize()
        dst = self.rm_opnd(s)
        src = self.wreg(s)
        a, bv = self.val(dst, s), self.getr(src, s)
        b = self.build(bytes([0x0F, 0xC0 if s == 8 else 0xC1]), s, dst, src)

        def o_xadd(s, a, bv, fin, dl, sl):
            outs, f = o_alu('add', s, a, bv, fin, dl)
            return ([(sl, a)] if sl != dl else []) + outs, f
        return Insn(b, 'xadd', chk=(o_xadd, (s, a, bv, self.fl, self.loc(dst, s), ('r', src, s)), 'xadd%d' % s))

    def g_bswap(self):
        r = self.wreg(32)
        v = int.from_bytes(le(self.R[r], 4), 'big')
        return Insn(self.build(bytes([0x0F, 0xC8 + r]), 32), 'bswap',
                    chk=(o_set, ([(('r', r, 32), v)], self.fl), 'bswap'))

    SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar']

    def count(self, s, wide=False):
        r = self.rng.random()
        if r < 0.12:
            return 0
        if r < 0.35:
            return 1
        if r < 0.75:
            return self.rng.randint(2, s)
        if wide and r < 0.85:
            return self.rng.randint(0, 255)
        return self.rng.randint(s, 40)

    def g_shift(self):
        rng = self.rng
        op = rng.choice((0, 1, 2, 3, 4, 5, 7))
        name = self.SHIFTS[op]
        s = self.osize()
        w = 0 if s == 8 else 1
        r = rng.random()
        if r < 0.3:
            cnt, form = 1, '1'
        elif r < 0.65:
            cnt, form = self.count(s, wide=True), 'imm'
        else:
            form = 'cl'
            if rng.random() < 0.7:
                self.set_reg(ECX, self.count(s), 8)
            cnt = self.R[ECX] & 0xFF
        dst = self.rm_opnd(s)
        a = self.val(dst, s)
        if form == '1':
            b = self.build(bytes([0xD0 + w]), s, dst, op)
        elif form == 'imm':
            b = self.build(bytes([0xC0 + w]), s, dst, op, bytes([cnt]))
        else:
            b = self.build(bytes([0xD2 + w]), s, dst, op)
        c = cnt & 0x1F
        undef = 0
        if c:
            if c != 1:
                undef |= OF
            if name in ('shl', 'shr', 'sar'):
                undef |= AF
                if name != 'sar' and c >= s:
                    undef |= CF
        key = '%s%d %s' % (name, s, form)
        return Insn(b, name, undef, chk=(o_shift, (name, s, a, cnt, self.fl, self.loc(dst, s)), key))

    def g_shxd(self):
        rng = self.rng
        s = self.osize(byte=False)
        left = rng.random() < 0.5
        name = 'shld' if left else 'shrd'
        use_cl = rng.random() < 0.5
        if use_cl:
            c = self.R[ECX] & 0xFF
            if rng.random() < 0.7 or (s == 16 and (c & 31) > 16):
                c = self.count(s)
                if s == 16 and (c & 31) > 16:
                    c = rng.choice((0, 1, 15, 16, 32, 33, 48))
                self.set_reg(ECX, c, 8)
            cnt = self.R[ECX] & 0xFF
        else:
            cnt = self.count(s, wide=True)
            if s == 16 and (cnt & 31) > 16:      # result undefined: not generated
                cnt = rng.choice((0, 1, 7, 15, 16, 32, 33, 48))
        dst = self.rm_opnd(s)
        src = self.anyreg(s)
        a, bv = self.val(dst, s), self.getr(src, s)
        op = (0xA4 if left else 0xAC) + (1 if use_cl else 0)
        b = self.build(bytes([0x0F, op]), s, dst, src, b'' if use_cl else bytes([cnt]))
        c = cnt & 0x1F
        undef = 0 if c == 0 else (AF | (OF if c != 1 else 0))
        key = '%s%d %s' % (name, s, 'cl' if use_cl else 'imm')
        return Insn(b, name, undef, chk=(o_shxd, (name, s, a, bv, cnt, self.fl, self.loc(dst, s)), key))

    def dividend(self, s):
        if s == 8:
            return self.R[EAX] & 0xFFFF
        m = (1 << s) - 1
        return ((self.R[EDX] & m) << s) | (self.R[EAX] & m)

    def div_ok(self, signed, s, d):
        if d == 0:
            return False
        n = self.dividend(s)
        if not signed:
            return n // d < (1 << s)
        n, d = sx(n, 2 * s), sx(d, s)
        q = abs(n) // abs(d)
        if (n < 0) != (d < 0):
            q = -q
        return -(1 << (s - 1)) <= q < (1 << (s - 1))

    def g_muldiv(self):
        rng = self.rng
        kind = rng.choice(('mul', 'imul', 'div', 'idiv', 'imul2', 'imul3', 'div', 'idiv'))
        if kind in ('imul2', 'imul3'):
            s = self.osize(byte=False)
            dst = self.wreg(s)
            src = self.rm_opnd(s, write=False)
            a = self.val(src, s)
            if kind == 'imul2':
                bv = self.getr(dst, s)
                b = self.build(b'\x0F\xAF', s, src, dst)
            elif rng.random() < 0.5:
                i8 = rng.getrandbits(8)
                bv = sx(i8, 8) & ((1 << s) - 1)
                b = self.build(b'\x6B', s, src, dst, bytes([i8]))
            else:
                bv, ib = self.imm(s)
                b = self.build(b'\x69', s, src, dst, ib)
            return Insn(b, 'imul', SF | ZF | AF | PF,
                        chk=(o_imul2, (s, a, bv, self.fl, ('r', dst, s)), '%s%d' % (kind, s)))
        s = self.osize()
        w = 0 if s == 8 else 1
        sub = {'mul': 4, 'imul': 5, 'div': 6, 'idiv': 7}[kind]
        if kind in ('mul', 'imul'):
            src = self.rm_opnd(s, write=False)
            b = self.build(bytes([0xF6 + w]), s, src, sub)
            return Insn(b, kind, SF | ZF | AF | PF,
                        chk=(o_muldiv, (kind, s, self.dividend(s), self.val(src, s), self.fl), '%s%d' % (kind, s)))
        signed = kind == 'idiv'
        if rng.random() < 0.4:
            src = self.mem(s // 8)
        else:
            src = rng.choice((0, 1, 2, 3, 5, 6, 7) if s == 8 else (0, 1, 3, 5, 6, 7))
            if s == 8 and src == 4:
                src = 1
        d = self.val(src, s)
        if d == 0 or (rng.random() < 0.3 and not isinstance(src, Mem) and src != EAX):
            nd = self.rval(s) or 3
            if isinstance(src, Mem):
                self.set_mem(src, nd, s)
            else:
                self.set_reg(src, nd, s)
            d = self.val(src, s)
        if not self.div_ok(signed, s, d):
            if signed:
                self.step(Insn(self.build(b'\x98' if s == 8 else b'\x99', 16 if s == 8 else s),
                               'cbw' if s == 8 else 'cwd'))
            else:
                hv = rng.randrange(d)
                self.set_reg(4 if s == 8 else EDX, hv, s)
            d = self.val(src, s)
            if not self.div_ok(signed, s, d):
                self.set_reg(EAX, rng.randint(0, 100), 8 if s == 8 else s)
                d = self.val(src, s)
                if not self.div_ok(signed, s, d):
                    raise Skip
        if isinstance(src, Mem):
            src = self.mem(s // 8, target=src.addr)
        b = self.build(bytes([0xF6 + w]), s, src, sub)
        return Insn(b, kind, ARITH, chk=(o_muldiv, (kind, s, self.dividend(s), d, self.fl), '%s%d' % (kind, s)))

    def g_bcd(self):
        rng = self.rng
        op = rng.choice(('daa', 'das', 'aaa', 'aas', 'aam', 'aad'))
        if rng.random() < 0.4:
            self.set_reg(EAX, rng.choice((rng.getrandbits(16), rng.randint(0, 0x9F),
                                          rng.choice((0x99, 0x9A, 0xF9, 0xFA, 0xFF, 0x0F, 0x00)))), 16)
        imm = None
        if op in ('daa', 'das', 'aaa', 'aas'):
            b = bytes([{'daa': 0x27, 'das': 0x2F, 'aaa': 0x37, 'aas': 0x3F}[op]])
            undef = OF if op in ('daa', 'das') else (OF | SF | ZF | PF)
        else:
            imm = 10 if rng.random() < 0.6 else rng.randint(1 if op == 'aam' else 0, 255)
            b = bytes([0xD4 if op == 'aam' else 0xD5, imm])
            undef = OF | AF | CF
        return Insn(b, op, undef, chk=(o_bcd, (op, self.R[EAX] & 0xFFFF, self.fl, imm), op))

    def g_bt(self):
        rng = self.rng
        s = self.osize(byte=False)
        k = rng.randrange(4)
        name = ('bt', 'bts', 'btr', 'btc')[k]
        undef = OF | SF | AF | PF
        if rng.random() < 0.4:                         # imm8 form 0F BA /4-7
            dst = self.rm_opnd(s, write=(k != 0))
            i8 = rng.getrandbits(8) if rng.random() < 0.3 else rng.randrange(s)
            b = self.build(b'\x0F\xBA', s, dst, 4 + k, bytes([i8]))
            val, bit, dl = self.val(dst, s), i8 & (s - 1), self.loc(dst, s)
            form = 'imm'
        else:
            off = self.anyreg(s) if k == 0 else self.rng.choice((0, 1, 2, 3, 4, 5, 6, 7))
            op = bytes([0x0F, (0xA3, 0xAB, 0xB3, 0xBB)[k]])
            if rng.random() < 0.5:                     # register destination
                dst = self.wreg(s) if k else self.anyreg(s)
                b = self.build(op, s, dst, off)
                val, bit, dl = self.getr(dst, s), self.getr(off, s) & (s - 1), ('r', dst, s)
                form = 'r,r'
            else:                                      # memory: bit string addressing
                ov = sx(self.getr(off, s), s)
                if not -256 <= ov < 512:
                    if off == ESP:
                        raise Skip
                    self.set_reg(off, rng.randint(-256, 511) & ((1 << s) - 1), s)
                    ov = sx(self.getr(off, s), s)
                delta = (ov >> (3 + (s // 16))) * (s // 8)
                actual = rng.randint(DATA_ADDR, DATA_END - s // 8)
                ea = actual - delta
                m = self.mem(s // 8, target=ea)
                b = self.build(op, s, m, off)
                val, bit, dl = self.memval(actual, s // 8), ov & (s - 1), ('m', actual, s)
                form = 'm,r'
        return Insn(b, name, undef, chk=(o_bt, (name, s, val, bit, self.fl, dl), '%s%d %s' % (name, s, form)))

    def g_bsx(self):
        rng = self.rng
        s = self.osize(byte=False)
        fwd = rng.random() < 0.5
        name = 'bsf' if fwd else 'bsr'
        dst = self.wreg(s)
        src = self.rm_opnd(s, write=False)
        if rng.random() < 0.25 and (isinstance(src, Mem) or src != ESP):
            if isinstance(src, Mem):
                self.set_mem(src, 0, s)
                src = self.mem(s // 8, target=src.addr)
            else:
                self.set_reg(src, 0, s)
        sv = self.val(src, s)
        b = self.build(bytes([0x0F, 0xBC if fwd else 0xBD]), s, src, dst)
        uregs = [REG32[dst]] if sv == 0 else []
        return Insn(b, name, CF | OF | SF | AF | PF, uregs,
                    chk=(o_bsx, (name, s, sv, self.fl, ('r', dst, s)), '%s%d%s' % (name, s, ' zero' if sv == 0 else '')))

    def g_setcc(self):
        cc = self.rng.randrange(16)
        dst = self.rm_opnd(8)
        return Insn(self.build(bytes([0x0F, 0x90 + cc]), 8, dst, 0), 'setcc',
                    chk=(o_setcc, (cc, self.fl, self.loc(dst, 8)), 'setcc'))

    def g_cmov(self):
        s = self.osize(byte=False)
        cc = self.rng.randrange(16)
        src, dst = self.rm_opnd(s, write=False), self.wreg(s)
        return Insn(self.build(bytes([0x0F, 0x40 + cc]), s, src, dst), 'cmovcc',
                    chk=(o_cmov, (cc, s, self.getr(dst, s), self.val(src, s), self.fl, ('r', dst, s)),
                         'cmov%d' % s))

    # ---- control flow ---------------------------------------------------------------
    def br_osz(self):
        return (48 - self.bits) if self.rng.random() < 0.08 else self.bits

    def g_jcc(self):
        rng = self.rng
        cc = rng.randrange(16)
        osz = self.br_osz()
        pf = b'\x66' if osz != self.bits else b''
        taken = cond_true(cc, self.fl)
        if rng.random() < 0.6:
            self.branch(pf + bytes([0x70 + cc]), 1, taken, 'jcc')
        else:
            self.branch(pf + bytes([0x0F, 0x80 + cc]), osz // 8, taken, 'jcc')

    def g_jmp(self):
        osz = self.br_osz()
        pf = b'\x66' if osz != self.bits else b''
        if self.rng.random() < 0.5:
            self.branch(pf + b'\xEB', 1, True, 'jmp')
        else:
            self.branch(pf + b'\xE9', osz // 8, True, 'jmp')

    def g_loop(self):
        rng = self.rng
        op = rng.randrange(4)                       # loopne loope loop jcxz
        asz = self.bits if rng.random() < 0.75 else 48 - self.bits
        cm = 0xFFFF if asz == 16 else M32
        if rng.random() < 0.5:
            self.set_reg(ECX, rng.choice((0, 1, 1, 2, 3, 0x10000, 0x10001)), 32 if rng.random() < 0.5 else 16)
        c = self.R[ECX] & cm
        z = bool(self.fl & ZF)
        if op == 3:
            taken = c == 0
        else:
            nc = (c - 1) & cm
            taken = nc != 0 and (op == 2 or (op == 1 and z) or (op == 0 and not z))
        pf = b'\x67' if asz != self.bits else b''
        if op < 2 and (c - 1) & cm == 0:
            self.loopcc_hit = True
        ecx = self.R[ECX] if op == 3 else (self.R[ECX] & ~cm & M32) | ((c - 1) & cm)
        name = ('loopne', 'loope', 'loop', 'jcxz')[op]
        self.branch(pf + bytes([0xE0 + op]), 1, taken, name,
                    chk=(o_set, ([(('r', ECX, 32), ecx)], self.fl), '%s a%d' % (name, asz)))

    def can_push(self, n):
        return self.sp() - n >= STACK_ADDR

    def floor(self):
        return self.frames[-1].floor if self.frames else STACK_END

    def can_pop(self, n):
        return self.sp() + n <= self.floor()

    def g_call(self):
        rng = self.rng
        if len(self.frames) >= 2 or self.cur > CODE_SOFT_LIMIT - 0x200:
            raise Skip
        osz = self.br_osz()
        sz = osz // 8
        nargs = rng.choice((0, 0, 1, 2))
        if not self.can_push(sz * (nargs + 1) + 24):
            raise Skip
        for _ in range(nargs):
            v, ib = self.imm(osz)
            self.step(Insn(self.build(b'\x68', osz, imm=ib), 'push'))
        short = rng.random() < 0.5
        cont = (b'\xEB\x00') if short else (b'\xE9' + b'\x00' * (self.bits // 8))
        pf = b'\x66' if osz != self.bits else b''
        r = rng.random()
        if r < 0.7:
            ins = Insn(pf + b'\xE8' + le(len(cont), sz), 'call')
        else:
            # indirect: target register / memory loaded by a setup MOV first
            if r < 0.85:
                reg = self.wreg(osz)
                setup_len = len(self.mov_reg_imm(reg, 0, osz).b)
                clen = len(self.build(b'\xFF', osz, reg, 2))
                tgt = CODE_ADDR + self.cur + setup_len + clen + len(cont)
                self.set_reg(reg, tgt, osz)
                ins = Insn(self.build(b'\xFF', osz, reg, 2), 'call')
            else:
                m = self.mem(sz)
                setup = self.build(b'\xC7', osz, m, 0, le(0, sz))
                m2 = m                     # registers unchanged by the store
                clen = len(self.build(b'\xFF', osz, m2, 2))
                tgt = CODE_ADDR + self.cur + len(setup) + clen + len(cont)
                self.set_mem(m, tgt, osz)
                ins = Insn(self.build(b'\xFF', osz, m2, 2), 'call')
                if len(ins.b) != clen:
                    raise Bug('call length changed')
        pos = self.place(ins.b)
        tgt = CODE_ADDR + pos + len(ins.b) + len(cont)
        self.exec_at(CODE_ADDR + pos, ins, tgt)
        cpos = self.place(cont)
        self.frames.append(Frame(self.sp(), osz, sz * nargs, cpos, len(cont), short))

    def g_ret(self):
        if not self.frames or self.rng.random() < 0.3:
            raise Skip
        self.close_frame()

    def close_frame(self):
        f = self.frames[-1]
        sp = self.sp()
        if sp < f.floor:
            n = f.floor - sp
            if self.bits == 32 and self.rng.random() < 0.5:
                b = self.build(b'\x8D', 32, Mem(32, 1 if n < 128 else 2, 4, b'\x24',
                                                le(n, 1 if n < 128 else 4), None), ESP)
                self.step(Insn(b, 'lea'))
            else:
                if n < 128:
                    b = self.build(b'\x83', self.bits, ESP, 0, le(n, 1))
                else:
                    b = self.build(b'\x81', self.bits, ESP, 0, le(n, self.bits // 8))
                self.step(Insn(b, 'add', chk=(o_alu, ('add', self.bits, self.getr(ESP, self.bits), n, self.fl,
                                                       ('r', ESP, self.bits)), 'add%d rsp' % self.bits)))
        self.frames.pop()
        if self.sp() != f.floor:
            raise Bug('frame not balanced')
        if f.args and self.rng.random() < 0.7:
            b = self.build(b'\xC2', f.osz, imm=le(f.args, 2))
        else:
            b = self.build(b'\xC3', f.osz)
        cont_addr = CODE_ADDR + f.cont_pos
        self.step(Insn(b, 'ret'), expect=cont_addr)
        disp = self.cur - (f.cont_pos + f.cont_len)
        if f.cont_short and disp > 127:
            raise Drop('continuation jump too far')
        dsz = f.cont_len - 1
        self.patch(f.cont_pos + 1, dsz, disp)
        cb = bytes(self.code[f.cont_pos:f.cont_pos + f.cont_len])
        self.exec_at(cont_addr, Insn(cb, 'jmp'), CODE_ADDR + self.cur)

    def g_pushret(self):
        """push target; ret [imm16]  -- a forward jump through the stack."""
        rng = self.rng
        osz = self.br_osz()
        sz = osz // 8
        if not self.can_push(sz):
            raise Skip
        room = self.floor() - self.sp()           # bytes poppable after the push
        extra = 0
        if rng.random() < 0.4 and room >= 2:
            extra = rng.randrange(0, min(room, 16) + 1) & ~1
        ret = self.build(b'\xC2', osz, imm=le(extra, 2)) if (extra or rng.random() < 0.2) else self.build(b'\xC3', osz)
        push_len = len(self.build(b'\x68', osz, imm=b'\x00' * sz))
        fill = self.filler(self.filler_cap())
        tgt = CODE_ADDR + self.cur + push_len + len(ret) + len(fill)
        self.step(Insn(self.build(b'\x68', osz, imm=le(tgt, sz)), 'push'))
        self.step(Insn(ret, 'ret'), expect=tgt)
        self.place(fill)

    def g_jmpind(self):
        rng = self.rng
        osz = self.br_osz()
        sz = osz // 8
        fill = self.filler(self.filler_cap())
        if rng.random() < 0.5:
            reg = self.wreg(osz)
            setup_len = len(self.mov_reg_imm(reg, 0, osz).b)
            jb = self.build(b'\xFF', osz, reg, 4)
            tgt = CODE_ADDR + self.cur + setup_len + len(jb) + len(fill)
            self.set_reg(reg, tgt, osz)
        else:
            m = self.mem(sz)
            setup = self.build(b'\xC7', osz, m, 0, le(0, sz))
            jb = self.build(b'\xFF', osz, m, 4)
            tgt = CODE_ADDR + self.cur + len(setup) + len(jb) + len(fill)
            self.set_mem(m, tgt, osz)
        self.step(Insn(jb, 'jmp'), expect=tgt)
        self.place(fill)

    # ---- stack ----------------------------------------------------------------------
    def g_push(self):
        rng = self.rng
        osz = self.osize(byte=False)
        sz = osz // 8
        if not self.can_push(sz):
            raise Skip
        r = rng.random()
        if r < 0.35:
            reg = self.anyreg(osz)
            b = self.build(bytes([0x50 + reg]), osz)
            v = self.getr(reg, osz)
        elif r < 0.6:
            src = self.rm_opnd(osz, write=False)
            b = self.build(b'\xFF', osz, src, 6)
            v = self.val(src, osz)
        elif r < 0.8:
            v, ib = self.imm(osz)
            b = self.build(b'\x68', osz, imm=ib)
        else:
            i8 = rng.getrandbits(8)
            b = self.build(b'\x6A', osz, imm=bytes([i8]))
            v = sx(i8, 8) & ((1 << osz) - 1)
        nsp = self.sp() - sz
        out = [(('m', nsp, osz), v), (('r', ESP, self.bits), nsp)]
        return Insn(b, 'push', chk=(o_set, (out, self.fl), 'push%d' % osz))

    def g_pop(self):
        rng = self.rng
        osz = self.osize(byte=False)
        if not self.can_pop(osz // 8):
            raise Skip
        r = rng.random()
        if r < 0.5:
            dst = self.wreg(osz)
            b = self.build(bytes([0x58 + dst]), osz)
        elif r < 0.6:
            dst = self.wreg(osz)
            b = self.build(b'\x8F', osz, dst, 0)
        else:
            dst = self.mem(osz // 8, no_esp_base=True)
            b = self.build(b'\x8F', osz, dst, 0)
        v = self.memval(self.sp(), osz // 8)
        out = [(self.loc(dst, osz), v), (('r', ESP, self.bits), self.sp() + osz // 8)]
        return Insn(b, 'pop', chk=(o_set, (out, self.fl), 'pop%d' % osz))

    def g_pusha(self):
        osz = self.osize(byte=False)
        n = osz // 8 * 8
        sz = osz // 8
        om = (1 << osz) - 1
        sp = self.sp()
        if self.rng.random() < 0.5:
            if not self.can_push(n):
                raise Skip
            outs = []
            for k, r in enumerate((EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI)):
                outs.append((('m', sp - sz * (k + 1), osz), self.R[r] & om))
            outs.append((('r', ESP, self.bits), sp - n))
            return Insn(self.build(b'\x60', osz), 'pusha', chk=(o_set, (outs, self.fl), 'pusha%d' % osz))
        if not self.can_pop(n):
            raise Skip
        outs = [(('r', ESP, self.bits), sp + n)]
        for k, r in enumerate((EDI, ESI, EBP, None, EBX, EDX, ECX, EAX)):
            if r is not None:
                outs.append((('r', r, osz), self.memval(sp + sz * k, sz)))
        return Insn(self.build(b'\x61', osz), 'popa', chk=(o_set, (outs, self.fl), 'popa%d' % osz))

    def g_pushf(self):
        osz = self.osize(byte=False)
        if not self.can_push(osz // 8):
            raise Skip
        v = self.fl & (0xFFFF if osz == 16 else 0x00FCFFFF)
        out = [(('m', self.sp() - osz // 8, osz), v), (('r', ESP, self.bits), self.sp() - osz // 8)]
        return Insn(self.build(b'\x9C', osz), 'pushf', chk=(o_set, (out, self.fl), 'pushf%d' % osz))

    def g_popf(self):
        rng = self.rng
        osz = self.osize(byte=False)
        sz = osz // 8
        top = self.memval(self.sp(), sz) if self.can_pop(sz) else None
        # POPF may only load arithmetic flags and DF here: TF, IF, IOPL, NT,
        # AC, ID ... stay 0 (bits 1, 3, 5, 15 are fixed and ignored).
        clean = top is not None and (top & ~(ARITH | DF | 0x802A)) == 0
        if not clean or rng.random() < 0.3:
            if not self.can_push(sz):
                raise Skip
            v = (rng.getrandbits(12) & (ARITH | DF)) | (rng.getrandbits(16) & 0x802A)
            self.step(Insn(self.build(b'\x68', osz, imm=le(v, sz)), 'push'))
        v = self.memval(self.sp(), sz)
        return Insn(self.build(b'\x9D', osz), 'popf', chk=(o_popf, (v, osz, self.fl), 'popf%d' % osz))

    def g_lahf(self):
        if self.rng.random() < 0.5:
            return Insn(b'\x9F', 'lahf', chk=(o_set, ([(('r', 4, 8), (self.fl & 0xD5) | 2)], self.fl), 'lahf'))
        if self.rng.random() < 0.5:
            self.set_reg(4, self.rng.getrandbits(8), 8)
        return Insn(b'\x9E', 'sahf', chk=(o_sahf, (self.getr(4, 8), self.fl), 'sahf'))

    def g_cbw(self):
        osz = self.osize(byte=False)
        op = self.rng.choice((b'\x98', b'\x99'))
        h = osz // 2
        if op == b'\x98':     # cbw / cwde
            outs = [(('r', EAX, osz), sx(self.R[EAX], h) & ((1 << osz) - 1))]
        else:                 # cwd / cdq
            outs = [(('r', EDX, osz), ((1 << osz) - 1) if msb(self.R[EAX], osz) else 0)]
        return Insn(self.build(op, osz), 'cbw', chk=(o_set, (outs, self.fl), 'cbw/cwd%d' % osz))

    def g_flagop(self):
        op = self.rng.choice((0xF8, 0xF9, 0xF5, 0xFC, 0xFD))
        fl = self.fl
        fl = {0xF8: fl & ~CF, 0xF9: fl | CF, 0xF5: fl ^ CF, 0xFC: fl & ~DF, 0xFD: fl | DF}[op]
        return Insn(bytes([op]), 'flagop', chk=(o_set, ([], fl), 'flagop'))

    def stack_sim(self):
        """Memory overlay for predicting stack/string instructions."""
        over = {}

        def rd(addr, n):
            return int.from_bytes(bytes(over.get(addr + i, None) if (addr + i) in over else
                                        self.emu.read(addr + i, 1)[0] for i in range(n)), 'little')

        def wr(addr, v, n):
            for i, byte in enumerate(le(v, n)):
                over[addr + i] = byte
        return over, rd, wr

    def mem_outs(self, over):
        return [(('m', a, 8), v) for a, v in sorted(over.items())]

    def g_enter(self):
        rng = self.rng
        osz = self.osize(byte=False)
        sz = osz // 8
        size = rng.choice((0, 0, 4, 8, rng.randrange(0, 40)))
        level = rng.choice((0, 0, 0, 1, 2, 3))
        spm = 0xFFFF if self.bits == 16 else M32
        bp = self.R[EBP] & spm
        if level > 1 and not (STACK_ADDR + sz * (level - 1) <= bp <= STACK_END):
            level = rng.choice((0, 1))
        if not self.can_push(sz * (level + 1) + size + 8):
            raise Skip
        if osz != self.bits and (self.R[EBP] >> 16) != (self.R[ESP] >> 16):
            # DEVIATIONS['enter-frame-pointer-width']: Unicorn writes EBP with
            # the stack size instead of the operand size.  Both agree only when
            # EBP[31:16] == ESP[31:16]; otherwise use the default operand size.
            osz, sz = self.bits, self.bits // 8
            if not self.can_push(sz * (level + 1) + size + 8):
                raise Skip
        # Expected result, from the Intel SDM ENTER pseudo-code.
        over, rd, wr = self.stack_sim()
        om = (1 << osz) - 1
        esp_hi = self.R[ESP] & ~spm & M32
        sp = (self.R[ESP] - sz) & spm
        wr(sp, self.R[EBP] & om, sz)
        frame = esp_hi | sp
        if level:
            for i in range(1, level):
                bp = (bp - sz) & spm
                v = rd(bp, sz)
                sp = (sp - sz) & spm
                wr(sp, v, sz)
            sp = (sp - sz) & spm
            wr(sp, frame & om, sz)
        ebp = frame if osz == 32 else (self.R[EBP] & 0xFFFF0000) | (frame & 0xFFFF)
        esp = esp_hi | ((sp - size) & spm)
        outs = self.mem_outs(over) + [(('r', EBP, 32), ebp), (('r', ESP, 32), esp)]
        return Insn(self.build(b'\xC8', osz, imm=le(size, 2) + bytes([level])), 'enter',
                    chk=(o_set, (outs, self.fl), 'enter%d' % osz))

    def g_leave(self):
        osz = self.osize(byte=False)
        sz = osz // 8
        spm = 0xFFFF if self.bits == 16 else M32
        bp = self.R[EBP] & spm
        if not (STACK_ADDR <= bp and bp + sz <= self.floor()):
            lo, hi = self.sp(), self.floor() - sz
            if lo > hi or self.rng.random() < 0.2:
                raise Skip
            self.set_reg(EBP, self.rng.randint(lo, hi), self.rng.choice((16, 32)) if self.bits == 16 else 32)
            bp = self.R[EBP] & spm
        v = self.memval(bp, sz)
        ebp = v if osz == 32 else (self.R[EBP] & 0xFFFF0000) | v
        esp = (self.R[ESP] & ~spm & M32) | ((bp + sz) & spm)
        outs = [(('r', EBP, 32), ebp), (('r', ESP, 32), esp)]
        return Insn(self.build(b'\xC9', osz), 'leave', chk=(o_set, (outs, self.fl), 'leave%d' % osz))

    # ---- strings ----------------------------------------------------------------------
    def g_string(self):
        rng = self.rng
        op = rng.choice(('movs', 'cmps', 'stos', 'lods', 'scas'))
        s = self.osize()
        w = s // 8
        asz = self.bits if rng.random() < 0.75 else 48 - self.bits
        am = 0xFFFF if asz == 16 else M32
        if op in ('cmps', 'scas'):
            rep = rng.choice((None, 0xF3, 0xF2))
        else:
            rep = rng.choice((None, 0xF3, 0xF3))
        if rep is not None:
            c = self.R[ECX] & am
            if c > 8 or rng.random() < 0.3:
                self.set_reg(ECX, rng.randint(0, 8), rng.choice((asz, 32)))
            n = self.R[ECX] & am
        else:
            n = 1
        step = -w if self.fl & DF else w
        uses = {'movs': (ESI, EDI), 'cmps': (ESI, EDI), 'stos': (EDI,), 'lods': (ESI,), 'scas': (EDI,)}[op]
        for reg in uses:
            p = self.R[reg] & am
            lo = min(p, p + step * (max(n, 1) - 1))
            hi = max(p, p + step * (max(n, 1) - 1)) + w
            if not (DATA_ADDR <= lo and hi <= DATA_END) or rng.random() < 0.15:
                span = w * max(n, 1)
                start = rng.randint(DATA_ADDR, DATA_END - span)
                if step < 0:
                    start += span - w
                self.set_reg(reg, start, rng.choice((asz, 32)))
        base = {'movs': 0xA4, 'cmps': 0xA6, 'stos': 0xAA, 'lods': 0xAC, 'scas': 0xAE}[op]
        seg = rng.choice(SEG_PREFIXES) if (ESI in uses and rng.random() < 0.15) else None
        b = self.build(bytes([base + (0 if s == 8 else 1)]), s, rep=rep, asz=asz, seg=seg)
        return Insn(b, ('rep ' if rep else '') + op, rep=rep is not None,
                    chk=(o_set, self.sim_string(op, s, asz, rep), '%s%s%d a%d' % (
                        'rep ' if rep else '', op, s, asz)))

    def sim_string(self, op, s, asz, rep):
        """Expected outputs of a string instruction (Intel SDM MOVS..SCAS, REP)."""
        w = s // 8
        m = (1 << s) - 1
        am = 0xFFFF if asz == 16 else M32
        d = -w if self.fl & DF else w
        si, di, cx = self.R[ESI] & am, self.R[EDI] & am, self.R[ECX] & am
        acc = self.R[EAX] & m
        fl = self.fl
        over, rd, wr = self.stack_sim()
        while True:
            if rep is not None:
                if cx == 0:
                    break
            if op == 'movs':
                wr(di, rd(si, w), w)
                si, di = (si + d) & am, (di + d) & am
            elif op == 'stos':
                wr(di, acc, w)
                di = (di + d) & am
            elif op == 'lods':
                acc = rd(si, w)
                si = (si + d) & am
            elif op == 'cmps':
                _, fl = o_alu('cmp', s, rd(si, w), rd(di, w), fl, None)
                si, di = (si + d) & am, (di + d) & am
            else:
                _, fl = o_alu('cmp', s, acc, rd(di, w), fl, None)
                di = (di + d) & am
            if rep is None:
                break
            cx = (cx - 1) & am
            if op in ('cmps', 'scas'):
                if (rep == 0xF3 and not fl & ZF) or (rep == 0xF2 and fl & ZF):
                    break
        keep = M32 & ~am
        outs = self.mem_outs(over)
        outs += [(('r', ESI, 32), (self.R[ESI] & keep) | si), (('r', EDI, 32), (self.R[EDI] & keep) | di),
                 (('r', ECX, 32), (self.R[ECX] & keep) | cx if rep is not None else self.R[ECX]),
                 (('r', EAX, s), acc)]
        return outs, fl

    def g_xlat(self):
        rng = self.rng
        asz = self.bits if rng.random() < 0.75 else 48 - self.bits
        am = 0xFFFF if asz == 16 else M32
        al = self.R[EAX] & 0xFF
        ea = ((self.R[EBX] & am) + al) & am
        if not (DATA_ADDR <= ea < DATA_END) or rng.random() < 0.2:
            t = rng.randint(DATA_ADDR, DATA_END - 1)
            self.set_reg(EBX, (t - al) & am, rng.choice((asz, 32)) if asz == 16 else 32)
        seg = rng.choice(SEG_PREFIXES) if rng.random() < 0.15 else None
        ea = ((self.R[EBX] & am) + al) & am
        out = [(('r', EAX, 8), self.memval(ea, 1))]
        return Insn(self.build(b'\xD7', asz=asz, seg=seg), 'xlat', chk=(o_set, (out, self.fl), 'xlat'))

    def g_nop(self):
        r = self.rng.random()
        if r < 0.5:
            return Insn(b'\x90', 'nop')
        if r < 0.7:
            return Insn(b'\x66\x90', 'nop')
        s = self.osize(byte=False)
        rm = self.any_mem() if self.rng.random() < 0.7 else self.anyreg(s)
        return Insn(self.build(b'\x0F\x1F', s, rm, 0), 'nop')


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def generate(bits, seed, count, out_path, check, min_cases=0):
    g = Gen(bits, seed, check)
    cases = steps = 0
    hist = Counter()
    with open(out_path, 'w') as out:
        while steps < count or cases < min_cases:
            try:
                case, h = g.gen_case()
            except Drop as e:
                g.drops[str(e).split(' at ')[0][:60]] += 1
                continue
            out.write(json.dumps(case, separators=(',', ':')))
            out.write('\n')
            cases += 1
            steps += len(case['steps'])
            hist.update(h)
    return {'bits': bits, 'cases': cases, 'steps': steps, 'hist': dict(hist),
            'checked': sum(g.checked.values()),
            'drops': dict(g.drops), 'mismatch': dict(g.mismatch),
            'samples': g.mismatch_samples}


def _worker(a):
    return generate(*a)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--count', type=int, default=1000,
                    help='number of instructions (steps) to generate, in total')
    ap.add_argument('--mode', choices=('16', '32', 'both'), default='32')
    ap.add_argument('--out')
    ap.add_argument('--no-check', action='store_true',
                    help='skip the SDM reference-model comparison of defined results')
    ap.add_argument('--jobs', type=int, default=2, help='processes for --mode both')
    ap.add_argument('--quiet', action='store_true', help='summary line only, no histogram')
    ap.add_argument('--fpu', action='store_true',
                    help='x87/MMX streams instead (gen_fpu.py; flat 32-bit mode only)')
    ap.add_argument('--sse', action='store_true',
                    help='SSE..SSE4.2 streams instead (gen_sse.py; flat 32-bit mode only)')
    ap.add_argument('--probe-deviations', action='store_true',
                    help='only re-test the known Unicorn deviations and print which are present')
    args = ap.parse_args(argv)
    if args.probe_deviations:
        for k, present in probe_deviations().items():
            print('%-34s %s' % (k, 'PRESENT' if present else 'not present (fixed in this Unicorn?)'))
        return 0
    if not args.out:
        ap.error('--out is required')
    if args.fpu or args.sse:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from gen_fpu import generate_fpu
        from gen_sse import generate_sse
        t0 = time.time()
        gen = generate_sse if args.sse else generate_fpu
        r = gen(args.seed, args.count, args.out)
        print('difftest --%s: seed=%d cases=%d steps=%d time=%.1fs -> %s'
              % ('sse' if args.sse else 'fpu', args.seed, r['cases'], r['steps'], time.time() - t0,
                 args.out), file=sys.stderr)
        if not args.quiet:
            items = sorted(r['hist'].items(), key=lambda kv: (-kv[1], kv[0]))
            for i in range(0, len(items), 6):
                print('  ' + ''.join('%-8s%6d  ' % kv for kv in items[i:i + 6]), file=sys.stderr)
        return 0
    t0 = time.time()
    check = not args.no_check
    if args.mode == 'both':
        parts = [(16, args.seed, args.count // 2), (32, args.seed, args.count - args.count // 2)]
    else:
        parts = [(int(args.mode), args.seed, args.count)]
    tmpdir = tempfile.mkdtemp(prefix='difftest-')
    jobs = [(b, s, c, os.path.join(tmpdir, 'part%d.jsonl' % b), check) for b, s, c in parts]
    if len(jobs) > 1 and args.jobs > 1:
        import multiprocessing
        with multiprocessing.get_context('fork').Pool(min(args.jobs, len(jobs))) as pool:
            results = pool.map(_worker, jobs)
    else:
        results = [_worker(j) for j in jobs]
    with open(args.out, 'wb') as out:
        for j in jobs:
            with open(j[3], 'rb') as f:
                while True:
                    buf = f.read(1 << 20)
                    if not buf:
                        break
                    out.write(buf)
            os.unlink(j[3])
    os.rmdir(tmpdir)
    dt = time.time() - t0
    cases = sum(r['cases'] for r in results)
    steps = sum(r['steps'] for r in results)
    hist = Counter()
    drops = Counter()
    mism = Counter()
    for r in results:
        hist.update(r['hist'])
        drops.update(r['drops'])
        mism.update({'%d-bit %s' % (r['bits'], k): v for k, v in r['mismatch'].items()})
    err = sys.stderr
    print('difftest: mode=%s seed=%d cases=%d steps=%d dropped=%d checked=%d time=%.1fs -> %s'
          % (args.mode, args.seed, cases, steps, sum(drops.values()),
             sum(r['checked'] for r in results), dt, args.out), file=err)
    if not args.quiet:
        print('per-mnemonic histogram (%d mnemonics):' % len(hist), file=err)
        items = sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))
        for i in range(0, len(items), 4):
            print('  ' + ''.join('%-16s%7d   ' % kv for kv in items[i:i + 4]), file=err)
        if drops:
            print('dropped cases by reason: %s' % dict(drops), file=err)
    if check:
        known = {k for k in mism if any(k.split(' ', 1)[1].startswith(p) for p in KNOWN_MISMATCH_KEYS)}
        unknown = {k: v for k, v in mism.items() if k not in known}
        if known:
            print('reference-model mismatches explained by DEVIATIONS: %d'
                  % sum(mism[k] for k in known), file=err)
        if unknown:
            print('UNEXPECTED reference-model mismatches (defined results differ):', file=err)
            for k, v in sorted(unknown.items()):
                print('  %-28s %d' % (k, v), file=err)
                for r in results:
                    for smp in r['samples'].get(k.split(' ', 1)[1], [])[:2]:
                        if k.startswith('%d-bit' % r['bits']):
                            print('      ' + smp, file=err)
            return 1
    return 0


# Reference-model mismatch keys that are explained by an entry in DEVIATIONS
# (none: the generator avoids every deviating form it knows of).
KNOWN_MISMATCH_KEYS = ()


def probe_deviations():
    """Re-test every DEVIATIONS entry on the installed Unicorn; True if present."""
    out = {}

    def run(mode, code, regs, count=0):
        uc = Uc(UC_ARCH_X86, mode)
        uc.mem_map(MAP_ADDR, MAP_SIZE)
        uc.mem_write(CODE_ADDR, code)
        for r, v in regs.items():
            uc.reg_write(r, v)
        uc.emu_start(CODE_ADDR, CODE_ADDR + len(code), count=count)
        return uc

    # ENTER: 66 C8 04 00 00 with EBP = 0xabcd1234, ESP = 0x3080
    regs = {X.UC_X86_REG_EBP: 0xABCD1234, X.UC_X86_REG_ESP: 0x3080}
    e32 = run(UC_MODE_32, bytes.fromhex('66c8040000'), regs).reg_read(X.UC_X86_REG_EBP)
    e16 = run(UC_MODE_16, bytes.fromhex('66c8040000'), regs).reg_read(X.UC_X86_REG_EBP)
    # SDM: 32-bit mode -> BP <- 0x307e, EBP = 0xabcd307e; real mode -> EBP <- ESP = 0x0000307c
    out['enter-frame-pointer-width'] = (e32 != 0xABCD307E) or (e16 != 0x307C)
    # LOOPE after ADD in one block: flags must stay those of ADD (0+5 -> PF only)
    regs = {X.UC_X86_REG_EAX: 0, X.UC_X86_REG_EBX: 5, X.UC_X86_REG_ECX: 1, X.UC_X86_REG_EFLAGS: 2}
    fl = run(UC_MODE_32, bytes.fromhex('01d8e10090'), regs).reg_read(X.UC_X86_REG_EFLAGS)
    out['loopcc-block-flags'] = (fl & ARITH) != PF
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gen_sse import probe_sse_deviations
    from gen_sse64 import probe_sse64_deviations
    out.update(probe_sse_deviations())
    out.update(probe_sse64_deviations())
    return out

if __name__ == '__main__':
    sys.exit(main())
