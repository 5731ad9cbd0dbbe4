//! SSE forms emitted inline, with the semantics of the interpreter's
//! handlers (cpu/src/ops/sse.rs `h_movfull`, `h_movdq`, `h_movs`, `h_int`;
//! cpu/src/ops/ssefp.rs `h_arith`).
//!
//! XMM registers and MXCSR are not cached in variables: an instruction
//! reads them from `CpuState` and writes its result back after all of its
//! guards, so the slow path finds them as they were before it.
//!
//! Every form first guards SSE availability (CR0.EM = 0, CR0.TS = 0,
//! CR4.OSFXSR = 1); otherwise the handler raises #UD or #NM.
//!
//! # Float arithmetic
//!
//! The interpreter computes with SoftFloat under MXCSR and folds the
//! exceptions into MXCSR (faulting when one is unmasked). The inline code
//! uses the host's IEEE binary32/binary64 add, sub, mul, div and sqrt on
//! scalars (no vector types, so the IR compiles for every target), and
//! takes that result only where the two provably agree, bit for bit and
//! in MXCSR:
//!
//! - MXCSR has all six exception masks set, RC = round to nearest even
//!   and PE already set. Nothing can fault, the host (whose Rust float
//!   environment is round to nearest even) rounds the same way, and an
//!   inexact result only sets PE again.
//! - Every input lane is normal, or ±0 for ADD/SUB. So no IE from NaN
//!   operands or inf - inf, no DE, and no ZE (a divisor is never 0); with
//!   no zero MUL/DIV/SQRT input, 0 * x, 0 / x and sqrt(±0) never reach
//!   the fast path either. DAZ only rewrites denormal inputs, so it cannot
//!   matter here.
//! - Every result lane has a biased exponent from 2 to max - 1, or is ±0
//!   for ADD/SUB. A finite result rules out OE (overflow rounds to
//!   infinity under RN) and IE (sqrt of a negative number is a NaN).
//!   SoftFloat reports underflow on a tiny inexact result, with tininess
//!   after rounding, and a tiny result rounds to at most the smallest
//!   normal: excluding exponents 0 and 1 rules out UE, and with it FTZ,
//!   which only acts on tiny results. A zero sum of normals or zeros is
//!   exact (all such sums are multiples of the smallest denormal, so a
//!   nonzero one is never rounded to zero), raises nothing, and IEEE fixes
//!   its sign under RN, on the host as in SoftFloat.
//!
//! Anything else (including every NaN and infinity, so the host's NaN
//! rules never matter) takes the slow path, which sets the flags and
//! produces the special results exactly.

use super::{mem, Tx};
use crate::runtime::off;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use iced_x86::Mnemonic;
use leap_cpu::fpu::{MX_MASK_SHIFT, MX_PE};
use leap_cpu::insn::{Insn, OpKind};
use leap_cpu::state::{CR0_EM, CR0_TS, CR4_OSFXSR};

/// Bitwise and packed-integer operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOp {
    And,
    /// `!dst & src` (PANDN, ANDNPS, ANDNPD).
    Andn,
    Or,
    Xor,
    /// PADDD / PSUBD: four 32-bit lanes.
    AddD,
    SubD,
    /// PADDQ / PSUBQ: two 64-bit lanes.
    AddQ,
    SubQ,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpOp {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
}

/// The SSE forms emitted inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseOp {
    /// MOVAPS/MOVAPD/MOVDQA (true: the memory operand must be 16-aligned)
    /// and MOVUPS/MOVUPD/MOVDQU.
    Mov(bool),
    /// MOVD (4) / MOVQ (8) between an XMM register and a GPR, memory or
    /// (MOVQ) another XMM register.
    MovDq(u8),
    /// MOVSS (4) / MOVSD (8).
    MovS(u8),
    /// Register destination, 16-byte (aligned) register or memory source.
    Int(IntOp),
    /// Float arithmetic on 64-bit (`dbl`) or 32-bit lanes, the low lane
    /// only when `scalar`.
    Fp { op: FpOp, dbl: bool, scalar: bool },
}

