//! x87: exact bit patterns of results and status words (SDM Vol. 1 ch. 8,
//! Vol. 2 instruction pages). Expected transcendental values are the
//! correctly rounded results (computed with 300-bit arithmetic); the SDM
//! allows one unit in the last place.

use super::*;
use crate::exception::{MF, NM};
use crate::fpu::*;

const D: u64 = DATA;

fn fpu(data: &[(u64, u8, u64)], f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    let mut t = T::pm32(|a| {
        a.fninit()?;
        f(a)?;
        a.hlt()
    });
    for &(addr, size, v) in data {
        t.wr(addr, size, v);
    }
    t.run();
    t
}

fn st(t: &T, i: usize) -> (u16, u64) {
    let v = t.cpu.s.fpu.st(i);
    (v.se, v.mant)
}

fn sw(t: &T) -> u16 {
    t.cpu.s.fpu.fsw
}

fn f32b(v: f32) -> u64 {
    v.to_bits() as u64
}
fn f64b(v: f64) -> u64 {
    v.to_bits()
}

#[test]
fn one_third_at_each_precision() {
    // (PC bits in FCW, expected significand, C1 = rounded up)
    for (pc, mant, up) in [
        (0x000u16, 0xaaaa_ab00_0000_0000u64, true),
        (0x200, 0xaaaa_aaaa_aaaa_a800, false),
        (0x300, 0xaaaa_aaaa_aaaa_aaab, true),
    ] {
        let t = fpu(
            &[(D, 2, (0x037f & !0x300 | pc) as u64), (D + 4, 4, f32b(3.0))],
            |a| {
                a.fldcw(word_ptr(D))?;
                a.fld1()?;
                a.fld(dword_ptr(D + 4))?;
                a.fdivp(st1, st0)
            },
        );
        assert_eq!(st(&t, 0), (0x3ffd, mant), "pc {pc:#x}");
        assert_eq!(sw(&t) & (SW_PE | SW_C1), SW_PE | if up { SW_C1 } else { 0 });
        assert_eq!(sw(&t) >> 11 & 7, 7, "TOP");
    }
}

#[test]
fn fist_rounding_modes() {
    // RC: nearest, down, up, chop on +2.5 and -2.5.
    for (rc, pos, neg) in [(0u64, 2i16, -2i16), (1, 2, -3), (2, 3, -2), (3, 2, -2)] {
        let t = fpu(
            &[
                (D, 2, 0x037f | rc << 10),
                (D + 8, 8, f64b(2.5)),
                (D + 16, 8, f64b(-2.5)),
            ],
            |a| {
                a.fldcw(word_ptr(D))?;
                a.fld(qword_ptr(D + 8))?;
                a.fistp(word_ptr(D + 0x20))?;
                a.fld(qword_ptr(D + 16))?;
                a.fist(dword_ptr(D + 0x24))
            },
        );
        assert_eq!(t.rd(D + 0x20, 2) as i16, pos, "rc {rc}");
        assert_eq!(t.rd32(D + 0x24) as i32, neg as i32, "rc {rc}");
        assert!(sw(&t) & SW_PE != 0);
    }
}

#[test]
fn fist_overflow_gives_integer_indefinite() {
    let t = fpu(&[(D, 8, f64b(40000.0))], |a| {
        a.fld(qword_ptr(D))?;
        a.fist(word_ptr(D + 8))
    });
    assert_eq!(t.rd(D + 8, 2), 0x8000);
    assert_eq!(sw(&t) & SW_IE, SW_IE);
}

