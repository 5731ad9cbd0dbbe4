//! Guest MIPS of the interpreter and of compiled blocks on two hot loops
//! (flat 32-bit protected mode, no devices): a load/ALU/store kernel in the
//! style of benches' `bench.c`, and a loop that calls a leaf function with
//! PUSH/POP around it.
//!
//! `cargo run --release -p leap-jit --example hotloop [-- RUNS]` prints,
//! per loop and tier, the median over RUNS (default 3) of guest MIPS. Both
//! tiers look blocks up with `Cpu::fetch_block` the same way; the JIT tier
//! compiles each block once, outside the timing.

use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::{Cpu, NullBus};
use leap_jit::{CompiledBlock, Jit};
use std::collections::HashMap;
use std::time::Instant;

const CODE: u64 = 0x1000;
const DATA: u64 = 0x10000;
const STACK: u64 = 0x8000;
const INSNS: u64 = 50_000_000;

type Program = dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>;

fn kernel(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.mov(eax, ebx)?;
    a.shr(eax, 10)?;
    a.and(eax, 0x3fff)?;
    a.mov(edx, dword_ptr(esi + eax * 4))?;
    a.imul_3(ebx, ebx, 1_103_515_245)?;
    a.add(ebx, 12345)?;
    a.mov(ecx, edx)?;
    a.shr(ecx, 3)?;
    a.add(edi, ecx)?;
    a.mov(ecx, edx)?;
    a.shl(ecx, 5)?;
    a.xor(edi, ecx)?;
    a.test(dl, 1)?;
    a.cmovne(ecx, edx)?;
    a.lea(ecx, dword_ptr(ecx + ebx))?;
    a.mov(dword_ptr(esi + ebp * 4), ecx)?;
    a.add(dword_ptr(esi + 0x100), edx)?;
    a.inc(ebp)?;
    a.and(ebp, 0x3fff)?;
    a.cmp(ebp, 0x3fff)?;
    a.jne(top)?;
    a.jmp(top)
}

fn calls(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut top = a.create_label();
    let mut mix = a.create_label();
    a.set_label(&mut top)?;
    a.mov(eax, dword_ptr(esi + ebp * 4))?;
    a.push(ebx)?;
    a.call(mix)?;
    a.pop(ebx)?;
    a.add(edi, eax)?;
    a.movzx(ecx, al)?;
    a.add(ebx, ecx)?;
    a.inc(ebp)?;
    a.and(ebp, 0x3fff)?;
    a.jmp(top)?;
    a.set_label(&mut mix)?;
    a.mov(ebx, eax)?;
    a.shr(ebx, 15)?;
    a.xor(eax, ebx)?;
    a.imul_3(eax, eax, 0x2C1B_3C6D)?;
    a.mov(ebx, eax)?;
    a.shr(ebx, 12)?;
    a.xor(eax, ebx)?;
    a.ret()
}

fn machine(code: &[u8]) -> Cpu {
    let mut cpu = Cpu::new(1 << 20);
    cpu.set_flat32();
    assert!(cpu.mem.load(CODE, code));
    cpu.s.rip = CODE;
    cpu.s.gpr = [0; 16];
    cpu.s.gpr[ESP] = STACK;
    cpu.s.gpr[ESI] = DATA;
    cpu.s.gpr[EBX] = 0x1234_5678;
    for k in 0..0x4000u64 {
        cpu.mem
            .write_ram(DATA + 4 * k, 4, k.wrapping_mul(0x0101_0101) ^ 0x5a5a_5a5a);
    }
    cpu
}

/// Run until `INSNS` instructions retired; returns MIPS and final EDI.
fn run(code: &[u8], jit: Option<&mut Jit>) -> (f64, u64) {
    let mut cpu = machine(code);
    let mut compiled: HashMap<u64, CompiledBlock> = HashMap::new();
    if let Some(j) = jit {
        // Compile every block of the loop first (a warm-up pass).
        let mut warm = machine(code);
        while warm.icount < 10_000 {
            let b = warm.fetch_block(&mut NullBus).unwrap();
            compiled
                .entry(b.phys)
                .or_insert_with(|| j.compile(&b).unwrap());
            warm.exec_block(&mut NullBus, &b, u64::MAX);
        }
    }
    let t = Instant::now();
    while cpu.icount < INSNS {
        let b = cpu.fetch_block(&mut NullBus).unwrap();
        match compiled.get(&b.phys) {
            Some(c) => c.run(&mut cpu, &mut NullBus, u64::MAX),
            None => cpu.exec_block(&mut NullBus, &b, u64::MAX),
        };
    }
    let s = t.elapsed().as_secs_f64();
    (cpu.icount as f64 / s / 1e6, cpu.s.gpr[EDI])
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let loops: [(&str, &Program); 2] = [("kernel", &kernel), ("calls", &calls)];
    for (name, f) in loops {
        let mut a = CodeAssembler::new(32).unwrap();
        f(&mut a).unwrap();
        let code = a.assemble(CODE).unwrap();
        let mut jit = Jit::new().unwrap();
        let mut interp = Vec::new();
        let mut jitted = Vec::new();
        let mut inline = (0, 0);
        {
            let mut cpu = machine(&code);
            let b = cpu.fetch_block(&mut NullBus).unwrap();
            let c = jit.compile(&b).unwrap();
            inline = (inline.0 + c.stats.inline, inline.1 + c.stats.insns);
        }
        for _ in 0..runs {
            let (m, ri) = run(&code, None);
            interp.push(m);
            let (m, rj) = run(&code, Some(&mut jit));
            assert_eq!(ri, rj, "{name}: tiers disagree");
            jitted.push(m);
        }
        let (i, j) = (median(interp), median(jitted));
        println!(
            "{name:7} first block {}/{} inline  interpreter {i:7.1} MIPS  jit {j:7.1} MIPS  x{:.2}",
            inline.0,
            inline.1,
            j / i
        );
    }
}
