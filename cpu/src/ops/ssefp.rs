//! SSE/SSE2/SSE3/SSE4.1 floating point (SDM Vol. 1 ch. 10-11, 4.8/4.9).
//!
//! Results are exact IEEE binary32/binary64 from SoftFloat (8086-SSE
//! specialisation: default NaN is the negative QNaN "real indefinite", the
//! first source NaN wins). MXCSR supplies the rounding mode, DAZ (denormal
//! inputs read as signed zero, no DE) and FTZ (a tiny result with underflow
//! masked becomes signed zero and sets UE and PE).
//!
//! Exceptions are gathered over all lanes of an instruction, as the SDM
//! describes (11.5.2): pre-computation ones (IE, DE, ZE) first; if one of
//! them is unmasked, only those flags are set and the instruction faults.
//! Otherwise the post-computation ones (OE, UE, PE) are added, and an
//! unmasked one faults too. A fault leaves the destination unchanged and
//! is #XM with CR4.OSXMMEXCPT=1, #UD without.
//!
//! RCPPS/RCPSS/RSQRTPS/RSQRTSS: the SDM only bounds the relative error
//! (1.5 * 2^-12). This CPU returns 1/x, and 1/sqrt(x) computed as
//! 1/(sqrt x), each step rounded to single precision with MXCSR's rounding
//! mode (as QEMU does, which keeps the Unicorn differential exact); they
//! raise no flags and ignore the masks.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result, XM};
use crate::fpu::*;
use crate::insn::*;
use crate::ops::sse::{enter, lane, load, put_lane, store};
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};
use softfloat_sys as sf;

// ---------------------------------------------------------------------
// Formats

/// Single (false) or double (true) precision, as bit patterns in a u64.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fmt(bool);

const S: Fmt = Fmt(false);
const D: Fmt = Fmt(true);

impl Fmt {
    fn bits(self) -> u32 {
        if self.0 {
            64
        } else {
            32
        }
    }
    fn frac_bits(self) -> u32 {
        if self.0 {
            52
        } else {
            23
        }
    }
    fn sign(self, v: u64) -> u64 {
        v & (1 << (self.bits() - 1))
    }
    fn exp(self, v: u64) -> u64 {
        (v >> self.frac_bits()) & if self.0 { 0x7ff } else { 0xff }
    }
    fn frac(self, v: u64) -> u64 {
        v & ((1 << self.frac_bits()) - 1)
    }
    fn exp_max(self) -> u64 {
        if self.0 {
            0x7ff
        } else {
            0xff
        }
    }
    fn is_nan(self, v: u64) -> bool {
        self.exp(v) == self.exp_max() && self.frac(v) != 0
    }
    fn is_snan(self, v: u64) -> bool {
        self.is_nan(v) && v & (1 << (self.frac_bits() - 1)) == 0
    }
    fn is_denormal(self, v: u64) -> bool {
        self.exp(v) == 0 && self.frac(v) != 0
    }
    fn one(self) -> u64 {
        if self.0 {
            0x3ff0_0000_0000_0000
        } else {
            0x3f80_0000
        }
    }
}

fn f32v(v: u64) -> sf::float32_t {
    sf::float32_t { v: v as u32 }
}
fn f64v(v: u64) -> sf::float64_t {
    sf::float64_t { v }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
}

// ---------------------------------------------------------------------
// The exception/rounding context of one instruction

#[derive(Clone, Copy)]
struct Fx {
    mx: u32,
    /// SoftFloat rounding mode from MXCSR.RC.
    rm: u8,
    pre: u32,
    post: u32,
    /// Flags of the last SoftFloat operation.
    last: u32,
}

impl Fx {
    fn new(cpu: &Cpu) -> Fx {
        let mx = cpu.s.fpu.mxcsr;
        let rm = match (mx >> 13) & 3 {
            0 => sf::softfloat_round_near_even,
            1 => sf::softfloat_round_min,
            2 => sf::softfloat_round_max,
            _ => sf::softfloat_round_minMag,
        };
        Fx {
            mx,
            rm,
            pre: 0,
            post: 0,
            last: 0,
        }
    }

