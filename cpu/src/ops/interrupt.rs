//! Interrupt and exception delivery in real, protected and virtual-8086
//! mode (IVT, IDT interrupt/trap/task gates, privilege change through the
//! TSS), and the INT n / INT3 / INTO / INT1 / BOUND / IRET instructions.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{self, Exception, Result};
use crate::flags::{sign_extend, size_mask};
use crate::insn::*;
use crate::ops::task::TaskReason;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Int => h_int,
        Int3 => h_int3,
        Into => h_into,
        Int1 => h_int1,
        Bound => h_bound,
        Iret | Iretd | Iretq => h_iret,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IntKind {
    /// Processor exception (EXT=1 in error codes).
    Exception,
    /// INT n, INT3, INTO: gate DPL is checked against CPL.
    Software,
    /// INTR, NMI, INT1: no DPL check, EXT=1.
    External,
}

impl Cpu {
    /// Deliver an interrupt or exception. `ret` is the return address pushed
    /// (the faulting instruction for faults, the next one for traps). On
    /// success CS:RIP point at the handler. On failure the CPU state is
    /// unchanged and the new fault is returned (for #DF handling).
    pub fn deliver(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        err: Option<u32>,
        kind: IntKind,
        ret: u64,
    ) -> Result<()> {
        self.rollback_on_err(|c| {
            if c.s.long_mode() {
                c.deliver_long(bus, vector, err, kind, ret)
            } else if c.s.protected() {
                c.deliver_protected(bus, vector, err, kind, ret)
            } else {
                c.deliver_real(bus, vector, ret)
            }
        })?;
        self.halted = false;
        Ok(())
    }

    fn deliver_real(&mut self, bus: &mut dyn Bus, vector: u8, ret: u64) -> Result<()> {
        let off = vector as u64 * 4;
        if off + 3 > self.s.idtr.limit as u64 {
            return Err(Exception::gp((vector as u32) * 8 + 2));
        }
        let ip = self.read_sys(bus, self.s.idtr.base + off, 2)?;
        let cs = self.read_sys(bus, self.s.idtr.base + off + 2, 2)?;
        let flags = self.flags_image();
        self.push(bus, 2, flags & 0xffff)?;
        self.push(bus, 2, self.s.seg[CS].selector as u64)?;
        self.push(bus, 2, ret & 0xffff)?;
        self.s.flags.set_bit(FLAG_IF, false);
        self.s.flags.set_bit(FLAG_TF, false);
        self.s.flags.set_bit(FLAG_AC, false);
        self.s.flags.set_bit(FLAG_RF, false);
        let c = &mut self.s.seg[CS];
        c.selector = cs as u16;
        c.base = cs << 4;
        self.update_seg_ok(CS);
        self.s.rip = ip;
        Ok(())
    }

