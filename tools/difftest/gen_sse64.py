"""SSE..SSE4.2 instruction streams in 64-bit mode for the Unicorn
differential test.

Used by `gen_cases64.py --sse`. The instructions are gen_sse.py's table,
encoded here for 64-bit mode; about one case in seven also has its MMX
forms (with FNINIT and MOVQ loads first, and the x87 state in every step
as in gen_sse.py), plus MOVD/MOVQ mm <-> r/m32/r/m64:

* any of XMM0-XMM15 and the sixteen GPRs, through REX.R and REX.B (on
  MMX registers they are set too, and ignored), with
  an empty REX (0x40) now and then, and REX.W where it changes the
  instruction (MOVQ xmm<->r/m64, CVTSI2SS/SD r/m64, CVT(T)SS2SI and
  CVT(T)SD2SI to r64, PINSRQ/PEXTRQ, POPCNT/CRC32/MOVNTI r64, PCMPESTRx
  with 64-bit lengths in RAX/RDX; MOVMSKPS/PD, PMOVMSKB, PEXTRB/W,
  EXTRACTPS into r64) and sometimes where it is ignored;
* memory operands in every 64-bit addressing form: RIP-relative (also
  with an immediate after the displacement, and with a meaningless
  REX.B), [base], [base+disp8/32], [base+index*scale+disp] with any
  base (RSP, R12 and RBP/R13 special cases included) and any index
  (R12 too; "no index" SIBs with a random scale), [index*scale+disp32],
  absolute [disp32], the 0x67 address-size prefix, and ignored segment
  overrides (ES/CS/SS/DS, FS/GS with base 0);
* CRC32 r/m8 with and without REX (SPL..DIL against AH..BH).

Base and index registers are ordinary registers that instructions also
overwrite: when the chosen ones cannot reach the operand with a 32-bit
displacement, a `mov` step loads the base first. More `mov` steps put
special values into GPRs (conversion sources) and lengths into RAX/RDX.

The case format is gen_cases64.py's (`regs` as 16 decimal strings,
`rflags`, `code` at 0x1000, `mem`, `steps` with `regs`, `rip`, `rflags`,
`undef`, and `final_mem`) plus `xmm` (16 hex strings, XMM0 first) and
`mxcsr` in the case and an `sse` object (`xmm`, `mxcsr`) in every step.
Unicorn 2.1.4 raises no MXCSR exception flags, so MXCSR is compared
without bits 0-5; the deviations gen_sse.py steers around apply here too,
plus the 64-bit PCMPESTRx length one (unicorn_deviations.md).
"""

import random
import struct

import iced_x86 as I
from unicorn import Uc, UC_ARCH_X86, UC_MODE_64, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn import x86_const as X

import gen_sse as S
from gen_fpu import fpu_state

CODE, DATA, STACK = 0x1000, 0x2000, 0x3000
DATA_SIZE = 0x100
STACK_TOP = 0x3400
CODE_MAX = 0xC00
CF, PF, AF, ZF, SF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x400, 0x800
ARITH = CF | PF | AF | ZF | SF | OF
REPORT = ARITH | DF | 0x2
M64 = (1 << 64) - 1

NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
UC_REGS = [getattr(X, "UC_X86_REG_" + n.upper()) for n in NAMES]
UXMM = [getattr(X, "UC_X86_REG_XMM%d" % k) for k in range(16)]
# GPRs an instruction may write: all but RSP.
GDST = [k for k in range(16) if k != 4]
SPECIAL = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
           0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
           0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x8000000000000001,
           0x20000000000000, 0x20000000000001, 0x7FFFFFFFFFFFFC00, 0xFFFFFFFF80000000]
SEGS = [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65]

# Entries where REX.W selects 64-bit operands: name -> memory operand size
# with REX.W (None: memory size unchanged, only the GPR is 64-bit).
W_FORMS = {
    'movd': 8, 'movd_st': 8, 'cvtsi2ss': 8, 'cvtsi2sd': 8, 'pinsrd': 8, 'pextrd': 8,
    'popcnt': 8, 'crc32d': 8, 'crc32b': None, 'movnti': 8,
    'cvtss2si': None, 'cvttss2si': None, 'cvtsd2si': None, 'cvttsd2si': None,
    'movmskps': None, 'movmskpd': None, 'pmovmskb': None, 'pextrw': None,
    'pextrb': None, 'pextrw2': None, 'extractps': None,
    'pcmpestri': None, 'pcmpestrm': None,
}
# REX.W would change the meaning (66 prefix + W = 64-bit operand): never.
NO_W = {'crc32w', 'popcnt16'}

