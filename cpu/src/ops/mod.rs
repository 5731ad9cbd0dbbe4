//! Instruction semantics. `handler_for` maps a decoded instruction to its
//! handler once, at block-formation time; the helpers here read and write
//! the pre-extracted operands.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use iced_x86::{Code, Instruction, Mnemonic};

pub mod alu;
pub mod bcd;
pub mod bits;
pub mod control;
pub mod desc;
pub mod farxfer;
pub mod fpu;
pub mod interrupt;
pub mod io;
pub mod long_mode;
pub mod mmx;
pub mod muldiv;
pub mod segload;
pub mod shift;
pub mod sse;
pub mod ssefp;
pub mod stack;
pub mod string;
pub mod sysenter;
pub mod system;
pub mod task;

/// `v + delta` kept as an address-size (or stack-size) register: a 16-bit
/// result leaves the upper bits alone, a 32-bit one zero-extends.
#[inline]
pub fn add_sized(v: u64, delta: u64, size: u8) -> u64 {
    match size {
        2 => (v & !0xffff) | (v.wrapping_add(delta) & 0xffff),
        4 => v.wrapping_add(delta) & 0xffff_ffff,
        _ => v.wrapping_add(delta),
    }
}

/// Shapes of a 32-bit effective address that get their own handler
/// instances, so the common forms skip the generic base/index tests.
pub const EA_ANY: u8 = 0;
/// base + disp
pub const EA_BASE: u8 = 1;
/// index * scale + disp
pub const EA_INDEX: u8 = 2;
/// base + index * scale + disp
pub const EA_BOTH: u8 = 3;
/// disp alone
pub const EA_DISP: u8 = 4;

/// The `EA_*` shape of `inst`'s memory operand (`EA_ANY` unless the
/// address is 32 bits wide and made of 32-bit registers).
pub fn ea_form(inst: &Instruction) -> u8 {
    use iced_x86::Register;
    let base = inst.memory_base();
    let index = inst.memory_index();
    match (base, index) {
        (Register::None, Register::None) if inst.memory_displ_size() == 4 => EA_DISP,
        (b, Register::None) if b.is_gpr32() => EA_BASE,
        (Register::None, x) if x.is_gpr32() => EA_INDEX,
        (b, x) if b.is_gpr32() && x.is_gpr32() => EA_BOTH,
        _ => EA_ANY,
    }
}

impl Cpu {
    /// `ea` for an address of shape `EA` (see `ea_form`): the same sum, cut
    /// to 32 bits.
    #[inline(always)]
    pub fn ea_shaped<const EA: u8>(&self, i: &Insn) -> u64 {
        let m = &i.mem;
        let g = &self.s.gpr;
        let base = || g[m.base as usize & 15];
        let index = || g[m.index as usize & 15].wrapping_mul(m.scale as u64);
        match EA {
            EA_BASE => base().wrapping_add(m.disp) & 0xffff_ffff,
            EA_INDEX => index().wrapping_add(m.disp) & 0xffff_ffff,
            EA_BOTH => base().wrapping_add(index()).wrapping_add(m.disp) & 0xffff_ffff,
            EA_DISP => m.disp & 0xffff_ffff,
            _ => self.ea(i),
        }
    }

    /// Effective address (offset within the segment) of the memory operand.
    #[inline]
    pub fn ea(&self, i: &Insn) -> u64 {
        let m = &i.mem;
        let mut a = m.disp;
        if m.base != NO_REG {
            a = a.wrapping_add(if m.base == RIP_REL {
                self.next_rip
            } else {
                self.s.gpr[m.base as usize]
            });
        }
        if m.index != NO_REG {
            a = a.wrapping_add(self.s.gpr[m.index as usize].wrapping_mul(m.scale as u64));
        }
        a & size_mask(i.asize)
    }

    #[inline]
    pub fn get_reg(&self, reg: u8, hi: bool, size: u8) -> u64 {
        let v = self.s.gpr[reg as usize];
        if hi {
            (v >> 8) & 0xff
        } else {
            v & size_mask(size)
        }
    }

