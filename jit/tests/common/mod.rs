//! Shared harness for the JIT tests: a small flat 32-bit protected-mode
//! machine (the layout of leap-cpu's unit tests), and a differential runner
//! that executes the same blocks with the interpreter and compiled.
//!
//! Memory map (1 MiB of RAM): 0x500 GDT, 0x800 IDT (interrupt gates to one
//! 16-byte HLT stub per vector at 0x3000), 0x1000 code, 0x8000 initial ESP,
//! 0x9000 data, 0x10000 page directory, 0x11000 page table (when paging).

#![allow(dead_code)]

use iced_x86::code_asm::*;
use leap_cpu::blocks::Block;
use leap_cpu::state::*;
use leap_cpu::tier::TierHook;
use leap_cpu::{Bus, Cpu, Exit, NullBus};
use leap_jit::{Jit, Tier};

pub const CODE: u64 = 0x1000;
pub const STACK: u64 = 0x8000;
pub const DATA: u64 = 0x9000;
pub const GDT: u64 = 0x500;
pub const IDT: u64 = 0x800;
pub const STUBS: u64 = 0x3000;
pub const PD: u64 = 0x10000;
pub const PT: u64 = 0x11000;
pub const SEL_CODE: u16 = 0x10;

pub type Asm = CodeAssembler;
pub type Prog = Box<dyn Fn(&mut Asm) -> Result<(), IcedError>>;

pub fn assemble(bitness: u32, f: &dyn Fn(&mut Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bitness).unwrap();
    f(&mut a).unwrap();
    a.assemble(CODE).unwrap()
}

fn descriptor(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let lo = (base << 16) | (limit & 0xffff);
    let hi = (base & 0xff00_0000)
        | ((flags as u32 & 0xf) << 20)
        | (limit & 0x000f_0000)
        | ((access as u32) << 8)
        | ((base >> 16) & 0xff);
    (hi as u64) << 32 | lo as u64
}

/// Flat 32-bit protected mode with `code` at CODE, ESP = STACK, EFLAGS = 2.
pub fn pm32(code: &[u8]) -> Cpu {
    let mut cpu = Cpu::new(1 << 20);
    cpu.set_flat32();
    let gdt = [
        0,
        0,
        descriptor(0, 0xfffff, 0x9a, 0xc),
        descriptor(0, 0xfffff, 0x92, 0xc),
    ];
    for (k, d) in gdt.iter().enumerate() {
        cpu.mem.write_ram(GDT + 8 * k as u64, 8, *d);
    }
    cpu.s.gdtr = DescTable {
        base: GDT,
        limit: 0x1f,
    };
    for v in 0..256u64 {
        let off = STUBS + 16 * v;
        let lo = (SEL_CODE as u64) << 16 | (off & 0xffff);
        let hi = (off & 0xffff_0000) | 0x8e00;
        cpu.mem.write_ram(IDT + 8 * v, 8, hi << 32 | lo);
        cpu.mem.write_ram(off, 1, 0xf4);
    }
    cpu.s.idtr = DescTable {
        base: IDT,
        limit: 0x7ff,
    };
    assert!(cpu.mem.load(CODE, code));
    cpu.s.rip = CODE;
    cpu.s.gpr = [0; 16];
    cpu.s.gpr[ESP] = STACK;
    cpu.s.flags.set_raw(2);
    cpu
}

/// Real mode, segments 0, IVT entries to HLT stubs, SP = STACK.
pub fn real(code: &[u8]) -> Cpu {
    let mut cpu = Cpu::new(1 << 20);
    for i in 0..6 {
        cpu.s.seg[i] = Segment::real_mode(0);
    }
    cpu.update_mode();
    for v in 0..256u64 {
        let off = STUBS + 16 * v;
        cpu.mem.write_ram(4 * v, 4, off);
        cpu.mem.write_ram(off, 1, 0xf4);
    }
    assert!(cpu.mem.load(CODE, code));
    cpu.s.rip = CODE;
    cpu.s.gpr = [0; 16];
    cpu.s.gpr[ESP] = STACK;
    cpu.s.flags.set_raw(2);
    cpu
}

