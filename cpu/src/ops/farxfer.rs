//! Far JMP, far CALL and far RET: real/v86 mode, direct code segments,
//! call gates with stack switch and parameter copy, and task switches.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use crate::ops::desc::Desc;
use crate::ops::task::TaskReason;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    Some(match m {
        Mnemonic::Jmp if inst.is_jmp_far() || inst.is_jmp_far_indirect() => h_jmp_far,
        Mnemonic::Call if inst.is_call_far() || inst.is_call_far_indirect() => h_call_far,
        Mnemonic::Retf => h_retf,
        _ => return None,
    })
}

/// Target of a far JMP/CALL: immediate ptr16:16/32 or m16:16/32.
fn far_target(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<(u16, u64)> {
    if i.op[0].kind == OpKind::Mem {
        let size = i.osize;
        let ea = c.ea(i);
        let seg = i.mem.seg as usize;
        let off = c.read_mem(b, seg, ea, size)?;
        let sel = c.read_mem(b, seg, ea.wrapping_add(size as u64) & size_mask(i.asize), 2)?;
        Ok((sel as u16, off))
    } else {
        Ok((i.imm2 as u16, i.imm))
    }
}

/// Is `off` a valid entry into code segment `seg`? 64-bit code has no
/// limit but needs a canonical address.
fn target_ok(c: &Cpu, seg: &Segment, off: u64) -> bool {
    if c.s.long_mode() && seg.attr & ATTR_L != 0 {
        crate::mmu::canonical(off)
    } else {
        off <= seg.limit as u64
    }
}

fn real_far(c: &mut Cpu, sel: u16, off: u64) -> Result<()> {
    let s = &mut c.s.seg[CS];
    if off > s.limit as u64 {
        return Err(Exception::gp0());
    }
    s.selector = sel;
    s.base = (sel as u64) << 4;
    c.update_seg_ok(CS);
    c.next_rip = off;
    Ok(())
}

fn h_jmp_far(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let (sel, off) = far_target(c, b, i)?;
    let off = off & size_mask(i.osize);
    if !c.s.protected() || c.s.v86() {
        return real_far(c, sel, off);
    }
    c.rollback_on_err(|c| jmp_call_protected(c, b, sel, off, i.osize, false))
}

fn h_call_far(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let (sel, off) = far_target(c, b, i)?;
    let off = off & size_mask(i.osize);
    let size = i.osize;
    if !c.s.protected() || c.s.v86() {
        let ret = c.next_rip;
        let old_cs = c.s.seg[CS].selector as u64;
        c.probe_push(2 * size as u64)?;
        if off > c.s.seg[CS].limit as u64 {
            return Err(Exception::gp0());
        }
        c.push(b, size, old_cs)?;
        c.push(b, size, ret)?;
        return real_far(c, sel, off);
    }
    c.rollback_on_err(|c| jmp_call_protected(c, b, sel, off, size, true))
}

fn jmp_call_protected(
    c: &mut Cpu,
    b: &mut dyn Bus,
    sel: u16,
    off: u64,
    size: u8,
    call: bool,
) -> Result<()> {
    if sel & !3 == 0 {
        return Err(Exception::gp0());
    }
    let d = c.fetch_desc(b, sel, Exception::gp)?;
    let err = sel as u32 & 0xfffc;
    let cpl = c.s.cpl;
    let rpl = (sel & 3) as u8;
    let ret = c.next_rip;
    let old_cs = c.s.seg[CS].selector as u64;
    if d.is_code() {
        if d.conforming() {
            if d.dpl() > cpl {
                return Err(Exception::gp(err));
            }
        } else if rpl > cpl || d.dpl() != cpl {
            return Err(Exception::gp(err));
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        if !target_ok(c, &d.segment(sel), off) {
            return Err(Exception::gp0());
        }
        if call {
            c.probe_push(2 * size as u64)?;
            c.push(b, size, old_cs)?;
            c.push(b, size, ret & size_mask(size))?;
        }
        c.set_desc_accessed(b, &d)?;
        c.load_cs(sel, &d, cpl);
        c.next_rip = off;
        return Ok(());
    }
    if !d.is_system() {
        return Err(Exception::gp(err));
    }
    if c.s.long_mode() {
        // No task switches in long mode; the only gate is the 64-bit call gate.
        if d.typ() != 0xc {
            return Err(Exception::gp(err));
        }
        return call_gate64(c, b, sel, &d, call);
    }
    match d.typ() {
        // Available TSS or task gate.
        1 | 9 | 5 => {
            if d.dpl() < cpl || d.dpl() < rpl {
                return Err(Exception::gp(err));
            }
            let reason = if call {
                TaskReason::Call
            } else {
                TaskReason::Jmp
            };
            c.task_switch(b, sel, reason, ret)?;
            c.next_rip = c.s.rip;
            Ok(())
        }
        // 16- or 32-bit call gate.
        4 | 0xc => {
            if d.dpl() < cpl || d.dpl() < rpl {
                return Err(Exception::gp(err));
            }
            if !d.present() {
                return Err(Exception::np(err));
            }
            let gate32 = d.typ() == 0xc;
            let tsel = d.gate_selector();
            let toff = if gate32 {
                d.gate_offset() as u64
            } else {
                (d.gate_offset() & 0xffff) as u64
            };
            if tsel & !3 == 0 {
                return Err(Exception::gp0());
            }
            let td = c.fetch_desc(b, tsel, Exception::gp)?;
            let terr = tsel as u32 & 0xfffc;
            if !td.is_code() || td.dpl() > cpl {
                return Err(Exception::gp(terr));
            }
            if !call && !td.conforming() && td.dpl() != cpl {
                return Err(Exception::gp(terr));
            }
            if !td.present() {
                return Err(Exception::np(terr));
            }
            if !target_ok(c, &td.segment(tsel), toff) {
                return Err(Exception::gp0());
            }
            let gsize: u8 = if gate32 { 4 } else { 2 };
            if call && !td.conforming() && td.dpl() < cpl {
                let dpl = td.dpl();
                let (nss, nesp) = c.tss_stack(b, dpl)?;
                let serr = nss as u32 & 0xfffc;
                if nss & !3 == 0 {
                    return Err(Exception::ts(serr));
                }
                let sd = c.fetch_desc(b, nss, Exception::ts)?;
                if (nss & 3) as u8 != dpl || sd.dpl() != dpl || !sd.writable_data() {
                    return Err(Exception::ts(serr));
                }
                if !sd.present() {
                    return Err(Exception::ss(serr));
                }
                let nparams = d.gate_params() as u64;
                let mut params = Vec::with_capacity(nparams as usize);
                for k in 0..nparams {
                    params.push(c.peek_stack(b, k * gsize as u64, gsize)?);
                }
                let old_ss = c.s.seg[SS].selector as u64;
                let old_esp = c.s.gpr[ESP];
                c.set_desc_accessed(b, &sd)?;
                c.s.seg[SS] = sd.segment(nss);
                c.s.cpl = dpl;
                c.update_mode();
                c.s.gpr[ESP] = nesp;
                c.push(b, gsize, old_ss)?;
                c.push(b, gsize, old_esp & size_mask(gsize))?;
                for p in params.iter().rev() {
                    c.push(b, gsize, *p)?;
                }
                c.push(b, gsize, old_cs)?;
                c.push(b, gsize, ret & size_mask(gsize))?;
                c.set_desc_accessed(b, &td)?;
                c.load_cs(tsel, &td, dpl);
            } else {
                if call {
                    c.probe_push(2 * gsize as u64)?;
                    c.push(b, gsize, old_cs)?;
                    c.push(b, gsize, ret & size_mask(gsize))?;
                }
                c.set_desc_accessed(b, &td)?;
                c.load_cs(tsel, &td, cpl);
            }
            c.next_rip = toff;
            Ok(())
        }
        _ => Err(Exception::gp(err)),
    }
}

fn h_retf(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.osize;
    let extra = if i.op[0].kind == OpKind::Imm {
        i.imm & 0xffff
    } else {
        0
    };
    let ip = c.peek_stack(b, 0, size)?;
    let sel = c.peek_stack(b, size as u64, size)? as u16;
    if !c.s.protected() || c.s.v86() {
        real_far(c, sel, ip)?;
        c.s.gpr[ESP] = c.sp_add(2 * size as u64 + extra);
        return Ok(());
    }
    c.rollback_on_err(|c| {
        let d = c.return_cs(b, sel)?;
        let rpl = (sel & 3) as u8;
        let cpl = c.s.cpl;
        let ip = ip & size_mask(size);
        if !target_ok(c, &d.segment(sel), ip) {
            return Err(Exception::gp0());
        }
        if rpl == cpl {
            c.s.gpr[ESP] = c.sp_add(2 * size as u64 + extra);
            c.set_desc_accessed(b, &d)?;
            c.load_cs(sel, &d, cpl);
        } else {
            let esp = c.peek_stack(b, 2 * size as u64 + extra, size)?;
            let ss = c.peek_stack(b, 3 * size as u64 + extra, size)? as u16;
            let to64 = c.s.long_mode() && d.segment(sel).attr & ATTR_L != 0;
            let (ss_seg, sd) = crate::ops::long_mode::stack_for_return(c, b, ss, rpl, to64)?;
            c.set_desc_accessed(b, &d)?;
            if let Some(sd) = sd {
                c.set_desc_accessed(b, &sd)?;
            }
            c.load_cs(sel, &d, rpl);
            c.s.seg[SS] = ss_seg;
            c.update_mode();
            let width = if c.mode64 {
                8
            } else if c.s.seg[SS].big() {
                4
            } else {
                2
            };
            c.put_reg(ESP as u8, false, width, esp);
            c.s.gpr[ESP] = c.sp_add(extra);
            c.null_outer_segments();
        }
        c.next_rip = ip;
        Ok(())
    })
}

/// JMP or CALL through a 16-byte 64-bit call gate (long mode only).
fn call_gate64(c: &mut Cpu, b: &mut dyn Bus, sel: u16, d: &Desc, call: bool) -> Result<()> {
    let err = sel as u32 & 0xfffc;
    let cpl = c.s.cpl;
    let rpl = (sel & 3) as u8;
    if d.dpl() < cpl || d.dpl() < rpl {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    c.check_desc16_limit(sel)?;
    let toff = d.gate_offset() as u64 | c.system_desc_upper(b, d.addr, err)?;
    let tsel = d.gate_selector();
    if tsel & !3 == 0 {
        return Err(Exception::gp0());
    }
    let td = c.fetch_desc(b, tsel, Exception::gp)?;
    let terr = tsel as u32 & 0xfffc;
    let tseg = td.segment(tsel);
    if !td.is_code() || td.dpl() > cpl || tseg.attr & ATTR_L == 0 || tseg.big() {
        return Err(Exception::gp(terr));
    }
    if !call && !td.conforming() && td.dpl() != cpl {
        return Err(Exception::gp(terr));
    }
    if !td.present() {
        return Err(Exception::np(terr));
    }
    if !crate::mmu::canonical(toff) {
        return Err(Exception::gp0());
    }
    let ret = c.next_rip;
    let old_cs = c.s.seg[CS].selector as u64;
    let new_cpl = if call && !td.conforming() && td.dpl() < cpl {
        let dpl = td.dpl();
        let rsp = c.tss64_stack(b, dpl, false)?;
        let old_ss = c.s.seg[SS].selector as u64;
        let old_rsp = c.s.gpr[ESP];
        c.s.seg[SS] = Segment {
            selector: dpl as u16,
            ..Segment::default()
        };
        c.s.cpl = dpl;
        // Pushes below go through SS in 64-bit mode: switch modes first.
        c.set_desc_accessed(b, &td)?;
        c.load_cs(tsel, &td, dpl);
        c.s.gpr[ESP] = rsp;
        c.push(b, 8, old_ss)?;
        c.push(b, 8, old_rsp)?;
        dpl
    } else {
        c.set_desc_accessed(b, &td)?;
        c.load_cs(tsel, &td, cpl);
        cpl
    };
    if call {
        c.push(b, 8, old_cs)?;
        c.push(b, 8, ret)?;
    }
    c.load_cs(tsel, &td, new_cpl);
    c.next_rip = toff;
    Ok(())
}