#[test]
fn fprem_partial_and_complete() {
    // 2^100 mod 3 needs several FPREM rounds (C2=1 while incomplete).
    let t = fpu(&[(D, 4, f32b(3.0)), (D + 4, 4, 0x7180_0000)], |a| {
        a.fld(dword_ptr(D))?;
        a.fld(dword_ptr(D + 4))?;
        a.fprem()
    });
    assert_eq!(sw(&t) & SW_C2, SW_C2, "partial remainder");
    let t = fpu(&[(D, 4, f32b(3.0)), (D + 4, 4, 0x7180_0000)], |a| {
        let mut again = a.create_label();
        a.fld(dword_ptr(D))?;
        a.fld(dword_ptr(D + 4))?;
        a.set_label(&mut again)?;
        a.fprem()?;
        a.fnstsw(ax)?;
        a.test(ah, 4)?;
        a.jnz(again)
    });
    assert_eq!(st(&t, 0), (0x3fff, J), "2^100 mod 3 = 1");
    // 10 rem 3: q = 3 (C0=q2=0, C3=q1=1, C1=q0=1), r = 1.
    for (prem1, x, r, cc) in [
        (false, 10.0f32, (0x3fffu16, J), SW_C3 | SW_C1),
        (true, 10.0, (0x3fff, J), SW_C3 | SW_C1),
        // 11 rem1 3: q = 4 (nearest), r = -1.
        (true, 11.0, (0xbfff, J), SW_C0),
        (false, 11.0, (0x4000, J), SW_C3 | SW_C1),
    ] {
        let t = fpu(&[(D, 4, f32b(3.0)), (D + 4, 4, f32b(x))], |a| {
            a.fld(dword_ptr(D))?;
            a.fld(dword_ptr(D + 4))?;
            if prem1 {
                a.fprem1()
            } else {
                a.fprem()
            }
        });
        assert_eq!(st(&t, 0), r, "{x} prem1={prem1}");
        assert_eq!(sw(&t) & SW_CC, cc, "{x} prem1={prem1}");
    }
}

#[test]
fn masked_invalid_gives_indefinite() {
    let t = fpu(&[(D, 4, f32b(-1.0))], |a| {
        a.fldz()?;
        a.fldz()?;
        a.fdivp(st1, st0)?;
        a.fld(dword_ptr(D))?;
        a.fsqrt()
    });
    assert_eq!(st(&t, 0), (0xffff, 0xc000_0000_0000_0000));
    assert_eq!(st(&t, 1), (0xffff, 0xc000_0000_0000_0000));
    assert_eq!(sw(&t) & SW_EXC, SW_IE);
    assert_eq!(sw(&t) & SW_ES, 0);
}

#[test]
fn divide_by_zero_masked_is_infinity() {
    let t = fpu(&[], |a| {
        a.fld1()?;
        a.fchs()?;
        a.fldz()?;
        a.fdivp(st1, st0)
    });
    assert_eq!(st(&t, 0), (0xffff, J));
    assert_eq!(sw(&t) & SW_EXC, SW_ZE);
}

#[test]
fn stack_underflow_and_overflow() {
    let t = fpu(&[], |a| a.fadd_2(st0, st1));
    assert_eq!(st(&t, 0), (0xffff, 0xc000_0000_0000_0000));
    assert_eq!(sw(&t) & (SW_EXC | SW_SF | SW_C1), SW_IE | SW_SF);
    let t = fpu(&[], |a| {
        for _ in 0..9 {
            a.fld1()?;
        }
        Ok(())
    });
    assert_eq!(sw(&t) & (SW_EXC | SW_SF | SW_C1), SW_IE | SW_SF | SW_C1);
    assert_eq!(st(&t, 0), (0xffff, 0xc000_0000_0000_0000));
}

