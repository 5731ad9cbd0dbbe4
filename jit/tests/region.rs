//! Regions: a hot block compiled with the blocks of its page that form a
//! loop with it (`translate::region`). A branch between them stays in the
//! host function, so each test checks that a region was really compiled,
//! and that the run is the interpreter's: same state, same count, the same
//! block boundaries for budgets and interrupts, precise faults in any
//! block of the loop, and code written by the loop seen at once.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::tier::TierHook;
use leap_cpu::{Cpu, Exit, NullBus};
use leap_jit::Tier;

/// Compile on the calling thread once a block has run `n` times: by then
/// the loop's other blocks are decoded, so the hot one can take them in.
fn jit_after(cpu: &mut Cpu, n: u32) {
    cpu.set_tier(Some(TierHook::new(Box::new(Tier::inline().unwrap()), n)));
}

fn regions(cpu: &Cpu) -> u64 {
    cpu.tier_as::<Tier>().expect("a tier").stats.regions
}

fn run_to_end(cpu: &mut Cpu) -> Exit {
    loop {
        match cpu.run(&mut NullBus, u64::MAX) {
            Exit::Halted if cpu.halted => return Exit::Halted,
            Exit::Budget => continue,
            e => return e,
        }
    }
}

/// Run the interpreter and the JIT (threshold 3) to the end; exits and
/// final states must agree, and the JIT must have compiled a region.
fn same_as_interpreter(setup: &dyn Fn() -> Cpu, what: &str) -> Cpu {
    let mut reference = setup();
    let ra = run_to_end(&mut reference);
    let mut cpu = setup();
    jit_after(&mut cpu, 3);
    let rb = run_to_end(&mut cpu);
    assert_eq!(ra, rb, "{what}: exit");
    assert_eq!(reference.icount, cpu.icount, "{what}: count");
    assert!(regions(&cpu) >= 1, "{what}: no region compiled");
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, what);
    cpu
}

/// A loop of five blocks: a data-dependent if/else, a counted inner
/// branch, loads and stores, flags carried across a block boundary (CMP
/// in one block, the Jcc reading them at the end of the next).
fn branchy_loop(a: &mut CodeAssembler, wide: bool) -> Result<(), IcedError> {
    let mut top = a.create_label();
    let mut odd = a.create_label();
    let mut join = a.create_label();
    let mut skip = a.create_label();
    a.set_label(&mut top)?;
    if wide {
        a.mov(rax, qword_ptr(rbx + DATA as i32))?;
        a.imul_3(rax, rax, 0x9e37)?;
        a.add(rax, rcx)?;
        a.mov(qword_ptr(rbx + DATA as i32), rax)?;
    } else {
        a.mov(eax, dword_ptr(ebx + DATA as i32))?;
        a.imul_3(eax, eax, 0x9e37)?;
        a.add(eax, ecx)?;
        a.mov(dword_ptr(ebx + DATA as i32), eax)?;
    }
    a.test(al, 1)?;
    a.jnz(odd)?;
    a.add(esi, eax)?;
    a.shr(eax, 3)?;
    a.jmp(join)?;
    a.set_label(&mut odd)?;
    a.xor(edi, eax)?;
    a.rol(edi, 5)?;
    a.set_label(&mut join)?;
    a.lea(ebx, dword_ptr(ebx + 8))?;
    a.and(ebx, 0x7f8)?;
    a.cmp(ebx, 0x400)?;
    a.jb(skip)?;
    a.adc(ebp, eax)?;
    a.set_label(&mut skip)?;
    a.dec(ecx)?;
    a.jne(top)
}

