//! Differential tests: the same guest blocks run by the interpreter
//! (`Cpu::exec_block`) and compiled (`CompiledBlock::run`) from identical
//! states must leave identical CPU state, memory and exits.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::{Cpu, NullBus};
use leap_jit::Jit;

type R = Result<(), IcedError>;

macro_rules! alu {
    ($a:expr, $op:expr, $d:expr, $s:expr) => {
        match $op {
            0 => $a.add($d, $s),
            1 => $a.or($d, $s),
            2 => $a.and($d, $s),
            3 => $a.sub($d, $s),
            4 => $a.xor($d, $s),
            5 => $a.cmp($d, $s),
            6 => $a.test($d, $s),
            7 => $a.adc($d, $s),
            _ => $a.sbb($d, $s),
        }
    };
}

macro_rules! jcc {
    ($a:expr, $cc:expr, $t:expr) => {
        match $cc {
            0 => $a.jo($t),
            1 => $a.jno($t),
            2 => $a.jb($t),
            3 => $a.jae($t),
            4 => $a.je($t),
            5 => $a.jne($t),
            6 => $a.jbe($t),
            7 => $a.ja($t),
            8 => $a.js($t),
            9 => $a.jns($t),
            10 => $a.jp($t),
            11 => $a.jnp($t),
            12 => $a.jl($t),
            13 => $a.jge($t),
            14 => $a.jle($t),
            _ => $a.jg($t),
        }
    };
}

macro_rules! setcc {
    ($a:expr, $cc:expr, $d:expr) => {
        match $cc {
            0 => $a.seto($d),
            1 => $a.setno($d),
            2 => $a.setb($d),
            3 => $a.setae($d),
            4 => $a.sete($d),
            5 => $a.setne($d),
            6 => $a.setbe($d),
            7 => $a.seta($d),
            8 => $a.sets($d),
            9 => $a.setns($d),
            10 => $a.setp($d),
            11 => $a.setnp($d),
            12 => $a.setl($d),
            13 => $a.setge($d),
            14 => $a.setle($d),
            _ => $a.setg($d),
        }
    };
}

const R32: [AsmRegister32; 7] = [eax, ecx, edx, ebx, ebp, esi, edi];
const R16: [AsmRegister16; 7] = [ax, cx, dx, bx, bp, si, di];
const R8: [AsmRegister8; 8] = [al, cl, dl, bl, ah, ch, dh, bh];

fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[r.below(xs.len() as u64) as usize]
}

/// One random instruction: mostly forms the JIT inlines, some that go
/// through the helper, some that set flags the helper way.
fn random_insn(a: &mut Asm, r: &mut Rng) -> R {
    let op = r.below(9);
    match r.below(25) {
        0 | 1 => a.mov(pick(r, &R32), pick(r, &R32)),
        2 => a.mov(pick(r, &R32), r.interesting() as u32),
        3 => a.mov(pick(r, &R8), pick(r, &R8)),
        4 => a.mov(pick(r, &R16), r.next() as u16 as u32),
        5..=7 => alu!(a, op, pick(r, &R32), pick(r, &R32)),
        8 | 9 => alu!(a, op, pick(r, &R32), r.interesting() as i32),
        10 => alu!(a, op, pick(r, &R16), pick(r, &R16)),
        11 => alu!(a, op, pick(r, &R16), r.next() as i16 as i32),
        12 => alu!(a, op, pick(r, &R8), pick(r, &R8)),
        13 => alu!(a, op, pick(r, &R8), r.next() as i8 as i32),
        14 => match r.below(6) {
            0 => a.inc(pick(r, &R32)),
            1 => a.dec(pick(r, &R32)),
            2 => a.inc(pick(r, &R16)),
            3 => a.dec(pick(r, &R16)),
            4 => a.inc(pick(r, &R8)),
            _ => a.dec(pick(r, &R8)),
        },
        15 => match r.below(7) {
            0 => a.neg(pick(r, &R32)),
            1 => a.not(pick(r, &R32)),
            2 => a.shl(pick(r, &R32), (r.below(33)) as u32),
            3 => a.rol(pick(r, &R32), (r.below(33)) as u32),
            4 => a.ror(pick(r, &R16), (r.below(33)) as u32),
            5 => a.rol(pick(r, &R8), (r.below(33)) as u32),
            _ => a.sar(pick(r, &R16), (r.below(17)) as u32),
        },
        16 => a.mov(dword_ptr(DATA + 4 * r.below(16)), pick(r, &R32)),
        17 => a.mov(pick(r, &R32), dword_ptr(DATA + 4 * r.below(16))),
        18 => {
            alu!(a, op, dword_ptr(DATA + 4 * r.below(16)), pick(r, &R32))
        }
        19 => {
            let cc = r.below(16);
            setcc!(a, cc, pick(r, &R8))
        }
        20 => a.lea(
            pick(r, &R32),
            dword_ptr(pick(r, &R32) + pick(r, &R32) * 4 + 0x10),
        ),
        21 => match r.below(3) {
            0 => a.stc(),
            1 => a.clc(),
            _ => a.cmc(),
        },
        22 => {
            a.push(pick(r, &R32))?;
            a.pop(pick(r, &R32))
        }
        23 => match r.below(4) {
            0 => a.mul(pick(r, &R32)),
            1 => a.imul(pick(r, &R32)),
            2 => a.mul(pick(r, &R16)),
            _ => a.imul(pick(r, &R16)),
        },
        _ => a.imul_2(pick(r, &R32), pick(r, &R32)),
    }
}

fn random_init(cpu: &mut Cpu, seed: u64) {
    let mut r = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    for reg in [EAX, ECX, EDX, EBX, EBP, ESI, EDI] {
        cpu.s.gpr[reg] = r.interesting() & 0xffff_ffff;
    }
    cpu.s.flags.set_raw((r.next() & ARITH_FLAGS) | 2);
    for k in 0..16 {
        cpu.mem
            .write_ram(DATA + 4 * k, 4, r.interesting() & 0xffff_ffff);
    }
}

/// Random straight-line runs joined by a random branch.
fn random_program(a: &mut Asm, seed: u64) -> R {
    let mut r = Rng(seed);
    let mut taken = a.create_label();
    let mut back = a.create_label();
    a.set_label(&mut back)?;
    for _ in 0..1 + r.below(12) {
        random_insn(a, &mut r)?;
    }
    match r.below(3) {
        0 => {
            let cc = r.below(16);
            jcc!(a, cc, taken)?
        }
        1 => a.jmp(taken)?,
        _ => {}
    }
    for _ in 0..r.below(8) {
        random_insn(a, &mut r)?;
    }
    a.hlt()?;
    a.set_label(&mut taken)?;
    for _ in 0..r.below(8) {
        random_insn(a, &mut r)?;
    }
    a.hlt()
}

#[test]
fn random_blocks() {
    let mut jit = Jit::new().unwrap();
    let mut t = Totals::default();
    for seed in 1..=400u64 {
        let s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let got = diff32(
            &mut jit,
            &format!("seed {seed}"),
            &|c| random_init(c, s),
            &|a| random_program(a, s),
        );
        t.blocks += got.blocks;
        t.insns += got.insns;
        t.inline += got.inline;
    }
    eprintln!("random_blocks: {t:?}");
    assert!(
        t.inline * 2 > t.insns,
        "most instructions should be inline: {t:?}"
    );
}