    fn masked(&self, flag: u32) -> bool {
        self.mx & (flag << MX_MASK_SHIFT) != 0
    }

    /// An input as the instruction sees it (DAZ applied).
    fn input(&self, f: Fmt, v: u64) -> u64 {
        if self.mx & MX_DAZ != 0 && f.is_denormal(v) {
            f.sign(v)
        } else {
            v
        }
    }

    /// DE for denormal inputs, unless a NaN is involved (NaNs take
    /// precedence in the SDM's exception priority).
    fn check_denormal(&mut self, f: Fmt, vals: &[u64]) {
        if vals.iter().any(|&v| f.is_nan(v)) {
            return;
        }
        if vals.iter().any(|&v| f.is_denormal(v)) {
            self.pre |= MX_DE;
        }
    }

    /// Run a SoftFloat operation under this instruction's rounding mode,
    /// sorting its flags into pre- and post-computation ones.
    fn sf<T>(&mut self, rm: u8, op: impl FnOnce() -> T) -> T {
        let s = Sf::begin(rm, 80);
        let r = op();
        let fl = s.flags() as u32;
        self.last = fl;
        self.pre |= fl & (MX_IE | MX_ZE);
        self.post |= fl & (MX_OE | MX_UE | MX_PE);
        r
    }

    /// Apply FTZ, and report underflow of exact tiny results when UE is
    /// unmasked (SoftFloat only flags tiny *and* inexact ones). Tininess is
    /// after rounding with unbounded exponent (SDM Vol. 1 4.9.1.5), as
    /// SoftFloat detects it, so a tiny result that rounds up to the
    /// smallest normal is flushed as well.
    fn result(&mut self, f: Fmt, r: u64) -> u64 {
        if !f.is_denormal(r) && self.last & MX_UE == 0 {
            return r;
        }
        if !self.masked(MX_UE) {
            self.post |= MX_UE;
            return r;
        }
        if self.mx & MX_FTZ != 0 {
            self.post |= MX_UE | MX_PE;
            return f.sign(r);
        }
        r
    }

    fn arith(&mut self, f: Fmt, op: Op, a: u64, b: u64) -> u64 {
        let a = self.input(f, a);
        let b = self.input(f, b);
        if op == Op::Sqrt {
            self.check_denormal(f, &[b]);
        } else {
            self.check_denormal(f, &[a, b]);
        }
        let rm = self.rm;
        let r = self.sf(rm, || unsafe {
            if f.0 {
                let (x, y) = (f64v(a), f64v(b));
                match op {
                    Op::Add => sf::f64_add(x, y),
                    Op::Sub => sf::f64_sub(x, y),
                    Op::Mul => sf::f64_mul(x, y),
                    Op::Div => sf::f64_div(x, y),
                    Op::Sqrt => sf::f64_sqrt(y),
                }
                .v
            } else {
                let (x, y) = (f32v(a), f32v(b));
                (match op {
                    Op::Add => sf::f32_add(x, y),
                    Op::Sub => sf::f32_sub(x, y),
                    Op::Mul => sf::f32_mul(x, y),
                    Op::Div => sf::f32_div(x, y),
                    Op::Sqrt => sf::f32_sqrt(y),
                })
                .v as u64
            }
        });
        self.result(f, r)
    }

    /// a < b and a <= b for non-NaN inputs.
    fn lt_le(f: Fmt, a: u64, b: u64) -> (bool, bool) {
        unsafe {
            if f.0 {
                (
                    sf::f64_lt_quiet(f64v(a), f64v(b)),
                    sf::f64_le_quiet(f64v(a), f64v(b)),
                )
            } else {
                (
                    sf::f32_lt_quiet(f32v(a), f32v(b)),
                    sf::f32_le_quiet(f32v(a), f32v(b)),
                )
            }
        }
    }

