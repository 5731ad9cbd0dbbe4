//! Guest exceptions as values. Handlers return `Result<_, Exception>`; the
//! interpreter delivers the exception through the IDT/IVT.

use std::fmt;
use std::num::NonZeroU64;

pub const DE: u8 = 0;
pub const DB: u8 = 1;
pub const NMI: u8 = 2;
pub const BP: u8 = 3;
pub const OF: u8 = 4;
pub const BR: u8 = 5;
pub const UD: u8 = 6;
pub const NM: u8 = 7;
pub const DF: u8 = 8;
pub const TS: u8 = 10;
pub const NP: u8 = 11;
pub const SS: u8 = 12;
pub const GP: u8 = 13;
pub const PF: u8 = 14;
pub const MF: u8 = 16;
pub const AC: u8 = 17;
pub const MC: u8 = 18;
pub const XM: u8 = 19;

/// A fault as one non-zero word (bits 0-7 vector, bit 8 always set, bit 9
/// "has an error code", bits 32-63 the code), so `Result<(), Exception>`
/// (what every handler returns) is one register and `Ok` is zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Exception(NonZeroU64);

const MARK: u64 = 1 << 8;
const HAS_CODE: u64 = 1 << 9;

pub type Result<T> = std::result::Result<T, Exception>;

impl Exception {
    #[inline]
    pub const fn new(vector: u8) -> Self {
        match NonZeroU64::new(vector as u64 | MARK) {
            Some(v) => Exception(v),
            None => unreachable!(),
        }
    }
    #[inline]
    pub const fn with_code(vector: u8, code: u32) -> Self {
        match NonZeroU64::new(vector as u64 | MARK | HAS_CODE | (code as u64) << 32) {
            Some(v) => Exception(v),
            None => unreachable!(),
        }
    }
    #[inline]
    pub const fn vector(&self) -> u8 {
        self.0.get() as u8
    }
    pub const fn ud() -> Self {
        Self::new(UD)
    }
    pub const fn gp(code: u32) -> Self {
        Self::with_code(GP, code)
    }
    pub const fn gp0() -> Self {
        Self::with_code(GP, 0)
    }
    pub const fn ss(code: u32) -> Self {
        Self::with_code(SS, code)
    }
    pub const fn np(code: u32) -> Self {
        Self::with_code(NP, code)
    }
    pub const fn ts(code: u32) -> Self {
        Self::with_code(TS, code)
    }
    pub const fn de() -> Self {
        Self::new(DE)
    }
    /// The error code the fault carries, if any.
    #[inline]
    pub const fn error_code(&self) -> Option<u32> {
        if self.0.get() & HAS_CODE != 0 {
            Some((self.0.get() >> 32) as u32)
        } else {
            None
        }
    }
    /// Contributory exceptions for the double-fault rules (SDM 3A Table 6-5).
    pub fn contributory(&self) -> bool {
        matches!(self.vector(), DE | TS | NP | SS | GP)
    }
    /// Vectors that push an error code when delivered.
    pub fn has_error_code(vector: u8) -> bool {
        matches!(vector, DF | TS | NP | SS | GP | PF | AC)
    }
}

pub fn vector_name(v: u8) -> &'static str {
    match v {
        DE => "#DE",
        DB => "#DB",
        NMI => "NMI",
        BP => "#BP",
        OF => "#OF",
        BR => "#BR",
        UD => "#UD",
        NM => "#NM",
        DF => "#DF",
        TS => "#TS",
        NP => "#NP",
        SS => "#SS",
        GP => "#GP",
        PF => "#PF",
        MF => "#MF",
        AC => "#AC",
        MC => "#MC",
        XM => "#XM",
        _ => "INT",
    }
}

impl fmt::Debug for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exception")
            .field("vector", &self.vector())
            .field("error_code", &self.error_code())
            .finish()
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_code() {
            Some(c) => write!(f, "{}({:#x})", vector_name(self.vector()), c),
            None => write!(f, "{}", vector_name(self.vector())),
        }
    }
}

const _: () = assert!(std::mem::size_of::<Result<()>>() == 8);
