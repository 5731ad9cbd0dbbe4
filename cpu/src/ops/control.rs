//! Near control transfers: JMP, Jcc, CALL, RET, LOOP/LOOPcc, JCXZ family.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use crate::mmu::canonical;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    let far = inst.is_jmp_far()
        || inst.is_call_far()
        || inst.is_jmp_far_indirect()
        || inst.is_call_far_indirect();
    if far {
        return None;
    }
    Some(match m {
        Jmp if inst.op0_kind() == iced_x86::OpKind::NearBranch16
            || inst.op0_kind() == iced_x86::OpKind::NearBranch32
            || inst.op0_kind() == iced_x86::OpKind::NearBranch64 =>
        {
            h_jmp_rel
        }
        Jmp => h_jmp_ind,
        Jo | Jno | Jb | Jae | Je | Jne | Jbe | Ja | Js | Jns | Jp | Jnp | Jl | Jge | Jle | Jg => {
            jcc_handler(inst)
        }
        Call if inst.op0_kind() == iced_x86::OpKind::NearBranch16
            || inst.op0_kind() == iced_x86::OpKind::NearBranch32
            || inst.op0_kind() == iced_x86::OpKind::NearBranch64 =>
        {
            h_call_rel
        }
        Call => h_call_ind,
        Ret => h_ret,
        Loop => h_loop,
        Loope => h_loope,
        Loopne => h_loopne,
        Jcxz | Jecxz | Jrcxz => h_jcxz,
        _ => return None,
    })
}

impl Cpu {
    /// Check a near branch target against CS's limit (or canonical form) and
    /// set it as the next RIP.
    #[inline]
    pub fn branch_to(&mut self, target: u64) -> Result<()> {
        if self.mode64 {
            if !canonical(target) {
                return Err(Exception::gp0());
            }
        } else if target > self.s.seg[CS].limit as u64 {
            return Err(Exception::gp0());
        }
        self.next_rip = target;
        Ok(())
    }
}

#[inline]
fn rel_target(c: &Cpu, i: &Insn) -> u64 {
    c.next_rip.wrapping_add(i.imm) & size_mask(i.osize)
}

fn h_jmp_rel(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let t = rel_target(c, i);
    c.branch_to(t)
}

fn h_jmp_ind(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let t = c.read_op(b, i, 0)?;
    c.branch_to(t & size_mask(i.osize))
}

/// Jcc with its condition as a constant, so the flag evaluation is only
/// the part that condition needs.
fn jcc_handler(inst: &Instruction) -> Handler {
    macro_rules! by_cc {
        ($($n:literal)*) => {
            match inst.condition_code() as u8 - 1 {
                $($n => h_jcc::<$n>,)*
                _ => unreachable!("Jcc without a condition"),
            }
        };
    }
    by_cc!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

fn h_jcc<const CC: u8>(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if c.s.flags.cond(CC) {
        let t = rel_target(c, i);
        c.branch_to(t)?;
    }
    Ok(())
}

fn h_call_rel(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let ret = c.next_rip;
    let t = rel_target(c, i);
    c.branch_to(t)?;
    c.push(b, i.osize, ret & size_mask(i.osize))
}

fn h_call_ind(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let ret = c.next_rip;
    let t = c.read_op(b, i, 0)? & size_mask(i.osize);
    c.branch_to(t)?;
    c.push(b, i.osize, ret & size_mask(i.osize))
}

fn h_ret(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let t = c.peek_stack(b, 0, i.osize)?;
    c.branch_to(t)?;
    let extra = if i.op[0].kind == OpKind::Imm {
        i.imm & 0xffff
    } else {
        0
    };
    c.s.gpr[ESP] = c.sp_add(i.osize as u64 + extra);
    Ok(())
}

/// Decrement the count register (CX/ECX/RCX by address size); true if nonzero.
#[inline]
fn dec_cx(c: &mut Cpu, asize: u8) -> bool {
    c.s.gpr[ECX] = crate::ops::add_sized(c.s.gpr[ECX], u64::MAX, asize);
    c.s.gpr[ECX] & size_mask(asize) != 0
}

fn h_loop(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let old = c.s.gpr[ECX];
    if dec_cx(c, i.asize) {
        let t = rel_target(c, i);
        if let Err(e) = c.branch_to(t) {
            c.s.gpr[ECX] = old;
            return Err(e);
        }
    }
    Ok(())
}

fn h_loope(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let old = c.s.gpr[ECX];
    if dec_cx(c, i.asize) && c.s.flags.zf() {
        let t = rel_target(c, i);
        if let Err(e) = c.branch_to(t) {
            c.s.gpr[ECX] = old;
            return Err(e);
        }
    }
    Ok(())
}

fn h_loopne(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let old = c.s.gpr[ECX];
    if dec_cx(c, i.asize) && !c.s.flags.zf() {
        let t = rel_target(c, i);
        if let Err(e) = c.branch_to(t) {
            c.s.gpr[ECX] = old;
            return Err(e);
        }
    }
    Ok(())
}

fn h_jcxz(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if c.s.gpr[ECX] & size_mask(i.asize) == 0 {
        let t = rel_target(c, i);
        c.branch_to(t)?;
    }
    Ok(())
}
