//! The inline SSE forms (moves, bitwise and packed-integer operations,
//! float arithmetic on the MXCSR fast path) against the interpreter: random
//! programs over XMM contents full of special values, under random MXCSR,
//! CR0 and CR4 settings, with aligned, misaligned and page-straddling
//! memory operands, in 32- and 64-bit code. Every block must leave exactly
//! the interpreter's state (XMM, MXCSR, memory, faults included).

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::blocks::Block;
use leap_cpu::fpu::{MX_DAZ, MX_FTZ, MX_PE};
use leap_cpu::state::*;
use leap_cpu::{Cpu, NullBus};
use leap_jit::{Jit, Translator};
use std::rc::Rc;

type R = Result<(), IcedError>;

const X32: [AsmRegisterXmm; 8] = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];
const X64: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
    xmm15,
];
/// GPRs the programs may overwrite (ESI/RSI is the data pointer).
const G32: [AsmRegister32; 6] = [eax, ecx, edx, ebx, ebp, edi];
const G64: [AsmRegister64; 8] = [rax, rcx, rdx, rbx, rbp, rdi, r8, r13];

fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[r.below(xs.len() as u64) as usize]
}

/// Raw bits of a single: special values, normals of moderate size (whose
/// sums and products stay ordinary), normals with short mantissas (exact
/// sums), or anything.
fn single(r: &mut Rng, tame: bool) -> u64 {
    const S: [u32; 20] = [
        0,
        0x8000_0000,
        0x3f80_0000,
        0xbfc0_0000,
        0x0000_0001,
        0x807f_ffff,
        0x0080_0000,
        0x0080_0001,
        0x7f7f_ffff,
        0xff7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0xffc0_0000,
        0x7f80_0001,
        0x3400_0000,
        0x4b00_0000,
        0x0100_0000,
        0x1f80_0000,
        0x5f80_0000,
    ];
    let sign = (r.below(2) as u32) << 31;
    let v = match r.below(if tame { 16 } else { 5 }) {
        0 => S[r.below(S.len() as u64) as usize],
        1 => r.next() as u32,
        2 => sign | ((119 + r.below(17) as u32) << 23) | (r.next() as u32 & 0x7f_0000),
        _ => sign | ((119 + r.below(17) as u32) << 23) | (r.next() as u32 & 0x7f_ffff),
    };
    v as u64
}

/// Raw bits of a double, as `single`.
fn double(r: &mut Rng, tame: bool) -> u64 {
    const S: [u64; 18] = [
        0,
        1 << 63,
        0x3ff0_0000_0000_0000,
        0xbff8_0000_0000_0000,
        1,
        0x800f_ffff_ffff_ffff,
        0x0010_0000_0000_0000,
        0x0010_0000_0000_0001,
        0x7fef_ffff_ffff_ffff,
        0xffef_ffff_ffff_ffff,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0x3cb0_0000_0000_0000,
        0x0020_0000_0000_0000,
        0x5ff0_0000_0000_0000,
    ];
    let sign = r.below(2) << 63;
    let mant = (1u64 << 52) - 1;
    match r.below(if tame { 16 } else { 5 }) {
        0 => S[r.below(S.len() as u64) as usize],
        1 => r.next(),
        2 => sign | ((1015 + r.below(17)) << 52) | (r.next() & mant & !0xffff_ffff),
        _ => sign | ((1015 + r.below(17)) << 52) | (r.next() & mant),
    }
}

/// One 64-bit half of an XMM register or memory: one double or two singles.
fn word(r: &mut Rng, tame: bool) -> u64 {
    if r.below(2) == 0 {
        double(r, tame)
    } else {
        single(r, tame) | single(r, tame) << 32
    }
}