# gen_sse.py's table, plus forms that only make sense with a 64-bit GPR
# file: MOVNTI m32/m64, POPCNT r16 (66 F3).
TABLE = S.SSE + [
    ('movnti', b'', b'\xc3', 'stg'),
    ('popcnt16', b'\x66\xf3', b'\xb8', 'gg2'),
]
# gen_sse.py's MMX-register forms, plus MOVD/MOVQ between MMX registers
# and r/m32/r/m64 and MOVQ mm, mm/m64 and its store.
MMX_TABLE = S.MMX + [
    ('movd_mm', b'', b'\x6e', 'mg'), ('movd_mm_st', b'', b'\x7e', 'gms'),
    ('movq_mm', b'', b'\x6f', 'mm'), ('movq_mm_st', b'', b'\x7f', 'mst8'),
]
W_FORMS.update({'movd_mm': 8, 'movd_mm_st': 8, 'pextrw_mm': None, 'pmovmskb_mm': None})
# QEMU 5.0 adds REX.R to the MMX destination of the SSSE3 forms and of
# PALIGNR mm (0F 38 xx, 0F 3A 0F): the SDM ignores it (unicorn_deviations.md).
MMX_REX_R = {n for n, *_ in S.MMX if n.startswith('mmx_ssse3') or n == 'palignr_mm'}
# SSSE3 horizontal add/subtract: QEMU 5.0 reads the source after writing
# the destination, so destination and source register differ.
HORIZ = {p + 'ssse3_%02x' % op for op in (1, 2, 3, 5, 6, 7) for p in ('', 'mmx_')}


def s64(v):
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def qemu_elen(v, n, w):
    """PCMPESTRx length as QEMU 5.0 computes it (pcmp_elen: abs() of the
    64-bit value stored in an int), or None where it would crash."""
    if w:
        t = abs(s64(v)) & M64          # abs(INT64_MIN) wraps to itself
        t = s32(t)                     # stored in a 32-bit int
    else:
        t = s32(v)
        if t == -(1 << 31):
            return None
        t = abs(t)
    if t < 0:
        return None
    return min(t, n)


def sdm_elen(v, n, w):
    return min(abs(s64(v) if w else s32(v)), n)


class Gen(S.Gen):
    """gen_sse.py's values, plus floats near the 64-bit integer limits."""

    def vec(self):
        R = self.rng
        if R.random() < 0.08:
            if R.random() < 0.5:
                near = [0x5f000000, 0x5effffff, 0xdf000000, 0xdf000001, 0x5f800000,
                        0x4f000000, 0xcf000000, 0x3f000000, 0xbfc00000]
                return sum(R.choice(near + [self.f32_bits()]) << (32 * k) for k in range(4))
            near = [0x43e0000000000000, 0x43dfffffffffffff, 0xc3e0000000000000,
                    0xc3e0000000000001, 0x41e0000000000000, 0xc1e0000000200000,
                    0x3fe0000000000000, 0x4330000000000001]
            return sum(R.choice(near + [self.f64_bits()]) << (64 * k) for k in range(2))
        return super().vec()

    def gval(self):
        R = self.rng
        k = R.random()
        if k < 0.4:
            return R.choice(SPECIAL)
        if k < 0.55:
            return R.getrandbits(8)
        if k < 0.7:
            return R.getrandbits(32)
        if k < 0.8:
            return s64(R.randrange(-100, 100)) & M64
        return R.getrandbits(64)


class NeedSetup(Exception):
    """The memory operand needs register `reg` = `value` first."""

    def __init__(self, reg, value):
        super().__init__()
        self.reg, self.value = reg, value & M64


