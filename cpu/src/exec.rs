//! The interpreter's run loop: interrupts at block boundaries, block lookup,
//! instruction dispatch, exception delivery with the double-fault rules,
//! single-step and instruction breakpoints.

use crate::blocks::Block;
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit};
use crate::exception::{self, Exception};
use crate::ops::interrupt::IntKind;
use crate::state::*;

impl Cpu {
    /// Run until `budget` instructions have retired, the CPU halts, the bus
    /// asks to stop, or the processor shuts down.
    pub fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Exit {
        let end = self.icount.saturating_add(budget);
        self.poll = true;
        // A miss recorded outside this loop (a compiled block run on its
        // own) names a slot nobody keeps alive.
        self.chain.miss = 0;
        // The block that ran last, to find the next one through its links.
        let mut prev: Option<std::rc::Rc<Block>> = None;
        loop {
            // No compiled code is running here: blocks dropped while one
            // was can go now.
            if !self.cache.dead.is_empty() {
                self.cache.dead.clear();
            }
            // Interrupt and stop state only change through device I/O, flag
            // writes that set IF, or between runs: poll only then.
            if self.poll || self.halted {
                self.poll = false;
                // What runs next may not be the missed exit's successor.
                self.chain.miss = 0;
                if bus.stop_requested() {
                    return Exit::Stopped;
                }
                if let Some(exit) = self.check_interrupts(bus) {
                    return exit;
                }
            }
            if self.halted {
                return Exit::Halted;
            }
            if self.icount >= end {
                return Exit::Budget;
            }
            self.poll_tier();
            let block = match self.fetch_block_after(bus, prev.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    prev = None;
                    self.chain.miss = 0;
                    if let Some(exit) = self.exception(bus, e) {
                        return exit;
                    }
                    continue;
                }
            };
            // One instruction at a time while single-stepping, with execute
            // breakpoints armed, or inside an interrupt shadow (so a pending
            // interrupt is taken right after the shadowed instruction).
            let single = self.s.flags.raw_bits() & FLAG_TF != 0
                || self.s.dr[7] & 0xff != 0
                || self.icount < self.irq_inhibit_until;
            if let Some(exit) = if single {
                self.chain.miss = 0;
                self.exec_single(bus, &block)
            } else {
                self.run_tiered(bus, &block, end)
            } {
                return exit;
            }
            prev = Some(block);
        }
    }

    /// Accept NMI / INTR if allowed. Returns an exit on triple fault.
    fn check_interrupts(&mut self, bus: &mut dyn Bus) -> Option<Exit> {
        if self.icount < self.irq_inhibit_until {
            self.poll = true;
            return None;
        }
        if self.nmi_pending {
            self.nmi_pending = false;
            let ret = self.s.rip;
            if let Err(e) = self.deliver(bus, exception::NMI, None, IntKind::External, ret) {
                return self.exception(bus, e);
            }
            return None;
        }
        if self.s.flags.raw_bits() & FLAG_IF != 0 && bus.intr_pending() {
            let v = bus.intr_ack();
            let ret = self.s.rip;
            if let Err(e) = self.deliver(bus, v, None, IntKind::External, ret) {
                return self.exception(bus, e);
            }
        }
        None
    }

    #[inline]
    fn ip_mask(&self) -> u64 {
        match self.s.code_size() {
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }

    /// Run the instructions of `block` in order, stopping after the one that
    /// ends it early (branch taken out of line, code invalidated, mode
    /// change), at a fault, or when the budget (`end`) is reached. The JIT's
    /// compiled blocks have exactly this contract and fall back to it.
    // Inlined into `run`: blocks are short, and a call per block (saving and
    // restoring six registers, an `Option<Exit>` returned through memory)
    // was a measurable share of the time.
    #[inline(always)]
    pub fn exec_block(&mut self, bus: &mut dyn Bus, block: &Block, end: u64) -> Option<Exit> {
        // The block was found for the current code size (2, 4 or 8 bytes);
        // a shift rather than `size_mask`'s table, once per block.
        let mask = u64::MAX >> (64 - 8 * (block.code_size as u32 & 15));
        // At most the instructions the budget still allows (`end > icount`).
        let left = end - self.icount;
        let insns = if (block.insns.len() as u64) > left {
            &block.insns[..left as usize]
        } else {
            &block.insns[..]
        };
        if self.trace {
            return self.exec_insns_traced(bus, insns, mask);
        }
        // `s.rip` only changes here while the block runs (a handler that
        // moves it also sets `next_rip`), so keep a copy in a register.
        // Likewise `icount` (handlers read it, never write it).
        let mut rip = self.s.rip;
        let mut icount = self.icount;
        for insn in insns {
            self.next_rip = rip.wrapping_add(insn.len as u64) & mask;
            if let Err(e) = (insn.handler)(self, bus, insn) {
                self.end_block = false;
                return self.exception(bus, e);
            }
            rip = self.next_rip;
            self.s.rip = rip;
            icount += 1;
            self.icount = icount;
            if self.end_block {
                self.end_block = false;
                break;
            }
        }
        None
    }

    /// `exec_block`'s loop with each instruction traced first.
    #[cold]
    fn exec_insns_traced(
        &mut self,
        bus: &mut dyn Bus,
        insns: &[crate::insn::Insn],
        mask: u64,
    ) -> Option<Exit> {
        for insn in insns {
            self.trace_insn(insn);
            self.next_rip = self.s.rip.wrapping_add(insn.len as u64) & mask;
            if let Err(e) = (insn.handler)(self, bus, insn) {
                self.end_block = false;
                return self.exception(bus, e);
            }
            self.s.rip = self.next_rip;
            self.icount += 1;
            if self.end_block {
                self.end_block = false;
                break;
            }
        }
        None
    }

    /// One instruction with the debug checks: DR7 execute breakpoints before
    /// it, TF single-step trap after it.
    fn exec_single(&mut self, bus: &mut dyn Bus, block: &Block) -> Option<Exit> {
        let insn = &block.insns[0];
        let rf = self.s.flags.raw_bits() & FLAG_RF != 0;
        if !rf {
            let lin = self.code_lin();
            let hits = self.exec_breakpoints(lin);
            if hits != 0 {
                self.s.dr[6] = (self.s.dr[6] & !0xf) | hits;
                let ret = self.s.rip;
                if let Err(e) = self.deliver(bus, exception::DB, None, IntKind::Exception, ret) {
                    return self.exception(bus, e);
                }
                // The handler's IRET sets RF to step past the breakpoint.
                return None;
            }
        }
        self.s.flags.set_bit(FLAG_RF, false);
        let tf = self.s.flags.raw_bits() & FLAG_TF != 0;
        if self.trace {
            self.trace_insn(insn);
        }
        self.next_rip = self.s.rip.wrapping_add(insn.len as u64) & self.ip_mask();
        match (insn.handler)(self, bus, insn) {
            Ok(()) => {
                self.s.rip = self.next_rip;
                self.icount += 1;
                self.end_block = false;
            }
            Err(e) => {
                self.end_block = false;
                return self.exception(bus, e);
            }
        }
        if tf {
            self.s.dr[6] |= 1 << 14; // BS
            let ret = self.s.rip;
            if let Err(e) = self.deliver(bus, exception::DB, None, IntKind::Exception, ret) {
                return self.exception(bus, e);
            }
        }
        None
    }

    /// DR6 B0-B3 bits of enabled execute breakpoints matching `lin`.
    fn exec_breakpoints(&self, lin: u64) -> u64 {
        let dr7 = self.s.dr[7];
        let mut hits = 0;
        for n in 0..4 {
            let enabled = (dr7 >> (2 * n)) & 3 != 0;
            let rw = (dr7 >> (16 + 4 * n)) & 3;
            if enabled && rw == 0 && self.s.dr[n] == lin {
                hits |= 1 << n;
            }
        }
        hits
    }

    /// Deliver a fault raised by an instruction, escalating to #DF and to a
    /// triple fault (shutdown) by the rules of SDM 3A Table 6-5.
    pub fn exception(&mut self, bus: &mut dyn Bus, e: Exception) -> Option<Exit> {
        let mut cur = e;
        if self.trace {
            eprintln!(
                "leap: exception {cur} at {:04x}:{:08x}",
                self.s.seg[CS].selector, self.s.rip
            );
        }
        loop {
            if cur.vector() == exception::PF && self.trace {
                eprintln!("leap:   CR2={:#x}", self.s.cr2);
            }
            let code = if Exception::has_error_code(cur.vector()) && self.s.protected() {
                Some(cur.error_code().unwrap_or(0))
            } else {
                None
            };
            let ret = self.s.rip;
            match self.deliver(bus, cur.vector(), code, IntKind::Exception, ret) {
                Ok(()) => return None,
                Err(next) => {
                    if cur.vector() == exception::DF {
                        return Some(Exit::TripleFault(format!(
                            "triple fault: {next} while delivering #DF at {:04x}:{:08x}",
                            self.s.seg[CS].selector, self.s.rip
                        )));
                    }
                    let benign_first = !(cur.contributory() || cur.vector() == exception::PF);
                    let df = !benign_first
                        && (next.contributory()
                            || (cur.vector() == exception::PF && next.vector() == exception::PF));
                    if !self.s.protected() && next.vector() == exception::GP {
                        // Real mode: a fault while vectoring shuts down.
                        return Some(Exit::TripleFault(format!(
                            "triple fault: {next} while delivering {cur} in real mode"
                        )));
                    }
                    cur = if df {
                        Exception::with_code(exception::DF, 0)
                    } else {
                        next
                    };
                }
            }
        }
    }

    fn trace_insn(&mut self, insn: &crate::insn::Insn) {
        eprintln!(
            "{:04x}:{:08x}  {:<40} eax={:08x} ecx={:08x} edx={:08x} ebx={:08x} esp={:08x} ebp={:08x} esi={:08x} edi={:08x} fl={:08x}",
            self.s.seg[CS].selector,
            self.s.rip,
            format!("{}", insn.inst),
            self.s.gpr[0],
            self.s.gpr[1],
            self.s.gpr[2],
            self.s.gpr[3],
            self.s.gpr[4],
            self.s.gpr[5],
            self.s.gpr[6],
            self.s.gpr[7],
            self.s.flags.get()
        );
    }

    /// Execute exactly one instruction (differential tests and debuggers).
    pub fn step(&mut self, bus: &mut dyn Bus) -> Option<Exit> {
        let block = match self.fetch_block(bus) {
            Ok(b) => b,
            Err(e) => return self.exception(bus, e),
        };
        let insn = &block.insns[0];
        self.next_rip = self.s.rip.wrapping_add(insn.len as u64) & self.ip_mask();
        match (insn.handler)(self, bus, insn) {
            Ok(()) => {
                self.s.rip = self.next_rip;
                self.icount += 1;
                self.end_block = false;
                None
            }
            Err(e) => {
                self.end_block = false;
                self.exception(bus, e)
            }
        }
    }
}