/// Every condition after every inline flag producer (and after helper-made
/// and raw flags), on operand pairs at the flag edges, in all sizes.
#[test]
fn conditions_after_each_producer() {
    let mut jit = Jit::new().unwrap();
    let pairs: [(u32, u32); 8] = [
        (0, 0),
        (1, 2),
        (2, 1),
        (0x7fff_ffff, 0xffff_ffff),
        (0x8000_0000, 1),
        (0xffff_ffff, 1),
        (0x7f, 0x80),
        (0x8000, 0x7fff),
    ];
    let mut count = 0;
    for producer in 0..15u64 {
        for cc in 0..16u64 {
            for &(x, y) in &pairs {
                for size in [1u8, 2, 4] {
                    let prog = |a: &mut Asm| -> R {
                        let mut t = a.create_label();
                        a.mov(eax, x)?;
                        a.mov(ecx, y)?;
                        match (producer, size) {
                            (0..=6, 4) => alu!(a, producer, eax, ecx)?,
                            (0..=6, 2) => alu!(a, producer, ax, cx)?,
                            (0..=6, _) => alu!(a, producer, al, cl)?,
                            (7, 4) => a.inc(eax)?,
                            (7, 2) => a.inc(ax)?,
                            (7, _) => a.inc(al)?,
                            (8, 4) => a.dec(eax)?,
                            (8, 2) => a.dec(ax)?,
                            (8, _) => a.dec(al)?,
                            (9, 4) => alu!(a, 7, eax, ecx)?,
                            (9, 2) => alu!(a, 7, ax, cx)?,
                            (9, _) => alu!(a, 7, al, cl)?,
                            (10, _) => a.neg(ecx)?,
                            (12, 4) => alu!(a, 8, eax, ecx)?,
                            (12, 2) => alu!(a, 8, ax, cx)?,
                            (12, _) => alu!(a, 8, al, cl)?,
                            // A carry chain: the second ADC reads the
                            // first one's CF, the condition its record.
                            (13, _) => {
                                a.add(eax, ecx)?;
                                a.adc(ecx, eax)?;
                                a.sbb(al, cl)?;
                            }
                            (14, 4) => a.mul(ecx)?,
                            (14, 2) => a.imul(cx)?,
                            (14, _) => a.imul(ecx)?,
                            _ => a.nop()?,
                        }
                        jcc!(a, cc, t)?;
                        a.mov(edx, 1)?;
                        a.hlt()?;
                        a.set_label(&mut t)?;
                        a.mov(edx, 2)?;
                        a.hlt()
                    };
                    let flags = (x as u64 ^ y as u64) & ARITH_FLAGS;
                    diff32(
                        &mut jit,
                        &format!("producer {producer} cc {cc} {x:#x},{y:#x} size {size}"),
                        &|c| c.s.flags.set_raw(flags | 2),
                        &prog,
                    );
                    count += 1;
                }
            }
        }
    }
    eprintln!("conditions_after_each_producer: {count} programs");
}

/// INC/DEC keep CF: after every kind of CF source, in one block.
#[test]
fn incdec_chain_keeps_carry() {
    let mut jit = Jit::new().unwrap();
    for init in [0u64, FLAG_CF] {
        diff32(
            &mut jit,
            "incdec chain",
            &|c| c.s.flags.set_raw(init | 2),
            &|a| {
                let mut t = a.create_label();
                a.mov(eax, 0xffff_ffffu32)?;
                a.inc(eax)?; // CF from the raw flags
                a.add(eax, 0xffff_ffffu32)?;
                a.dec(al)?; // CF from an inline ADD
                a.inc(ah)?; // CF from an inline INC
                a.sub(ecx, 1)?;
                a.dec(cx)?; // CF from an inline SUB
                a.setb(bl)?; // helper reads the parked CF
                a.adc(edx, 0)?; // helper consumes it
                a.inc(edx)?; // CF from the helper's ADC
                a.jb(t)?;
                a.hlt()?;
                a.set_label(&mut t)?;
                a.hlt()
            },
        );
    }
}

/// Register merge rules: AH/AL/AX/EAX writes and reads mixed.
#[test]
fn partial_registers() {
    let mut jit = Jit::new().unwrap();
    diff32(
        &mut jit,
        "partial registers",
        &|c| {
            c.s.gpr[EAX] = 0x1234_5678;
            c.s.gpr[EBX] = 0x8765_4321;
        },
        &|a| {
            a.mov(ah, bl)?;
            a.mov(bh, al)?;
            a.add(ah, 0x7f)?;
            a.xor(bx, ax)?;
            a.sub(al, ah)?;
            a.mov(cx, 0xbeef)?;
            a.mov(ch, cl)?;
            a.or(edx, ecx)?;
            a.and(dh, 0x0f)?;
            a.mov(si, dx)?;
            a.test(si, 0x8000)?;
            a.cmp(ah, bh)?;
            a.hlt()
        },
    );
}

/// A fault in the middle of a block: the state is exactly as before the
/// faulting instruction (inline instructions before it committed, none
/// after), and delivery happens as in the interpreter.
#[test]
fn fault_mid_block_de() {
    let mut jit = Jit::new().unwrap();
    diff32(&mut jit, "#DE mid-block", &|c| c.s.gpr[EBX] = 0, &|a| {
        a.mov(eax, 100u32)?;
        a.add(eax, 5)?;
        a.inc(ecx)?;
        a.cmp(eax, ecx)?;
        a.div(ebx)?; // #DE
        a.mov(edx, 7u32)?;
        a.sub(eax, 1)?;
        a.hlt()
    });
}

#[test]
fn fault_mid_block_pf() {
    let mut jit = Jit::new().unwrap();
    let hole = 0x5000;
    for store in [false, true] {
        diff32(
            &mut jit,
            "#PF mid-block",
            &|c| enable_paging(c, hole),
            &|a| {
                a.mov(esi, 0x1234u32)?;
                a.xor(esi, 0xffff)?;
                a.dec(edi)?;
                if store {
                    a.mov(dword_ptr(hole + 0x10), esi)?; // #PF (write)
                } else {
                    a.add(esi, dword_ptr(hole + 0x10))?; // #PF (read)
                }
                a.mov(edx, 7u32)?;
                a.hlt()
            },
        );
    }
}

/// A jump past the CS limit raises #GP(0) at the jump, in inline code.
#[test]
fn branch_past_cs_limit() {
    let mut jit = Jit::new().unwrap();
    for cond in [false, true] {
        for taken in [false, true] {
            diff32(
                &mut jit,
                &format!("jmp past limit cond={cond} taken={taken}"),
                &|c| {
                    c.s.seg[CS].limit = 0x1fff;
                    c.update_seg_ok(CS);
                },
                &|a| {
                    a.mov(eax, if taken { 1u32 } else { 2 })?;
                    a.cmp(eax, 1)?;
                    if cond {
                        a.je(0x2800u64)?;
                    } else {
                        a.jmp(0x2800u64)?;
                    }
                    a.hlt()
                },
            );
        }
    }
}

