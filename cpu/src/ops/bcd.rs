//! Decimal adjust: DAA, DAS, AAA, AAS, AAM, AAD (Intel SDM Vol. 2 pseudocode).

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::parity;
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Daa => h_daa,
        Das => h_das,
        Aaa => h_aaa,
        Aas => h_aas,
        Aam => h_aam,
        Aad => h_aad,
        _ => return None,
    })
}

/// SF/ZF/PF from an 8-bit result plus explicit CF/AF; OF cleared.
fn set_flags8(c: &mut Cpu, al: u8, cf: bool, af: bool) {
    let mut f = 0;
    if cf {
        f |= FLAG_CF;
    }
    if af {
        f |= FLAG_AF;
    }
    if al == 0 {
        f |= FLAG_ZF;
    }
    if al & 0x80 != 0 {
        f |= FLAG_SF;
    }
    if parity(al as u64) {
        f |= FLAG_PF;
    }
    c.s.flags.set_arith(ARITH_FLAGS, f);
}

fn al(c: &Cpu) -> u8 {
    c.s.gpr[EAX] as u8
}

fn h_daa(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let old_al = al(c);
    let old_cf = c.s.flags.cf();
    let mut a = old_al;
    // The carry out of the low-digit adjust is superseded by the high-digit
    // rule, so only the second step decides CF.
    let af = if a & 0xf > 9 || c.s.flags.af() {
        a = a.wrapping_add(6);
        true
    } else {
        false
    };
    let cf = old_al > 0x99 || old_cf;
    if cf {
        a = a.wrapping_add(0x60);
    }
    c.put_reg(EAX as u8, false, 1, a as u64);
    set_flags8(c, a, cf, af);
    Ok(())
}

fn h_das(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let old_al = al(c);
    let old_cf = c.s.flags.cf();
    let mut a = old_al;
    let mut cf = false;
    let af = if a & 0xf > 9 || c.s.flags.af() {
        let (v, borrow) = a.overflowing_sub(6);
        a = v;
        cf = old_cf || borrow;
        true
    } else {
        false
    };
    if old_al > 0x99 || old_cf {
        a = a.wrapping_sub(0x60);
        cf = true;
    }
    c.put_reg(EAX as u8, false, 1, a as u64);
    set_flags8(c, a, cf, af);
    Ok(())
}

fn h_aaa(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let mut ax = c.s.gpr[EAX] as u16;
    let adj = ax & 0xf > 9 || c.s.flags.af();
    if adj {
        ax = ax.wrapping_add(0x106);
    }
    ax &= 0xff0f;
    c.put_reg(EAX as u8, false, 2, ax as u64);
    set_flags8(c, ax as u8, adj, adj);
    Ok(())
}

fn h_aas(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let mut ax = c.s.gpr[EAX] as u16;
    let adj = ax & 0xf > 9 || c.s.flags.af();
    if adj {
        ax = ax.wrapping_sub(6);
        ax = ax.wrapping_sub(0x100);
    }
    ax &= 0xff0f;
    c.put_reg(EAX as u8, false, 2, ax as u64);
    set_flags8(c, ax as u8, adj, adj);
    Ok(())
}

fn h_aam(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let base = i.imm as u8;
    if base == 0 {
        return Err(Exception::de());
    }
    let a = al(c);
    let ah = a / base;
    let al = a % base;
    c.put_reg(EAX as u8, false, 2, (ah as u64) << 8 | al as u64);
    set_flags8(c, al, false, false);
    Ok(())
}

fn h_aad(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let base = i.imm as u8;
    let a = al(c);
    let ah = (c.s.gpr[EAX] >> 8) as u8;
    let al = a.wrapping_add(ah.wrapping_mul(base));
    c.put_reg(EAX as u8, false, 2, al as u64);
    set_flags8(c, al, false, false);
    Ok(())
}
