"""SSE/SSE2/SSE3/SSSE3/SSE4.1/SSE4.2 instruction streams for the Unicorn
differential test.

Used by `gen_cases.py --sse`. Writes cases in the same JSON Lines format as
the integer generator (flat 32-bit mode only). `init` also carries the
XMM registers and MXCSR ("xmm": 8 hex strings of 32 digits, XMM0 first,
"mxcsr"), and every step an "sse" object with the state after the
instruction as Unicorn computes it:

  "sse": {"xmm": [hex x 8], "mxcsr": ..}

Cases that use the MMX-register forms (PSHUFB mm, PMINUB mm, CVTPI2PS,
MOVQ2DQ...) start with FNINIT and also carry the "fpu" object of the x87
stream (gen_fpu.py), with "mmx": 1.

Unicorn 2.1.4 (QEMU 5.0) does not raise MXCSR exception flags and never
delivers #XM, so every MXCSR value loaded keeps all exceptions masked and
the replay compares MXCSR without bits 0-5; unicorn_deviations.md has the
list of what else is left out and why.
"""

import json
import random
import struct

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
from unicorn import x86_const as X

from gen_fpu import fpu_state

CODE = 0x1000
DATA = 0x2000
STACK = 0x3000
REGS = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi']
UREG = {r: getattr(X, 'UC_X86_REG_' + r.upper()) for r in REGS}
UXMM = [getattr(X, 'UC_X86_REG_XMM%d' % k) for k in range(8)]
# General registers an instruction may write (never ESP).
GDST = [0, 1, 2, 3, 5, 6, 7]

# Data region layout (256 bytes at DATA).
VEC = 0x00       # 10 aligned 16-byte vectors, 0x00-0x9f
MXV = 0xa0       # 8 MXCSR values
OUT = 0xc0       # 4 aligned 16-byte store slots, 0xc0-0xff


def modrm_mem(reg, addr):
    return bytes([(reg << 3) | 5]) + struct.pack('<I', addr)


def modrm_reg(reg, rm):
    return bytes([0xc0 | (reg << 3) | rm])


