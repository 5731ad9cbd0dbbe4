//! SSE/SSE2/SSE3/SSSE3/SSE4.1/SSE4.2 data movement and integer
//! instructions, plus CRC32 and POPCNT (floating point is in `ssefp.rs`).
//!
//! Availability (SDM Vol. 3A 13.1, Vol. 2 exception classes): instructions
//! on XMM registers are #UD with CR0.EM=1 or CR4.OSFXSR=0 and #NM with
//! CR0.TS=1. The integer forms on MMX registers (PMINUB mm, PSHUFB mm...)
//! follow the MMX rules instead (#UD with EM, #NM with TS, pending x87
//! exception first) and switch the x87 unit to MMX state, as do the
//! mixed MMX/XMM ones (MOVQ2DQ, CVTPI2PS...).
//!
//! 16-byte memory operands must be 16-byte aligned (#GP(0)) except for
//! the explicitly unaligned forms. They are accessed as two 8-byte halves;
//! stores probe both halves before writing either, so faults are precise.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result, NM};
use crate::flags::size_mask;
use crate::insn::*;
use crate::ops::mmx;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic, OpKind as IOp};

// ---------------------------------------------------------------------
// Entry checks

pub fn sse_enter(cpu: &Cpu) -> Result<()> {
    if cpu.s.cr0 & CR0_EM != 0 || cpu.s.cr4 & CR4_OSFXSR == 0 {
        return Err(Exception::ud());
    }
    if cpu.s.cr0 & CR0_TS != 0 {
        return Err(Exception::new(NM));
    }
    Ok(())
}

/// Checks for an instruction that names MMX registers: `xmm_too` for the
/// mixed forms, which obey the SSE rules as well. A pending x87 exception
/// is reported first either way.
fn mmx_enter(cpu: &mut Cpu, bus: &mut dyn Bus, xmm_too: bool) -> Result<()> {
    if xmm_too {
        sse_enter(cpu)?;
    }
    mmx::enter(cpu, bus)
}

fn uses_mm(inst: &Instruction) -> bool {
    (0..inst.op_count()).any(|k| inst.op_kind(k) == IOp::Register && inst.op_register(k).is_mm())
}

fn uses_xmm(inst: &Instruction) -> bool {
    (0..inst.op_count()).any(|k| inst.op_kind(k) == IOp::Register && inst.op_register(k).is_xmm())
}

/// Common prologue: the checks for the register files `i` names.
pub fn enter(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    if uses_mm(&i.inst) {
        mmx_enter(cpu, bus, uses_xmm(&i.inst))
    } else {
        sse_enter(cpu)
    }
}

/// After an instruction that named an MMX register succeeded.
fn mm_done(cpu: &mut Cpu, i: &Insn) {
    if uses_mm(&i.inst) {
        mmx::mmx_touch(cpu);
    }
}

// ---------------------------------------------------------------------
// Operands

/// Instructions whose 16-byte memory operand may be misaligned.
fn unaligned_ok(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Movups
            | Movupd
            | Movdqu
            | Lddqu
            | Pcmpestri
            | Pcmpestri64
            | Pcmpestrm
            | Pcmpestrm64
            | Pcmpistri
            | Pcmpistrm
    )
}

fn lin_of(cpu: &Cpu, seg: usize, ea: u64) -> u64 {
    if cpu.mode64 && seg < FS {
        ea
    } else {
        cpu.s.seg[seg].base.wrapping_add(ea)
    }
}

fn check_align16(cpu: &Cpu, i: &Insn, ea: u64) -> Result<()> {
    if !unaligned_ok(i.inst.mnemonic()) && lin_of(cpu, i.mem.seg as usize, ea) & 15 != 0 {
        return Err(Exception::gp0());
    }
    Ok(())
}

/// Read `size` bytes (1-16) of the memory operand, zero-extended.
pub fn load_mem(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, size: u8) -> Result<u128> {
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    if size == 16 {
        check_align16(cpu, i, ea)?;
        let lo = cpu.read_mem(bus, seg, ea, 8)?;
        let hi = cpu.read_mem(bus, seg, ea.wrapping_add(8) & size_mask(i.asize), 8)?;
        return Ok((hi as u128) << 64 | lo as u128);
    }
    Ok(cpu.read_mem(bus, seg, ea, size.clamp(1, 8))? as u128)
}

/// Write the low `size` bytes of `v` to the memory operand.
pub fn store_mem(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, size: u8, v: u128) -> Result<()> {
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    if size == 16 {
        check_align16(cpu, i, ea)?;
        let ea2 = ea.wrapping_add(8) & size_mask(i.asize);
        cpu.probe_write(seg, ea, 8)?;
        cpu.probe_write(seg, ea2, 8)?;
        cpu.write_mem(bus, seg, ea, 8, v as u64)?;
        return cpu.write_mem(bus, seg, ea2, 8, (v >> 64) as u64);
    }
    cpu.write_mem(bus, seg, ea, size.clamp(1, 8), v as u64)
}

fn is_xmm_op(i: &Insn, n: usize) -> bool {
    i.inst.op_kind(n as u32) == IOp::Register && i.inst.op_register(n as u32).is_xmm()
}