#[test]
fn fsave_layout_32bit_protected() {
    let t = fpu(&[], |a| {
        a.fld1()?;
        a.fldpi()?;
        a.fldz()?;
        a.fstp(st0)?;
        a.fsave(ptr(D))
    });
    assert_eq!(t.rd(D, 2), 0x037f, "FCW");
    assert_eq!(t.rd(D + 4, 2), 0x3000, "FSW with TOP=6");
    // R7 = 1.0 (valid), R6 = pi (valid), R5 empty after FSTP, rest empty.
    assert_eq!(t.rd(D + 8, 2), 0x0fff, "tag word");
    let fip = t.rd32(D + 12) as u64;
    assert!((CODE..CODE + 20).contains(&fip), "FIP {fip:#x}");
    assert_eq!(t.rd(D + 16, 2), SEL_CODE as u64, "FCS");
    assert_eq!(t.rd(D + 28, 8), 0xc90f_daa2_2168_c235, "ST0 = pi");
    assert_eq!(t.rd(D + 36, 2), 0x4000);
    assert_eq!(t.rd(D + 38, 8), J, "ST1 = 1.0");
    assert_eq!(t.rd(D + 46, 2), 0x3fff);
    // FSAVE re-initialises.
    assert_eq!(t.cpu.s.fpu.fcw, 0x037f);
    assert_eq!(t.cpu.s.fpu.empty, 0xff);
}

#[test]
fn frstor_roundtrip_and_fstenv_masks() {
    let t = fpu(&[], |a| {
        a.fld1()?;
        a.fldl2t()?;
        a.fsave(ptr(D))?;
        a.frstor(ptr(D))?;
        a.fnstenv(ptr(D + 0x100))
    });
    assert_eq!(st(&t, 0), (0x4000, 0xd49a_784b_cd1b_8afe));
    assert_eq!(st(&t, 1), (0x3fff, J));
    assert_eq!(t.cpu.s.fpu.fcw & 0x3f, 0x3f);
    assert_eq!(t.rd(D + 0x108, 2), 0x0fff);
}

#[test]
fn fxsave_layout_and_fxrstor() {
    let t = fpu(&[], |a| {
        a.fld1()?;
        a.fldz()?;
        a.fxsave(ptr(D))?;
        a.fninit()?;
        a.fxrstor(ptr(D))
    });
    assert_eq!(t.rd(D, 2), 0x037f);
    assert_eq!(t.rd(D + 2, 2), 0x3000);
    assert_eq!(t.rd(D + 4, 1), 0xc0, "abridged tag: R6, R7 valid");
    assert_eq!(t.rd(D + 24, 4), 0x1f80, "MXCSR");
    assert_eq!(t.rd(D + 32, 8), 0, "ST0 = +0");
    assert_eq!(t.rd(D + 48, 8), J, "ST1 = 1.0");
    assert_eq!(t.rd(D + 56, 2), 0x3fff);
    assert_eq!(st(&t, 1), (0x3fff, J));
    assert_eq!(t.cpu.s.fpu.tag_word(), 0x1fff);
}

#[test]
fn fxsave_misaligned_is_gp() {
    let mut t = T::pm32(|a| {
        a.fxsave(ptr(D + 8))?;
        a.hlt()
    });
    t.expect_fault(crate::exception::GP, Some(0), CODE);
}

#[test]
fn nm_on_ts_and_em() {
    for bit in [crate::state::CR0_TS, crate::state::CR0_EM] {
        let mut t = T::pm32(|a| {
            a.fld1()?;
            a.hlt()
        });
        t.cpu.s.cr0 |= bit;
        t.expect_fault(NM, None, CODE);
    }
    // WAIT faults only with MP and TS together.
    let mut t = T::pm32(|a| {
        a.wait()?;
        a.hlt()
    });
    t.cpu.s.cr0 |= CR0_TS;
    t.run();
    let mut t = T::pm32(|a| {
        a.wait()?;
        a.hlt()
    });
    t.cpu.s.cr0 |= CR0_TS | CR0_MP;
    t.expect_fault(NM, None, CODE);
}

#[test]
fn unmasked_zero_divide_delivers_mf_on_next_wait() {
    let pre = |a: &mut Asm| -> AsmResult {
        a.fninit()?;
        a.fldcw(word_ptr(D))?;
        a.fld1()?;
        a.fldz()?;
        a.fdivp(st1, st0)
    };
    let at = len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        a.wait()?;
        a.hlt()
    });
    t.cpu.s.cr0 |= CR0_NE;
    t.wr(D, 2, 0x037b);
    t.expect_fault(MF, None, CODE + at);
    let f = &t.cpu.s.fpu;
    assert_eq!(f.fsw & (SW_ZE | SW_ES | SW_B), SW_ZE | SW_ES | SW_B);
    // Unmasked ZE: the destination is unchanged, no pop.
    assert_eq!((f.st(0).se, f.st(0).mant), (0, 0));
    assert_eq!(f.top(), 6);
}