class Mem:
    """A memory operand: where it must point and how it is addressed."""

    def __init__(self, rng, target, size):
        R = rng
        self.target, self.size = target, size
        self.store = False
        self.a32 = R.random() < 0.08
        k = R.random()
        self.kind = ('rip' if k < 0.3 else 'abs' if k < 0.35 else 'idx' if k < 0.42
                     else 'base' if k < 0.67 else 'bi')
        self.base = R.randrange(16)
        self.index = R.choice([k for k in range(16) if k != 4])
        self.scale = R.choice([1, 2, 4, 8])
        self.sib_always = R.random() < 0.2       # [base] through a SIB without index
        self.junk = R.random() < 0.15            # set REX bits the form ignores
        self.noidx_ss = R.randrange(4)           # scale of a SIB without index
        self.prefer32 = R.random() < 0.2         # disp32 even if disp8 would do
        self.setup_disp = R.choice([0, 0, R.randrange(-128, 128), R.randrange(-0x10000, 0x10000)])
        self.rng = R

    def _disp(self, eff, base_low):
        """(mod, disp bytes) reaching the target from `eff`."""
        if self.a32:
            d = s32(self.target - eff)
        else:
            d = s64(self.target - eff)
        if d == 0 and base_low != 5 and not self.prefer32:
            return 0, b''
        if -128 <= d < 128 and not self.prefer32:
            return 1, struct.pack('<b', d)
        if -(1 << 31) <= d < (1 << 31):
            return 2, struct.pack('<i', d)
        return None

    def fields(self, regs):
        """(mod, rm, sib bytes, disp bytes, rex_x, rex_b, rip_relative)."""
        mask = 0xFFFFFFFF if self.a32 else M64
        j = self.junk
        if self.kind == 'rip':
            return 0, 5, b'', b'\0\0\0\0', int(j), int(j), True
        if self.kind == 'abs':
            sib = bytes([(self.noidx_ss << 6) | (4 << 3) | 5])
            return 0, 4, sib, struct.pack('<i', self.target), 0, int(j), False
        if self.kind == 'idx':
            i, sc = self.index, self.scale
            d = s32(self.target - (regs[i] & mask) * sc) if self.a32 else \
                s64(self.target - regs[i] * sc)
            if not -(1 << 31) <= d < (1 << 31):
                raise NeedSetup(i, self.rng.randrange(0x40))
            sib = bytes([({1: 0, 2: 1, 4: 2, 8: 3}[sc] << 6) | ((i & 7) << 3) | 5])
            return 0, 4, sib, struct.pack('<i', d), i >> 3, int(j), False
        b = self.base
        if self.kind == 'base':
            eff = regs[b] & mask
            md = self._disp(eff, b & 7)
            if md is None:
                raise NeedSetup(b, self.target - self.setup_disp)
            mod, disp = md
            if b & 7 == 4 or self.sib_always:
                sib = bytes([(self.noidx_ss << 6) | (4 << 3) | (b & 7)])
                return mod, 4, sib, disp, 0, b >> 3, False
            return mod, b & 7, b'', disp, int(j), b >> 3, False
        i, sc = self.index, self.scale
        eff = ((regs[b] & mask) + (regs[i] & mask) * sc) & mask
        md = self._disp(eff, b & 7)
        if md is None:
            if b == i:
                raise NeedSetup(b, (self.target - self.setup_disp) // (1 + sc))
            raise NeedSetup(b, self.target - regs[i] * sc - self.setup_disp)
        mod, disp = md
        sib = bytes([({1: 0, 2: 1, 4: 2, 8: 3}[sc] << 6) | ((i & 7) << 3) | (b & 7)])
        return mod, 4, sib, disp, i >> 3, b >> 3, False


class Insn:
    """One planned instruction: all random choices made, encoded against
    the current register values by `encode`."""

    def __init__(self, name, pre, op, reg, rm, imm=b'', w=False, rex_r_junk=False,
                 empty_rex=False, seg=None):
        self.name, self.pre, self.op = name, pre, op
        self.reg = reg          # 0..15 (xmm, GPR or opcode extension)
        self.rm = rm            # ('r', n) or Mem
        self.imm, self.w = imm, w
        self.rex_r_junk = rex_r_junk    # REX.R on an opcode-extension reg field
        self.empty_rex, self.seg = empty_rex, seg

    def encode(self, regs, rip):
        head = b''
        if isinstance(self.rm, Mem):
            if self.seg is not None:
                head += bytes([self.seg])
            if self.rm.a32:
                head += b'\x67'
            mod, rm, sib, disp, rx, rb, riprel = self.rm.fields(regs)
        else:
            mod, rm, sib, disp, rx, rb, riprel = 3, self.rm[1] & 7, b'', b'', 0, self.rm[1] >> 3, False
        rr = (self.reg >> 3) | int(self.rex_r_junk)
        rex = 0x40 | (int(self.w) << 3) | (rr << 2) | (rx << 1) | rb
        rexb = bytes([rex]) if rex != 0x40 or self.empty_rex else b''
        modrm = bytes([(mod << 6) | ((self.reg & 7) << 3) | rm])
        b = head + self.pre + rexb + b'\x0f' + self.op + modrm + sib + disp + self.imm
        if riprel:
            end = rip + len(b)
            d = (self.rm.target - end) & 0xFFFFFFFF if self.rm.a32 else self.rm.target - end
            k = len(b) - len(self.imm) - 4
            b = b[:k] + struct.pack('<I' if self.rm.a32 else '<i', d) + self.imm
        return b


def mov_setup(rng, reg, value):
    """Bytes of a MOV that loads `value` into GPR `reg`."""
    value &= M64
    rb = reg >> 3
    k = rng.random()
    if value >> 32 == 0 and k < 0.5:
        return (bytes([0x41]) if rb else b'') + bytes([0xB8 + (reg & 7)]) + struct.pack('<I', value)
    if -(1 << 31) <= s64(value) < (1 << 31) and k < 0.8:
        return bytes([0x48 | rb, 0xC7, 0xC0 | (reg & 7)]) + struct.pack('<i', s64(value))
    return bytes([0x48 | rb, 0xB8 + (reg & 7)]) + struct.pack('<Q', value)


class Planner:
    def __init__(self, rng, g):
        self.rng, self.g = rng, g

    def mem(self, size, load=True, aligned=True):
        g = self.g
        t = g.load_addr(size, aligned) if load else g.store_addr(size, aligned)
        m = Mem(self.rng, t, size)
        m.store = not load
        return m

    def xr(self):
        return ('r', self.rng.randrange(16))

    def plan(self, entry):
        """An Insn for a gen_sse.py table entry (or one added above)."""
        R = self.rng
        name, pre, op, form = entry[:4]
        immr = entry[4] if len(entry) > 4 else None
        w = name not in NO_W and (R.random() < (0.5 if name in W_FORMS else 0.08))
        wsize = W_FORMS.get(name) if w else None
        x = R.randrange(16)
        g = R.choice(GDST)
        imm = bytes([R.randrange(immr)]) if isinstance(immr, int) else b''
        reg_junk = False
        mem_p = 0.35

        def xm(size, aligned=True, p=mem_p):
            return self.mem(size, aligned=aligned) if R.random() < p else self.xr()

        if form in ('rm', 'rmi'):
            rm = xm(16)
        elif form in ('rmu', 'str'):
            rm = xm(16, aligned=False)
            if form == 'str':
                imm = bytes([R.randrange(128)])
        elif form in ('r4', 'r4i'):
            rm = xm(4)
        elif form in ('r8', 'r8i'):
            rm = xm(8)
        elif form == 'r2':
            rm = xm(2)
        elif form == 'mo8':
            rm = self.mem(8)
        elif form == 'mo8_or_reg':
            rm = xm(8)
        elif form == 'mo16':
            rm = self.mem(16)
        elif form == 'mou':
            rm = self.mem(16, aligned=False)
        elif form == 'st16':
            rm = self.mem(16, load=False)
        elif form == 'st16u':
            rm = self.mem(16, load=False, aligned=False) if R.random() < 0.7 else self.xr()
        elif form in ('st8', 'st4'):
            rm = self.mem(int(form[-1]), load=False)
        elif form == 'st8_or_reg':
            rm = self.mem(8, load=False) if R.random() < 0.5 else self.xr()
        elif form == 'xg':
            rm = ('r', R.randrange(16)) if R.random() < 0.6 else self.mem(wsize or 4)
        elif form in ('xgi', 'xgi1', 'xgi4'):
            size = {'xgi': 2, 'xgi1': 1, 'xgi4': 4}[form]
            rm = ('r', R.randrange(16)) if R.random() < 0.6 else self.mem(wsize or size)
        elif form in ('gx', 'gxi'):
            x, rm = g, self.xr()
        elif form in ('gx4', 'gx8'):
            x, rm = g, xm(4 if form == 'gx4' else 8)
        elif form == 'mx4':
            rm = ('r', g) if R.random() < 0.6 else self.mem(wsize or 4, load=False)
        elif form in ('mxi1', 'mxi2', 'mxi4'):
            size = int(form[-1])
            rm = ('r', g) if R.random() < 0.6 else self.mem(wsize or size, load=False)
        elif form == 'shift':
            x = R.choice(immr)
            reg_junk = R.random() < 0.1
            rm = self.xr()
            imm = bytes([R.choice([0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 200])])
        elif form in ('gg', 'gg1', 'gg2'):
            size = {'gg': 4, 'gg1': 1, 'gg2': 2}[form]
            x = g
            rm = ('r', R.randrange(16)) if R.random() < 0.6 else self.mem(wsize or size)
        elif form == 'stg':
            x = R.randrange(16)
            rm = self.mem(wsize or 4, load=False)
        # MMX registers: numbers 0-15 as well, REX.R/REX.B are ignored.
        elif form in ('mm', 'mmi', 'xm'):
            rm = xm(8)
        elif form == 'mst8':
            rm = self.mem(8, load=False) if R.random() < 0.5 else self.xr()
        elif form == 'mx8':
            rm = xm(8)
        elif form == 'mx':
            rm = xm(16)
        elif form in ('xmr', 'mxr'):
            rm = self.xr()
        elif form in ('mgi', 'mg'):
            size = 2 if form == 'mgi' else wsize or 4
            rm = ('r', R.randrange(16)) if R.random() < 0.6 else self.mem(size)
        elif form in ('gmi', 'gm'):
            x, rm = g, self.xr()
        elif form == 'gms':
            rm = ('r', g) if R.random() < 0.6 else self.mem(wsize or 4, load=False)
        else:
            raise ValueError(form)
        if name in MMX_REX_R:
            x &= 7
        if name in HORIZ:
            m = 7 if name.startswith('mmx') else 15
            while not isinstance(rm, Mem) and rm[1] & m == x & m:
                rm = self.xr()
        if name in ('pinsrd', 'pextrd') and w:
            imm = bytes([R.randrange(4)])
        return Insn(name, pre, op, x, rm, imm, w, reg_junk, R.random() < 0.1,
                    R.choice(SEGS) if R.random() < 0.06 else None)

    def group(self, name, sub, mem):
        """0F AE /sub with a memory operand (LDMXCSR, STMXCSR)."""
        R = self.rng
        return Insn(name, b'', b'\xae', sub, mem, b'', R.random() < 0.05, R.random() < 0.1,
                    R.random() < 0.1, R.choice(SEGS) if R.random() < 0.06 else None)


def uc_state(uc):
    return {'regs': [uc.reg_read(r) for r in UC_REGS],
            'rip': uc.reg_read(X.UC_X86_REG_RIP),
            'rflags': uc.reg_read(X.UC_X86_REG_RFLAGS)}


def xmm_state(uc):
    return ['%032x' % uc.reg_read(r) for r in UXMM]


def operand_values(uc, ins, regs):
    """(destination xmm, source xmm or 16 bytes at the memory operand)."""
    a = uc.reg_read(UXMM[ins.reg])
    if isinstance(ins.rm, Mem):
        t = ins.rm.target
        s = int.from_bytes(bytes(uc.mem_read(t, 16)), 'little')
    else:
        s = uc.reg_read(UXMM[ins.rm[1]])
    return a, s


def build_case(rng, n_insns, fmt):
    g = Gen(rng)
    pl = Planner(rng, g)
    data = g.data()
    regs = []
    for k in range(16):
        c = rng.random()
        regs.append(DATA + rng.randrange(-0x800, 0x800) if c < 0.3 else
                    rng.randrange(0x40) if c < 0.45 else g.gval())
    regs[4] = STACK_TOP - 8 * rng.randrange(1, 64)
    flags = (rng.getrandbits(12) & ARITH) | 0x2
    xmm = [g.vec() for _ in range(16)]
    mxcsr = g.mxcsr()
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x3000)
    uc.mem_write(DATA, bytes(data))
    for r, v in zip(UC_REGS, regs):
        uc.reg_write(r, v)
    uc.reg_write(X.UC_X86_REG_RFLAGS, flags)
    for k in range(16):
        uc.reg_write(UXMM[k], xmm[k])
    uc.reg_write(X.UC_X86_REG_MXCSR, mxcsr)
    accesses = []
    uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE,
                lambda _uc, _acc, addr, size, _v, _d: accesses.append((addr, size)))

    rip = CODE
    code = bytearray()
    steps = []
    hist = {}
    pending = None          # an Insn waiting for its base register
    stmxcsr_next = False
    # About one case in seven also uses the MMX-register forms: FNINIT,
    # then MOVQ loads of MM0-7, then the stream.
    mmx_case = rng.random() < 0.15
    table = TABLE + MMX_TABLE if mmx_case else TABLE
    seq = []
    if mmx_case:
        seq = [Insn('movq_mm', b'', b'\x6f', rng.randrange(16), pl.mem(8)) for _ in range(8)]
        for k, ins in enumerate(seq):
            ins.reg = (ins.reg & 8) | k
        seq.insert(0, 'fninit')
    while len(steps) < n_insns and rip - CODE < CODE_MAX:
        st = uc_state(uc)
        cur = st['regs']
        ins = None
        if pending is not None:
            ins, pending = pending, None
        elif seq:
            ins = seq.pop(0)
            if ins == 'fninit':
                ins, b, name = None, b'\xdb\xe3', 'fninit'
        elif stmxcsr_next:
            stmxcsr_next = False
            ins = pl.group('stmxcsr', 3, pl.mem(4, load=False))
        else:
            k = rng.random()
            if k < 0.03:
                ins = pl.group('ldmxcsr', 2, Mem(rng, DATA + S.MXV + 4 * rng.randrange(8), 4))
                stmxcsr_next = rng.random() < 0.3
            elif k < 0.05:
                # A length for PCMPESTRx, 32- or 64-bit.
                reg = rng.choice([0, 2])
                v = rng.choice([rng.randrange(-20, 21), rng.getrandbits(32), rng.getrandbits(64),
                                rng.choice([0x80000000, 0xFFFFFFFF80000000, 0x100000005,
                                            0x7FFFFFFF, 0xFFFFFFFF00000003, 0x8000000000000000])])
                b, name = mov_setup(rng, reg, v), 'mov'
            elif k < 0.09:
                b, name = mov_setup(rng, rng.choice(GDST), g.gval()), 'mov'
            else:
                entry = rng.choice(table)
                ins = pl.plan(entry)
        if ins is not None:
            try:
                b = ins.encode(cur, rip)
                name = ins.name
            except NeedSetup as e:
                b, name = mov_setup(rng, e.reg, e.value), 'mov'
                pending, ins = ins, None
            else:
                ins, b, name = check_deviations(uc, ins, b, cur, rip, pl, rng)
        if rip + len(b) - CODE > CODE_MAX:
            break
        uc.mem_write(rip, b)
        accesses.clear()
        try:
            uc.emu_start(rip, rip + len(b), count=1)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError('unicorn fault on %s (%s): %s' % (b.hex(), name, e))
        nst = uc_state(uc)
        assert nst['rip'] == rip + len(b), (b.hex(), hex(nst['rip']))
        dec = I.Decoder(64, bytes(b), ip=rip)
        di = dec.decode()
        assert di.len == len(b) and di.code != I.Code.INVALID, (name, b.hex())
        check_accesses(accesses, ins, b)
        code += b
        steps.append({
            'asm': '%s ; %s' % (fmt.format(di), b.hex()),
            'regs': [str(v) for v in nst['regs']],
            'rip': nst['rip'],
            'rflags': (nst['rflags'] & REPORT) | 2,
            'undef': 0,
            'sse': {'xmm': xmm_state(uc), 'mxcsr': uc.reg_read(X.UC_X86_REG_MXCSR)},
        })
        if mmx_case:
            steps[-1]['fpu'] = dict(fpu_state(uc), fsw_undef=0, mmx=int(len(steps) > 1))
        hist[name] = hist.get(name, 0) + 1
        rip += len(b)
    case = {
        'regs': [str(v) for v in regs],
        'rflags': flags,
        'xmm': ['%032x' % v for v in xmm],
        'mxcsr': mxcsr,
        'code': bytes(code).hex(),
        'mem': [{'addr': DATA, 'data': bytes(data).hex()}],
        'steps': steps,
        'final_mem': [{'addr': DATA, 'data': bytes(uc.mem_read(DATA, DATA_SIZE)).hex()}],
    }
    return case, hist


