//! The lazy-flags record in generated code: kept in variables while the
//! block runs, written to `CpuState::flags` only at helper calls and exits,
//! and read by conditions directly from the operands that produced it.

use super::{mem, Bits, FlagTrack, Tx};
use crate::runtime::off;
use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::types::{I64, I8};
use cranelift_codegen::ir::{InstBuilder, Value};
use leap_cpu::flags::{sign_bit, FlagOp};
use leap_cpu::state::{FLAG_AF, FLAG_CF, FLAG_OF, FLAG_PF, FLAG_SF, FLAG_ZF};

impl Tx<'_> {
    /// Record a lazy flag operation (`LazyFlags::set_lazy`; `res` already
    /// masked to `size`).
    pub(super) fn set_rec(&mut self, op: FlagOp, size: u8, a: Value, b: Value, res: Value) {
        self.b.def_var(self.v.fa, a);
        self.b.def_var(self.v.fb, b);
        self.b.def_var(self.v.fres, res);
        self.t.fl.op = Some(op);
        self.t.fl.rec = Some(size);
        if op.word_bits_read() == 0 && self.t.fl.bits == Bits::Cf {
            // The word's arithmetic bits are dead now (they differ from the
            // interpreter's only there: `LazyFlags::canonical`). Dropping
            // them leaves a parked CF unused, so it is neither computed
            // nor stored.
            self.t.fl.bits = Bits::Mem;
        }
    }

    /// Put `cf` (0/1 `I8`) in the raw word's CF slot, as INC/DEC do.
    pub(super) fn park_cf(&mut self, cf: Value) {
        let cf = self.b.ins().uextend(I64, cf);
        if self.t.fl.bits == Bits::Full {
            let w = self.b.use_var(self.v.fbits);
            let w = self.b.ins().band_imm_s(w, !1);
            let w = self.b.ins().bor(w, cf);
            self.b.def_var(self.v.fbits, w);
        } else {
            self.b.def_var(self.v.fcf, cf);
            self.t.fl.bits = Bits::Cf;
        }
    }

    /// `LazyFlags::set_rotate`: CF and OF from `v` (those two flag bits,
    /// `I64`), every other flag as it was.
    pub(super) fn set_rotate_flags(&mut self, v: Value) {
        let keep_af = match self.t.fl.op {
            None => {
                // The record is in memory, of an operation unknown here.
                self.flush_flags();
                let f = self.b.ins().iadd_imm_s(self.state, off::FLAGS as i64);
                let args = [f, v];
                let slot = off::H_ROTATE;
                let sig = self.sig_ptr_i64;
                self.call(slot, sig, &args);
                return;
            }
            Some(FlagOp::None | FlagOp::Rot) => None,
            // A lazy record keeps ZF, SF and PF; AF moves to the word.
            Some(op) => Some(self.op_af(op)),
        };
        let w = self.bits_value();
        let mut clear = FLAG_CF | FLAG_OF;
        let mut v = v;
        if let Some(af) = keep_af {
            clear |= FLAG_AF;
            let af = self.b.ins().uextend(I64, af);
            let af = self.b.ins().ishl_imm_s(af, FLAG_AF.trailing_zeros() as i64);
            v = self.b.ins().bor(v, af);
            self.t.fl.op = Some(FlagOp::Rot);
        }
        let w = self.b.ins().band_imm_s(w, !clear as i64);
        let w = self.b.ins().bor(w, v);
        self.b.def_var(self.v.fbits, w);
        self.t.fl.bits = Bits::Full;
        // Stored at once: a word and record kept in variables across the
        // long rotate-heavy blocks of hash and cipher code made Cranelift
        // spill heavily (a 256-instruction block grew from 31 to 193 KiB).
        self.flush_flags();
    }

    /// AF of a lazy record (`LazyFlags::af`), as a 0/1 `I8`.
    fn op_af(&mut self, op: FlagOp) -> Value {
        match op {
            FlagOp::None | FlagOp::Rot => {
                let w = self.bits_value();
                self.bit_set(w, FLAG_AF)
            }
            FlagOp::Logic | FlagOp::Shl | FlagOp::Shr | FlagOp::Sar => self.b.ins().iconst(I8, 0),
            _ => {
                let (_, a, b, res) = self.rec();
                let x = self.b.ins().bxor(a, b);
                let x = self.b.ins().bxor(x, res);
                self.bit_set(x, FLAG_AF)
            }
        }
    }

    /// The raw flag word as it would be in memory now.
    pub(super) fn bits_value(&mut self) -> Value {
        match self.t.fl.bits {
            Bits::Full => self.b.use_var(self.v.fbits),
            Bits::Mem => self.b.ins().load(I64, mem(), self.state, off::F_BITS),
            Bits::Cf => {
                let w = self.b.ins().load(I64, mem(), self.state, off::F_BITS);
                let w = self.b.ins().band_imm_s(w, !1);
                let cf = self.b.use_var(self.v.fcf);
                self.b.ins().bor(w, cf)
            }
        }
    }

    pub(super) fn writeback_flags(&mut self) {
        let fl = self.t.fl;
        match fl.bits {
            Bits::Mem => {}
            _ => {
                let w = self.bits_value();
                self.b.ins().store(mem(), w, self.state, off::F_BITS);
            }
        }
        if let Some(op) = fl.op {
            let op = self.b.ins().iconst(I8, op as u8 as i64);
            self.b.ins().store(mem(), op, self.state, off::F_OP);
        }
        if let Some(size) = fl.rec {
            let size = self.b.ins().iconst(I8, size as i64);
            self.b.ins().store(mem(), size, self.state, off::F_SIZE);
            for (var, o) in [
                (self.v.fa, off::F_A),
                (self.v.fb, off::F_B),
                (self.v.fres, off::F_RES),
            ] {
                let v = self.b.use_var(var);
                self.b.ins().store(mem(), v, self.state, o);
            }
        }
    }

    /// Write the flags out on the main path and track them as in memory.
    pub(super) fn flush_flags(&mut self) {
        self.writeback_flags();
        self.t.fl = FlagTrack::memory();
    }

    fn bit_set(&mut self, w: Value, flag: u64) -> Value {
        let v = self.b.ins().band_imm_s(w, flag as i64);
        self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
    }

    fn rec(&mut self) -> (u8, Value, Value, Value) {
        let size = self.t.fl.rec.expect("a lazy op has a pending record");
        let a = self.b.use_var(self.v.fa);
        let b = self.b.use_var(self.v.fb);
        let res = self.b.use_var(self.v.fres);
        (size, a, b, res)
    }

    /// CF as a 0/1 `I8`.
    pub(super) fn cf(&mut self) -> Value {
        match self.t.fl.op {
            None => {
                debug_assert!(self.t.fl.rec.is_none() && self.t.fl.bits == Bits::Mem);
                let f = self.b.ins().iadd_imm_s(self.state, off::FLAGS as i64);
                let r = self.call(off::H_CF, self.sig_ptr, &[f]);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0)
            }
            Some(op) => self.op_cf(op),
        }
    }

    fn op_cf(&mut self, op: FlagOp) -> Value {
        if matches!(op, FlagOp::None | FlagOp::Rot | FlagOp::Inc | FlagOp::Dec) {
            let w = self.bits_value();
            return self.bit_set(w, FLAG_CF);
        }
        let (size, a, b, res) = self.rec();
        let bits = size as i64 * 8;
        let bd = &mut self.b;
        match op {
            FlagOp::Add => bd.ins().icmp(IntCC::UnsignedLessThan, res, a),
            FlagOp::Sub => bd.ins().icmp(IntCC::UnsignedLessThan, a, b),
            FlagOp::Adc | FlagOp::Sbb => {
                // With a carry-in the result may equal the operand it is
                // compared with and still have carried (`LazyFlags::cf`).
                let (lt, le) = if op == FlagOp::Adc {
                    (
                        bd.ins().icmp(IntCC::UnsignedLessThan, res, a),
                        bd.ins().icmp(IntCC::UnsignedLessThanOrEqual, res, a),
                    )
                } else {
                    (
                        bd.ins().icmp(IntCC::UnsignedLessThan, a, b),
                        bd.ins().icmp(IntCC::UnsignedLessThanOrEqual, a, b),
                    )
                };
                let w = self.bits_value();
                let cin = self.bit_set(w, FLAG_CF);
                self.b.ins().select(cin, le, lt)
            }
            FlagOp::Neg => bd.ins().icmp_imm_s(IntCC::NotEqual, res, 0),
            FlagOp::Shl => {
                // Counts past the width shift everything out.
                let w = bd.ins().iconst(I64, bits);
                let sh = bd.ins().isub(w, b);
                let v = bd.ins().ushr(a, sh);
                let v = bd.ins().band_imm_s(v, 1);
                let c = bd.ins().icmp_imm_s(IntCC::NotEqual, v, 0);
                let inside = bd.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, b, bits);
                bd.ins().band(c, inside)
            }
            FlagOp::Shr => {
                let sh = bd.ins().iadd_imm_s(b, -1);
                let v = bd.ins().ushr(a, sh);
                let v = bd.ins().band_imm_s(v, 1);
                bd.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            FlagOp::Sar => {
                let sa = sext(bd, a, size);
                let lim = bd.ins().iconst(I64, bits);
                let c = bd.ins().umin(b, lim);
                let sh = bd.ins().iadd_imm_s(c, -1);
                let v = bd.ins().sshr(sa, sh);
                let v = bd.ins().band_imm_s(v, 1);
                bd.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            _ => bd.ins().iconst(I8, 0),
        }
    }

    fn op_zf(&mut self, op: FlagOp) -> Value {
        if op == FlagOp::None {
            let w = self.bits_value();
            return self.bit_set(w, FLAG_ZF);
        }
        let (_, _, _, res) = self.rec();
        self.b.ins().icmp_imm_s(IntCC::Equal, res, 0)
    }

    fn op_sf(&mut self, op: FlagOp) -> Value {
        if op == FlagOp::None {
            let w = self.bits_value();
            return self.bit_set(w, FLAG_SF);
        }
        let (size, _, _, res) = self.rec();
        self.bit_set(res, sign_bit(size))
    }

    fn op_pf(&mut self, op: FlagOp) -> Value {
        if op == FlagOp::None {
            let w = self.bits_value();
            return self.bit_set(w, FLAG_PF);
        }
        let (_, _, _, res) = self.rec();
        self.parity(res)
    }

    /// PF of the low byte of `v` (set when the count of ones is even).
    pub(super) fn parity(&mut self, v: Value) -> Value {
        let b = &mut self.b;
        let v = b.ins().band_imm_s(v, 0xff);
        let s = b.ins().ushr_imm_s(v, 4);
        let v = b.ins().bxor(v, s);
        let s = b.ins().ushr_imm_s(v, 2);
        let v = b.ins().bxor(v, s);
        let s = b.ins().ushr_imm_s(v, 1);
        let v = b.ins().bxor(v, s);
        let v = b.ins().band_imm_s(v, 1);
        b.ins().icmp_imm_s(IntCC::Equal, v, 0)
    }

    fn op_of(&mut self, op: FlagOp) -> Value {
        if matches!(op, FlagOp::None | FlagOp::Rot) {
            let w = self.bits_value();
            return self.bit_set(w, FLAG_OF);
        }
        if op == FlagOp::Shl {
            let s = self.op_sf(op);
            let c = self.op_cf(op);
            return self.b.ins().bxor(s, c);
        }
        let (size, a, b, res) = self.rec();
        let sb = sign_bit(size);
        match op {
            FlagOp::Add | FlagOp::Adc => {
                let x = self.b.ins().bxor(a, res);
                let y = self.b.ins().bxor(b, res);
                let v = self.b.ins().band(x, y);
                self.bit_set(v, sb)
            }
            FlagOp::Sub | FlagOp::Sbb => {
                let x = self.b.ins().bxor(a, b);
                let y = self.b.ins().bxor(a, res);
                let v = self.b.ins().band(x, y);
                self.bit_set(v, sb)
            }
            FlagOp::Inc | FlagOp::Neg => self.b.ins().icmp_imm_s(IntCC::Equal, res, sb as i64),
            FlagOp::Dec => self.b.ins().icmp_imm_s(IntCC::Equal, res, (sb - 1) as i64),
            FlagOp::Shr => self.bit_set(a, sb),
            _ => self.b.ins().iconst(I8, 0),
        }
    }

    /// `a` and `b` of a SUB shifted so their operand-size sign bit is bit 63.
    fn signed_pair(&mut self, size: u8, a: Value, b: Value) -> (Value, Value) {
        let sh = 64 - size as i64 * 8;
        if sh == 0 {
            return (a, b);
        }
        (
            self.b.ins().ishl_imm_s(a, sh),
            self.b.ins().ishl_imm_s(b, sh),
        )
    }

    /// Condition code `cc` (`LazyFlags::cond`) as a 0/1 `I8`.
    pub(super) fn cond(&mut self, cc: u8) -> Value {
        let Some(op) = self.t.fl.op else {
            let f = self.b.ins().iadd_imm_s(self.state, off::FLAGS as i64);
            let c = self.imm(cc as u64);
            let r = self.call(off::H_COND, self.sig_ptr_i64, &[f, c]);
            return self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        };
        let neg = cc & 1 != 0;
        if op == FlagOp::Sub {
            // CMP/SUB: the condition is a plain comparison of the operands.
            let direct = match cc >> 1 {
                1 => Some((IntCC::UnsignedLessThan, false)),
                2 => Some((IntCC::Equal, false)),
                3 => Some((IntCC::UnsignedLessThanOrEqual, false)),
                6 => Some((IntCC::SignedLessThan, true)),
                7 => Some((IntCC::SignedLessThanOrEqual, true)),
                _ => None,
            };
            if let Some((icc, signed)) = direct {
                let (size, a, b, _) = self.rec();
                let (a, b) = if signed {
                    self.signed_pair(size, a, b)
                } else {
                    (a, b)
                };
                let icc = if neg { icc.complement() } else { icc };
                return self.b.ins().icmp(icc, a, b);
            }
        }
        if op == FlagOp::Logic {
            // TEST/AND/OR/XOR: CF = OF = 0, so every condition is a test of
            // the result against zero.
            let (size, _, _, res) = self.rec();
            let sh = 64 - size as i64 * 8;
            let sres = if sh == 0 {
                res
            } else {
                self.b.ins().ishl_imm_s(res, sh)
            };
            let r = match cc >> 1 {
                0 | 1 => Some(self.b.ins().iconst(I8, 0)),
                2 | 3 => Some(self.b.ins().icmp_imm_s(IntCC::Equal, res, 0)),
                4 | 6 => Some(self.b.ins().icmp_imm_s(IntCC::SignedLessThan, sres, 0)),
                7 => Some(
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedLessThanOrEqual, sres, 0),
                ),
                _ => None,
            };
            if let Some(r) = r {
                return if neg {
                    self.b.ins().bxor_imm_s(r, 1)
                } else {
                    r
                };
            }
        }
        let r = match cc >> 1 {
            0 => self.op_of(op),
            1 => self.op_cf(op),
            2 => self.op_zf(op),
            3 => {
                let c = self.op_cf(op);
                let z = self.op_zf(op);
                self.b.ins().bor(c, z)
            }
            4 => self.op_sf(op),
            5 => self.op_pf(op),
            6 => {
                let s = self.op_sf(op);
                let o = self.op_of(op);
                self.b.ins().bxor(s, o)
            }
            _ => {
                let s = self.op_sf(op);
                let o = self.op_of(op);
                let l = self.b.ins().bxor(s, o);
                let z = self.op_zf(op);
                self.b.ins().bor(z, l)
            }
        };
        if neg {
            self.b.ins().bxor_imm_s(r, 1)
        } else {
            r
        }
    }
}

/// `flags::sign_extend` of an operand-size value to 64 bits.
pub(super) fn sext(b: &mut cranelift_frontend::FunctionBuilder<'_>, v: Value, size: u8) -> Value {
    if size >= 8 {
        return v;
    }
    let sh = 64 - size as i64 * 8;
    let v = b.ins().ishl_imm_s(v, sh);
    b.ins().sshr_imm_s(v, sh)
}
