//! String instructions with REP/REPE/REPNE: MOVS, CMPS, SCAS, LODS, STOS,
//! INS, OUTS. Every iteration commits SI/DI/CX, so a fault part-way leaves a
//! restartable state, as on hardware.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Result;
use crate::flags::size_mask;
use crate::insn::*;
use crate::ops::add_sized;
use crate::ops::alu::alu;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, _inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Movsb | Movsw | Movsd | Movsq => h_movs,
        Stosb | Stosw | Stosd | Stosq => h_stos,
        Lodsb | Lodsw | Lodsd | Lodsq => h_lods,
        Cmpsb | Cmpsw | Cmpsd | Cmpsq => h_cmps,
        Scasb | Scasw | Scasd | Scasq => h_scas,
        Insb | Insw | Insd => h_ins,
        Outsb | Outsw | Outsd => h_outs,
        _ => return None,
    })
}

/// Iterations run per handler call before yielding to interrupts; the
/// instruction then restarts with the remaining count.
const CHUNK: u64 = 4096;

#[derive(Clone, Copy)]
struct Str {
    asize: u8,
    amask: u64,
    delta: u64,
    size: u8,
}

fn setup(c: &Cpu, i: &Insn, size: u8) -> Str {
    let amask = size_mask(i.asize);
    let delta = if c.s.flags.raw_bits() & FLAG_DF != 0 {
        (size as u64).wrapping_neg()
    } else {
        size as u64
    };
    Str {
        asize: i.asize,
        amask,
        delta,
        size,
    }
}

#[inline]
fn adv(c: &mut Cpu, reg: usize, s: Str) {
    c.s.gpr[reg] = add_sized(c.s.gpr[reg], s.delta, s.asize);
}

/// `adv` `n` times over.
#[inline]
fn adv_by(c: &mut Cpu, reg: usize, s: Str, n: u64) {
    c.s.gpr[reg] = add_sized(c.s.gpr[reg], s.delta.wrapping_mul(n), s.asize);
}

#[inline]
fn count(c: &Cpu, s: Str) -> u64 {
    c.s.gpr[ECX] & s.amask
}

#[inline]
fn dec_count(c: &mut Cpu, s: Str) {
    c.s.gpr[ECX] = add_sized(c.s.gpr[ECX], u64::MAX, s.asize);
}

/// Drive a string operation: `step` does one element and returns false to
/// stop (REPE/REPNE termination is decided by the caller's closure).
#[inline]
fn run(
    c: &mut Cpu,
    b: &mut dyn Bus,
    i: &Insn,
    s: Str,
    mut step: impl FnMut(&mut Cpu, &mut dyn Bus) -> Result<bool>,
) -> Result<()> {
    if i.rep == 0 {
        step(c, b)?;
        return Ok(());
    }
    let mut n = 0;
    while count(c, s) != 0 {
        let more = step(c, b)?;
        dec_count(c, s);
        if !more {
            return Ok(());
        }
        n += 1;
        if n >= CHUNK && count(c, s) != 0 {
            // Yield: re-execute this instruction for the rest.
            c.next_rip = c.s.rip;
            c.end_block = true;
            return Ok(());
        }
    }
    Ok(())
}

/// `run` for REP MOVS/STOS going upwards, with `bulk` doing as many of at
/// most `max` elements as it can straight in RAM (returning how many, 0 if
/// none) before each element that has to take `step`'s ordinary path. The
/// registers and the yield points come out exactly as with `run`.
#[inline]
fn run_bulk(
    c: &mut Cpu,
    b: &mut dyn Bus,
    s: Str,
    mut bulk: impl FnMut(&mut Cpu, u64) -> u64,
    mut step: impl FnMut(&mut Cpu, &mut dyn Bus) -> Result<bool>,
) -> Result<()> {
    let mut n = 0;
    while count(c, s) != 0 {
        let k = bulk(c, count(c, s).min(CHUNK - n));
        if k != 0 {
            c.s.gpr[ECX] = add_sized(c.s.gpr[ECX], k.wrapping_neg(), s.asize);
            n += k;
        } else {
            step(c, b)?;
            dec_count(c, s);
            n += 1;
        }
        if n >= CHUNK && count(c, s) != 0 {
            c.next_rip = c.s.rip;
            c.end_block = true;
            return Ok(());
        }
    }
    Ok(())
}

/// Bulk string path only for REP going upwards.
#[inline]
fn bulk_ok(i: &Insn, s: Str) -> bool {
    i.rep != 0 && s.delta == s.size as u64
}

