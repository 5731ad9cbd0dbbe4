//! The translator's IR compiles for every Cranelift target Leap supports,
//! and the machine code needs no relocation on any of them.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::blocks::Block;
use leap_cpu::NullBus;
use leap_jit::{compile_for_isa, isa_by_name};
use std::rc::Rc;

/// Decoded blocks covering every inline form, helper calls, faulting
/// instructions and each block ending, in 16-, 32-bit code.
fn sample_blocks() -> Vec<Rc<Block>> {
    let progs32: Vec<Prog> = vec![
        Box::new(|a| {
            a.mov(eax, ecx)?;
            a.mov(ebx, 0x1234_5678u32)?;
            a.add(eax, ebx)?;
            a.sub(ecx, 7)?;
            a.and(dl, ah)?;
            a.or(si, 0x100)?;
            a.xor(edi, edi)?;
            a.cmp(eax, ecx)?;
            a.jl(0x1000u64)
        }),
        Box::new(|a| {
            a.inc(eax)?;
            a.dec(bh)?;
            a.test(eax, 0x80)?;
            a.jne(0x1000u64)
        }),
        Box::new(|a| {
            a.mov(eax, dword_ptr(0x9000))?;
            a.add(eax, 1)?;
            a.div(ecx)?;
            a.inc(edx)?;
            a.jmp(0x1000u64)
        }),
        Box::new(|a| {
            a.adc(eax, ecx)?;
            a.inc(eax)?;
            a.jo(0x1000u64)
        }),
        Box::new(|a| {
            a.push(eax)?;
            a.rep().stosd()?;
            a.hlt()
        }),
        Box::new(|a| {
            a.add(eax, ecx)?;
            a.sbb(ebx, 1)?;
            a.jp(0x1000u64)
        }),
    ];
    let mut out = Vec::new();
    for p in &progs32 {
        let code = assemble(32, &**p);
        let mut cpu = pm32(&code);
        out.push(cpu.fetch_block(&mut NullBus).unwrap());
    }
    let code = assemble(16, &|a| {
        a.mov(ax, 0x1234)?;
        a.add(al, ah)?;
        a.cmp(ax, bx)?;
        a.jbe(0x1000u64)
    });
    let mut cpu = real(&code);
    out.push(cpu.fetch_block(&mut NullBus).unwrap());
    out
}

#[test]
fn compiles_for_every_target() {
    let blocks = sample_blocks();
    for target in ["x86_64", "aarch64", "riscv64gc", "s390x"] {
        let isa = isa_by_name(target).unwrap_or_else(|e| panic!("{target}: {e}"));
        let mut total = 0;
        for (k, b) in blocks.iter().enumerate() {
            let n = compile_for_isa(&*isa, b).unwrap_or_else(|e| panic!("{target} block {k}: {e}"));
            assert!(n > 0);
            total += n;
        }
        eprintln!("{target}: {} blocks, {total} bytes", blocks.len());
    }
}

#[test]
fn host_matches_a_named_target() {
    let isa = leap_jit::host_isa().unwrap();
    for b in sample_blocks() {
        compile_for_isa(&*isa, &b).unwrap();
    }
}
