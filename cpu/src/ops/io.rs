//! Port I/O: IN/OUT and the IOPL / TSS I/O-permission-bitmap check.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    Some(match m {
        Mnemonic::In => h_in,
        Mnemonic::Out => h_out,
        _ => return None,
    })
}

impl Cpu {
    /// Protected mode with CPL > IOPL, or virtual-8086 mode: the TSS I/O
    /// bitmap must allow every byte of the access.
    pub fn check_io(&mut self, bus: &mut dyn Bus, port: u16, size: u8) -> Result<()> {
        if !self.s.protected() || (!self.s.v86() && self.s.cpl <= self.s.iopl()) {
            return Ok(());
        }
        let tr = self.s.tr;
        // Only a 32-bit TSS has a bitmap.
        if tr.attr & 0x8 == 0 || tr.limit < 0x67 {
            return Err(Exception::gp0());
        }
        let base = self.read_sys(bus, tr.base + 0x66, 2)?;
        let off = base + (port as u64 >> 3);
        if off + 1 > tr.limit as u64 {
            return Err(Exception::gp0());
        }
        let bits = self.read_sys(bus, tr.base + off, 2)?;
        let mask = ((1u64 << size) - 1) << (port & 7);
        if bits & mask != 0 {
            return Err(Exception::gp0());
        }
        Ok(())
    }
}

fn port_of(c: &Cpu, i: &Insn, n: usize) -> u16 {
    if i.op[n].kind == OpKind::Imm {
        i.imm as u8 as u16
    } else {
        c.s.gpr[EDX] as u16
    }
}

fn h_in(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let port = port_of(c, i, 1);
    let size = i.op[0].size;
    c.check_io(b, port, size)?;
    b.sync_time(c.icount);
    let v = b.io_read(port, size);
    c.poll = true;
    c.put_reg(EAX as u8, false, size, v as u64);
    Ok(())
}

fn h_out(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let port = port_of(c, i, 0);
    let size = i.op[1].size;
    c.check_io(b, port, size)?;
    let v = c.s.gpr[EAX] as u32;
    let v = match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        _ => v,
    };
    b.sync_time(c.icount);
    b.io_write(port, size, v);
    c.poll = true;
    c.follow_a20(b);
    Ok(())
}