/// MXCSR: the reset value, the fast path's setting (PE set, all masked,
/// RN) with and without DAZ/FTZ, other rounding modes, one exception
/// unmasked (#XM or #UD), or random bits.
fn mxcsr(r: &mut Rng) -> u32 {
    let fast = 0x1f80 | MX_PE;
    match r.below(10) {
        0 => 0x1f80,
        1..=4 => fast,
        5 => fast | MX_DAZ | MX_FTZ,
        6 => fast | ((1 + r.below(3) as u32) << 13),
        7 => fast & !(1 << (7 + r.below(6))),
        8 => fast | r.below(0x20) as u32,
        _ => r.next() as u32 & 0xffff,
    }
}

fn warm_tlb(c: &mut Cpu) {
    use leap_cpu::mmu::Access;
    for page in [DATA, DATA + 0x1000, STACK - 0x1000, CODE] {
        for acc in [Access::Read, Access::Write] {
            c.translate(page, acc, false).unwrap();
        }
    }
}

/// Both machines' state before the run: XMM registers, data, MXCSR and
/// the SSE enable bits, mostly enabled.
fn init(c: &mut Cpu, seed: u64, warm: bool, wide: bool) {
    let mut r = Rng(seed ^ 0x5eed_0f55_e000_0001);
    let tame = r.below(3) != 0;
    for k in 0..16 {
        c.s.xmm[k] = [word(&mut r, tame), word(&mut r, tame)];
    }
    for k in 0..0x220u64 {
        c.mem.write_ram(DATA + 8 * k, 8, word(&mut r, tame));
    }
    for k in 0..16 {
        if k != ESP {
            c.s.gpr[k] = if wide {
                r.next()
            } else {
                r.next() & 0xffff_ffff
            };
        }
    }
    c.s.gpr[ESI] = DATA;
    c.s.fpu.mxcsr = mxcsr(&mut r);
    c.s.cr0 &= !(CR0_EM | CR0_TS);
    c.s.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    match r.below(40) {
        0 => c.s.cr0 |= CR0_TS,
        1 => c.s.cr0 |= CR0_EM,
        2 => c.s.cr4 &= !CR4_OSFXSR,
        3..=8 => c.s.cr4 &= !CR4_OSXMMEXCPT,
        _ => {}
    }
    if warm {
        warm_tlb(c);
    }
}

/// A memory operand off ESI/RSI: mostly 16-aligned, sometimes 4- or
/// 8-misaligned, at the very end of the page, or straddling it.
fn mem_off(r: &mut Rng) -> i32 {
    match r.below(12) {
        0 => 0xff8,
        1 => 0xff0,
        2 => 0xffc,
        3 => 16 * r.below(64) as i32 + 4,
        4 => 16 * r.below(64) as i32 + 8,
        _ => 16 * r.below(64) as i32,
    }
}

