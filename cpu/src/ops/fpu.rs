//! x87 instructions (SDM Vol. 1 ch. 8, Vol. 2 "F..." pages).
//!
//! Every handler checks CR0.EM/TS (#NM) and, for waiting instructions, a
//! pending unmasked exception (#MF with CR0.NE=1, FERR# otherwise). Work is
//! done on a copy of the FPU state that is committed only after the memory
//! writes succeeded, so a page fault leaves the FPU as it was.
//!
//! Unmasked exceptions follow the SDM: IE, DE and ZE leave the destination
//! alone; OE and UE deliver the result with its exponent biased by -/+24576
//! (basic arithmetic and FSCALE only); PE delivers the rounded result. All
//! of them set ES/B and are reported by the next waiting instruction.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result, MF, NM};
use crate::flags::size_mask;
use crate::fpu::trans::{self, Q};
use crate::fpu::*;
use crate::insn::*;
use crate::state::*;
use iced_x86::{Code, Instruction, MemorySize, Mnemonic, Register};

// ---------------------------------------------------------------------
// Entry checks and bookkeeping

/// #NM for CR0.EM or CR0.TS, then for waiting instructions the pending
/// exception check.
pub fn fpu_enter(cpu: &mut Cpu, bus: &mut dyn Bus, wait: bool) -> Result<()> {
    if cpu.s.cr0 & (CR0_EM | CR0_TS) != 0 {
        return Err(Exception::new(NM));
    }
    if wait {
        pending(cpu, bus)?;
    }
    Ok(())
}

/// Deliver a pending unmasked x87 exception: #MF when CR0.NE=1, else assert
/// FERR# (IRQ 13 on a PC) and carry on, as the PC's compatibility mode does.
pub fn pending(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    if cpu.s.fpu.fsw & SW_ES != 0 {
        if cpu.s.cr0 & CR0_NE != 0 {
            return Err(Exception::new(MF));
        }
        bus.ferr(true);
    }
    Ok(())
}

/// Drop FERR# if the instruction cleared ES.
fn ferr_sync(cpu: &Cpu, bus: &mut dyn Bus, had_es: bool) {
    if had_es && cpu.s.fpu.fsw & SW_ES == 0 {
        bus.ferr(false);
    }
}

fn has_mem(i: &Insn) -> bool {
    i.op[0].kind == OpKind::Mem || i.op[1].kind == OpKind::Mem
}

/// The 11-bit opcode (low 3 bits of the escape byte, then ModRM) for FOP.
/// Memory forms record mod=00 and r/m of the base register: the exact
/// ModRM of a memory form is not kept by the decoder.
fn fop_of(i: &Insn) -> u16 {
    let oc = i.inst.op_code();
    let esc = (oc.op_code() & 7) as u16;
    let reg = (oc.group_index().max(0) as u16) & 7;
    let modrm = if has_mem(i) {
        (reg << 3) | (i.mem.base as u16 & 7)
    } else {
        let rm = if oc.is_rm_group() {
            oc.rm_group_index().max(0) as u16
        } else {
            (0..i.inst.op_count())
                .map(|k| i.inst.op_register(k))
                .find(|r| r.is_st() && *r != Register::ST0)
                .map(|r| r.number() as u16)
                .unwrap_or(0)
        };
        0xc0 | (reg << 3) | (rm & 7)
    };
    (esc << 8) | modrm
}

/// Record the last instruction and operand pointers (non-control instructions).
fn note(cpu: &mut Cpu, i: &Insn) {
    let fop = fop_of(i);
    let mem = has_mem(i);
    let ea = if mem { cpu.ea(i) } else { 0 };
    let f = &mut cpu.s.fpu;
    f.fip = cpu.s.rip;
    f.fcs = cpu.s.seg[CS].selector;
    f.fop = fop;
    if mem {
        f.fdp = ea;
        f.fds = cpu.s.seg[i.mem.seg as usize].selector;
    }
}

fn sti(inst: &Instruction, n: u32) -> usize {
    let r = inst.op_register(n);
    if r.is_st() {
        r.number()
    } else {
        0
    }
}

// ---------------------------------------------------------------------
// Memory helpers (multi-chunk accesses are probed before anything is written)

fn chunk(n: usize) -> u8 {
    if n >= 8 {
        8
    } else if n >= 4 {
        4
    } else if n >= 2 {
        2
    } else {
        1
    }
}

pub fn load_bytes(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, out: &mut [u8]) -> Result<()> {
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    let mut k = 0;
    while k < out.len() {
        let n = chunk(out.len() - k);
        let off = ea.wrapping_add(k as u64) & size_mask(i.asize);
        let v = cpu.read_mem(bus, seg, off, n)?;
        out[k..k + n as usize].copy_from_slice(&v.to_le_bytes()[..n as usize]);
        k += n as usize;
    }
    Ok(())
}

pub fn store_bytes(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn, data: &[u8]) -> Result<()> {
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    let mut k = 0;
    while k < data.len() {
        let n = chunk(data.len() - k);
        cpu.probe_write(seg, ea.wrapping_add(k as u64) & size_mask(i.asize), n)?;
        k += n as usize;
    }
    k = 0;
    while k < data.len() {
        let n = chunk(data.len() - k);
        let mut b = [0u8; 8];
        b[..n as usize].copy_from_slice(&data[k..k + n as usize]);
        let off = ea.wrapping_add(k as u64) & size_mask(i.asize);
        cpu.write_mem(bus, seg, off, n, u64::from_le_bytes(b))?;
        k += n as usize;
    }
    Ok(())
}