# (name, prefix, opcode bytes after 0F, form[, imm range])
# Forms: rm = xmm, xmm/m128 (aligned); rmu = unaligned allowed;
# r4/r8/r2 = xmm, xmm/m32/m64/m16; xg = xmm, r/m32; gx = r32, xmm (register
# only); gx4/gx8 = r32, xmm/m32/m64; st16/st16u/st8/st4 = memory store of
# an xmm; mo8 = xmm, m64 (memory only); mx4 = r/m32, xmm; i suffix: imm8.
SSE = [
    ('movaps', b'', b'\x28', 'rm'), ('movaps_st', b'', b'\x29', 'st16'),
    ('movups', b'', b'\x10', 'rmu'), ('movups_st', b'', b'\x11', 'st16u'),
    ('movlps', b'', b'\x12', 'mo8_or_reg'), ('movlps_st', b'', b'\x13', 'st8'),
    ('movhps', b'', b'\x16', 'mo8_or_reg'), ('movhps_st', b'', b'\x17', 'st8'),
    ('unpcklps', b'', b'\x14', 'rm'), ('unpckhps', b'', b'\x15', 'rm'),
    ('movntps', b'', b'\x2b', 'st16'), ('movmskps', b'', b'\x50', 'gx'),
    ('sqrtps', b'', b'\x51', 'rm'), ('rsqrtps', b'', b'\x52', 'rm'), ('rcpps', b'', b'\x53', 'rm'),
    ('andps', b'', b'\x54', 'rm'), ('andnps', b'', b'\x55', 'rm'), ('orps', b'', b'\x56', 'rm'),
    ('xorps', b'', b'\x57', 'rm'), ('addps', b'', b'\x58', 'rm'), ('mulps', b'', b'\x59', 'rm'),
    ('subps', b'', b'\x5c', 'rm'), ('minps', b'', b'\x5d', 'rm'), ('divps', b'', b'\x5e', 'rm'),
    ('maxps', b'', b'\x5f', 'rm'), ('cmpps', b'', b'\xc2', 'rmi', 8), ('shufps', b'', b'\xc6', 'rmi', 256),
    ('ucomiss', b'', b'\x2e', 'r4'), ('comiss', b'', b'\x2f', 'r4'),
    ('cvtps2pd', b'', b'\x5a', 'r8'), ('cvtdq2ps', b'', b'\x5b', 'rm'),
    # F3
    ('movss', b'\xf3', b'\x10', 'r4'), ('movss_st', b'\xf3', b'\x11', 'st4'),
    ('sqrtss', b'\xf3', b'\x51', 'r4'), ('rsqrtss', b'\xf3', b'\x52', 'r4'),
    ('rcpss', b'\xf3', b'\x53', 'r4'), ('addss', b'\xf3', b'\x58', 'r4'),
    ('mulss', b'\xf3', b'\x59', 'r4'), ('subss', b'\xf3', b'\x5c', 'r4'),
    ('minss', b'\xf3', b'\x5d', 'r4'), ('divss', b'\xf3', b'\x5e', 'r4'),
    ('maxss', b'\xf3', b'\x5f', 'r4'), ('cmpss', b'\xf3', b'\xc2', 'r4i', 8),
    ('cvtsi2ss', b'\xf3', b'\x2a', 'xg'), ('cvtss2si', b'\xf3', b'\x2d', 'gx4'),
    ('cvttss2si', b'\xf3', b'\x2c', 'gx4'), ('cvtss2sd', b'\xf3', b'\x5a', 'r4'),
    ('cvttps2dq', b'\xf3', b'\x5b', 'rm'), ('movdqu', b'\xf3', b'\x6f', 'rmu'),
    ('movdqu_st', b'\xf3', b'\x7f', 'st16u'), ('movq', b'\xf3', b'\x7e', 'r8'),
    ('cvtdq2pd', b'\xf3', b'\xe6', 'r8'), ('movshdup', b'\xf3', b'\x16', 'rm'),
    ('movsldup', b'\xf3', b'\x12', 'rm'), ('pshufhw', b'\xf3', b'\x70', 'rmi', 256),
    # F2
    ('movsd', b'\xf2', b'\x10', 'r8'), ('movsd_st', b'\xf2', b'\x11', 'st8'),
    ('sqrtsd', b'\xf2', b'\x51', 'r8'), ('addsd', b'\xf2', b'\x58', 'r8'),
    ('mulsd', b'\xf2', b'\x59', 'r8'), ('subsd', b'\xf2', b'\x5c', 'r8'),
    ('minsd', b'\xf2', b'\x5d', 'r8'), ('divsd', b'\xf2', b'\x5e', 'r8'),
    ('maxsd', b'\xf2', b'\x5f', 'r8'), ('cmpsd', b'\xf2', b'\xc2', 'r8i', 8),
    ('cvtsi2sd', b'\xf2', b'\x2a', 'xg'), ('cvtsd2si', b'\xf2', b'\x2d', 'gx8'),
    ('cvttsd2si', b'\xf2', b'\x2c', 'gx8'), ('cvtsd2ss', b'\xf2', b'\x5a', 'r8'),
    ('cvtpd2dq', b'\xf2', b'\xe6', 'rm'), ('pshuflw', b'\xf2', b'\x70', 'rmi', 256),
    ('haddps', b'\xf2', b'\x7c', 'rm'), ('hsubps', b'\xf2', b'\x7d', 'rm'),
    ('addsubps', b'\xf2', b'\xd0', 'rm'), ('movddup', b'\xf2', b'\x12', 'r8'),
    ('lddqu', b'\xf2', b'\xf0', 'mou'),
    # 66
    ('movapd', b'\x66', b'\x28', 'rm'), ('movapd_st', b'\x66', b'\x29', 'st16'),
    ('movupd', b'\x66', b'\x10', 'rmu'), ('movupd_st', b'\x66', b'\x11', 'st16u'),
    ('movlpd', b'\x66', b'\x12', 'mo8'), ('movlpd_st', b'\x66', b'\x13', 'st8'),
    ('movhpd', b'\x66', b'\x16', 'mo8'), ('movhpd_st', b'\x66', b'\x17', 'st8'),
    ('unpcklpd', b'\x66', b'\x14', 'rm'), ('unpckhpd', b'\x66', b'\x15', 'rm'),
    ('movntpd', b'\x66', b'\x2b', 'st16'), ('movmskpd', b'\x66', b'\x50', 'gx'),
    ('sqrtpd', b'\x66', b'\x51', 'rm'), ('andpd', b'\x66', b'\x54', 'rm'),
    ('andnpd', b'\x66', b'\x55', 'rm'), ('orpd', b'\x66', b'\x56', 'rm'),
    ('xorpd', b'\x66', b'\x57', 'rm'), ('addpd', b'\x66', b'\x58', 'rm'),
    ('mulpd', b'\x66', b'\x59', 'rm'), ('subpd', b'\x66', b'\x5c', 'rm'),
    ('minpd', b'\x66', b'\x5d', 'rm'), ('divpd', b'\x66', b'\x5e', 'rm'),
    ('maxpd', b'\x66', b'\x5f', 'rm'), ('cmppd', b'\x66', b'\xc2', 'rmi', 8),
    ('shufpd', b'\x66', b'\xc6', 'rmi', 4), ('ucomisd', b'\x66', b'\x2e', 'r8'),
    ('comisd', b'\x66', b'\x2f', 'r8'), ('cvtpd2ps', b'\x66', b'\x5a', 'rm'),
    ('cvtps2dq', b'\x66', b'\x5b', 'rm'), ('cvttpd2dq', b'\x66', b'\xe6', 'rm'),
    ('movd', b'\x66', b'\x6e', 'xg'), ('movd_st', b'\x66', b'\x7e', 'mx4'),
    ('movq_st', b'\x66', b'\xd6', 'st8_or_reg'), ('movdqa', b'\x66', b'\x6f', 'rm'),
    ('movdqa_st', b'\x66', b'\x7f', 'st16'), ('movntdq', b'\x66', b'\xe7', 'st16'),
    ('pinsrw', b'\x66', b'\xc4', 'xgi', 8), ('pextrw', b'\x66', b'\xc5', 'gxi', 8),
    ('pmovmskb', b'\x66', b'\xd7', 'gx'), ('pshufd', b'\x66', b'\x70', 'rmi', 256),
    ('haddpd', b'\x66', b'\x7c', 'rm'), ('hsubpd', b'\x66', b'\x7d', 'rm'),
    ('addsubpd', b'\x66', b'\xd0', 'rm'),
]
# Packed integer "66 0F xx /r" with xmm, xmm/m128.
for op in list(range(0x60, 0x6e)) + [0x74, 0x75, 0x76] + list(range(0xd1, 0xd6)) + \
        list(range(0xd8, 0xe6)) + list(range(0xe8, 0xf0)) + list(range(0xf1, 0xf7)) + \
        list(range(0xf8, 0xff)):
    SSE.append(('p%02x' % op, b'\x66', bytes([op]), 'rm'))
