//! x87 FPU state and the 80-bit arithmetic underneath it.
//!
//! IEEE arithmetic comes from Berkeley SoftFloat 3e (crate `softfloat-sys`,
//! 8086-SSE specialisation): its `extF80` type is the x87 double-extended
//! format, it honours x87 precision control (`extF80_roundingPrecision`) and
//! propagates NaNs the x87 way. SoftFloat keeps rounding mode, precision and
//! exception flags in thread-local globals; `Sf` sets them before each
//! operation and collects the flags afterwards. Transcendentals are computed
//! in SoftFloat's 128-bit format (113-bit significand) in `trans.rs`.

pub mod trans;

use softfloat_sys as sf;

/// One 80-bit register: 64-bit significand (explicit J bit) and sign/exponent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F80 {
    pub mant: u64,
    pub se: u16,
}

pub const J: u64 = 1 << 63;

#[allow(clippy::should_implement_trait)]
impl F80 {
    pub const ZERO: F80 = F80 { mant: 0, se: 0 };
    pub const ONE: F80 = F80 {
        mant: J,
        se: 0x3fff,
    };
    /// The QNaN floating-point indefinite.
    pub const INDEFINITE: F80 = F80 {
        mant: 0xc000_0000_0000_0000,
        se: 0xffff,
    };
    pub const fn new(se: u16, mant: u64) -> F80 {
        F80 { mant, se }
    }
    pub fn inf(neg: bool) -> F80 {
        F80::new(0x7fff | (neg as u16) << 15, J)
    }
    pub fn zero(neg: bool) -> F80 {
        F80::new((neg as u16) << 15, 0)
    }
    #[inline]
    pub fn exp(self) -> u16 {
        self.se & 0x7fff
    }
    #[inline]
    pub fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }
    pub fn neg(self) -> F80 {
        F80::new(self.se ^ 0x8000, self.mant)
    }
    pub fn abs(self) -> F80 {
        F80::new(self.se & 0x7fff, self.mant)
    }
    pub fn is_nan(self) -> bool {
        self.exp() == 0x7fff && self.mant << 1 != 0
    }
    pub fn is_snan(self) -> bool {
        self.is_nan() && self.mant & (1 << 62) == 0
    }
    pub fn is_inf(self) -> bool {
        self.exp() == 0x7fff && self.mant << 1 == 0
    }
    pub fn is_zero(self) -> bool {
        self.exp() == 0 && self.mant == 0
    }
    /// Denormal or pseudo-denormal (exponent 0, significand non-zero).
    pub fn is_denormal(self) -> bool {
        self.exp() == 0 && self.mant != 0
    }
    /// Encodings the 387 and later reject as invalid operands: unnormals,
    /// pseudo-NaNs and pseudo-infinities (J bit clear with a non-zero exponent).
    pub fn is_unsupported(self) -> bool {
        self.exp() != 0 && self.mant & J == 0
    }
    pub fn quiet(self) -> F80 {
        F80::new(self.se, self.mant | 1 << 62)
    }
    #[inline]
    pub fn sf(self) -> sf::extFloat80_t {
        sf::extFloat80_t {
            signif: self.mant,
            signExp: self.se,
        }
    }
    #[inline]
    pub fn from_sf(v: sf::extFloat80_t) -> F80 {
        F80::new(v.signExp, v.signif)
    }
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.mant.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    pub fn from_bytes(b: &[u8]) -> F80 {
        F80::new(
            u16::from_le_bytes([b[8], b[9]]),
            u64::from_le_bytes(b[..8].try_into().unwrap()),
        )
    }
    /// Tag of a non-empty register: 0 valid, 1 zero, 2 special.
    pub fn tag(self) -> u16 {
        if self.is_zero() {
            1
        } else if self.exp() == 0x7fff || self.exp() == 0 || self.mant & J == 0 {
            2
        } else {
            0
        }
    }
}

/// The MXCSR bits this CPU implements: all 16 defined ones, DAZ included
/// (reported to software through FXSAVE's MXCSR_MASK field). Setting any
/// of bits 16-31 with LDMXCSR/FXRSTOR is #GP(0).
pub const MXCSR_MASK: u32 = 0xffff;
pub const MX_IE: u32 = 1 << 0;
pub const MX_DE: u32 = 1 << 1;
pub const MX_ZE: u32 = 1 << 2;
pub const MX_OE: u32 = 1 << 3;
pub const MX_UE: u32 = 1 << 4;
pub const MX_PE: u32 = 1 << 5;
pub const MX_DAZ: u32 = 1 << 6;
pub const MX_FTZ: u32 = 1 << 15;
pub const MX_MASK_SHIFT: u32 = 7;