/// Operand `n`: XMM, MMX or general register, memory (its own size,
/// zero-extended) or the immediate.
pub fn load(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, n: usize) -> Result<u128> {
    let o = i.op[n];
    Ok(match o.kind {
        OpKind::Other => {
            if is_xmm_op(i, n) {
                cpu.s.xmm(o.reg as usize)
            } else {
                mmx::mm_get(cpu, o.reg) as u128
            }
        }
        OpKind::Reg => cpu.get_reg(o.reg, o.hi, o.size) as u128,
        OpKind::Mem => return load_mem(cpu, bus, i, o.size),
        OpKind::Imm => (i.imm & 0xff) as u128,
        _ => 0,
    })
}

/// Write operand `n` (a register gets all of `v`: callers merge).
pub fn store(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, n: usize, v: u128) -> Result<()> {
    let o = i.op[n];
    match o.kind {
        OpKind::Other => {
            if is_xmm_op(i, n) {
                cpu.s.set_xmm(o.reg as usize, v);
            } else {
                mmx::mm_set(cpu, o.reg, v as u64);
            }
            Ok(())
        }
        OpKind::Reg => {
            cpu.put_reg(o.reg, false, o.size, v as u64);
            Ok(())
        }
        OpKind::Mem => store_mem(cpu, bus, i, o.size, v),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------
// Lane helpers

#[inline]
pub fn lane(v: u128, bits: u32, k: u32) -> u64 {
    let m = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (v >> (bits * k)) as u64 & m
}

#[inline]
pub fn put_lane(v: u128, bits: u32, k: u32, x: u64) -> u128 {
    let m: u128 = if bits == 64 {
        u64::MAX as u128
    } else {
        ((1u64 << bits) - 1) as u128
    };
    (v & !(m << (bits * k))) | ((x as u128 & m) << (bits * k))
}

fn map2(a: u128, b: u128, bits: u32, w: u32, f: impl Fn(u64, u64) -> u64) -> u128 {
    (0..w * 8 / bits).fold(0, |r, k| {
        put_lane(r, bits, k, f(lane(a, bits, k), lane(b, bits, k)))
    })
}

#[inline]
fn sx(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

fn sat_s(v: i64, bits: u32) -> u64 {
    v.clamp(-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1) as u64
}

fn sat_u(v: i64, bits: u32) -> u64 {
    v.clamp(0, (1i64 << bits) - 1) as u64
}

fn mask_if(c: bool) -> u64 {
    if c {
        !0
    } else {
        0
    }
}

fn width_mask(w: u32) -> u128 {
    if w == 16 {
        u128::MAX
    } else {
        u64::MAX as u128
    }
}

// ---------------------------------------------------------------------
// Decode-time dispatch

/// Everything but the MMX-register-only forms, which go to `mmx.rs` first
/// and come back through `handler_mm` if it does not know them.
pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    if uses_mm(inst) && !uses_xmm(inst) {
        return None;
    }
    dispatch(m, inst)
}

/// The MMX-register forms that SSE/SSE2/SSSE3 added (PMINUB mm, PSHUFW,
/// PADDQ mm, PSHUFB mm...).
pub fn handler_mm(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    if !uses_mm(inst) {
        return None;
    }
    dispatch(m, inst)
}

fn dispatch(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    let xmm = uses_xmm(inst);
    let mm = uses_mm(inst);
    let vec = xmm || mm;
    Some(match m {
        Ldmxcsr => h_ldmxcsr,
        Stmxcsr => h_stmxcsr,
        Clflush => h_clflush,
        Popcnt => h_popcnt,
        Crc32 => h_crc32,
        Movnti => h_movnti,
        Movaps | Movapd | Movdqa | Movups | Movupd | Movdqu | Lddqu | Movntps | Movntpd
        | Movntdq | Movntdqa | Movntq => h_movfull,
        Movd | Movq if vec => h_movdq,
        Movss | Movsd if xmm => h_movs,
        Movlps | Movlpd | Movhps | Movhpd | Movlhps | Movhlps => h_movhalf,
        Movq2dq | Movdq2q => h_movdq,
        Movshdup | Movsldup | Movddup => h_sse3mov,
        Movmskps | Movmskpd | Pmovmskb => h_movmsk,
        Maskmovq | Maskmovdqu => h_maskmov,
        Pextrb | Pextrw | Pextrd | Pextrq | Extractps => h_pextr,
        Pinsrb | Pinsrw | Pinsrd | Pinsrq | Insertps => h_pinsr,
        Pcmpestri | Pcmpestri64 | Pcmpestrm | Pcmpestrm64 | Pcmpistri | Pcmpistrm => h_pcmpstr,
        Ptest => h_ptest,
        // These name no vector register with a memory source.
        Cvtss2si | Cvttss2si | Cvtsd2si | Cvttsd2si if !vec => {
            return crate::ops::ssefp::handler(m, inst)
        }
        _ if !vec => return None,
        _ if int_op(m) => {
            if mm {
                h_int::<8>
            } else {
                h_int::<16>
            }
        }
        _ => return crate::ops::ssefp::handler(m, inst),
    })
}

fn int_op(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Paddb
            | Paddw
            | Paddd
            | Paddq
            | Psubb
            | Psubw
            | Psubd
            | Psubq
            | Paddsb
            | Paddsw
            | Paddusb
            | Paddusw
            | Psubsb
            | Psubsw
            | Psubusb
            | Psubusw
            | Pcmpeqb
            | Pcmpeqw
            | Pcmpeqd
            | Pcmpeqq
            | Pcmpgtb
            | Pcmpgtw
            | Pcmpgtd
            | Pcmpgtq
            | Pminub
            | Pminuw
            | Pminud
            | Pminsb
            | Pminsw
            | Pminsd
            | Pmaxub
            | Pmaxuw
            | Pmaxud
            | Pmaxsb
            | Pmaxsw
            | Pmaxsd
            | Pavgb
            | Pavgw
            | Pmullw
            | Pmulhw
            | Pmulhuw
            | Pmuludq
            | Pmaddwd
            | Psadbw
            | Pmulld
            | Pmuldq
            | Pand
            | Pandn
            | Por
            | Pxor
            | Andps
            | Andpd
            | Andnps
            | Andnpd
            | Orps
            | Orpd
            | Xorps
            | Xorpd
            | Psllw
            | Pslld
            | Psllq
            | Psrlw
            | Psrld
            | Psrlq
            | Psraw
            | Psrad
            | Pslldq
            | Psrldq
            | Punpcklbw
            | Punpcklwd
            | Punpckldq
            | Punpcklqdq
            | Punpckhbw
            | Punpckhwd
            | Punpckhdq
            | Punpckhqdq
            | Unpcklps
            | Unpcklpd
            | Unpckhps
            | Unpckhpd
            | Packsswb
            | Packssdw
            | Packuswb
            | Packusdw
            | Pshufd
            | Pshuflw
            | Pshufhw
            | Pshufw
            | Shufps
            | Shufpd
            | Pshufb
            | Palignr
            | Phaddw
            | Phaddd
            | Phaddsw
            | Phsubw
            | Phsubd
            | Phsubsw
            | Pmaddubsw
            | Pmulhrsw
            | Psignb
            | Psignw
            | Psignd
            | Pabsb
            | Pabsw
            | Pabsd
            | Pblendw
            | Blendps
            | Blendpd
            | Blendvps
            | Blendvpd
            | Pblendvb
            | Pmovsxbw
            | Pmovsxbd
            | Pmovsxbq
            | Pmovsxwd
            | Pmovsxwq
            | Pmovsxdq
            | Pmovzxbw
            | Pmovzxbd
            | Pmovzxbq
            | Pmovzxwd
            | Pmovzxwq
            | Pmovzxdq
            | Phminposuw
            | Mpsadbw
    )
}

// ---------------------------------------------------------------------
// MXCSR, cache control

fn h_ldmxcsr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    sse_enter(cpu)?;
    let v = load_mem(cpu, bus, i, 4)? as u32;
    if v & !crate::fpu::MXCSR_MASK != 0 {
        return Err(Exception::gp0());
    }
    cpu.s.fpu.mxcsr = v;
    Ok(())
}