    /// MIN/MAX: the second operand when either is a NaN (IE, QNaN too) or
    /// both are equal (so the sign of a zero result comes from it).
    fn minmax(&mut self, f: Fmt, max: bool, a: u64, b: u64) -> u64 {
        let a = self.input(f, a);
        let b = self.input(f, b);
        if f.is_nan(a) || f.is_nan(b) {
            self.pre |= MX_IE;
            return b;
        }
        self.check_denormal(f, &[a, b]);
        let (lt, _) = Fx::lt_le(f, a, b);
        let (gt, _) = Fx::lt_le(f, b, a);
        if (!max && lt) || (max && gt) {
            a
        } else {
            b
        }
    }

    /// CMPPS-style predicate 0-7: all ones or zero.
    fn cmp(&mut self, f: Fmt, pred: u8, a: u64, b: u64) -> u64 {
        let a = self.input(f, a);
        let b = self.input(f, b);
        let un = f.is_nan(a) || f.is_nan(b);
        let signaling = matches!(pred & 7, 1 | 2 | 5 | 6);
        if (un && signaling) || f.is_snan(a) || f.is_snan(b) {
            self.pre |= MX_IE;
        }
        self.check_denormal(f, &[a, b]);
        let (lt, le) = if un {
            (false, false)
        } else {
            Fx::lt_le(f, a, b)
        };
        let eq = le && !lt;
        let r = match pred & 7 {
            0 => eq,
            1 => lt,
            2 => le,
            3 => un,
            4 => !eq,
            5 => !lt,
            6 => !le,
            _ => !un,
        };
        if r {
            u64::MAX >> (64 - f.bits())
        } else {
            0
        }
    }

    /// Convert between single and double precision.
    fn convert(&mut self, to: Fmt, a: u64) -> u64 {
        let from = Fmt(!to.0);
        let a = self.input(from, a);
        self.check_denormal(from, &[a]);
        let rm = self.rm;
        let r = self.sf(rm, || unsafe {
            if to.0 {
                sf::f32_to_f64(f32v(a)).v
            } else {
                sf::f64_to_f32(f64v(a)).v as u64
            }
        });
        self.result(to, r)
    }

    /// Signed integer (32- or 64-bit value in `v`) to float.
    fn int_to_fp(&mut self, to: Fmt, v: i64, wide: bool) -> u64 {
        let rm = self.rm;
        self.sf(rm, || unsafe {
            match (to.0, wide) {
                (false, false) => sf::i32_to_f32(v as i32).v as u64,
                (false, true) => sf::i64_to_f32(v).v as u64,
                (true, false) => sf::i32_to_f64(v as i32).v,
                (true, true) => sf::i64_to_f64(v).v,
            }
        })
    }

    /// Float to a signed 32- or 64-bit integer; out of range and NaN give
    /// the integer indefinite (sign bit only) and IE.
    fn fp_to_int(&mut self, from: Fmt, a: u64, wide: bool, trunc: bool) -> u64 {
        let a = self.input(from, a);
        let rm = if trunc {
            sf::softfloat_round_minMag
        } else {
            self.rm
        };
        self.sf(rm, || unsafe {
            match (from.0, wide) {
                (false, false) => sf::f32_to_i32(f32v(a), rm, true) as u32 as u64,
                (false, true) => sf::f32_to_i64(f32v(a), rm, true) as u64,
                (true, false) => sf::f64_to_i32(f64v(a), rm, true) as u32 as u64,
                (true, true) => sf::f64_to_i64(f64v(a), rm, true) as u64,
            }
        })
    }