/// A fault that cannot be delivered: the exit (triple fault) is the same.
#[test]
fn triple_fault_exit() {
    let mut jit = Jit::new().unwrap();
    let code = assemble(32, &|a| {
        a.mov(eax, 1u32)?;
        a.add(eax, eax)?;
        a.div(ecx)?;
        a.hlt()
    });
    let mut a = pm32(&code);
    let mut b = pm32(&code);
    for c in [&mut a, &mut b] {
        c.s.idtr.limit = 0;
    }
    let (exit, _) = lockstep(&mut jit, &mut a, &mut b, 4, &mut |_| u64::MAX, "triple");
    assert!(
        matches!(exit, Some(leap_cpu::Exit::TripleFault(_))),
        "{exit:?}"
    );
}

/// Every budget that can cut a block short, for an all-inline block and a
/// mixed one, including budgets already used up.
#[test]
fn budget_boundaries() {
    let mut jit = Jit::new().unwrap();
    let progs: [&dyn Fn(&mut Asm) -> R; 2] = [
        &|a| {
            for k in 0..10u32 {
                a.add(eax, k as i32)?;
                a.inc(ecx)?;
            }
            a.jmp(0x1000u64)
        },
        &|a| {
            for k in 0..6u32 {
                a.add(eax, k as i32)?;
                a.mov(dword_ptr(DATA + 4 * k as u64), eax)?;
                a.shl(ecx, 1)?;
            }
            a.jne(0x1000u64)
        },
    ];
    for (p, prog) in progs.iter().enumerate() {
        let code = assemble(32, *prog);
        for start in [0u64, 5] {
            for budget in 0..24u64 {
                let mut a = pm32(&code);
                let mut b = pm32(&code);
                for c in [&mut a, &mut b] {
                    c.icount = start;
                    c.s.gpr[ECX] = 3;
                }
                let what = format!("prog {p} start {start} budget {budget}");
                lockstep(&mut jit, &mut a, &mut b, 3, &mut |ic| ic + budget, &what);
            }
        }
    }
}

/// A stale `end_block` (e.g. from code invalidation between runs) stops
/// the block after its first instruction in both tiers.
#[test]
fn stale_end_block() {
    let mut jit = Jit::new().unwrap();
    let code = assemble(32, &|a| {
        a.mov(eax, 1u32)?;
        a.add(eax, 2)?;
        a.hlt()
    });
    let mut a = pm32(&code);
    let mut b = pm32(&code);
    a.end_block = true;
    b.end_block = true;
    lockstep(
        &mut jit,
        &mut a,
        &mut b,
        4,
        &mut |_| u64::MAX,
        "stale end_block",
    );
    assert_eq!(a.icount, 3);
}

/// 16-bit real-mode code: IP wraps at 64 KiB, 16-bit branch targets.
#[test]
fn real_mode_blocks() {
    let mut jit = Jit::new().unwrap();
    for seed in 1..=60u64 {
        let code = assemble(16, &|a| {
            let mut r = Rng(seed);
            let mut t = a.create_label();
            for _ in 0..1 + r.below(8) {
                let op = r.below(7);
                match r.below(4) {
                    0 => alu!(a, op, pick(&mut r, &R16), pick(&mut r, &R16))?,
                    1 => alu!(a, op, pick(&mut r, &R8), r.next() as i8 as i32)?,
                    2 => a.inc(pick(&mut r, &R16))?,
                    _ => a.mov(pick(&mut r, &R32), r.interesting() as u32)?,
                }
            }
            let cc = r.below(16);
            jcc!(a, cc, t)?;
            a.hlt()?;
            a.set_label(&mut t)?;
            a.dec(ax)?;
            a.hlt()
        });
        let mut a = real(&code);
        let mut b = real(&code);
        for c in [&mut a, &mut b] {
            random_init(c, seed);
        }
        lockstep(
            &mut jit,
            &mut a,
            &mut b,
            8,
            &mut |_| u64::MAX,
            &format!("real {seed}"),
        );
        assert!(a.halted);
    }
}

/// Blocks of only helper calls behave like the interpreter too (string
/// instructions, stack, far-reaching handlers).
#[test]
fn helper_only_blocks() {
    let mut jit = Jit::new().unwrap();
    diff32(
        &mut jit,
        "helpers",
        &|c| {
            c.s.gpr[ECX] = 5;
            c.s.gpr[ESI] = DATA;
            c.s.gpr[EDI] = DATA + 0x100;
        },
        &|a| {
            let mut f = a.create_label();
            a.push(0x1234_5678)?;
            a.pop(edx)?;
            a.rep().movsb()?;
            a.call(f)?;
            a.hlt()?;
            a.set_label(&mut f)?;
            a.lea(ebx, dword_ptr(edx + 8))?;
            a.ret()
        },
    );
}

#[test]
fn compiled_block_is_reusable() {
    let mut jit = Jit::new().unwrap();
    let code = assemble(32, &|a| {
        a.add(eax, 3)?;
        a.cmp(eax, 30)?;
        a.jb(0x1000u64)
    });
    let mut a = pm32(&code);
    let mut b = pm32(&code);
    let blk = a.fetch_block(&mut NullBus).unwrap();
    b.fetch_block(&mut NullBus).unwrap();
    let c = jit.compile(&blk).unwrap();
    assert_eq!(c.stats.inline, 3);
    assert!(c.stats.looping);
    // The block loops on itself inside its code; small budgets make each
    // run stop after one or two iterations, so the code runs many times.
    let mut runs = 0;
    while a.s.rip == CODE {
        let end = a.icount + 3 + runs % 4;
        let mut ra = a.exec_block(&mut NullBus, &blk, end);
        let rb = c.run(&mut b, &mut NullBus, end);
        while ra.is_none() && a.icount < b.icount && a.s.rip == CODE {
            ra = a.exec_block(&mut NullBus, &blk, end);
        }
        assert_eq!(ra, rb);
        compare(&a, &b, "loop");
        runs += 1;
    }
    assert!(runs > 5, "runs {runs}");
    assert_eq!(b.s.gpr[EAX], 30);
    assert_eq!(b.icount, 30);
}

const R64: [AsmRegister64; 8] = [rax, rcx, rdx, rbx, r8, r9, r13, r15];
const R32X: [AsmRegister32; 4] = [r8d, r10d, r14d, eax];