fn h_stmxcsr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    sse_enter(cpu)?;
    let v = cpu.s.fpu.mxcsr;
    store_mem(cpu, bus, i, 4, v as u128)
}

/// CLFLUSH: there are no caches to flush, but the operand is checked like
/// a byte read (segment limit and read rights, paging) as on hardware.
fn h_clflush(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    let lin = cpu.seg_lin(seg, ea, 1, false)?;
    let user = cpu.user_access();
    cpu.translate(lin, crate::mmu::Access::Read, user)
        .map(|_| ())
}

// ---------------------------------------------------------------------
// POPCNT, CRC32, MOVNTI

fn h_popcnt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = cpu.read_op(bus, i, 1)?;
    cpu.write_op(bus, i, 0, v.count_ones() as u64)?;
    // ZF tells a zero source; OF SF AF CF PF are cleared.
    cpu.s
        .flags
        .set_arith(ARITH_FLAGS, if v == 0 { FLAG_ZF } else { 0 });
    Ok(())
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) over the source's
/// bytes, little-endian first.
fn crc32c(mut crc: u32, v: u64, bytes: u8) -> u32 {
    for k in 0..bytes {
        crc ^= (v >> (8 * k)) as u8 as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn h_crc32(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = cpu.read_op(bus, i, 1)?;
    let d = i.op[0];
    let acc = cpu.get_reg(d.reg, false, 4) as u32;
    let r = crc32c(acc, v, i.op[1].size);
    // The 64-bit form zero-extends its 32-bit result.
    cpu.put_reg(d.reg, false, 8, r as u64);
    Ok(())
}

fn h_movnti(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = cpu.read_op(bus, i, 1)?;
    cpu.write_op(bus, i, 0, v)
}

// ---------------------------------------------------------------------
// Moves

/// Whole-register moves: MOVAPS/MOVUPS/MOVDQA/..., non-temporal stores,
/// MOVNTQ and LDDQU.
fn h_movfull(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    enter(cpu, bus, i)?;
    let v = load(cpu, bus, i, 1)?;
    store(cpu, bus, i, 0, v)?;
    mm_done(cpu, i);
    Ok(())
}

/// MOVD/MOVQ with an XMM register, MOVQ2DQ and MOVDQ2Q: the low 32 or 64
/// bits move, a register destination is zero-extended.
fn h_movdq(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    enter(cpu, bus, i)?;
    let bits = if i.inst.mnemonic() == Mnemonic::Movd {
        32
    } else {
        64
    };
    let v = lane(load(cpu, bus, i, 1)?, bits, 0);
    store(cpu, bus, i, 0, v as u128)?;
    mm_done(cpu, i);
    Ok(())
}

/// MOVSS/MOVSD: register to register merges the low element; a load
/// zeroes the rest; a store writes the low element.
fn h_movs(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    sse_enter(cpu)?;
    let bits = if i.inst.mnemonic() == Mnemonic::Movss {
        32
    } else {
        64
    };
    let v = lane(load(cpu, bus, i, 1)?, bits, 0);
    match (i.op[0].kind, i.op[1].kind) {
        (OpKind::Other, OpKind::Other) => {
            let d = cpu.s.xmm(i.op[0].reg as usize);
            cpu.s.set_xmm(i.op[0].reg as usize, put_lane(d, bits, 0, v));
            Ok(())
        }
        _ => store(cpu, bus, i, 0, v as u128),
    }
}

/// MOVLPS/MOVHPS/MOVLPD/MOVHPD/MOVLHPS/MOVHLPS: one quadword moves.
fn h_movhalf(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    sse_enter(cpu)?;
    let m = i.inst.mnemonic();
    let s = load(cpu, bus, i, 1)?;
    let (from, to) = match m {
        Movlhps => (0, 1),
        Movhlps => (1, 0),
        Movhps | Movhpd if i.op[0].kind == OpKind::Mem => (1, 0),
        Movhps | Movhpd => (0, 1),
        _ => (0, 0),
    };
    let q = lane(s, 64, from);
    if i.op[0].kind == OpKind::Mem {
        return store_mem(cpu, bus, i, 8, q as u128);
    }
    let n = i.op[0].reg as usize;
    let d = cpu.s.xmm(n);
    cpu.s.set_xmm(n, put_lane(d, 64, to, q));
    Ok(())
}

fn h_sse3mov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    sse_enter(cpu)?;
    let s = load(cpu, bus, i, 1)?;
    let r = match i.inst.mnemonic() {
        Movshdup => [1, 1, 3, 3]
            .iter()
            .enumerate()
            .fold(0, |r, (k, &j)| put_lane(r, 32, k as u32, lane(s, 32, j))),
        Movsldup => [0, 0, 2, 2]
            .iter()
            .enumerate()
            .fold(0, |r, (k, &j)| put_lane(r, 32, k as u32, lane(s, 32, j))),
        _ => {
            let q = lane(s, 64, 0) as u128;
            q << 64 | q
        }
    };
    store(cpu, bus, i, 0, r)
}

fn h_movmsk(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus, i)?;
    let s = load(cpu, bus, i, 1)?;
    let w = if is_xmm_op(i, 1) { 16 } else { 8 };
    let bits = match i.inst.mnemonic() {
        Movmskps => 32,
        Movmskpd => 64,
        _ => 8,
    };
    let r = (0..w * 8 / bits).fold(0u64, |r, k| r | (lane(s, bits, k) >> (bits - 1)) << k);
    let d = i.op[0];
    cpu.put_reg(d.reg, false, 8, r);
    mm_done(cpu, i);
    Ok(())
}