struct FerrBus {
    ferr: Vec<bool>,
}
impl Bus for FerrBus {
    fn ferr(&mut self, asserted: bool) {
        self.ferr.push(asserted);
    }
}

#[test]
fn unmasked_exception_with_ne0_raises_ferr() {
    let mut t = T::pm32(|a| {
        a.fninit()?;
        a.fldcw(word_ptr(D))?;
        a.fld1()?;
        a.fldz()?;
        a.fdivp(st1, st0)?;
        a.fld1()?;
        a.fnclex()?;
        a.hlt()
    });
    t.wr(D, 2, 0x037b);
    let mut bus = FerrBus { ferr: vec![] };
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    assert_eq!(t.vector_taken(), None);
    assert_eq!(bus.ferr, vec![true, false]);
}

#[test]
fn fxam_classes() {
    // (value bytes, expected C3 C2 C1 C0)
    let cases: [(u16, u64, u16); 7] = [
        (0x3fff, J, SW_C2),                     // normal
        (0xbfff, J, SW_C2 | SW_C1),             // negative normal
        (0x7fff, J, SW_C2 | SW_C0),             // infinity
        (0x7fff, 0xc000_0000_0000_0000, SW_C0), // NaN
        (0x0000, 0, SW_C3),                     // zero
        (0x0000, 1, SW_C3 | SW_C2),             // denormal
        (0x3fff, 0x4000_0000_0000_0000, 0),     // unnormal
    ];
    for (se, mant, cc) in cases {
        let t = fpu(&[(D, 8, mant), (D + 8, 2, se as u64)], |a| {
            a.fld(tword_ptr(D))?;
            a.fxam()
        });
        assert_eq!(sw(&t) & SW_CC, cc, "{se:#x}:{mant:#x}");
    }
    let t = fpu(&[], |a| a.fxam());
    assert_eq!(sw(&t) & SW_CC & !SW_C1, SW_C3 | SW_C0, "empty");
}

#[test]
fn fbld_fbstp() {
    let t = fpu(&[(D, 8, f64b(-1234567.5))], |a| {
        a.fld(qword_ptr(D))?;
        a.fbstp(ptr(D + 0x10))?;
        a.fbld(ptr(D + 0x10))
    });
    // Round to nearest even: -1234568.
    assert_eq!(t.rd(D + 0x10, 8), 0x0123_4568);
    assert_eq!(t.rd(D + 0x18, 2), 0x8000);
    assert_eq!(st(&t, 0), (0xc013, 0x96b4_4000_0000_0000));
    assert_eq!(sw(&t) >> 11 & 7, 7);
}

#[test]
fn fcomi_and_fucomi_flags() {
    let t = fpu(&[(D, 4, f32b(1.0)), (D + 4, 4, f32b(2.0))], |a| {
        a.fld(dword_ptr(D + 4))?;
        a.fld(dword_ptr(D))?;
        a.fcomi(st0, st1)
    });
    assert_eq!(t.arith(), FLAG_CF, "1 < 2");
    let t = fpu(&[(D, 4, 0x7fc0_0000)], |a| {
        a.fld1()?;
        a.fld(dword_ptr(D))?;
        a.fucomip(st0, st1)
    });
    assert_eq!(t.arith(), FLAG_ZF | FLAG_PF | FLAG_CF, "unordered");
    assert_eq!(sw(&t) & SW_IE, 0, "FUCOMI: QNaN is not invalid");
    assert_eq!(sw(&t) >> 11 & 7, 7, "popped");
    let t = fpu(&[(D, 4, 0x7fc0_0000)], |a| {
        a.fld1()?;
        a.fld(dword_ptr(D))?;
        a.fcom_2(st0, st1)?;
        a.fnstsw(ax)
    });
    assert_eq!(sw(&t) & SW_IE, SW_IE, "FCOM: any NaN is invalid");
    assert_eq!(t.r(EAX) as u16 & SW_CC, SW_C3 | SW_C2 | SW_C0);
}