SSE += [('shift71', b'\x66', b'\x71', 'shift', [2, 4, 6]),
        ('shift72', b'\x66', b'\x72', 'shift', [2, 4, 6]),
        ('shift73', b'\x66', b'\x73', 'shift', [2, 3, 6, 7])]
# SSSE3 66 0F 38 xx
for op in list(range(0x00, 0x0c)) + [0x1c, 0x1d, 0x1e]:
    SSE.append(('ssse3_%02x' % op, b'\x66', b'\x38' + bytes([op]), 'rm'))
SSE.append(('palignr', b'\x66', b'\x3a\x0f', 'rmi', 40))
# SSE4.1 / 4.2 66 0F 38 xx
for op in [0x10, 0x14, 0x15, 0x17, 0x28, 0x29, 0x2b, 0x37] + list(range(0x38, 0x42)):
    SSE.append(('sse41_%02x' % op, b'\x66', b'\x38' + bytes([op]), 'rm'))
for op, form in [(0x20, 'r8'), (0x21, 'r4'), (0x22, 'r2'), (0x23, 'r8'), (0x24, 'r4'), (0x25, 'r8')]:
    SSE.append(('pmovsx_%02x' % op, b'\x66', b'\x38' + bytes([op]), form))
    SSE.append(('pmovzx_%02x' % op, b'\x66', b'\x38' + bytes([op + 0x10]), form))
SSE += [
    ('movntdqa', b'\x66', b'\x38\x2a', 'mo16'),
    ('roundps', b'\x66', b'\x3a\x08', 'rmi', 16), ('roundpd', b'\x66', b'\x3a\x09', 'rmi', 16),
    ('roundss', b'\x66', b'\x3a\x0a', 'r4i', 16), ('roundsd', b'\x66', b'\x3a\x0b', 'r8i', 16),
    ('blendps', b'\x66', b'\x3a\x0c', 'rmi', 16), ('blendpd', b'\x66', b'\x3a\x0d', 'rmi', 4),
    ('pblendw', b'\x66', b'\x3a\x0e', 'rmi', 256),
    ('pextrb', b'\x66', b'\x3a\x14', 'mxi1', 16), ('pextrw2', b'\x66', b'\x3a\x15', 'mxi2', 8),
    ('pextrd', b'\x66', b'\x3a\x16', 'mxi4', 4), ('extractps', b'\x66', b'\x3a\x17', 'mxi4', 4),
    ('pinsrb', b'\x66', b'\x3a\x20', 'xgi1', 16), ('insertps', b'\x66', b'\x3a\x21', 'r4i', 256),
    # DPPS/DPPD are not generated: QEMU 5.0 sums the products in another
    # order, starting from +0.0 (unicorn_deviations.md).
    ('pinsrd', b'\x66', b'\x3a\x22', 'xgi4', 4), ('mpsadbw', b'\x66', b'\x3a\x42', 'rmi', 8),
    ('pcmpestrm', b'\x66', b'\x3a\x60', 'str', 128), ('pcmpestri', b'\x66', b'\x3a\x61', 'str', 128),
    ('pcmpistrm', b'\x66', b'\x3a\x62', 'str', 128), ('pcmpistri', b'\x66', b'\x3a\x63', 'str', 128),
    ('popcnt', b'\xf3', b'\xb8', 'gg'), ('crc32b', b'\xf2', b'\x38\xf0', 'gg1'),
    ('crc32d', b'\xf2', b'\x38\xf1', 'gg'), ('crc32w', b'\x66\xf2', b'\x38\xf1', 'gg2'),
]

