//! Chaining between compiled blocks: every guest here runs once in the
//! interpreter and once with every block compiled on first sight, through
//! `Cpu::run`, and must end in the same state with the same instruction
//! count. Chains must stop where the run loop would (budget, interrupts),
//! see code and mapping changes before the next instruction, and cross
//! page boundaries. `ChainState::links` (slots filled by the run loop)
//! staying small while the guest makes thousands of transitions shows the
//! transitions really were chained: every miss would link once more.

mod common;

use common::*;
use iced_x86::code_asm::*;
use leap_cpu::state::*;
use leap_cpu::{Cpu, Exit, NullBus};

fn run_to_halt(cpu: &mut Cpu) {
    while !cpu.halted {
        assert_eq!(cpu.run(&mut NullBus, u64::MAX), Exit::Halted);
    }
}

/// Assemble `f` for `base` (32-bit code).
fn assemble_at(base: u64, f: &dyn Fn(&mut Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(base).unwrap()
}

/// Run `setup`'s machine to HLT in the interpreter and with the JIT;
/// compare. Returns the JIT run's CPU.
fn same_as_interpreter(setup: &dyn Fn() -> Cpu, what: &str) -> Cpu {
    let mut reference = setup();
    run_to_halt(&mut reference);
    let mut cpu = setup();
    jit_always(&mut cpu);
    run_to_halt(&mut cpu);
    // Which pages are marked as code depends on when blocks were dropped.
    reference.flush_code_cache();
    cpu.flush_code_cache();
    compare(&reference, &cpu, what);
    cpu
}

#[test]
fn loop_across_a_page_boundary_chains() {
    // The loop body starts 16 bytes before 0x2000: the page end cuts it
    // into two blocks that fall through into each other, and the Jcc at
    // the end jumps back across the boundary.
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        a.mov(ecx, 20_000u32)?;
        a.jmp(top)?;
        for _ in 0..(0x1ff0 - 0x1000 - 7) {
            a.nop()?;
        }
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.xor(ebx, eax)?;
        a.lea(esi, dword_ptr(esi + eax * 2 + 3))?;
        a.mov(dword_ptr(DATA), esi)?;
        a.add(edi, dword_ptr(DATA))?;
        a.rol(edx, 3)?; // interpreter handler: a full stop check
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let cpu = same_as_interpreter(&|| pm32(&code), "loop across 0x2000");
    assert_eq!(cpu.s.gpr[ECX], 0);
    assert!(cpu.chain.links < 20, "links {}", cpu.chain.links);
}

#[test]
fn rewritten_successor_runs_its_new_code() {
    // The loop jumps to a block on another page (0x5000); halfway, the
    // loop rewrites that block's immediate. The chained jump must run the
    // new code from the next iteration on.
    const FAR: u64 = 0x5000;
    let main = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, 2000u32)?;
        a.set_label(&mut top)?;
        a.cmp(ecx, 1000)?;
        a.jne(skip)?;
        a.mov(byte_ptr(FAR + 2), 7)?; // ADD EBX, imm8: immediate at +2
        a.set_label(&mut skip)?;
        a.jmp(FAR)?;
        a.hlt()
    });
    let back = CODE + 5; // `top`
    let far = assemble_at(FAR, &|a| {
        a.add(ebx, 1)?;
        a.dec(ecx)?;
        a.jne(back)?;
        a.hlt()
    });
    assert_eq!(&far[..3], &[0x83, 0xc3, 0x01]);
    let setup = || {
        let mut cpu = pm32(&main);
        assert!(cpu.mem.load(FAR, &far));
        cpu
    };
    let cpu = same_as_interpreter(&setup, "rewritten successor");
    assert_eq!(cpu.s.gpr[EBX], 1000 + 7 * 1000);
    assert!(cpu.chain.links < 40, "links {}", cpu.chain.links);
}

/// Paging with the page at linear 0x6000 holding `add ebx, imm; ret`,
/// mapped to physical 0x6000 (imm 1); physical 0xa000 holds the same with
/// imm 100 (not 0x7000: the stack page). The loop calls 0x6000; at iteration 500 `remap` points the
/// linear page at 0xa000.
fn remap_guest(remap: &dyn Fn(&mut Asm) -> Result<(), IcedError>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let main = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, 1000u32)?;
        a.set_label(&mut top)?;
        a.cmp(ecx, 500)?;
        a.jne(skip)?;
        remap(a)?;
        a.set_label(&mut skip)?;
        a.call(0x6000u64)?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let callee = |imm: i32| {
        assemble_at(0x6000, &|a| {
            a.add(ebx, imm)?;
            a.ret()
        })
    };
    (main, callee(1), callee(100))
}