/// 64-bit code: REX registers, 64-bit and 32-bit (zero-extending) forms,
/// branches with the canonical check.
#[test]
fn long_mode_blocks() {
    let mut jit = Jit::new().unwrap();
    let mut t = Totals::default();
    for seed in 1..=150u64 {
        let code = assemble(64, &|a| {
            let mut r = Rng(seed);
            let mut taken = a.create_label();
            for _ in 0..1 + r.below(10) {
                let op = r.below(7);
                // Shift counts include 0: a 32-bit register is still
                // zero-extended then.
                let cnt = [0u32, 1, 5, 31, 32, 63][r.below(6) as usize];
                match r.below(13) {
                    0 => alu!(a, op, pick(&mut r, &R64), pick(&mut r, &R64))?,
                    1 => alu!(a, op, pick(&mut r, &R64), r.interesting() as i32)?,
                    2 => alu!(a, op, pick(&mut r, &R32X), pick(&mut r, &R32X))?,
                    3 => a.mov(pick(&mut r, &R64), r.next())?,
                    4 => a.mov(pick(&mut r, &R32X), r.next() as u32)?,
                    5 => a.inc(pick(&mut r, &R64))?,
                    6 => a.dec(pick(&mut r, &R32X))?,
                    7 => a.shl(pick(&mut r, &R32X), cnt)?,
                    8 => a.sar(pick(&mut r, &R32X), cnt)?,
                    9 => a.shr(pick(&mut r, &R64), cnt)?,
                    10 => a.adc(pick(&mut r, &R64), pick(&mut r, &R64))?,
                    11 => a.mul(pick(&mut r, &R64))?,
                    _ => a.imul(pick(&mut r, &R64))?,
                }
            }
            let cc = r.below(16);
            jcc!(a, cc, taken)?;
            a.hlt()?;
            a.set_label(&mut taken)?;
            a.mov(rdx, rax)?;
            a.hlt()
        });
        let mut a = long64(&code);
        let mut b = long64(&code);
        for c in [&mut a, &mut b] {
            let mut r = Rng(seed ^ 0x5555);
            for k in 0..16 {
                if k != ESP {
                    c.s.gpr[k] = r.interesting() | r.interesting() << 32;
                }
            }
            c.s.flags.set_raw((r.next() & ARITH_FLAGS) | 2);
        }
        let (_, got) = lockstep(
            &mut jit,
            &mut a,
            &mut b,
            8,
            &mut |_| u64::MAX,
            &format!("long {seed}"),
        );
        assert!(a.halted);
        t.blocks += got.blocks;
        t.insns += got.insns;
        t.inline += got.inline;
    }
    eprintln!("long_mode_blocks: {t:?}");
}

/// A 64-bit near jump to a non-canonical address raises #GP(0) at the
/// jump, from inline code. The code page is also mapped at the top of the
/// lower canonical half, so a rel32 jump leaves it. (The IDT is a 32-bit
/// one, so the #GP shuts the processor down, in both tiers.)
#[test]
fn long_mode_noncanonical_branch() {
    let mut jit = Jit::new().unwrap();
    let code = assemble(64, &|a| {
        a.mov(rax, 1u64)?;
        a.add(rax, 2)?;
        a.jmp(0x3000u64)
    });
    let top = 0x7fff_ffff_f000u64;
    let mut a = long64(&code);
    let mut b = long64(&code);
    for c in [&mut a, &mut b] {
        // PML4[255] -> PDPT[511] -> PD[511] -> PT[511] -> the code page.
        let (pdpt, pd, pt) = (0x23000u64, 0x24000u64, 0x25000u64);
        c.mem.write_ram(0x20000 + 8 * 255, 8, pdpt | 3);
        c.mem.write_ram(pdpt + 8 * 511, 8, pd | 3);
        c.mem.write_ram(pd + 8 * 511, 8, pt | 3);
        c.mem.write_ram(pt + 8 * 511, 8, CODE | 3);
        c.tlb.flush_all();
        c.s.rip = top;
    }
    let (exit, t) = lockstep(
        &mut jit,
        &mut a,
        &mut b,
        2,
        &mut |_| u64::MAX,
        "noncanonical",
    );
    assert!(
        matches!(exit, Some(leap_cpu::Exit::TripleFault(_))),
        "{exit:?}"
    );
    assert_eq!(t.inline, 3);
    assert_eq!(a.icount, 2);
}

// ---- memory operands, stack, and the second batch of inline forms ------

/// Fill the read and write TLB entries of the data, stack and code pages
/// the same way in both CPUs, so compiled code takes its inline hit path
/// (a cold TLB sends every first access through the interpreter).
fn warm_tlb(c: &mut Cpu) {
    use leap_cpu::mmu::Access;
    for page in [DATA, DATA + 0x1000, STACK - 0x1000, CODE] {
        for acc in [Access::Read, Access::Write] {
            c.translate(page, acc, false).unwrap();
        }
    }
}

const R32M: [AsmRegister32; 6] = [eax, ecx, edx, ebx, ebp, edi];
const R16M: [AsmRegister16; 6] = [ax, cx, dx, bx, bp, di];

/// A memory operand off ESI (= DATA): mostly inside the page, sometimes
/// straddling into the next one, sometimes with a scaled index.
fn mem_at(r: &mut Rng) -> AsmMemoryOperand {
    match r.below(8) {
        0 => esi + 0xffe,
        1 => esi + edi * 4 + 8,
        2 => esi + ecx * 2 - 4,
        _ => esi + (4 * r.below(32)) as i32,
    }
}

/// One random instruction of the memory / stack / second-batch forms.
fn random_mem_insn(a: &mut Asm, r: &mut Rng) -> R {
    let op = r.below(9);
    let m = mem_at(r);
    match r.below(31) {
        0 => a.mov(pick(r, &R32M), dword_ptr(m)),
        1 => a.mov(dword_ptr(m), pick(r, &R32M)),
        2 => a.mov(word_ptr(m), pick(r, &R16M)),
        3 => a.mov(byte_ptr(m), pick(r, &R8)),
        4 => a.mov(dword_ptr(m), r.interesting() as u32),
        5 => a.mov(pick(r, &R8), byte_ptr(m)),
        6 => {
            let d = pick(r, &R32M);
            match op {
                0 => a.add(d, dword_ptr(m)),
                1 => a.or(d, dword_ptr(m)),
                2 => a.and(d, dword_ptr(m)),
                3 => a.sub(d, dword_ptr(m)),
                4 => a.xor(d, dword_ptr(m)),
                _ => a.cmp(d, dword_ptr(m)),
            }
        }
        7 => alu!(a, op, dword_ptr(m), pick(r, &R32M)),
        8 => alu!(a, op, word_ptr(m), r.next() as i16 as i32),
        9 => alu!(a, op, byte_ptr(m), pick(r, &R8)),
        10 => match r.below(4) {
            0 => a.inc(dword_ptr(m)),
            1 => a.dec(word_ptr(m)),
            2 => a.neg(dword_ptr(m)),
            _ => a.not(byte_ptr(m)),
        },
        11 => a.movzx(pick(r, &R32M), byte_ptr(m)),
        12 => a.movsx(pick(r, &R32M), word_ptr(m)),
        13 => a.movsx(pick(r, &R32M), pick(r, &R8)),
        14 => a.lea(pick(r, &R32M), dword_ptr(esi + pick(r, &R32M) * 8 - 3)),
        15 => {
            let cc = r.below(16);
            setcc!(a, cc, byte_ptr(m))
        }
        16 => match r.below(4) {
            0 => a.cmove(pick(r, &R32M), dword_ptr(m)),
            1 => a.cmovl(pick(r, &R32M), pick(r, &R32M)),
            2 => a.cmovb(pick(r, &R16M), pick(r, &R16M)),
            _ => a.cmovg(pick(r, &R32M), dword_ptr(m)),
        },
        17 => a.imul_2(pick(r, &R32M), dword_ptr(m)),
        18 => a.imul_3(pick(r, &R32M), pick(r, &R32M), r.interesting() as i32),
        19 => a.imul_2(pick(r, &R16M), pick(r, &R16M)),
        20 => match r.below(5) {
            0 => a.push(pick(r, &R32M)),
            1 => a.push(r.interesting() as i32),
            2 => a.push(dword_ptr(m)),
            3 => {
                // A frame torn down by LEAVE (EBP saved and restored, the
                // stack as before).
                a.push(ebp)?;
                a.mov(ebp, esp)?;
                a.push(pick(r, &R32M))?;
                a.push(word_ptr(m))?;
                a.leave()
            }
            _ => a.pop(pick(r, &R32M)),
        },
        21 => match r.below(6) {
            0 => a.shl(pick(r, &R32M), r.below(40) as u32),
            1 => a.shr(pick(r, &R16M), r.below(40) as u32),
            2 => a.sar(pick(r, &R8), r.below(40) as u32),
            3 => a.shl(pick(r, &R8), cl),
            4 => a.shr(pick(r, &R32M), cl),
            _ => a.sar(pick(r, &R16M), cl),
        },
        22 => a.xchg(pick(r, &R32M), pick(r, &R32M)),
        23 => a.xchg(pick(r, &R8), pick(r, &R8)),
        24 => a.nop(),
        25 => a.cmp(dword_ptr(m), r.interesting() as i32),
        26 => a.test(byte_ptr(m), r.next() as u8 as u32),
        27 => {
            let cc = r.below(16);
            setcc!(a, cc, pick(r, &R8))
        }
        28 => a.adc(pick(r, &R32M), dword_ptr(m)),
        29 => match r.below(4) {
            0 => a.mul(dword_ptr(m)),
            1 => a.imul(dword_ptr(m)),
            2 => a.mul(word_ptr(m)),
            _ => a.imul(word_ptr(m)),
        },
        _ => random_insn(a, r),
    }
}

