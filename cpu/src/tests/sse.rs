//! SSE through SSE4.2: expected values from the SDM's instruction pages
//! (worked by hand) or IEEE arithmetic of the host for round-to-nearest.

use super::*;
use crate::exception::{GP, NM, UD, XM};
use crate::fpu::*;

const D: u64 = DATA;

fn ps(v: [f32; 4]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |r, (k, x)| r | (x.to_bits() as u128) << (32 * k))
}
fn pd(v: [f64; 2]) -> u128 {
    (v[1].to_bits() as u128) << 64 | v[0].to_bits() as u128
}
fn dw(v: [u32; 4]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |r, (k, x)| r | (*x as u128) << (32 * k))
}
fn lane32(v: u128, k: u32) -> u32 {
    (v >> (32 * k)) as u32
}

/// Run `f` in 32-bit protected mode with OSFXSR and OSXMMEXCPT set and
/// the given XMM registers preloaded.
fn sse(regs: &[(usize, u128)], f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    let mut t = prep(regs, f);
    t.run();
    t
}

fn prep(regs: &[(usize, u128)], f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    let mut t = T::pm32(|a| {
        f(a)?;
        a.hlt()
    });
    t.cpu.s.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    for &(n, v) in regs {
        t.cpu.s.set_xmm(n, v);
    }
    t
}

fn x(t: &T, n: usize) -> u128 {
    t.cpu.s.xmm(n)
}

fn mx(t: &T) -> u32 {
    t.cpu.s.fpu.mxcsr
}

/// Result of `op xmm0, xmm1` with xmm0 = a, xmm1 = b.
fn op2(a: u128, b: u128, f: impl FnOnce(&mut Asm) -> AsmResult) -> u128 {
    x(&sse(&[(0, a), (1, b)], f), 0)
}

// ---------------------------------------------------------------------
// State, availability, MXCSR, FXSAVE

#[test]
fn reset_and_mxcsr_load_store() {
    let c = Cpu::new(1 << 20);
    assert_eq!(c.s.fpu.mxcsr, 0x1f80);
    assert_eq!(c.s.xmm(5), 0);
    let mut t = prep(&[], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.stmxcsr(dword_ptr(D + 4))
    });
    t.wr32(D, 0xffff);
    t.run();
    assert_eq!(mx(&t), 0xffff);
    assert_eq!(t.rd32(D + 4), 0xffff);
    let mut t = prep(&[], |a| a.ldmxcsr(dword_ptr(D)));
    t.wr32(D, 0x1_0000);
    t.expect_fault(GP, Some(0), CODE);
    assert_eq!(t.cpu.s.fpu.mxcsr, 0x1f80);
}

#[test]
fn availability_ud_nm() {
    let code = |a: &mut Asm| a.addps(xmm0, xmm1);
    let mut t = prep(&[], code);
    t.cpu.s.cr4 &= !CR4_OSFXSR;
    t.expect_fault(UD, None, CODE);
    let mut t = prep(&[], code);
    t.cpu.s.cr0 |= CR0_EM;
    t.expect_fault(UD, None, CODE);
    let mut t = prep(&[], code);
    t.cpu.s.cr0 |= CR0_TS;
    t.expect_fault(NM, None, CODE);
    // The integer MMX-register forms follow the MMX rules: no OSFXSR needed.
    let mut t = prep(&[], |a| a.pminub(mm0, mm1));
    t.cpu.s.cr4 &= !CR4_OSFXSR;
    t.run();
}

#[test]
fn alignment_of_16_byte_operands() {
    let mut t = prep(&[], |a| a.movaps(xmm0, xmmword_ptr(D + 8)));
    t.expect_fault(GP, Some(0), CODE);
    let mut t = prep(&[], |a| a.paddd(xmm0, xmmword_ptr(D + 4)));
    t.expect_fault(GP, Some(0), CODE);
    let mut t = prep(&[(3, 0x1234)], |a| a.movntdq(xmmword_ptr(D + 1), xmm3));
    t.expect_fault(GP, Some(0), CODE);
    assert_eq!(t.rd(D + 1, 8), 0, "nothing written");
    let mut t = prep(&[(2, u128::MAX / 3)], |a| {
        a.movups(xmmword_ptr(D + 3), xmm2)?;
        a.movdqu(xmm4, xmmword_ptr(D + 3))?;
        a.lddqu(xmm5, xmmword_ptr(D + 3))?;
        // Scalar and 8-byte operands need no alignment.
        a.addss(xmm6, dword_ptr(D + 1))
    });
    t.run();
    assert_eq!(x(&t, 4), u128::MAX / 3);
    assert_eq!(x(&t, 5), u128::MAX / 3);
}

#[test]
fn fxsave_fxrstor_xmm_and_mxcsr() {
    let v = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
    let mut t = prep(&[(0, v), (7, !v)], |a| {
        a.ldmxcsr(dword_ptr(D + 0x400))?;
        a.fxsave(ptr(D))?;
        a.pxor(xmm0, xmm0)?;
        a.pxor(xmm7, xmm7)?;
        a.stmxcsr(dword_ptr(D + 0x404))?;
        a.mov(dword_ptr(D + 24), 0x1f80)?;
        a.fxrstor(ptr(D))
    });
    t.wr32(D + 0x400, 0x7f80 | MX_DAZ);
    t.run();
    assert_eq!(t.rd32(D + 28), MXCSR_MASK);
    assert_eq!(t.rd(D + 160, 8), v as u64);
    assert_eq!(t.rd(D + 168, 8), (v >> 64) as u64);
    assert_eq!(t.rd(D + 160 + 7 * 16, 8), !v as u64);
    assert_eq!(x(&t, 0), v);
    assert_eq!(x(&t, 7), !v);
    assert_eq!(mx(&t), 0x1f80);
    // Reserved MXCSR bits in the image: #GP(0).
    let mut t = prep(&[], |a| a.fxrstor(ptr(D)));
    t.wr32(D + 24, 0x1_1f80);
    t.expect_fault(GP, Some(0), CODE);
}

// ---------------------------------------------------------------------
// Moves