macro_rules! sse_insn {
    ($a:expr, $r:expr, $xs:expr, $m:expr) => {{
        let a: &mut Asm = $a;
        let r: &mut Rng = $r;
        let x = pick(r, &$xs);
        let y = pick(r, &$xs);
        let m = $m;
        let reg = r.below(2) == 0;
        macro_rules! rm {
            ($op:ident, $ptr:ident) => {
                if reg {
                    a.$op(x, y)
                } else {
                    a.$op(x, $ptr(m))
                }
            };
        }
        match r.below(44) {
            0 => rm!(movaps, xmmword_ptr),
            1 => rm!(movapd, xmmword_ptr),
            2 => rm!(movdqa, xmmword_ptr),
            3 => rm!(movups, xmmword_ptr),
            4 => rm!(movupd, xmmword_ptr),
            5 => rm!(movdqu, xmmword_ptr),
            6 => match r.below(6) {
                0 => a.movaps(xmmword_ptr(m), x),
                1 => a.movapd(xmmword_ptr(m), x),
                2 => a.movdqa(xmmword_ptr(m), x),
                3 => a.movups(xmmword_ptr(m), x),
                4 => a.movupd(xmmword_ptr(m), x),
                _ => a.movdqu(xmmword_ptr(m), x),
            },
            7 => match r.below(3) {
                0 => a.movd(x, dword_ptr(m)),
                1 => a.movd(dword_ptr(m), x),
                _ => a.movq(qword_ptr(m), x),
            },
            8 => rm!(movq, qword_ptr),
            9 => rm!(movss, dword_ptr),
            10 => rm!(movsd_2, qword_ptr),
            11 => match r.below(2) {
                0 => a.movss(dword_ptr(m), x),
                _ => a.movsd_2(qword_ptr(m), x),
            },
            12 => rm!(pxor, xmmword_ptr),
            13 => rm!(por, xmmword_ptr),
            14 => rm!(pand, xmmword_ptr),
            15 => rm!(pandn, xmmword_ptr),
            16 => match r.below(8) {
                0 => rm!(xorps, xmmword_ptr),
                1 => rm!(xorpd, xmmword_ptr),
                2 => rm!(orps, xmmword_ptr),
                3 => rm!(orpd, xmmword_ptr),
                4 => rm!(andps, xmmword_ptr),
                5 => rm!(andpd, xmmword_ptr),
                6 => rm!(andnps, xmmword_ptr),
                _ => rm!(andnpd, xmmword_ptr),
            },
            17 => rm!(paddq, xmmword_ptr),
            18 => rm!(psubq, xmmword_ptr),
            19 => rm!(paddd, xmmword_ptr),
            20 => rm!(psubd, xmmword_ptr),
            21 | 22 => rm!(addss, dword_ptr),
            23 => rm!(subss, dword_ptr),
            24 => rm!(mulss, dword_ptr),
            25 => rm!(divss, dword_ptr),
            26 | 27 => rm!(addsd, qword_ptr),
            28 => rm!(subsd, qword_ptr),
            29 => rm!(mulsd, qword_ptr),
            30 => rm!(divsd, qword_ptr),
            31 => rm!(addps, xmmword_ptr),
            32 => rm!(subps, xmmword_ptr),
            33 => rm!(mulps, xmmword_ptr),
            34 => rm!(divps, xmmword_ptr),
            35 => rm!(addpd, xmmword_ptr),
            36 => rm!(subpd, xmmword_ptr),
            37 => rm!(mulpd, xmmword_ptr),
            38 => rm!(divpd, xmmword_ptr),
            39 => match r.below(4) {
                0 => rm!(sqrtss, dword_ptr),
                1 => rm!(sqrtsd, qword_ptr),
                2 => rm!(sqrtps, xmmword_ptr),
                _ => rm!(sqrtpd, xmmword_ptr),
            },
            // Mixed in: an x87-free GPR instruction and a helper-run SSE
            // one (the XMM state must be in memory around both).
            40 => a.add(eax, ecx),
            41 => a.minps(x, y),
            _ => a.addps(x, y),
        }
    }};
}

fn gpr_moves32(a: &mut Asm, r: &mut Rng) -> R {
    let x = pick(r, &X32);
    let g = pick(r, &G32);
    if r.below(2) == 0 {
        a.movd(x, g)
    } else {
        a.movd(g, x)
    }
}

fn gpr_moves64(a: &mut Asm, r: &mut Rng) -> R {
    let x = pick(r, &X64);
    match r.below(4) {
        0 => a.movq(x, pick(r, &G64)),
        1 => a.movq(pick(r, &G64), x),
        2 => a.movd(x, pick(r, &G32)),
        _ => a.movd(pick(r, &G32), x),
    }
}

fn program32(seed: u64) -> Vec<u8> {
    assemble(32, &|a| {
        let mut r = Rng(seed);
        for _ in 0..1 + r.below(12) {
            if r.below(8) == 0 {
                gpr_moves32(a, &mut r)?;
            } else {
                let m = esi + mem_off(&mut r);
                sse_insn!(a, &mut r, X32, m)?;
            }
        }
        a.hlt()
    })
}

