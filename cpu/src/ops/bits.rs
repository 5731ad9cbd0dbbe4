//! Bit test and scan: BT/BTS/BTR/BTC, BSF/BSR, POPCNT, LZCNT/TZCNT.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Result;
use crate::flags::{sign_extend, size_mask};
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Bt => h_bt,
        Bts => h_bts,
        Btr => h_btr,
        Btc => h_btc,
        // Without BMI1/ABM in CPUID, F3 0F BC/BD are BSF/BSR with an
        // ignored REP prefix, as on the processors this CPU reports.
        Bsf | Tzcnt => h_bsf,
        Bsr | Lzcnt => h_bsr,
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum BitOp {
    Test,
    Set,
    Reset,
    Complement,
}

fn bit_op(c: &mut Cpu, b: &mut dyn Bus, i: &Insn, op: BitOp) -> Result<()> {
    let size = i.op[0].size;
    let bits = size as u64 * 8;
    let off = c.read_op(b, i, 1)?;
    let (val, bit, addr) = if i.op[0].kind == OpKind::Mem {
        let ea = c.ea(i);
        if i.op[1].kind == OpKind::Reg {
            // Register offsets address memory beyond the operand (signed).
            let soff = sign_extend(off, i.op[1].size) as i64;
            let disp = (soff >> bits.trailing_zeros()) * size as i64;
            let a = ea.wrapping_add(disp as u64) & size_mask(i.asize);
            let bit = (soff as u64) & (bits - 1);
            (c.read_mem(b, i.mem.seg as usize, a, size)?, bit, Some(a))
        } else {
            let bit = off & (bits - 1);
            (c.read_mem(b, i.mem.seg as usize, ea, size)?, bit, Some(ea))
        }
    } else {
        (c.read_op(b, i, 0)?, off & (bits - 1), None)
    };
    let cf = (val >> bit) & 1 != 0;
    let nv = match op {
        BitOp::Test => None,
        BitOp::Set => Some(val | 1 << bit),
        BitOp::Reset => Some(val & !(1 << bit)),
        BitOp::Complement => Some(val ^ 1 << bit),
    };
    if let Some(nv) = nv {
        match addr {
            Some(a) => c.write_mem(b, i.mem.seg as usize, a, size, nv)?,
            None => c.write_op(b, i, 0, nv)?,
        }
    }
    c.s.flags.set_arith(FLAG_CF, if cf { FLAG_CF } else { 0 });
    Ok(())
}

fn h_bt(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    bit_op(c, b, i, BitOp::Test)
}
fn h_bts(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    bit_op(c, b, i, BitOp::Set)
}
fn h_btr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    bit_op(c, b, i, BitOp::Reset)
}
fn h_btc(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    bit_op(c, b, i, BitOp::Complement)
}

fn h_bsf(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.read_op(b, i, 1)?;
    if v == 0 {
        // Destination left unchanged (what current processors do).
        c.s.flags.set_arith(FLAG_ZF, FLAG_ZF);
        return Ok(());
    }
    c.write_op(b, i, 0, v.trailing_zeros() as u64)?;
    c.s.flags.set_arith(FLAG_ZF, 0);
    Ok(())
}

fn h_bsr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.read_op(b, i, 1)?;
    if v == 0 {
        c.s.flags.set_arith(FLAG_ZF, FLAG_ZF);
        return Ok(());
    }
    c.write_op(b, i, 0, 63 - v.leading_zeros() as u64)?;
    c.s.flags.set_arith(FLAG_ZF, 0);
    Ok(())
}
