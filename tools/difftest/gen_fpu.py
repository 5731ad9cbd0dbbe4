"""x87 and MMX instruction streams for the Unicorn differential test.

Used by `gen_cases.py --fpu`. Writes cases in the same JSON Lines format as
the integer generator (flat 32-bit mode only); every step also carries an
"fpu" object with the state after the instruction as Unicorn computes it:

  "fpu": {"regs": [[mant, sign_exp] x 8],   # physical registers R0..R7
          "fsw": .., "fcw": .., "ftw": ..,    # ftw: full tag word as Unicorn reports it
          "mmx": 0 | 1}                       # 1: the registers hold MMX data

Only what Unicorn 2.1.4 (QEMU 5.0 x87) models the way the SDM does is
generated; unicorn_deviations.md lists what is left out and why, and which
status-word bits the replay ignores.
"""

import json
import random
import struct

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
from unicorn import x86_const as X

CODE = 0x1000
DATA = 0x2000
STACK = 0x3000
REGS = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi']
UREG = {r: getattr(X, 'UC_X86_REG_' + r.upper()) for r in REGS}


def m(op, reg, addr):
    """ModRM memory form with an absolute disp32."""
    return bytes(op) + bytes([(reg << 3) | 5]) + struct.pack('<I', addr)


def r(op, base, i):
    return bytes([op, base + i])