fn program64(seed: u64) -> Vec<u8> {
    assemble(64, &|a| {
        let mut r = Rng(seed);
        for _ in 0..1 + r.below(12) {
            if r.below(8) == 0 {
                gpr_moves64(a, &mut r)?;
            } else {
                let m = rsi + mem_off(&mut r);
                sse_insn!(a, &mut r, X64, m)?;
            }
        }
        a.hlt()
    })
}

fn add(t: &mut Totals, g: Totals) {
    t.blocks += g.blocks;
    t.insns += g.insns;
    t.inline += g.inline;
}

#[test]
fn random_sse_blocks_32() {
    let mut jit = Jit::new().unwrap();
    let mut t = Totals::default();
    for warm in [true, false] {
        for seed in 1..=400u64 {
            let s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let code = program32(s);
            let mut a = pm32(&code);
            let mut b = pm32(&code);
            init(&mut a, s, warm, false);
            init(&mut b, s, warm, false);
            let what = format!("sse32 seed {seed} warm {warm}");
            let (_, got) = lockstep(&mut jit, &mut a, &mut b, 8, &mut |_| u64::MAX, &what);
            add(&mut t, got);
        }
    }
    eprintln!("random_sse_blocks_32: {t:?}");
    assert!(t.inline * 10 > t.insns * 7, "mostly inline: {t:?}");
}

#[test]
fn random_sse_blocks_64() {
    let mut jit = Jit::new().unwrap();
    let mut t = Totals::default();
    for warm in [true, false] {
        for seed in 1..=250u64 {
            let s = seed.wrapping_mul(0xd1b5_4a32_d192_ed03);
            let code = program64(s);
            let mut a = long64(&code);
            let mut b = long64(&code);
            init(&mut a, s, warm, true);
            init(&mut b, s, warm, true);
            let what = format!("sse64 seed {seed} warm {warm}");
            let (_, got) = lockstep(&mut jit, &mut a, &mut b, 8, &mut |_| u64::MAX, &what);
            add(&mut t, got);
        }
    }
    eprintln!("random_sse_blocks_64: {t:?}");
    assert!(t.inline * 10 > t.insns * 7, "mostly inline: {t:?}");
}

/// Results the fast path computes on the host, checked against the
/// interpreter with MXCSR set for it: long runs of ordinary values, where
/// a wrong lane or a flag would show.
#[test]
fn fast_path_arithmetic() {
    let mut jit = Jit::new().unwrap();
    for seed in 1..=200u64 {
        let code = assemble(32, &|a| {
            let mut r = Rng(seed);
            for _ in 0..12 {
                let (x, y) = (pick(&mut r, &X32), pick(&mut r, &X32));
                match r.below(10) {
                    0 => a.addps(x, y)?,
                    1 => a.subpd(x, y)?,
                    2 => a.mulps(x, y)?,
                    3 => a.divpd(x, y)?,
                    4 => a.addsd(x, y)?,
                    5 => a.mulss(x, xmmword_ptr(esi + 16 * r.below(16) as i32))?,
                    6 => a.divss(x, y)?,
                    7 => a.sqrtpd(x, y)?,
                    8 => a.subps(x, xmmword_ptr(esi + 16 * r.below(16) as i32))?,
                    _ => a.mulsd(x, y)?,
                }
            }
            a.hlt()
        });
        let mut a = pm32(&code);
        let mut b = pm32(&code);
        for c in [&mut a, &mut b] {
            init(c, seed, true, false);
            let mut r = Rng(seed);
            for k in 0..8 {
                c.s.xmm[k] = [word(&mut r, true), word(&mut r, true)];
            }
            c.s.cr0 &= !(CR0_EM | CR0_TS);
            c.s.cr4 |= CR4_OSFXSR;
            c.s.fpu.mxcsr = 0x1f80 | MX_PE;
        }
        lockstep(
            &mut jit,
            &mut a,
            &mut b,
            4,
            &mut |_| u64::MAX,
            &format!("fast {seed}"),
        );
        assert!(a.halted);
    }
}