    /// Write a sized register with the x86 merge rules (32-bit writes zero-extend).
    #[inline]
    pub fn put_reg(&mut self, reg: u8, hi: bool, size: u8, v: u64) {
        let r = &mut self.s.gpr[reg as usize];
        *r = match (size, hi) {
            (1, true) => (*r & !0xff00) | ((v & 0xff) << 8),
            (1, false) => (*r & !0xff) | (v & 0xff),
            (2, _) => (*r & !0xffff) | (v & 0xffff),
            (4, _) => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// Read operand `n` (register, memory or immediate).
    #[inline]
    pub fn read_op(&mut self, bus: &mut dyn Bus, i: &Insn, n: usize) -> Result<u64> {
        let o = &i.op[n];
        match o.kind {
            OpKind::Reg => Ok(self.get_reg(o.reg, o.hi, o.size)),
            OpKind::Mem => {
                let ea = self.ea(i);
                self.read_mem(bus, i.mem.seg as usize, ea, o.size)
            }
            OpKind::Imm => Ok(if n == 0 || i.op[0].kind != OpKind::Imm {
                i.imm
            } else {
                i.imm2
            } & size_mask(o.size)),
            OpKind::Seg => Ok(self.s.seg[o.reg as usize].selector as u64),
            _ => Ok(0),
        }
    }

    #[inline]
    pub fn write_op(&mut self, bus: &mut dyn Bus, i: &Insn, n: usize, v: u64) -> Result<()> {
        let o = &i.op[n];
        match o.kind {
            OpKind::Reg => {
                self.put_reg(o.reg, o.hi, o.size, v);
                Ok(())
            }
            OpKind::Mem => {
                let ea = self.ea(i);
                self.write_mem(bus, i.mem.seg as usize, ea, o.size, v)
            }
            _ => Ok(()),
        }
    }

    /// Read-modify-write of operand 0 (register or memory). `f` gets the old
    /// value and returns the new one, or None to leave it. A memory
    /// destination is checked for writing before `f` runs, so a fault leaves
    /// the flags and registers untouched.
    #[inline]
    pub fn modify_op(
        &mut self,
        bus: &mut dyn Bus,
        i: &Insn,
        f: impl FnOnce(&mut Cpu, u64) -> Option<u64>,
    ) -> Result<()> {
        let o = i.op[0];
        if o.kind == OpKind::Reg {
            let x = self.get_reg(o.reg, o.hi, o.size);
            if let Some(r) = f(self, x) {
                self.put_reg(o.reg, o.hi, o.size, r);
            }
            return Ok(());
        }
        let ea = self.ea(i);
        let seg = i.mem.seg as usize;
        let x = self.read_mem(bus, seg, ea, o.size)?;
        self.probe_write(seg, ea, o.size)?;
        match f(self, x) {
            Some(r) => self.write_mem(bus, seg, ea, o.size, r),
            None => Ok(()),
        }
    }

    /// Log an unimplemented instruction once and raise #UD.
    pub fn unimplemented(&mut self, i: &Insn) -> Result<()> {
        self.warn_once(format!(
            "unimplemented instruction {:?} ({}), raising #UD",
            i.inst.code(),
            i.inst
        ));
        Err(Exception::ud())
    }
}

fn h_unimplemented(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    cpu.unimplemented(i)
}

fn h_invalid(_cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Result<()> {
    Err(Exception::ud())
}

/// Instructions that do not transfer control but must end the block
/// because they change how later code decodes or runs, or talk to devices.
pub fn ends_block(inst: &Instruction) -> bool {
    use Mnemonic::*;
    match inst.mnemonic() {
        Mov => {
            // MOV to CRn/DRn or to SS (interrupt shadow) / other segment registers.
            let r = inst.op0_register();
            r.is_cr() || r.is_dr() || r.is_segment_register()
        }
        Pop => inst.op0_register().is_segment_register(),
        Hlt | Lmsw | Clts | Lgdt | Lidt | Lldt | Ltr | Invlpg | Wrmsr | Popf | Popfd | Popfq
        | Sti | Cli | In | Out | Insb | Insw | Insd | Outsb | Outsw | Outsd | Cpuid | Rsm
        | Invd | Wbinvd | Lds | Les | Lfs | Lgs | Lss | Sysenter | Sysexit | Syscall | Sysret
        | Sysretq | Sysexitq | Swapgs | Xsetbv | Fxrstor | Fxrstor64 | Xrstor | Xrstor64 => true,
        _ => false,
    }
}

/// The handler that executes `inst`.
pub fn handler_for(inst: &Instruction) -> Handler {
    use Mnemonic::*;
    if inst.is_invalid() {
        return h_invalid;
    }
    if inst.code() == Code::INVALID {
        return h_invalid;
    }
    let m = inst.mnemonic();
    // First, so the SSE forms of MOVSD/CMPSD are not taken for the string
    // instructions, nor CLFLUSH for a plain no-op.
    sse::handler(m, inst)
        .or_else(|| alu::handler(m, inst))
        .or_else(|| shift::handler(m, inst))
        .or_else(|| muldiv::handler(m, inst))
        .or_else(|| bcd::handler(m, inst))
        .or_else(|| bits::handler(m, inst))
        .or_else(|| string::handler(m, inst))
        .or_else(|| stack::handler(m, inst))
        .or_else(|| control::handler(m, inst))
        .or_else(|| farxfer::handler(m, inst))
        .or_else(|| interrupt::handler(m, inst))
        .or_else(|| segload::handler(m, inst))
        .or_else(|| io::handler(m, inst))
        .or_else(|| system::handler(m, inst))
        .or_else(|| long_mode::handler(m, inst))
        .or_else(|| sysenter::handler(m, inst))
        .or_else(|| fpu::handler(m, inst))
        .or_else(|| mmx::handler(m, inst))
        .or_else(|| sse::handler_mm(m, inst))
        .unwrap_or(match m {
            Ud0 | Ud1 | Ud2 => h_invalid,
            _ => h_unimplemented,
        })
}
