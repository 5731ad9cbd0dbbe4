//! Lazy arithmetic flags: the last flag-setting operation is recorded
//! (kind, size, operands, result) and each flag is computed only when read.

use crate::state::*;

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlagOp {
    /// Arithmetic flags are materialized in `bits`.
    #[default]
    None = 0,
    Add,
    Adc,
    Sub,
    Sbb,
    Logic,
    Inc,
    Dec,
    Neg,
    Shl,
    Shr,
    Sar,
    /// A rotate after another lazy operation, or a multiply: ZF, SF and
    /// PF come from `res` and `size`; CF, OF and AF are in `bits`.
    /// Rotates change only CF and OF, so this avoids materializing the
    /// previous operation's flags on every rotate (`set_rotate`, `set_mul`).
    Rot,
}

impl FlagOp {
    /// The arithmetic bits of the raw word that this operation's flags
    /// still read: none for the operations that define all six flags from
    /// their own record, CF for Inc/Dec (kept) and Adc/Sbb (carry-in), CF,
    /// OF and AF for Rot (ZF, SF and PF still come from the record), all of
    /// them for None.
    pub fn word_bits_read(self) -> u64 {
        match self {
            FlagOp::None => ARITH_FLAGS,
            FlagOp::Rot => FLAG_CF | FLAG_OF | FLAG_AF,
            FlagOp::Inc | FlagOp::Dec | FlagOp::Adc | FlagOp::Sbb => FLAG_CF,
            FlagOp::Add
            | FlagOp::Sub
            | FlagOp::Logic
            | FlagOp::Neg
            | FlagOp::Shl
            | FlagOp::Shr
            | FlagOp::Sar => 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LazyFlags {
    /// All RFLAGS bits. The arithmetic bits are valid only when `op` is None,
    /// except CF which Inc/Dec keep here because they preserve it.
    bits: u64,
    pub op: FlagOp,
    /// Operand size in bytes.
    pub size: u8,
    pub a: u64,
    pub b: u64,
    pub res: u64,
}

#[inline]
pub fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

#[inline]
pub fn sign_bit(size: u8) -> u64 {
    1u64 << (size as u32 * 8 - 1)
}

#[inline]
pub fn parity(v: u64) -> bool {
    (v as u8).count_ones() & 1 == 0
}

impl LazyFlags {
    /// Byte offset of the raw RFLAGS word, for generated code (the other
    /// fields are public and reachable with `offset_of!`).
    pub const BITS_OFFSET: usize = core::mem::offset_of!(LazyFlags, bits);

    #[inline]
    pub fn set_lazy(&mut self, op: FlagOp, size: u8, a: u64, b: u64, res: u64) {
        self.op = op;
        self.size = size;
        self.a = a;
        self.b = b;
        self.res = res & size_mask(size);
    }

    /// Inc/Dec leave CF alone: fold the current CF into `bits` first.
    #[inline]
    pub fn set_incdec(&mut self, op: FlagOp, size: u8, a: u64, res: u64) {
        let cf = self.cf();
        self.bits = (self.bits & !FLAG_CF) | cf as u64;
        self.set_lazy(op, size, a, 1, res);
    }

    /// ADC/SBB: remember the carry-in in `bits`' CF slot.
    #[inline]
    pub fn set_carry_op(&mut self, op: FlagOp, size: u8, a: u64, b: u64, cin: bool, res: u64) {
        self.bits = (self.bits & !FLAG_CF) | cin as u64;
        self.set_lazy(op, size, a, b, res);
    }

    /// A rotate's CF and OF, every other arithmetic flag unchanged.
    #[inline]
    pub fn set_rotate(&mut self, cf: bool, of: bool) {
        let v = if cf { FLAG_CF } else { 0 } | if of { FLAG_OF } else { 0 };
        if self.op == FlagOp::None {
            self.bits = (self.bits & !(FLAG_CF | FLAG_OF)) | v;
            return;
        }
        let af = if self.af() { FLAG_AF } else { 0 };
        self.bits = (self.bits & !(FLAG_CF | FLAG_OF | FLAG_AF)) | v | af;
        self.op = FlagOp::Rot;
    }

    /// MUL/IMUL: CF = OF = `overflow`, AF clear, ZF, SF and PF of `lo`.
    /// Kept as a `Rot` record, so the parity is worked out only if read
    /// (and compiled code stores three words at an exit instead of
    /// computing the flags of every multiply on the way).
    #[inline]
    pub fn set_mul(&mut self, size: u8, lo: u64, overflow: bool) {
        let v = if overflow { FLAG_CF | FLAG_OF } else { 0 };
        self.bits = (self.bits & !(FLAG_CF | FLAG_OF | FLAG_AF)) | v;
        self.set_lazy(FlagOp::Rot, size, 0, 0, lo);
    }

    /// The record with the arithmetic bits of the raw word that no flag
    /// query reads cleared (stale bits of an earlier operation). Two records
    /// with equal canonical forms give the same flags from now on, whatever
    /// follows; the JIT may leave such bits stale where the interpreter
    /// keeps them, so its tests compare this form.
    pub fn canonical(&self) -> LazyFlags {
        let dead = ARITH_FLAGS & !self.op.word_bits_read();
        LazyFlags {
            bits: self.bits & !dead,
            ..*self
        }
    }

    /// Raw non-arithmetic bits (IF, DF, IOPL, VM, ...).
    #[inline]
    pub fn raw_bits(&self) -> u64 {
        self.bits
    }

    /// Replace the whole RFLAGS value (bit 1 always reads as 1).
    pub fn set_raw(&mut self, v: u64) {
        self.bits = (v & !0x28 & !(1 << 15)) | 2;
        self.op = FlagOp::None;
    }

    /// Set or clear a single non-arithmetic flag without touching the lazy state.
    #[inline]
    pub fn set_bit(&mut self, flag: u64, on: bool) {
        debug_assert!(flag & ARITH_FLAGS == 0);
        if on {
            self.bits |= flag;
        } else {
            self.bits &= !flag;
        }
    }

    /// Overwrite some arithmetic flags with explicit values, keeping the rest.
    pub fn set_arith(&mut self, mask: u64, values: u64) {
        // Replacing every arithmetic flag needs none of the current ones.
        let cur = if mask & ARITH_FLAGS == ARITH_FLAGS {
            self.bits
        } else {
            self.get()
        };
        self.set_raw((cur & !mask) | (values & mask));
    }

    pub fn get(&self) -> u64 {
        if self.op == FlagOp::None {
            return self.bits;
        }
        // ZF, SF and PF come from the result for every lazy operation.
        let res = self.res;
        let mut f = self.bits & !ARITH_FLAGS;
        f |= if self.cf() { FLAG_CF } else { 0 };
        f |= if parity(res) { FLAG_PF } else { 0 };
        f |= if self.af() { FLAG_AF } else { 0 };
        f |= if res == 0 { FLAG_ZF } else { 0 };
        f |= if res & sign_bit(self.size) != 0 {
            FLAG_SF
        } else {
            0
        };
        f |= if self.of() { FLAG_OF } else { 0 };
        f
    }

    #[inline]
    pub fn cf(&self) -> bool {
        let m = size_mask(self.size);
        match self.op {
            FlagOp::None | FlagOp::Inc | FlagOp::Dec | FlagOp::Rot => self.bits & FLAG_CF != 0,
            FlagOp::Add => self.res < (self.a & m),
            FlagOp::Adc => {
                if self.adc_cin() {
                    self.res <= (self.a & m)
                } else {
                    self.res < (self.a & m)
                }
            }
            FlagOp::Sub => (self.a & m) < (self.b & m),
            FlagOp::Sbb => {
                let a = self.a & m;
                let b = self.b & m;
                if self.adc_cin() {
                    a <= b
                } else {
                    a < b
                }
            }
            FlagOp::Logic => false,
            FlagOp::Neg => self.res != 0,
            FlagOp::Shl => {
                let bits = self.size as u32 * 8;
                let c = self.b as u32;
                if c > bits {
                    false
                } else {
                    (self.a >> (bits - c)) & 1 != 0
                }
            }
            FlagOp::Shr => {
                let c = self.b as u32;
                if c > 64 {
                    false
                } else {
                    (self.a >> (c - 1)) & 1 != 0
                }
            }
            FlagOp::Sar => {
                let bits = self.size as u32 * 8;
                let c = (self.b as u32).min(bits);
                let sa = sign_extend(self.a, self.size) as i64;
                (sa >> (c - 1)) & 1 != 0
            }
        }
    }

    /// Carry-in of the last ADC/SBB: like Inc/Dec, they park it in `bits`' CF.
    #[inline]
    fn adc_cin(&self) -> bool {
        self.bits & FLAG_CF != 0
    }

    #[inline]
    pub fn zf(&self) -> bool {
        match self.op {
            FlagOp::None => self.bits & FLAG_ZF != 0,
            _ => self.res == 0,
        }
    }

    #[inline]
    pub fn sf(&self) -> bool {
        match self.op {
            FlagOp::None => self.bits & FLAG_SF != 0,
            _ => self.res & sign_bit(self.size) != 0,
        }
    }

    #[inline]
    pub fn pf(&self) -> bool {
        match self.op {
            FlagOp::None => self.bits & FLAG_PF != 0,
            _ => parity(self.res),
        }
    }

    #[inline]
    pub fn af(&self) -> bool {
        match self.op {
            FlagOp::None | FlagOp::Rot => self.bits & FLAG_AF != 0,
            FlagOp::Logic | FlagOp::Shl | FlagOp::Shr | FlagOp::Sar => false,
            _ => (self.a ^ self.b ^ self.res) & 0x10 != 0,
        }
    }

    #[inline]
    pub fn of(&self) -> bool {
        // `size` is 0 while the flags are materialized (op None): no shift overflow.
        let sb = sign_bit(self.size.max(1));
        match self.op {
            FlagOp::None | FlagOp::Rot => self.bits & FLAG_OF != 0,
            FlagOp::Add | FlagOp::Adc => (self.a ^ self.res) & (self.b ^ self.res) & sb != 0,
            FlagOp::Sub | FlagOp::Sbb => (self.a ^ self.b) & (self.a ^ self.res) & sb != 0,
            FlagOp::Logic => false,
            FlagOp::Inc => self.res == sb,
            FlagOp::Dec => self.res == sb - 1,
            FlagOp::Neg => self.res == sb,
            FlagOp::Shl => ((self.res & sb != 0) as u8 ^ self.cf() as u8) != 0,
            FlagOp::Shr => self.a & sb != 0,
            FlagOp::Sar => false,
        }
    }

    /// Evaluate condition code `cc` (0-15, as in Jcc's low nibble).
    #[inline]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r != (cc & 1 != 0)
    }
}

#[inline]
pub fn sign_extend(v: u64, size: u8) -> u64 {
    match size {
        1 => v as u8 as i8 as i64 as u64,
        2 => v as u16 as i16 as i64 as u64,
        4 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    const OPS: [FlagOp; 13] = [
        FlagOp::None,
        FlagOp::Add,
        FlagOp::Adc,
        FlagOp::Sub,
        FlagOp::Sbb,
        FlagOp::Logic,
        FlagOp::Inc,
        FlagOp::Dec,
        FlagOp::Neg,
        FlagOp::Shl,
        FlagOp::Shr,
        FlagOp::Sar,
        FlagOp::Rot,
    ];

    /// Clearing the word's dead bits changes no flag, and the bits it keeps
    /// are exactly the ones some query reads: flipping any kept bit changes
    /// the flags of at least one record.
    #[test]
    fn canonical_keeps_every_flag_and_only_dead_bits_go() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for op in OPS {
            let mut read = 0;
            for _ in 0..2000 {
                let size = [1u8, 2, 4, 8][(next() % 4) as usize];
                let mut f = LazyFlags::default();
                f.set_raw(next());
                if op != FlagOp::None {
                    let (a, b) = (next(), next() % 70);
                    f.set_lazy(op, size, a, b, next());
                }
                let c = f.canonical();
                assert_eq!(c.get(), f.get(), "{op:?}: canonical changed a flag");
                assert_eq!(c.canonical().get(), f.get());
                for bit in [FLAG_CF, FLAG_PF, FLAG_AF, FLAG_ZF, FLAG_SF, FLAG_OF] {
                    let mut g = f;
                    g.bits ^= bit;
                    if g.get() != f.get() {
                        read |= bit;
                    }
                }
            }
            assert_eq!(read, op.word_bits_read(), "{op:?}: bits the flags read");
        }
    }
}