/// Load a memory operand as an extended value, with the exceptions of the
/// conversion (IE for SNaN, DE for denormals of the smaller formats).
fn load_mem_value(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<(F80, u16)> {
    let ms = i.inst.memory_size();
    let ea = cpu.ea(i);
    let seg = i.mem.seg as usize;
    Ok(match ms {
        MemorySize::Float32 => {
            let v = cpu.read_mem(bus, seg, ea, 4)? as u32;
            let _s = Sf::begin(0, 80);
            let r = from_f32(v);
            let mut e = _s.flags();
            if v & 0x7f80_0000 == 0 && v & 0x7f_ffff != 0 {
                e |= SW_DE;
            }
            (r, e)
        }
        MemorySize::Float64 => {
            let v = cpu.read_mem(bus, seg, ea, 8)?;
            let s = Sf::begin(0, 80);
            let r = from_f64(v);
            let mut e = s.flags();
            if v & 0x7ff0_0000_0000_0000 == 0 && v & 0xf_ffff_ffff_ffff != 0 {
                e |= SW_DE;
            }
            (r, e)
        }
        MemorySize::Float80 => {
            let mut b = [0u8; 10];
            load_bytes(cpu, bus, i, &mut b)?;
            (F80::from_bytes(&b), 0)
        }
        MemorySize::Int16 => {
            let v = cpu.read_mem(bus, seg, ea, 2)? as u16 as i16;
            (from_i64(v as i64), 0)
        }
        MemorySize::Int32 => {
            let v = cpu.read_mem(bus, seg, ea, 4)? as u32 as i32;
            (from_i64(v as i64), 0)
        }
        MemorySize::Int64 => {
            let v = cpu.read_mem(bus, seg, ea, 8)? as i64;
            (from_i64(v), 0)
        }
        _ => (F80::INDEFINITE, 0),
    })
}

// ---------------------------------------------------------------------
// Exception responses

/// Set exception bits; returns true if every one of `exc` that blocks the
/// result (IE, DE, ZE) is masked.
fn raise(f: &mut FpuState, exc: u16) -> bool {
    f.fsw |= exc;
    f.update_es();
    exc & (SW_IE | SW_DE | SW_ZE) & !f.fcw == 0
}

/// Stack underflow (#IS, C1=0). True if masked.
fn underflow(f: &mut FpuState) -> bool {
    f.fsw &= !SW_C1;
    raise(f, SW_IE | SW_SF)
}

/// Stack overflow (#IS, C1=1). True if masked.
fn overflow(f: &mut FpuState) -> bool {
    f.fsw |= SW_C1;
    raise(f, SW_IE | SW_SF)
}

/// Set C1 from the rounding direction: |res| rounded up from the exact value.
fn set_c1(f: &mut FpuState, up: bool) {
    if up {
        f.fsw |= SW_C1;
    } else {
        f.fsw &= !SW_C1;
    }
}

fn mag(a: F80) -> (u16, u64) {
    (a.exp(), a.mant)
}

/// The result of a binary operation, or None when an unmasked exception
/// suppresses it. Status bits and C1 are updated in `f`.
fn binop(f: &mut FpuState, op: Arith, a: F80, b: F80) -> Option<F80> {
    if a.is_unsupported() || b.is_unsupported() {
        return raise(f, SW_IE).then_some(F80::INDEFINITE);
    }
    let nan = a.is_nan() || b.is_nan();
    if !nan && (a.is_denormal() || b.is_denormal()) && !raise(f, SW_DE) {
        return None;
    }
    let (rm, pc) = (f.rounding(), f.precision());
    let s = Sf::begin(rm, pc);
    let mut r = sf_arith(op, a, b);
    let mut exc = s.flags();
    if exc & (SW_IE | SW_ZE) != 0 {
        return raise(f, exc & (SW_IE | SW_ZE)).then_some(r);
    }
    // An exact tiny result is an underflow only when UE is unmasked.
    if f.fcw & SW_UE == 0 && r.is_denormal() {
        exc |= SW_UE;
    }
    let mut up = false;
    if exc & SW_PE != 0 {
        s.set_rounding(softfloat_sys::softfloat_round_minMag);
        let t = sf_arith(op, a, b);
        up = mag(r) > mag(t);
    }
    if exc & (SW_OE | SW_UE) & !f.fcw != 0 {
        if let Some((v, u, inexact)) = biased(op, a, b, rm, pc, exc & SW_OE != 0) {
            r = v;
            up = u;
            exc = (exc & (SW_OE | SW_UE)) | if inexact { SW_PE } else { 0 };
        }
    }
    set_c1(f, up);
    raise(f, exc);
    Some(r)
}

/// Unmasked overflow/underflow: the correctly rounded result with its
/// exponent biased by -24576 (overflow) or +24576 (underflow). Computed on
/// operands scaled into range so that the rounding is the same.
fn biased(op: Arith, a: F80, b: F80, rm: u8, pc: u8, over: bool) -> Option<(F80, bool, bool)> {
    let (an, ea) = normalize(a);
    let (bn, eb) = normalize(b);
    let (x, y, k) = match op {
        Arith::Mul => (an, bn, ea + eb),
        Arith::Div => (an, bn, ea - eb),
        Arith::Add | Arith::Sub => {
            let m = ea.max(eb);
            (scale_exact(an, ea - m)?, scale_exact(bn, eb - m)?, m)
        }
    };
    let s = Sf::begin(rm, pc);
    let r = sf_arith(op, x, y);
    let inexact = s.flags() & SW_PE != 0;
    s.set_rounding(softfloat_sys::softfloat_round_minMag);
    let t = sf_arith(op, x, y);
    let bias = if over { -24576 } else { 24576 };
    let (rn, er) = normalize(r);
    Some((scale_exact(rn, er + k + bias)?, mag(r) > mag(t), inexact))
}

/// NaN result of a one-operand instruction (IE for SNaN); None if unmasked.
fn nan1(f: &mut FpuState, a: F80) -> Option<F80> {
    if a.is_unsupported() {
        return raise(f, SW_IE).then_some(F80::INDEFINITE);
    }
    if a.is_snan() && !raise(f, SW_IE) {
        return None;
    }
    Some(a.quiet())
}

/// NaN result of a two-operand instruction by the x87 propagation rules.
fn nan2(f: &mut FpuState, a: F80, b: F80) -> Option<F80> {
    if a.is_unsupported() || b.is_unsupported() {
        return raise(f, SW_IE).then_some(F80::INDEFINITE);
    }
    let s = Sf::begin(0, 80);
    let r = sf_arith(Arith::Add, a, b);
    let e = s.flags() & SW_IE;
    if e != 0 && !raise(f, e) {
        return None;
    }
    Some(r)
}

/// Round a 128-bit transcendental result to extended precision with the
/// current rounding mode; sets PE/UE/OE and C1.
fn round_q(f: &mut FpuState, v: Q) -> F80 {
    let s = Sf::begin(f.rounding(), 80);
    let r = v.to_f80();
    let mut exc = s.flags();
    if f.fcw & SW_UE == 0 && r.is_denormal() {
        exc |= SW_UE;
    }
    let up = exc & SW_PE != 0 && v.abs().lt(Q::from_f80(r).abs());
    set_c1(f, up);
    raise(f, exc);
    r
}

// ---------------------------------------------------------------------
// Handler table

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Fld => h_fld,
        Fild => h_fild,
        Fbld => h_fbld,
        Fst | Fstp | Fstpnce => h_fst,
        Fist | Fistp | Fisttp => h_fist,
        Fbstp => h_fbstp,
        Fxch => h_fxch,
        Fld1 | Fldl2t | Fldl2e | Fldpi | Fldlg2 | Fldln2 | Fldz => h_const,
        Fadd | Faddp | Fiadd | Fsub | Fsubp | Fisub | Fsubr | Fsubrp | Fisubr | Fmul | Fmulp
        | Fimul | Fdiv | Fdivp | Fidiv | Fdivr | Fdivrp | Fidivr => h_arith,
        Fsqrt | Frndint | Fabs | Fchs => h_unary,
        Fprem | Fprem1 => h_fprem,
        Fscale => h_fscale,
        Fxtract => h_fxtract,
        Fcom | Fcomp | Fcompp | Fucom | Fucomp | Fucompp | Ficom | Ficomp | Ftst => h_fcom,
        Fcomi | Fcomip | Fucomi | Fucomip => h_fcomi,
        Fxam => h_fxam,
        Fcmovb | Fcmove | Fcmovbe | Fcmovu | Fcmovnb | Fcmovne | Fcmovnbe | Fcmovnu => h_fcmov,
        Fldcw => h_fldcw,
        Fnstcw | Fstcw => h_fstcw,
        Fnstsw | Fstsw => h_fstsw,
        Fnclex | Fclex => h_fclex,
        Fninit | Finit => h_finit,
        Fnstenv | Fstenv => h_fstenv,
        Fldenv => h_fldenv,
        Fnsave | Fsave => h_fsave,
        Frstor => h_frstor,
        Ffree | Ffreep => h_ffree,
        Fincstp | Fdecstp => h_fincdec,
        Fnop | Fneni | Feni | Fndisi | Fdisi | Fnsetpm | Fsetpm => h_fnop,
        Wait => h_wait,
        Fxsave | Fxsave64 => h_fxsave,
        Fxrstor | Fxrstor64 => h_fxrstor,
        F2xm1 | Fyl2x | Fyl2xp1 | Fpatan => h_trans2,
        Fsin | Fcos | Fsincos | Fptan => h_trig,
        _ => {
            let _ = inst;
            return None;
        }
    })
}