# MMX-register forms (no prefix): mm, mm/m64.
MMX = []
for op in [0xd4, 0xda, 0xde, 0xe0, 0xe3, 0xe4, 0xea, 0xee, 0xf4, 0xf6, 0xfb]:
    MMX.append(('mmx_%02x' % op, b'', bytes([op]), 'mm'))
for op in list(range(0x00, 0x0c)) + [0x1c, 0x1d, 0x1e]:
    MMX.append(('mmx_ssse3_%02x' % op, b'', b'\x38' + bytes([op]), 'mm'))
MMX += [
    ('pshufw', b'', b'\x70', 'mmi', 256), ('palignr_mm', b'', b'\x3a\x0f', 'mmi', 24),
    ('pinsrw_mm', b'', b'\xc4', 'mgi', 4), ('pextrw_mm', b'', b'\xc5', 'gmi', 4),
    ('pmovmskb_mm', b'', b'\xd7', 'gm'),
    ('cvtpi2ps', b'', b'\x2a', 'xm'), ('cvtps2pi', b'', b'\x2d', 'mx8'),
    ('cvttps2pi', b'', b'\x2c', 'mx8'), ('cvtpi2pd', b'\x66', b'\x2a', 'xm'),
    ('cvtpd2pi', b'\x66', b'\x2d', 'mx'), ('cvttpd2pi', b'\x66', b'\x2c', 'mx'),
    ('movq2dq', b'\xf3', b'\xd6', 'xmr'), ('movdq2q', b'\xf2', b'\xd6', 'mxr'),
]