    fn round(&mut self, f: Fmt, imm: u8, a: u64) -> u64 {
        let a = self.input(f, a);
        let rm = if imm & 4 != 0 {
            self.rm
        } else {
            match imm & 3 {
                0 => sf::softfloat_round_near_even,
                1 => sf::softfloat_round_min,
                2 => sf::softfloat_round_max,
                _ => sf::softfloat_round_minMag,
            }
        };
        let exact = imm & 8 == 0;
        self.sf(rm, || unsafe {
            if f.0 {
                sf::f64_roundToInt(f64v(a), rm, exact).v
            } else {
                sf::f32_roundToInt(f32v(a), rm, exact).v as u64
            }
        })
    }

    /// The RCP/RSQRT approximations (see the module comment).
    fn approx(&mut self, rsqrt: bool, a: u64) -> u64 {
        let a = self.input(S, a);
        let _s = Sf::begin(self.rm, 80);
        unsafe {
            let x = if rsqrt {
                sf::f32_sqrt(f32v(a))
            } else {
                f32v(a)
            };
            sf::f32_div(f32v(S.one()), x).v as u64
        }
    }

    /// Fold the flags into MXCSR; fault if an unmasked one was raised.
    fn finish(self, cpu: &mut Cpu) -> Result<()> {
        let masks = (self.mx >> MX_MASK_SHIFT) & 0x3f;
        let raised = if self.pre & !masks != 0 {
            self.pre
        } else {
            self.pre | self.post
        };
        cpu.s.fpu.mxcsr |= raised;
        if raised & !masks != 0 {
            return Err(if cpu.s.cr4 & CR4_OSXMMEXCPT != 0 {
                Exception::new(XM)
            } else {
                Exception::ud()
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Dispatch

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    // Format and "scalar" (low element only) from the mnemonic's suffix,
    // once at decode time.
    let name = format!("{m:?}");
    let d = name.ends_with("pd") || name.ends_with("sd");
    let scalar = name.ends_with("ss") || name.ends_with("sd");
    let arith: Handler = match (d, scalar) {
        (false, false) => h_arith::<false, false>,
        (false, true) => h_arith::<false, true>,
        (true, false) => h_arith::<true, false>,
        (true, true) => h_arith::<true, true>,
    };
    Some(match m {
        Addps | Addss | Addpd | Addsd | Subps | Subss | Subpd | Subsd | Mulps | Mulss | Mulpd
        | Mulsd | Divps | Divss | Divpd | Divsd | Sqrtps | Sqrtss | Sqrtpd | Sqrtsd | Minps
        | Minss | Minpd | Minsd | Maxps | Maxss | Maxpd | Maxsd | Cmpps | Cmpss | Cmppd | Cmpsd
        | Rcpps | Rcpss | Rsqrtps | Rsqrtss | Addsubps | Addsubpd | Haddps | Haddpd | Hsubps
        | Hsubpd | Roundps | Roundpd | Roundss | Roundsd | Dpps | Dppd => arith,
        Comiss | Ucomiss | Comisd | Ucomisd => h_comi,
        Cvtsi2ss | Cvtsi2sd | Cvtss2si | Cvttss2si | Cvtsd2si | Cvttsd2si | Cvtps2pd | Cvtpd2ps
        | Cvtss2sd | Cvtsd2ss | Cvtdq2ps | Cvtps2dq | Cvttps2dq | Cvtdq2pd | Cvtpd2dq
        | Cvttpd2dq | Cvtpi2ps | Cvtps2pi | Cvttps2pi | Cvtpi2pd | Cvtpd2pi | Cvttpd2pi => h_cvt,
        _ => return None,
    })
}

fn h_arith<const DBL: bool, const SCALAR: bool>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    i: &Insn,
) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus, i)?;
    let m = i.inst.mnemonic();
    let (f, scalar) = (Fmt(DBL), SCALAR);
    let b = load(cpu, bus, i, 1)?;
    let a = load(cpu, bus, i, 0)?;
    let imm = i.imm as u8;
    let bits = f.bits();
    let n = if scalar { 1 } else { 128 / bits };
    let mut fx = Fx::new(cpu);
    let la = |k: u32| lane(a, bits, k);
    let lb = |k: u32| lane(b, bits, k);
    let mut r = a;
    match m {
        Haddps | Haddpd | Hsubps | Hsubpd => {
            let op = if matches!(m, Haddps | Haddpd) {
                Op::Add
            } else {
                Op::Sub
            };
            let half = 64 / bits;
            for k in 0..half {
                let x = fx.arith(f, op, la(2 * k), la(2 * k + 1));
                r = put_lane(r, bits, k, x);
            }
            for k in 0..half {
                let x = fx.arith(f, op, lb(2 * k), lb(2 * k + 1));
                r = put_lane(r, bits, half + k, x);
            }
        }
        Dpps | Dppd => {
            let zero = 0u64;
            let prods: Vec<u64> = (0..n)
                .map(|k| {
                    if imm & (0x10 << k) != 0 {
                        fx.arith(f, Op::Mul, la(k), lb(k))
                    } else {
                        zero
                    }
                })
                .collect();
            let sum = if n == 4 {
                let s1 = fx.arith(f, Op::Add, prods[0], prods[1]);
                let s2 = fx.arith(f, Op::Add, prods[2], prods[3]);
                fx.arith(f, Op::Add, s1, s2)
            } else {
                fx.arith(f, Op::Add, prods[0], prods[1])
            };
            for k in 0..n {
                r = put_lane(r, bits, k, if imm & (1 << k) != 0 { sum } else { zero });
            }
        }
        _ => {
            for k in 0..n {
                let (x, y) = (la(k), lb(k));
                let v = match m {
                    Addps | Addss | Addpd | Addsd => fx.arith(f, Op::Add, x, y),
                    Subps | Subss | Subpd | Subsd => fx.arith(f, Op::Sub, x, y),
                    Mulps | Mulss | Mulpd | Mulsd => fx.arith(f, Op::Mul, x, y),
                    Divps | Divss | Divpd | Divsd => fx.arith(f, Op::Div, x, y),
                    Sqrtps | Sqrtss | Sqrtpd | Sqrtsd => fx.arith(f, Op::Sqrt, x, y),
                    Minps | Minss | Minpd | Minsd => fx.minmax(f, false, x, y),
                    Maxps | Maxss | Maxpd | Maxsd => fx.minmax(f, true, x, y),
                    Cmpps | Cmpss | Cmppd | Cmpsd => fx.cmp(f, imm, x, y),
                    Rcpps | Rcpss => fx.approx(false, y),
                    Rsqrtps | Rsqrtss => fx.approx(true, y),
                    Addsubps | Addsubpd => {
                        let op = if k & 1 == 0 { Op::Sub } else { Op::Add };
                        fx.arith(f, op, x, y)
                    }
                    _ => fx.round(f, imm, y),
                };
                r = put_lane(r, bits, k, v);
            }
        }
    }
    fx.finish(cpu)?;
    store(cpu, bus, i, 0, r)
}

fn h_comi(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus, i)?;
    let m = i.inst.mnemonic();
    let f = Fmt(matches!(m, Comisd | Ucomisd));
    let bits = f.bits();
    let b = lane(load(cpu, bus, i, 1)?, bits, 0);
    let a = lane(load(cpu, bus, i, 0)?, bits, 0);
    let mut fx = Fx::new(cpu);
    let (a, b) = (fx.input(f, a), fx.input(f, b));
    let un = f.is_nan(a) || f.is_nan(b);
    let quiet = matches!(m, Ucomiss | Ucomisd);
    if (un && !quiet) || f.is_snan(a) || f.is_snan(b) {
        fx.pre |= MX_IE;
    }
    fx.check_denormal(f, &[a, b]);
    fx.finish(cpu)?;
    let fl = if un {
        FLAG_ZF | FLAG_PF | FLAG_CF
    } else {
        let (lt, le) = Fx::lt_le(f, a, b);
        if lt {
            FLAG_CF
        } else if le {
            FLAG_ZF
        } else {
            0
        }
    };
    cpu.s.flags.set_arith(ARITH_FLAGS, fl);
    Ok(())
}