#[test]
fn moves() {
    let v = 0x1111_2222_3333_4444_5555_6666_7777_8888u128;
    let t = sse(&[(1, v), (2, !0)], |a| {
        a.mov(eax, 0x89ab_cdefu32)?;
        a.movd(xmm0, eax)?;
        a.movd(ecx, xmm1)?;
        a.movq(xmm3, xmm1)?;
        a.movss(xmm2, xmm1)?;
        a.movq(qword_ptr(D), xmm1)?;
        a.movhps(xmm4, qword_ptr(D))?;
        a.movlhps(xmm5, xmm1)?;
        a.movhlps(xmm6, xmm1)?;
        a.movsd_2(xmm7, qword_ptr(D))
    });
    assert_eq!(x(&t, 0), 0x89ab_cdef);
    assert_eq!(t.r(ECX), 0x7777_8888);
    assert_eq!(x(&t, 3), 0x5555_6666_7777_8888);
    assert_eq!(x(&t, 2), !0u128 << 32 | 0x7777_8888);
    assert_eq!(x(&t, 4), 0x5555_6666_7777_8888u128 << 64);
    assert_eq!(x(&t, 5), 0x5555_6666_7777_8888u128 << 64);
    assert_eq!(x(&t, 6), 0x1111_2222_3333_4444);
    assert_eq!(x(&t, 7), 0x5555_6666_7777_8888);
}

#[test]
fn masks_extract_insert() {
    let v = dw([0x8000_0000, 1, 0xffff_ffff, 0x7fff_ffff]);
    let t = sse(&[(1, v)], |a| {
        a.movmskps(eax, xmm1)?;
        a.movmskpd(ecx, xmm1)?;
        a.pmovmskb(edx, xmm1)?;
        a.pextrw(ebx, xmm1, 5)?;
        a.mov(esi, 0xbeefu32)?;
        a.pinsrw(xmm1, esi, 2)?;
        a.pextrd(edi, xmm1, 1)
    });
    assert_eq!(t.r(EAX), 0b0101);
    assert_eq!(t.r(ECX), 0b00);
    assert_eq!(t.r(EDX), 0x7f08);
    assert_eq!(t.r(EBX), 0xffff);
    assert_eq!(t.r(EDI), 0xbeef);
}

#[test]
fn maskmovdqu_writes_selected_bytes() {
    let mut t = prep(&[(0, 0x0706_0504_0302_0100), (1, 0x80 | 0x80 << 24)], |a| {
        a.mov(edi, D as u32)?;
        a.maskmovdqu(xmm0, xmm1)
    });
    t.wr(D, 8, u64::MAX);
    t.run();
    assert_eq!(t.rd(D, 8), 0xffff_ffff_03ff_ff00);
}

// ---------------------------------------------------------------------
// Integer

#[test]
fn integer_arith() {
    let a = dw([0x7fff_8000, 0xff01_0203, 0x0000_ffff, 0x8000_0001]);
    let b = dw([0x0001_ffff, 0x01ff_0a0b, 0x0001_0001, 0x8000_0001]);
    assert_eq!(
        op2(a, b, |x| x.paddsw(xmm0, xmm1)),
        dw([0x7fff_8000, 0x0100_0c0e, 0x0001_0000, 0x8000_0002])
    );
    assert_eq!(
        op2(a, b, |x| x.paddq(xmm0, xmm1)),
        dw([0x8001_7fff, 0x0100_0c0e, 0x0002_0000, 0x0000_0002])
    );
    assert_eq!(op2(a, b, |x| x.pcmpeqd(xmm0, xmm1)), dw([0, 0, 0, !0]));
    assert_eq!(
        op2(a, b, |x| x.pminsw(xmm0, xmm1)),
        dw([0x0001_8000, 0xff01_0203, 0x0000_ffff, 0x8000_0001])
    );
    assert_eq!(
        op2(a, b, |x| x.pavgb(xmm0, xmm1)),
        dw([0x4080_c080, 0x8080_0607, 0x0001_8080, 0x8000_0001])
    );
    assert_eq!(
        op2(a, b, |x| x.pmuludq(xmm0, xmm1)),
        ((0xffffu128 * 0x1_0001) << 64) | (0x7fff_8000u128 * 0x0001_ffff)
    );
    // |differences| summed per quadword.
    let s = op2(
        0x0102_0304_0506_0708_00ff_00ff_00ff_00ff,
        0x0807_0605_0403_0201_ff00_ff00_ff00_ff00,
        |x| x.psadbw(xmm0, xmm1),
    );
    assert_eq!(s, (32u128 << 64) | (8 * 255));
    assert_eq!(
        op2(a, b, |x| x.pmulhuw(xmm0, xmm1)),
        dw([0x0000_7fff, 0x01fd_0014, 0, 0x4000_0000])
    );
}

#[test]
fn shifts_shuffles_packs() {
    let a = dw([0x8000_0001, 0x4000_0002, 0x2000_0003, 0x1000_0004]);
    assert_eq!(
        op2(a, 4, |x| x.psrad(xmm0, xmm1)),
        dw([0xf800_0000, 0x0400_0000, 0x0200_0000, 0x0100_0000])
    );
    assert_eq!(op2(a, 32, |x| x.psrld(xmm0, xmm1)), 0);
    assert_eq!(op2(a, 0, |x| x.psrldq(xmm0, 4)), a >> 32);
    assert_eq!(op2(a, 0, |x| x.pslldq(xmm0, 17)), 0);
    assert_eq!(
        op2(a, 0, |x| x.psllq(xmm0, 1)),
        dw([2, 0x8000_0005, 0x4000_0006, 0x2000_0008])
    );
    assert_eq!(
        op2(0, a, |x| x.pshufd(xmm0, xmm1, 0x1b)),
        dw([0x1000_0004, 0x2000_0003, 0x4000_0002, 0x8000_0001])
    );
    let b = dw([5, 6, 7, 8]);
    assert_eq!(
        op2(a, b, |x| x.shufps(xmm0, xmm1, 0b11_10_01_00)),
        dw([0x8000_0001, 0x4000_0002, 7, 8])
    );
    assert_eq!(
        op2(a, b, |x| x.punpckldq(xmm0, xmm1)),
        dw([0x8000_0001, 5, 0x4000_0002, 6])
    );
    assert_eq!(
        op2(a, b, |x| x.punpckhqdq(xmm0, xmm1)),
        dw([0x2000_0003, 0x1000_0004, 7, 8])
    );
    assert_eq!(
        op2(dw([0x7fff_ffff, 0xffff_8000, 5, 0x8000_0000]), 0, |x| x
            .packssdw(xmm0, xmm1)),
        dw([0x8000_7fff, 0x8000_0005, 0, 0])
    );
    assert_eq!(
        op2(dw([0x0100_00ff, 0xff80_0001, 0, 0]), 0, |x| x
            .packuswb(xmm0, xmm1)),
        dw([0x0001_ffff, 0, 0, 0])
    );
    assert_eq!(
        op2(0, 0x0004_0003_0002_0001, |x| x.pshuflw(xmm0, xmm1, 0x1b)),
        0x0001_0002_0003_0004
    );
}

