//! IA-32e (long) mode: interrupt delivery through 16-byte IDT gates with
//! IST stacks, IRET in long mode, SYSCALL/SYSRET, SWAPGS, RDTSCP, and the
//! 64-bit TSS. Far transfers and descriptor-table loads call in here for
//! their long-mode forms.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use crate::mmu::canonical;
use crate::ops::desc::Desc;
use crate::ops::interrupt::IntKind;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Syscall => h_syscall,
        Sysretq | Sysret => h_sysret,
        Swapgs => h_swapgs,
        Rdtscp => h_rdtscp,
        _ => return None,
    })
}

/// A flat 4 GiB code (`code`) or data segment as SYSCALL/SYSRET and
/// SYSENTER/SYSEXIT load them (no descriptor is read): 64-bit code with
/// `long`, else 32-bit.
pub(crate) fn flat(selector: u16, code: bool, dpl: u8, long: bool) -> Segment {
    let typ = if code { 0xb } else { 0x3 };
    let size_bit = if long { ATTR_L } else { ATTR_DB };
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: ATTR_P | ATTR_S | ATTR_G | size_bit | ((dpl as u16) << 5) | typ,
    }
}

impl Cpu {
    /// Bits 63:32 of the base or offset held in the second half of a
    /// 16-byte system descriptor at `addr`. The type field of that half
    /// must be zero (it would be a legacy descriptor's type there).
    pub fn system_desc_upper(&mut self, bus: &mut dyn Bus, addr: u64, err: u32) -> Result<u64> {
        let upper = self.read_sys(bus, addr + 8, 4)?;
        let check = self.read_sys(bus, addr + 12, 4)?;
        if (check >> 8) & 0x1f != 0 {
            return Err(Exception::gp(err));
        }
        Ok(upper << 32)
    }

    /// Check that a 16-byte system descriptor for `sel` fits in its table.
    pub fn check_desc16_limit(&self, sel: u16) -> Result<()> {
        let limit = if sel & 4 != 0 {
            self.s.ldtr.limit
        } else {
            self.s.gdtr.limit
        } as u64;
        if (sel & !7) as u64 + 15 > limit {
            return Err(Exception::gp(sel as u32 & 0xfffc));
        }
        Ok(())
    }

    /// RSPn (`ist` = false) or ISTn (`ist` = true) from the 64-bit TSS.
    pub fn tss64_stack(&mut self, bus: &mut dyn Bus, n: u8, ist: bool) -> Result<u64> {
        let off = if ist {
            0x24 + 8 * (n as u64 - 1)
        } else {
            4 + 8 * n as u64
        };
        let tr = self.s.tr;
        if off + 7 > tr.limit as u64 {
            return Err(Exception::ts(tr.selector as u32 & 0xfffc));
        }
        let rsp = self.read_sys(bus, tr.base + off, 8)?;
        if !canonical(rsp) {
            return Err(Exception::ss(0));
        }
        Ok(rsp)
    }

    /// Push onto a stack given by linear RSP, as interrupt delivery does
    /// (the stack segment is not consulted in long mode).
    fn push_lin(&mut self, bus: &mut dyn Bus, rsp: &mut u64, v: u64, user: bool) -> Result<()> {
        let n = rsp.wrapping_sub(8);
        if !canonical(n) {
            return Err(Exception::ss(0));
        }
        self.write_lin(bus, n, 8, v, user)?;
        *rsp = n;
        Ok(())
    }

