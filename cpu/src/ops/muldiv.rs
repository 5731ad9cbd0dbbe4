//! MUL, IMUL (one, two and three operands), DIV, IDIV.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::{sign_bit, sign_extend, size_mask};
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    Some(match m {
        Mnemonic::Mul => h_mul,
        Mnemonic::Imul if inst.op_count() == 1 => h_imul1,
        Mnemonic::Imul
            if inst.op0_register().is_gpr32()
                && (inst.op_count() == 2 || inst.op2_kind() != iced_x86::OpKind::Register) =>
        {
            h_imul32
        }
        Mnemonic::Imul => h_imuln,
        Mnemonic::Div => h_div,
        Mnemonic::Idiv => h_idiv,
        _ => return None,
    })
}

/// Flags after a multiply: CF=OF=overflow; SF/ZF/PF follow the low half
/// (undefined in the manuals; this matches common hardware), AF clear.
fn mul_flags(c: &mut Cpu, size: u8, lo: u64, overflow: bool) {
    c.s.flags.set_mul(size, lo & size_mask(size), overflow);
}

/// Store a double-width result in AX, DX:AX, EDX:EAX or RDX:RAX.
fn store_wide(c: &mut Cpu, size: u8, lo: u64, hi: u64) {
    if size == 1 {
        c.put_reg(EAX as u8, false, 2, (lo & 0xff) | (hi & 0xff) << 8);
    } else {
        c.put_reg(EAX as u8, false, size, lo);
        c.put_reg(EDX as u8, false, size, hi);
    }
}

fn load_wide(c: &Cpu, size: u8) -> u128 {
    if size == 1 {
        (c.s.gpr[EAX] & 0xffff) as u128
    } else {
        let m = size_mask(size) as u128;
        ((c.s.gpr[EDX] as u128 & m) << (size as u32 * 8)) | (c.s.gpr[EAX] as u128 & m)
    }
}

fn h_mul(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let src = c.read_op(b, i, 0)? as u128;
    let a = (c.s.gpr[EAX] & size_mask(size)) as u128;
    let p = a * src;
    let bits = size as u32 * 8;
    let lo = (p as u64) & size_mask(size);
    let hi = ((p >> bits) as u64) & size_mask(size);
    store_wide(c, size, lo, hi);
    mul_flags(c, size, lo, hi != 0);
    Ok(())
}

fn h_imul1(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let src = sign_extend(c.read_op(b, i, 0)?, size) as i64 as i128;
    let a = sign_extend(c.s.gpr[EAX] & size_mask(size), size) as i64 as i128;
    let p = a * src;
    let bits = size as u32 * 8;
    let lo = (p as u64) & size_mask(size);
    let hi = ((p >> bits) as u64) & size_mask(size);
    let fits = sign_extend(lo, size) as i64 as i128 == p;
    store_wide(c, size, lo, hi);
    mul_flags(c, size, lo, !fits);
    Ok(())
}

fn h_imuln(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let (x, y) = if i.op[2].kind == OpKind::Imm {
        (c.read_op(b, i, 1)?, i.imm)
    } else {
        (c.read_op(b, i, 0)?, c.read_op(b, i, 1)?)
    };
    let x = sign_extend(x & size_mask(size), size) as i64 as i128;
    let y = sign_extend(y & size_mask(size), size) as i64 as i128;
    let p = x * y;
    let lo = (p as u64) & size_mask(size);
    let fits = sign_extend(lo, size) as i64 as i128 == p;
    c.write_op(b, i, 0, lo)?;
    mul_flags(c, size, lo, !fits);
    Ok(())
}

/// Two- and three-operand IMUL with a 32-bit destination, in 64-bit arithmetic.
fn h_imul32(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let o = &i.op[1];
    let src = if o.kind == OpKind::Reg {
        c.s.gpr[o.reg as usize & 15]
    } else {
        c.read_op(b, i, 1)?
    };
    let (x, y) = if i.op[2].kind == OpKind::Imm {
        (src, i.imm)
    } else {
        (c.s.gpr[i.op[0].reg as usize & 15], src)
    };
    let p = (x as i32 as i64) * (y as i32 as i64);
    let lo = p as u32 as u64;
    let fits = p as i32 as i64 == p;
    c.s.gpr[i.op[0].reg as usize & 15] = lo;
    mul_flags(c, 4, lo, !fits);
    Ok(())
}

fn h_div(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    if size <= 4 {
        // The dividend fits in 64 bits: no 128-bit division.
        let o = &i.op[0];
        let d = if o.kind == OpKind::Reg {
            c.get_reg(o.reg, o.hi, o.size)
        } else {
            c.read_op(b, i, 0)?
        };
        if d == 0 {
            return Err(Exception::de());
        }
        let n = load_wide(c, size) as u64;
        let q = n / d;
        let r = n % d;
        if q > size_mask(size) {
            return Err(Exception::de());
        }
        store_div(c, size, q, r);
        return Ok(());
    }
    let d = c.read_op(b, i, 0)? as u128;
    if d == 0 {
        return Err(Exception::de());
    }
    let n = load_wide(c, size);
    let q = n / d;
    let r = n % d;
    if q > size_mask(size) as u128 {
        return Err(Exception::de());
    }
    store_div(c, size, q as u64, r as u64);
    Ok(())
}

fn store_div(c: &mut Cpu, size: u8, q: u64, r: u64) {
    if size == 1 {
        c.put_reg(EAX as u8, false, 2, (q & 0xff) | (r & 0xff) << 8);
    } else {
        c.put_reg(EAX as u8, false, size, q);
        c.put_reg(EDX as u8, false, size, r);
    }
}

fn h_idiv(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let d = sign_extend(c.read_op(b, i, 0)?, size) as i64 as i128;
    if d == 0 {
        return Err(Exception::de());
    }
    let bits = size as u32 * 8;
    let raw = load_wide(c, size);
    // Sign-extend the 2*bits-wide dividend.
    let n = ((raw << (128 - 2 * bits)) as i128) >> (128 - 2 * bits);
    if n == i128::MIN && d == -1 {
        return Err(Exception::de());
    }
    let q = n / d;
    let r = n % d;
    let max = (sign_bit(size) - 1) as i128;
    if q > max || q < -max - 1 {
        return Err(Exception::de());
    }
    store_div(
        c,
        size,
        q as u64 & size_mask(size),
        r as u64 & size_mask(size),
    );
    Ok(())
}