fn random_mem_init(c: &mut Cpu, seed: u64, warm: bool) {
    random_init(c, seed);
    let mut r = Rng(seed ^ 0x1234_5678);
    c.s.gpr[ESI] = DATA;
    c.s.gpr[EDI] &= 0xff;
    c.s.gpr[ECX] &= 0x3ff;
    for k in 0..0x400 {
        c.mem.write_ram(DATA + 8 * k, 8, r.next());
    }
    if warm {
        warm_tlb(c);
    }
}

/// Straight-line runs of memory forms ending in a random branch, CALL or
/// RET, with the TLB warm (inline hits) and cold (slow path first).
#[test]
fn random_memory_blocks() {
    // Above every offset `mem_at` reaches but its 0xffe straddle.
    const RET_SAVE: u64 = 0xff0;
    let mut jit = Jit::new().unwrap();
    let mut t = Totals::default();
    for warm in [true, false] {
        for seed in 1..=300u64 {
            let s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let prog = |a: &mut Asm| -> R {
                let mut r = Rng(s);
                let mut taken = a.create_label();
                let mut func = a.create_label();
                for _ in 0..1 + r.below(14) {
                    random_mem_insn(a, &mut r)?;
                }
                match r.below(4) {
                    0 => {
                        let cc = r.below(16);
                        jcc!(a, cc, taken)?
                    }
                    1 => a.call(func)?,
                    2 => a.jmp(taken)?,
                    _ => {}
                }
                a.hlt()?;
                a.set_label(&mut taken)?;
                a.mov(edx, 1)?;
                a.hlt()?;
                a.set_label(&mut func)?;
                // Keep the return address away from the stack: the caller
                // and this body push and pop at random.
                a.pop(dword_ptr(DATA + RET_SAVE))?;
                for _ in 0..r.below(5) {
                    random_mem_insn(a, &mut r)?;
                }
                a.lea(esp, dword_ptr(STACK as i32 - 0x40))?;
                a.push(dword_ptr(DATA + RET_SAVE))?;
                if r.below(2) == 0 {
                    a.ret()
                } else {
                    a.ret_1(8)
                }
            };
            let got = diff32_any(
                &mut jit,
                &format!("mem seed {seed} warm {warm}"),
                &|c| random_mem_init(c, s, warm),
                &prog,
                16,
            );
            t.blocks += got.blocks;
            t.insns += got.insns;
            t.inline += got.inline;
        }
    }
    eprintln!("random_memory_blocks: {t:?}");
    assert!(t.inline * 10 > t.insns * 8, "mostly inline: {t:?}");
}

/// A store into the block's own code page goes through the interpreter,
/// which invalidates the code and ends the block there.
#[test]
fn store_into_code_page_ends_block() {
    let mut jit = Jit::new().unwrap();
    diff32(&mut jit, "smc", &warm_tlb, &|a| {
        a.mov(eax, 0x9090_9090u32)?;
        a.mov(dword_ptr(CODE + 0x100), eax)?;
        a.inc(eax)?;
        a.mov(dword_ptr(DATA), eax)?;
        a.hlt()
    });
}

/// Accesses to a non-RAM page (MMIO hole) and across a page boundary take
/// the slow path and continue inline afterwards.
#[test]
fn hole_and_straddle_accesses() {
    let mut jit = Jit::new().unwrap();
    let hole = 0xa_0000u64;
    let init = |c: &mut Cpu| {
        c.mem
            .set_range_flags(hole, 0x1000, leap_cpu::phys::PG_HOLE, 0);
        c.tlb.flush_all();
        warm_tlb(c);
        c.translate(hole, leap_cpu::mmu::Access::Read, false)
            .unwrap();
        c.translate(hole, leap_cpu::mmu::Access::Write, false)
            .unwrap();
    };
    diff32(&mut jit, "hole", &init, &|a| {
        a.mov(eax, dword_ptr(hole + 8))?;
        a.add(dword_ptr(hole + 0x10), eax)?;
        a.mov(ecx, dword_ptr(DATA + 0xffe))?;
        a.add(dword_ptr(DATA + 0xffd), ecx)?;
        a.sub(ecx, dword_ptr(DATA + 4))?;
        a.hlt()
    });
}

/// Segment checks: a DS limit below the access raises #GP(0) from the
/// slow path; an expand-down segment and a read-only one too.
#[test]
fn segment_limit_and_type() {
    let mut jit = Jit::new().unwrap();
    for case in 0..4 {
        let init = move |c: &mut Cpu| {
            warm_tlb(c);
            match case {
                0 => c.s.seg[DS].limit = DATA as u32 + 0x10,
                1 => {
                    // Expand-down, limit 0x9fff: offsets above it are valid.
                    c.s.seg[DS].attr = (c.s.seg[DS].attr & !0xf) | 0x7;
                    c.s.seg[DS].limit = 0x9007;
                }
                2 => c.s.seg[DS].attr &= !0x2,
                _ => c.s.seg[ES].base = 0x1000,
            }
            c.update_seg_ok(DS);
            c.update_seg_ok(ES);
        };
        diff32(&mut jit, &format!("segment case {case}"), &init, &|a| {
            a.mov(eax, dword_ptr(DATA + 0x8))?;
            a.mov(dword_ptr(DATA + 0x20), eax)?;
            a.add(dword_ptr(DATA + 0x20), eax)?;
            a.mov(ebx, dword_ptr(ptr(DATA + 0x10).es()))?;
            a.mov(ecx, dword_ptr(DATA + 0x30))?;
            a.hlt()
        });
    }
}