// ---------------------------------------------------------------------
// Loads and stores

fn push_value(f: &mut FpuState, v: F80) {
    if !f.is_empty(7) {
        if overflow(f) {
            f.push(F80::INDEFINITE);
        }
        return;
    }
    f.fsw &= !SW_C1;
    f.push(v);
}

fn h_fld(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let (v, exc) = if i.op[0].kind == OpKind::Mem {
        load_mem_value(cpu, bus, i)?
    } else {
        let k = sti(&i.inst, 0);
        if cpu.s.fpu.is_empty(k) {
            note(cpu, i);
            let f = &mut cpu.s.fpu;
            if !f.is_empty(7) {
                if overflow(f) {
                    f.push(F80::INDEFINITE);
                }
            } else if underflow(f) {
                f.push(F80::INDEFINITE);
            }
            return Ok(());
        }
        (cpu.s.fpu.st(k), 0)
    };
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    if !f.is_empty(7) {
        push_value(f, v);
        return Ok(());
    }
    if exc != 0 && !raise(f, exc) {
        return Ok(());
    }
    push_value(f, v);
    Ok(())
}

fn h_fild(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let (v, _) = load_mem_value(cpu, bus, i)?;
    note(cpu, i);
    push_value(&mut cpu.s.fpu, v);
    Ok(())
}

fn h_const(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    // (value rounded toward zero, true if round-to-nearest rounds up)
    let (v, near_up) = match i.inst.mnemonic() {
        Fld1 => (F80::ONE, false),
        Fldz => (F80::ZERO, false),
        Fldl2t => (F80::new(0x4000, 0xd49a_784b_cd1b_8afe), false),
        Fldl2e => (F80::new(0x3fff, 0xb8aa_3b29_5c17_f0bb), true),
        Fldpi => (F80::new(0x4000, 0xc90f_daa2_2168_c234), true),
        Fldlg2 => (F80::new(0x3ffd, 0x9a20_9a84_fbcf_f798), true),
        _ => (F80::new(0x3ffe, 0xb172_17f7_d1cf_79ab), true), // ln 2
    };
    let inexact = !matches!(i.inst.mnemonic(), Fld1 | Fldz);
    let up = inexact
        && match (f.fcw >> 10) & 3 {
            0 => near_up,
            2 => true,
            _ => false,
        };
    let v = if up { F80::new(v.se, v.mant + 1) } else { v };
    push_value(f, v);
    Ok(())
}

fn h_fbld(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let mut b = [0u8; 10];
    load_bytes(cpu, bus, i, &mut b)?;
    note(cpu, i);
    let mut v: i64 = 0;
    for k in (0..9).rev() {
        v = v * 100 + (b[k] >> 4) as i64 * 10 + (b[k] & 0xf) as i64;
    }
    let mut r = from_i64(v);
    if b[9] & 0x80 != 0 {
        r = r.neg();
    }
    push_value(&mut cpu.s.fpu, r);
    Ok(())
}

fn pops(i: &Insn) -> bool {
    use Mnemonic::*;
    matches!(
        i.inst.mnemonic(),
        Fstp | Fstpnce | Fistp | Fisttp | Fbstp | Faddp | Fsubp | Fsubrp | Fmulp | Fdivp | Fdivrp
    )
}

fn h_fst(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let mut f = cpu.s.fpu;
    let pop = pops(i);
    if i.op[0].kind != OpKind::Mem {
        let k = sti(&i.inst, 0);
        if f.is_empty(0) {
            if !underflow(&mut f) {
                cpu.s.fpu = f;
                return Ok(());
            }
            f.set_st(k, F80::INDEFINITE);
        } else {
            f.fsw &= !SW_C1;
            let v = f.st(0);
            f.set_st(k, v);
        }
        if pop {
            f.pop();
        }
        cpu.s.fpu = f;
        return Ok(());
    }
    let ms = i.inst.memory_size();
    let empty = f.is_empty(0);
    let a = f.st(0);
    let bytes: Option<Vec<u8>> = if empty {
        underflow(&mut f).then(|| match ms {
            MemorySize::Float32 => 0xffc0_0000u32.to_le_bytes().to_vec(),
            MemorySize::Float64 => 0xfff8_0000_0000_0000u64.to_le_bytes().to_vec(),
            _ => F80::INDEFINITE.to_bytes().to_vec(),
        })
    } else if ms == MemorySize::Float80 {
        f.fsw &= !SW_C1;
        Some(a.to_bytes().to_vec())
    } else if a.is_unsupported() {
        raise(&mut f, SW_IE).then(|| match ms {
            MemorySize::Float32 => 0xffc0_0000u32.to_le_bytes().to_vec(),
            _ => 0xfff8_0000_0000_0000u64.to_le_bytes().to_vec(),
        })
    } else {
        let rm = f.rounding();
        let s = Sf::begin(rm, 80);
        let (v, t) = if ms == MemorySize::Float32 {
            let v = to_f32(a);
            s.set_rounding(softfloat_sys::softfloat_round_minMag);
            (v as u64, to_f32(a) as u64)
        } else {
            let v = to_f64(a);
            s.set_rounding(softfloat_sys::softfloat_round_minMag);
            (v, to_f64(a))
        };
        let mut exc = s.flags();
        let tiny = if ms == MemorySize::Float32 {
            v & 0x7f80_0000 == 0 && v & 0x7f_ffff != 0
        } else {
            v & 0x7ff0_0000_0000_0000 == 0 && v & 0xf_ffff_ffff_ffff != 0
        };
        if tiny && f.fcw & SW_UE == 0 {
            exc |= SW_UE;
        }
        set_c1(
            &mut f,
            exc & SW_PE != 0 && (v & !(1 << 63)) > (t & !(1 << 63)),
        );
        let blocked = exc & (SW_IE | SW_OE | SW_UE) & !f.fcw != 0;
        raise(&mut f, exc);
        if blocked {
            None
        } else if ms == MemorySize::Float32 {
            Some((v as u32).to_le_bytes().to_vec())
        } else {
            Some(v.to_le_bytes().to_vec())
        }
    };
    if let Some(b) = bytes {
        store_bytes(cpu, bus, i, &b)?;
    } else if f.fsw & SW_ES != 0 {
        // Unmasked exception: no store, no pop.
        cpu.s.fpu = f;
        return Ok(());
    }
    if pop {
        f.pop();
    }
    cpu.s.fpu = f;
    Ok(())
}