/// 2-level paging identity-mapping the first 1 MiB, except `hole` (not present).
pub fn enable_paging(cpu: &mut Cpu, hole: u64) {
    cpu.mem.write_ram(PD, 4, PT | 3);
    for i in 0..256u64 {
        let pte = if i * 4096 == hole { 0 } else { (i * 4096) | 3 };
        cpu.mem.write_ram(PT + 4 * i, 4, pte);
    }
    cpu.s.cr3 = PD;
    cpu.s.cr0 |= CR0_PG;
    cpu.tlb.flush_all();
}

/// The whole architectural state as text, with the flag record in its
/// canonical form (`LazyFlags::canonical`: the JIT drops flag-word bits
/// that no flag reads any more, where the interpreter keeps them).
pub fn state_text(s: &leap_cpu::state::CpuState) -> String {
    let mut s = s.clone();
    s.flags = s.flags.canonical();
    format!("{s:?}")
}

/// Everything the two tiers must agree on.
pub fn compare(a: &Cpu, b: &Cpu, what: &str) {
    for r in 0..16 {
        assert_eq!(
            a.s.gpr[r], b.s.gpr[r],
            "{what}: gpr[{r}] interp {:#x} jit {:#x}",
            a.s.gpr[r], b.s.gpr[r]
        );
    }
    assert_eq!(a.s.rip, b.s.rip, "{what}: rip");
    assert_eq!(
        a.s.flags.get(),
        b.s.flags.get(),
        "{what}: rflags interp {:#x} jit {:#x}",
        a.s.flags.get(),
        b.s.flags.get()
    );
    // Raw records, except arithmetic bits of the word that no flag reads
    // any more (the JIT drops an IMUL's or a parked CF there).
    assert_eq!(
        format!("{:?}", a.s.flags.canonical()),
        format!("{:?}", b.s.flags.canonical()),
        "{what}: lazy flag record"
    );
    assert_eq!(a.icount, b.icount, "{what}: icount");
    assert_eq!(a.halted, b.halted, "{what}: halted");
    assert_eq!(a.end_block, b.end_block, "{what}: end_block");
    assert_eq!(a.poll, b.poll, "{what}: poll");
    assert_eq!(
        a.irq_inhibit_until, b.irq_inhibit_until,
        "{what}: irq shadow"
    );
    assert_eq!(a.mode64, b.mode64, "{what}: mode64");
    assert_eq!(a.s.cr2, b.s.cr2, "{what}: cr2");
    assert_eq!(state_text(&a.s), state_text(&b.s), "{what}: CpuState");
    assert!(a.mem.ram == b.mem.ram, "{what}: RAM differs");
    assert!(
        a.mem.page_flags == b.mem.page_flags,
        "{what}: page flags differ"
    );
}

/// Statistics over a differential run.
#[derive(Default, Debug, Clone, Copy)]
pub struct Totals {
    pub blocks: usize,
    pub insns: usize,
    pub inline: usize,
}

/// Run `a` with the interpreter and `b` with compiled blocks, block by
/// block, from identical states, until HLT, an exit, or `max_blocks`;
/// compare after every block. `end` gives the budget for a block from the
/// current icount (to exercise the budget rule).
pub fn lockstep(
    jit: &mut Jit,
    a: &mut Cpu,
    b: &mut Cpu,
    max_blocks: usize,
    end: &mut dyn FnMut(u64) -> u64,
    what: &str,
) -> (Option<Exit>, Totals) {
    let mut t = Totals::default();
    compare(a, b, what);
    for n in 0..max_blocks {
        if a.halted {
            break;
        }
        let blk = match a.fetch_block(&mut NullBus) {
            Ok(blk) => blk,
            Err(_) => panic!("{what}: fetch fault"),
        };
        let blk_b = b.fetch_block(&mut NullBus).expect("same fetch");
        assert_eq!(blk.insns.len(), blk_b.insns.len());
        let c = jit.compile(&blk).unwrap_or_else(|e| panic!("{what}: {e}"));
        t.blocks += 1;
        t.insns += c.stats.insns;
        t.inline += c.stats.inline;
        let e = end(a.icount);
        let start = a.s.rip;
        let mut ra = a.exec_block(&mut NullBus, &blk, e);
        let rb = c.run(b, &mut NullBus, e);
        // A block that branches to its own start runs as a loop inside its
        // code: the interpreter runs it again until it has caught up.
        while c.stats.looping && ra.is_none() && a.icount < b.icount && a.s.rip == start {
            ra = a.exec_block(&mut NullBus, &blk, e);
        }
        let w = format!(
            "{what}: block {n} at {:#x} ({} insns)",
            blk.phys,
            blk.insns.len()
        );
        assert_eq!(ra, rb, "{w}: exit");
        compare(a, b, &w);
        if ra.is_some() {
            return (ra, t);
        }
        check_block_shape(&blk);
    }
    (None, t)
}

