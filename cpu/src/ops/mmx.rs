//! MMX (Pentium MMX set) on the x87 registers: MMi is the significand of
//! physical register Ri. Every MMX instruction but EMMS sets TOP to 0 and
//! all tags valid; writes set the exponent field to all ones. EMMS empties
//! all registers. #UD with CR0.EM, #NM with CR0.TS, and a pending unmasked
//! x87 exception is reported first (#MF / FERR#).

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result, NM};
use crate::insn::*;
use crate::ops::fpu::pending;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic, OpKind as IOp};

pub(crate) fn enter(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    if cpu.s.cr0 & CR0_EM != 0 {
        return Err(Exception::ud());
    }
    if cpu.s.cr0 & CR0_TS != 0 {
        return Err(Exception::new(NM));
    }
    pending(cpu, bus)
}

pub(crate) fn mmx_touch(cpu: &mut Cpu) {
    cpu.s.fpu.set_top(0);
    cpu.s.fpu.empty = 0;
}

pub(crate) fn mm_get(cpu: &Cpu, n: u8) -> u64 {
    cpu.s.fpu.regs[n as usize & 7].mant
}

pub(crate) fn mm_set(cpu: &mut Cpu, n: u8, v: u64) {
    let r = &mut cpu.s.fpu.regs[n as usize & 7];
    r.mant = v;
    r.se = 0xffff;
}

/// Source operand 1 as 64 bits: MMX register or memory (m64, or m32 for the
/// low-half unpacks, zero-extended).
fn src(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<u64> {
    match i.op[1].kind {
        OpKind::Mem => {
            let ea = cpu.ea(i);
            cpu.read_mem(bus, i.mem.seg as usize, ea, i.op[1].size.clamp(1, 8))
        }
        OpKind::Imm => Ok(i.imm & 0xff),
        _ => Ok(mm_get(cpu, i.op[1].reg)),
    }
}

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    // Only the MMX-register forms; the SSE2 XMM forms share mnemonics.
    let mmx = (0..inst.op_count())
        .any(|k| inst.op_kind(k) == IOp::Register && inst.op_register(k).is_mm());
    if m == Emms {
        return Some(h_emms);
    }
    if !mmx
        || (0..inst.op_count())
            .any(|k| inst.op_kind(k) == IOp::Register && inst.op_register(k).is_xmm())
    {
        return None;
    }
    Some(match m {
        Movd | Movq => h_mov,
        Paddb | Paddw | Paddd | Paddsb | Paddsw | Paddusb | Paddusw | Psubb | Psubw | Psubd
        | Psubsb | Psubsw | Psubusb | Psubusw | Pcmpeqb | Pcmpeqw | Pcmpeqd | Pcmpgtb | Pcmpgtw
        | Pcmpgtd | Pmullw | Pmulhw | Pmaddwd | Pand | Pandn | Por | Pxor | Psllw | Pslld
        | Psllq | Psrlw | Psrld | Psrlq | Psraw | Psrad | Packsswb | Packssdw | Packuswb
        | Punpckhbw | Punpckhwd | Punpckhdq | Punpcklbw | Punpcklwd | Punpckldq => h_packed,
        _ => return None,
    })
}

fn h_emms(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Insn) -> Result<()> {
    enter(cpu, bus)?;
    cpu.s.fpu.empty = 0xff;
    Ok(())
}

fn h_mov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    enter(cpu, bus)?;
    let d = i.op[0];
    let s = i.op[1];
    let dst_mm = d.kind == OpKind::Other;
    let v = match s.kind {
        OpKind::Other => mm_get(cpu, s.reg),
        OpKind::Reg => cpu.get_reg(s.reg, false, s.size),
        _ => {
            let ea = cpu.ea(i);
            cpu.read_mem(bus, i.mem.seg as usize, ea, s.size)?
        }
    };
    if dst_mm {
        // MOVD zero-extends a 32-bit source.
        mm_set(cpu, d.reg, v);
    } else {
        let v = if d.size == 4 { v & 0xffff_ffff } else { v };
        cpu.write_op(bus, i, 0, v)?;
    }
    mmx_touch(cpu);
    Ok(())
}

/// Apply `f` to each `lane_bits`-wide lane of a and b.
fn lanes(a: u64, b: u64, bits: u32, f: impl Fn(u64, u64) -> u64) -> u64 {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut r = 0;
    for k in 0..64 / bits {
        let sh = k * bits;
        r |= (f((a >> sh) & mask, (b >> sh) & mask) & mask) << sh;
    }
    r
}