/// MASKMOVQ/MASKMOVDQU: bytes of the source whose mask byte has bit 7 set
/// go to DS:(E/R)DI (segment overridable). Every selected byte is checked
/// for writing before any is stored.
fn h_maskmov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    enter(cpu, bus, i)?;
    // Operand 0 is the implicit DS:rDI destination.
    let v = load(cpu, bus, i, 1)?;
    let m = load(cpu, bus, i, 2)?;
    let w = if is_xmm_op(i, 1) { 16 } else { 8 };
    let seg = seg_index(i.inst.memory_segment()).unwrap_or(DS as u8) as usize;
    let amask = size_mask(i.asize);
    let base = cpu.s.gpr[EDI] & amask;
    let sel: Vec<u32> = (0..w).filter(|&k| lane(m, 8, k) & 0x80 != 0).collect();
    for &k in &sel {
        cpu.probe_write(seg, base.wrapping_add(k as u64) & amask, 1)?;
    }
    for &k in &sel {
        let off = base.wrapping_add(k as u64) & amask;
        cpu.write_mem(bus, seg, off, 1, lane(v, 8, k))?;
    }
    mm_done(cpu, i);
    Ok(())
}

/// PEXTRB/W/D/Q and EXTRACTPS: a lane to a general register
/// (zero-extended) or to memory (its own size).
fn h_pextr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus, i)?;
    let s = load(cpu, bus, i, 1)?;
    let w = if is_xmm_op(i, 1) { 16 } else { 8 };
    let bits = match i.inst.mnemonic() {
        Pextrb => 8,
        Pextrw => 16,
        Pextrd | Extractps => 32,
        _ => 64,
    };
    let n = w * 8 / bits;
    let v = lane(s, bits, i.imm as u32 % n);
    if i.op[0].kind == OpKind::Mem {
        store_mem(cpu, bus, i, (bits / 8) as u8, v as u128)?;
    } else {
        // A 32-bit destination zero-extends to 64 bits as usual; the
        // register forms name the full register in 64-bit mode.
        cpu.put_reg(i.op[0].reg, false, i.op[0].size.max(4), v);
    }
    mm_done(cpu, i);
    Ok(())
}