def check_accesses(accesses, ins, b):
    """Every data access is the planned operand's (the encoder's address
    arithmetic is right), and every store is inside the data region
    (final_mem covers it). QEMU 5.0 loads 16 bytes for some smaller
    operands (CVTPS2PD m64): loads may run on to target + 16."""
    if ins is None or not isinstance(ins.rm, Mem):
        assert not accesses, (b.hex(), accesses)
        return
    t, n = ins.rm.target, ins.rm.size
    end = t + n if ins.rm.store else t + 16
    for addr, size in accesses:
        assert t <= addr and addr + size <= end, (ins.name, b.hex(), hex(addr), size, hex(t), n)
    if ins.rm.store:
        assert DATA <= t and t + n <= DATA + DATA_SIZE, (ins.name, b.hex(), hex(t))


def check_deviations(uc, ins, b, regs, rip, pl, rng):
    """(Insn or None, bytes, name) to execute: `ins`, or something else
    when QEMU 5.0 is known to differ from the SDM on these operands
    (unicorn_deviations.md)."""
    name = ins.name

    def xorps():
        alt = pl.plan(('xorps', b'', b'\x57', 'rm'))
        try:
            return alt, alt.encode(regs, rip), 'xorps'
        except NeedSetup:
            return None, bytes([0x0f, 0x57, 0xc0 | rng.randrange(64)]), 'xorps'

    # MIN/MAX under DAZ return the denormal operand itself.
    if uc.reg_read(X.UC_X86_REG_MXCSR) & 0x40 and name[:3] in ('min', 'max'):
        return xorps()
    if name in S.NAN2 or name.startswith('pcmp'):
        a, s = operand_values(uc, ins, regs)
        imm = ins.imm[0] if ins.imm else 0
        elen = s64(regs[2]) if ins.w else s32(regs[2])
        if S.disagrees_on(name, a, s, imm, elen):
            return xorps()
    if name.startswith('pcmpestr'):
        n = 8 if ins.imm[0] & 1 else 16
        for reg in (0, 2):
            v = regs[reg]
            if qemu_elen(v, n, ins.w) != sdm_elen(v, n, ins.w):
                return None, mov_setup(rng, reg, rng.randrange(-20, 21)), 'mov'
    return ins, b, name