/// A block decoded while DS, ES and SS were flat is specialised on that;
/// run after a segment stopped being flat, each of its accesses must get
/// the interpreter's base, limit, type and stack-size handling.
#[test]
fn flat_segments_checked_at_run_time() {
    use leap_cpu::mmu::Access;
    let mut jit = Jit::new().unwrap();
    let code = assemble(32, &|a| {
        a.mov(eax, dword_ptr(DATA + 0x8))?;
        a.mov(dword_ptr(ebp - 8), eax)?;
        a.push(eax)?;
        a.pop(ecx)?;
        a.add(dword_ptr(ptr(DATA + 0x20).es()), ecx)?;
        a.mov(edx, dword_ptr(DATA + 0x30))?;
        a.mov(dword_ptr(DATA + 0x40), edx)?;
        a.hlt()
    });
    for case in 0..8 {
        let mut a = pm32(&code);
        let mut b = pm32(&code);
        for c in [&mut a, &mut b] {
            warm_tlb(c);
            for page in [STACK - 0x1000 + 0x10000, DATA + 0x1000] {
                for acc in [Access::Read, Access::Write] {
                    c.translate(page, acc, false).unwrap();
                }
            }
            c.s.gpr[EBP] = STACK - 0x100;
            c.mem.write_ram(DATA + 0x8, 4, 0x1234_5678);
        }
        assert_eq!(
            a.seg_flat & 0x0f,
            0x0d,
            "pm32 starts with flat ES, SS, DS, not CS"
        );
        let blk = a.fetch_block(&mut NullBus).unwrap();
        b.fetch_block(&mut NullBus).unwrap();
        let compiled = jit.compile(&blk).unwrap();
        let change = |c: &mut Cpu| {
            match case {
                0 => {}
                1 => c.s.seg[DS].limit = DATA as u32 + 0x10,
                2 => c.s.seg[DS].attr &= !0x2,
                3 => c.s.seg[ES].base = 0x1000,
                4 => {
                    // A 16-bit stack: pushes go to SP, not ESP.
                    c.s.seg[SS].attr &= !ATTR_DB;
                    c.s.gpr[ESP] += 0x10000;
                }
                5 => c.s.seg[SS].limit = 0x7000,
                6 => c.s.seg[SS].base = 0x10,
                _ => c.s.seg[ES].attr = (c.s.seg[ES].attr & !0xf) | 0x7,
            }
            c.update_mode();
        };
        change(&mut a);
        change(&mut b);
        let ra = a.exec_block(&mut NullBus, &blk, u64::MAX);
        let rb = compiled.run(&mut b, &mut NullBus, u64::MAX);
        assert_eq!(ra, rb, "case {case}: exit");
        compare(&a, &b, &format!("flat case {case}"));
        assert_eq!(a.icount, b.icount);
    }
}

/// Stack forms with a 16-bit SS in 32-bit code (the guard sends them to
/// the interpreter), and a stack that faults.
#[test]
fn stack_size_guard_and_faults() {
    let mut jit = Jit::new().unwrap();
    for case in 0..3 {
        let init = move |c: &mut Cpu| {
            warm_tlb(c);
            match case {
                0 => {
                    c.s.seg[SS].attr &= !ATTR_DB;
                    c.s.gpr[ESP] = 0x1234_8000;
                }
                1 => {
                    c.s.seg[SS].limit = 0x7ff0;
                    c.update_seg_ok(SS);
                }
                _ => enable_paging(c, STACK - 0x1000),
            }
        };
        diff32_any(
            &mut jit,
            &format!("stack case {case}"),
            &init,
            &|a| {
                let mut f = a.create_label();
                a.mov(eax, 5u32)?;
                a.push(eax)?;
                a.push(0x77)?;
                a.pop(ecx)?;
                a.add(ecx, eax)?;
                a.call(f)?;
                a.hlt()?;
                a.set_label(&mut f)?;
                a.pop(edx)?;
                a.push(edx)?;
                a.push(ebp)?;
                a.mov(ebp, esp)?;
                a.push(dword_ptr(esp + 4))?;
                a.pop(esi)?;
                a.push(eax)?;
                a.leave()?;
                a.ret()
            },
            16,
        );
    }
}

/// Shifts by CL with counts 0, inside and past the width, in every size,
/// followed by every condition.
#[test]
fn shift_counts_and_conditions() {
    let mut jit = Jit::new().unwrap();
    for kind in 0..3u64 {
        for count in [0u32, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33] {
            for size in [1u8, 2, 4] {
                for cc in [0u64, 2, 4, 5, 8, 10, 12, 14] {
                    let prog = |a: &mut Asm| -> R {
                        let mut t = a.create_label();
                        a.mov(eax, 0x8123_4587u32)?;
                        a.mov(ecx, count)?;
                        a.add(ebx, edx)?;
                        match (kind, size) {
                            (0, 4) => a.shl(eax, cl)?,
                            (0, 2) => a.shl(ax, cl)?,
                            (0, _) => a.shl(al, cl)?,
                            (1, 4) => a.shr(eax, cl)?,
                            (1, 2) => a.shr(ax, cl)?,
                            (1, _) => a.shr(ah, cl)?,
                            (_, 4) => a.sar(eax, cl)?,
                            (_, 2) => a.sar(ax, cl)?,
                            _ => a.sar(al, cl)?,
                        }
                        match (kind, size) {
                            (0, _) => a.shl(edx, count)?,
                            (1, _) => a.shr(dx, count)?,
                            _ => a.sar(dl, count)?,
                        }
                        jcc!(a, cc, t)?;
                        a.hlt()?;
                        a.set_label(&mut t)?;
                        a.mov(esi, 1)?;
                        a.hlt()
                    };
                    diff32(
                        &mut jit,
                        &format!("shift {kind} count {count} size {size} cc {cc}"),
                        &|c| {
                            c.s.gpr[EBX] = 0xffff_ffff;
                            c.s.gpr[EDX] = 0x8000_0001;
                        },
                        &prog,
                    );
                }
            }
        }
    }
}

/// ROL/ROR change only CF and OF: after every kind of flag producer
/// (lazy ALU/INC/shift records, explicit IMUL flags, an interpreter-run
/// ADC whose record the block cannot see, a previous rotate), in every
/// size, with counts that are 0, a multiple of the width or not, by
/// immediate or CL; then every condition and the whole flag word.
#[test]
fn rotates_keep_other_flags() {
    let mut jit = Jit::new().unwrap();
    let mut n = 0;
    for producer in 0..8u32 {
        for left in [true, false] {
            for size in [1u8, 2, 4] {
                for count in [0u32, 1, 3, 8, 16, 31] {
                    for by_cl in [false, true] {
                        let cc = (producer * 5 + count) as u64 % 16;
                        let prog = |a: &mut Asm| -> R {
                            let mut t = a.create_label();
                            a.mov(ecx, count)?;
                            match producer {
                                0 => a.add(eax, edx)?,
                                1 => a.sub(edx, eax)?,
                                2 => a.xor(ebx, edx)?,
                                3 => a.inc(edx)?,
                                4 => a.shl(edx, 3)?,
                                5 => a.imul_2(edx, eax)?,
                                6 => a.adc(edx, eax)?,
                                _ => a.ror(ebx, 1)?,
                            }
                            match (left, size, by_cl) {
                                (true, 4, false) => a.rol(eax, count)?,
                                (true, 2, false) => a.rol(ax, count)?,
                                (true, _, false) => a.rol(ah, count)?,
                                (false, 4, false) => a.ror(eax, count)?,
                                (false, 2, false) => a.ror(ax, count)?,
                                (false, _, false) => a.ror(al, count)?,
                                (true, 4, true) => a.rol(eax, cl)?,
                                (true, 2, true) => a.rol(ax, cl)?,
                                (true, _, true) => a.rol(al, cl)?,
                                (false, 4, true) => a.ror(eax, cl)?,
                                (false, 2, true) => a.ror(ax, cl)?,
                                (false, _, true) => a.ror(ah, cl)?,
                            }
                            // The condition reads the rotate's record
                            // inline; PUSHFD then reads it from memory.
                            jcc!(a, cc, t)?;
                            a.pushfd()?;
                            a.hlt()?;
                            a.set_label(&mut t)?;
                            a.mov(edi, 1)?;
                            a.pushfd()?;
                            a.hlt()
                        };
                        let t = diff32(
                            &mut jit,
                            &format!("rotate after {producer} left {left} size {size} count {count} by CL {by_cl}"),
                            &|c| {
                                c.s.gpr[EAX] = 0x8123_4588;
                                c.s.gpr[EBX] = 0x0000_0001;
                                c.s.gpr[EDX] = 0x7fff_fff8;
                                c.s.gpr[ESP] = 0x8000;
                                c.s.flags.set_raw(0x2 | FLAG_CF);
                            },
                            &prog,
                        );
                        n += t.inline;
                    }
                }
            }
        }
    }
    assert!(n > 0, "nothing ran inline");
}

