//! Data movement and integer arithmetic/logic: MOV family, ADD..CMP, TEST,
//! INC/DEC/NEG/NOT, XCHG/XADD/CMPXCHG, BSWAP, SETcc/CMOVcc, conversions and
//! flag-bit instructions.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::flags::{sign_extend, size_mask, FlagOp};
use crate::insn::*;
use crate::ops::{ea_form, EA_ANY, EA_BASE, EA_BOTH, EA_DISP, EA_INDEX};
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    let op0 = inst.op0_kind();
    let is_special_reg = |r: iced_x86::Register| r.is_cr() || r.is_dr() || r.is_tr();
    Some(match m {
        Mov => {
            if op0 == iced_x86::OpKind::Register && is_special_reg(inst.op0_register()) {
                return None;
            }
            if inst.op_count() > 1
                && inst.op1_kind() == iced_x86::OpKind::Register
                && is_special_reg(inst.op1_register())
            {
                return None;
            }
            if op0 == iced_x86::OpKind::Register && inst.op0_register().is_segment_register() {
                return None;
            }
            let reg0 = op0 == iced_x86::OpKind::Register;
            let k1 = inst.op1_kind();
            let w32 = is32(inst);
            if reg0
                && k1 == iced_x86::OpKind::Register
                && !inst.op1_register().is_segment_register()
            {
                if w32 {
                    h_mov_rr::<4>
                } else {
                    h_mov_rr::<0>
                }
            } else if reg0 && is_imm(k1) {
                if w32 {
                    h_mov_ri::<4>
                } else {
                    h_mov_ri::<0>
                }
            } else if reg0 && k1 == iced_x86::OpKind::Memory {
                match (w32, ea_form(inst)) {
                    (true, EA_BASE) => h_mov_rm::<4, EA_BASE>,
                    (true, EA_INDEX) => h_mov_rm::<4, EA_INDEX>,
                    (true, EA_BOTH) => h_mov_rm::<4, EA_BOTH>,
                    (true, EA_DISP) => h_mov_rm::<4, EA_DISP>,
                    (true, _) => h_mov_rm::<4, EA_ANY>,
                    _ => h_mov_rm::<0, EA_ANY>,
                }
            } else if op0 == iced_x86::OpKind::Memory
                && k1 == iced_x86::OpKind::Register
                && !inst.op1_register().is_segment_register()
            {
                match (w32, ea_form(inst)) {
                    (true, EA_BASE) => h_mov_mr::<4, EA_BASE>,
                    (true, EA_INDEX) => h_mov_mr::<4, EA_INDEX>,
                    (true, EA_BOTH) => h_mov_mr::<4, EA_BOTH>,
                    (true, EA_DISP) => h_mov_mr::<4, EA_DISP>,
                    (true, _) => h_mov_mr::<4, EA_ANY>,
                    _ => h_mov_mr::<0, EA_ANY>,
                }
            } else {
                h_mov
            }
        }
        Movzx => h_movzx,
        Movsx | Movsxd => h_movsx,
        Lea => h_lea,
        Add | Or | Adc | Sbb | And | Sub | Xor | Cmp | Test => alu_handler(m, inst),
        Inc if op0 == iced_x86::OpKind::Register => {
            if is32(inst) {
                h_incdec_r::<false, 4>
            } else {
                h_incdec_r::<false, 0>
            }
        }
        Dec if op0 == iced_x86::OpKind::Register => {
            if is32(inst) {
                h_incdec_r::<true, 4>
            } else {
                h_incdec_r::<true, 0>
            }
        }
        Inc => h_inc,
        Dec => h_dec,
        Neg => h_neg,
        Not => h_not,
        Xchg => h_xchg,
        Xadd => h_xadd,
        Cmpxchg => h_cmpxchg,
        Cmpxchg8b | Cmpxchg16b => h_cmpxchg8b,
        Bswap => h_bswap,
        Seto | Setno | Setb | Setae | Sete | Setne | Setbe | Seta | Sets | Setns | Setp | Setnp
        | Setl | Setge | Setle | Setg => h_setcc,
        Cmovo | Cmovno | Cmovb | Cmovae | Cmove | Cmovne | Cmovbe | Cmova | Cmovs | Cmovns
        | Cmovp | Cmovnp | Cmovl | Cmovge | Cmovle | Cmovg => h_cmovcc,
        Cbw | Cwde | Cdqe => h_cbw,
        Cwd | Cdq | Cqo => h_cwd,
        Lahf => h_lahf,
        Sahf => h_sahf,
        Clc => h_clc,
        Stc => h_stc,
        Cmc => h_cmc,
        Cld => h_cld,
        Std => h_std,
        Nop | Pause | Prefetch | Prefetchnta | Prefetcht0 | Prefetcht1 | Prefetcht2 | Prefetchw
        | Lfence | Sfence | Mfence | Clflush => h_nop,
        // CET hints in the reserved-NOP space: NOPs while CET is off (no
        // CR4.CET here), as on processors without CET.
        Endbr32 | Endbr64 | Rdsspd | Rdsspq | Reservednop => h_nop,
        Xlatb => h_xlat,
        Salc => h_salc,
        _ => return None,
    })
}