/// One block per inline form: `insn; hlt` in 32- or 64-bit code.
fn form_blocks() -> Vec<(String, Rc<Block>)> {
    type P = Box<dyn Fn(&mut Asm) -> R>;
    let m = || xmmword_ptr(esi + 0x10);
    let forms32: Vec<(&str, P)> = vec![
        ("movaps r", Box::new(|a| a.movaps(xmm1, xmm2))),
        ("movaps ld", Box::new(move |a| a.movaps(xmm1, m()))),
        ("movaps st", Box::new(move |a| a.movaps(m(), xmm1))),
        ("movapd", Box::new(move |a| a.movapd(xmm3, m()))),
        ("movdqa st", Box::new(move |a| a.movdqa(m(), xmm3))),
        ("movups ld", Box::new(move |a| a.movups(xmm1, m()))),
        ("movupd st", Box::new(move |a| a.movupd(m(), xmm7))),
        ("movdqu", Box::new(move |a| a.movdqu(xmm0, m()))),
        ("movd x,r", Box::new(|a| a.movd(xmm1, eax))),
        ("movd r,x", Box::new(|a| a.movd(edi, xmm1))),
        ("movd x,m", Box::new(|a| a.movd(xmm1, dword_ptr(esi)))),
        ("movd m,x", Box::new(|a| a.movd(dword_ptr(esi), xmm1))),
        ("movq x,x", Box::new(|a| a.movq(xmm1, xmm5))),
        ("movq x,m", Box::new(|a| a.movq(xmm1, qword_ptr(esi)))),
        ("movq m,x", Box::new(|a| a.movq(qword_ptr(esi), xmm1))),
        ("movss r", Box::new(|a| a.movss(xmm1, xmm2))),
        ("movss ld", Box::new(|a| a.movss(xmm1, dword_ptr(esi)))),
        ("movss st", Box::new(|a| a.movss(dword_ptr(esi), xmm1))),
        ("movsd r", Box::new(|a| a.movsd_2(xmm1, xmm2))),
        ("movsd ld", Box::new(|a| a.movsd_2(xmm1, qword_ptr(esi)))),
        ("movsd st", Box::new(|a| a.movsd_2(qword_ptr(esi), xmm1))),
        ("pxor", Box::new(|a| a.pxor(xmm1, xmm1))),
        ("por m", Box::new(move |a| a.por(xmm1, m()))),
        ("pand", Box::new(|a| a.pand(xmm1, xmm2))),
        ("pandn m", Box::new(move |a| a.pandn(xmm1, m()))),
        ("xorps", Box::new(|a| a.xorps(xmm1, xmm2))),
        ("xorpd", Box::new(|a| a.xorpd(xmm1, xmm2))),
        ("orps", Box::new(|a| a.orps(xmm1, xmm2))),
        ("orpd m", Box::new(move |a| a.orpd(xmm1, m()))),
        ("andps", Box::new(|a| a.andps(xmm1, xmm2))),
        ("andpd", Box::new(|a| a.andpd(xmm1, xmm2))),
        ("andnps", Box::new(|a| a.andnps(xmm1, xmm2))),
        ("andnpd m", Box::new(move |a| a.andnpd(xmm1, m()))),
        ("paddq", Box::new(|a| a.paddq(xmm1, xmm2))),
        ("psubq m", Box::new(move |a| a.psubq(xmm1, m()))),
        ("paddd m", Box::new(move |a| a.paddd(xmm1, m()))),
        ("psubd", Box::new(|a| a.psubd(xmm1, xmm2))),
        ("addss", Box::new(|a| a.addss(xmm1, xmm2))),
        ("subss m", Box::new(|a| a.subss(xmm1, dword_ptr(esi)))),
        ("mulss", Box::new(|a| a.mulss(xmm1, xmm2))),
        ("divss", Box::new(|a| a.divss(xmm1, xmm2))),
        ("sqrtss", Box::new(|a| a.sqrtss(xmm1, xmm2))),
        ("addsd m", Box::new(|a| a.addsd(xmm1, qword_ptr(esi)))),
        ("subsd", Box::new(|a| a.subsd(xmm1, xmm2))),
        ("mulsd", Box::new(|a| a.mulsd(xmm1, xmm2))),
        ("divsd m", Box::new(|a| a.divsd(xmm1, qword_ptr(esi)))),
        ("sqrtsd", Box::new(|a| a.sqrtsd(xmm1, xmm2))),
        ("addps m", Box::new(move |a| a.addps(xmm1, m()))),
        ("subps", Box::new(|a| a.subps(xmm1, xmm2))),
        ("mulps", Box::new(|a| a.mulps(xmm1, xmm2))),
        ("divps m", Box::new(move |a| a.divps(xmm1, m()))),
        ("sqrtps", Box::new(|a| a.sqrtps(xmm1, xmm2))),
        ("addpd", Box::new(|a| a.addpd(xmm1, xmm2))),
        ("subpd m", Box::new(move |a| a.subpd(xmm1, m()))),
        ("mulpd", Box::new(|a| a.mulpd(xmm1, xmm2))),
        ("divpd", Box::new(|a| a.divpd(xmm1, xmm2))),
        ("sqrtpd m", Box::new(move |a| a.sqrtpd(xmm1, m()))),
    ];
    let forms64: Vec<(&str, P)> = vec![
        ("movq x,r64", Box::new(|a| a.movq(xmm9, r10))),
        ("movq r64,x", Box::new(|a| a.movq(r10, xmm15))),
        (
            "movdqu rip",
            Box::new(|a| {
                let mut l = a.create_label();
                a.movdqu(xmm12, xmmword_ptr(l))?;
                a.set_label(&mut l)
            }),
        ),
        (
            "addpd r64m",
            Box::new(|a| a.addpd(xmm8, xmmword_ptr(r9 + rax * 8))),
        ),
        ("movsd r64", Box::new(|a| a.movsd_2(xmm8, xmm14))),
    ];
    let mut out = Vec::new();
    for (bits, forms) in [(32, forms32), (64, forms64)] {
        for (name, f) in forms {
            let code = assemble(bits, &|a| {
                f(a)?;
                a.hlt()
            });
            let mut cpu = if bits == 32 {
                pm32(&code)
            } else {
                long64(&code)
            };
            out.push((name.to_string(), cpu.fetch_block(&mut NullBus).unwrap()));
        }
    }
    out
}