#[test]
fn mmx_register_forms_of_sse() {
    let mut t = T::pm32(|a| {
        a.movq(mm0, qword_ptr(D))?;
        a.movq(mm1, qword_ptr(D + 8))?;
        a.pminub(mm0, mm1)?;
        a.pshufw(mm2, mm1, 0x1b)?;
        a.paddq(mm1, mm1)?;
        a.pmovmskb(eax, mm1)?;
        a.movq(qword_ptr(D + 16), mm0)?;
        a.movq(qword_ptr(D + 24), mm2)?;
        a.movq(qword_ptr(D + 32), mm1)?;
        a.hlt()
    });
    t.wr(D, 8, 0x0102_0304_0506_0708)
        .wr(D + 8, 8, 0x8001_0203_0405_0060);
    t.run();
    assert_eq!(t.rd(D + 16, 8), 0x0101_0203_0405_0008);
    assert_eq!(t.rd(D + 24, 8), 0x0060_0405_0203_8001);
    assert_eq!(t.rd(D + 32, 8), 0x0002_0406_080a_00c0);
    assert_eq!(t.r(EAX), 0x01);
    assert_eq!(t.cpu.s.fpu.empty, 0, "MMX state");
}

// ---------------------------------------------------------------------
// Floating point

#[test]
fn fp_arith_exact() {
    let a = ps([1.5, -2.0, 1e30, 3.0]);
    let b = ps([0.25, 8.0, 1e10, -0.0]);
    assert_eq!(
        op2(a, b, |x| x.addps(xmm0, xmm1)),
        ps([1.75, 6.0, 1e30 + 1e10, 3.0])
    );
    assert_eq!(
        op2(a, b, |x| x.mulps(xmm0, xmm1)),
        ps([0.375, -16.0, 1e30 * 1e10, -0.0])
    );
    assert_eq!(
        op2(pd([2.0, 1.0]), pd([3.0, 7.0]), |x| x.divpd(xmm0, xmm1)),
        pd([2.0 / 3.0, 1.0 / 7.0])
    );
    assert_eq!(
        op2(pd([5.0, 9.0]), pd([2.0, 1.0]), |x| x.sqrtsd(xmm0, xmm1)),
        pd([2f64.sqrt(), 9.0])
    );
    assert_eq!(
        op2(a, b, |x| x.subss(xmm0, xmm1)),
        ps([1.25, -2.0, 1e30, 3.0])
    );
    assert_eq!(
        op2(
            ps([1.0, 2.0, 3.0, 4.0]),
            ps([10.0, 20.0, 30.0, 40.0]),
            |x| x.haddps(xmm0, xmm1)
        ),
        ps([3.0, 7.0, 30.0, 70.0])
    );
    assert_eq!(
        op2(
            ps([1.0, 2.0, 3.0, 4.0]),
            ps([10.0, 20.0, 30.0, 40.0]),
            |x| x.addsubps(xmm0, xmm1)
        ),
        ps([-9.0, 22.0, -27.0, 44.0])
    );
}