class Gen:
    def __init__(self, rng):
        self.rng = rng

    def f64(self):
        R = self.rng
        k = R.random()
        if k < 0.05:
            return R.choice([0.0, -0.0, float('inf'), float('-inf')])
        if k < 0.2:
            return float(R.randint(-100, 100)) / R.choice([1, 2, 4, 8])
        return R.choice([-1, 1]) * R.uniform(1, 2) * 2.0 ** R.randint(-30, 30)

    def f32_bits(self):
        R = self.rng
        k = R.random()
        if k < 0.04:
            return R.choice([0x7fc00000, 0xffc00000, 0x7f800001 | R.getrandbits(22),
                             0x7fc00000 | R.getrandbits(22)])
        if k < 0.08:
            return (R.getrandbits(1) << 31) | R.randrange(1, 1 << 23)      # denormal
        if k < 0.1:
            return (R.getrandbits(1) << 31) | (R.choice([1, 2, 253, 254]) << 23) | R.getrandbits(23)
        if k < 0.13:
            # Around the 32-bit integer limits and the halfway points.
            v = R.choice([2147483520.0, 2147483648.0, -2147483648.0, -2147483904.0, 0.5, -0.5,
                          1.5, 2.5, -2.5, 4294967296.0])
            return struct.unpack('<I', struct.pack('<f', v))[0]
        v = max(min(self.f64(), 3e38), -3e38)
        return struct.unpack('<I', struct.pack('<f', v))[0]

    def f64_bits(self):
        R = self.rng
        k = R.random()
        if k < 0.04:
            return R.choice([0x7ff8000000000000, 0xfff8000000000000,
                             0x7ff0000000000001 | R.getrandbits(50), 0x7ff8000000000000 | R.getrandbits(50)])
        if k < 0.08:
            return (R.getrandbits(1) << 63) | R.randrange(1, 1 << 52)
        if k < 0.1:
            return (R.getrandbits(1) << 63) | (R.choice([1, 2, 2045, 2046]) << 52) | R.getrandbits(52)
        if k < 0.13:
            v = R.choice([2147483647.0, 2147483647.5, 2147483648.0, -2147483648.0, -2147483648.5,
                          -2147483649.0, 9.2233720368547758e18, 0.5, -1.5, 2.5])
            return struct.unpack('<Q', struct.pack('<d', v))[0]
        v = self.f64()
        if R.random() < 0.3:
            v = v * 2.0 ** R.randint(-900, 900)
        return struct.unpack('<Q', struct.pack('<d', v))[0]

    def vec(self):
        """One 128-bit value: floats, doubles, integers or a short string."""
        R = self.rng
        k = R.random()
        if k < 0.3:
            return sum(self.f32_bits() << (32 * i) for i in range(4))
        if k < 0.5:
            return sum(self.f64_bits() << (64 * i) for i in range(2))
        if k < 0.65:
            return sum(R.choice([0, 1, 0x7f, 0x80, 0xff, R.getrandbits(8)]) << (8 * i) for i in range(16))
        if k < 0.75:
            return sum(R.choice([0, 1, 0x7fff, 0x8000, 0xffff, R.getrandbits(16)]) << (16 * i)
                       for i in range(8))
        if k < 0.85:
            # A string for PCMPxSTRx: letters from a small alphabet, maybe a NUL.
            n = R.randrange(17)
            s = [R.choice(b'abcdeAB09') for _ in range(n)] + [0] * (16 - n)
            return sum(c << (8 * i) for i, c in enumerate(s))
        if k < 0.92:
            # A shift count for PSLL/PSRL/PSRA by register.
            return R.choice([R.randrange(70), R.randrange(1 << 16)]) | (R.getrandbits(64) << 64)
        return R.getrandbits(128)

    def mxcsr(self):
        R = self.rng
        # All exceptions masked (Unicorn delivers no #XM), random RC, DAZ
        # and flags.
        # FTZ stays clear: QEMU 5.0 applies it to the x87 status instead.
        return 0x1f80 | (R.randrange(4) << 13) | R.choice([0, 0x40]) | R.getrandbits(6)

    def data(self):
        b = bytearray(256)
        for k in range(10):
            b[VEC + 16 * k:VEC + 16 * k + 16] = self.vec().to_bytes(16, 'little')
        for k in range(8):
            b[MXV + 4 * k:MXV + 4 * k + 4] = struct.pack('<I', self.mxcsr())
        for k in range(4):
            b[OUT + 16 * k:OUT + 16 * k + 16] = self.vec().to_bytes(16, 'little')
        return b

    # -- operands ------------------------------------------------------------
    def load_addr(self, size, aligned=True):
        """A readable address: the vectors, mostly, or the store slots."""
        R = self.rng
        lo, hi = (VEC, VEC + 0xa0) if R.random() < 0.8 else (OUT, 0x100)
        if aligned and size == 16:
            return DATA + lo + 16 * R.randrange((hi - lo) // 16)
        return DATA + R.randrange(lo, hi - size + 1)

    def store_addr(self, size, aligned=True):
        R = self.rng
        if aligned and size == 16:
            return DATA + OUT + 16 * R.randrange(4)
        return DATA + R.randrange(OUT, 0x100 - size + 1)

    def rm(self, reg, size, mem_p=0.3, aligned=True, mem_only=False, reg_only=False, rmregs=8):
        R = self.rng
        if reg_only or (not mem_only and R.random() >= mem_p):
            return modrm_reg(reg, R.randrange(rmregs))
        return modrm_mem(reg, self.load_addr(size, aligned))

    def insn(self, entry):
        """Bytes of one instruction from a table entry."""
        R = self.rng
        name, pre, op, form = entry[:4]
        immr = entry[4] if len(entry) > 4 else None
        x = R.randrange(8)
        g = R.choice(GDST)
        head = pre + b'\x0f' + op
        imm = b''
        if isinstance(immr, int):
            imm = bytes([R.randrange(immr)])
        if form in ('rm', 'rmi'):
            body = self.rm(x, 16)
        elif form == 'rmu':
            body = self.rm(x, 16, aligned=False)
        elif form in ('r4', 'r4i'):
            body = self.rm(x, 4)
        elif form in ('r8', 'r8i'):
            body = self.rm(x, 8)
        elif form == 'r2':
            body = self.rm(x, 2)
        elif form == 'mo8':
            body = self.rm(x, 8, mem_only=True)
        elif form == 'mo8_or_reg':
            body = self.rm(x, 8)
        elif form == 'mo16':
            body = self.rm(x, 16, mem_only=True)
        elif form == 'mou':
            body = self.rm(x, 16, mem_only=True, aligned=False)
        elif form == 'st16':
            body = modrm_mem(x, self.store_addr(16))
        elif form == 'st16u':
            body = modrm_mem(x, self.store_addr(16, aligned=False)) if R.random() < 0.7 else \
                modrm_reg(x, R.randrange(8))
        elif form == 'st8':
            body = modrm_mem(x, self.store_addr(8))
        elif form == 'st8_or_reg':
            body = modrm_mem(x, self.store_addr(8)) if R.random() < 0.5 else modrm_reg(x, R.randrange(8))
        elif form == 'st4':
            body = modrm_mem(x, self.store_addr(4))
        elif form == 'xg':
            body = modrm_reg(x, R.randrange(8)) if R.random() < 0.6 else modrm_mem(x, self.load_addr(4))
        elif form in ('xgi', 'xgi1', 'xgi4'):
            size = {'xgi': 2, 'xgi1': 1, 'xgi4': 4}[form]
            body = modrm_reg(x, R.randrange(8)) if R.random() < 0.6 else modrm_mem(x, self.load_addr(size))
        elif form == 'gx':
            body = modrm_reg(g, x)
        elif form == 'gxi':
            body = modrm_reg(g, x)
        elif form in ('gx4', 'gx8'):
            body = self.rm(g, 4 if form == 'gx4' else 8)
        elif form == 'mx4':
            body = modrm_reg(x, g) if R.random() < 0.6 else modrm_mem(x, self.store_addr(4))
        elif form in ('mxi1', 'mxi2', 'mxi4'):
            size = int(form[-1])
            body = modrm_reg(x, g) if R.random() < 0.6 else modrm_mem(x, self.store_addr(size))
        elif form == 'shift':
            sub = R.choice(immr)
            body = modrm_reg(sub, x)
            imm = bytes([R.choice([0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 200])])
        elif form == 'str':
            body = self.rm(x, 16, aligned=False)
            imm = bytes([R.randrange(128)])
        elif form in ('gg', 'gg1', 'gg2'):
            size = {'gg': 4, 'gg1': 1, 'gg2': 2}[form]
            src = R.randrange(8) if form != 'gg1' else R.choice([0, 1, 2, 3, 4, 5, 6, 7])
            body = modrm_reg(g, src) if R.random() < 0.6 else modrm_mem(g, self.load_addr(size))
        elif form == 'mm':
            body = self.rm(R.randrange(8), 8)
        elif form == 'mmi':
            body = self.rm(R.randrange(8), 8)
        elif form == 'mgi':
            body = modrm_reg(R.randrange(8), R.randrange(8)) if R.random() < 0.6 else \
                modrm_mem(R.randrange(8), self.load_addr(2))
        elif form in ('gmi', 'gm'):
            body = modrm_reg(g, R.randrange(8))
        elif form == 'xm':
            body = self.rm(x, 8)
        elif form == 'mx8':
            body = self.rm(R.randrange(8), 8)
        elif form == 'mx':
            body = self.rm(R.randrange(8), 16)
        elif form == 'xmr':
            body = modrm_reg(x, R.randrange(8))
        elif form == 'mxr':
            body = modrm_reg(R.randrange(8), x)
        else:
            raise ValueError(form)
        return head + body + imm


# Two-operand arithmetic whose NaN result QEMU 5.0 picks by the x87 rules
# (larger significand, QNaN over SNaN) instead of SSE's "first operand":
# name -> (lane bits, scalar, horizontal).
NAN2 = {}
for n in ('add', 'sub', 'mul', 'div'):
    NAN2[n + 'ps'] = (32, False, False)
    NAN2[n + 'pd'] = (64, False, False)
    NAN2[n + 'ss'] = (32, True, False)
    NAN2[n + 'sd'] = (64, True, False)
NAN2.update({'addsubps': (32, False, False), 'addsubpd': (64, False, False),
             'haddps': (32, False, True), 'hsubps': (32, False, True),
             'haddpd': (64, False, True), 'hsubpd': (64, False, True)})


def is_nan(v, bits):
    e = (v >> (bits - 1 - (8 if bits == 32 else 11))) & (0xff if bits == 32 else 0x7ff)
    return e == (0xff if bits == 32 else 0x7ff) and v & ((1 << (23 if bits == 32 else 52)) - 1) != 0


def operands(uc, entry, b):
    """(destination register value, source value) of a reg, reg/mem form."""
    head = len(entry[1]) + 1 + len(entry[2])
    modrm = b[head]
    a = uc.reg_read(UXMM[(modrm >> 3) & 7])
    if modrm >= 0xc0:
        src = uc.reg_read(UXMM[modrm & 7])
    else:
        addr = struct.unpack('<I', bytes(b[head + 1:head + 5]))[0]
        src = int.from_bytes(bytes(uc.mem_read(addr, 16)), 'little')
    return a, src


def qemu_disagrees(uc, entry, b):
    """True if QEMU 5.0 is known to compute this instruction differently
    from the SDM for these operands (see unicorn_deviations.md)."""
    name = entry[0]
    if name not in NAN2 and not name.startswith('pcmp'):
        return False
    a, s = operands(uc, entry, b)
    v = uc.reg_read(X.UC_X86_REG_EDX)
    return disagrees_on(name, a, s, b[-1], v - (1 << 32) if v >> 31 else v)


def disagrees_on(name, a, s, imm, elen):
    """qemu_disagrees for known operand values: `a` the destination
    register, `s` the source (register, or 16 bytes at the address), `imm`
    the immediate byte, `elen` the signed PCMPESTRx length in EDX (RDX)."""
    if name in NAN2:
        bits, scalar, horiz = NAN2[name]
        lanes = lambda v: [(v >> (bits * k)) & ((1 << bits) - 1) for k in range(128 // bits)]
        la, ls = lanes(a), lanes(s)
        if horiz:
            pairs = [(v[k], v[k + 1]) for v in (la, ls) for k in range(0, len(la), 2)]
        else:
            pairs = list(zip(la, ls))[:1 if scalar else None]
        return any(is_nan(x, bits) and is_nan(y, bits) for x, y in pairs)
    if name.startswith('pcmp') and 'str' in name and (imm >> 2) & 3 == 3:
        # Equal ordered: QEMU finds no partial match at the end of a fully
        # valid second operand; the SDM compares the elements that remain.
        words = imm & 1
        n = 8 if words else 16
        if 'pcmpe' in name:
            lb = min(abs(elen), n)
        else:
            w = 16 if words else 8
            lb = next((k for k in range(n) if (s >> (w * k)) & ((1 << w) - 1) == 0), n)
        return lb == n
    return False


def xmm_state(uc):
    return ['%032x' % uc.reg_read(r) for r in UXMM]


def build_case(rng, n_insns):
    g = Gen(rng)
    data = g.data()
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    init = {r: rng.getrandbits(32) for r in REGS}
    init['esp'] = STACK + 0x80
    for r in REGS:
        uc.reg_write(UREG[r], init[r])
    fl = 0x2 | rng.choice([0, 1]) | rng.choice([0, 0x40]) | rng.choice([0, 4]) | rng.choice([0, 0x80])
    uc.reg_write(X.UC_X86_REG_EFLAGS, fl)
    xmm = [g.vec() for _ in range(8)]
    for k in range(8):
        uc.reg_write(UXMM[k], xmm[k])
    mxcsr = g.mxcsr()
    uc.reg_write(X.UC_X86_REG_MXCSR, mxcsr)
    uc.mem_write(DATA, bytes(data))
    uc.mem_write(STACK, bytes(256))
    mmx_case = rng.random() < 0.15
    table = SSE + MMX if mmx_case else SSE
    seq = []
    if mmx_case:
        seq.append(bytes([0xdb, 0xe3]))                                        # fninit
        for k in range(8):
            seq.append(b'\x0f\x6f' + modrm_mem(k, g.load_addr(8)))   # movq mmk, m64
    code = bytearray()
    eip = CODE
    steps_out = []
    hist = {}
    idx = 0
    pending_stmxcsr = False
    while len(steps_out) < n_insns:
        if seq:
            b = seq.pop(0)
            name = 'setup'
        elif pending_stmxcsr:
            b = b'\x0f\xae' + modrm_mem(3, g.store_addr(4))
            name = 'stmxcsr'
            pending_stmxcsr = False
        else:
            k = rng.random()
            if k < 0.03:
                b = b'\x0f\xae' + modrm_mem(2, DATA + MXV + 4 * rng.randrange(8))
                name = 'ldmxcsr'
                pending_stmxcsr = rng.random() < 0.3
            elif k < 0.05:
                # Lengths for PCMPESTRx in EAX and EDX.
                reg = rng.choice([0, 2])
                v = rng.choice([rng.randrange(-20, 21), rng.getrandbits(32)]) & 0xffffffff
                b = bytes([0xb8 + reg]) + struct.pack('<I', v)
                name = 'mov'
            else:
                entry = rng.choice(table)
                b = g.insn(entry)
                name = entry[0]
                # QEMU 5.0 writes the destination of the SSSE3 horizontal
                # add/subtract while still reading the source: no
                # destination that is also the source.
                if name[-2:] in ('01', '02', '03', '05', '06', '07') and 'ssse3' in name:
                    while b[-1] >= 0xc0 and (b[-1] >> 3) & 7 == b[-1] & 7:
                        b = g.insn(entry)
                # QEMU 5.0 MIN/MAX return a denormal operand itself under
                # DAZ; the SDM converts it to zero first.
                if uc.reg_read(X.UC_X86_REG_MXCSR) & 0x40 and name[:3] in ('min', 'max'):
                    b = g.insn(('xorps', b'', b'\x57', 'rm'))
                    name = 'xorps'
                if qemu_disagrees(uc, entry, b):
                    b = g.insn(('xorps', b'', b'\x57', 'rm'))
                    name = 'xorps'
                # QEMU 5.0 takes abs(INT32_MIN) as a negative length and
                # crashes: give PCMPESTRx another length first.
                if name.startswith('pcmpestr'):
                    for reg, ur in ((0, X.UC_X86_REG_EAX), (2, X.UC_X86_REG_EDX)):
                        if uc.reg_read(ur) == 0x80000000:
                            b = bytes([0xb8 + reg]) + struct.pack('<I', rng.randrange(-20, 21) & 0xffffffff)
                            name = 'mov'
                            break
        uc.mem_write(CODE + len(code), b)
        code += b
        start = eip
        try:
            uc.emu_start(start, start + len(b), count=1)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError('unicorn fault on %s: %s' % (b.hex(), e))
        eip = uc.reg_read(X.UC_X86_REG_EIP)
        assert eip == start + len(b), (b.hex(), hex(eip))
        regs = {r: uc.reg_read(UREG[r]) for r in REGS}
        regs['eip'] = eip
        step = {'asm': name + ' ' + b.hex(), 'len': len(b), 'regs': regs,
                'eflags': uc.reg_read(X.UC_X86_REG_EFLAGS) & 0xfd7, 'undef': 0,
                'undef_regs': [],
                'sse': {'xmm': xmm_state(uc), 'mxcsr': uc.reg_read(X.UC_X86_REG_MXCSR)}}
        if mmx_case:
            step['fpu'] = fpu_state(uc)
            step['fpu']['fsw_undef'] = 0
            step['fpu']['mmx'] = 1 if idx > 0 else 0
        steps_out.append(step)
        hist[name] = hist.get(name, 0) + 1
        idx += 1
    final = uc.mem_read(DATA, 256), uc.mem_read(STACK, 256)
    case = {'mode': 32, 'code_addr': CODE, 'code': bytes(code).hex(),
            'init': dict(init, eip=CODE, eflags=fl, xmm=['%032x' % v for v in xmm], mxcsr=mxcsr),
            'mem': [{'addr': DATA, 'data': bytes(data).hex()}, {'addr': STACK, 'data': bytes(256).hex()}],
            'steps': steps_out,
            'final_mem': [{'addr': DATA, 'data': bytes(final[0]).hex()},
                          {'addr': STACK, 'data': bytes(final[1]).hex()}]}
    return case, hist


def generate_sse(seed, count, out_path):
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


def probe_sse_deviations():
    """Re-test the SSE deviations in unicorn_deviations.md on the installed
    Unicorn; True where it still differs from the SDM. (The PCMPESTRx
    INT32_MIN length is not probed: it crashes the process.)"""
    def run(code, xmm, mxcsr=0x1f80, regs=None):
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x10000)
        uc.mem_write(CODE, code)
        for k, v in xmm.items():
            uc.reg_write(UXMM[k], v)
        uc.reg_write(X.UC_X86_REG_MXCSR, mxcsr)
        for r, v in (regs or {}).items():
            uc.reg_write(UREG[r], v)
        uc.emu_start(CODE, CODE + len(code), count=1)
        return uc

    out = {}
    one, three = 0x3f800000, 0x40400000
    uc = run(bytes.fromhex('f30f5ec1'), {0: one, 1: 0})                 # divss xmm0, xmm1
    out['sse-mxcsr-flags'] = uc.reg_read(X.UC_X86_REG_MXCSR) & 0x3f != 0x04
    uc = run(bytes.fromhex('f30f59c1'), {0: 0x00800000, 1: 0x3f000000}, 0x9f80)  # mulss, FTZ
    out['sse-ftz-ignored'] = uc.reg_read(UXMM[0]) & 0xffffffff != 0
    uc = run(bytes.fromhex('f30f58c1'), {0: 0x7fc00001, 1: 0x7fc00002})  # addss: two QNaNs
    out['sse-nan-x87-rules'] = uc.reg_read(UXMM[0]) & 0xffffffff != 0x7fc00001
    uc = run(bytes.fromhex('f30f5dc1'), {0: 1, 1: one}, 0x1fc0)          # minss, DAZ
    out['sse-minmax-daz-returns-denormal'] = uc.reg_read(UXMM[0]) & 0xffffffff != 0
    v = sum((k + 1) << (16 * k) for k in range(8))
    uc = run(bytes.fromhex('660f3801c0'), {0: v})                        # phaddw xmm0, xmm0
    r = uc.reg_read(UXMM[0])
    out['ssse3-horizontal-same-register'] = (r >> 64) != (r & ((1 << 64) - 1))
    pack = lambda s: sum(c << (8 * i) for i, c in enumerate(s))
    uc = run(bytes.fromhex('660f3a63c10c'), {0: pack(b'pqr'), 1: pack(b'0123456789abcdpq')})
    out['pcmpstr-no-partial-match-at-end'] = uc.reg_read(X.UC_X86_REG_ECX) != 14
    neg = 0xbff0000000000000                                             # -1.0
    uc = run(bytes.fromhex('660f3a41c131'), {0: neg | neg << 64, 1: 0})  # dppd 0x31
    out['dpps-sum-order'] = uc.reg_read(UXMM[0]) & ((1 << 64) - 1) != 1 << 63
    try:
        run(bytes.fromhex('0fc2c108'), {0: one, 1: three})               # cmpps imm 8
        out['cmpps-imm8-above-7-ud'] = False
    except Exception:  # noqa: BLE001
        out['cmpps-imm8-above-7-ud'] = True
    return out