fn sx(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

fn sat_s(v: i64, bits: u32) -> u64 {
    let lo = -(1i64 << (bits - 1));
    let hi = (1i64 << (bits - 1)) - 1;
    v.clamp(lo, hi) as u64
}

fn sat_u(v: i64, bits: u32) -> u64 {
    v.clamp(0, (1i64 << bits) - 1) as u64
}

fn interleave(a: u64, b: u64, bits: u32, high: bool) -> u64 {
    let mask = (1u64 << bits) - 1;
    let n = 32 / bits;
    let base = if high { 32 } else { 0 };
    let mut r = 0;
    for k in 0..n {
        let x = (a >> (base + k * bits)) & mask;
        let y = (b >> (base + k * bits)) & mask;
        r |= x << (2 * k * bits) | y << ((2 * k + 1) * bits);
    }
    r
}

fn h_packed(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus)?;
    let b = src(cpu, bus, i)?;
    let dn = i.op[0].reg;
    let a = mm_get(cpu, dn);
    let m = i.inst.mnemonic();
    let shift = |bits: u32, f: &dyn Fn(u64, u32) -> u64, fill: &dyn Fn(u64) -> u64| {
        if b >= bits as u64 {
            lanes(a, 0, bits, |x, _| fill(x))
        } else {
            lanes(a, 0, bits, |x, _| f(x, b as u32))
        }
    };
    let r = match m {
        Paddb => lanes(a, b, 8, |x, y| x.wrapping_add(y)),
        Paddw => lanes(a, b, 16, |x, y| x.wrapping_add(y)),
        Paddd => lanes(a, b, 32, |x, y| x.wrapping_add(y)),
        Paddsb => lanes(a, b, 8, |x, y| sat_s(sx(x, 8) + sx(y, 8), 8)),
        Paddsw => lanes(a, b, 16, |x, y| sat_s(sx(x, 16) + sx(y, 16), 16)),
        Paddusb => lanes(a, b, 8, |x, y| sat_u(x as i64 + y as i64, 8)),
        Paddusw => lanes(a, b, 16, |x, y| sat_u(x as i64 + y as i64, 16)),
        Psubb => lanes(a, b, 8, |x, y| x.wrapping_sub(y)),
        Psubw => lanes(a, b, 16, |x, y| x.wrapping_sub(y)),
        Psubd => lanes(a, b, 32, |x, y| x.wrapping_sub(y)),
        Psubsb => lanes(a, b, 8, |x, y| sat_s(sx(x, 8) - sx(y, 8), 8)),
        Psubsw => lanes(a, b, 16, |x, y| sat_s(sx(x, 16) - sx(y, 16), 16)),
        Psubusb => lanes(a, b, 8, |x, y| sat_u(x as i64 - y as i64, 8)),
        Psubusw => lanes(a, b, 16, |x, y| sat_u(x as i64 - y as i64, 16)),
        Pcmpeqb => lanes(a, b, 8, |x, y| if x == y { !0 } else { 0 }),
        Pcmpeqw => lanes(a, b, 16, |x, y| if x == y { !0 } else { 0 }),
        Pcmpeqd => lanes(a, b, 32, |x, y| if x == y { !0 } else { 0 }),
        Pcmpgtb => lanes(a, b, 8, |x, y| if sx(x, 8) > sx(y, 8) { !0 } else { 0 }),
        Pcmpgtw => lanes(a, b, 16, |x, y| if sx(x, 16) > sx(y, 16) { !0 } else { 0 }),
        Pcmpgtd => lanes(a, b, 32, |x, y| if sx(x, 32) > sx(y, 32) { !0 } else { 0 }),
        Pmullw => lanes(a, b, 16, |x, y| (sx(x, 16) * sx(y, 16)) as u64),
        Pmulhw => lanes(a, b, 16, |x, y| ((sx(x, 16) * sx(y, 16)) >> 16) as u64),
        Pmaddwd => lanes(a, b, 32, |x, y| {
            let p0 = sx(x & 0xffff, 16) * sx(y & 0xffff, 16);
            let p1 = sx(x >> 16, 16) * sx(y >> 16, 16);
            (p0 + p1) as u64
        }),
        Pand => a & b,
        Pandn => !a & b,
        Por => a | b,
        Pxor => a ^ b,
        Psllw => shift(16, &|x, c| x << c, &|_| 0),
        Pslld => shift(32, &|x, c| x << c, &|_| 0),
        Psllq => shift(64, &|x, c| x << c, &|_| 0),
        Psrlw => shift(16, &|x, c| x >> c, &|_| 0),
        Psrld => shift(32, &|x, c| x >> c, &|_| 0),
        Psrlq => shift(64, &|x, c| x >> c, &|_| 0),
        Psraw => shift(16, &|x, c| (sx(x, 16) >> c) as u64, &|x| {
            (sx(x, 16) >> 15) as u64
        }),
        Psrad => shift(32, &|x, c| (sx(x, 32) >> c) as u64, &|x| {
            (sx(x, 32) >> 31) as u64
        }),
        Packsswb => {
            let w = |v: u64, k: u32| sat_s(sx((v >> (16 * k)) & 0xffff, 16), 8) & 0xff;
            (0..4).fold(0, |r, k| r | w(a, k) << (8 * k) | w(b, k) << (8 * (k + 4)))
        }
        Packuswb => {
            let w = |v: u64, k: u32| sat_u(sx((v >> (16 * k)) & 0xffff, 16), 8);
            (0..4).fold(0, |r, k| r | w(a, k) << (8 * k) | w(b, k) << (8 * (k + 4)))
        }
        Packssdw => {
            let w = |v: u64, k: u32| sat_s(sx((v >> (32 * k)) & 0xffff_ffff, 32), 16) & 0xffff;
            w(a, 0) | w(a, 1) << 16 | w(b, 0) << 32 | w(b, 1) << 48
        }
        Punpcklbw => interleave(a, b, 8, false),
        Punpcklwd => interleave(a, b, 16, false),
        Punpckldq => interleave(a, b, 32, false),
        Punpckhbw => interleave(a, b, 8, true),
        Punpckhwd => interleave(a, b, 16, true),
        _ => interleave(a, b, 32, true),
    };
    mm_set(cpu, dn, r);
    mmx_touch(cpu);
    Ok(())
}
