//! Loading data and stack segment registers: MOV Sreg, POP Sreg, LDS/LES/
//! LFS/LGS/LSS, with the protected-mode descriptor checks.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Mov if inst.op0_register().is_segment_register() => h_mov_sreg,
        Pop if inst.op0_register().is_segment_register() => h_pop_sreg,
        Lds | Les | Lfs | Lgs | Lss => h_lxs,
        _ => return None,
    })
}

impl Cpu {
    /// Load a data/stack segment register (not CS) from `sel` with the
    /// checks of the current mode.
    pub fn load_seg(&mut self, bus: &mut dyn Bus, seg: usize, sel: u16) -> Result<()> {
        if !self.s.protected() {
            // Real mode only replaces selector and base: limits and attributes
            // persist ("unreal" mode).
            let s = &mut self.s.seg[seg];
            s.selector = sel;
            s.base = (sel as u64) << 4;
            self.update_seg_ok(seg);
            return Ok(());
        }
        if self.s.v86() {
            let mut s = Segment::real_mode(sel);
            s.attr |= 3 << 5;
            self.s.seg[seg] = s;
            self.update_seg_ok(seg);
            return Ok(());
        }
        let cpl = self.s.cpl;
        if sel & !3 == 0 {
            if seg == SS && !(self.mode64 && cpl < 3) {
                return Err(Exception::gp0());
            }
            // Null selector: loads fine, faults on use.
            self.s.seg[seg] = Segment {
                selector: sel,
                ..Segment::default()
            };
            self.update_seg_ok(seg);
            return Ok(());
        }
        let d = self.fetch_desc(bus, sel, Exception::gp)?;
        let rpl = (sel & 3) as u8;
        let err = sel as u32 & 0xfffc;
        if seg == SS {
            if rpl != cpl || d.dpl() != cpl || !d.writable_data() {
                return Err(Exception::gp(err));
            }
            if !d.present() {
                return Err(Exception::ss(err));
            }
        } else {
            if !d.readable() || d.is_system() {
                return Err(Exception::gp(err));
            }
            if (d.is_data() || !d.conforming()) && (rpl > d.dpl() || cpl > d.dpl()) {
                return Err(Exception::gp(err));
            }
            if !d.present() {
                return Err(Exception::np(err));
            }
        }
        self.set_desc_accessed(bus, &d)?;
        let mut s = d.segment(sel);
        s.attr |= ATTR_ACCESSED;
        self.s.seg[seg] = s;
        self.update_seg_ok(seg);
        Ok(())
    }

    /// Open the interrupt shadow after MOV SS / POP SS / STI.
    pub fn inhibit_interrupts(&mut self) {
        self.irq_inhibit_until = self.icount + 2;
    }
}

fn h_mov_sreg(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let seg = i.op[0].reg as usize;
    if seg == CS {
        return Err(Exception::ud());
    }
    let sel = c.read_op(b, i, 1)? as u16;
    c.load_seg(b, seg, sel)?;
    if seg == SS {
        c.inhibit_interrupts();
    }
    Ok(())
}

fn h_pop_sreg(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let seg = i.op[0].reg as usize;
    let sel = c.peek_stack(b, 0, i.osize)? as u16;
    c.load_seg(b, seg, sel)?;
    c.s.gpr[ESP] = c.sp_add(i.osize as u64);
    if seg == SS {
        c.inhibit_interrupts();
    }
    Ok(())
}

fn h_lxs(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if i.op[1].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let seg = match i.inst.mnemonic() {
        Mnemonic::Lds => DS,
        Mnemonic::Les => ES,
        Mnemonic::Lfs => FS,
        Mnemonic::Lgs => GS,
        _ => SS,
    };
    let size = i.op[0].size;
    let ea = c.ea(i);
    let ms = i.mem.seg as usize;
    let off = c.read_mem(b, ms, ea, size)?;
    let sel = c.read_mem(
        b,
        ms,
        ea.wrapping_add(size as u64) & crate::flags::size_mask(i.asize),
        2,
    )?;
    c.load_seg(b, seg, sel as u16)?;
    c.write_op(b, i, 0, off)
}