/// Dividend/divisor pairs for DIV/IDIV: ordinary, zero divisor, divisor
/// -1 (and the most negative dividend), quotients at and just past the
/// limits of the operand size.
const DIVS: [(u64, u64, u64); 12] = [
    (0, 1000, 7),
    (0, 0xffff_fff0, 0x10),
    (0, 1234, 0),
    (0xffff_ffff, 0x8000_0000, 0xffff_ffff),
    (0x7, 0xffff_ffff, 0x8),
    (0x7, 0xffff_ffff, 0x7),
    (0xffff_ffff, 0xffff_fff9, 0x7),
    (0x3fff_ffff, 0xffff_ffff, 0x8000_0000),
    (0xffff_ffff, 0xffff_ffff, 0xffff_fffe),
    (0xffff_ffff, 0x8000_0000, 0x1),
    (0x1, 0, 0xffff_ffff),
    (0xffff, 0x8000, 0xffff_ffff),
];

/// DIV and IDIV of 16- and 32-bit register and memory divisors: every
/// pair of `DIVS` (including #DE) matches the interpreter.
#[test]
fn divides_and_faults_32() {
    let mut jit = Jit::new().unwrap();
    let mut n = 0;
    for &(hi, lo, d) in &DIVS {
        for kind in 0..8u32 {
            let prog = |a: &mut Asm| -> R {
                a.add(esi, edi)?;
                match kind {
                    0 => a.div(ebx)?,
                    1 => a.idiv(ebx)?,
                    2 => a.div(bx)?,
                    3 => a.idiv(bx)?,
                    4 => a.div(dword_ptr(DATA))?,
                    5 => a.idiv(dword_ptr(DATA))?,
                    6 => a.div(word_ptr(DATA))?,
                    _ => a.idiv(word_ptr(DATA))?,
                }
                a.setc(cl)?;
                a.mov(dword_ptr(DATA + 8), edx)?;
                a.hlt()
            };
            let t = diff32(
                &mut jit,
                &format!("div kind {kind} {hi:#x}:{lo:#x} / {d:#x}"),
                &|c| {
                    c.s.gpr[EDX] = hi;
                    c.s.gpr[EAX] = lo;
                    c.s.gpr[EBX] = d;
                    c.s.gpr[ESI] = 0xffff_ffff;
                    c.s.gpr[EDI] = 1;
                    c.mem.write_ram(DATA, 4, d);
                    warm_tlb(c);
                },
                &prog,
            );
            n += t.inline;
        }
    }
    assert!(n > 0);
}

/// 64-bit DIV/IDIV: RDX:RAX that is or is not RAX extended, divisors 0,
/// -1 and ordinary, the most negative dividend.
#[test]
fn divides_and_faults_64() {
    let mut jit = Jit::new().unwrap();
    let m = u64::MAX;
    let cases = [
        (0, 1000, 7),
        (0, m, 3),
        (m, 5u64.wrapping_neg(), 2),
        (m, 1 << 63, m),
        (m, 1 << 63, 2),
        (0, 5, 0),
        (1, 5, 3),
        (2, 0, 3),
        (0, 1 << 63, m),
        (m, 7, 3),
    ];
    for (hi, lo, d) in cases {
        for signed in [false, true] {
            let code = assemble(64, &|a| {
                a.add(rsi, rdi)?;
                if signed {
                    a.idiv(rbx)?;
                } else {
                    a.div(rbx)?;
                }
                a.mov(rcx, rdx)?;
                a.hlt()
            });
            let mut a = long64(&code);
            let mut b = long64(&code);
            for c in [&mut a, &mut b] {
                c.s.gpr[EDX] = hi;
                c.s.gpr[EAX] = lo;
                c.s.gpr[EBX] = d;
                c.s.gpr[ESI] = 3;
            }
            lockstep(
                &mut jit,
                &mut a,
                &mut b,
                8,
                &mut |_| u64::MAX,
                &format!("div64 signed {signed} {hi:#x}:{lo:#x} / {d:#x}"),
            );
        }
    }
}

/// Real-mode stack and memory forms (16-bit addressing, 16-bit stack).
#[test]
fn real_mode_memory() {
    let mut jit = Jit::new().unwrap();
    for seed in 1..=40u64 {
        let code = assemble(16, &|a| {
            let mut r = Rng(seed);
            let mut f = a.create_label();
            for _ in 0..1 + r.below(8) {
                let m = bx + si + (r.below(64) as i32);
                match r.below(7) {
                    0 => a.mov(pick(&mut r, &R16M), word_ptr(m))?,
                    1 => a.add(word_ptr(m), pick(&mut r, &R16M))?,
                    2 => a.push(pick(&mut r, &R16M))?,
                    3 => a.pop(pick(&mut r, &R16M))?,
                    4 => a.lea(pick(&mut r, &R16M), word_ptr(bp + di + 0x7ff0))?,
                    5 => a.movzx(pick(&mut r, &R32M), byte_ptr(m))?,
                    _ => a.inc(byte_ptr(m))?,
                }
            }
            a.call(f)?;
            a.hlt()?;
            a.set_label(&mut f)?;
            a.ret()
        });
        let mut a = real(&code);
        let mut b = real(&code);
        for c in [&mut a, &mut b] {
            random_init(c, seed);
            c.s.gpr[EBX] = 0x8f00;
            c.s.gpr[ESI] = 0x0100 + seed;
            c.s.gpr[ESP] = 0xffff_7000;
            warm_tlb(c);
        }
        lockstep(
            &mut jit,
            &mut a,
            &mut b,
            8,
            &mut |_| u64::MAX,
            &format!("real mem {seed}"),
        );
        assert!(a.halted);
    }
}