/// Which inline SSE form, if any, `insn` is. Only forms naming XMM
/// registers (never MMX ones) qualify.
pub(super) fn form(insn: &Insn) -> Option<SseOp> {
    use Mnemonic::*;
    if insn.inst.op_count() != 2 {
        return None;
    }
    let xmm =
        |k: usize| insn.op[k].kind == OpKind::Other && insn.inst.op_register(k as u32).is_xmm();
    let mem = |k: usize, size: u8| {
        insn.op[k].kind == OpKind::Mem
            && insn.op[k].size == size
            && insn.mem.seg < 6
            && matches!(insn.asize, 2 | 4 | 8)
    };
    let gpr = |k: usize, size: u8| super::gpr_operand(&insn.op[k]) && insn.op[k].size == size;
    // xmm, xmm/m(size)
    let rm_src = |size: u8| xmm(0) && (xmm(1) || mem(1, size));
    let m = insn.inst.mnemonic();
    let int = |op| rm_src(16).then_some(SseOp::Int(op));
    let fp = |op, dbl: bool, scalar: bool| {
        let size = match (scalar, dbl) {
            (false, _) => 16,
            (true, true) => 8,
            (true, false) => 4,
        };
        rm_src(size).then_some(SseOp::Fp { op, dbl, scalar })
    };
    match m {
        Movaps | Movapd | Movdqa | Movups | Movupd | Movdqu => ((xmm(0) && (xmm(1) || mem(1, 16)))
            || (mem(0, 16) && xmm(1)))
        .then_some(SseOp::Mov(matches!(m, Movaps | Movapd | Movdqa))),
        Movd | Movq => {
            let size = if m == Movd { 4 } else { 8 };
            let to_xmm = xmm(0) && (gpr(1, size) || mem(1, size) || (size == 8 && xmm(1)));
            let from_xmm = xmm(1) && (gpr(0, size) || mem(0, size));
            (to_xmm || from_xmm).then_some(SseOp::MovDq(size))
        }
        // The string MOVSD has no XMM operand and fails these.
        Movss | Movsd => {
            let size = if m == Movss { 4 } else { 8 };
            (rm_src(size) || (mem(0, size) && xmm(1))).then_some(SseOp::MovS(size))
        }
        Pand | Andps | Andpd => int(IntOp::And),
        Pandn | Andnps | Andnpd => int(IntOp::Andn),
        Por | Orps | Orpd => int(IntOp::Or),
        Pxor | Xorps | Xorpd => int(IntOp::Xor),
        Paddd => int(IntOp::AddD),
        Psubd => int(IntOp::SubD),
        Paddq => int(IntOp::AddQ),
        Psubq => int(IntOp::SubQ),
        Addss => fp(FpOp::Add, false, true),
        Subss => fp(FpOp::Sub, false, true),
        Mulss => fp(FpOp::Mul, false, true),
        Divss => fp(FpOp::Div, false, true),
        Sqrtss => fp(FpOp::Sqrt, false, true),
        Addsd => fp(FpOp::Add, true, true),
        Subsd => fp(FpOp::Sub, true, true),
        Mulsd => fp(FpOp::Mul, true, true),
        Divsd => fp(FpOp::Div, true, true),
        Sqrtsd => fp(FpOp::Sqrt, true, true),
        Addps => fp(FpOp::Add, false, false),
        Subps => fp(FpOp::Sub, false, false),
        Mulps => fp(FpOp::Mul, false, false),
        Divps => fp(FpOp::Div, false, false),
        Sqrtps => fp(FpOp::Sqrt, false, false),
        Addpd => fp(FpOp::Add, true, false),
        Subpd => fp(FpOp::Sub, true, false),
        Mulpd => fp(FpOp::Mul, true, false),
        Divpd => fp(FpOp::Div, true, false),
        Sqrtpd => fp(FpOp::Sqrt, true, false),
        _ => None,
    }
}

