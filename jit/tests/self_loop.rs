//! Blocks that branch back to their own start run as host loops inside one
//! compiled function (`TranslateStats::looping`). Each iteration must
//! behave as one run of the block through the run loop: the same budget
//! cut, interrupts at the same instruction, writes into the loop's own
//! code seen on the next iteration, precise faults on any iteration, and
//! the TLB never hit for an address the interpreter would fault on.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::{Cpu, Exit, NullBus};
use leap_jit::Jit;

/// Run both machines to completion (HLT, or any other exit), the second
/// with every block compiled; the exits and final states must agree.
fn same_as_interpreter(setup: &dyn Fn() -> Cpu, what: &str) -> (Cpu, Exit) {
    let run = |cpu: &mut Cpu| loop {
        match cpu.run(&mut NullBus, u64::MAX) {
            Exit::Halted if cpu.halted => return Exit::Halted,
            Exit::Budget => continue,
            e => return e,
        }
    };
    let mut reference = setup();
    let ra = run(&mut reference);
    let mut cpu = setup();
    jit_always(&mut cpu);
    let rb = run(&mut cpu);
    assert_eq!(ra, rb, "{what}: exit");
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, what);
    (cpu, rb)
}

/// Compile the block at `rip` of `cpu` and say whether it became a loop.
fn compiles_to_a_loop(mut cpu: Cpu, rip: u64) -> bool {
    cpu.s.rip = rip;
    let blk = cpu.fetch_block(&mut NullBus).expect("fetch");
    let c = Jit::new().unwrap().compile(&blk).expect("compile");
    assert_eq!(c.stats.inline, c.stats.insns, "all inline");
    c.stats.looping
}

#[test]
fn an_inline_loop_runs_as_a_host_loop_with_the_interpreter_results() {
    // Loads (some straddling 0x9fff/0xa000), stores, PUSH/POP, IMUL
    // whose flags CMP overwrites, byte and word forms.
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(eax, dword_ptr(ebx + DATA as i32))?;
        a.imul_3(eax, eax, 13)?;
        a.add(eax, ecx)?;
        a.mov(dword_ptr(ebx + DATA as i32), eax)?;
        a.push(eax)?;
        a.pop(edx)?;
        a.xor(esi, edx)?;
        a.movzx(edi, byte_ptr(ebx + DATA as i32 + 1))?;
        a.add(di, si)?;
        a.lea(ebx, dword_ptr(ebx + 0x555))?;
        a.and(ebx, 0x1fff)?;
        a.imul_2(edx, ecx)?;
        a.cmp(edx, 7)?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[ECX] = 30_000;
        cpu
    };
    assert!(compiles_to_a_loop(setup(), CODE));
    let (cpu, _) = same_as_interpreter(&setup, "inline loop");
    assert_eq!(cpu.s.gpr[ECX], 0);
    assert_eq!(cpu.icount, 30_000 * 15 + 1);
}