#[test]
fn remapped_successor_page_pte_and_invlpg() {
    let (main, one, hundred) = remap_guest(&|a| {
        a.mov(dword_ptr(PT + 6 * 4), 0xa003u32)?;
        a.invlpg(dword_ptr(0x6000))
    });
    let setup = || {
        let mut cpu = pm32(&main);
        assert!(cpu.mem.load(0x6000, &one));
        assert!(cpu.mem.load(0xa000, &hundred));
        enable_paging(&mut cpu, u64::MAX);
        cpu
    };
    let cpu = same_as_interpreter(&setup, "PTE change + INVLPG");
    assert_eq!(cpu.s.gpr[EBX], 500 + 100 * 500);
    assert!(cpu.chain.links < 40, "links {}", cpu.chain.links);
}

#[test]
fn remapped_successor_page_cr3() {
    const PD2: u64 = 0x12000;
    const PT2: u64 = 0x13000;
    let (main, one, hundred) = remap_guest(&|a| {
        a.mov(eax, PD2 as u32)?;
        a.mov(cr3, eax)
    });
    let setup = || {
        let mut cpu = pm32(&main);
        assert!(cpu.mem.load(0x6000, &one));
        assert!(cpu.mem.load(0xa000, &hundred));
        enable_paging(&mut cpu, u64::MAX);
        cpu.mem.write_ram(PD2, 4, PT2 | 3);
        for i in 0..256u64 {
            let pte = if i == 6 { 0xa003 } else { (i * 4096) | 3 };
            cpu.mem.write_ram(PT2 + 4 * i, 4, pte);
        }
        cpu
    };
    let cpu = same_as_interpreter(&setup, "CR3 switch");
    assert_eq!(cpu.s.gpr[EBX], 500 + 100 * 500);
    assert!(cpu.chain.links < 40, "links {}", cpu.chain.links);
}

#[test]
fn recursion_returns_through_the_return_stack() {
    // fib(16) by naive recursion: about 3200 calls and as many returns,
    // to two return points at varying depths.
    let code = assemble(32, &|a| {
        let mut fib = a.create_label();
        let mut base = a.create_label();
        a.mov(eax, 16u32)?;
        a.call(fib)?;
        a.hlt()?;
        a.set_label(&mut fib)?;
        a.cmp(eax, 2)?;
        a.jb(base)?;
        a.push(eax)?;
        a.dec(eax)?;
        a.call(fib)?;
        a.pop(ecx)?;
        a.push(eax)?;
        a.lea(eax, dword_ptr(ecx - 2))?;
        a.call(fib)?;
        a.pop(ecx)?;
        a.add(eax, ecx)?;
        a.set_label(&mut base)?;
        a.ret()
    });
    let cpu = same_as_interpreter(&|| pm32(&code), "recursive fib");
    assert_eq!(cpu.s.gpr[EAX], 987);
    assert!(cpu.chain.links < 40, "links {}", cpu.chain.links);
}

#[test]
fn indirect_jumps_and_calls() {
    // A jump table indexed by the low bits of a counter (JMP [table+eax*4])
    // and a function pointer call (CALL reg, CALL [mem]).
    const TABLE: u64 = 0x9800;
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut join = a.create_label();
        let mut cases = [
            a.create_label(),
            a.create_label(),
            a.create_label(),
            a.create_label(),
        ];
        let mut f1 = a.create_label();
        let mut f2 = a.create_label();
        let _ = (&f1, &f2);
        a.mov(ecx, 3000u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.and(eax, 3)?;
        a.jmp(dword_ptr(TABLE + eax * 4))?;
        for (k, l) in cases.iter_mut().enumerate() {
            a.set_label(l)?;
            a.add(ebx, k as i32 + 1)?;
            if k % 2 == 0 {
                a.mov(edx, dword_ptr(TABLE + 20))?;
                a.call(edx)?;
            } else {
                a.call(dword_ptr(TABLE + 16))?;
            }
            a.jmp(join)?;
        }
        a.set_label(&mut join)?;
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()?;
        a.set_label(&mut f1)?;
        a.add(esi, ebx)?;
        a.ret()?;
        a.set_label(&mut f2)?;
        a.sub(esi, 3)?;
        a.ret()
    });
    // The table is filled in by finding the targets' bytes.
    let addr = |code: &[u8], pat: &[u8]| -> u64 {
        CODE + code.windows(pat.len()).position(|w| w == pat).unwrap() as u64
    };
    // add ebx, k+1 is 83 C3 (k+1); f1 is `01 DE c3`, f2 `83 EE 03 C3`.
    let case = |k: u8| addr(&code, &[0x83, 0xc3, k + 1]);
    let f1 = addr(&code, &[0x01, 0xde, 0xc3]);
    let f2 = addr(&code, &[0x83, 0xee, 0x03, 0xc3]);
    let setup = || {
        let mut cpu = pm32(&code);
        for k in 0..4u8 {
            cpu.mem.write_ram(TABLE + 4 * k as u64, 4, case(k));
        }
        cpu.mem.write_ram(TABLE + 16, 4, f2);
        cpu.mem.write_ram(TABLE + 20, 4, f1);
        cpu
    };
    let cpu = same_as_interpreter(&setup, "jump table");
    assert_eq!(cpu.s.gpr[ECX], 0);
    assert!(cpu.chain.links < 60, "links {}", cpu.chain.links);
}