    /// Deliver an interrupt or exception in long mode (SDM Vol. 3A 6.14).
    pub(crate) fn deliver_long(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        err: Option<u32>,
        kind: IntKind,
        ret: u64,
    ) -> Result<()> {
        let ext: u32 = (kind != IntKind::Software) as u32;
        let idt_err = (vector as u32) * 8 + 2 + ext;
        let off = vector as u64 * 16;
        if off + 15 > self.s.idtr.limit as u64 {
            return Err(Exception::gp(idt_err));
        }
        let addr = self.s.idtr.base.wrapping_add(off);
        let lo = self.read_sys(bus, addr, 4)? as u32;
        let hi = self.read_sys(bus, addr + 4, 4)? as u32;
        let gate = Desc { lo, hi, addr };
        // Only 64-bit interrupt and trap gates exist in long mode.
        if !gate.is_system() || !matches!(gate.typ(), 0xe | 0xf) {
            return Err(Exception::gp(idt_err));
        }
        if kind == IntKind::Software && gate.dpl() < self.s.cpl {
            return Err(Exception::gp(idt_err));
        }
        if !gate.present() {
            return Err(Exception::np(idt_err));
        }
        let target = gate.gate_offset() as u64 | self.system_desc_upper(bus, addr, idt_err)?;
        let ist = (hi & 7) as u8;
        let sel = gate.gate_selector();
        if sel & !3 == 0 {
            return Err(Exception::gp(ext));
        }
        let d = self.fetch_desc(bus, sel, |e| Exception::gp(e + ext))?;
        let serr = (sel as u32 & 0xfffc) + ext;
        let cs = d.segment(sel);
        // The handler must be 64-bit code (L=1, D=0).
        if !d.is_code() || d.dpl() > self.s.cpl || cs.attr & ATTR_L == 0 || cs.big() {
            return Err(Exception::gp(serr));
        }
        if !d.present() {
            return Err(Exception::np(serr));
        }
        if !canonical(target) {
            return Err(Exception::gp(ext));
        }
        let new_cpl = if d.conforming() { self.s.cpl } else { d.dpl() };
        let old_ss = self.s.seg[SS].selector as u64;
        let old_rsp = self.s.gpr[ESP];
        let old_cs = self.s.seg[CS].selector as u64;
        let old_flags = self.flags_image();
        let mut rsp = if ist != 0 {
            self.tss64_stack(bus, ist, true)?
        } else if new_cpl < self.s.cpl {
            self.tss64_stack(bus, new_cpl, false)?
        } else {
            old_rsp
        };
        rsp &= !0xf;
        let user = new_cpl == 3;
        self.push_lin(bus, &mut rsp, old_ss, user)?;
        self.push_lin(bus, &mut rsp, old_rsp, user)?;
        self.push_lin(bus, &mut rsp, old_flags, user)?;
        self.push_lin(bus, &mut rsp, old_cs, user)?;
        self.push_lin(bus, &mut rsp, ret, user)?;
        if let Some(code) = err {
            self.push_lin(bus, &mut rsp, code as u64, user)?;
        }
        if new_cpl < self.s.cpl {
            // The inner stack segment is the null selector with RPL = CPL.
            self.s.seg[SS] = Segment {
                selector: new_cpl as u16,
                ..Segment::default()
            };
        }
        self.set_desc_accessed(bus, &d)?;
        self.load_cs(sel, &d, new_cpl);
        self.s.gpr[ESP] = rsp;
        self.s.rip = target;
        for f in [FLAG_TF, FLAG_NT, FLAG_RF, FLAG_VM] {
            self.s.flags.set_bit(f, false);
        }
        if gate.typ() & 1 == 0 {
            self.s.flags.set_bit(FLAG_IF, false);
        }
        self.update_mode();
        Ok(())
    }
}

/// IRET with EFER.LMA set (SDM Vol. 2A, IRET, "IA-32e-MODE"). `size` is
/// the operand size; SS:RSP are popped whenever the IRET runs in 64-bit
/// mode or returns to an outer ring.
pub(crate) fn iret_long(c: &mut Cpu, b: &mut dyn Bus, size: u8) -> Result<()> {
    if c.s.flags.raw_bits() & FLAG_NT != 0 {
        return Err(Exception::gp0());
    }
    let sz = size as u64;
    let ip = c.peek_stack(b, 0, size)?;
    let cs = c.peek_stack(b, sz, size)? as u16;
    let fl = c.peek_stack(b, 2 * sz, size)?;
    if fl & FLAG_VM != 0 {
        // There is no virtual-8086 mode in long mode.
        return Err(Exception::gp0());
    }
    let d = c.return_cs(b, cs)?;
    let rpl = (cs & 3) as u8;
    let err = cs as u32 & 0xfffc;
    let cpl = c.s.cpl;
    let seg = d.segment(cs);
    let to64 = seg.attr & ATTR_L != 0;
    if to64 && seg.big() {
        return Err(Exception::gp(err));
    }
    let ip = ip & size_mask(size);
    if to64 {
        if !canonical(ip) {
            return Err(Exception::gp0());
        }
    } else if ip > seg.limit as u64 {
        return Err(Exception::gp0());
    }
    let pop_stack = c.mode64 || rpl != cpl;
    let (new_rsp, ss_seg) = if pop_stack {
        let rsp = c.peek_stack(b, 3 * sz, size)?;
        let ss = c.peek_stack(b, 4 * sz, size)? as u16;
        let ss_seg = stack_for_return(c, b, ss, rpl, to64)?;
        (Some(rsp), Some(ss_seg))
    } else {
        (None, None)
    };
    c.load_flags(fl, size);
    c.set_desc_accessed(b, &d)?;
    c.load_cs(cs, &d, rpl);
    match (new_rsp, ss_seg) {
        (Some(rsp), Some((ss_seg, ss_desc))) => {
            if let Some(sd) = ss_desc {
                c.set_desc_accessed(b, &sd)?;
            }
            c.s.seg[SS] = ss_seg;
            c.update_mode();
            c.s.gpr[ESP] = if size == 8 {
                rsp
            } else {
                rsp & size_mask(size)
            };
        }
        _ => {
            c.s.gpr[ESP] = c.sp_add(3 * sz);
        }
    }
    if rpl > cpl {
        c.null_outer_segments();
    }
    c.next_rip = ip;
    Ok(())
}