/// Status word bits.
pub const SW_IE: u16 = 1 << 0;
pub const SW_DE: u16 = 1 << 1;
pub const SW_ZE: u16 = 1 << 2;
pub const SW_OE: u16 = 1 << 3;
pub const SW_UE: u16 = 1 << 4;
pub const SW_PE: u16 = 1 << 5;
pub const SW_SF: u16 = 1 << 6;
pub const SW_ES: u16 = 1 << 7;
pub const SW_C0: u16 = 1 << 8;
pub const SW_C1: u16 = 1 << 9;
pub const SW_C2: u16 = 1 << 10;
pub const SW_C3: u16 = 1 << 14;
pub const SW_B: u16 = 1 << 15;
pub const SW_CC: u16 = SW_C0 | SW_C1 | SW_C2 | SW_C3;
pub const SW_EXC: u16 = 0x3f;

/// The x87 (and MMX) register file and its control registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpuState {
    /// Physical registers R0-R7; ST(i) is R((TOP + i) & 7), MMi is Ri.
    pub regs: [F80; 8],
    pub fcw: u16,
    /// Status word including TOP in bits 11-13.
    pub fsw: u16,
    /// Bit i set: physical register i is empty. The full tag word is
    /// computed from the contents when stored.
    pub empty: u8,
    /// Last non-control instruction: 11-bit opcode, CS:EIP and operand DS:offset.
    pub fop: u16,
    pub fcs: u16,
    pub fds: u16,
    pub fip: u64,
    pub fdp: u64,
    /// SSE control/status register (see `MXCSR_MASK`).
    pub mxcsr: u32,
}

impl Default for FpuState {
    fn default() -> Self {
        FpuState {
            regs: [F80::default(); 8],
            fcw: 0x0040,
            fsw: 0,
            empty: 0xff,
            fop: 0,
            fcs: 0,
            fds: 0,
            fip: 0,
            fdp: 0,
            mxcsr: 0x1f80,
        }
    }
}

impl FpuState {
    /// Power-on state (SDM 3A Table 9-1): FCW 0040, FSW 0, tag word 5555
    /// (all registers hold +0), MXCSR 1F80.
    pub fn reset_state() -> FpuState {
        FpuState {
            empty: 0,
            ..Default::default()
        }
    }
    /// FNINIT: control word 037F, everything else cleared and all registers
    /// empty. The register contents are kept.
    pub fn init(&mut self) {
        self.fcw = 0x037f;
        self.fsw = 0;
        self.empty = 0xff;
        self.fop = 0;
        self.fcs = 0;
        self.fds = 0;
        self.fip = 0;
        self.fdp = 0;
    }
    #[inline]
    pub fn top(&self) -> usize {
        ((self.fsw >> 11) & 7) as usize
    }
    #[inline]
    pub fn set_top(&mut self, t: usize) {
        self.fsw = (self.fsw & !0x3800) | ((t as u16 & 7) << 11);
    }
    #[inline]
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }
    #[inline]
    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }
    #[inline]
    pub fn is_empty(&self, i: usize) -> bool {
        self.empty & (1 << self.phys(i)) != 0
    }
    /// Write ST(i) and mark it in use.
    #[inline]
    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.empty &= !(1 << p);
    }
    pub fn free(&mut self, i: usize) {
        let p = self.phys(i);
        self.empty |= 1 << p;
    }
    /// Mark ST(0) empty and increment TOP.
    pub fn pop(&mut self) {
        self.free(0);
        self.set_top(self.top() + 1);
    }
    /// Decrement TOP and write the new ST(0).
    pub fn push(&mut self, v: F80) {
        self.set_top(self.top().wrapping_sub(1));
        self.set_st(0, v);
    }
    pub fn set_cc(&mut self, c3: bool, c2: bool, c1: bool, c0: bool) {
        self.fsw = (self.fsw & !SW_CC)
            | if c3 { SW_C3 } else { 0 }
            | if c2 { SW_C2 } else { 0 }
            | if c1 { SW_C1 } else { 0 }
            | if c0 { SW_C0 } else { 0 };
    }
    /// Full 16-bit tag word (physical register order).
    pub fn tag_word(&self) -> u16 {
        let mut t = 0u16;
        for p in 0..8 {
            let tag = if self.empty & (1 << p) != 0 {
                3
            } else {
                self.regs[p].tag()
            };
            t |= tag << (2 * p);
        }
        t
    }
    pub fn set_tag_word(&mut self, t: u16) {
        self.empty = 0;
        for p in 0..8 {
            if (t >> (2 * p)) & 3 == 3 {
                self.empty |= 1 << p;
            }
        }
    }
    /// Recompute ES and B from the exception flags and masks.
    pub fn update_es(&mut self) {
        if self.fsw & !self.fcw & SW_EXC != 0 {
            self.fsw |= SW_ES | SW_B;
        } else {
            self.fsw &= !(SW_ES | SW_B);
        }
    }
    /// Rounding control (FCW bits 10-11) as a SoftFloat rounding mode.
    pub fn rounding(&self) -> u8 {
        match (self.fcw >> 10) & 3 {
            0 => sf::softfloat_round_near_even,
            1 => sf::softfloat_round_min,
            2 => sf::softfloat_round_max,
            _ => sf::softfloat_round_minMag,
        }
    }
    /// Precision control (FCW bits 8-9) in significand bits as SoftFloat
    /// wants them: 32 (single), 64 (double) or 80 (extended).
    pub fn precision(&self) -> u8 {
        match (self.fcw >> 8) & 3 {
            0 => 32,
            2 => 64,
            _ => 80,
        }
    }
}