    fn deliver_protected(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        err: Option<u32>,
        kind: IntKind,
        ret: u64,
    ) -> Result<()> {
        let ext: u32 = (kind != IntKind::Software) as u32;
        let idt_err = (vector as u32) * 8 + 2 + ext;
        let off = vector as u64 * 8;
        if off + 7 > self.s.idtr.limit as u64 {
            return Err(Exception::gp(idt_err));
        }
        let addr = self.s.idtr.base + off;
        let lo = self.read_sys(bus, addr, 4)? as u32;
        let hi = self.read_sys(bus, addr + 4, 4)? as u32;
        let gate = crate::ops::desc::Desc { lo, hi, addr };
        let typ = gate.typ();
        if !gate.is_system() || !matches!(typ, 5 | 6 | 7 | 0xe | 0xf) {
            return Err(Exception::gp(idt_err));
        }
        if kind == IntKind::Software && gate.dpl() < self.s.cpl {
            return Err(Exception::gp(idt_err));
        }
        if !gate.present() {
            return Err(Exception::np(idt_err));
        }
        if typ == 5 {
            let tss = gate.gate_selector();
            self.task_switch(bus, tss, TaskReason::Int, ret)?;
            if let Some(code) = err {
                let size = if self.s.tr.attr & 0x8 != 0 { 4 } else { 2 };
                self.push(bus, size, code as u64)?;
            }
            return Ok(());
        }
        let sel = gate.gate_selector();
        if sel & !3 == 0 {
            return Err(Exception::gp(ext));
        }
        let d = self.fetch_desc(bus, sel, |e| Exception::gp(e + ext))?;
        let serr = (sel as u32 & 0xfffc) + ext;
        if !d.is_code() || d.dpl() > self.s.cpl {
            return Err(Exception::gp(serr));
        }
        if !d.present() {
            return Err(Exception::np(serr));
        }
        let gate32 = typ & 8 != 0;
        let size: u8 = if gate32 { 4 } else { 2 };
        let target = if gate32 {
            gate.gate_offset() as u64
        } else {
            (gate.gate_offset() & 0xffff) as u64
        };
        let from_v86 = self.s.v86();
        let old_flags = self.flags_image() | if from_v86 { FLAG_VM } else { 0 };
        let old_cs = self.s.seg[CS].selector as u64;
        let dpl = d.dpl();
        if !d.conforming() && dpl < self.s.cpl {
            if from_v86 && dpl != 0 {
                return Err(Exception::gp(serr));
            }
            let (new_ss, new_esp) = self.tss_stack(bus, dpl)?;
            let ss_err = (new_ss as u32 & 0xfffc) + ext;
            if new_ss & !3 == 0 {
                return Err(Exception::ts(ext));
            }
            let sd = self.fetch_desc(bus, new_ss, |e| Exception::ts(e + ext))?;
            if (new_ss & 3) as u8 != dpl || sd.dpl() != dpl || !sd.writable_data() {
                return Err(Exception::ts(ss_err));
            }
            if !sd.present() {
                return Err(Exception::ss(ss_err));
            }
            let old_ss = self.s.seg[SS].selector as u64;
            let old_esp = self.s.gpr[ESP];
            let old_segs = [
                self.s.seg[GS].selector,
                self.s.seg[FS].selector,
                self.s.seg[DS].selector,
                self.s.seg[ES].selector,
            ];
            // Switch to the inner stack; the snapshot in `deliver` undoes
            // all of this if a push faults.
            self.set_desc_accessed(bus, &sd)?;
            self.s.seg[SS] = sd.segment(new_ss);
            self.s.flags.set_bit(FLAG_VM, false);
            self.s.cpl = dpl;
            self.update_mode();
            self.s.gpr[ESP] = new_esp;
            if from_v86 {
                for s in old_segs {
                    self.push(bus, size, s as u64)?;
                }
            }
            self.push(bus, size, old_ss)?;
            self.push(bus, size, old_esp & size_mask(size))?;
            if from_v86 {
                for s in [ES, DS, FS, GS] {
                    self.s.seg[s] = Segment::default();
                }
            }
        } else {
            if from_v86 {
                return Err(Exception::gp(serr));
            }
        }
        self.push(bus, size, old_flags & size_mask(size))?;
        self.push(bus, size, old_cs)?;
        self.push(bus, size, ret & size_mask(size))?;
        if let Some(code) = err {
            self.push(bus, size, code as u64)?;
        }
        let new_cpl = if d.conforming() { self.s.cpl } else { dpl };
        let cs_seg = d.segment(sel);
        if target > cs_seg.limit as u64 {
            return Err(Exception::gp(ext));
        }
        self.set_desc_accessed(bus, &d)?;
        self.load_cs(sel, &d, new_cpl);
        self.s.rip = target;
        for f in [FLAG_TF, FLAG_NT, FLAG_RF, FLAG_VM] {
            self.s.flags.set_bit(f, false);
        }
        if typ & 1 == 0 {
            self.s.flags.set_bit(FLAG_IF, false);
        }
        self.update_mode();
        Ok(())
    }

    /// Software interrupt from an instruction handler: return address is the
    /// next instruction.
    pub fn soft_int(&mut self, bus: &mut dyn Bus, vector: u8, kind: IntKind) -> Result<()> {
        let ret = self.next_rip;
        self.deliver(bus, vector, None, kind, ret)?;
        self.next_rip = self.s.rip;
        Ok(())
    }
}

fn h_int(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if c.s.v86() && c.s.iopl() < 3 {
        return Err(Exception::gp0());
    }
    c.soft_int(b, i.imm as u8, IntKind::Software)
}

fn h_int3(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.soft_int(b, exception::BP, IntKind::Software)
}

fn h_int1(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.soft_int(b, exception::DB, IntKind::External)
}

fn h_into(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if c.s.flags.of() {
        c.soft_int(b, exception::OF, IntKind::Software)?;
    }
    Ok(())
}

fn h_bound(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if i.op[1].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let size = i.op[0].size;
    let idx = sign_extend(c.read_op(b, i, 0)?, size) as i64;
    let ea = c.ea(i);
    let seg = i.mem.seg as usize;
    let lo = sign_extend(c.read_mem(b, seg, ea, size)?, size) as i64;
    let hi_off = ea.wrapping_add(size as u64) & size_mask(i.asize);
    let hi = sign_extend(c.read_mem(b, seg, hi_off, size)?, size) as i64;
    if idx < lo || idx > hi {
        return Err(Exception::new(exception::BR));
    }
    Ok(())
}

fn h_iret(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.poll = true;
    c.rollback_on_err(|c| iret(c, b, i.osize))
}

