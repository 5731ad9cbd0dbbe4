//! Tiering end to end: a loop runs in the interpreter until its blocks are
//! hot, then in compiled code installed from the worker thread; the result
//! is the same as a pure interpreter run, whenever the code arrives.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::tier::TierHook;
use leap_cpu::{Cpu, Exit, NullBus};
use leap_jit::{Tier, TierStats};

/// Run the CPU's own loop with `tier` installed until HLT.
fn run_with(cpu: &mut Cpu, tier: Tier, threshold: u32) -> TierStats {
    cpu.set_tier(Some(TierHook::new(Box::new(tier), threshold)));
    while !cpu.halted {
        assert_eq!(cpu.run(&mut NullBus, u64::MAX), Exit::Halted);
    }
    cpu.tier_as::<Tier>().unwrap().stats
}

fn program(a: &mut Asm) -> Result<(), IcedError> {
    let mut outer = a.create_label();
    let mut inner = a.create_label();
    let mut skip = a.create_label();
    a.mov(ecx, 200u32)?;
    a.set_label(&mut outer)?;
    a.mov(edx, 17u32)?;
    a.set_label(&mut inner)?;
    a.add(eax, edx)?;
    a.xor(ebx, eax)?;
    a.test(eax, 1)?;
    a.je(skip)?;
    a.mov(dword_ptr(DATA), eax)?;
    a.inc(esi)?;
    a.set_label(&mut skip)?;
    a.dec(edx)?;
    a.jne(inner)?;
    a.sub(ecx, 1)?;
    a.jne(outer)?;
    a.hlt()
}

#[test]
fn hot_loop_same_result_as_interpreter() {
    let code = assemble(32, &program);
    let mut reference = pm32(&code);
    reference.run(&mut NullBus, u64::MAX);
    assert!(reference.halted);
    // Background compilation: the code arrives whenever it does.
    let mut cpu = pm32(&code);
    let stats = run_with(&mut cpu, Tier::background().unwrap(), 8);
    compare(&reference, &cpu, "background tier");
    assert!(stats.requested >= 3, "{stats:?}");
    assert_eq!(cpu.s.gpr[ECX], 0);
    // Synchronous, at a threshold and on first sight.
    for threshold in [8, 1] {
        let mut cpu = pm32(&code);
        let stats = run_with(&mut cpu, Tier::inline().unwrap(), threshold);
        compare(
            &reference,
            &cpu,
            &format!("inline tier, threshold {threshold}"),
        );
        // At a threshold the loop's blocks compile as one region (whose
        // other blocks then never run in the interpreter to get hot).
        let units = if threshold > 1 { 2 } else { 3 };
        assert!(stats.installed >= units, "{stats:?}");
        assert_eq!(stats.installed, stats.requested, "{stats:?}");
        assert!(stats.insns >= 10, "{stats:?}");
    }
}

#[test]
fn code_cache_recycles_when_full() {
    let code = assemble(32, &program);
    let mut reference = pm32(&code);
    reference.run(&mut NullBus, u64::MAX);
    let mut cpu = pm32(&code);
    let mut tier = Tier::inline().unwrap();
    // Every compiled block fills the cache: each compile recycles it and
    // the blocks are decoded and compiled again.
    tier.set_code_limit(1);
    let stats = run_with(&mut cpu, tier, 1);
    // Which pages are marked as holding code depends on when the cache was
    // last dropped: not architectural.
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, "recycling tier");
    assert!(stats.recycles >= 3, "{stats:?}");
    assert!(stats.code_bytes_total > stats.code_bytes, "{stats:?}");
}

#[test]
fn recompiled_after_code_changes() {
    // The guest patches the immediate of its loop's ADD halfway: the page's
    // blocks are dropped, re-decoded as new blocks, and compiled again.
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, 100u32)?;
        a.set_label(&mut top)?;
        a.add(ebx, 1)?; // 83 C3 01 at 0x1005: immediate at 0x1007
        a.dec(ecx)?;
        a.cmp(ecx, 50)?;
        a.jne(skip)?;
        a.mov(byte_ptr(0x1007), 2)?;
        a.set_label(&mut skip)?;
        a.test(ecx, ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    assert_eq!(&code[5..8], &[0x83, 0xc3, 0x01]);
    let mut reference = pm32(&code);
    reference.run(&mut NullBus, u64::MAX);
    assert_eq!(reference.s.gpr[EBX], 150);
    for threshold in [4, 1] {
        let mut cpu = pm32(&code);
        let stats = run_with(&mut cpu, Tier::inline().unwrap(), threshold);
        compare(&reference, &cpu, "self-modifying");
        // top + skip blocks compiled twice (before and after the patch),
        // as two blocks or, at a threshold, as one region each time.
        if threshold > 1 {
            assert!(stats.regions >= 2 && stats.installed >= 2, "{stats:?}");
        } else {
            assert!(stats.installed >= 4, "{stats:?}");
        }
    }
}