/// Each form is translated inline (not a helper call), and its IR passes
/// Cranelift's verifier (the JIT itself runs without it).
#[test]
fn every_form_is_inline() {
    let isa = leap_jit::host_isa().unwrap();
    let tr = Translator::new(&*isa);
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    for (name, blk) in form_blocks() {
        assert_eq!(blk.insns.len(), 2, "{name}: block shape");
        assert!(
            leap_jit::inline_form(&blk.insns[0], false).is_some(),
            "{name}: not an inline form"
        );
        let (func, stats) = tr.function(&blk, &mut fctx);
        assert_eq!(stats.inline, 1, "{name}: {stats:?}");
        cranelift_codegen::verify_function(&func, isa.flags())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // MMX forms of the same mnemonics and the string MOVSD stay helpers.
    for (bits, f) in [
        (
            32,
            Box::new(|a: &mut Asm| a.movq(mm1, mm2)) as Box<dyn Fn(&mut Asm) -> R>,
        ),
        (32, Box::new(|a: &mut Asm| a.pxor(mm1, mm2))),
        (32, Box::new(|a: &mut Asm| a.movd(mm1, eax))),
        (32, Box::new(|a: &mut Asm| a.paddq(mm1, qword_ptr(esi)))),
        (32, Box::new(|a: &mut Asm| a.movsd())),
        (32, Box::new(|a: &mut Asm| a.minps(xmm1, xmm2))),
    ] {
        let code = assemble(bits, &|a| {
            f(a)?;
            a.hlt()
        });
        let blk = pm32(&code).fetch_block(&mut NullBus).unwrap();
        assert!(
            leap_jit::inline_form(&blk.insns[0], false).is_none(),
            "{:?} should not be inline",
            blk.insns[0].inst
        );
    }
}

/// The same forms compile for every target the JIT supports.
#[test]
fn forms_compile_for_every_target() {
    let blocks = form_blocks();
    for target in ["x86_64", "aarch64", "riscv64gc", "s390x"] {
        let isa = leap_jit::isa_by_name(target).unwrap();
        for (name, b) in &blocks {
            leap_jit::compile_for_isa(&*isa, b).unwrap_or_else(|e| panic!("{target} {name}: {e}"));
        }
    }
}

/// Products and quotients next to the smallest normal. SoftFloat detects
/// tininess after rounding, so a result that rounds up to the smallest
/// normal still reports underflow when inexact; the fast path must leave
/// those (and everything tiny) to the handler. MXCSR is reset before and
/// saved after each operation, so a missed flag shows in memory.
#[test]
fn results_near_the_smallest_normal() {
    let mut jit = Jit::new().unwrap();
    for dbl in [true, false] {
        let (one, min) = if dbl {
            (0x3ff0_0000_0000_0000u64, 1u64 << 52)
        } else {
            (0x3f80_0000, 1 << 23)
        };
        let mut pairs = Vec::new();
        for k in 0..6u64 {
            for j in 0..6u64 {
                pairs.push((one - k, min + j));
                pairs.push((min + j, one + k));
                pairs.push((2 * min + j, one + k));
            }
        }
        for div in [false, true] {
            let code = assemble(32, &|a| {
                for i in 0..pairs.len() as i32 {
                    let at = 32 * i;
                    a.ldmxcsr(dword_ptr(esi + 0xf00))?;
                    if dbl {
                        a.movsd_2(xmm0, qword_ptr(esi + at))?;
                        if div {
                            a.divsd(xmm0, qword_ptr(esi + at + 16))?;
                        } else {
                            a.mulsd(xmm0, qword_ptr(esi + at + 16))?;
                        }
                        a.movsd_2(qword_ptr(esi + at + 8), xmm0)?;
                    } else {
                        a.movss(xmm0, dword_ptr(esi + at))?;
                        if div {
                            a.divss(xmm0, dword_ptr(esi + at + 16))?;
                        } else {
                            a.mulss(xmm0, dword_ptr(esi + at + 16))?;
                        }
                        a.movss(dword_ptr(esi + at + 8), xmm0)?;
                    }
                    a.stmxcsr(dword_ptr(esi + at + 24))?;
                }
                a.hlt()
            });
            let mut a = pm32(&code);
            let mut b = pm32(&code);
            for c in [&mut a, &mut b] {
                c.s.cr0 &= !(CR0_EM | CR0_TS);
                c.s.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
                c.s.gpr[ESI] = DATA;
                c.s.fpu.mxcsr = 0x1f80 | MX_PE;
                c.mem.write_ram(DATA + 0xf00, 4, (0x1f80 | MX_PE) as u64);
                for (i, &(x, y)) in pairs.iter().enumerate() {
                    let at = DATA + 32 * i as u64;
                    c.mem.write_ram(at, 8, x);
                    c.mem.write_ram(at + 16, 8, y);
                }
                warm_tlb(c);
            }
            let what = format!("near min normal dbl {dbl} div {div}");
            lockstep(&mut jit, &mut a, &mut b, 10_000, &mut |_| u64::MAX, &what);
            assert!(a.halted, "{what}");
            // The set does reach the underflow report.
            let ue = (0..pairs.len() as u64)
                .filter(|i| a.mem.read_ram(DATA + 32 * i + 24, 4) & 0x10 != 0)
                .count();
            assert!(ue > 0, "{what}: no underflow case");
        }
    }
}