#[test]
fn fcmov_and_fxch() {
    let t = fpu(&[], |a| {
        a.fld1()?;
        a.fldz()?;
        a.stc()?;
        a.fcmovb(st0, st1)?;
        a.fldpi()?;
        a.fxch(st0, st2)
    });
    assert_eq!(st(&t, 0), (0x3fff, J));
    assert_eq!(st(&t, 1), (0x3fff, J));
    assert_eq!(st(&t, 2), (0x4000, 0xc90f_daa2_2168_c235));
}

#[test]
fn constants_follow_rounding_control() {
    let t = fpu(&[(D, 2, 0x077f)], |a| {
        a.fldcw(word_ptr(D))?;
        a.fldpi()?;
        a.fldl2e()
    });
    // Round down: pi = ...c234, log2(e) = ...f0bb.
    assert_eq!(st(&t, 1), (0x4000, 0xc90f_daa2_2168_c234));
    assert_eq!(st(&t, 0), (0x3fff, 0xb8aa_3b29_5c17_f0bb));
}

#[test]
fn loads_stores_and_conversions() {
    let t = fpu(
        &[
            (D, 4, 1),
            (D + 4, 8, 0x7ff0_0000_0000_0001),
            (D + 12, 2, 0xfffe),
        ],
        |a| {
            a.fld(dword_ptr(D))?; // smallest single denormal: DE
            a.fild(word_ptr(D + 12))?; // -2
            a.fstp(dword_ptr(D + 0x20))?;
            a.fld(qword_ptr(D + 4))?; // SNaN: IE, quieted
            a.fstp(qword_ptr(D + 0x28))
        },
    );
    assert_eq!(st(&t, 0), (0x3f6a, J));
    assert_eq!(t.rd32(D + 0x20), (-2.0f32).to_bits());
    assert_eq!(t.rd(D + 0x28, 8), 0x7ff8_0000_0000_0001);
    assert_eq!(sw(&t) & SW_EXC, SW_IE | SW_DE);
    // Overflow on store to single.
    let t = fpu(&[(D, 8, f64b(1e300))], |a| {
        a.fld(qword_ptr(D))?;
        a.fst(dword_ptr(D + 8))
    });
    assert_eq!(t.rd32(D + 8), 0x7f80_0000);
    assert_eq!(sw(&t) & SW_EXC, SW_OE | SW_PE);
}

#[test]
fn fxtract_fscale_frndint_fsqrt() {
    let t = fpu(&[(D, 4, f32b(48.0)), (D + 4, 4, f32b(2.5))], |a| {
        a.fld(dword_ptr(D))?;
        a.fxtract()?; // ST0 = 1.5, ST1 = 5
        a.fld(dword_ptr(D + 4))?;
        a.frndint()?; // 2 (nearest even)
        a.fxch(st0, st1)?;
        a.fscale()?; // 1.5 * 4 = 6
        a.fld1()?;
        a.fadd_2(st0, st0)?;
        a.fsqrt()
    });
    assert_eq!(st(&t, 0), (0x3fff, 0xb504_f333_f9de_6484), "sqrt 2");
    assert_eq!(st(&t, 1), (0x4001, 0xc000_0000_0000_0000), "6");
    assert_eq!(st(&t, 2), (0x4000, J), "2");
    assert_eq!(st(&t, 3), (0x4001, 0xa000_0000_0000_0000), "5");
}