def generate_sse64(seed, count, out_path):
    import json
    rng = random.Random(seed)
    fmt = I.Formatter(I.FormatterSyntax.NASM)
    fmt.rip_relative_addresses = True
    total = cases = 0
    hist = {}
    with open(out_path, 'w') as out:
        while total < count:
            n = min(rng.randrange(10, 60), count - total)
            case, h = build_case(rng, n, fmt)
            if not case['steps']:
                continue
            for k, v in h.items():
                hist[k] = hist.get(k, 0) + v
            out.write(json.dumps(case, separators=(',', ':')) + '\n')
            total += len(case['steps'])
            cases += 1
    return {'cases': cases, 'steps': total, 'hist': hist}


def probe_sse64_deviations():
    """The 64-bit-only deviations in unicorn_deviations.md, True where the
    installed Unicorn still has them: a REX.W PCMPESTRx length cut to 32
    bits (RDX = 2^32 + 5: SDM length 16), and REX.R taken as a fourth bit
    of an SSSE3 MMX destination."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x1000)
    code = bytes.fromhex('66480f3a61c100')           # pcmpestri xmm0, xmm1, 0 (REX.W)
    uc.mem_write(0x1000, code)
    pack = lambda s: sum(c << (8 * i) for i, c in enumerate(s))
    uc.reg_write(UXMM[0], pack(b'a'))
    uc.reg_write(UXMM[1], pack(b'xxxxxxxxxxxxxxxa'))
    uc.reg_write(X.UC_X86_REG_RAX, 1)
    uc.reg_write(X.UC_X86_REG_RDX, 0x100000005)
    uc.emu_start(0x1000, 0x1000 + len(code), count=1)
    out = {'pcmpestr-rex-w-length-truncated': uc.reg_read(X.UC_X86_REG_RCX) != 15}
    # pshufb mm0, mm1 with REX.R (ignored): MM1 = 0 copies byte 0 of MM0
    # everywhere.
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x2000)
    code = bytes.fromhex('dbe3') + bytes.fromhex('0f6f042500200000') + bytes.fromhex('440f3800c1')
    uc.mem_write(0x1000, code)
    uc.mem_write(0x2000, (0x1122334455667788).to_bytes(8, 'little'))
    uc.emu_start(0x1000, 0x1000 + len(code))
    out['mmx-ssse3-rex-r-extends-mm'] = fpu_state(uc)['regs'][0][0] != 0x8888888888888888
    return out