fn h_fist(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let mut f = cpu.s.fpu;
    let size = i.op[0].size as u32;
    let indef = 1u64 << (size * 8 - 1);
    let empty = f.is_empty(0);
    let a = f.st(0);
    let val = if empty {
        underflow(&mut f).then_some(indef)
    } else if a.is_unsupported() {
        raise(&mut f, SW_IE).then_some(indef)
    } else {
        // FISTTP (SSE3) always truncates.
        let rm = if i.inst.mnemonic() == Mnemonic::Fisttp {
            softfloat_sys::softfloat_round_minMag
        } else {
            f.rounding()
        };
        let s = Sf::begin(rm, 80);
        let v = to_i64(a, rm);
        let mut exc = s.flags();
        let bits = size * 8;
        let fits = bits == 64 || (v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1)));
        if !fits {
            exc = SW_IE;
        }
        if exc & SW_IE != 0 {
            raise(&mut f, SW_IE).then_some(indef)
        } else {
            let up = exc & SW_PE != 0 && {
                let t = sf_round_int(a, softfloat_sys::softfloat_round_minMag);
                from_i64(v).abs() != t.abs()
            };
            set_c1(&mut f, up);
            raise(&mut f, exc & SW_PE);
            Some(v as u64 & size_mask(size as u8))
        }
    };
    match val {
        Some(v) => {
            let ea = cpu.ea(i);
            cpu.write_mem(bus, i.mem.seg as usize, ea, size as u8, v)?;
        }
        None => {
            cpu.s.fpu = f;
            return Ok(());
        }
    }
    if pops(i) {
        f.pop();
    }
    cpu.s.fpu = f;
    Ok(())
}

fn h_fbstp(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let mut f = cpu.s.fpu;
    let indef: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
    let a = f.st(0);
    let out = if f.is_empty(0) {
        underflow(&mut f).then_some(indef)
    } else if a.is_unsupported() || a.is_nan() || a.is_inf() {
        raise(&mut f, SW_IE).then_some(indef)
    } else {
        let rm = f.rounding();
        let s = Sf::begin(rm, 80);
        let r = sf_round_int(a, rm);
        let exc = s.flags();
        let v = to_i64(r.abs(), rm);
        if v >= 1_000_000_000_000_000_000 || s.flags() & SW_IE != 0 {
            raise(&mut f, SW_IE).then_some(indef)
        } else {
            let mut b = [0u8; 10];
            let mut x = v as u64;
            for byte in b.iter_mut().take(9) {
                let lo = x % 10;
                x /= 10;
                let hi = x % 10;
                x /= 10;
                *byte = (hi << 4 | lo) as u8;
            }
            if a.sign() {
                b[9] = 0x80;
            }
            let t = sf_round_int(a, softfloat_sys::softfloat_round_minMag);
            set_c1(&mut f, exc & SW_PE != 0 && r.abs() != t.abs());
            raise(&mut f, exc & SW_PE);
            Some(b)
        }
    };
    match out {
        Some(b) => store_bytes(cpu, bus, i, &b)?,
        None => {
            cpu.s.fpu = f;
            return Ok(());
        }
    }
    f.pop();
    cpu.s.fpu = f;
    Ok(())
}

fn h_fxch(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    let k = sti(&i.inst, 1).max(sti(&i.inst, 0));
    if f.is_empty(0) || f.is_empty(k) {
        if !underflow(f) {
            return Ok(());
        }
        if f.is_empty(0) {
            f.set_st(0, F80::INDEFINITE);
        }
        if f.is_empty(k) {
            f.set_st(k, F80::INDEFINITE);
        }
    } else {
        f.fsw &= !SW_C1;
    }
    let (a, b) = (f.st(0), f.st(k));
    f.set_st(0, b);
    f.set_st(k, a);
    Ok(())
}

