//! The decoded form of one instruction: what the interpreter executes and
//! what the JIT will compile. Operands are pre-extracted from iced-x86's
//! `Instruction` so handlers do not re-inspect the encoding.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Result;
use iced_x86::{Instruction, Register};

pub type Handler = fn(&mut Cpu, &mut dyn Bus, &Insn) -> Result<()>;

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OpKind {
    #[default]
    None,
    /// General register `reg` (0-15); `hi` selects AH/CH/DH/BH.
    Reg,
    Mem,
    Imm,
    /// Segment register `reg` (ES..GS).
    Seg,
    /// Anything else (CRn, DRn, x87...): handlers read `Insn::inst`.
    Other,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Operand {
    pub kind: OpKind,
    pub reg: u8,
    pub hi: bool,
    /// Size in bytes.
    pub size: u8,
}

/// Register index meaning "no base/index".
pub const NO_REG: u8 = 0xff;
/// Base register meaning RIP-relative (displacement is relative to next RIP).
pub const RIP_REL: u8 = 0xfe;

#[derive(Clone, Copy, Debug, Default)]
pub struct MemRef {
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    /// Effective segment register (ES..GS).
    pub seg: u8,
    pub disp: u64,
}

#[derive(Clone)]
pub struct Insn {
    pub handler: Handler,
    pub op: [Operand; 3],
    pub mem: MemRef,
    /// First immediate, or the branch displacement relative to the next
    /// instruction for near branches.
    pub imm: u64,
    /// Second immediate (ENTER level, far pointer selector).
    pub imm2: u64,
    pub len: u8,
    /// Operand size in bytes (of the instruction's main operation).
    pub osize: u8,
    /// Address size in bytes.
    pub asize: u8,
    /// 0 none, 1 REP/REPE, 2 REPNE.
    pub rep: u8,
    /// Condition code for Jcc/SETcc/CMOVcc/LOOPcc.
    pub cc: u8,
    /// The instruction ends its block (control transfer or mode change).
    pub ends_block: bool,
    pub inst: Instruction,
}

/// Map an iced general-purpose register to (index, hi, size).
pub fn gpr(r: Register) -> Option<(u8, bool, u8)> {
    use Register::*;
    let (idx, hi) = match r {
        AH => (0, true),
        CH => (1, true),
        DH => (2, true),
        BH => (3, true),
        // iced numbers the byte registers AL..BH 0-7, SPL..DIL 8-11 and
        // R8L..R15L 12-19; the ones after BH are registers 4-15.
        _ if r.is_gpr8() && r.number() >= 8 => (r.number() as u8 - 4, false),
        _ if r.is_gpr() => (r.number() as u8, false),
        _ => return Option::None,
    };
    Some((idx, hi, r.size() as u8))
}

pub fn seg_index(r: Register) -> Option<u8> {
    use Register::*;
    Some(match r {
        ES => 0,
        CS => 1,
        SS => 2,
        DS => 3,
        FS => 4,
        GS => 5,
        _ => return Option::None,
    })
}