#[test]
fn loops_in_16_and_64_bit_code() {
    let code16 = assemble(16, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.add(ax, word_ptr(bx + 0x9000))?;
        a.mov(word_ptr(bx + 0x9002), ax)?;
        a.add(bx, 2)?;
        a.and(bx, 0x7ff)?;
        a.dec(cx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let setup16 = || {
        let mut cpu = real(&code16);
        cpu.s.gpr[ECX] = 5000;
        cpu
    };
    assert!(compiles_to_a_loop(setup16(), CODE));
    let (cpu, _) = same_as_interpreter(&setup16, "16-bit loop");
    assert_eq!(cpu.s.gpr[ECX], 0);

    let code64 = assemble(64, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(rax, qword_ptr(rbx + 0x9000))?;
        a.add(rax, rcx)?;
        a.mov(qword_ptr(rbx + 0x9008), rax)?;
        a.add(rbx, 8)?;
        a.and(rbx, 0xff8)?;
        a.sub(rcx, 1)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup64 = || {
        let mut cpu = long64(&code64);
        cpu.s.gpr[ECX] = 5000;
        cpu
    };
    assert!(compiles_to_a_loop(setup64(), CODE));
    let (cpu, _) = same_as_interpreter(&setup64, "64-bit loop");
    assert_eq!(cpu.s.gpr[ECX], 0);
}

#[test]
fn a_loop_that_rewrites_its_own_immediate_sees_the_new_code() {
    // The loop's first instruction is ADD EAX, imm32 (opcode 05, the
    // immediate at CODE + 1). At ECX = 500 the store goes to that
    // immediate instead of the scratch word.
    const N: u64 = 2000;
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.db(&[0x05, 0x11, 0x11, 0x11, 0x11])?;
        a.mov(edx, DATA as u32 + 0x100)?;
        a.cmp(ecx, 500)?;
        a.cmove(edx, esi)?;
        a.mov(dword_ptr(edx), ecx)?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        cpu.s.gpr[ECX] = N;
        cpu.s.gpr[ESI] = CODE + 1;
        cpu
    };
    assert!(compiles_to_a_loop(setup(), CODE));
    let (cpu, _) = same_as_interpreter(&setup, "self-patching loop");
    // Iterations N..=500 added the old immediate, the last 499 the new.
    let want = ((N - 499) * 0x1111_1111 + 499 * 500) & 0xffff_ffff;
    assert_eq!(cpu.s.gpr[EAX], want);
}

#[test]
fn a_fault_on_a_later_iteration_is_precise() {
    // One page per iteration (every access misses the TLB: the slow path
    // runs each time) until the unmapped page at 0x40000.
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.add(esi, 3)?;
        a.mov(eax, dword_ptr(ebx + 0x10))?;
        a.add(edi, eax)?;
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
    assert!(compiles_to_a_loop(setup(), CODE));
    let (cpu, _) = same_as_interpreter(&setup, "fault in a loop");
    // Stopped in the #PF stub, from the load of the 33rd iteration.
    assert_eq!(cpu.s.cr2, 0x40010);
    assert_eq!(cpu.s.gpr[ECX], 100 - 32);
    assert_eq!(cpu.s.gpr[ESI], 3 * 33);
    assert_eq!(cpu.mem.read_ram(STACK - 12, 4), CODE + 3, "faulting EIP");
}

#[test]
fn a_non_canonical_alias_of_a_mapped_page_faults() {
    // Odd iterations read 0x9010 (mapped, now in the TLB), even ones its
    // alias with bit 63 set, in the same TLB slot: that must raise #GP
    // (a shutdown here: the IDT has 32-bit gates), never read 0x9010.
    let code = assemble(64, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(rax, qword_ptr(rbx))?;
        a.add(rsi, rax)?;
        a.xor(rbx, rdx)?;
        a.sub(ecx, 1)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = long64(&code);
        cpu.s.gpr[EBX] = 0x9010;
        cpu.s.gpr[EDX] = 0x8000_0000_0000_0000;
        cpu.s.gpr[ECX] = 10;
        cpu.mem.write_ram(0x9010, 8, 0x42);
        cpu
    };
    assert!(compiles_to_a_loop(setup(), CODE));
    let (cpu, exit) = same_as_interpreter(&setup, "non-canonical alias");
    assert!(matches!(exit, Exit::TripleFault(_)), "{exit:?}");
    assert_eq!(cpu.s.gpr[ESI], 0x42, "one read only");
}

#[test]
fn budgets_and_interrupts_stop_a_loop_where_the_interpreter_does() {
    // A one-block loop with interrupts enabled; every fourth iteration
    // reads MMIO (past RAM), whose slow path may raise an interrupt the
    // loop must stop for at the end of that iteration. Run in slices of
    // pseudo-random budgets with interrupts raised between most.
    const LOG: u64 = 0x40000;
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.add(eax, 1)?;
        a.xor(ebx, eax)?;
        a.mov(ebp, DATA as u32)?;
        a.test(eax, 6)?;
        a.cmovz(ebp, ecx)?;
        a.mov(esi, dword_ptr(ebp))?;
        a.cmp(eax, 1_000_000)?;
        a.jne(top)?;
        a.hlt()
    });
    let handler = {
        let mut a = CodeAssembler::new(32).unwrap();
        a.inc(edi).unwrap();
        a.mov(ebp, edi).unwrap();
        a.and(ebp, 0x3fff).unwrap();
        a.mov(dword_ptr(ebp * 4 + LOG as i32), eax).unwrap();
        a.iretd().unwrap();
        a.assemble(STUBS + 16 * 0x20).unwrap()
    };
    let setup = || {
        let mut cpu = pm32(&code);
        assert!(cpu.mem.load(STUBS + 16 * 0x20, &handler));
        cpu.s.gpr[ECX] = 0x20_0000;
        cpu.s.flags.set_raw(2 | FLAG_IF);
        cpu
    };
    assert!(compiles_to_a_loop(setup(), CODE));
    let mut reference = setup();
    let mut cpu = setup();
    jit_always(&mut cpu);
    let (mut bus_a, mut bus_b) = (TickBus::default(), TickBus::default());
    let mut rng = Rng(0x5eed_1005);
    for slice in 0..3000 {
        let budget = 1 + rng.below(if slice % 3 == 0 { 9 } else { 400 });
        let ra = reference.run(&mut bus_a, budget);
        let rb = cpu.run(&mut bus_b, budget);
        assert_eq!(ra, rb, "slice {slice}: exit");
        assert_eq!(
            (reference.icount, reference.s.rip, reference.s.gpr[EDI]),
            (cpu.icount, cpu.s.rip, cpu.s.gpr[EDI]),
            "slice {slice}: (icount, rip, interrupts)"
        );
        if slice % 5 != 4 {
            bus_a.pending = true;
            bus_b.pending = true;
        }
    }
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, "sliced loop with interrupts");
    assert!(cpu.s.gpr[EDI] > 1000 && bus_b.reads > 1000);
}