#[test]
fn unmasked_overflow_is_bias_adjusted() {
    // 2^16000 * 2^16000 with OE unmasked: 2^32000 * 2^-24576 = 2^7424.
    let t = fpu(
        &[(D, 8, J), (D + 8, 2, 0x3fff + 16000), (D + 16, 2, 0x0377)],
        |a| {
            a.fldcw(word_ptr(D + 16))?;
            a.fld(tword_ptr(D))?;
            a.fld(st0)?;
            a.fmulp(st1, st0)
        },
    );
    assert_eq!(st(&t, 0), (0x3fff + 32000 - 24576, J));
    assert_eq!(sw(&t) & (SW_OE | SW_ES), SW_OE | SW_ES);
}

fn ulps(t: &T, want: (u16, u64)) {
    let got = st(t, 0);
    assert_eq!(got.0, want.0, "exponent of {got:x?}, want {want:x?}");
    assert!(
        got.1.abs_diff(want.1) <= 1,
        "{got:x?} is more than 1 ulp from {want:x?}"
    );
}

#[test]
fn transcendentals_within_one_ulp() {
    let one = |f: fn(&mut Asm) -> AsmResult, x: f64, want: (u16, u64)| {
        let t = fpu(&[(D, 8, f64b(x))], |a| {
            a.fld(qword_ptr(D))?;
            f(a)
        });
        ulps(&t, want);
        assert!(sw(&t) & SW_PE != 0);
    };
    one(|a| a.fsin(), 1.0, (0x3ffe, 0xd76a_a478_4867_7021));
    one(|a| a.fcos(), 1.0, (0x3ffe, 0x8a51_407d_a834_5c92));
    one(|a| a.fsin(), 1e10, (0xbffd, 0xf99a_63c4_b527_1a66));
    one(|a| a.fcos(), 1e18, (0x3ffb, 0xf26d_0396_03ac_d38c));
    one(|a| a.f2xm1(), 0.5, (0x3ffd, 0xd413_cccf_e779_9211));
    one(|a| a.f2xm1(), -0.75, (0xbffd, 0xcf90_1f5c_e48e_ad21));
    let t = fpu(&[(D, 8, f64b(0.5))], |a| {
        a.fld(qword_ptr(D))?;
        a.fptan()?;
        a.fstp(st0)
    });
    ulps(&t, (0x3ffe, 0x8bda_7adf_9a3a_5219));
    let t = fpu(&[(D, 8, f64b(1.0)), (D + 8, 8, f64b(2.0))], |a| {
        a.fld(qword_ptr(D))?;
        a.fld(qword_ptr(D + 8))?;
        a.fpatan()
    });
    ulps(&t, (0x3ffd, 0xed63_382b_0dda_7b45));
    let t = fpu(&[(D, 8, f64b(1.5)), (D + 8, 8, f64b(3.0))], |a| {
        a.fld(qword_ptr(D))?;
        a.fld(qword_ptr(D + 8))?;
        a.fyl2x()
    });
    ulps(&t, (0x4000, 0x9828_09d5_be70_72dc));
    let t = fpu(&[(D, 8, f64b(1.0)), (D + 8, 8, f64b(0.25))], |a| {
        a.fld(qword_ptr(D))?;
        a.fld(qword_ptr(D + 8))?;
        a.fyl2xp1()
    });
    ulps(&t, (0x3ffd, 0xa4d3_c25e_68dc_57f2));
    // sin(pi rounded to 64 bits) = pi - pi_ext, a tiny negative number.
    let t = fpu(&[], |a| {
        a.fldpi()?;
        a.fsin()
    });
    ulps(&t, (0xbfbe, 0xece6_75d1_fc8f_8cbb));
    // Out of range: C2 set, operand unchanged.
    let t = fpu(&[(D, 8, f64b(1e19))], |a| {
        a.fld(qword_ptr(D))?;
        a.fsin()
    });
    assert_eq!(sw(&t) & SW_C2, SW_C2);
    assert_eq!(st(&t, 0).1, 0x8ac7_2304_89e8_0000);
}