/// The stack segment an IRET or far RET in long mode returns to: a null
/// selector is allowed for 64-bit code outside ring 3.
pub(crate) fn stack_for_return(
    c: &mut Cpu,
    b: &mut dyn Bus,
    ss: u16,
    rpl: u8,
    to64: bool,
) -> Result<(Segment, Option<Desc>)> {
    if ss & !3 == 0 {
        if to64 && rpl != 3 && (ss & 3) as u8 == rpl {
            return Ok((
                Segment {
                    selector: ss,
                    ..Segment::default()
                },
                None,
            ));
        }
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
    let mut seg = sd.segment(ss);
    seg.attr |= ATTR_ACCESSED;
    Ok((seg, Some(sd)))
}

fn h_syscall(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    // Intel processors run SYSCALL only in 64-bit mode.
    if !c.mode64 || c.s.efer & EFER_SCE == 0 {
        return Err(Exception::ud());
    }
    let sel = ((c.s.star >> 32) & 0xfffc) as u16;
    c.s.gpr[ECX] = c.next_rip;
    let fl = c.s.flags.get() & !FLAG_RF;
    c.s.gpr[11] = fl;
    c.s.flags.set_raw(fl & !c.s.sfmask & !FLAG_RF);
    c.s.seg[CS] = flat(sel, true, 0, true);
    c.s.seg[SS] = flat(sel + 8, false, 0, false);
    c.s.cpl = 0;
    c.update_mode();
    c.next_rip = c.s.lstar;
    c.poll = true;
    Ok(())
}

fn h_sysret(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if !c.mode64 || c.s.efer & EFER_SCE == 0 {
        return Err(Exception::ud());
    }
    if c.s.cpl != 0 {
        return Err(Exception::gp0());
    }
    let base = ((c.s.star >> 48) & 0xffff) as u16;
    let to64 = i.osize == 8;
    let rip = if to64 {
        // Intel checks RCX before leaving ring 0 (the #GP is taken there).
        if !canonical(c.s.gpr[ECX]) {
            return Err(Exception::gp0());
        }
        c.s.gpr[ECX]
    } else {
        c.s.gpr[ECX] & 0xffff_ffff
    };
    let cs_sel = if to64 { base + 16 } else { base } | 3;
    let fl = (c.s.gpr[11] & crate::ops::stack::FLAGS_WRITABLE & !(FLAG_RF | FLAG_VM)) | 2;
    c.s.flags.set_raw(fl);
    c.s.seg[CS] = flat(cs_sel, true, 3, to64);
    // SYSRET leaves the SS descriptor cache as a flat ring-3 data segment.
    c.s.seg[SS] = flat((base + 8) | 3, false, 3, false);
    c.s.cpl = 3;
    c.update_mode();
    c.next_rip = rip;
    c.poll = true;
    Ok(())
}

fn h_swapgs(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if !c.mode64 {
        return Err(Exception::ud());
    }
    c.require_cpl0()?;
    std::mem::swap(&mut c.s.seg[GS].base, &mut c.s.kernel_gs_base);
    c.update_seg_ok(GS);
    Ok(())
}

fn h_rdtscp(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if c.s.cr4 & CR4_TSD != 0 && c.s.protected() && c.s.cpl != 0 {
        return Err(Exception::gp0());
    }
    let t = c.tsc(b);
    c.s.gpr[EAX] = t & 0xffff_ffff;
    c.s.gpr[EDX] = t >> 32;
    c.s.gpr[ECX] = c.s.tsc_aux & 0xffff_ffff;
    Ok(())
}
