//! Shifts and rotates, including RCL/RCR and the double shifts SHLD/SHRD.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Result;
use crate::flags::{parity, sign_bit, sign_extend, size_mask, FlagOp};
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    // Register destination, immediate count (including the implicit 1).
    let ri = inst.op0_kind() == iced_x86::OpKind::Register
        && inst.op_count() == 2
        && inst.op1_kind() == iced_x86::OpKind::Immediate8;
    // A full 32-bit register: a plain load and a zero-extending store.
    let r32 = ri && inst.op0_register().is_gpr32();
    Some(match m {
        Shl | Sal if r32 => h_shift_ri::<SHL, 4>,
        Shr if r32 => h_shift_ri::<SHR, 4>,
        Sar if r32 => h_shift_ri::<SAR, 4>,
        Rol if r32 => h_shift_ri::<ROL, 4>,
        Ror if r32 => h_shift_ri::<ROR, 4>,
        Shl | Sal if ri => h_shift_ri::<SHL, 0>,
        Shr if ri => h_shift_ri::<SHR, 0>,
        Sar if ri => h_shift_ri::<SAR, 0>,
        Rol if ri => h_shift_ri::<ROL, 0>,
        Ror if ri => h_shift_ri::<ROR, 0>,
        Shl | Sal => h_shift::<SHL>,
        Shr => h_shift::<SHR>,
        Sar => h_shift::<SAR>,
        Rol => h_shift::<ROL>,
        Ror => h_shift::<ROR>,
        Rcl => h_rcl,
        Rcr => h_rcr,
        Shld => h_shld,
        Shrd => h_shrd,
        _ => return None,
    })
}

/// Shift count operand (implicit 1, CL or imm8), masked as the hardware does.
#[inline]
fn count(c: &Cpu, i: &Insn, size: u8) -> u32 {
    let n = if i.op[1].kind == OpKind::Reg {
        c.s.gpr[ECX] & 0xff
    } else if i.op[1].kind == OpKind::Imm {
        i.imm & 0xff
    } else {
        1
    };
    (n as u32) & if size == 8 { 0x3f } else { 0x1f }
}

const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;

/// Shift or rotate `x` by `n` (1..=63, already masked) and set the flags.
#[inline(always)]
fn shift_op(c: &mut Cpu, op: u8, size: u8, x: u64, n: u32) -> u64 {
    match op {
        SHL => {
            let r = if n >= 64 { 0 } else { x << n } & size_mask(size);
            c.s.flags.set_lazy(FlagOp::Shl, size, x, n as u64, r);
            r
        }
        SHR => {
            let r = x >> n;
            c.s.flags.set_lazy(FlagOp::Shr, size, x, n as u64, r);
            r
        }
        SAR => {
            let r = ((sign_extend(x, size) as i64) >> n.min(63)) as u64 & size_mask(size);
            c.s.flags.set_lazy(FlagOp::Sar, size, x, n as u64, r);
            r
        }
        ROL => {
            let bits = size as u32 * 8;
            let k = n % bits;
            let r = if k == 0 {
                x
            } else {
                ((x << k) | (x >> (bits - k))) & size_mask(size)
            };
            let cf = r & 1 != 0;
            let of = (r & sign_bit(size) != 0) != cf;
            set_cf_of(c, cf, of);
            r
        }
        _ => {
            let bits = size as u32 * 8;
            let k = n % bits;
            let r = if k == 0 {
                x
            } else {
                ((x >> k) | (x << (bits - k))) & size_mask(size)
            };
            let msb = r & sign_bit(size) != 0;
            let msb2 = r & (sign_bit(size) >> 1) != 0;
            set_cf_of(c, msb, msb != msb2);
            r
        }
    }
}

/// Register destination, immediate count; `W` = 4 for a 32-bit register.
fn h_shift_ri<const OP: u8, const W: u8>(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let d = &i.op[0];
    let size = if W == 4 { 4 } else { d.size };
    let n = ((i.imm & 0xff) as u32) & if size == 8 { 0x3f } else { 0x1f };
    if n == 0 && size == 4 {
        // A 32-bit register is written (zero-extended) even for count 0.
        c.s.gpr[d.reg as usize & 15] &= 0xffff_ffff;
    }
    if n != 0 {
        if W == 4 {
            let x = c.s.gpr[d.reg as usize & 15] & 0xffff_ffff;
            let r = shift_op(c, OP, 4, x, n);
            c.s.gpr[d.reg as usize & 15] = r & 0xffff_ffff;
        } else {
            let x = c.get_reg(d.reg, d.hi, size);
            let r = shift_op(c, OP, size, x, n);
            c.put_reg(d.reg, d.hi, size, r);
        }
    }
    Ok(())
}

fn h_shift<const OP: u8>(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let n = count(c, i, size);
    c.modify_op(b, i, |c, x| {
        if n == 0 {
            return zero_count_result(i, size, x);
        }
        Some(shift_op(c, OP, size, x, n))
    })
}