fn check_block_shape(b: &Block) {
    assert!(!b.insns.is_empty());
}

/// Assemble 32-bit code, build two identical machines (after `init`), and
/// run them in lockstep to HLT.
pub fn diff32(
    jit: &mut Jit,
    what: &str,
    init: &dyn Fn(&mut Cpu),
    f: &dyn Fn(&mut Asm) -> Result<(), IcedError>,
) -> Totals {
    let code = assemble(32, f);
    let mut a = pm32(&code);
    let mut b = pm32(&code);
    init(&mut a);
    init(&mut b);
    let (_, t) = lockstep(jit, &mut a, &mut b, 64, &mut |_| u64::MAX, what);
    assert!(a.halted, "{what}: guest did not halt");
    t
}

/// A small xorshift generator (deterministic test inputs).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Values that hit the flag edge cases often.
    pub fn interesting(&mut self) -> u64 {
        const EDGES: [u64; 12] = [
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0xffff_fffe,
        ];
        match self.below(3) {
            0 => EDGES[self.below(EDGES.len() as u64) as usize],
            _ => self.next(),
        }
    }
}

/// 64-bit mode: 4-level paging identity-mapping the first 2 MiB with one
/// large page, CS.L set. (The IDT is the 32-bit one: a fault shuts down.)
pub fn long64(code: &[u8]) -> Cpu {
    let mut cpu = pm32(code);
    let (pml4, pdpt, pd) = (0x20000u64, 0x21000u64, 0x22000u64);
    cpu.mem.write_ram(pml4, 8, pdpt | 3);
    cpu.mem.write_ram(pdpt, 8, pd | 3);
    cpu.mem.write_ram(pd, 8, 0x83);
    cpu.s.cr3 = pml4;
    cpu.s.cr4 |= CR4_PAE;
    cpu.s.efer |= EFER_LME | EFER_LMA;
    cpu.s.cr0 |= CR0_PG;
    cpu.s.seg[CS].attr = (cpu.s.seg[CS].attr & !ATTR_DB) | ATTR_L;
    cpu.update_mode();
    cpu.tlb.flush_all();
    assert!(cpu.mode64);
    cpu
}

/// `diff32` for programs that may fault, loop or shut down instead of
/// halting: runs at most `max_blocks` blocks.
pub fn diff32_any(
    jit: &mut Jit,
    what: &str,
    init: &dyn Fn(&mut Cpu),
    f: &dyn Fn(&mut Asm) -> Result<(), IcedError>,
    max_blocks: usize,
) -> Totals {
    let code = assemble(32, f);
    let mut a = pm32(&code);
    let mut b = pm32(&code);
    init(&mut a);
    init(&mut b);
    lockstep(jit, &mut a, &mut b, max_blocks, &mut |_| u64::MAX, what).1
}

/// Compile every block on first sight (`--jit always`).
pub fn jit_always(cpu: &mut Cpu) {
    cpu.set_tier(Some(TierHook::new(Box::new(Tier::inline().unwrap()), 1)));
}

/// Raises an interrupt (vector 0x20) whenever the test says so, and on
/// every 13th MMIO read (a device the guest pokes): the CPU then polls at
/// the next block boundary, which a chained exit must honour too.
#[derive(Default)]
pub struct TickBus {
    pub pending: bool,
    pub reads: u64,
}

impl Bus for TickBus {
    fn mmio_read(&mut self, _addr: u64, _size: u8) -> u64 {
        self.reads += 1;
        if self.reads.is_multiple_of(13) {
            self.pending = true;
        }
        self.reads
    }
    fn intr_pending(&mut self) -> bool {
        self.pending
    }
    fn intr_ack(&mut self) -> u8 {
        self.pending = false;
        0x20
    }
}