fn h_nop(_c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    Ok(())
}

/// Every operand is 32 bits wide and any register is a full one (no
/// AH..BH): such instructions get handler instances with `W` = 4, where
/// register access is a plain load or a zero-extending store.
fn is32(inst: &Instruction) -> bool {
    use iced_x86::OpKind as K;
    (0..inst.op_count()).all(|n| match inst.op_kind(n) {
        K::Register => {
            let r = inst.op_register(n);
            r.is_gpr32()
        }
        K::Memory => inst.memory_size().size() == 4,
        k => is_imm(k),
    })
}

/// Read register operand `o`; `w` = 4 for the 32-bit-only instances.
#[inline(always)]
fn rd(c: &Cpu, o: &Operand, w: u8) -> u64 {
    if w == 4 {
        c.s.gpr[o.reg as usize & 15] & 0xffff_ffff
    } else {
        c.get_reg(o.reg, o.hi, o.size)
    }
}

/// Write register operand `o`; `w` = 4 for the 32-bit-only instances.
#[inline(always)]
fn wr(c: &mut Cpu, o: &Operand, w: u8, v: u64) {
    if w == 4 {
        c.s.gpr[o.reg as usize & 15] = v & 0xffff_ffff;
    } else {
        c.put_reg(o.reg, o.hi, o.size, v)
    }
}

#[inline(always)]
fn width(i: &Insn, w: u8) -> u8 {
    if w == 4 {
        4
    } else {
        i.op[0].size
    }
}

fn h_mov_rr<const W: u8>(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = rd(c, &i.op[1], W);
    wr(c, &i.op[0], W, v);
    Ok(())
}

fn is_imm(k: iced_x86::OpKind) -> bool {
    use iced_x86::OpKind::*;
    matches!(
        k,
        Immediate8
            | Immediate16
            | Immediate32
            | Immediate64
            | Immediate8to16
            | Immediate8to32
            | Immediate8to64
            | Immediate32to64
    )
}

fn h_mov_ri<const W: u8>(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    wr(c, &i.op[0], W, i.imm);
    Ok(())
}

fn h_mov_rm<const W: u8, const EA: u8>(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let ea = c.ea_shaped::<EA>(i);
    let v = c.read_mem(b, i.mem.seg as usize, ea, width(i, W))?;
    wr(c, &i.op[0], W, v);
    Ok(())
}

fn h_mov_mr<const W: u8, const EA: u8>(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = &i.op[1];
    let v = rd(c, s, W);
    let ea = c.ea_shaped::<EA>(i);
    let size = if W == 4 { 4 } else { s.size };
    c.write_mem(b, i.mem.seg as usize, ea, size, v)
}

fn h_mov(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.read_op(b, i, 1)?;
    c.write_op(b, i, 0, v)
}

fn h_movzx(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.read_op(b, i, 1)?;
    c.write_op(b, i, 0, v)
}

fn h_movsx(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.read_op(b, i, 1)?;
    let v = sign_extend(v, i.op[1].size);
    c.write_op(b, i, 0, v)
}

fn h_lea(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let ea = c.ea(i);
    c.write_op(b, i, 0, ea)
}

pub const ADD: u8 = 0;
pub const OR: u8 = 1;
pub const ADC: u8 = 2;
pub const SBB: u8 = 3;
pub const AND: u8 = 4;
pub const SUB: u8 = 5;
pub const XOR: u8 = 6;
pub const CMP: u8 = 7;
pub const TEST: u8 = 8;

