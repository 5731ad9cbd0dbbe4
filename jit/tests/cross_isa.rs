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
/// instructions and each block ending, in 16-, 32-bit code (the SSE forms
/// also in jit/tests/sse_inline.rs, 64-bit ones included).
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
        // Inline SSE: moves through memory, bitwise and integer lanes,
        // scalar and packed float arithmetic.
        Box::new(|a| {
            a.movaps(xmm0, xmmword_ptr(0x9000))?;
            a.movups(xmmword_ptr(esi + 4), xmm1)?;
            a.movd(eax, xmm0)?;
            a.movq(xmm2, qword_ptr(esi))?;
            a.movss(xmm3, xmm2)?;
            a.pxor(xmm4, xmm4)?;
            a.paddd(xmm4, xmmword_ptr(esi + 16))?;
            a.andnpd(xmm5, xmm4)?;
            a.psubq(xmm5, xmm0)?;
            a.jmp(0x1000u64)
        }),
        Box::new(|a| {
            a.addss(xmm0, dword_ptr(esi))?;
            a.mulsd(xmm1, xmm2)?;
            a.divps(xmm3, xmmword_ptr(esi + 32))?;
            a.subpd(xmm4, xmm5)?;
            a.sqrtsd(xmm6, xmm7)?;
            a.movsd_2(qword_ptr(esi), xmm6)?;
            a.hlt()
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