/// 64-bit memory forms: RIP-relative, FS base, 64-bit stack, CALL/RET.
#[test]
fn long_mode_memory() {
    let mut jit = Jit::new().unwrap();
    for seed in 1..=60u64 {
        let code = assemble(64, &|a| {
            let mut r = Rng(seed);
            let mut f = a.create_label();
            let mut d = a.create_label();
            for _ in 0..1 + r.below(10) {
                let m = rsi + (8 * r.below(16)) as i32;
                match r.below(11) {
                    9 => a.push(qword_ptr(m))?,
                    10 => {
                        a.push(rbp)?;
                        a.mov(rbp, rsp)?;
                        a.push(pick(&mut r, &R64))?;
                        a.leave()?;
                    }
                    0 => a.mov(pick(&mut r, &R64), qword_ptr(m))?,
                    1 => a.add(qword_ptr(m), pick(&mut r, &R64))?,
                    2 => a.push(pick(&mut r, &R64))?,
                    3 => a.pop(pick(&mut r, &R64))?,
                    4 => a.mov(rax, qword_ptr(d))?,
                    5 => a.mov(pick(&mut r, &R64), qword_ptr(m).fs())?,
                    6 => a.movsxd(pick(&mut r, &R64), dword_ptr(m))?,
                    7 => a.imul_2(pick(&mut r, &R64), qword_ptr(m))?,
                    _ => a.cmp(qword_ptr(m), r.interesting() as i32)?,
                }
            }
            a.call(f)?;
            a.hlt()?;
            a.set_label(&mut f)?;
            a.inc(qword_ptr(d))?;
            a.ret()?;
            a.set_label(&mut d)?;
            a.dq(&[0x1122_3344_5566_7788])
        });
        let mut a = long64(&code);
        let mut b = long64(&code);
        for c in [&mut a, &mut b] {
            let mut r = Rng(seed ^ 0x77);
            for k in 0..16 {
                if k != ESP {
                    c.s.gpr[k] = r.interesting() | r.interesting() << 32;
                }
            }
            c.s.gpr[ESI] = DATA;
            c.s.seg[FS].base = 0x100;
            warm_tlb(c);
        }
        let (_, got) = lockstep(
            &mut jit,
            &mut a,
            &mut b,
            8,
            &mut |_| u64::MAX,
            &format!("long mem {seed}"),
        );
        assert!(a.halted, "long mem {seed}");
        assert!(got.inline > 0);
    }
}

/// #AC: at CPL 3 with CR0.AM and EFLAGS.AC a misaligned access faults,
/// even when the TLB holds the page (the inline path must not take it);
/// with EFLAGS.AC clear the same access is an ordinary inline hit.
#[test]
fn misaligned_access_at_cpl3_faults_only_with_ac() {
    let mut jit = Jit::new().unwrap();
    let value = 0x1122_3344u64;
    for ac in [true, false] {
        let what = if ac { "AC set" } else { "AC clear" };
        let code = assemble(32, &|a| {
            a.mov(eax, dword_ptr(esi + 1))?;
            a.mov(dword_ptr(esi + 9), eax)?;
            a.nop()?;
            a.jmp(0x4000u64)
        });
        let mut cpus = [pm32(&code), pm32(&code)];
        for c in cpus.iter_mut() {
            c.mem.write_ram(0x9001, 4, value);
            c.s.gpr[ESI] = 0x9000;
            c.s.cr0 |= CR0_AM;
            c.s.cpl = 3;
            let bits = c.s.flags.raw_bits();
            c.s.flags
                .set_raw(if ac { bits | FLAG_AC } else { bits & !FLAG_AC });
            // Warm the user-mode TLB entries with aligned accesses.
            c.read_mem(&mut NullBus, DS, 0x9000, 4).unwrap();
            c.write_mem(&mut NullBus, DS, 0x9008, 4, 0).unwrap();
        }
        let [mut a, mut b] = cpus;
        let (_, t) = lockstep(&mut jit, &mut a, &mut b, 1, &mut |_| u64::MAX, what);
        assert_eq!(t.inline, 4, "{what}: the block is all inline");
        if ac {
            assert_ne!(a.s.gpr[EAX], value, "{what}: the load faulted");
            assert_eq!(a.mem.read_ram(0x9009, 4), 0, "{what}: no store");
        } else {
            assert_eq!(a.s.gpr[EAX], value, "{what}");
            assert_eq!(a.mem.read_ram(0x9009, 4), value, "{what}");
        }
    }
}

/// Inline accesses look for TLB tags built from the CPL the block was
/// decoded at (`Block::user`), checked on entry: a block decoded at CPL 0
/// that runs at CPL 3 must still fault on a supervisor page, one decoded
/// at CPL 3 must still raise #AC once alignment checking is on, and both
/// must run as before at the CPL they were decoded for.
#[test]
fn tlb_tags_follow_cpl_and_alignment_checking() {
    use leap_cpu::mmu::Access;
    let mut jit = Jit::new().unwrap();
    let code = assemble(32, &|a| {
        a.mov(eax, dword_ptr(DATA + 0x8))?;
        a.mov(dword_ptr(DATA + 0x11), eax)?;
        a.add(ecx, eax)?;
        a.hlt()
    });
    // (decoded at CPL 3, runs at CPL 3, pages user, alignment checking)
    let cases = [
        (false, false, false, false),
        (false, true, false, false),
        (true, true, true, false),
        (true, true, true, true),
        (true, false, true, false),
    ];
    for (n, &(dec3, run3, user_pages, ac)) in cases.iter().enumerate() {
        let mut a = pm32(&code);
        let mut b = pm32(&code);
        for c in [&mut a, &mut b] {
            enable_paging(c, 0xfff_ffff);
            if user_pages {
                c.mem.write_ram(PD, 4, PT | 7);
                for i in 0..256u64 {
                    c.mem.write_ram(PT + 4 * i, 4, (i * 4096) | 7);
                }
            }
            c.mem.write_ram(DATA + 0x8, 4, 0x1234_5678);
            c.s.cpl = if dec3 { 3 } else { 0 };
            for page in [DATA, CODE] {
                for acc in [Access::Read, Access::Write] {
                    c.translate(page, acc, dec3).unwrap();
                }
            }
        }
        let blk = a.fetch_block(&mut NullBus).unwrap();
        b.fetch_block(&mut NullBus).unwrap();
        assert_eq!(blk.user, dec3, "case {n}: the block records its CPL");
        let compiled = jit.compile(&blk).unwrap();
        for c in [&mut a, &mut b] {
            c.s.cpl = if run3 { 3 } else { 0 };
            if ac {
                c.s.cr0 |= CR0_AM;
                c.s.flags.set_raw(2 | FLAG_AC);
            }
        }
        let ra = a.exec_block(&mut NullBus, &blk, u64::MAX);
        let rb = compiled.run(&mut b, &mut NullBus, u64::MAX);
        assert_eq!(ra, rb, "case {n}: exit");
        compare(&a, &b, &format!("cpl case {n}"));
        // What the interpreter did is what the case is about.
        let stored = a.mem.read_ram(DATA + 0x11, 4) == 0x1234_5678;
        let faults = (run3 && !user_pages) || ac;
        assert_eq!(stored, !faults, "case {n}: the store ran");
        if run3 && !user_pages {
            assert_eq!(a.s.cr2, DATA + 0x8, "case {n}: #PF at the load");
        }
    }
}