/// Perform a two-operand ALU operation and record its flags. `op` is one of
/// the constants above; callers pass constants so this folds away.
#[inline(always)]
pub fn alu(c: &mut Cpu, op: u8, size: u8, a: u64, b: u64) -> u64 {
    let mask = size_mask(size);
    let a = a & mask;
    let b = b & mask;
    let f = &mut c.s.flags;
    match op {
        ADD => {
            let r = a.wrapping_add(b) & mask;
            f.set_lazy(FlagOp::Add, size, a, b, r);
            r
        }
        ADC => {
            let cin = f.cf();
            let r = a.wrapping_add(b).wrapping_add(cin as u64) & mask;
            f.set_carry_op(FlagOp::Adc, size, a, b, cin, r);
            r
        }
        SUB | CMP => {
            let r = a.wrapping_sub(b) & mask;
            f.set_lazy(FlagOp::Sub, size, a, b, r);
            r
        }
        SBB => {
            let cin = f.cf();
            let r = a.wrapping_sub(b).wrapping_sub(cin as u64) & mask;
            f.set_carry_op(FlagOp::Sbb, size, a, b, cin, r);
            r
        }
        AND | TEST => {
            let r = a & b;
            f.set_lazy(FlagOp::Logic, size, 0, 0, r);
            r
        }
        OR => {
            let r = a | b;
            f.set_lazy(FlagOp::Logic, size, 0, 0, r);
            r
        }
        _ => {
            let r = a ^ b;
            f.set_lazy(FlagOp::Logic, size, 0, 0, r);
            r
        }
    }
}

/// Operand forms with their own handler instance.
const FORM_ANY: u8 = 0;
const FORM_RR: u8 = 1;
const FORM_RI: u8 = 2;
const FORM_RM: u8 = 3;

fn alu_handler(m: Mnemonic, inst: &Instruction) -> Handler {
    use iced_x86::OpKind as K;
    let form = match (inst.op0_kind(), inst.op1_kind()) {
        (K::Register, K::Register) => FORM_RR,
        (K::Register, k) if is_imm(k) => FORM_RI,
        (K::Register, K::Memory) => FORM_RM,
        _ => FORM_ANY,
    };
    let w32 = is32(inst);
    macro_rules! pick {
        ($op:expr) => {
            match (form, w32) {
                (FORM_RR, true) => h_alu::<{ $op }, FORM_RR, 4, EA_ANY>,
                (FORM_RI, true) => h_alu::<{ $op }, FORM_RI, 4, EA_ANY>,
                (FORM_RM, true) => match ea_form(inst) {
                    EA_BASE => h_alu::<{ $op }, FORM_RM, 4, EA_BASE>,
                    EA_INDEX => h_alu::<{ $op }, FORM_RM, 4, EA_INDEX>,
                    EA_BOTH => h_alu::<{ $op }, FORM_RM, 4, EA_BOTH>,
                    EA_DISP => h_alu::<{ $op }, FORM_RM, 4, EA_DISP>,
                    _ => h_alu::<{ $op }, FORM_RM, 4, EA_ANY>,
                },
                (FORM_RR, false) => h_alu::<{ $op }, FORM_RR, 0, EA_ANY>,
                (FORM_RI, false) => h_alu::<{ $op }, FORM_RI, 0, EA_ANY>,
                (FORM_RM, false) => h_alu::<{ $op }, FORM_RM, 0, EA_ANY>,
                _ => h_alu::<{ $op }, FORM_ANY, 0, EA_ANY>,
            }
        };
    }
    match m {
        Mnemonic::Add => pick!(ADD),
        Mnemonic::Or => pick!(OR),
        Mnemonic::Adc => pick!(ADC),
        Mnemonic::Sbb => pick!(SBB),
        Mnemonic::And => pick!(AND),
        Mnemonic::Sub => pick!(SUB),
        Mnemonic::Xor => pick!(XOR),
        Mnemonic::Cmp => pick!(CMP),
        _ => pick!(TEST),
    }
}