#[test]
fn a_loop_of_several_blocks_runs_as_one_region_32() {
    let code = assemble(32, &|a| {
        branchy_loop(a, false)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[ECX] = 20_000;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "32-bit region");
    assert_eq!(cpu.s.gpr[ECX], 0);
}

#[test]
fn a_loop_of_several_blocks_runs_as_one_region_64() {
    let code = assemble(64, &|a| {
        branchy_loop(a, true)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = long64(&code);
        cpu.s.gpr[ECX] = 20_000;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "64-bit region");
    assert_eq!(cpu.s.gpr[ECX], 0);
}

#[test]
fn no_region_when_cs_is_not_flat() {
    // The same loop with CS based at 0 but limited to 64 KiB: the region
    // may be compiled, but every branch inside must leave it (the limit
    // check is the run loop's), and the run is still the interpreter's.
    let code = assemble(32, &|a| {
        branchy_loop(a, false)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.seg[CS].limit = 0xffff;
        cpu.s.gpr[ECX] = 3000;
        cpu
    };
    let mut reference = setup();
    let ra = run_to_end(&mut reference);
    let mut cpu = setup();
    jit_after(&mut cpu, 3);
    let rb = run_to_end(&mut cpu);
    assert_eq!(ra, rb);
    assert_eq!(reference.icount, cpu.icount);
    assert_eq!(regions(&cpu), 0, "a region needs a flat CS when it is hot");
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, "CS limited");
}

#[test]
fn a_fault_in_a_later_block_of_a_region_is_precise() {
    // Each iteration touches the next page from the loop's second block,
    // until the unmapped page at 0x40000.
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut other = a.create_label();
        let mut next = a.create_label();
        a.set_label(&mut top)?;
        a.add(esi, 3)?;
        a.test(ecx, 1)?;
        a.jz(other)?;
        a.mov(eax, dword_ptr(ebx + 0x10))?;
        a.add(edi, eax)?;
        a.jmp(next)?;
        a.set_label(&mut other)?;
        a.mov(eax, dword_ptr(ebx + 0x20))?;
        a.sub(edi, eax)?;
        a.set_label(&mut next)?;
        a.add(ebx, 0x1000)?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        enable_paging(&mut cpu, 0x40000);
        cpu.s.gpr[EBX] = 0x20000;
        cpu.s.gpr[ECX] = 100;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "fault in a region");
    // Stopped in the #PF stub, from the load of the 33rd iteration
    // (ECX = 68 then: even, the `other` block).
    assert_eq!(cpu.s.cr2, 0x40020);
    assert_eq!(cpu.s.gpr[ECX], 100 - 32);
    assert_eq!(cpu.s.gpr[ESI], 3 * 33);
}

#[test]
fn a_region_that_rewrites_one_of_its_blocks_sees_the_new_code() {
    // The loop's second block starts with ADD EAX, imm32; at ECX = 500 the
    // first block's store hits that immediate instead of the scratch word.
    const N: u64 = 2000;
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut second = a.create_label();
        a.set_label(&mut top)?;
        a.mov(edx, DATA as u32 + 0x100)?;
        a.cmp(ecx, 500)?;
        a.cmove(edx, esi)?;
        a.mov(dword_ptr(edx), ecx)?;
        a.test(ecx, 3)?;
        a.jnz(second)?;
        a.inc(ebp)?;
        a.set_label(&mut second)?;
        a.db(&[0x05, 0x11, 0x11, 0x11, 0x11])?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let add_at = {
        // The ADD's offset in the code: after the first block (its bytes
        // are the same whatever the immediate).
        let pos = code
            .windows(5)
            .position(|w| w == [0x05, 0x11, 0x11, 0x11, 0x11])
            .expect("the ADD is in the code");
        CODE + pos as u64 + 1
    };
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[ECX] = N;
        cpu.s.gpr[ESI] = add_at;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "self-patching region");
    // The store at ECX = 500 comes before that iteration's ADD: iterations
    // N..=501 added the old immediate, the last 500 the new one.
    let want = ((N - 500) * 0x1111_1111 + 500 * 500) & 0xffff_ffff;
    assert_eq!(cpu.s.gpr[EAX], want);
}