fn iret(c: &mut Cpu, b: &mut dyn Bus, size: u8) -> Result<()> {
    if c.s.long_mode() {
        return crate::ops::long_mode::iret_long(c, b, size);
    }
    if !c.s.protected() {
        let ip = c.peek_stack(b, 0, size)?;
        let cs = c.peek_stack(b, size as u64, size)? as u16;
        let fl = c.peek_stack(b, 2 * size as u64, size)?;
        if ip > c.s.seg[CS].limit as u64 {
            return Err(Exception::gp0());
        }
        c.s.gpr[ESP] = c.sp_add(3 * size as u64);
        let s = &mut c.s.seg[CS];
        s.selector = cs;
        s.base = (cs as u64) << 4;
        c.update_seg_ok(CS);
        c.load_flags(fl, size);
        c.next_rip = ip;
        return Ok(());
    }
    if c.s.v86() {
        if c.s.iopl() < 3 {
            return Err(Exception::gp0());
        }
        let ip = c.peek_stack(b, 0, size)?;
        let cs = c.peek_stack(b, size as u64, size)? as u16;
        let fl = c.peek_stack(b, 2 * size as u64, size)?;
        if ip > 0xffff {
            return Err(Exception::gp0());
        }
        c.s.gpr[ESP] = c.sp_add(3 * size as u64);
        let mut s = Segment::real_mode(cs);
        s.attr |= 3 << 5;
        c.s.seg[CS] = s;
        c.update_seg_ok(CS);
        // IOPL is kept; VM stays set.
        let keep = FLAG_IOPL | FLAG_VM | FLAG_VIP | FLAG_VIF;
        let mask = crate::ops::stack::FLAGS_WRITABLE & !keep & size_mask(size);
        let cur = c.s.flags.get();
        c.s.flags.set_raw((cur & !mask) | (fl & mask));
        c.next_rip = ip;
        return Ok(());
    }
    if c.s.flags.raw_bits() & FLAG_NT != 0 {
        let link = c.read_sys(b, c.s.tr.base, 2)? as u16;
        c.task_switch(b, link, TaskReason::Iret, c.next_rip)?;
        c.next_rip = c.s.rip;
        return Ok(());
    }
    let ip = c.peek_stack(b, 0, size)?;
    let cs = c.peek_stack(b, size as u64, size)? as u16;
    let fl = c.peek_stack(b, 2 * size as u64, size)?;
    if size == 4 && fl & FLAG_VM != 0 && c.s.cpl == 0 {
        return iret_to_v86(c, b, ip, cs, fl);
    }
    let d = c.return_cs(b, cs)?;
    let rpl = (cs & 3) as u8;
    let cpl = c.s.cpl;
    let ip = ip & size_mask(size);
    if ip > d.segment(cs).limit as u64 {
        return Err(Exception::gp0());
    }
    if rpl == cpl {
        c.s.gpr[ESP] = c.sp_add(3 * size as u64);
        c.load_flags(fl, size);
        c.set_desc_accessed(b, &d)?;
        c.load_cs(cs, &d, rpl);
    } else {
        let esp = c.peek_stack(b, 3 * size as u64, size)?;
        let ss = c.peek_stack(b, 4 * size as u64, size)? as u16;
        if ss & !3 == 0 {
            return Err(Exception::gp0());
        }
        let sd = c.fetch_desc(b, ss, Exception::gp)?;
        let serr = ss as u32 & 0xfffc;
        if (ss & 3) as u8 != rpl || sd.dpl() != rpl || !sd.writable_data() {
            return Err(Exception::gp(serr));
        }
        if !sd.present() {
            return Err(Exception::ss(serr));
        }
        c.load_flags(fl, size);
        c.set_desc_accessed(b, &d)?;
        c.set_desc_accessed(b, &sd)?;
        c.load_cs(cs, &d, rpl);
        c.s.seg[SS] = sd.segment(ss);
        c.put_reg(
            ESP as u8,
            false,
            if sd.segment(ss).big() { 4 } else { 2 },
            esp,
        );
        c.update_mode();
        c.null_outer_segments();
    }
    c.next_rip = ip;
    Ok(())
}

fn iret_to_v86(c: &mut Cpu, b: &mut dyn Bus, ip: u64, cs: u16, fl: u64) -> Result<()> {
    let esp = c.peek_stack(b, 12, 4)?;
    let ss = c.peek_stack(b, 16, 4)? as u16;
    let es = c.peek_stack(b, 20, 4)? as u16;
    let ds = c.peek_stack(b, 24, 4)? as u16;
    let fs = c.peek_stack(b, 28, 4)? as u16;
    let gs = c.peek_stack(b, 32, 4)? as u16;
    let mask = crate::ops::stack::FLAGS_WRITABLE;
    c.s.flags.set_raw(fl & mask);
    for (s, sel) in [(CS, cs), (SS, ss), (ES, es), (DS, ds), (FS, fs), (GS, gs)] {
        let mut seg = Segment::real_mode(sel);
        seg.attr |= 3 << 5;
        c.s.seg[s] = seg;
    }
    c.s.gpr[ESP] = esp & 0xffff_ffff;
    c.s.cpl = 3;
    c.update_mode();
    c.next_rip = ip & 0xffff;
    Ok(())
}

impl Cpu {
    /// After a return to an outer ring: data segments the new CPL may not
    /// use become null (SDM: RET/IRET "if DPL < CPL ... load null").
    pub fn null_outer_segments(&mut self) {
        let cpl = self.s.cpl;
        for s in [ES, DS, FS, GS] {
            let seg = &self.s.seg[s];
            let conforming_code = seg.is_code() && seg.attr & 0x4 != 0;
            if seg.present() && !conforming_code && seg.dpl() < cpl {
                self.s.seg[s] = Segment {
                    selector: 0,
                    ..Segment::default()
                };
                self.update_seg_ok(s);
            }
        }
    }
}