fn h_alu<const OP: u8, const FORM: u8, const W: u8, const EA: u8>(
    c: &mut Cpu,
    b: &mut dyn Bus,
    i: &Insn,
) -> Result<()> {
    let writes = OP != CMP && OP != TEST;
    let size = width(i, W);
    let d = &i.op[0];
    if FORM != FORM_ANY {
        let x = rd(c, d, W);
        let y = match FORM {
            FORM_RR => rd(c, &i.op[1], W),
            FORM_RI => i.imm,
            _ => {
                let ea = c.ea_shaped::<EA>(i);
                c.read_mem(b, i.mem.seg as usize, ea, size)?
            }
        };
        let r = alu(c, OP, size, x, y);
        if writes {
            wr(c, d, W, r);
        }
        return Ok(());
    }
    let y = c.read_op(b, i, 1)?;
    if writes {
        c.modify_op(b, i, |c, x| Some(alu(c, OP, size, x, y)))
    } else {
        let x = c.read_op(b, i, 0)?;
        alu(c, OP, size, x, y);
        Ok(())
    }
}

/// INC/DEC of a register.
fn h_incdec_r<const DEC: bool, const W: u8>(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let d = &i.op[0];
    let size = width(i, W);
    let x = rd(c, d, W);
    let r = if DEC {
        let r = x.wrapping_sub(1) & size_mask(size);
        c.s.flags.set_incdec(FlagOp::Dec, size, x, r);
        r
    } else {
        let r = x.wrapping_add(1) & size_mask(size);
        c.s.flags.set_incdec(FlagOp::Inc, size, x, r);
        r
    };
    wr(c, d, W, r);
    Ok(())
}

fn h_inc(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    c.modify_op(b, i, |c, x| {
        let r = x.wrapping_add(1) & size_mask(size);
        c.s.flags.set_incdec(FlagOp::Inc, size, x, r);
        Some(r)
    })
}

fn h_dec(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    c.modify_op(b, i, |c, x| {
        let r = x.wrapping_sub(1) & size_mask(size);
        c.s.flags.set_incdec(FlagOp::Dec, size, x, r);
        Some(r)
    })
}

fn h_neg(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    c.modify_op(b, i, |c, x| {
        let r = x.wrapping_neg() & size_mask(size);
        c.s.flags.set_lazy(FlagOp::Neg, size, 0, x, r);
        Some(r)
    })
}

fn h_not(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let mask = size_mask(i.op[0].size);
    c.modify_op(b, i, |_, x| Some(!x & mask))
}

fn h_xchg(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let x = c.read_op(b, i, 0)?;
    let y = c.read_op(b, i, 1)?;
    // Memory operand first, so a faulting write leaves registers untouched.
    if i.op[1].kind == OpKind::Mem {
        c.write_op(b, i, 1, x)?;
        c.write_op(b, i, 0, y)
    } else {
        c.write_op(b, i, 0, y)?;
        c.write_op(b, i, 1, x)
    }
}

fn h_xadd(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let x = c.read_op(b, i, 0)?;
    let y = c.read_op(b, i, 1)?;
    if i.op[0].kind == OpKind::Mem {
        let ea = c.ea(i);
        c.probe_write(i.mem.seg as usize, ea, size)?;
    }
    let r = alu(c, ADD, size, x, y);
    if i.op[0].kind == OpKind::Mem {
        // Store before the register changes: it may be part of the address.
        c.write_op(b, i, 0, r)?;
        c.write_op(b, i, 1, x)
    } else {
        c.write_op(b, i, 1, x)?;
        c.write_op(b, i, 0, r)
    }
}

fn h_cmpxchg(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let size = i.op[0].size;
    let dest = c.read_op(b, i, 0)?;
    let acc = c.get_reg(EAX as u8, false, size);
    if i.op[0].kind == OpKind::Mem {
        let ea = c.ea(i);
        c.probe_write(i.mem.seg as usize, ea, size)?;
    }
    alu(c, CMP, size, acc, dest);
    if acc == dest {
        let src = c.read_op(b, i, 1)?;
        c.write_op(b, i, 0, src)
    } else {
        // The processor always writes the destination (with its old value).
        c.write_op(b, i, 0, dest)?;
        c.put_reg(EAX as u8, false, size, dest);
        Ok(())
    }
}