/// PINSRB/W/D/Q and INSERTPS.
fn h_pinsr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    enter(cpu, bus, i)?;
    let m = i.inst.mnemonic();
    let s = load(cpu, bus, i, 1)?;
    let d = load(cpu, bus, i, 0)?;
    let w = if is_xmm_op(i, 0) { 16 } else { 8 };
    let imm = i.imm as u32;
    let r = if m == Insertps {
        // A register source supplies lane imm[7:6]; memory a single dword.
        let src_lane = if i.op[1].kind == OpKind::Mem {
            0
        } else {
            (imm >> 6) & 3
        };
        let mut r = put_lane(d, 32, (imm >> 4) & 3, lane(s, 32, src_lane));
        for k in 0..4 {
            if imm & (1 << k) != 0 {
                r = put_lane(r, 32, k, 0);
            }
        }
        r
    } else {
        let bits = match m {
            Pinsrb => 8,
            Pinsrw => 16,
            Pinsrd => 32,
            _ => 64,
        };
        put_lane(d, bits, imm % (w * 8 / bits), lane(s, bits, 0))
    };
    store(cpu, bus, i, 0, r)?;
    mm_done(cpu, i);
    Ok(())
}

fn h_ptest(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    sse_enter(cpu)?;
    let a = load(cpu, bus, i, 0)?;
    let b = load(cpu, bus, i, 1)?;
    let zf = if a & b == 0 { FLAG_ZF } else { 0 };
    let cf = if !a & b == 0 { FLAG_CF } else { 0 };
    cpu.s.flags.set_arith(ARITH_FLAGS, zf | cf);
    Ok(())
}

// ---------------------------------------------------------------------
// Packed integer operations (MMX and XMM forms)

fn h_int<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    enter(cpu, bus, i)?;
    let b = load(cpu, bus, i, 1)?;
    let a = load(cpu, bus, i, 0)?;
    let x0 = cpu.s.xmm(0);
    let r = int_op_apply(i.inst.mnemonic(), a, b, i.imm as u8, x0, W);
    store(cpu, bus, i, 0, r & width_mask(W))?;
    mm_done(cpu, i);
    Ok(())
}

/// Interleave the low (or high) halves of a and b in `bits`-wide lanes.
fn unpack(a: u128, b: u128, bits: u32, w: u32, high: bool) -> u128 {
    let n = w * 4 / bits;
    let base = if high { n } else { 0 };
    (0..n).fold(0, |r, k| {
        let r = put_lane(r, bits, 2 * k, lane(a, bits, base + k));
        put_lane(r, bits, 2 * k + 1, lane(b, bits, base + k))
    })
}

/// Narrow a's then b's `bits`-wide signed lanes to half width with `sat`.
fn pack(a: u128, b: u128, bits: u32, w: u32, sat: impl Fn(i64) -> u64) -> u128 {
    let n = w * 8 / bits;
    let h = bits / 2;
    (0..n).fold(0, |r, k| {
        let r = put_lane(r, h, k, sat(sx(lane(a, bits, k), bits)));
        put_lane(r, h, n + k, sat(sx(lane(b, bits, k), bits)))
    })
}

/// Pairwise horizontal operation: a's adjacent pairs then b's.
fn horiz(a: u128, b: u128, bits: u32, w: u32, f: impl Fn(i64, i64) -> u64) -> u128 {
    let n = w * 8 / bits / 2;
    (0..n).fold(0, |r, k| {
        let x = f(
            sx(lane(a, bits, 2 * k), bits),
            sx(lane(a, bits, 2 * k + 1), bits),
        );
        let y = f(
            sx(lane(b, bits, 2 * k), bits),
            sx(lane(b, bits, 2 * k + 1), bits),
        );
        put_lane(put_lane(r, bits, k, x), bits, n + k, y)
    })
}

/// Register and memory shift counts are the whole low quadword.
fn shift_count(b: u128) -> u64 {
    b as u64
}

