//! Descriptor-table access shared by segment loads, gates and task switches.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::state::*;

/// A raw 8-byte descriptor and where it lives.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub lo: u32,
    pub hi: u32,
    pub addr: u64,
}

impl Desc {
    /// Access byte: type (bits 0-3), S (4), DPL (5-6), P (7).
    pub fn access(&self) -> u8 {
        (self.hi >> 8) as u8
    }
    pub fn typ(&self) -> u8 {
        self.access() & 0xf
    }
    pub fn is_system(&self) -> bool {
        self.access() & 0x10 == 0
    }
    pub fn dpl(&self) -> u8 {
        (self.access() >> 5) & 3
    }
    pub fn present(&self) -> bool {
        self.access() & 0x80 != 0
    }
    pub fn is_code(&self) -> bool {
        !self.is_system() && self.typ() & 8 != 0
    }
    pub fn is_data(&self) -> bool {
        !self.is_system() && self.typ() & 8 == 0
    }
    pub fn conforming(&self) -> bool {
        self.is_code() && self.typ() & 4 != 0
    }
    pub fn readable(&self) -> bool {
        self.is_data() || self.typ() & 2 != 0
    }
    pub fn writable_data(&self) -> bool {
        self.is_data() && self.typ() & 2 != 0
    }
    pub fn segment(&self, sel: u16) -> Segment {
        Segment::from_descriptor(sel, self.lo, self.hi)
    }
    /// Gate fields: target selector, offset, parameter count.
    pub fn gate_selector(&self) -> u16 {
        (self.lo >> 16) as u16
    }
    pub fn gate_offset(&self) -> u32 {
        (self.lo & 0xffff) | (self.hi & 0xffff_0000)
    }
    pub fn gate_params(&self) -> u8 {
        (self.hi & 0x1f) as u8
    }
}

impl Cpu {
    /// Fetch the descriptor for `sel`; the closure builds the fault when the
    /// selector lies outside its table.
    pub fn fetch_desc(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        fault: impl Fn(u32) -> Exception,
    ) -> Result<Desc> {
        let idx = (sel & !7) as u64;
        let (base, limit) = if sel & 4 != 0 {
            if self.s.ldtr.selector & !3 == 0 || !self.s.ldtr.present() {
                return Err(fault(sel as u32 & 0xfffc));
            }
            (self.s.ldtr.base, self.s.ldtr.limit as u64)
        } else {
            (self.s.gdtr.base, self.s.gdtr.limit as u64)
        };
        if idx + 7 > limit {
            return Err(fault(sel as u32 & 0xfffc));
        }
        let addr = base.wrapping_add(idx);
        let lo = self.read_sys(bus, addr, 4)? as u32;
        let hi = self.read_sys(bus, addr + 4, 4)? as u32;
        Ok(Desc { lo, hi, addr })
    }

    /// The code segment a far RET or IRET returns to, with the checks both
    /// make before anything else (SDM Vol. 2: RET, IRET): not null, a code
    /// segment, RPL >= CPL, DPL rules for conforming and non-conforming
    /// code, present.
    pub fn return_cs(&mut self, bus: &mut dyn Bus, sel: u16) -> Result<Desc> {
        if sel & !3 == 0 {
            return Err(Exception::gp0());
        }
        let d = self.fetch_desc(bus, sel, Exception::gp)?;
        let rpl = (sel & 3) as u8;
        let err = sel as u32 & 0xfffc;
        if !d.is_code() || rpl < self.s.cpl {
            return Err(Exception::gp(err));
        }
        if (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
            return Err(Exception::gp(err));
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        Ok(d)
    }

    /// Set the accessed bit of a code/data descriptor if it is clear.
    pub fn set_desc_accessed(&mut self, bus: &mut dyn Bus, d: &Desc) -> Result<()> {
        if !d.is_system() && d.hi & 0x100 == 0 {
            self.write_sys(bus, d.addr + 4, 4, (d.hi | 0x100) as u64)?;
        }
        Ok(())
    }

    /// Load CS (descriptor already checked) with the given CPL.
    pub fn load_cs(&mut self, sel: u16, d: &Desc, cpl: u8) {
        let mut seg = d.segment((sel & !3) | cpl as u16);
        seg.attr |= ATTR_ACCESSED;
        self.s.seg[CS] = seg;
        self.s.cpl = cpl;
        self.update_mode();
    }
}
