//! Tiering end to end: a loop runs in the interpreter until its blocks are
//! hot, then in compiled code installed from the worker thread; the result
//! is the same as a pure interpreter run, whenever the code arrives.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::{Cpu, NullBus};
use leap_jit::Tier;

/// A run loop like `Cpu::run` (no interrupts), using compiled blocks when
/// the tier has them.
fn run_tiered(cpu: &mut Cpu, tier: &mut Tier, wait: bool) -> u64 {
    let mut compiled_runs = 0;
    cpu.poll = false; // as `Cpu::run` leaves it with no device activity
    while !cpu.halted {
        let blk = match cpu.fetch_block(&mut NullBus) {
            Ok(b) => b,
            Err(e) => {
                assert!(cpu.exception(&mut NullBus, e).is_none());
                continue;
            }
        };
        let code = tier.enter(&blk);
        if wait {
            tier.wait_idle();
        }
        let exit = match code {
            Some(c) => {
                compiled_runs += 1;
                c.run(cpu, &mut NullBus, u64::MAX)
            }
            None => cpu.exec_block(&mut NullBus, &blk, u64::MAX),
        };
        assert!(exit.is_none());
    }
    compiled_runs
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
    for wait in [true, false] {
        let mut cpu = pm32(&code);
        let mut tier = Tier::new(8).unwrap();
        let compiled = run_tiered(&mut cpu, &mut tier, wait);
        compare(&reference, &cpu, &format!("tiered (wait={wait})"));
        assert!(tier.stats.requested >= 3, "{:?}", tier.stats);
        if wait {
            assert!(compiled > 1000, "only {compiled} compiled runs");
            assert_eq!(tier.stats.installed, tier.stats.requested);
        }
        assert_eq!(cpu.s.gpr[ECX], 0);
    }
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
    let mut cpu = pm32(&code);
    let mut tier = Tier::new(4).unwrap();
    run_tiered(&mut cpu, &mut tier, true);
    compare(&reference, &cpu, "self-modifying");
    // top + skip blocks compiled twice (before and after the patch).
    assert!(tier.stats.installed >= 4, "{:?}", tier.stats);
    tier.prune();
}