fn int_op_apply(m: Mnemonic, a: u128, b: u128, imm: u8, x0: u128, w: u32) -> u128 {
    use Mnemonic::*;
    let wrap = |bits, f: fn(u64, u64) -> u64| map2(a, b, bits, w, f);
    let sg = |bits: u32, f: &dyn Fn(i64, i64) -> u64| {
        map2(a, b, bits, w, |x, y| f(sx(x, bits), sx(y, bits)))
    };
    let shl = |bits: u32| {
        let c = shift_count(b);
        if c >= bits as u64 {
            0
        } else {
            map2(a, 0, bits, w, |x, _| x << c)
        }
    };
    let shr = |bits: u32| {
        let c = shift_count(b);
        if c >= bits as u64 {
            0
        } else {
            map2(a, 0, bits, w, |x, _| x >> c)
        }
    };
    let sar = |bits: u32| {
        let c = shift_count(b).min(bits as u64 - 1);
        map2(a, 0, bits, w, |x, _| (sx(x, bits) >> c) as u64)
    };
    let shuf4 = |v: u128, sel: u8| -> u128 {
        (0..4).fold(0, |r, k| {
            put_lane(r, 32, k, lane(v, 32, (sel as u32 >> (2 * k)) & 3))
        })
    };
    let shufw = |v: u128, base: u32| -> u128 {
        (0..4).fold(v, |r, k| {
            put_lane(
                r,
                16,
                base + k,
                lane(v, 16, base + ((imm as u32 >> (2 * k)) & 3)),
            )
        })
    };
    let movx = |from: u32, to: u32, signed: bool| -> u128 {
        (0..128 / to).fold(0, |r, k| {
            let x = lane(b, from, k);
            put_lane(r, to, k, if signed { sx(x, from) as u64 } else { x })
        })
    };
    let blend = |bits: u32, sel: &dyn Fn(u32) -> bool| -> u128 {
        (0..128 / bits).fold(a, |r, k| {
            if sel(k) {
                put_lane(r, bits, k, lane(b, bits, k))
            } else {
                r
            }
        })
    };
    let psign = |bits: u32| {
        map2(a, b, bits, w, |x, y| {
            let y = sx(y, bits);
            if y < 0 {
                (sx(x, bits).wrapping_neg()) as u64
            } else if y == 0 {
                0
            } else {
                x
            }
        })
    };
    let pabs = |bits: u32| map2(b, 0, bits, w, |x, _| sx(x, bits).unsigned_abs());
    match m {
        Paddb => wrap(8, |x, y| x.wrapping_add(y)),
        Paddw => wrap(16, |x, y| x.wrapping_add(y)),
        Paddd => wrap(32, |x, y| x.wrapping_add(y)),
        Paddq => wrap(64, |x, y| x.wrapping_add(y)),
        Psubb => wrap(8, |x, y| x.wrapping_sub(y)),
        Psubw => wrap(16, |x, y| x.wrapping_sub(y)),
        Psubd => wrap(32, |x, y| x.wrapping_sub(y)),
        Psubq => wrap(64, |x, y| x.wrapping_sub(y)),
        Paddsb => sg(8, &|x, y| sat_s(x + y, 8)),
        Paddsw => sg(16, &|x, y| sat_s(x + y, 16)),
        Psubsb => sg(8, &|x, y| sat_s(x - y, 8)),
        Psubsw => sg(16, &|x, y| sat_s(x - y, 16)),
        Paddusb => wrap(8, |x, y| sat_u(x as i64 + y as i64, 8)),
        Paddusw => wrap(16, |x, y| sat_u(x as i64 + y as i64, 16)),
        Psubusb => wrap(8, |x, y| sat_u(x as i64 - y as i64, 8)),
        Psubusw => wrap(16, |x, y| sat_u(x as i64 - y as i64, 16)),
        Pcmpeqb => wrap(8, |x, y| mask_if(x == y)),
        Pcmpeqw => wrap(16, |x, y| mask_if(x == y)),
        Pcmpeqd => wrap(32, |x, y| mask_if(x == y)),
        Pcmpeqq => wrap(64, |x, y| mask_if(x == y)),
        Pcmpgtb => sg(8, &|x, y| mask_if(x > y)),
        Pcmpgtw => sg(16, &|x, y| mask_if(x > y)),
        Pcmpgtd => sg(32, &|x, y| mask_if(x > y)),
        Pcmpgtq => sg(64, &|x, y| mask_if(x > y)),
        Pminub => wrap(8, |x, y| x.min(y)),
        Pminuw => wrap(16, |x, y| x.min(y)),
        Pminud => wrap(32, |x, y| x.min(y)),
        Pmaxub => wrap(8, |x, y| x.max(y)),
        Pmaxuw => wrap(16, |x, y| x.max(y)),
        Pmaxud => wrap(32, |x, y| x.max(y)),
        Pminsb => sg(8, &|x, y| x.min(y) as u64),
        Pminsw => sg(16, &|x, y| x.min(y) as u64),
        Pminsd => sg(32, &|x, y| x.min(y) as u64),
        Pmaxsb => sg(8, &|x, y| x.max(y) as u64),
        Pmaxsw => sg(16, &|x, y| x.max(y) as u64),
        Pmaxsd => sg(32, &|x, y| x.max(y) as u64),
        Pavgb => wrap(8, |x, y| (x + y + 1) >> 1),
        Pavgw => wrap(16, |x, y| (x + y + 1) >> 1),
        Pmullw => sg(16, &|x, y| (x * y) as u64),
        Pmulhw => sg(16, &|x, y| ((x * y) >> 16) as u64),
        Pmulhuw => wrap(16, |x, y| (x * y) >> 16),
        Pmulld => sg(32, &|x, y| (x * y) as u64),
        Pmuludq => wrap(64, |x, y| (x & 0xffff_ffff) * (y & 0xffff_ffff)),
        Pmuldq => wrap(64, |x, y| (sx(x, 32) * sx(y, 32)) as u64),
        Pmaddwd => wrap(32, |x, y| {
            let p0 = sx(x & 0xffff, 16) * sx(y & 0xffff, 16);
            let p1 = sx(x >> 16, 16) * sx(y >> 16, 16);
            (p0 + p1) as u64
        }),
        Psadbw => wrap(64, |x, y| {
            (0..8)
                .map(|k| lane(x as u128, 8, k).abs_diff(lane(y as u128, 8, k)))
                .sum()
        }),
        Pand | Andps | Andpd => a & b,
        Pandn | Andnps | Andnpd => !a & b,
        Por | Orps | Orpd => a | b,
        Pxor | Xorps | Xorpd => a ^ b,
        Psllw => shl(16),
        Pslld => shl(32),
        Psllq => shl(64),
        Psrlw => shr(16),
        Psrld => shr(32),
        Psrlq => shr(64),
        Psraw => sar(16),
        Psrad => sar(32),
        Pslldq => {
            if imm > 15 {
                0
            } else {
                a << (8 * imm as u32)
            }
        }
        Psrldq => {
            if imm > 15 {
                0
            } else {
                a >> (8 * imm as u32)
            }
        }
        Punpcklbw => unpack(a, b, 8, w, false),
        Punpcklwd => unpack(a, b, 16, w, false),
        Punpckldq | Unpcklps => unpack(a, b, 32, w, false),
        Punpcklqdq | Unpcklpd => unpack(a, b, 64, w, false),
        Punpckhbw => unpack(a, b, 8, w, true),
        Punpckhwd => unpack(a, b, 16, w, true),
        Punpckhdq | Unpckhps => unpack(a, b, 32, w, true),
        Punpckhqdq | Unpckhpd => unpack(a, b, 64, w, true),
        Packsswb => pack(a, b, 16, w, |v| sat_s(v, 8)),
        Packssdw => pack(a, b, 32, w, |v| sat_s(v, 16)),
        Packuswb => pack(a, b, 16, w, |v| sat_u(v, 8)),
        Packusdw => pack(a, b, 32, w, |v| sat_u(v, 16)),
        Pshufd => shuf4(b, imm),
        Pshuflw => shufw(b, 0),
        Pshufhw => shufw(b, 4),
        Pshufw => (0..4).fold(0, |r, k| {
            put_lane(r, 16, k, lane(b, 16, (imm as u32 >> (2 * k)) & 3))
        }),
        Shufps => {
            let lo = shuf4(a, imm) & u64::MAX as u128;
            let hi = shuf4(b, imm) >> 64;
            hi << 64 | lo
        }
        Shufpd => {
            let lo = lane(a, 64, imm as u32 & 1) as u128;
            let hi = lane(b, 64, (imm as u32 >> 1) & 1) as u128;
            hi << 64 | lo
        }
        Pshufb => (0..w).fold(0, |r, k| {
            let s = lane(b, 8, k);
            let v = if s & 0x80 != 0 {
                0
            } else {
                lane(a, 8, (s as u32) & (w - 1))
            };
            put_lane(r, 8, k, v)
        }),
        Palignr => {
            // Concatenate dest:src and shift right by imm bytes.
            let sh = imm as u32 * 8;
            let (lo, hi) = (b, a);
            let wb = w * 8;
            let pick = |bit: u32| -> u64 {
                if bit < wb {
                    lane(lo, 8, bit / 8)
                } else if bit < 2 * wb {
                    lane(hi, 8, (bit - wb) / 8)
                } else {
                    0
                }
            };
            (0..w).fold(0, |r, k| put_lane(r, 8, k, pick(sh + 8 * k)))
        }
        Phaddw => horiz(a, b, 16, w, |x, y| (x + y) as u64),
        Phaddd => horiz(a, b, 32, w, |x, y| (x + y) as u64),
        Phaddsw => horiz(a, b, 16, w, |x, y| sat_s(x + y, 16)),
        Phsubw => horiz(a, b, 16, w, |x, y| (x - y) as u64),
        Phsubd => horiz(a, b, 32, w, |x, y| (x - y) as u64),
        Phsubsw => horiz(a, b, 16, w, |x, y| sat_s(x - y, 16)),
        Pmaddubsw => wrap(16, |x, y| {
            let p0 = (x & 0xff) as i64 * sx(y & 0xff, 8);
            let p1 = (x >> 8) as i64 * sx(y >> 8, 8);
            sat_s(p0 + p1, 16)
        }),
        Pmulhrsw => sg(16, &|x, y| ((((x * y) >> 14) + 1) >> 1) as u64),
        Psignb => psign(8),
        Psignw => psign(16),
        Psignd => psign(32),
        Pabsb => pabs(8),
        Pabsw => pabs(16),
        Pabsd => pabs(32),
        Pblendw => blend(16, &|k| imm & (1 << k) != 0),
        Blendps => blend(32, &|k| imm & (1 << k) != 0),
        Blendpd => blend(64, &|k| imm & (1 << k) != 0),
        Blendvps => blend(32, &|k| lane(x0, 32, k) >> 31 != 0),
        Blendvpd => blend(64, &|k| lane(x0, 64, k) >> 63 != 0),
        Pblendvb => blend(8, &|k| lane(x0, 8, k) & 0x80 != 0),
        Pmovsxbw => movx(8, 16, true),
        Pmovsxbd => movx(8, 32, true),
        Pmovsxbq => movx(8, 64, true),
        Pmovsxwd => movx(16, 32, true),
        Pmovsxwq => movx(16, 64, true),
        Pmovsxdq => movx(32, 64, true),
        Pmovzxbw => movx(8, 16, false),
        Pmovzxbd => movx(8, 32, false),
        Pmovzxbq => movx(8, 64, false),
        Pmovzxwd => movx(16, 32, false),
        Pmovzxwq => movx(16, 64, false),
        Pmovzxdq => movx(32, 64, false),
        Phminposuw => {
            let (v, k) = (0..8).map(|k| (lane(b, 16, k), k)).min().unwrap_or((0, 0));
            (k as u128) << 16 | v as u128
        }
        Mpsadbw => {
            let ao = 4 * ((imm as u32 >> 2) & 1);
            let bo = 4 * (imm as u32 & 3);
            (0..8).fold(0, |r, k| {
                let s: u64 = (0..4)
                    .map(|j| lane(a, 8, ao + k + j).abs_diff(lane(b, 8, bo + j)))
                    .sum();
                put_lane(r, 16, k, s)
            })
        }
        _ => a,
    }
}