/// The MXCSR bits the float fast path depends on: PE, the six masks and
/// RC. The other flags are sticky and the fast path raises none of them;
/// DAZ and FTZ cannot act on its inputs and results (see above).
const MX_FAST_MASK: i64 = (MX_PE | 0x3f << MX_MASK_SHIFT | 3 << 13) as i64;
/// Their required values: PE set, all masked, round to nearest.
const MX_FAST: i64 = (MX_PE | 0x3f << MX_MASK_SHIFT) as i64;

/// Bit layout of one float format, for the fast-path range checks on the
/// raw lane bits.
struct Layout {
    /// All bits but the sign.
    mag: i64,
    /// Smallest normal (exponent field 1).
    min_normal: i64,
    /// Infinity (exponent field all ones).
    inf: i64,
}

const fn layout(dbl: bool) -> Layout {
    if dbl {
        Layout {
            mag: i64::MAX,
            min_normal: 1 << 52,
            inf: 0x7ff << 52,
        }
    } else {
        Layout {
            mag: 0x7fff_ffff,
            min_normal: 1 << 23,
            inf: 0xff << 23,
        }
    }
}

impl Tx<'_> {
    /// #UD / #NM conditions of `sse_enter`: the handler raises them.
    fn sse_available(&mut self) {
        let b = &mut self.b;
        let cr0 = b.ins().load(I64, mem(), self.state, off::CR0);
        let cr4 = b.ins().load(I64, mem(), self.state, off::CR4);
        let t = b.ins().band_imm_s(cr0, (CR0_EM | CR0_TS) as i64);
        let bad0 = b.ins().icmp_imm_s(IntCC::NotEqual, t, 0);
        let t = b.ins().band_imm_s(cr4, CR4_OSFXSR as i64);
        let bad4 = b.ins().icmp_imm_s(IntCC::Equal, t, 0);
        let fail = b.ins().bor(bad0, bad4);
        self.guard(fail);
    }

    fn xmm_get(&mut self, r: u8) -> [Value; 2] {
        let at = off::XMM + 16 * (r & 15) as i32;
        let lo = self.b.ins().load(I64, mem(), self.state, at);
        let hi = self.b.ins().load(I64, mem(), self.state, at + 8);
        [lo, hi]
    }

    fn xmm_set_lo(&mut self, r: u8, lo: Value) {
        let at = off::XMM + 16 * (r & 15) as i32;
        self.b.ins().store(mem(), lo, self.state, at);
    }

    fn xmm_set(&mut self, r: u8, v: [Value; 2]) {
        let at = off::XMM + 16 * (r & 15) as i32;
        self.xmm_set_lo(r, v[0]);
        self.b.ins().store(mem(), v[1], self.state, at + 8);
    }

    /// Operand 1 as 128 bits: an XMM register, or memory of the operand's
    /// size (16 bytes: `aligned` says whether misalignment faults; smaller
    /// ones zero-extended).
    fn xmm_src(&mut self, insn: &Insn, aligned: bool) -> [Value; 2] {
        let s = insn.op[1];
        if s.kind == OpKind::Other {
            self.xmm_get(s.reg)
        } else if s.size == 16 {
            self.load16(insn, aligned)
        } else {
            let lo = self.load_operand(insn, s.size);
            [lo, self.imm(0)]
        }
    }

    pub(super) fn emit_sse(&mut self, insn: &Insn, op: SseOp) {
        self.sse_available();
        let d = insn.op[0];
        let s = insn.op[1];
        match op {
            SseOp::Mov(aligned) => {
                if d.kind == OpKind::Mem {
                    let v = self.xmm_get(s.reg);
                    self.store16(insn, aligned, v);
                } else {
                    let v = self.xmm_src(insn, aligned);
                    self.xmm_set(d.reg, v);
                }
            }
            SseOp::MovDq(size) => {
                let v = match s.kind {
                    OpKind::Other => {
                        let lo = self.xmm_get(s.reg)[0];
                        self.mask_to(lo, size)
                    }
                    OpKind::Reg => self.get(&s),
                    _ => self.load_operand(insn, size),
                };
                match d.kind {
                    OpKind::Other => {
                        let z = self.imm(0);
                        self.xmm_set(d.reg, [v, z]);
                    }
                    OpKind::Reg => self.put(&d, v),
                    _ => self.store_operand(insn, size, v),
                }
            }
            SseOp::MovS(size) => match (d.kind, s.kind) {
                (OpKind::Other, OpKind::Other) => {
                    let v = self.xmm_get(s.reg)[0];
                    let lo = if size == 8 {
                        v
                    } else {
                        let old = self.xmm_get(d.reg)[0];
                        self.merge_low32(old, v)
                    };
                    self.xmm_set_lo(d.reg, lo);
                }
                (OpKind::Other, _) => {
                    let v = self.load_operand(insn, size);
                    let z = self.imm(0);
                    self.xmm_set(d.reg, [v, z]);
                }
                _ => {
                    let v = self.xmm_get(s.reg)[0];
                    self.store_operand(insn, size, v);
                }
            },
            SseOp::Int(op) => {
                let b = self.xmm_src(insn, true);
                let a = self.xmm_get(d.reg);
                let r = [self.int_op(op, a[0], b[0]), self.int_op(op, a[1], b[1])];
                self.xmm_set(d.reg, r);
            }
            SseOp::Fp { op, dbl, scalar } => self.fp(insn, op, dbl, scalar),
        }
    }

    /// The high 32 bits of `old`, the low 32 of `new`.
    fn merge_low32(&mut self, old: Value, new: Value) -> Value {
        let hi = self.b.ins().band_imm_s(old, !0xffff_ffffi64);
        let lo = self.b.ins().band_imm_s(new, 0xffff_ffff);
        self.b.ins().bor(hi, lo)
    }

    fn int_op(&mut self, op: IntOp, a: Value, b: Value) -> Value {
        let ins = self.b.ins();
        match op {
            IntOp::And => ins.band(a, b),
            IntOp::Andn => ins.band_not(b, a),
            IntOp::Or => ins.bor(a, b),
            IntOp::Xor => ins.bxor(a, b),
            IntOp::AddQ => ins.iadd(a, b),
            IntOp::SubQ => ins.isub(a, b),
            IntOp::AddD | IntOp::SubD => {
                // Upper lanes with the lower halves cleared carry nothing
                // into each other; the lower lane is the low half of the
                // full-width result.
                const HI: i64 = !0xffff_ffff;
                let (ah, bh) = (
                    self.b.ins().band_imm_s(a, HI),
                    self.b.ins().band_imm_s(b, HI),
                );
                let (h, l) = if op == IntOp::AddD {
                    (self.b.ins().iadd(ah, bh), self.b.ins().iadd(a, b))
                } else {
                    (self.b.ins().isub(ah, bh), self.b.ins().isub(a, b))
                };
                self.merge_low32(h, l)
            }
        }
    }

    /// True (I8) when `v` (raw bits) is in `[lo, layout.inf)` in
    /// magnitude, or is ±0 when `zero_ok`.
    fn fp_range(&mut self, v: Value, l: &Layout, lo: i64, zero_ok: bool) -> Value {
        let b = &mut self.b;
        let mag = b.ins().band_imm_s(v, l.mag);
        let t = b.ins().iadd_imm_s(mag, -lo);
        let ok = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, t, l.inf - lo);
        if zero_ok {
            let z = b.ins().icmp_imm_s(IntCC::Equal, mag, 0);
            b.ins().bor(ok, z)
        } else {
            ok
        }
    }

    /// One lane on the host: (result bits, fast path valid). `x`, `y`
    /// are the raw lane bits in the low bits of I64 values.
    fn fp_lane(&mut self, op: FpOp, dbl: bool, x: Value, y: Value) -> (Value, Value) {
        let l = layout(dbl);
        let (ft, it) = if dbl { (F64, I64) } else { (F32, I32) };
        let to_f = |b: &mut cranelift_frontend::FunctionBuilder, v: Value| {
            let v = if dbl { v } else { b.ins().ireduce(I32, v) };
            b.ins().bitcast(ft, MemFlagsData::new(), v)
        };
        let xf = to_f(&mut self.b, x);
        let yf = to_f(&mut self.b, y);
        let b = &mut self.b;
        let r = match op {
            FpOp::Add => b.ins().fadd(xf, yf),
            FpOp::Sub => b.ins().fsub(xf, yf),
            FpOp::Mul => b.ins().fmul(xf, yf),
            FpOp::Div => b.ins().fdiv(xf, yf),
            FpOp::Sqrt => b.ins().sqrt(yf),
        };
        let r = b.ins().bitcast(it, MemFlagsData::new(), r);
        let r = if dbl { r } else { b.ins().uextend(I64, r) };
        let zero_ok = matches!(op, FpOp::Add | FpOp::Sub);
        let mut ok = self.fp_range(y, &l, l.min_normal, zero_ok);
        if op != FpOp::Sqrt {
            let okx = self.fp_range(x, &l, l.min_normal, zero_ok);
            ok = self.b.ins().band(ok, okx);
        }
        let okr = self.fp_range(r, &l, 2 * l.min_normal, zero_ok);
        let ok = self.b.ins().band(ok, okr);
        (r, ok)
    }

    /// `h_arith` for ADD/SUB/MUL/DIV/SQRT on the fast path described in
    /// the module comment; the slow path otherwise.
    fn fp(&mut self, insn: &Insn, op: FpOp, dbl: bool, scalar: bool) {
        let d = insn.op[0];
        let mx = self.b.ins().uload32(mem(), self.state, off::MXCSR);
        let t = self.b.ins().band_imm_s(mx, MX_FAST_MASK);
        let slow = self.b.ins().icmp_imm_s(IntCC::NotEqual, t, MX_FAST);
        self.guard(slow);
        let b = self.xmm_src(insn, true);
        let a = self.xmm_get(d.reg);
        let words = if scalar { 1 } else { 2 };
        let mut all_ok = None;
        let mut r = a;
        for w in 0..words {
            let v = if dbl {
                let (v, ok) = self.fp_lane(op, true, a[w], b[w]);
                all_ok = Some(self.and_opt(all_ok, ok));
                v
            } else {
                let lanes = if scalar { 1 } else { 2 };
                let mut parts = Vec::new();
                for k in 0..lanes {
                    let (x, y) = if k == 0 {
                        let x = self.b.ins().band_imm_s(a[w], 0xffff_ffff);
                        let y = self.b.ins().band_imm_s(b[w], 0xffff_ffff);
                        (x, y)
                    } else {
                        (
                            self.b.ins().ushr_imm_s(a[w], 32),
                            self.b.ins().ushr_imm_s(b[w], 32),
                        )
                    };
                    let (v, ok) = self.fp_lane(op, false, x, y);
                    all_ok = Some(self.and_opt(all_ok, ok));
                    parts.push(v);
                }
                if scalar {
                    self.merge_low32(a[w], parts[0])
                } else {
                    let hi = self.b.ins().ishl_imm_s(parts[1], 32);
                    self.b.ins().bor(hi, parts[0])
                }
            };
            r[w] = v;
        }
        let ok = all_ok.expect("at least one lane");
        let fail = self.b.ins().icmp_imm_s(IntCC::Equal, ok, 0);
        self.guard(fail);
        if scalar {
            self.xmm_set_lo(d.reg, r[0]);
        } else {
            self.xmm_set(d.reg, r);
        }
    }

    fn and_opt(&mut self, acc: Option<Value>, v: Value) -> Value {
        match acc {
            Some(a) => self.b.ins().band(a, v),
            None => v,
        }
    }
}