class Gen:
    def __init__(self, rng):
        self.rng = rng

    # -- operand data ------------------------------------------------------
    def f64(self):
        R = self.rng
        k = R.random()
        if k < 0.04:
            return R.choice([0.0, -0.0, float('inf'), float('-inf')])
        if k < 0.06:
            return struct.unpack('<d', struct.pack('<Q', 0x7ff8000000000000 | R.getrandbits(40)))[0]
        if k < 0.25:
            return float(R.randint(-1000, 1000))
        return R.choice([-1, 1]) * R.uniform(1, 2) * 2.0 ** R.randint(-40, 40)

    def data(self):
        """256 bytes: 8 f32 at 0x00, 8 f64 at 0x20, 4 f80 at 0x60, ints at 0xa0,
        MMX quadwords at 0xc0, control words at 0xf0."""
        R = self.rng
        b = bytearray(256)
        for k in range(8):
            b[4 * k:4 * k + 4] = struct.pack('<f', max(min(self.f64(), 3e38), -3e38)
                                             if R.random() < 0.97 else self.f64())
        for k in range(8):
            b[0x20 + 8 * k:0x28 + 8 * k] = struct.pack('<d', self.f64())
        for k in range(4):
            v = self.f64()
            raw = struct.unpack('<Q', struct.pack('<d', v))[0]
            sign = raw >> 63
            e = (raw >> 52) & 0x7ff
            if e == 0:
                se, mant = sign << 15, 0
            elif e == 0x7ff:
                se, mant = (sign << 15) | 0x7fff, (1 << 63) | ((raw & ((1 << 52) - 1)) << 11)
            else:
                se = (sign << 15) | (e - 1023 + 16383)
                mant = (1 << 63) | ((raw & ((1 << 52) - 1)) << 11) | R.getrandbits(11)
            b[0x60 + 16 * k:0x68 + 16 * k] = struct.pack('<Q', mant)
            b[0x68 + 16 * k:0x6a + 16 * k] = struct.pack('<H', se)
        for k in range(4):
            v = R.choice([R.randint(-40000, 40000), R.randint(-2**31, 2**31 - 1), R.randint(-5, 5)])
            b[0xa0 + 8 * k:0xa8 + 8 * k] = struct.pack('<q', v)
        for k in range(6):
            b[0xc0 + 8 * k:0xc8 + 8 * k] = struct.pack('<Q', R.getrandbits(64))
        return b

    # -- instructions --------------------------------------------------------
    def x87(self, st):
        """One x87 instruction given the tracked state (depth, pc, rc)."""
        R = self.rng
        d = st['depth']
        f32 = DATA + 4 * R.randrange(8)
        f64 = DATA + 0x20 + 8 * R.randrange(8)
        f80 = DATA + 0x60 + 16 * R.randrange(4)
        i16 = DATA + 0xa0 + 8 * R.randrange(4)
        out = DATA + 0xe0    # up to 10 bytes: 0xe0-0xe9
        i = R.randrange(8)
        k = R.random()
        if d < 2 or (d < 7 and k < 0.25):
            c = R.randrange(6)
            if c == 0:
                return m([0xd9], 0, f32), 1
            if c == 1:
                return m([0xdd], 0, f64), 1
            if c == 2:
                return m([0xdb], 5, f80), 1
            if c == 3:
                return m([R.choice([0xdf, 0xdb])], 0, i16), 1   # fild m16 / m32
            if c == 4 and d > 0:
                return r(0xd9, 0xc0, R.randrange(d)), 1       # fld st(i)
            if st['rc'] == 0 and st['pc'] == 3:
                return bytes([0xd9, R.choice([0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee])]), 1
            return m([0xdd], 0, f64), 1
        if d >= 7 or k < 0.35:
            c = R.randrange(6)
            if c == 0:
                return m([0xd9], 3, out), -1           # fstp m32
            if c == 1:
                return m([0xdd], 3, out), -1           # fstp m64
            if c == 2:
                return m([0xdb], 7, out), -1           # fstp m80
            if c == 3:
                return r(0xdd, 0xd8, R.randrange(d)), -1   # fstp st(i)
            if c == 4:
                return m([R.choice([0xdf, 0xdb])], R.choice([2, 3]), out), None  # fist(p) m16/m32
            if R.random() < 0.3:
                return m([R.choice([0xdf, 0xdb, 0xdd])], 1, out), -1   # fisttp m16/m32/m64 (SSE3)
            return m([0xdf], 7, out), -1               # fistp m64
        c = R.randrange(16)
        j = R.randrange(1, d)
        if c <= 3:
            op = R.randrange(8)
            if op in (2, 3):
                op = R.choice([0, 1, 4, 5, 6, 7])
            form = R.randrange(5)
            if form == 0:
                return r(0xd8, 0xc0 + 8 * op, j), 0                        # op st0, st(j)
            if form == 1:
                return r(0xdc, 0xc0 + 8 * op, j), 0                        # op st(j), st0
            if form == 2:
                return r(0xde, 0xc0 + 8 * op, j), -1                       # op-p st(j), st0
            if form == 3:
                return (m([0xd8], op, f32) if R.random() < 0.5 else m([0xdc], op, f64)), 0
            return m([R.choice([0xde, 0xda])], op, i16), 0                 # fiadd.. m16/m32
        if c == 4:
            return bytes([0xd9, R.choice([0xe0, 0xe1, 0xfa, 0xfc])]), 0   # fchs fabs fsqrt frndint
        if c == 5:
            return r(0xd9, 0xc8, j), 0                                       # fxch
        if c == 6:
            cmp = R.choice([(0xd8, 0xd0), (0xd8, 0xd8), (0xdd, 0xe0), (0xdd, 0xe8)])
            return r(cmp[0], cmp[1], j), (-1 if cmp[1] in (0xd8, 0xe8) else 0)
        if c == 7:
            return bytes([R.choice([0xde, 0xda]), 0xd9 if R.random() < 0.5 else 0xe9]), -2  # fcompp fucompp
        if c == 8:
            return bytes([0xd9, R.choice([0xe4, 0xe5])]), 0                  # ftst fxam
        if c == 9:
            return r(R.choice([0xdb, 0xdf]), R.choice([0xe8, 0xf0]), j), None  # f(u)comi(p)
        if c == 10:
            return r(R.choice([0xda, 0xdb]), R.choice([0xc0, 0xc8, 0xd0, 0xd8]), j), 0  # fcmovcc
        if c == 11:
            return m([0xd9], 5, DATA + 0xf0 + 2 * R.randrange(4)), 'cw'     # fldcw
        if c == 12:
            return bytes([0xdf, 0xe0]), 0                                    # fnstsw ax
        if c == 13 and st['pc'] == 3 and d < 7 and st['finite0']:
            return bytes([0xd9, 0xf4]), 1                                    # fxtract
        if c == 14 and st['pc'] == 3 and st['finite0'] and st['finite1']:
            return self.scale_setup(st)
        return m([0xd9], 7, out), 0                                          # fnstcw m16

    def scale_setup(self, st):
        # FSCALE with whatever ST(1) holds; large scales just overflow or
        # underflow (masked).
        return bytes([0xd9, 0xfd]), 0

    def mmx(self):
        R = self.rng
        a = R.randrange(8)
        b = R.randrange(8)
        q = DATA + 0xc0 + 8 * R.randrange(6)
        ops = [0xfc, 0xfd, 0xfe, 0xec, 0xed, 0xdc, 0xdd, 0xf8, 0xf9, 0xfa, 0xe8, 0xe9, 0xd8,
               0xd9, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xd5, 0xe5, 0xf5, 0xdb, 0xdf, 0xeb,
               0xef, 0xf1, 0xf2, 0xf3, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0x63, 0x6b, 0x67, 0x68,
               0x69, 0x6a, 0x60, 0x61, 0x62]
        c = R.random()
        if c < 0.15:
            return m([0x0f, 0x6f], a, q)                       # movq mm, m64
        if c < 0.2:
            return bytes([0x0f, 0x6e, 0xc0 | (a << 3) | R.randrange(8)])   # movd mm, r32
        if c < 0.25:
            return bytes([0x0f, 0x7e, 0xc0 | (a << 3) | R.choice([0, 1, 2, 3, 5, 6, 7])])  # movd r32, mm
        if c < 0.3:
            return m([0x0f, 0x7f], a, DATA + 0xe0)            # movq m64, mm
        if c < 0.4:
            grp = R.choice([(0x71, [2, 4, 6]), (0x72, [2, 4, 6]), (0x73, [2, 6])])
            return bytes([0x0f, grp[0], 0xc0 | (R.choice(grp[1]) << 3) | a,
                          R.choice([0, 1, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 200])])
        op = R.choice(ops)
        if R.random() < 0.3 and op not in (0x60, 0x61, 0x62):
            return m([0x0f, op], a, q)
        return bytes([0x0f, op, 0xc0 | (a << 3) | b])