/// A SoftFloat session: sets the thread-local mode, clears the flags.
pub struct Sf;

impl Sf {
    #[inline]
    pub fn begin(rm: u8, prec: u8) -> Sf {
        unsafe {
            sf::softfloat_roundingMode_write_helper(rm);
            sf::extF80_roundingPrecision_write_helper(prec);
            sf::softfloat_exceptionFlags_write_helper(0);
            sf::softfloat_detectTininess_write_helper(sf::softfloat_tininess_afterRounding);
        }
        Sf
    }
    /// SoftFloat flags as x87 status bits (IE, ZE, OE, UE, PE).
    #[inline]
    pub fn flags(&self) -> u16 {
        let f = unsafe { sf::softfloat_exceptionFlags_read_helper() };
        let mut s = 0;
        if f & sf::softfloat_flag_invalid != 0 {
            s |= SW_IE;
        }
        if f & sf::softfloat_flag_infinite != 0 {
            s |= SW_ZE;
        }
        if f & sf::softfloat_flag_overflow != 0 {
            s |= SW_OE;
        }
        if f & sf::softfloat_flag_underflow != 0 {
            s |= SW_UE;
        }
        if f & sf::softfloat_flag_inexact != 0 {
            s |= SW_PE;
        }
        s
    }
    pub fn clear(&self) {
        unsafe { sf::softfloat_exceptionFlags_write_helper(0) }
    }
    pub fn set_rounding(&self, rm: u8) {
        unsafe { sf::softfloat_roundingMode_write_helper(rm) }
    }
}

/// The two-operand operations that precision control applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[inline]
pub fn sf_arith(op: Arith, a: F80, b: F80) -> F80 {
    let (a, b) = (a.sf(), b.sf());
    F80::from_sf(unsafe {
        match op {
            Arith::Add => sf::extF80_add(a, b),
            Arith::Sub => sf::extF80_sub(a, b),
            Arith::Mul => sf::extF80_mul(a, b),
            Arith::Div => sf::extF80_div(a, b),
        }
    })
}

pub fn sf_sqrt(a: F80) -> F80 {
    F80::from_sf(unsafe { sf::extF80_sqrt(a.sf()) })
}

pub fn sf_round_int(a: F80, rm: u8) -> F80 {
    F80::from_sf(unsafe { sf::extF80_roundToInt(a.sf(), rm, true) })
}

pub fn from_f32(v: u32) -> F80 {
    F80::from_sf(unsafe { sf::f32_to_extF80(sf::float32_t { v }) })
}
pub fn from_f64(v: u64) -> F80 {
    F80::from_sf(unsafe { sf::f64_to_extF80(sf::float64_t { v }) })
}
pub fn from_i64(v: i64) -> F80 {
    F80::from_sf(unsafe { sf::i64_to_extF80(v) })
}
pub fn to_f32(a: F80) -> u32 {
    unsafe { sf::extF80_to_f32(a.sf()).v }
}
pub fn to_f64(a: F80) -> u64 {
    unsafe { sf::extF80_to_f64(a.sf()).v }
}
/// Round to a signed 64-bit integer; out of range or NaN gives the
/// "integer indefinite" and raises invalid.
pub fn to_i64(a: F80, rm: u8) -> i64 {
    unsafe { sf::extF80_to_i64(a.sf(), rm, true) }
}

/// Ordering of two non-NaN values: -1, 0, 1.
pub fn compare(a: F80, b: F80) -> i32 {
    unsafe {
        if sf::extF80_eq(a.sf(), b.sf()) {
            0
        } else if sf::extF80_lt_quiet(a.sf(), b.sf()) {
            -1
        } else {
            1
        }
    }
}

/// Scale a finite non-zero value so its exponent field is `e`, returning the
/// value and the power of two removed. Denormals are normalised first.
pub fn normalize(a: F80) -> (F80, i32) {
    let mut m = a.mant;
    let mut e = a.exp() as i32;
    if e == 0 {
        e = 1;
    }
    let z = m.leading_zeros() as i32;
    m <<= z;
    e -= z;
    (F80::new((a.se & 0x8000) | 0x3fff, m), e - 0x3fff)
}

/// Build a value from a normalised significand-carrying `v` (exponent field
/// 0x3fff region) times 2^k, with no rounding: the caller makes sure the
/// result is in range. Returns None if the exponent leaves 1..0x7ffe.
pub fn scale_exact(v: F80, k: i32) -> Option<F80> {
    let e = v.exp() as i32 + k;
    if (1..0x7fff).contains(&e) {
        Some(F80::new((v.se & 0x8000) | e as u16, v.mant))
    } else {
        None
    }
}
