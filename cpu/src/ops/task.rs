//! Hardware task switching through 16- and 32-bit TSSs (JMP/CALL to a TSS
//! or task gate, interrupts through task gates, IRET with NT), and the
//! inner-ring stack lookup used by interrupts and call gates.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::ops::desc::Desc;
use crate::state::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TaskReason {
    Jmp,
    Call,
    Int,
    Iret,
}

/// Register offsets in a 32-bit TSS.
const T32_CR3: u64 = 28;
const T32_EIP: u64 = 32;
const T32_EFLAGS: u64 = 36;
const T32_GPR: u64 = 40;
const T32_SEG: u64 = 72;
const T32_LDT: u64 = 96;
/// And in a 16-bit TSS.
const T16_IP: u64 = 14;
const T16_FLAGS: u64 = 16;
const T16_GPR: u64 = 18;
const T16_SEG: u64 = 34;
const T16_LDT: u64 = 42;

impl Cpu {
    /// SS:ESP for privilege level `dpl` from the current TSS.
    pub fn tss_stack(&mut self, bus: &mut dyn Bus, dpl: u8) -> Result<(u16, u64)> {
        let tr = self.s.tr;
        let is32 = tr.attr & 0x8 != 0;
        let (off, ssz) = if is32 {
            (4 + dpl as u64 * 8, 4)
        } else {
            (2 + dpl as u64 * 4, 2)
        };
        if off + ssz * 2 - 1 > tr.limit as u64 {
            return Err(Exception::ts(tr.selector as u32 & 0xfffc));
        }
        let sp = self.read_sys(bus, tr.base + off, ssz as u8)?;
        let ss = self.read_sys(bus, tr.base + off + ssz, 2)? as u16;
        Ok((ss, sp))
    }

    fn set_busy(&mut self, bus: &mut dyn Bus, d: &Desc, busy: bool) -> Result<()> {
        let hi = if busy { d.hi | 0x200 } else { d.hi & !0x200 };
        self.write_sys(bus, d.addr + 4, 4, hi as u64)
    }