fn h_cvt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    let m = i.inst.mnemonic();
    // The forms with an MMX register switch to MMX state (after reporting
    // a pending x87 exception); CVTPI2PS does so with a memory source too,
    // CVTPI2PD does not (SDM Vol. 2 CVTPI2PS, CVTPI2PD).
    let mmx = i.inst.op_register(0).is_mm() || i.inst.op_register(1).is_mm() || m == Cvtpi2ps;
    crate::ops::sse::sse_enter(cpu)?;
    if mmx {
        crate::ops::mmx::enter(cpu, bus)?;
    }
    let s = load(cpu, bus, i, 1)?;
    let d = load(cpu, bus, i, 0)?;
    let mut fx = Fx::new(cpu);
    let trunc = matches!(
        m,
        Cvttss2si | Cvttsd2si | Cvttps2dq | Cvttpd2dq | Cvttps2pi | Cvttpd2pi
    );
    let r: u128 = match m {
        Cvtsi2ss | Cvtsi2sd => {
            let to = Fmt(m == Cvtsi2sd);
            let wide = i.op[1].size == 8;
            let v = if wide {
                s as i64
            } else {
                s as u32 as i32 as i64
            };
            put_lane(d, to.bits(), 0, fx.int_to_fp(to, v, wide))
        }
        Cvtss2si | Cvttss2si | Cvtsd2si | Cvttsd2si => {
            let from = Fmt(matches!(m, Cvtsd2si | Cvttsd2si));
            let wide = i.op[0].size == 8;
            fx.fp_to_int(from, lane(s, from.bits(), 0), wide, trunc) as u128
        }
        Cvtss2sd => put_lane(d, 64, 0, fx.convert(D, lane(s, 32, 0))),
        Cvtsd2ss => put_lane(d, 32, 0, fx.convert(S, lane(s, 64, 0))),
        Cvtps2pd => (0..2).fold(0, |r, k| put_lane(r, 64, k, fx.convert(D, lane(s, 32, k)))),
        Cvtpd2ps => (0..2).fold(0, |r, k| put_lane(r, 32, k, fx.convert(S, lane(s, 64, k)))),
        Cvtdq2ps => (0..4).fold(0, |r, k| {
            put_lane(
                r,
                32,
                k,
                fx.int_to_fp(S, lane(s, 32, k) as u32 as i32 as i64, false),
            )
        }),
        Cvtdq2pd | Cvtpi2pd => (0..2).fold(0, |r, k| {
            put_lane(
                r,
                64,
                k,
                fx.int_to_fp(D, lane(s, 32, k) as u32 as i32 as i64, false),
            )
        }),
        Cvtpi2ps => (0..2).fold(d, |r, k| {
            put_lane(
                r,
                32,
                k,
                fx.int_to_fp(S, lane(s, 32, k) as u32 as i32 as i64, false),
            )
        }),
        Cvtps2dq | Cvttps2dq => (0..4).fold(0, |r, k| {
            put_lane(r, 32, k, fx.fp_to_int(S, lane(s, 32, k), false, trunc))
        }),
        Cvtps2pi | Cvttps2pi => (0..2).fold(0, |r, k| {
            put_lane(r, 32, k, fx.fp_to_int(S, lane(s, 32, k), false, trunc))
        }),
        _ => (0..2).fold(0, |r, k| {
            // CVT(T)PD2DQ, CVT(T)PD2PI: the upper half of an XMM
            // destination is zeroed.
            put_lane(r, 32, k, fx.fp_to_int(D, lane(s, 64, k), false, trunc))
        }),
    };
    // Conversions to integers set no DE; from single to double and back
    // they do (in `convert`).
    fx.finish(cpu)?;
    store(cpu, bus, i, 0, r)?;
    if mmx {
        crate::ops::mmx::mmx_touch(cpu);
    }
    Ok(())
}