/// What a shift or rotate by a masked count of 0 leaves in its
/// destination: nothing is written, except that a 32-bit register is
/// still zero-extended into its 64-bit register (as Intel hardware and
/// the SDM's "32-bit operands generate 32-bit results, zero-extended" do).
#[inline]
fn zero_count_result(i: &Insn, size: u8, x: u64) -> Option<u64> {
    (size == 4 && i.op[0].kind == OpKind::Reg).then_some(x)
}

/// Set CF and OF explicitly, leaving the other flags as they are.
#[inline]
fn set_cf_of(c: &mut Cpu, cf: bool, of: bool) {
    c.s.flags.set_rotate(cf, of);
}

fn h_rcl(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let n = count(c, i, size);
    c.modify_op(b, i, |c, x| {
        if n == 0 {
            return zero_count_result(i, size, x);
        }
        let bits = size as u32 * 8;
        let k = n % (bits + 1);
        let mut cf = c.s.flags.cf();
        let mut r = x;
        // Rotate through carry as a (bits+1)-bit quantity; small loops are fine.
        for _ in 0..k {
            let out = r & sign_bit(size) != 0;
            r = ((r << 1) | cf as u64) & size_mask(size);
            cf = out;
        }
        let of = (r & sign_bit(size) != 0) != cf;
        set_cf_of(c, cf, of);
        Some(r)
    })
}

fn h_rcr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let n = count(c, i, size);
    c.modify_op(b, i, |c, x| {
        if n == 0 {
            return zero_count_result(i, size, x);
        }
        let bits = size as u32 * 8;
        let k = n % (bits + 1);
        let mut cf = c.s.flags.cf();
        let of = (x & sign_bit(size) != 0) != cf;
        let mut r = x;
        for _ in 0..k {
            let out = r & 1 != 0;
            r = (r >> 1) | if cf { sign_bit(size) } else { 0 };
            cf = out;
        }
        set_cf_of(c, cf, of);
        Some(r)
    })
}

fn set_result_flags(c: &mut Cpu, size: u8, r: u64, cf: bool, of: bool) {
    let mut f = 0;
    if cf {
        f |= FLAG_CF;
    }
    if of {
        f |= FLAG_OF;
    }
    if r & size_mask(size) == 0 {
        f |= FLAG_ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= FLAG_SF;
    }
    if parity(r) {
        f |= FLAG_PF;
    }
    c.s.flags.set_arith(ARITH_FLAGS, f);
}

fn shxd_count(c: &Cpu, i: &Insn, size: u8) -> u32 {
    let n = if i.op[2].kind == OpKind::Reg {
        c.s.gpr[ECX] & 0xff
    } else {
        i.imm & 0xff
    };
    (n as u32) & if size == 8 { 0x3f } else { 0x1f }
}

fn h_shld(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let n = shxd_count(c, i, size);
    let src = c.read_op(b, i, 1)?;
    c.modify_op(b, i, |c, x| {
        if n == 0 {
            return zero_count_result(i, size, x);
        }
        let bits = size as u32 * 8;
        if bits == 64 {
            let r = (x << n) | (src >> (64 - n));
            let cf = (x >> (64 - n)) & 1 != 0;
            let of = (r ^ x) >> 63 != 0;
            set_result_flags(c, size, r, cf, of);
            return Some(r);
        }
        // Work on dest:src:dest (enough for 16-bit counts past 16, whose
        // result the manuals leave undefined).
        let wide = (x as u128) << (2 * bits) | (src as u128) << bits | x as u128;
        let total = 3 * bits;
        let r = ((wide << n) >> (total - bits)) as u64 & size_mask(size);
        let cf = (wide >> (total - n)) & 1 != 0;
        let of = (r & sign_bit(size) != 0) != (x & sign_bit(size) != 0);
        set_result_flags(c, size, r, cf, of);
        Some(r)
    })
}

fn h_shrd(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let n = shxd_count(c, i, size);
    let src = c.read_op(b, i, 1)?;
    c.modify_op(b, i, |c, x| {
        if n == 0 {
            return zero_count_result(i, size, x);
        }
        let bits = size as u32 * 8;
        if bits == 64 {
            let r = (x >> n) | (src << (64 - n));
            let cf = (x >> (n - 1)) & 1 != 0;
            let of = (r ^ x) >> 63 != 0;
            set_result_flags(c, size, r, cf, of);
            return Some(r);
        }
        // x:src:x from low to high, shifted right (counts past 16 on 16-bit
        // operands give the undefined-result pattern of wider hardware).
        let wide2 = (x as u128) | (src as u128) << bits | (x as u128) << (2 * bits);
        let r = (wide2 >> n) as u64 & size_mask(size);
        let cf = (wide2 >> (n - 1)) & 1 != 0;
        let of = (r & sign_bit(size) != 0) != (x & sign_bit(size) != 0);
        set_result_flags(c, size, r, cf, of);
        Some(r)
    })
}