#[test]
fn rounding_modes() {
    // 1/3 in single precision: RN/RD/RZ give 0x3eaaaaab/aa/aa, RU ab.
    for (rc, want) in [
        (0u32, 0x3eaa_aaab),
        (1, 0x3eaa_aaaa),
        (2, 0x3eaa_aaab),
        (3, 0x3eaa_aaaa),
    ] {
        let mut t = prep(&[(0, ps([1.0; 4])), (1, ps([3.0; 4]))], |a| {
            a.ldmxcsr(dword_ptr(D))?;
            a.divss(xmm0, xmm1)
        });
        t.wr32(D, 0x1f80 | rc << 13);
        t.run();
        assert_eq!(lane32(x(&t, 0), 0), want, "rc {rc}");
        assert_eq!(mx(&t) & 0x3f, MX_PE);
    }
    // -1/3 rounds down to the larger magnitude.
    let mut t = prep(&[(0, ps([-1.0; 4])), (1, ps([3.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.divss(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 | 1 << 13);
    t.run();
    assert_eq!(lane32(x(&t, 0), 0), 0xbeaa_aaab);
}

#[test]
fn nan_rules_and_min_max() {
    let qnan = 0x7fc0_0001u32;
    let snan = 0x7f80_0001u32;
    let a = dw([qnan, 1.0f32.to_bits(), snan, 0.0f32.to_bits()]);
    let b = dw([snan, qnan, 2.0f32.to_bits(), (-0.0f32).to_bits()]);
    let t = sse(&[(0, a), (1, b)], |x| x.addps(xmm0, xmm1));
    // First source NaN wins; SNaNs are quieted.
    assert_eq!(x(&t, 0), dw([qnan, qnan, 0x7fc0_0001, 0]));
    assert_eq!(mx(&t) & 0x3f, MX_IE);
    // Invalid: the default NaN is the negative QNaN.
    assert_eq!(
        lane32(op2(ps([0.0; 4]), ps([0.0; 4]), |x| x.divps(xmm0, xmm1)), 0),
        0xffc0_0000
    );
    let t = sse(&[(0, a), (1, b)], |x| x.minps(xmm0, xmm1));
    // NaN in either: the second operand. Equal zeros: the second.
    assert_eq!(
        x(&t, 0),
        dw([snan, qnan, 2.0f32.to_bits(), (-0.0f32).to_bits()])
    );
    assert_eq!(mx(&t) & 0x3f, MX_IE);
    assert_eq!(
        op2(ps([-1.0, 5.0, 0.0, -0.0]), ps([2.0, 3.0, -0.0, 0.0]), |x| x
            .maxps(xmm0, xmm1)),
        ps([2.0, 5.0, -0.0, 0.0])
    );
}

#[test]
fn compares() {
    let nan = f32::NAN;
    let a = ps([1.0, 2.0, nan, 4.0]);
    let b = ps([1.0, 3.0, 1.0, 3.0]);
    let want = [
        [!0, 0, 0, 0],   // EQ
        [0, !0, 0, 0],   // LT
        [!0, !0, 0, 0],  // LE
        [0, 0, !0, 0],   // UNORD
        [0, !0, !0, !0], // NEQ
        [!0, 0, !0, !0], // NLT
        [0, 0, !0, !0],  // NLE
        [!0, !0, 0, !0], // ORD
    ];
    for (p, w) in want.iter().enumerate() {
        let t = sse(&[(0, a), (1, b)], |x| x.cmpps(xmm0, xmm1, p as u32));
        assert_eq!(x(&t, 0), dw(*w), "predicate {p}");
        // The signalling predicates raise IE on the QNaN.
        let ie = matches!(p, 1 | 2 | 5 | 6);
        assert_eq!(mx(&t) & MX_IE != 0, ie, "IE for predicate {p}");
    }
    let t = sse(&[(0, pd([1.0, 0.0])), (1, pd([1.0, 9.0]))], |x| {
        x.cmpsd_3(xmm0, xmm1, 0)
    });
    assert_eq!(x(&t, 0), pd([0.0, 0.0]) | u64::MAX as u128);
}

#[test]
fn comiss_flags() {
    let cases = [
        (1.0f32, 2.0f32, FLAG_CF),
        (2.0, 1.0, 0),
        (-0.0, 0.0, FLAG_ZF),
        (f32::NAN, 1.0, FLAG_ZF | FLAG_PF | FLAG_CF),
    ];
    for (a, b, fl) in cases {
        let mut t = prep(&[(0, ps([a; 4])), (1, ps([b; 4]))], |x| {
            x.ucomiss(xmm0, xmm1)
        });
        t.set_flags(ARITH_FLAGS);
        t.run();
        assert_eq!(t.arith(), fl, "{a} vs {b}");
        assert_eq!(mx(&t) & MX_IE, 0, "UCOMISS: QNaN is quiet");
    }
    let t = sse(&[(0, pd([f64::NAN, 0.0])), (1, pd([1.0, 0.0]))], |x| {
        x.comisd(xmm0, xmm1)
    });
    assert_eq!(mx(&t) & MX_IE, MX_IE, "COMISD signals on QNaN");
}

#[test]
fn conversions() {
    let t = sse(
        &[
            (1, ps([2.5, -3.5, 3e9, f32::NAN])),
            (2, ps([-2.7, 0.0, 0.0, 0.0])),
        ],
        |a| {
            a.cvtss2si(eax, xmm1)?;
            a.cvttss2si(ecx, xmm2)?;
            a.cvtps2dq(xmm3, xmm1)?;
            a.cvttps2dq(xmm4, xmm1)?;
            a.mov(edx, -7i32 as u32)?;
            a.cvtsi2sd(xmm5, edx)?;
            a.cvtps2pd(xmm6, xmm1)?;
            a.cvtpd2ps(xmm7, xmm6)
        },
    );
    assert_eq!(t.r(EAX), 2, "round to even");
    assert_eq!(t.r(ECX), -2i32 as u32, "truncation");
    assert_eq!(x(&t, 3), dw([2, -4i32 as u32, 0x8000_0000, 0x8000_0000]));
    assert_eq!(x(&t, 4), dw([2, -3i32 as u32, 0x8000_0000, 0x8000_0000]));
    assert_eq!(x(&t, 5) as u64, (-7.0f64).to_bits());
    assert_eq!(x(&t, 6), pd([2.5, -3.5]));
    assert_eq!(x(&t, 7), ps([2.5, -3.5, 0.0, 0.0]));
    assert_eq!(mx(&t) & 0x3f, MX_IE | MX_PE);
    let t = sse(&[(1, pd([1e300, 0.0]))], |a| a.cvtsd2ss(xmm0, xmm1));
    assert_eq!(lane32(x(&t, 0), 0), f32::INFINITY.to_bits());
    assert_eq!(mx(&t) & 0x3f, MX_OE | MX_PE);
    let mut t = T::pm32(|a| {
        a.movq(mm0, qword_ptr(D))?;
        a.cvtpi2ps(xmm0, mm0)?;
        a.cvtps2pi(mm1, xmm0)?;
        a.movq(qword_ptr(D + 8), mm1)?;
        a.hlt()
    });
    t.cpu.s.cr4 |= CR4_OSFXSR;
    t.cpu.s.set_xmm(0, u128::MAX);
    t.wr(D, 8, (-5i32 as u32 as u64) << 32 | 9);
    t.run();
    assert_eq!(x(&t, 0), !0u128 << 64 | ps([9.0, -5.0, 0.0, 0.0]));
    assert_eq!(t.rd(D + 8, 8), (-5i32 as u32 as u64) << 32 | 9);
}

#[test]
fn denormals_daz_ftz() {
    let tiny = f32::from_bits(1); // smallest denormal
    let t = sse(&[(0, ps([tiny; 4])), (1, ps([1.0; 4]))], |x| {
        x.mulps(xmm0, xmm1)
    });
    assert_eq!(x(&t, 0), ps([tiny; 4]));
    assert_eq!(mx(&t) & 0x3f, MX_DE);
    // DAZ: the denormal input reads as zero, no DE.
    let mut t = prep(&[(0, ps([tiny; 4])), (1, ps([1.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.mulps(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 | MX_DAZ);
    t.run();
    assert_eq!(x(&t, 0), 0);
    assert_eq!(mx(&t) & 0x3f, 0);
    // FTZ: a tiny result becomes zero with UE and PE.
    let m = f32::MIN_POSITIVE;
    let mut t = prep(&[(0, ps([m; 4])), (1, ps([0.5; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.mulss(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 | MX_FTZ);
    t.run();
    assert_eq!(lane32(x(&t, 0), 0), 0);
    assert_eq!(mx(&t) & 0x3f, MX_UE | MX_PE);
    // Tiny after rounding with unbounded exponent, but the bounded result
    // rounds up to the smallest normal: underflow, and FTZ flushes it.
    let below = f32::from_bits(0x3f7f_ffff);
    let t = sse(&[(0, ps([m; 4])), (1, ps([below; 4]))], |x| {
        x.mulss(xmm0, xmm1)
    });
    assert_eq!(lane32(x(&t, 0), 0), m.to_bits());
    assert_eq!(mx(&t) & 0x3f, MX_UE | MX_PE);
    let mut t = prep(&[(0, ps([m; 4])), (1, ps([below; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.mulss(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 | MX_FTZ);
    t.run();
    assert_eq!(lane32(x(&t, 0), 0), 0);
    // Without FTZ the (exact) denormal result raises nothing.
    let t = sse(&[(0, ps([m; 4])), (1, ps([0.5; 4]))], |x| {
        x.mulss(xmm0, xmm1)
    });
    assert_eq!(lane32(x(&t, 0), 0), (m * 0.5).to_bits());
    assert_eq!(mx(&t) & 0x3f, 0);
}

#[test]
fn flags_are_sticky_and_unmasked_faults() {
    let t = sse(
        &[(0, ps([1.0; 4])), (1, ps([0.0; 4])), (2, ps([3.0; 4]))],
        |a| {
            a.divss(xmm0, xmm1)?;
            a.addss(xmm2, xmm2)
        },
    );
    assert_eq!(mx(&t) & 0x3f, MX_ZE);
    // ZE unmasked: #XM, destination untouched, flag set.
    let mut t = prep(&[(0, ps([1.0; 4])), (1, ps([0.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.divps(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 & !(MX_ZE << MX_MASK_SHIFT));
    let l = len32(|a| a.ldmxcsr(dword_ptr(D)));
    t.expect_fault(XM, None, CODE + l);
    assert_eq!(x(&t, 0), ps([1.0; 4]));
    assert_eq!(mx(&t) & 0x3f, MX_ZE);
    // Without OSXMMEXCPT the same is #UD.
    let mut t = prep(&[(0, ps([1.0; 4])), (1, ps([0.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.divps(xmm0, xmm1)
    });
    t.cpu.s.cr4 &= !CR4_OSXMMEXCPT;
    t.wr32(D, 0x1f80 & !(MX_ZE << MX_MASK_SHIFT));
    t.expect_fault(UD, None, CODE + l);
    // PE unmasked: post-computation, destination still unchanged.
    let mut t = prep(&[(0, ps([1.0; 4])), (1, ps([3.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.divps(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 & !(MX_PE << MX_MASK_SHIFT));
    t.expect_fault(XM, None, CODE + l);
    assert_eq!(x(&t, 0), ps([1.0; 4]));
    assert_eq!(mx(&t) & 0x3f, MX_PE);
}

#[test]
fn rcp_rsqrt_round_dp() {
    let t = sse(&[(1, ps([4.0, 0.25, -0.0, 3.0]))], |a| {
        a.rcpps(xmm0, xmm1)?;
        a.rsqrtps(xmm2, xmm1)
    });
    assert_eq!(x(&t, 0), ps([0.25, 4.0, f32::NEG_INFINITY, 1.0 / 3.0]));
    assert_eq!(lane32(x(&t, 2), 0), 0.5f32.to_bits());
    assert_eq!(lane32(x(&t, 2), 1), 2.0f32.to_bits());
    assert_eq!(mx(&t) & 0x3f, 0, "no flags");
    let v = ps([1.5, -2.5, 2.5, -0.2]);
    assert_eq!(
        op2(0, v, |x| x.roundps(xmm0, xmm1, 0)),
        ps([2.0, -2.0, 2.0, -0.0])
    );
    assert_eq!(
        op2(0, v, |x| x.roundps(xmm0, xmm1, 1)),
        ps([1.0, -3.0, 2.0, -1.0])
    );
    assert_eq!(
        op2(0, v, |x| x.roundps(xmm0, xmm1, 3)),
        ps([1.0, -2.0, 2.0, -0.0])
    );
    let t = sse(&[(1, v)], |x| x.roundps(xmm0, xmm1, 8 | 2));
    assert_eq!(x(&t, 0), ps([2.0, -2.0, 3.0, -0.0]));
    assert_eq!(mx(&t) & MX_PE, 0, "imm bit 3 suppresses PE");
    assert_eq!(
        op2(ps([1.0, 2.0, 3.0, 4.0]), ps([5.0, 6.0, 7.0, 8.0]), |x| x
            .dpps(xmm0, xmm1, 0xd3)),
        ps([5.0 + 21.0 + 32.0, 58.0, 0.0, 0.0])
    );
    assert_eq!(
        op2(pd([1.0, 2.0]), pd([3.0, 4.0]), |x| x.dppd(xmm0, xmm1, 0x32)),
        pd([0.0, 11.0])
    );
}

// ---------------------------------------------------------------------
// SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CRC32

#[test]
fn ssse3() {
    let a = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
    let sel = 0x8000_0102_0304_0506_0708_090a_0b0c_0d0fu128;
    assert_eq!(
        op2(a, sel, |x| x.pshufb(xmm0, xmm1)),
        0x0000_0102_0304_0506_0708_090a_0b0c_0d0f
    );
    assert_eq!(
        op2(a, !0, |x| x.palignr(xmm0, xmm1, 4)),
        a << 96 | (!0u128 >> 32)
    );
    assert_eq!(op2(a, !0, |x| x.palignr(xmm0, xmm1, 20)), a >> 32);
    let w = dw([0x0002_0001, 0x7fff_0001, 0xfffe_ffff, 0x0000_0000]);
    assert_eq!(
        op2(w, w, |x| x.phaddsw(xmm0, xmm1)),
        dw([0x7fff_0003, 0x0000_fffd, 0x7fff_0003, 0x0000_fffd])
    );
    assert_eq!(
        op2(
            dw([0xff80_02ff, 0, 0, 0]),
            dw([0x7f7f_ff02, 0, 0, 0]),
            |x| x.pmaddubsw(xmm0, xmm1)
        ),
        dw([0x7fff_01fc, 0, 0, 0])
    );
    assert_eq!(
        op2(
            dw([0x4000_8000, 0, 0, 0]),
            dw([0x4000_8000, 0, 0, 0]),
            |x| x.pmulhrsw(xmm0, xmm1)
        ),
        dw([0x2000_8000, 0, 0, 0])
    );
    assert_eq!(
        op2(dw([5, 5, 5, 0x80]), dw([!0, 0, 1, !0]), |x| x
            .psignd(xmm0, xmm1)),
        dw([-5i32 as u32, 0, 5, -0x80i32 as u32])
    );
    assert_eq!(
        op2(0, dw([0x8000_ffff, 0x7fff_0001, 0, 0]), |x| x
            .pabsw(xmm0, xmm1)),
        dw([0x8000_0001, 0x7fff_0001, 0, 0])
    );
    // MMX form of PSHUFB indexes within 8 bytes.
    let mut t = T::pm32(|a| {
        a.movq(mm0, qword_ptr(D))?;
        a.movq(mm1, qword_ptr(D + 8))?;
        a.pshufb(mm0, mm1)?;
        a.movq(qword_ptr(D + 16), mm0)?;
        a.hlt()
    });
    t.wr(D, 8, 0x0706_0504_0302_0100)
        .wr(D + 8, 8, 0x8008_0f00_0102_0304);
    t.run();
    assert_eq!(t.rd(D + 16, 8), 0x0000_0700_0102_0304);
}

#[test]
fn sse41_integer() {
    let a = dw([1, 2, 3, 4]);
    let b = dw([10, 20, 30, 40]);
    assert_eq!(
        op2(a, b, |x| x.pblendw(xmm0, xmm1, 0b1100_0011)),
        dw([10, 2, 3, 40])
    );
    assert_eq!(
        op2(a, b, |x| x.blendps(xmm0, xmm1, 0b0101)),
        dw([10, 2, 30, 4])
    );
    let t = sse(&[(0, dw([0x8000_0000, 0, !0, 1])), (1, a), (2, b)], |x| {
        x.blendvps(xmm1, xmm2)
    });
    assert_eq!(x(&t, 1), dw([10, 2, 30, 4]));
    assert_eq!(
        op2(0, 0x80ff_7f01, |x| x.pmovsxbw(xmm0, xmm1)),
        dw([0x007f_0001, 0xff80_ffff, 0, 0])
    );
    assert_eq!(
        op2(0, 0x80ff_7f01, |x| x.pmovzxbd(xmm0, xmm1)),
        dw([1, 0x7f, 0xff, 0x80])
    );
    assert_eq!(
        op2(dw([0x1_0000, 3, !0, 0]), dw([0x1_0000, 5, 2, 0]), |x| x
            .pmulld(xmm0, xmm1)),
        dw([0, 15, -2i32 as u32, 0])
    );
    assert_eq!(
        op2(dw([!0, 0, 3, 0]), dw([2, 0, 4, 0]), |x| x
            .pmuldq(xmm0, xmm1)),
        (12u128) << 64 | (-2i64 as u64 as u128)
    );
    assert_eq!(
        op2(
            dw([0x10, 0x8000_0000, 0, 0]),
            dw([0x1_0000, 0xffff_ffff, 0, 0]),
            |x| { x.packusdw(xmm0, xmm1) }
        ),
        dw([0x0000_0010, 0, 0x0000_ffff, 0])
    );
    assert_eq!(
        op2(
            0,
            dw([0x0005_0007, 0x0003_0009, 0x0003_0004, 0x0008_0006]),
            |x| { x.phminposuw(xmm0, xmm1) }
        ),
        3 << 16 | 3
    );
    assert_eq!(
        op2(dw([0, 0, 1, 0]), dw([0, 0, 0, 0]), |x| x
            .pcmpeqq(xmm0, xmm1)),
        u64::MAX as u128
    );
    assert_eq!(
        op2(dw([0, 0x8000_0000, 5, 0]), dw([0, 0, 4, 0]), |x| x
            .pcmpgtq(xmm0, xmm1)),
        (u64::MAX as u128) << 64
    );
    assert_eq!(
        op2(
            dw([5, 0x8000_0000, 5, 0]),
            dw([6, 0x7fff_ffff, 0, 0]),
            |x| x.pminsd(xmm0, xmm1)
        ),
        dw([5, 0x8000_0000, 0, 0])
    );
    // MPSADBW with both offsets 0: SAD of 4-byte windows of the destination
    // against source bytes 0-3.
    let s = op2(0x0807_0605_0403_0201, 0x0403_0201, |x| {
        x.mpsadbw(xmm0, xmm1, 0)
    });
    assert_eq!(s & 0xffff, 0);
    assert_eq!((s >> 16) & 0xffff, 4);
    assert_eq!((s >> 112) & 0xffff, 16);
}

#[test]
fn sse41_insert_extract_ptest() {
    let t = sse(&[(1, dw([0x11, 0x22, 0x33, 0x44]))], |a| {
        a.mov(eax, 0xabu32)?;
        a.pinsrb(xmm1, eax, 15)?;
        a.pextrb(ecx, xmm1, 15)?;
        a.extractps(edx, xmm1, 2)?;
        a.pextrd(dword_ptr(D), xmm1, 1)?;
        a.insertps(xmm2, xmm1, 0b0110_0001)?;
        a.ptest(xmm1, xmm1)
    });
    assert_eq!(t.r(ECX), 0xab);
    assert_eq!(t.r(EDX), 0x33);
    assert_eq!(t.rd32(D), 0x22);
    assert_eq!(x(&t, 2), dw([0, 0, 0x22, 0]));
    assert_eq!(t.arith() & (FLAG_ZF | FLAG_CF), FLAG_CF);
    let t = sse(&[(0, 0xf0), (1, 0x0f)], |a| a.ptest(xmm0, xmm1));
    assert_eq!(t.arith() & (FLAG_ZF | FLAG_CF), FLAG_ZF);
}

#[test]
fn sse3_moves_and_fisttp() {
    let v = dw([1, 2, 3, 4]);
    assert_eq!(op2(0, v, |x| x.movshdup(xmm0, xmm1)), dw([2, 2, 4, 4]));
    assert_eq!(op2(0, v, |x| x.movsldup(xmm0, xmm1)), dw([1, 1, 3, 3]));
    assert_eq!(op2(0, v, |x| x.movddup(xmm0, xmm1)), dw([1, 2, 1, 2]));
    let mut t = T::pm32(|a| {
        a.fninit()?;
        a.fld(dword_ptr(D))?;
        a.fisttp(dword_ptr(D + 4))?;
        a.hlt()
    });
    t.wr32(D, (-2.75f32).to_bits());
    t.run();
    assert_eq!(t.rd32(D + 4), -2i32 as u32);
    assert_eq!(t.cpu.s.fpu.empty, 0xff, "popped");
}

fn str_op(a: &[u8], b: &[u8], f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    let pack = |s: &[u8]| s.iter().rev().fold(0u128, |r, &c| r << 8 | c as u128);
    sse(&[(0, pack(a)), (1, pack(b))], |x| {
        x.mov(eax, a.len() as u32)?;
        x.mov(edx, b.len() as u32)?;
        f(x)
    })
}

#[test]
fn sse42_string_compares() {
    // Equal any: first of "aeiou" in "xyzzy hello".
    let t = str_op(b"aeiou", b"xyzzy hello", |x| x.pcmpistri(xmm0, xmm1, 0x00));
    assert_eq!(t.r(ECX), 7);
    assert_eq!(t.arith(), FLAG_CF | FLAG_ZF | FLAG_SF);
    // Ranges a-z: the last lower-case letter (imm bit 6: most significant).
    let t = str_op(b"az", b"ABcdE", |x| x.pcmpestri(xmm0, xmm1, 0x44));
    assert_eq!(t.r(ECX), 3);
    // Equal each with negative polarity: first difference.
    let t = str_op(b"hello", b"help!", |x| x.pcmpestri(xmm0, xmm1, 0x18));
    assert_eq!(t.r(ECX), 3);
    // Equal ordered: substring search.
    let t = str_op(b"lo", b"hello world", |x| x.pcmpistri(xmm0, xmm1, 0x0c));
    assert_eq!(t.r(ECX), 3);
    // No match at all: index 16, CF clear.
    let t = str_op(b"q", b"hello", |x| x.pcmpistri(xmm0, xmm1, 0x00));
    assert_eq!(t.r(ECX), 16);
    assert_eq!(t.arith() & FLAG_CF, 0);
    // Mask form, expanded to bytes.
    let t = str_op(b"l", b"hello", |x| x.pcmpistrm(xmm0, xmm1, 0x40));
    assert_eq!(x(&t, 0), 0xffff_0000);
    let t = str_op(b"l", b"hello", |x| x.pcmpistrm(xmm0, xmm1, 0x00));
    assert_eq!(x(&t, 0), 0b01100);
}

#[test]
fn popcnt_and_crc32() {
    let mut t = T::pm32(|a| {
        a.mov(eax, 0xf0f0_0001u32)?;
        a.popcnt(ecx, eax)?;
        a.xor(edx, edx)?;
        a.popcnt(edx, edx)?;
        a.mov(ebx, !0u32)?;
        a.crc32(ebx, dword_ptr(D))?;
        a.crc32(ebx, dword_ptr(D + 4))?;
        a.crc32(ebx, byte_ptr(D + 8))?;
        a.hlt()
    });
    t.set_flags(ARITH_FLAGS);
    t.cpu.mem.load(D, b"123456789");
    t.run();
    assert_eq!(t.r(ECX), 9);
    assert_eq!(t.r(EDX), 0);
    assert_eq!(t.arith(), FLAG_ZF);
    // The CRC-32C check value of "123456789" (init and final XOR all ones).
    assert_eq!(!t.r(EBX), 0xe306_9283);
}

#[test]
fn partial_match_at_the_end_and_clflush() {
    // Equal ordered over a fully valid string: a needle that runs off the
    // end of the register matches on the elements that remain.
    let t = str_op(b"pqr", b"0123456789abcdpq", |x| {
        x.pcmpestri(xmm0, xmm1, 0x0c)
    });
    assert_eq!(t.r(ECX), 14);
    assert_eq!(t.arith() & FLAG_CF, FLAG_CF);
    // CLFLUSH checks its operand like a byte read.
    let mut t = T::pm32(|a| {
        a.clflush(byte_ptr(D))?;
        a.mov(eax, SEL_DATA_20000 as u32)?;
        a.mov(ds, ax)?;
        a.clflush(byte_ptr(0x1000))
    });
    t.expect_fault(
        GP,
        Some(0),
        CODE + len32(|a| {
            a.clflush(byte_ptr(D))?;
            a.mov(eax, SEL_DATA_20000 as u32)?;
            a.mov(ds, ax)
        }),
    );
}

#[test]
fn movntq_maskmovq() {
    let mut t = T::pm32(|a| {
        a.movq(mm0, qword_ptr(D))?;
        a.movq(mm1, qword_ptr(D + 8))?;
        a.movntq(qword_ptr(D + 16), mm0)?;
        a.mov(edi, (D + 24) as u32)?;
        a.maskmovq(mm0, mm1)?;
        a.hlt()
    });
    t.wr(D, 8, 0x8877_6655_4433_2211)
        .wr(D + 8, 8, 0x8000_0000_0000_0080);
    t.run();
    assert_eq!(t.rd(D + 16, 8), 0x8877_6655_4433_2211);
    assert_eq!(t.rd(D + 24, 8), 0x8800_0000_0000_0011);
}

#[test]
fn unmasked_denormal_is_reported_before_the_computation() {
    // DE unmasked: #XM with only DE set (no PE from the inexact product),
    // destination unchanged.
    let tiny = f32::from_bits(3);
    let mut t = prep(&[(0, ps([tiny; 4])), (1, ps([1.0 / 3.0; 4]))], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.mulps(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 & !(MX_DE << MX_MASK_SHIFT));
    t.expect_fault(XM, None, CODE + len32(|a| a.ldmxcsr(dword_ptr(D))));
    assert_eq!(x(&t, 0), ps([tiny; 4]));
    assert_eq!(mx(&t) & 0x3f, MX_DE);
    // Masked, the same operation sets DE, UE and PE and delivers the result.
    let t = sse(&[(0, ps([tiny; 4])), (1, ps([1.0 / 3.0; 4]))], |a| {
        a.mulps(xmm0, xmm1)
    });
    assert_eq!(x(&t, 0), ps([tiny * (1.0 / 3.0); 4]));
    assert_eq!(mx(&t) & 0x3f, MX_DE | MX_UE | MX_PE);
}

#[test]
fn movnti_and_non_temporal_stores() {
    let mut t = prep(&[(1, 0x1234_5678_9abc_def0_0fed_cba9_8765_4321)], |a| {
        a.mov(eax, 0xdead_beefu32)?;
        a.movnti(dword_ptr(D), eax)?;
        a.movntps(xmmword_ptr(D + 16), xmm1)?;
        a.movntdqa(xmm2, xmmword_ptr(D + 16))?;
        a.sfence()?;
        a.lfence()?;
        a.mfence()?;
        a.prefetchnta(byte_ptr(D))
    });
    t.run();
    assert_eq!(t.rd32(D), 0xdead_beef);
    assert_eq!(x(&t, 2), 0x1234_5678_9abc_def0_0fed_cba9_8765_4321);
}

/// 64-bit mode (the first 2 MiB identity-mapped with one large page), with
/// the OS support bits set.
fn lm64(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    let code = assemble(64, CODE, |a| {
        f(a)?;
        a.hlt()
    });
    let mut t = T::pm32(|a| a.hlt());
    assert!(t.cpu.mem.load(CODE, &code));
    let (pml4, pdpt, pd) = (0x20000u64, 0x21000u64, 0x22000u64);
    t.cpu.mem.write_ram(pml4, 8, pdpt | 3);
    t.cpu.mem.write_ram(pdpt, 8, pd | 3);
    t.cpu.mem.write_ram(pd, 8, 0x83);
    let s = &mut t.cpu.s;
    s.cr3 = pml4;
    s.cr4 |= CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.efer |= EFER_LME | EFER_LMA;
    s.cr0 |= CR0_PG;
    s.seg[CS].attr = (s.seg[CS].attr & !ATTR_DB) | ATTR_L;
    t.cpu.update_mode();
    t.cpu.tlb.flush_all();
    assert!(t.cpu.mode64);
    t
}

#[test]
fn long_mode_forms() {
    let v = 0x1122_3344_5566_7788u64;
    let mut t = lm64(|a| {
        a.mov(rax, v)?;
        a.movq(xmm8, rax)?;
        a.movq(rbx, xmm8)?;
        a.pinsrq(xmm9, rax, 1)?;
        a.pextrq(rcx, xmm9, 1)?;
        a.cvtsi2sd(xmm10, rax)?;
        a.cvttsd2si(rdx, xmm10)?;
        a.cvtsi2ss(xmm11, rax)?;
        a.popcnt(rdi, rax)?;
        a.movdqa(xmm15, xmm9)?;
        a.mov(rsi, 0x3837_3635_3433_3231u64)?;
        a.mov(r8, 0xffff_ffffu64)?;
        a.crc32(r8, rsi)?;
        a.mov(r9d, 0x39u32)?;
        a.crc32(r8d, r9b)?;
        a.fxsave64(ptr(D))?;
        a.pxor(xmm15, xmm15)?;
        a.fxrstor64(ptr(D))
    });
    t.run_any();
    assert_eq!(t.vector_taken(), None);
    let g = |r: usize| t.cpu.s.gpr[r];
    assert_eq!(x(&t, 8), v as u128);
    assert_eq!(g(EBX), v);
    assert_eq!(x(&t, 9), (v as u128) << 64);
    assert_eq!(g(ECX), v);
    assert_eq!(x(&t, 10) as u64, (v as i64 as f64).to_bits());
    assert_eq!(g(EDX), v as i64 as f64 as i64 as u64);
    assert_eq!(x(&t, 11) as u32, (v as i64 as f32).to_bits());
    assert_eq!(g(EDI), v.count_ones() as u64);
    assert_eq!(!(g(8) as u32), 0xe306_9283, "CRC-32C of \"123456789\"");
    assert_eq!(g(8) >> 32, 0);
    // FXSAVE64 stores XMM8-15 too, FXRSTOR64 brings XMM15 back.
    assert_eq!(t.rd(D + 160 + 15 * 16 + 8, 8), v);
    assert_eq!(x(&t, 15), (v as u128) << 64);
}

#[test]
fn mmx_transitions_of_the_conversions() {
    // CVTPI2PS switches to MMX state even with a memory source; CVTPI2PD
    // with a memory source does not.
    for (ps, want_empty) in [(true, 0u8), (false, 0xff)] {
        let mut t = prep(&[], |a| {
            a.fninit()?;
            if ps {
                a.cvtpi2ps(xmm0, qword_ptr(D))
            } else {
                a.cvtpi2pd(xmm0, qword_ptr(D))
            }
        });
        t.run();
        assert_eq!(t.cpu.s.fpu.empty, want_empty, "cvtpi2ps: {ps}");
    }
}

/// The cases in tools/difftest/unicorn_deviations.md where Unicorn (QEMU
/// 5.0) and the SDM part ways, with the SDM's answers.
#[test]
fn where_qemu_5_differs() {
    // Two QNaNs: the first operand, not the larger significand.
    let t = sse(&[(0, 0x7fc0_0001), (1, 0x7fc0_0002)], |a| {
        a.addss(xmm0, xmm1)
    });
    assert_eq!(x(&t, 0) as u32, 0x7fc0_0001);
    // MIN under DAZ returns the zero the denormal became.
    let mut t = prep(&[(0, 1), (1, 1.0f32.to_bits() as u128)], |a| {
        a.ldmxcsr(dword_ptr(D))?;
        a.minss(xmm0, xmm1)
    });
    t.wr32(D, 0x1f80 | MX_DAZ);
    t.run();
    assert_eq!(x(&t, 0) as u32, 0);
    // PHADDW with the same register: both halves from the original value.
    let v = (0..8).fold(0u128, |r, k| r | ((k + 1) as u128) << (16 * k));
    let r = op2(v, 0, |a| a.phaddw(xmm0, xmm0));
    assert_eq!(r >> 64, r & u64::MAX as u128);
    assert_eq!(r as u64, 0x000f_000b_0007_0003);
    // DPPD: (-1 * 0) + (-1 * 0) is -0.
    let r = op2(pd([-1.0, -1.0]), 0, |a| a.dppd(xmm0, xmm1, 0x31));
    assert_eq!(r as u64, 1 << 63);
    // CMPPS with imm8 > 7 uses bits 2:0.
    let r = op2(ps([1.0; 4]), ps([3.0; 4]), |a| a.cmpps(xmm0, xmm1, 9));
    assert_eq!(r, u128::MAX);
    // PCMPESTRI with REX.W: the length is RDX's whole 64-bit value, so
    // 2^32 + 5 saturates to 16 and the 'a' at byte 15 is found; with
    // EDX (no REX.W) the length is 5 and nothing is.
    for (w, want) in [(true, 15), (false, 16)] {
        let mut t = lm64(|a| {
            a.mov(rax, 1u64)?;
            a.mov(rdx, 0x1_0000_0005u64)?;
            if w {
                a.pcmpestri64(xmm0, xmm1, 0)
            } else {
                a.pcmpestri(xmm0, xmm1, 0)
            }
        });
        t.cpu.s.set_xmm(0, b'a' as u128);
        t.cpu
            .s
            .set_xmm(1, u128::from_le_bytes(*b"xxxxxxxxxxxxxxxa"));
        t.run_any();
        assert_eq!(t.vector_taken(), None);
        assert_eq!(t.cpu.s.gpr[ECX], want, "REX.W {w}");
    }
    // PSHUFB mm0, mm1 with REX.R: the MMX destination is still MM0; MM1
    // = 0 copies byte 0 of MM0 everywhere.
    let mut t = lm64(|a| {
        a.fninit()?;
        a.mov(rax, 0x1122_3344_5566_7788u64)?;
        a.movq(mm0, rax)?;
        a.pxor(mm1, mm1)?;
        a.db(&[0x44, 0x0f, 0x38, 0x00, 0xc1])
    });
    t.run_any();
    assert_eq!(t.vector_taken(), None);
    assert_eq!(t.cpu.s.fpu.regs[0].mant, 0x8888_8888_8888_8888);
}