def cc_defined(b):
    """True if the SDM defines C0/C2/C3 after instruction bytes `b`
    (compares, FXAM, FCOMI's 'not affected', control instructions, MMX)."""
    if b[0] == 0x0f:
        return True
    op, modrm = b[0], b[1]
    reg = (modrm >> 3) & 7
    if modrm < 0xc0:
        return (op in (0xd8, 0xdc, 0xda, 0xde) and reg in (2, 3)) or \
            (op == 0xd9 and reg in (5, 7)) or (op == 0xdd and reg == 7)
    return (op in (0xd8, 0xdc) and reg in (2, 3)) or (op == 0xdd and reg in (4, 5)) or \
        (op == 0xde and modrm == 0xd9) or (op == 0xda and modrm == 0xe9) or \
        (op == 0xd9 and modrm in (0xe4, 0xe5)) or (op in (0xdb, 0xdf) and reg in (5, 6)) or \
        (op == 0xdb and modrm == 0xe3) or (op == 0xdf and modrm == 0xe0)


def fpu_state(uc):
    regs = []
    for k in range(8):
        mant, se = uc.reg_read(getattr(X, 'UC_X86_REG_FP%d' % k))
        regs.append([mant, se])
    return {'regs': regs, 'fsw': uc.reg_read(X.UC_X86_REG_FPSW),
            'fcw': uc.reg_read(X.UC_X86_REG_FPCW), 'ftw': uc.reg_read(X.UC_X86_REG_FPTAG)}