fn h_fcmov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let fl = &cpu.s.flags;
    let (cf, zf, pf) = (fl.cf(), fl.zf(), fl.pf());
    let cond = match i.inst.mnemonic() {
        Fcmovb => cf,
        Fcmove => zf,
        Fcmovbe => cf || zf,
        Fcmovu => pf,
        Fcmovnb => !cf,
        Fcmovne => !zf,
        Fcmovnbe => !(cf || zf),
        _ => !pf,
    };
    let f = &mut cpu.s.fpu;
    let k = sti(&i.inst, 1);
    if f.is_empty(0) || f.is_empty(k) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    f.fsw &= !SW_C1;
    if cond {
        let v = f.st(k);
        f.set_st(0, v);
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Arithmetic

fn h_arith(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    let m = i.inst.mnemonic();
    let (op, rev) = match m {
        Fadd | Faddp | Fiadd => (Arith::Add, false),
        Fsub | Fsubp | Fisub => (Arith::Sub, false),
        Fsubr | Fsubrp | Fisubr => (Arith::Sub, true),
        Fmul | Fmulp | Fimul => (Arith::Mul, false),
        Fdiv | Fdivp | Fidiv => (Arith::Div, false),
        _ => (Arith::Div, true),
    };
    // dest = dest op src (or src op dest for the reversed forms).
    let (dst, src, mexc) = if i.op[0].kind == OpKind::Mem {
        let (v, e) = load_mem_value(cpu, bus, i)?;
        (0, Err((v, e)), 0)
    } else if i.inst.op_count() == 0 {
        (1, Ok(0), 0)
    } else {
        (sti(&i.inst, 0), Ok(sti(&i.inst, 1)), 0)
    };
    let _ = mexc;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    let pop = pops(i) || (i.inst.op_count() == 0);
    let src_empty = matches!(src, Ok(k) if f.is_empty(k));
    if f.is_empty(dst) || src_empty {
        if underflow(f) {
            f.set_st(dst, F80::INDEFINITE);
            if pop {
                f.pop();
            }
        }
        return Ok(());
    }
    let d = f.st(dst);
    let s = match src {
        Ok(k) => f.st(k),
        Err((v, e)) => {
            // Conversion exceptions of the memory operand (SNaN, denormal).
            if e & SW_IE != 0 && !v.is_nan() {
                // cannot happen: conversions only raise IE for SNaN
            }
            if e & SW_IE != 0 {
                if !raise(f, SW_IE) {
                    return Ok(());
                }
                let r = nan2(f, d, v).unwrap_or(F80::INDEFINITE);
                f.set_st(dst, r);
                return Ok(());
            }
            if e & SW_DE != 0 && !d.is_nan() && !raise(f, SW_DE) {
                return Ok(());
            }
            v
        }
    };
    let (a, b) = if rev { (s, d) } else { (d, s) };
    if let Some(r) = binop(f, op, a, b) {
        f.set_st(dst, r);
        if pop {
            f.pop();
        }
    }
    Ok(())
}

fn h_unary(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    let a = f.st(0);
    f.fsw &= !SW_C1;
    let m = i.inst.mnemonic();
    let r = match m {
        Fabs => Some(a.abs()),
        Fchs => Some(a.neg()),
        _ if a.is_nan() || a.is_unsupported() => nan1(f, a),
        Fsqrt => {
            if a.is_denormal() && !raise(f, SW_DE) {
                return Ok(());
            }
            let s = Sf::begin(f.rounding(), f.precision());
            let r = sf_sqrt(a);
            let exc = s.flags();
            if exc & SW_IE != 0 {
                raise(f, SW_IE).then_some(r)
            } else {
                let up = exc & SW_PE != 0 && {
                    s.set_rounding(softfloat_sys::softfloat_round_minMag);
                    mag(r) > mag(sf_sqrt(a))
                };
                set_c1(f, up);
                raise(f, exc);
                Some(r)
            }
        }
        _ => {
            // FRNDINT
            if a.is_denormal() && !raise(f, SW_DE) {
                return Ok(());
            }
            let rm = f.rounding();
            let s = Sf::begin(rm, 80);
            let r = sf_round_int(a, rm);
            let exc = s.flags();
            set_c1(f, exc & SW_PE != 0 && mag(r) > mag(a));
            raise(f, exc);
            Some(r)
        }
    };
    if let Some(r) = r {
        f.set_st(0, r);
    }
    Ok(())
}

/// FPREM/FPREM1: exact partial remainder on the integer significands.
fn h_fprem(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let ieee = i.inst.mnemonic() == Mnemonic::Fprem1;
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(1) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    let (a, b) = (f.st(0), f.st(1));
    if a.is_nan() || b.is_nan() || a.is_unsupported() || b.is_unsupported() {
        if let Some(r) = nan2(f, a, b) {
            f.set_st(0, r);
        }
        return Ok(());
    }
    if a.is_inf() || b.is_zero() {
        if raise(f, SW_IE) {
            f.set_st(0, F80::INDEFINITE);
            f.fsw &= !SW_C2;
        }
        return Ok(());
    }
    if (a.is_denormal() || b.is_denormal()) && !raise(f, SW_DE) {
        return Ok(());
    }
    if a.is_zero() || b.is_inf() {
        f.set_cc(false, false, false, false);
        return Ok(());
    }
    let (an, ea) = normalize(a);
    let (bn, eb) = normalize(b);
    let d = ea - eb;
    let (ma, mb) = (an.mant as u128, bn.mant as u128);
    // Result = sign(a) * R * 2^(eb - 63 - shift) with R an integer.
    let (q, mut rem, neg, exp_base, partial): (u64, u128, bool, i32, bool);
    if d >= 64 {
        // Partial remainder: reduce the exponent difference by 32..63.
        let n = 32 + (d - 32) % 32;
        let big = ma << n;
        let qq = big / mb;
        rem = big - qq * mb;
        q = qq as u64;
        neg = false;
        exp_base = ea - n;
        partial = true;
    } else if d < -1 || (d == -1 && !ieee) {
        f.set_cc(false, false, false, false);
        return Ok(());
    } else {
        // d in -1..63: A = ma * 2^(d+1), B = mb * 2.
        let big = ma << (d + 1);
        let bb = mb << 1;
        let mut qq = big / bb;
        rem = big - qq * bb;
        let mut flip = false;
        if ieee && (rem * 2 > bb || (rem * 2 == bb && qq & 1 == 1)) {
            qq += 1;
            rem = bb - rem;
            flip = true;
        }
        q = qq as u64;
        neg = flip;
        exp_base = eb - 1;
        partial = false;
    }
    let sign = a.sign() ^ neg;
    let r = if rem == 0 {
        F80::zero(a.sign())
    } else {
        // value = rem * 2^(exp_base - 63)
        let mut e = exp_base + 0x3fff;
        if rem >> 64 != 0 {
            // 65 bits, but even: the shift is exact.
            rem >>= 1;
            e += 1;
        }
        let lz = rem.leading_zeros() as i32 - 64;
        rem <<= lz;
        e -= lz;
        let mut m = rem as u64;
        let se = if e >= 1 {
            e as u16
        } else {
            m >>= (1 - e).min(64);
            0
        };
        F80::new(se | (sign as u16) << 15, m)
    };
    if r.is_denormal() && f.fcw & SW_UE == 0 {
        raise(f, SW_UE);
    }
    f.set_st(0, r);
    if partial {
        f.fsw |= SW_C2;
    } else {
        f.set_cc(q & 2 != 0, false, q & 1 != 0, q & 4 != 0);
    }
    Ok(())
}

fn h_fscale(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(1) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    let (a, b) = (f.st(0), f.st(1));
    f.fsw &= !SW_C1;
    if a.is_nan() || b.is_nan() || a.is_unsupported() || b.is_unsupported() {
        if let Some(r) = nan2(f, a, b) {
            f.set_st(0, r);
        }
        return Ok(());
    }
    if (a.is_denormal() || b.is_denormal()) && !raise(f, SW_DE) {
        return Ok(());
    }
    if b.is_inf() {
        let r = if !b.sign() {
            if a.is_zero() {
                None
            } else {
                Some(F80::inf(a.sign()))
            }
        } else if a.is_inf() {
            None
        } else {
            Some(F80::zero(a.sign()))
        };
        match r {
            Some(r) => f.set_st(0, r),
            None => {
                if raise(f, SW_IE) {
                    f.set_st(0, F80::INDEFINITE);
                }
            }
        }
        return Ok(());
    }
    if a.is_zero() || a.is_inf() {
        return Ok(());
    }
    // |ST(1)| >= 2^30 scales any finite value out of range: clamp first.
    let n = if b.exp() >= 0x3fff + 30 {
        if b.sign() {
            -100_000
        } else {
            100_000
        }
    } else {
        let _s = Sf::begin(softfloat_sys::softfloat_round_minMag, 80);
        to_i64(b, softfloat_sys::softfloat_round_minMag) as i32
    };
    let (an, ea) = normalize(a);
    let e = ea + n;
    if (-16382..=16383).contains(&e) {
        f.set_st(0, scale_exact(an, e).unwrap());
        return Ok(());
    }
    let unmasked = if e > 0 {
        f.fcw & SW_OE == 0
    } else {
        f.fcw & SW_UE == 0
    };
    if unmasked {
        let bias = if e > 0 { -24576 } else { 24576 };
        if let Some(r) = scale_exact(an, e + bias) {
            f.set_st(0, r);
            raise(f, if e > 0 { SW_OE } else { SW_UE });
            return Ok(());
        }
    }
    // One rounding: an exact scaling into range, then a multiply by a power
    // of two that overflows or denormalises.
    let (x, p) = if e > 0 {
        (scale_exact(an, 16383).unwrap(), F80::new(0x7ffe, J))
    } else {
        let k = (e + 16382).max(-200);
        (scale_exact(an, k).unwrap(), F80::new(1, J))
    };
    let r = binop_plain(f, x, p);
    f.set_st(0, r);
    Ok(())
}

/// Multiply with extended precision regardless of PC, setting flags and C1.
fn binop_plain(f: &mut FpuState, a: F80, b: F80) -> F80 {
    let rm = f.rounding();
    let s = Sf::begin(rm, 80);
    let r = sf_arith(Arith::Mul, a, b);
    let mut exc = s.flags();
    if r.is_denormal() && f.fcw & SW_UE == 0 {
        exc |= SW_UE;
    }
    let up = exc & SW_PE != 0 && {
        s.set_rounding(softfloat_sys::softfloat_round_minMag);
        mag(r) > mag(sf_arith(Arith::Mul, a, b))
    };
    set_c1(f, up);
    raise(f, exc);
    r
}

fn h_fxtract(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
            push_value(f, F80::INDEFINITE);
        }
        return Ok(());
    }
    if !f.is_empty(7) {
        if overflow(f) {
            f.set_st(0, F80::INDEFINITE);
            f.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    let a = f.st(0);
    f.fsw &= !SW_C1;
    let (e, m) = if a.is_nan() || a.is_unsupported() {
        match nan1(f, a) {
            Some(r) => (r, r),
            None => return Ok(()),
        }
    } else if a.is_zero() {
        if !raise(f, SW_ZE) {
            return Ok(());
        }
        (F80::inf(true), a)
    } else if a.is_inf() {
        (F80::inf(false), a)
    } else {
        if a.is_denormal() && !raise(f, SW_DE) {
            return Ok(());
        }
        let (m, e) = normalize(a);
        (from_i64(e as i64), m)
    };
    f.set_st(0, e);
    f.push(m);
    Ok(())
}

// ---------------------------------------------------------------------
// Comparisons

/// Compare a with b: Some(ordering) or None for unordered. Sets IE/DE.
/// Returns Err(()) when an unmasked exception suppresses the result.
fn cmp_values(
    f: &mut FpuState,
    a: F80,
    b: F80,
    quiet: bool,
) -> std::result::Result<Option<i32>, ()> {
    if a.is_unsupported() || b.is_unsupported() || a.is_nan() || b.is_nan() {
        let invalid =
            a.is_unsupported() || b.is_unsupported() || !quiet || a.is_snan() || b.is_snan();
        if invalid && !raise(f, SW_IE) {
            return Err(());
        }
        return Ok(None);
    }
    if (a.is_denormal() || b.is_denormal()) && !raise(f, SW_DE) {
        return Err(());
    }
    Ok(Some(compare(a, b)))
}

fn h_fcom(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    let m = i.inst.mnemonic();
    let mem = if i.op[0].kind == OpKind::Mem {
        Some(load_mem_value(cpu, bus, i)?)
    } else {
        None
    };
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    let npop = match m {
        Fcomp | Fucomp | Ficomp => 1,
        Fcompp | Fucompp => 2,
        _ => 0,
    };
    let quiet = matches!(m, Fucom | Fucomp | Fucompp);
    let k = if m == Ftst || mem.is_some() {
        None
    } else if i.inst.op_count() >= 2 {
        Some(sti(&i.inst, 1))
    } else {
        Some(1)
    };
    f.fsw &= !SW_C1;
    let res = if f.is_empty(0) || k.is_some_and(|k| f.is_empty(k)) {
        if !underflow(f) {
            return Ok(());
        }
        None
    } else {
        let a = f.st(0);
        let b = match (m, k, mem) {
            (Ftst, _, _) => F80::ZERO,
            (_, Some(k), _) => f.st(k),
            (_, None, Some((v, e))) => {
                if e & SW_DE != 0 && !a.is_nan() && !raise(f, SW_DE) {
                    return Ok(());
                }
                v
            }
            _ => F80::ZERO,
        };
        match cmp_values(f, a, b, quiet) {
            Ok(r) => r,
            Err(()) => return Ok(()),
        }
    };
    match res {
        None => f.set_cc(true, true, false, true),
        Some(o) => f.set_cc(o == 0, false, false, o < 0),
    }
    for _ in 0..npop {
        f.pop();
    }
    Ok(())
}

fn h_fcomi(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let m = i.inst.mnemonic();
    let quiet = matches!(m, Fucomi | Fucomip);
    let pop = matches!(m, Fcomip | Fucomip);
    let k = sti(&i.inst, 1);
    let f = &mut cpu.s.fpu;
    f.fsw &= !SW_C1;
    let res = if f.is_empty(0) || f.is_empty(k) {
        if !underflow(f) {
            return Ok(());
        }
        None
    } else {
        let (a, b) = (f.st(0), f.st(k));
        match cmp_values(f, a, b, quiet) {
            Ok(r) => r,
            Err(()) => return Ok(()),
        }
    };
    if pop {
        f.pop();
    }
    let v = match res {
        None => FLAG_ZF | FLAG_PF | FLAG_CF,
        Some(0) => FLAG_ZF,
        Some(o) if o < 0 => FLAG_CF,
        _ => 0,
    };
    cpu.s.flags.set_arith(ARITH_FLAGS, v);
    Ok(())
}

fn h_fxam(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    let a = f.st(0);
    let c1 = a.sign();
    let (c3, c2, c0) = if f.is_empty(0) {
        (true, false, true)
    } else if a.is_unsupported() {
        (false, false, false)
    } else if a.is_nan() {
        (false, false, true)
    } else if a.is_inf() {
        (false, true, true)
    } else if a.is_zero() {
        (true, false, false)
    } else if a.is_denormal() {
        (true, true, false)
    } else {
        (false, true, false)
    };
    f.set_cc(c3, c2, c1, c0);
    Ok(())
}

// ---------------------------------------------------------------------
// Transcendentals

/// F2XM1, FYL2X, FYL2XP1, FPATAN.
fn h_trans2(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let m = i.inst.mnemonic();
    let f = &mut cpu.s.fpu;
    let two = m != F2xm1;
    if f.is_empty(0) || (two && f.is_empty(1)) {
        if underflow(f) {
            if two {
                f.pop();
            }
            f.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    let x = f.st(0);
    let y = if two { f.st(1) } else { F80::ZERO };
    f.fsw &= !SW_C1;
    let r = if x.is_nan() || y.is_nan() || x.is_unsupported() || y.is_unsupported() {
        if two {
            nan2(f, y, x)
        } else {
            nan1(f, x)
        }
    } else if (x.is_denormal() || (two && y.is_denormal())) && !raise(f, SW_DE) {
        None
    } else {
        match m {
            F2xm1 => Some(if x.is_zero() {
                x
            } else if x.is_inf() {
                if x.sign() {
                    F80::ONE.neg()
                } else {
                    x
                }
            } else {
                round_q(f, trans::exp2m1(x))
            }),
            Fyl2x => fyl2x(f, x, y),
            Fyl2xp1 => fyl2xp1(f, x, y),
            _ => Some(fpatan(f, y, x)),
        }
    };
    if let Some(r) = r {
        if two {
            f.set_st(1, r);
            f.pop();
        } else {
            f.set_st(0, r);
        }
    }
    Ok(())
}

fn invalid(f: &mut FpuState) -> Option<F80> {
    raise(f, SW_IE).then_some(F80::INDEFINITE)
}

fn fyl2x(f: &mut FpuState, x: F80, y: F80) -> Option<F80> {
    if x.sign() && !x.is_zero() {
        return invalid(f);
    }
    if x.is_zero() {
        if y.is_zero() {
            return invalid(f);
        }
        if y.is_inf() {
            return Some(F80::inf(!y.sign()));
        }
        if !raise(f, SW_ZE) {
            return None;
        }
        return Some(F80::inf(!y.sign()));
    }
    if x.is_inf() {
        if y.is_zero() {
            return invalid(f);
        }
        return Some(F80::inf(y.sign()));
    }
    let l = trans::log2(x);
    if y.is_inf() {
        if l.is_zero() {
            return invalid(f);
        }
        return Some(F80::inf(y.sign() ^ l.is_neg()));
    }
    if l.is_zero() || y.is_zero() {
        return Some(F80::zero(y.sign() ^ (l.is_neg() && !l.is_zero())));
    }
    Some(round_q(f, Q::from_f80(y).mul(l)))
}

fn fyl2xp1(f: &mut FpuState, x: F80, y: F80) -> Option<F80> {
    if x.is_inf() {
        if x.sign() || y.is_zero() {
            return invalid(f);
        }
        return Some(F80::inf(y.sign()));
    }
    if x.sign() && compare(x, F80::ONE.neg()) <= 0 {
        // Outside the documented domain; log of a non-positive number.
        return invalid(f);
    }
    if x.is_zero() {
        if y.is_inf() {
            return invalid(f);
        }
        return Some(F80::zero(x.sign() ^ y.sign()));
    }
    let l = trans::log2p1(x);
    if y.is_inf() {
        return Some(F80::inf(y.sign() ^ l.is_neg()));
    }
    if y.is_zero() {
        return Some(F80::zero(y.sign() ^ l.is_neg()));
    }
    Some(round_q(f, Q::from_f80(y).mul(l)))
}

fn fpatan(f: &mut FpuState, y: F80, x: F80) -> F80 {
    let pi_frac = |num: i64, den: i64| trans::PI.mul(Q::int(num)).div(Q::int(den));
    let signed = |q: Q, neg: bool| if neg { q.neg() } else { q };
    let v = if y.is_zero() {
        if x.sign() {
            signed(trans::PI, y.sign())
        } else {
            return y;
        }
    } else if y.is_inf() {
        if x.is_inf() {
            signed(if x.sign() { pi_frac(3, 4) } else { trans::PI_4 }, y.sign())
        } else {
            signed(trans::PI_2, y.sign())
        }
    } else if x.is_inf() {
        if x.sign() {
            signed(trans::PI, y.sign())
        } else {
            return F80::zero(y.sign());
        }
    } else if x.is_zero() {
        signed(trans::PI_2, y.sign())
    } else {
        trans::atan2(y, x)
    };
    round_q(f, v)
}

/// FSIN, FCOS, FSINCOS, FPTAN: |x| >= 2^63 sets C2 and leaves ST(0).
fn h_trig(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let m = i.inst.mnemonic();
    let f = &mut cpu.s.fpu;
    let pushes = matches!(m, Fsincos | Fptan);
    if f.is_empty(0) {
        if underflow(f) {
            f.set_st(0, F80::INDEFINITE);
            if pushes {
                push_value(f, F80::INDEFINITE);
            }
        }
        return Ok(());
    }
    if pushes && !f.is_empty(7) {
        if overflow(f) {
            f.set_st(0, F80::INDEFINITE);
            f.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    let x = f.st(0);
    f.fsw &= !(SW_C1 | SW_C2);
    if x.is_nan() || x.is_unsupported() || x.is_inf() {
        let r = if x.is_inf() { invalid(f) } else { nan1(f, x) };
        if let Some(r) = r {
            f.set_st(0, r);
            if pushes {
                f.push(r);
            }
        }
        return Ok(());
    }
    if x.exp() >= 0x3fff + 63 {
        f.fsw |= SW_C2;
        return Ok(());
    }
    if x.is_denormal() && !raise(f, SW_DE) {
        return Ok(());
    }
    if x.is_zero() {
        match m {
            Fsin => {}
            Fcos => f.set_st(0, F80::ONE),
            Fsincos => {
                f.set_st(0, x);
                f.push(F80::ONE);
            }
            _ => {
                f.set_st(0, x);
                f.push(F80::ONE);
            }
        }
        return Ok(());
    }
    let (s, c) = trans::sin_cos(x);
    match m {
        Fsin => {
            let r = round_q(f, s);
            f.set_st(0, r);
        }
        Fcos => {
            let r = round_q(f, c);
            f.set_st(0, r);
        }
        Fsincos => {
            let rs = round_q(f, s);
            let rc = round_q(f, c);
            f.set_st(0, rs);
            f.push(rc);
        }
        _ => {
            let r = round_q(f, s.div(c));
            f.set_st(0, r);
            f.push(F80::ONE);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Control instructions

fn h_fldcw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let v = cpu.read_op(bus, i, 0)? as u16;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    cpu.s.fpu.fcw = (v & 0x1f3f) | 0x40;
    cpu.s.fpu.update_es();
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_fstcw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Fstcw)?;
    let v = cpu.s.fpu.fcw as u64;
    cpu.write_op(bus, i, 0, v)
}

fn h_fstsw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Fstsw)?;
    let v = cpu.s.fpu.fsw as u64;
    cpu.write_op(bus, i, 0, v)
}

fn h_fclex(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Fclex)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    cpu.s.fpu.fsw &= !(SW_EXC | SW_SF | SW_ES | SW_B);
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_finit(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Finit)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    cpu.s.fpu.init();
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_ffree(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let k = sti(&i.inst, 0);
    cpu.s.fpu.free(k);
    if i.inst.mnemonic() == Mnemonic::Ffreep {
        let t = cpu.s.fpu.top();
        cpu.s.fpu.set_top(t + 1);
    }
    Ok(())
}

fn h_fincdec(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    note(cpu, i);
    let f = &mut cpu.s.fpu;
    let t = f.top();
    f.set_top(if i.inst.mnemonic() == Mnemonic::Fincstp {
        t + 1
    } else {
        t.wrapping_sub(1)
    });
    f.fsw &= !SW_C1;
    Ok(())
}

fn h_fnop(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    use Mnemonic::*;
    let wait = matches!(i.inst.mnemonic(), Fnop | Feni | Fdisi | Fsetpm);
    fpu_enter(cpu, bus, wait)?;
    if i.inst.mnemonic() == Fnop {
        note(cpu, i);
    }
    Ok(())
}

fn h_wait(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if cpu.s.cr0 & (CR0_MP | CR0_TS) == (CR0_MP | CR0_TS) {
        return Err(Exception::new(NM));
    }
    pending(cpu, bus)
}

/// Environment image (14 or 28 bytes) in the layout of the current mode.
fn env_bytes(cpu: &Cpu, size32: bool) -> Vec<u8> {
    let f = &cpu.s.fpu;
    let real = !cpu.s.protected() || cpu.s.v86();
    let tag = f.tag_word();
    let mut out = Vec::with_capacity(28);
    let mut put = |v: u32| {
        if size32 {
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
    };
    put(f.fcw as u32);
    put(f.fsw as u32);
    put(tag as u32);
    if real {
        let ip = (((f.fcs as u64) << 4) + f.fip) as u32;
        let dp = (((f.fds as u64) << 4) + f.fdp) as u32;
        if size32 {
            put(ip & 0xffff);
            put((ip >> 16) << 12 | f.fop as u32);
            put(dp & 0xffff);
            put((dp >> 16) << 12);
        } else {
            put(ip & 0xffff);
            put(((ip >> 16) & 0xf) << 12 | f.fop as u32);
            put(dp & 0xffff);
            put(((dp >> 16) & 0xf) << 12);
        }
    } else {
        put(f.fip as u32);
        put(if size32 {
            f.fcs as u32 | (f.fop as u32) << 16
        } else {
            f.fcs as u32
        });
        put(f.fdp as u32);
        put(f.fds as u32);
    }
    out
}

fn load_env(cpu: &mut Cpu, b: &[u8], size32: bool) {
    let real = !cpu.s.protected() || cpu.s.v86();
    let get = |k: usize| -> u32 {
        if size32 {
            u32::from_le_bytes(b[4 * k..4 * k + 4].try_into().unwrap())
        } else {
            u16::from_le_bytes([b[2 * k], b[2 * k + 1]]) as u32
        }
    };
    let f = &mut cpu.s.fpu;
    f.fcw = (get(0) as u16 & 0x1f3f) | 0x40;
    f.fsw = get(1) as u16;
    f.set_tag_word(get(2) as u16);
    if real {
        let hi_shift = 4;
        let ip = get(3) & 0xffff | ((get(4) >> 12) << 16);
        let dp = get(5) & 0xffff | ((get(6) >> 12) << 16);
        let _ = hi_shift;
        f.fop = (get(4) & 0x7ff) as u16;
        f.fip = ip as u64;
        f.fcs = 0;
        f.fdp = dp as u64;
        f.fds = 0;
    } else {
        f.fip = get(3) as u64;
        f.fcs = get(4) as u16;
        if size32 {
            f.fop = ((get(4) >> 16) & 0x7ff) as u16;
        }
        f.fdp = get(5) as u64;
        f.fds = get(6) as u16;
    }
    f.update_es();
}

fn env32(i: &Insn) -> bool {
    matches!(
        i.inst.code(),
        Code::Fnstenv_m28byte
            | Code::Fstenv_m28byte
            | Code::Fldenv_m28byte
            | Code::Fnsave_m108byte
            | Code::Fsave_m108byte
            | Code::Frstor_m108byte
    )
}

fn h_fstenv(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Fstenv)?;
    let b = env_bytes(cpu, env32(i));
    store_bytes(cpu, bus, i, &b)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    cpu.s.fpu.fcw |= SW_EXC;
    cpu.s.fpu.update_es();
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_fldenv(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let n = if env32(i) { 28 } else { 14 };
    let mut b = vec![0u8; n];
    load_bytes(cpu, bus, i, &mut b)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    load_env(cpu, &b, env32(i));
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_fsave(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, i.inst.mnemonic() == Mnemonic::Fsave)?;
    let mut b = env_bytes(cpu, env32(i));
    for k in 0..8 {
        b.extend_from_slice(&cpu.s.fpu.st(k).to_bytes());
    }
    store_bytes(cpu, bus, i, &b)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    cpu.s.fpu.init();
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn h_frstor(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, true)?;
    let n = if env32(i) { 28 } else { 14 };
    let mut b = vec![0u8; n + 80];
    load_bytes(cpu, bus, i, &mut b)?;
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    load_env(cpu, &b[..n], env32(i));
    let f = &mut cpu.s.fpu;
    for k in 0..8 {
        let p = f.phys(k);
        f.regs[p] = F80::from_bytes(&b[n + 10 * k..n + 10 * k + 10]);
    }
    ferr_sync(cpu, bus, had);
    Ok(())
}

fn fx_check(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fpu_enter(cpu, bus, false)?;
    if cpu.ea(i) & 15 != 0 {
        return Err(Exception::gp0());
    }
    Ok(())
}

fn h_fxsave(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fx_check(cpu, bus, i)?;
    let f = cpu.s.fpu;
    let n = xmm_count(cpu, i);
    let mut b = vec![0u8; 160 + 16 * n];
    b[0..2].copy_from_slice(&f.fcw.to_le_bytes());
    b[2..4].copy_from_slice(&f.fsw.to_le_bytes());
    b[4] = !f.empty;
    b[6..8].copy_from_slice(&f.fop.to_le_bytes());
    if i.inst.mnemonic() == Mnemonic::Fxsave64 {
        b[8..16].copy_from_slice(&f.fip.to_le_bytes());
        b[16..24].copy_from_slice(&f.fdp.to_le_bytes());
    } else {
        b[8..12].copy_from_slice(&(f.fip as u32).to_le_bytes());
        b[12..14].copy_from_slice(&f.fcs.to_le_bytes());
        b[16..20].copy_from_slice(&(f.fdp as u32).to_le_bytes());
        b[20..22].copy_from_slice(&f.fds.to_le_bytes());
    }
    b[24..28].copy_from_slice(&f.mxcsr.to_le_bytes());
    b[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    for k in 0..8 {
        b[32 + 16 * k..42 + 16 * k].copy_from_slice(&f.st(k).to_bytes());
    }
    // The reserved and software-available bytes after the XMM registers
    // are left alone, as the SDM allows.
    for k in 0..n {
        b[160 + 16 * k..176 + 16 * k].copy_from_slice(&cpu.s.xmm(k).to_le_bytes());
    }
    store_bytes(cpu, bus, i, &b)
}

/// XMM registers FXSAVE/FXRSTOR transfer: 16 for the REX.W form in
/// 64-bit mode, else 8.
fn xmm_count(cpu: &Cpu, i: &Insn) -> usize {
    let w = matches!(i.inst.mnemonic(), Mnemonic::Fxsave64 | Mnemonic::Fxrstor64);
    if w && cpu.mode64 {
        16
    } else {
        8
    }
}

fn h_fxrstor(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Result<()> {
    fx_check(cpu, bus, i)?;
    let n = xmm_count(cpu, i);
    let mut b = vec![0u8; 160 + 16 * n];
    load_bytes(cpu, bus, i, &mut b)?;
    let mxcsr = u32::from_le_bytes(b[24..28].try_into().unwrap());
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Exception::gp0());
    }
    for k in 0..n {
        let v = u128::from_le_bytes(b[160 + 16 * k..176 + 16 * k].try_into().unwrap());
        cpu.s.set_xmm(k, v);
    }
    let had = cpu.s.fpu.fsw & SW_ES != 0;
    let f = &mut cpu.s.fpu;
    f.fcw = u16::from_le_bytes([b[0], b[1]]);
    f.fsw = u16::from_le_bytes([b[2], b[3]]);
    f.empty = !b[4];
    f.fop = u16::from_le_bytes([b[6], b[7]]) & 0x7ff;
    if i.inst.mnemonic() == Mnemonic::Fxrstor64 {
        f.fip = u64::from_le_bytes(b[8..16].try_into().unwrap());
        f.fdp = u64::from_le_bytes(b[16..24].try_into().unwrap());
    } else {
        f.fip = u32::from_le_bytes(b[8..12].try_into().unwrap()) as u64;
        f.fcs = u16::from_le_bytes([b[12], b[13]]);
        f.fdp = u32::from_le_bytes(b[16..20].try_into().unwrap()) as u64;
        f.fds = u16::from_le_bytes([b[20], b[21]]);
    }
    f.mxcsr = mxcsr;
    for k in 0..8 {
        let p = f.phys(k);
        f.regs[p] = F80::from_bytes(&b[32 + 16 * k..42 + 16 * k]);
    }
    f.update_es();
    ferr_sync(cpu, bus, had);
    Ok(())
}