#[test]
fn budgets_and_interrupts_stop_a_region_where_the_interpreter_does() {
    // The branchy loop with interrupts enabled, run in slices of
    // pseudo-random budgets with an interrupt raised before most: every
    // stop must fall on the block boundary the interpreter stops at.
    const LOG: u64 = 0x40000;
    let code = assemble(32, &|a| {
        branchy_loop(a, false)?;
        a.hlt()
    });
    let handler = {
        let mut a = CodeAssembler::new(32).unwrap();
        a.inc(edx).unwrap();
        a.push(edx).unwrap();
        a.and(edx, 0x3fff).unwrap();
        a.mov(dword_ptr(edx * 4 + LOG as i32), ecx).unwrap();
        a.pop(edx).unwrap();
        a.iretd().unwrap();
        a.assemble(STUBS + 16 * 0x20).unwrap()
    };
    let setup = || {
        let mut cpu = pm32(&code);
        assert!(cpu.mem.load(STUBS + 16 * 0x20, &handler));
        cpu.s.gpr[ECX] = 200_000;
        cpu.s.flags.set_raw(2 | FLAG_IF);
        cpu
    };
    let mut reference = setup();
    let mut cpu = setup();
    jit_after(&mut cpu, 3);
    let (mut bus_a, mut bus_b) = (TickBus::default(), TickBus::default());
    let mut rng = Rng(0x5eed_2007);
    for slice in 0..3000 {
        let budget = 1 + rng.below(if slice % 3 == 0 { 9 } else { 400 });
        let ra = reference.run(&mut bus_a, budget);
        let rb = cpu.run(&mut bus_b, budget);
        assert_eq!(ra, rb, "slice {slice}: exit");
        assert_eq!(
            (reference.icount, reference.s.rip, reference.s.gpr[EDX]),
            (cpu.icount, cpu.s.rip, cpu.s.gpr[EDX]),
            "slice {slice}: (icount, rip, interrupts)"
        );
        if slice % 5 != 4 {
            bus_a.pending = true;
            bus_b.pending = true;
        }
    }
    assert!(regions(&cpu) >= 1, "no region compiled");
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, "sliced region with interrupts");
    assert!(cpu.s.gpr[EDX] > 1000);
}

#[test]
fn a_block_that_enters_a_loop_takes_the_loop_into_its_region() {
    // `enter` is reached only by CALL from the outer loop, so nothing in
    // its page leads back to it; it leads into a three-block loop. Both
    // the loop's head and `enter` get a region (the one from `enter` is
    // what a return point or a function's first block gets).
    let code = assemble(32, &|a| {
        let mut outer = a.create_label();
        let mut enter = a.create_label();
        let mut top = a.create_label();
        let mut even = a.create_label();
        let mut join = a.create_label();
        a.set_label(&mut outer)?;
        a.call(enter)?;
        a.dec(edi)?;
        a.jnz(outer)?;
        a.hlt()?;
        a.set_label(&mut enter)?;
        a.add(esi, 1)?;
        a.mov(ecx, 9)?;
        a.jmp(top)?;
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.test(ecx, 1)?;
        a.jz(even)?;
        a.xor(edx, eax)?;
        a.jmp(join)?;
        a.set_label(&mut even)?;
        a.rol(edx, 3)?;
        a.set_label(&mut join)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.ret()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[EDI] = 400;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "region entered from outside its loop");
    assert!(
        regions(&cpu) >= 2,
        "`enter` did not get the loop: {} region(s)",
        regions(&cpu)
    );
    assert_eq!(cpu.s.gpr[ESI], 400);
    assert_eq!(cpu.s.gpr[EAX], 400 * 45);
}

#[test]
fn flags_cross_a_page_cut_inside_a_region() {
    // A CMP straddles the page end, so its block is cut there and the JB
    // reading its flags starts the next page's block. Inside the region
    // that block has one way in and keeps the CMP's flags pending.
    const PAD: usize = 0xff1;
    let code = assemble(32, &|a| {
        let mut start = a.create_label();
        let mut top = a.create_label();
        let mut low = a.create_label();
        let mut join = a.create_label();
        a.jmp(start)?;
        a.db(&[0xcc; PAD])?;
        a.set_label(&mut start)?;
        a.mov(ecx, 30_000)?;
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.cmp(ecx, 0x0123_4567)?;
        a.jb(low)?;
        a.xor(edx, eax)?;
        a.jmp(join)?;
        a.set_label(&mut low)?;
        a.lea(edx, dword_ptr(edx + eax * 2 + 3))?;
        a.adc(ebp, edx)?;
        a.set_label(&mut join)?;
        a.rol(eax, 1)?;
        a.sub(ecx, 1)?;
        a.jnz(top)?;
        a.hlt()
    });
    let cmp_at = code
        .windows(6)
        .position(|w| w == [0x81, 0xf9, 0x67, 0x45, 0x23, 0x01])
        .expect("the CMP is in the code") as u64
        + CODE;
    assert!(
        cmp_at < 0x2000 && cmp_at + 6 > 0x2000,
        "the CMP at {cmp_at:#x} must straddle 0x2000"
    );
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[EDX] = 7;
        cpu
    };
    let cpu = same_as_interpreter(&setup, "flags across a page cut");
    assert_eq!(cpu.s.gpr[ECX], 0);
}