fn h_movs(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[0].size);
    let seg = i.mem.seg as usize;
    if bulk_ok(i, s) {
        let sz = s.size as u64;
        let bulk = |c: &mut Cpu, max: u64| {
            let si = c.s.gpr[ESI] & s.amask;
            let di = c.s.gpr[EDI] & s.amask;
            let Some((src, n1)) = c.direct_span(seg, si, s.size, s.amask, max, false) else {
                return 0;
            };
            let Some((dst, n2)) = c.direct_span(ES, di, s.size, s.amask, max, true) else {
                return 0;
            };
            let mut n = n1.min(n2);
            // Element by element, a destination just above the source
            // repeats the source's start; copy only what does not overlap.
            if dst > src && ((dst - src) as u64) < n * sz {
                n = (dst - src) as u64 / sz;
                if n == 0 {
                    return 0;
                }
            }
            let len = (n * sz) as usize;
            c.mem.ram.copy_within(src..src + len, dst);
            adv_by(c, ESI, s, n);
            adv_by(c, EDI, s, n);
            n
        };
        return run_bulk(c, b, s, bulk, |c, b| {
            let v = c.read_mem(b, seg, c.s.gpr[ESI] & s.amask, s.size)?;
            c.write_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size, v)?;
            adv(c, ESI, s);
            adv(c, EDI, s);
            Ok(true)
        });
    }
    run(c, b, i, s, |c, b| {
        let v = c.read_mem(b, seg, c.s.gpr[ESI] & s.amask, s.size)?;
        c.write_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size, v)?;
        adv(c, ESI, s);
        adv(c, EDI, s);
        Ok(true)
    })
}

fn h_stos(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[0].size);
    let v = c.s.gpr[EAX] & size_mask(s.size);
    if bulk_ok(i, s) {
        let bytes = v.to_le_bytes();
        let pat = &bytes[..s.size as usize];
        let bulk = |c: &mut Cpu, max: u64| {
            let di = c.s.gpr[EDI] & s.amask;
            let Some((dst, n)) = c.direct_span(ES, di, s.size, s.amask, max, true) else {
                return 0;
            };
            let area = &mut c.mem.ram[dst..dst + (n * s.size as u64) as usize];
            if s.size == 1 {
                area.fill(v as u8);
            } else {
                for e in area.chunks_exact_mut(pat.len()) {
                    e.copy_from_slice(pat);
                }
            }
            adv_by(c, EDI, s, n);
            n
        };
        return run_bulk(c, b, s, bulk, |c, b| {
            c.write_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size, v)?;
            adv(c, EDI, s);
            Ok(true)
        });
    }
    run(c, b, i, s, |c, b| {
        c.write_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size, v)?;
        adv(c, EDI, s);
        Ok(true)
    })
}

fn h_lods(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[1].size);
    let seg = i.mem.seg as usize;
    run(c, b, i, s, |c, b| {
        let v = c.read_mem(b, seg, c.s.gpr[ESI] & s.amask, s.size)?;
        c.put_reg(EAX as u8, false, s.size, v);
        adv(c, ESI, s);
        Ok(true)
    })
}

fn h_cmps(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[0].size);
    let seg = i.mem.seg as usize;
    let rep = i.rep;
    run(c, b, i, s, |c, b| {
        let x = c.read_mem(b, seg, c.s.gpr[ESI] & s.amask, s.size)?;
        let y = c.read_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size)?;
        alu(c, crate::ops::alu::CMP, s.size, x, y);
        adv(c, ESI, s);
        adv(c, EDI, s);
        Ok(rep_continue(c, rep))
    })
}

fn h_scas(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[1].size);
    let a = c.s.gpr[EAX] & size_mask(s.size);
    let rep = i.rep;
    run(c, b, i, s, |c, b| {
        let y = c.read_mem(b, ES, c.s.gpr[EDI] & s.amask, s.size)?;
        alu(c, crate::ops::alu::CMP, s.size, a, y);
        adv(c, EDI, s);
        Ok(rep_continue(c, rep))
    })
}

/// REPE continues while ZF=1, REPNE while ZF=0.
#[inline]
fn rep_continue(c: &Cpu, rep: u8) -> bool {
    match rep {
        1 => c.s.flags.zf(),
        2 => !c.s.flags.zf(),
        _ => true,
    }
}

fn h_ins(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[0].size);
    let port = c.s.gpr[EDX] as u16;
    c.check_io(b, port, s.size)?;
    c.poll = true;
    run(c, b, i, s, |c, b| {
        let off = c.s.gpr[EDI] & s.amask;
        // The destination must be writable before the port is read.
        c.probe_write(ES, off, s.size)?;
        b.sync_time(c.icount);
        let v = b.io_read(port, s.size) as u64;
        c.write_mem(b, ES, off, s.size, v)?;
        adv(c, EDI, s);
        Ok(true)
    })
}

fn h_outs(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let s = setup(c, i, i.op[1].size);
    let port = c.s.gpr[EDX] as u16;
    let seg = i.mem.seg as usize;
    c.check_io(b, port, s.size)?;
    run(c, b, i, s, |c, b| {
        let v = c.read_mem(b, seg, c.s.gpr[ESI] & s.amask, s.size)?;
        b.sync_time(c.icount);
        b.io_write(port, s.size, v as u32);
        adv(c, ESI, s);
        Ok(true)
    })
}