// ---------------------------------------------------------------------
// SSE4.2 string compares (SDM Vol. 1 12.10, Vol. 2 PCMPxSTRx)

fn h_pcmpstr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    sse_enter(cpu)?;
    let m = i.inst.mnemonic();
    let a = load(cpu, bus, i, 0)?;
    let b = load(cpu, bus, i, 1)?;
    let imm = i.imm as u8;
    let words = imm & 1 != 0;
    let signed = imm & 2 != 0;
    let n = if words { 8 } else { 16 };
    let bits = if words { 16 } else { 8 };
    let elem = |v: u128, k: u32| -> i64 {
        let x = lane(v, bits, k);
        if signed {
            sx(x, bits)
        } else {
            x as i64
        }
    };
    // Explicit lengths come from EAX/EDX (RAX/RDX with REX.W), as absolute
    // values saturated to the element count.
    let explicit = matches!(m, Pcmpestri | Pcmpestrm | Pcmpestri64 | Pcmpestrm64);
    let len = |reg: usize| -> u32 {
        if explicit {
            let v = if matches!(m, Pcmpestri64 | Pcmpestrm64) {
                cpu.s.gpr[reg] as i64
            } else {
                cpu.s.gpr[reg] as i32 as i64
            };
            v.unsigned_abs().min(n as u64) as u32
        } else {
            0
        }
    };
    let implicit_len = |v: u128| (0..n).find(|&k| lane(v, bits, k) == 0).unwrap_or(n);
    let (la, lb) = if explicit {
        (len(EAX), len(EDX))
    } else {
        (implicit_len(a), implicit_len(b))
    };
    let agg = (imm >> 2) & 3;
    // Boolean result of comparing a[j] with b[k] for the aggregation,
    // with the SDM's overrides for invalid (past-the-end) elements.
    let cmp = |j: u32, k: u32| -> bool {
        let av = j < la;
        let bv = k < lb;
        match agg {
            0 => av && bv && elem(a, j) == elem(b, k),
            1 => {
                if !av || !bv {
                    false
                } else if j & 1 == 0 {
                    elem(b, k) >= elem(a, j)
                } else {
                    elem(b, k) <= elem(a, j)
                }
            }
            2 => match (av, bv) {
                (true, true) => elem(a, j) == elem(b, k),
                (false, false) => true,
                _ => false,
            },
            _ => match (av, bv) {
                (true, true) => elem(a, j) == elem(b, k),
                (false, _) => true,
                (true, false) => false,
            },
        }
    };
    let mut res1: u32 = 0;
    for k in 0..n {
        let hit = match agg {
            0 => (0..n).any(|j| cmp(j, k)),
            1 => (0..n).step_by(2).any(|j| cmp(j, k) && cmp(j + 1, k)),
            2 => cmp(k, k),
            _ => (0..n - k).all(|j| cmp(j, k + j)),
        };
        if hit {
            res1 |= 1 << k;
        }
    }
    let full = (1u32 << n) - 1;
    let res2 = match (imm >> 4) & 3 {
        1 => res1 ^ full,
        3 => res1 ^ ((1u32 << lb) - 1),
        _ => res1,
    } & full;
    if matches!(m, Pcmpestri | Pcmpestri64 | Pcmpistri) {
        let idx = if res2 == 0 {
            n
        } else if imm & 0x40 != 0 {
            31 - res2.leading_zeros()
        } else {
            res2.trailing_zeros()
        };
        cpu.put_reg(ECX as u8, false, 4, idx as u64);
    } else {
        let r = if imm & 0x40 != 0 {
            (0..n).fold(0u128, |r, k| {
                put_lane(r, bits, k, if res2 & (1 << k) != 0 { !0 } else { 0 })
            })
        } else {
            res2 as u128
        };
        cpu.s.set_xmm(0, r);
    }
    let mut f = 0;
    if res2 != 0 {
        f |= FLAG_CF;
    }
    if lb < n {
        f |= FLAG_ZF;
    }
    if la < n {
        f |= FLAG_SF;
    }
    if res2 & 1 != 0 {
        f |= FLAG_OF;
    }
    cpu.s.flags.set_arith(ARITH_FLAGS, f);
    Ok(())
}