fn h_cmpxchg8b(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if i.op[0].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let wide = i.op[0].size == 16;
    let half = if wide { 8 } else { 4 };
    let ea = c.ea(i);
    let seg = i.mem.seg as usize;
    if wide && ea & 15 != 0 {
        return Err(Exception::gp0());
    }
    let lo = c.read_mem(b, seg, ea, half)?;
    let hi = c.read_mem(b, seg, ea.wrapping_add(half as u64), half)?;
    c.probe_write(seg, ea, half)?;
    c.probe_write(seg, ea.wrapping_add(half as u64), half)?;
    let m = size_mask(half);
    let eax = c.s.gpr[EAX] & m;
    let edx = c.s.gpr[EDX] & m;
    let zf = lo == eax && hi == edx;
    if zf {
        let nlo = c.s.gpr[EBX] & m;
        let nhi = c.s.gpr[ECX] & m;
        c.write_mem(b, seg, ea, half, nlo)?;
        c.write_mem(b, seg, ea.wrapping_add(half as u64), half, nhi)?;
    } else {
        c.write_mem(b, seg, ea, half, lo)?;
        c.write_mem(b, seg, ea.wrapping_add(half as u64), half, hi)?;
        c.put_reg(EAX as u8, false, half, lo);
        c.put_reg(EDX as u8, false, half, hi);
    }
    c.s.flags.set_arith(FLAG_ZF, if zf { FLAG_ZF } else { 0 });
    Ok(())
}

fn h_bswap(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let o = &i.op[0];
    let v = c.get_reg(o.reg, false, o.size);
    let r = match o.size {
        // BSWAP of a 16-bit register is undefined; real CPUs clear it.
        2 => 0,
        4 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    };
    c.put_reg(o.reg, false, o.size, r);
    Ok(())
}

fn h_setcc(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.s.flags.cond(i.cc) as u64;
    c.write_op(b, i, 0, v)
}

fn h_cmovcc(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    // The source is read (and may fault) whatever the condition.
    let v = c.read_op(b, i, 1)?;
    if c.s.flags.cond(i.cc) {
        c.write_op(b, i, 0, v)
    } else if i.op[0].size == 4 {
        // A 32-bit destination is zero-extended even when not moved (64-bit mode).
        let cur = c.read_op(b, i, 0)?;
        c.write_op(b, i, 0, cur)
    } else {
        Ok(())
    }
}

fn h_cbw(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let half = i.osize / 2;
    let v = sign_extend(c.s.gpr[EAX] & size_mask(half), half);
    c.put_reg(EAX as u8, false, i.osize, v);
    Ok(())
}

fn h_cwd(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = i.osize;
    let neg = c.s.gpr[EAX] & crate::flags::sign_bit(s) != 0;
    c.put_reg(EDX as u8, false, s, if neg { u64::MAX } else { 0 });
    Ok(())
}

const LAHF_MASK: u64 = FLAG_SF | FLAG_ZF | FLAG_AF | FLAG_PF | FLAG_CF;

fn h_lahf(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let f = (c.s.flags.get() & 0xff) | 2;
    c.put_reg(EAX as u8, true, 1, f);
    Ok(())
}

fn h_sahf(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let ah = (c.s.gpr[EAX] >> 8) & 0xff;
    c.s.flags.set_arith(LAHF_MASK, ah);
    Ok(())
}

fn h_clc(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.s.flags.set_arith(FLAG_CF, 0);
    Ok(())
}
fn h_stc(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.s.flags.set_arith(FLAG_CF, FLAG_CF);
    Ok(())
}
fn h_cmc(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let cf = c.s.flags.cf();
    c.s.flags.set_arith(FLAG_CF, if cf { 0 } else { FLAG_CF });
    Ok(())
}
fn h_cld(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.s.flags.set_bit(FLAG_DF, false);
    Ok(())
}
fn h_std(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.s.flags.set_bit(FLAG_DF, true);
    Ok(())
}

fn h_xlat(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let off = c.s.gpr[EBX].wrapping_add(c.s.gpr[EAX] & 0xff) & size_mask(i.asize);
    let v = c.read_mem(b, i.mem.seg as usize, off, 1)?;
    c.put_reg(EAX as u8, false, 1, v);
    Ok(())
}

fn h_salc(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let v = if c.s.flags.cf() { 0xff } else { 0 };
    c.put_reg(EAX as u8, false, 1, v);
    Ok(())
}