    /// Switch to the task whose TSS (or task gate) selector is `sel`.
    /// `ret` is the EIP saved in the outgoing TSS.
    pub fn task_switch(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        reason: TaskReason,
        ret: u64,
    ) -> Result<()> {
        let mut sel = sel;
        let mut d = self.fetch_desc(bus, sel, Exception::gp)?;
        // Through a task gate (JMP/CALL to a gate): use its TSS selector.
        if d.is_system() && d.typ() == 5 {
            if !d.present() {
                return Err(Exception::np(sel as u32 & 0xfffc));
            }
            sel = d.gate_selector();
            d = self.fetch_desc(bus, sel, Exception::gp)?;
        }
        let err = sel as u32 & 0xfffc;
        if sel & 4 != 0 || !d.is_system() {
            return Err(Exception::gp(err));
        }
        let want_busy = reason == TaskReason::Iret;
        let typ = d.typ();
        let ok_type = if want_busy {
            typ == 3 || typ == 0xb
        } else {
            typ == 1 || typ == 9
        };
        if !ok_type {
            return Err(if want_busy {
                Exception::ts(err)
            } else {
                Exception::gp(err)
            });
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        let new32 = typ & 8 != 0;
        let new_tss = d.segment(sel);
        if new_tss.limit < if new32 { 0x67 } else { 0x2b } {
            return Err(Exception::ts(err));
        }

        // Save the outgoing task.
        let old = self.s.tr;
        let old32 = old.attr & 0x8 != 0;
        let mut flags = self.s.flags.get();
        if reason == TaskReason::Iret {
            flags &= !FLAG_NT;
        }
        if old32 {
            self.write_sys(bus, old.base + T32_EIP, 4, ret)?;
            self.write_sys(bus, old.base + T32_EFLAGS, 4, flags)?;
            for r in 0..8 {
                let v = self.s.gpr[r];
                self.write_sys(bus, old.base + T32_GPR + 4 * r as u64, 4, v)?;
            }
            for s in 0..6 {
                let v = self.s.seg[s].selector as u64;
                self.write_sys(bus, old.base + T32_SEG + 4 * s as u64, 2, v)?;
            }
        } else {
            self.write_sys(bus, old.base + T16_IP, 2, ret)?;
            self.write_sys(bus, old.base + T16_FLAGS, 2, flags)?;
            for r in 0..8 {
                let v = self.s.gpr[r];
                self.write_sys(bus, old.base + T16_GPR + 2 * r as u64, 2, v)?;
            }
            for s in [ES, CS, SS, DS] {
                let v = self.s.seg[s].selector as u64;
                let slot = [0, 1, 2, 3][s];
                self.write_sys(bus, old.base + T16_SEG + 2 * slot, 2, v)?;
            }
        }
        if matches!(reason, TaskReason::Jmp | TaskReason::Iret) {
            let od = self.fetch_desc(bus, old.selector, Exception::gp)?;
            self.set_busy(bus, &od, false)?;
        }

        // Read the incoming task.
        let b = new_tss.base;
        let (eip, nflags, gprs, segs, ldt, cr3);
        if new32 {
            eip = self.read_sys(bus, b + T32_EIP, 4)?;
            nflags = self.read_sys(bus, b + T32_EFLAGS, 4)?;
            let mut g = [0u64; 8];
            for (r, v) in g.iter_mut().enumerate() {
                *v = self.read_sys(bus, b + T32_GPR + 4 * r as u64, 4)?;
            }
            gprs = g;
            let mut s = [0u16; 6];
            for (k, v) in s.iter_mut().enumerate() {
                *v = self.read_sys(bus, b + T32_SEG + 4 * k as u64, 2)? as u16;
            }
            segs = s;
            ldt = self.read_sys(bus, b + T32_LDT, 2)? as u16;
            cr3 = Some(self.read_sys(bus, b + T32_CR3, 4)?);
        } else {
            eip = self.read_sys(bus, b + T16_IP, 2)?;
            nflags = self.read_sys(bus, b + T16_FLAGS, 2)?;
            let mut g = [0u64; 8];
            for (r, v) in g.iter_mut().enumerate() {
                *v = self.read_sys(bus, b + T16_GPR + 2 * r as u64, 2)?;
            }
            gprs = g;
            let mut s = [0u16; 6];
            for (k, v) in s.iter_mut().take(4).enumerate() {
                *v = self.read_sys(bus, b + T16_SEG + 2 * k as u64, 2)? as u16;
            }
            segs = s;
            ldt = self.read_sys(bus, b + T16_LDT, 2)? as u16;
            cr3 = None;
        }
        if matches!(reason, TaskReason::Call | TaskReason::Int) {
            self.write_sys(bus, b, 2, old.selector as u64)?;
        }
        if reason != TaskReason::Iret {
            self.set_busy(bus, &d, true)?;
        }

        // Commit: from here faults are reported in the new task's context.
        let mut tr = new_tss;
        tr.attr |= 0x2; // busy
        self.s.tr = tr;
        self.s.cr0 |= CR0_TS;
        if let (Some(cr3), true) = (cr3, self.paging()) {
            self.s.cr3 = cr3 & 0xffff_ffff;
            self.load_pdptes(bus);
            self.tlb.flush_nonglobal();
        } else if let Some(cr3) = cr3 {
            self.s.cr3 = cr3 & 0xffff_ffff;
        }
        let mut f = nflags;
        if matches!(reason, TaskReason::Call | TaskReason::Int) {
            f |= FLAG_NT;
        }
        if !new32 {
            f = (self.s.flags.get() & !0xffff) | (f & 0xffff);
        }
        self.s.flags.set_raw(f & crate::ops::stack::FLAGS_WRITABLE);
        self.poll = true;
        for (r, v) in gprs.iter().enumerate() {
            if new32 {
                self.s.gpr[r] = *v;
            } else {
                self.put_reg(r as u8, false, 2, *v);
            }
        }
        self.s.rip = eip;
        // Segment selectors first (so a fault can be reported), then descriptors.
        for (k, &sv) in segs.iter().enumerate() {
            self.s.seg[k].selector = sv;
        }
        self.s.ldtr.selector = ldt;
        self.load_task_ldt(bus, ldt)?;
        if self.s.v86() {
            for (k, &sv) in segs.iter().enumerate() {
                let mut s = Segment::real_mode(sv);
                s.attr |= 3 << 5;
                self.s.seg[k] = s;
            }
            self.s.cpl = 3;
            self.update_mode();
            return Ok(());
        }
        let cs = segs[CS];
        let cpl = (cs & 3) as u8;
        let cd = self.fetch_desc(bus, cs, Exception::ts)?;
        let cerr = cs as u32 & 0xfffc;
        if !cd.is_code()
            || (cd.conforming() && cd.dpl() > cpl)
            || (!cd.conforming() && cd.dpl() != cpl)
        {
            return Err(Exception::ts(cerr));
        }
        if !cd.present() {
            return Err(Exception::np(cerr));
        }
        self.load_cs(cs, &cd, cpl);
        let ss = segs[SS];
        let sd = self.fetch_desc(bus, ss, Exception::ts)?;
        let serr = ss as u32 & 0xfffc;
        if ss & !3 == 0 || (ss & 3) as u8 != cpl || sd.dpl() != cpl || !sd.writable_data() {
            return Err(Exception::ts(serr));
        }
        if !sd.present() {
            return Err(Exception::ss(serr));
        }
        self.s.seg[SS] = sd.segment(ss);
        for s in [ES, DS, FS, GS] {
            let sel = segs[s];
            self.load_seg(bus, s, sel).map_err(|e| match e.vector() {
                crate::exception::GP => Exception::ts(sel as u32 & 0xfffc),
                _ => e,
            })?;
        }
        self.update_mode();
        Ok(())
    }

    fn load_task_ldt(&mut self, bus: &mut dyn Bus, ldt: u16) -> Result<()> {
        if ldt & !3 == 0 {
            self.s.ldtr = Segment::default();
            return Ok(());
        }
        let err = ldt as u32 & 0xfffc;
        if ldt & 4 != 0 {
            return Err(Exception::ts(err));
        }
        let d = self.fetch_desc(bus, ldt, Exception::ts)?;
        if !d.is_system() || d.typ() != 2 {
            return Err(Exception::ts(err));
        }
        if !d.present() {
            return Err(Exception::ts(err));
        }
        self.s.ldtr = d.segment(ldt);
        Ok(())
    }
}