#[test]
fn budget_and_interrupts_cut_chains_where_the_interpreter_does() {
    // A tight chained loop with interrupts enabled; the handler counts
    // in EDI and logs the loop counter at each interrupt. The CPU runs in
    // slices of pseudo-random budgets with an interrupt raised after most,
    // as the machine does at device deadlines, and the loop's MMIO reads
    // raise more in the middle of slices: every slice must end at the same
    // instruction, and every interrupt land at the same place, in both
    // tiers.
    const LOG: u64 = 0x40000;
    let code = assemble(32, &|a| {
        let mut top = a.create_label();
        let mut odd = a.create_label();
        a.mov(ecx, 0x20_0000u32)?;
        a.sti()?;
        a.set_label(&mut top)?;
        a.add(eax, 1)?;
        a.test(eax, 1)?;
        a.jne(odd)?;
        a.adc(edx, eax)?; // interpreter handler: a full stop check
        a.set_label(&mut odd)?;
        a.xor(ebx, eax)?;
        // Every fourth iteration reads MMIO (past RAM): the exits of
        // these blocks are linked on the other iterations, and must stop
        // for the poll when the read happened.
        a.mov(ebp, DATA as u32)?;
        a.test(eax, 6)?;
        a.cmovz(ebp, ecx)?;
        a.mov(esi, dword_ptr(ebp))?;
        a.cmp(eax, 1_000_000)?;
        a.jne(top)?;
        a.hlt()
    });
    // Room for the handler: stubs 0x20-0x21 are not used.
    let handler = assemble_at(STUBS + 16 * 0x20, &|a| {
        a.inc(edi)?;
        a.mov(ebp, edi)?;
        a.and(ebp, 0x3fff)?;
        a.mov(dword_ptr(ebp * 4 + LOG), eax)?;
        a.iretd()
    });
    let setup = || {
        let mut cpu = pm32(&code);
        assert!(cpu.mem.load(STUBS + 16 * 0x20, &handler));
        cpu
    };
    let mut reference = setup();
    let mut cpu = setup();
    jit_always(&mut cpu);
    let (mut bus_a, mut bus_b) = (TickBus::default(), TickBus::default());
    let mut rng = Rng(0x1234_5678);
    for slice in 0..3000 {
        let budget = 1 + rng.below(if slice % 3 == 0 { 7 } else { 200 });
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
    compare(&reference, &cpu, "sliced run with interrupts");
    assert!(cpu.s.gpr[EDI] > 1000);
    assert!(
        bus_b.reads > 1000 && cpu.chain.links < 20,
        "links {}",
        cpu.chain.links
    );
}

#[test]
fn indirect_targets_sharing_a_table_entry() {
    // Two JMP reg targets that hash to the same indirect-table entry: each
    // must run its own code, however the entry was last filled.
    use leap_cpu::tier::ind_index;
    const T1: u64 = 0x2000;
    const BACK: u64 = 0x2800;
    let t2 = (T1 + 1..BACK)
        .find(|&t| ind_index(t) == ind_index(T1) && t > T1 + 16)
        .unwrap();
    let main = assemble(32, &|a| {
        let mut top = a.create_label();
        a.mov(ecx, 3000u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.and(eax, 1)?;
        a.mov(eax, dword_ptr(eax * 4 + DATA))?;
        a.jmp(eax)
    });
    let top = CODE + 5;
    let case = |at: u64, imm: i32| {
        assemble_at(at, &|a| {
            a.add(ebx, imm)?;
            a.jmp(BACK)
        })
    };
    let back = assemble_at(BACK, &|a| {
        a.dec(ecx)?;
        a.jne(top)?;
        a.hlt()
    });
    let setup = || {
        let mut cpu = pm32(&main);
        assert!(cpu.mem.load(T1, &case(T1, 1)));
        assert!(cpu.mem.load(t2, &case(t2, 1000)));
        assert!(cpu.mem.load(BACK, &back));
        cpu.mem.write_ram(DATA, 4, T1);
        cpu.mem.write_ram(DATA + 4, 4, t2);
        cpu
    };
    let cpu = same_as_interpreter(&setup, "table collision");
    assert_eq!(cpu.s.gpr[EBX], 1500 + 1000 * 1500);
}
