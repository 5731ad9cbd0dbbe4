//! Stack instructions: PUSH/POP (all forms), PUSHA/POPA, PUSHF/POPF,
//! ENTER/LEAVE, and the push/pop primitives other handlers use.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Push => h_push,
        Pop if inst.op0_register().is_segment_register() => return None,
        Pop => h_pop,
        Pusha | Pushad => h_pusha,
        Popa | Popad => h_popa,
        Pushf | Pushfd | Pushfq => h_pushf,
        Popf | Popfd | Popfq => h_popf,
        Enter => h_enter,
        Leave => h_leave,
        _ => return None,
    })
}

/// Flags POPF/IRET may ever load (reserved bits excluded).
pub const FLAGS_WRITABLE: u64 = 0x003f_7fd5;

impl Cpu {
    /// Stack pointer after adding `delta`, wrapped to the stack size and
    /// merged into the untouched upper bits.
    #[inline]
    pub fn sp_add(&self, delta: u64) -> u64 {
        crate::ops::add_sized(self.s.gpr[ESP], delta, self.s.stack_size())
    }

    #[inline]
    pub fn push(&mut self, bus: &mut dyn Bus, size: u8, v: u64) -> Result<()> {
        let nsp = self.sp_add((size as u64).wrapping_neg());
        self.write_mem(bus, SS, nsp & self.sp_mask(), size, v)?;
        self.s.gpr[ESP] = nsp;
        Ok(())
    }

    #[inline]
    pub fn pop(&mut self, bus: &mut dyn Bus, size: u8) -> Result<u64> {
        let v = self.read_mem(bus, SS, self.s.gpr[ESP] & self.sp_mask(), size)?;
        self.s.gpr[ESP] = self.sp_add(size as u64);
        Ok(v)
    }

    /// Read the stack `off` bytes above SP without popping.
    pub fn peek_stack(&mut self, bus: &mut dyn Bus, off: u64, size: u8) -> Result<u64> {
        let a = self.sp_add(off) & self.sp_mask();
        self.read_mem(bus, SS, a, size)
    }

    /// Check `bytes` of stack below SP are writable (multi-push instructions).
    pub fn probe_push(&mut self, bytes: u64) -> Result<()> {
        let lo = self.sp_add(bytes.wrapping_neg()) & self.sp_mask();
        let hi = self.sp_add(1u64.wrapping_neg()) & self.sp_mask();
        self.probe_write(SS, lo, 1)?;
        self.probe_write(SS, hi, 1)
    }

    /// RFLAGS as pushed by PUSHF/INT (VM and RF read as zero).
    pub fn flags_image(&self) -> u64 {
        self.s.flags.get() & !(FLAG_VM | FLAG_RF)
    }

    /// Load flags with the privilege rules of POPF/IRET: IOPL only at CPL 0,
    /// IF only when CPL <= IOPL; VM/VIP/VIF never here.
    pub fn load_flags(&mut self, v: u64, size: u8) {
        let cur = self.s.flags.get();
        let mut mask = FLAGS_WRITABLE & !(FLAG_VM | FLAG_VIP | FLAG_VIF | FLAG_RF);
        if self.s.protected() {
            if self.s.cpl > 0 {
                mask &= !FLAG_IOPL;
            }
            if self.s.cpl > self.s.iopl() {
                mask &= !FLAG_IF;
            }
        }
        if size == 2 {
            mask &= 0xffff;
        }
        self.s.flags.set_raw((cur & !mask) | (v & mask));
        self.poll = true;
    }
}

fn h_push(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let v = match i.op[0].kind {
        OpKind::Imm => i.imm & size_mask(size),
        _ => c.read_op(b, i, 0)?,
    };
    c.push(b, size, v)
}

fn h_pop(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let v = c.peek_stack(b, 0, size)?;
    let old = c.s.gpr[ESP];
    // A memory destination addressed through ESP sees the popped ESP.
    c.s.gpr[ESP] = c.sp_add(size as u64);
    if let Err(e) = c.write_op(b, i, 0, v) {
        c.s.gpr[ESP] = old;
        return Err(e);
    }
    if i.op[0].kind == OpKind::Reg && i.op[0].reg as usize == ESP {
        // POP ESP: the loaded value wins over the increment.
        c.put_reg(ESP as u8, false, size, v);
    }
    Ok(())
}

fn h_pusha(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    c.probe_push(8 * size as u64)?;
    let sp = c.s.gpr[ESP];
    for r in 0..8 {
        let v = if r == ESP { sp } else { c.s.gpr[r] };
        c.push(b, size, v & size_mask(size))?;
    }
    Ok(())
}

fn h_popa(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let mut vals = [0u64; 8];
    for (k, v) in vals.iter_mut().enumerate() {
        *v = c.peek_stack(b, (k as u64) * size as u64, size)?;
    }
    for (k, v) in vals.iter().enumerate() {
        let r = 7 - k;
        if r != ESP {
            c.put_reg(r as u8, false, size, *v);
        }
    }
    c.s.gpr[ESP] = c.sp_add(8 * size as u64);
    Ok(())
}

fn h_pushf(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if c.s.v86() && c.s.iopl() < 3 {
        return Err(Exception::gp0());
    }
    let v = c.flags_image();
    c.push(b, i.osize, v & size_mask(i.osize))
}

fn h_popf(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if c.s.v86() && c.s.iopl() < 3 {
        return Err(Exception::gp0());
    }
    let v = c.pop(b, i.osize)?;
    c.load_flags(v, i.osize);
    Ok(())
}

fn h_enter(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let alloc = i.imm & 0xffff;
    let level = i.imm2 & 0x1f;
    let saved = (c.s.gpr[ESP], c.s.gpr[EBP]);
    let r = (|| -> Result<()> {
        let ebp = c.s.gpr[EBP];
        c.push(b, size, ebp & size_mask(size))?;
        let frame = c.s.gpr[ESP] & c.sp_mask();
        let bp_mask = c.sp_mask();
        let mut bp = ebp;
        for _ in 1..level {
            bp = bp.wrapping_sub(size as u64) & bp_mask;
            let v = c.read_mem(b, SS, bp, size)?;
            c.push(b, size, v)?;
        }
        if level > 0 {
            c.push(b, size, frame & size_mask(size))?;
        }
        // The new ESP must be writable (the manuals check the final frame).
        let nsp = c.sp_add(alloc.wrapping_neg());
        if alloc > 0 {
            c.probe_write(SS, nsp & c.sp_mask(), 1)?;
        }
        c.put_reg(EBP as u8, false, size, frame);
        c.s.gpr[ESP] = nsp;
        Ok(())
    })();
    if r.is_err() {
        c.s.gpr[ESP] = saved.0;
        c.s.gpr[EBP] = saved.1;
    }
    r
}

fn h_leave(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let mask = c.sp_mask();
    let bp = c.s.gpr[EBP] & mask;
    let v = c.read_mem(b, SS, bp, size)?;
    let sp = c.s.gpr[ESP];
    c.s.gpr[ESP] = (sp & !mask) | bp;
    c.s.gpr[ESP] = c.sp_add(size as u64);
    c.put_reg(EBP as u8, false, size, v);
    Ok(())
}
