//! SYSENTER/SYSEXIT (SDM Vol. 2B): fast ring 3 <-> ring 0 transitions to
//! flat segments derived from IA32_SYSENTER_CS, in legacy protected mode,
//! compatibility mode and 64-bit mode.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::insn::*;
use crate::mmu::canonical;
use crate::ops::long_mode::flat;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Sysenter => h_sysenter,
        Sysexit | Sysexitq => h_sysexit,
        _ => return None,
    })
}

fn h_sysenter(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let cs = (c.s.sysenter_cs & 0xfffc) as u16;
    if !c.s.protected() || cs == 0 {
        return Err(Exception::gp0());
    }
    let long = c.s.long_mode();
    for f in [FLAG_VM, FLAG_IF, FLAG_RF] {
        c.s.flags.set_bit(f, false);
    }
    c.s.seg[CS] = flat(cs, true, 0, long);
    c.s.seg[SS] = flat(cs + 8, false, 0, false);
    c.s.cpl = 0;
    c.update_mode();
    let mask = if long { u64::MAX } else { 0xffff_ffff };
    c.s.gpr[ESP] = c.s.sysenter_esp & mask;
    c.next_rip = c.s.sysenter_eip & mask;
    c.poll = true;
    Ok(())
}

fn h_sysexit(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let base = (c.s.sysenter_cs & 0xfffc) as u16;
    if !c.s.protected() || c.s.v86() || base == 0 || c.s.cpl != 0 {
        return Err(Exception::gp0());
    }
    let to64 = i.osize == 8;
    let (cs, rip, rsp) = if to64 {
        let (rip, rsp) = (c.s.gpr[EDX], c.s.gpr[ECX]);
        if !canonical(rip) || !canonical(rsp) {
            return Err(Exception::gp0());
        }
        (base + 32, rip, rsp)
    } else {
        (
            base + 16,
            c.s.gpr[EDX] & 0xffff_ffff,
            c.s.gpr[ECX] & 0xffff_ffff,
        )
    };
    c.s.seg[CS] = flat(cs | 3, true, 3, to64);
    c.s.seg[SS] = flat((cs + 8) | 3, false, 3, false);
    c.s.cpl = 3;
    c.update_mode();
    c.s.gpr[ESP] = rsp;
    c.next_rip = rip;
    c.poll = true;
    Ok(())
}