def build_case(rng, n_insns):
    g = Gen(rng)
    data = g.data()
    cws = [0x037f | (rng.choice([0, 2, 3]) << 8) | (rng.randrange(4) << 10) for _ in range(3)] + [0x037f]
    for k, cw in enumerate(cws):
        data[0xf0 + 2 * k:0xf2 + 2 * k] = struct.pack('<H', cw)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    init = {r: rng.getrandbits(32) for r in REGS}
    init['esp'] = STACK + 0x80
    for r in REGS:
        uc.reg_write(UREG[r], init[r])
    fl = 0x2 | rng.choice([0, 1]) | rng.choice([0, 0x40]) | rng.choice([0, 4])
    uc.reg_write(X.UC_X86_REG_EFLAGS, fl)
    uc.mem_write(DATA, bytes(data))
    uc.mem_write(STACK, bytes(256))
    mmx_case = rng.random() < 0.3
    code = bytearray()
    st = {'depth': 0, 'pc': 3, 'rc': 0, 'finite0': True, 'finite1': True}
    eip = CODE
    seq = None
    if mmx_case:
        seq = [bytes([0xdb, 0xe3])] + [g.mmx() for _ in range(n_insns - 2)] + [bytes([0x0f, 0x77])]
    steps_out = []
    hist = {}
    for idx in range(n_insns):
        if seq is not None:
            b = seq[idx]
        elif idx == 0:
            b = bytes([0xdb, 0xe3])   # fninit
        else:
            b, _ = g.x87(st)
        uc.mem_write(CODE + len(code), b)
        code += b
        start = eip
        try:
            uc.emu_start(start, start + len(b), count=1)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError('unicorn fault on %s: %s' % (b.hex(), e))
        eip = uc.reg_read(X.UC_X86_REG_EIP)
        assert eip == start + len(b), (b.hex(), hex(eip))
        # Track the x87 state the generator needs (stack depth, PC, RC).
        ftw = uc.reg_read(X.UC_X86_REG_FPTAG)
        st['depth'] = sum(1 for k in range(8) if (ftw >> (2 * k)) & 3 != 3)
        fcw = uc.reg_read(X.UC_X86_REG_FPCW)
        st['pc'] = (fcw >> 8) & 3
        st['rc'] = (fcw >> 10) & 3
        top = (uc.reg_read(X.UC_X86_REG_FPSW) >> 11) & 7
        _, se0 = uc.reg_read(getattr(X, 'UC_X86_REG_FP%d' % top))
        st['finite0'] = (se0 & 0x7fff) != 0x7fff
        _, se1 = uc.reg_read(getattr(X, 'UC_X86_REG_FP%d' % ((top + 1) & 7)))
        st['finite1'] = (se1 & 0x7fff) != 0x7fff
        regs = {r: uc.reg_read(UREG[r]) for r in REGS}
        regs['eip'] = eip
        step = {'asm': b.hex(), 'len': len(b), 'regs': regs,
                'eflags': uc.reg_read(X.UC_X86_REG_EFLAGS) & 0xfd7, 'undef': 0,
                'undef_regs': [], 'fpu': fpu_state(uc)}
        # C0/C2/C3 the SDM leaves undefined: the replay ignores and syncs them.
        step['fpu']['fsw_undef'] = 0 if cc_defined(b) else 0x4500
        step['fpu']['mmx'] = 1 if mmx_case and idx > 0 else 0
        if b == bytes([0xdf, 0xe0]):
            # FNSTSW AX copies exception flags Unicorn does not raise.
            step['undef_regs'] = ['eax']
        steps_out.append(step)
        key = b[:2].hex() if b[0] == 0x0f else '%02x/%d' % (b[0], (b[1] >> 3) & 7)
        hist[key] = hist.get(key, 0) + 1
    final = uc.mem_read(DATA, 256), uc.mem_read(STACK, 256)
    case = {'mode': 32, 'code_addr': CODE, 'code': bytes(code).hex(),
            'init': dict(init, eip=CODE, eflags=fl),
            'mem': [{'addr': DATA, 'data': bytes(data).hex()}, {'addr': STACK, 'data': bytes(256).hex()}],
            'steps': steps_out,
            'final_mem': [{'addr': DATA, 'data': bytes(final[0]).hex()},
                          {'addr': STACK, 'data': bytes(final[1]).hex()}]}
    return case, hist


def generate_fpu(seed, count, out_path):
    rng = random.Random(seed)
    total = 0
    cases = 0
    hist = {}
    with open(out_path, 'w') as out:
        while total < count:
            n = rng.randrange(10, 60)
            case, h = build_case(rng, n)
            for k, v in h.items():
                hist[k] = hist.get(k, 0) + v
            out.write(json.dumps(case, separators=(',', ':')) + '\n')
            total += len(case['steps'])
            cases += 1
    return {'cases': cases, 'steps': total, 'hist': hist}
