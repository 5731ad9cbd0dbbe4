//! The seam between the interpreter's run loop and a compiling tier.
//!
//! The CPU crate knows nothing of Cranelift: it counts how often each
//! decoded block runs, hands a block that reaches the threshold to the
//! installed [`Tiering`], and runs a block's [`CompiledCode`] instead of
//! the interpreter once one is attached to it. Compiled code is stored in
//! the block itself, so the hot path needs no lookup, and it dies with the
//! block when self-modifying code or a cache flush drops the block.
//!
//! Compiled blocks may also jump straight to each other (chaining): each
//! exit has a [`ChainSlot`] naming the successor's code together with the
//! state it was found under. The run loop fills a slot lazily, when a
//! compiled exit missed it and the loop then found the successor itself;
//! generated code re-checks everything the loop would check before using
//! one. The CPU sees slots only as plain data: what a slot's `node` points
//! at belongs to the tier.

use crate::blocks::{region_candidates, Block};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit};
use crate::state::CS;
use std::cell::{Cell, OnceCell};
use std::rc::Rc;

/// Host code for one block. `run` must have exactly the contract of
/// [`Cpu::exec_block`]: same instructions retired, same state on a fault.
pub trait CompiledCode {
    fn run(&self, cpu: &mut Cpu, bus: &mut dyn Bus, end: u64) -> Option<Exit>;
    /// The address a predecessor's [`ChainSlot::node`] holds to enter this
    /// code directly (0: this code cannot be chained to).
    fn chain_node(&self) -> u64 {
        0
    }
}

/// A successor of a compiled exit, valid only while everything the run
/// loop would check to pick it again is unchanged: the RIP, CS base, code
/// size and CPL it was found for, no code invalidated and no TLB flush
/// since (the two epochs), and the whole block still under the CS limit
/// (`rip + last`). With all of that equal, `fetch_block` would return the
/// same block.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChainSlot {
    /// The successor's entry record (tier-defined), 0 when empty.
    pub node: u64,
    pub rip: u64,
    pub cs_base: u64,
    /// Code size | CPL << 8, as the block cache's `meta`.
    pub meta: u64,
    pub epoch: u64,
    pub tlb_epoch: u64,
    /// Offset of the block's last byte from its start.
    pub last: u64,
    pub _pad: u64,
}

impl ChainSlot {
    /// No epoch ever reaches `u64::MAX`, so an empty slot never matches.
    pub const EMPTY: ChainSlot = ChainSlot {
        node: 0,
        rip: 0,
        cs_base: 0,
        meta: 0,
        epoch: u64::MAX,
        tlb_epoch: u64::MAX,
        last: 0,
        _pad: 0,
    };
}

/// One return-stack entry, pushed by compiled CALLs: the return address
/// and the slot of the calling block that holds the code found there.
/// `owner` names the code generation the slot's memory belongs to; a RET
/// only reads `slot` when the generation is its own, hence still alive.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RasEntry {
    pub ret: u64,
    pub slot: u64,
    pub owner: u64,
    pub _pad: u64,
}

pub const RAS_SIZE: usize = 16;
/// Entries of the indirect-branch table (a power of two).
pub const IND_SIZE: usize = 1024;

/// Index into [`ChainState::table`] for a branch target.
#[inline]
pub fn ind_index(rip: u64) -> usize {
    ((rip ^ (rip >> 10)) as usize) & (IND_SIZE - 1)
}

/// Chaining state shared by the run loop and generated code, reached
/// from the `Cpu` by a fixed offset.
#[repr(C)]
pub struct ChainState {
    /// The slot a compiled exit found unusable (0: none), and the code
    /// epoch then: the run loop links it to the block it finds next if no
    /// code was invalidated in between (so the slot's memory is alive).
    pub miss: u64,
    pub miss_epoch: u64,
    pub ras_top: u64,
    /// Slots linked by the run loop (statistics).
    pub links: u64,
    pub ras: [RasEntry; RAS_SIZE],
    /// Successors of indirect branches and mispredicted returns, by target.
    pub table: [ChainSlot; IND_SIZE],
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState {
            miss: 0,
            miss_epoch: 0,
            ras_top: 0,
            links: 0,
            ras: [RasEntry::default(); RAS_SIZE],
            table: [ChainSlot::EMPTY; IND_SIZE],
        }
    }
}

/// A compiler the run loop feeds with hot blocks.
pub trait Tiering {
    /// `block` has run `threshold` times (or is seen for the first time
    /// with threshold 1). The tier may compile it now and attach the code
    /// with [`JitSlot::install`], or queue it and attach it later from
    /// [`Tiering::poll`].
    ///
    /// `near` are cached blocks on the same page that `block` reaches
    /// through direct branches (`Cpu::region_candidates`): the tier may
    /// compile some of them into the same code, as a region.
    fn hot(&mut self, block: &Rc<Block>, near: &[Rc<Block>]);
    /// Attach finished code. Returns true when the tier wants every decoded
    /// block dropped (its code cache was full and has been recycled).
    fn poll(&mut self) -> bool;
    /// Work `poll` still has to do: compilations not attached yet, or a
    /// full cache to recycle.
    fn pending(&self) -> usize;
    /// One line of statistics for `--stats`.
    fn report(&self) -> String;
    /// For callers that know the concrete tier (tests, benches).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Per-block tiering state, kept in [`Block`].
#[derive(Default)]
pub struct JitSlot {
    runs: Cell<u32>,
    code: OnceCell<Rc<dyn CompiledCode>>,
}

impl JitSlot {
    /// Count one run; true exactly when the count reaches `threshold`.
    #[inline]
    pub fn count(&self, threshold: u32) -> bool {
        let n = self.runs.get().saturating_add(1);
        self.runs.set(n);
        n == threshold
    }

    #[inline]
    pub fn code(&self) -> Option<&Rc<dyn CompiledCode>> {
        self.code.get()
    }

    /// Attach compiled code (ignored if some is already attached).
    pub fn install(&self, code: Rc<dyn CompiledCode>) {
        let _ = self.code.set(code);
    }
}

/// How the run loop uses a tier (`--jit`).
pub struct TierHook {
    pub tier: Box<dyn Tiering>,
    /// Runs before a block is handed to the tier (1 = on first sight:
    /// with a tier that compiles inside `hot`, no block ever runs in the
    /// interpreter first, which is `--jit always`).
    pub threshold: u32,
    /// The tier may have code to attach or a cache to recycle: poll it
    /// before the next block. Kept here so the per-block check is a load,
    /// not a call through the trait object.
    outstanding: bool,
}

impl TierHook {
    pub fn new(tier: Box<dyn Tiering>, threshold: u32) -> TierHook {
        TierHook {
            tier,
            threshold: threshold.max(1),
            outstanding: false,
        }
    }
}

impl Cpu {
    /// Run blocks through `tier` from now on (`None`: interpreter only).
    pub fn set_tier(&mut self, hook: Option<TierHook>) {
        self.tier = hook;
        // Blocks decoded so far carry counts from the previous setting.
        self.flush_code_cache();
    }

    pub fn tier_report(&self) -> Option<String> {
        self.tier.as_ref().map(|h| h.tier.report())
    }

    /// The installed tier as its concrete type.
    pub fn tier_as<T: 'static>(&self) -> Option<&T> {
        self.tier.as_ref()?.tier.as_any().downcast_ref()
    }

    /// Give the tier a chance to attach finished code; drop all blocks if
    /// it recycled its code memory.
    #[inline]
    pub(crate) fn poll_tier(&mut self) {
        if let Some(h) = self.tier.as_mut() {
            if h.outstanding {
                let recycled = h.tier.poll();
                h.outstanding = h.tier.pending() > 0;
                if recycled {
                    self.flush_code_cache();
                }
            }
        }
    }

    /// The last compiled exit missed its slot and `block` is what this loop
    /// found after it: record it there, with the state it was found under,
    /// if it has code (the miss is consumed either way: it is only about
    /// the very next block).
    #[cold]
    #[inline(never)]
    fn link_miss(&mut self, block: &Rc<Block>) {
        let slot = std::mem::take(&mut self.chain.miss) as *mut ChainSlot;
        let node = block.jit.code().map_or(0, |c| c.chain_node());
        // Only blocks the cache holds: they live as long as the code epoch
        // does, which is what keeps a linked slot's `node` valid.
        if node == 0 || self.chain.miss_epoch != self.cache.epoch || !self.is_cached(block) {
            return;
        }
        self.chain.links += 1;
        let s = ChainSlot {
            node,
            rip: self.s.rip,
            cs_base: self.s.seg[CS].base,
            meta: self.s.code_size() as u64 | (self.s.cpl as u64) << 8,
            epoch: self.cache.epoch,
            tlb_epoch: self.tlb.epoch,
            last: block.byte_len as u64 - 1,
            _pad: 0,
        };
        // SAFETY: a miss is recorded by the compiled block that ran last;
        // with the code epoch unchanged that block is still alive (the run
        // loop's `prev`, or a cached block), and so is its slot. Nothing
        // else accesses the slot while the run loop runs.
        unsafe { slot.write(s) };
    }

    /// Run `block` in whichever tier has it.
    #[inline]
    pub(crate) fn run_tiered(
        &mut self,
        bus: &mut dyn Bus,
        block: &Rc<Block>,
        end: u64,
    ) -> Option<Exit> {
        if let Some(h) = self.tier.as_mut() {
            // Blocks outside RAM (ROM, MMIO) are decoded afresh each time
            // and never cached: not worth compiling.
            if block.jit.code().is_none()
                && block.jit.count(h.threshold)
                && self.mem.is_ram(block.phys)
            {
                let cs = &self.s.seg[CS];
                let flat = self.mode64 || (cs.base == 0 && cs.limit == 0xffff_ffff);
                let near = region_candidates(&self.cache, block, flat, self.s.rip);
                h.tier.hot(block, &near);
                h.outstanding = true;
            }
            // After `hot`: with `--jit always` the code exists from now on.
            if self.chain.miss != 0 {
                self.link_miss(block);
            }
            // `block` is the caller's, not borrowed from `self`.
            if let Some(code) = block.jit.code() {
                return code.run(self, bus, end);
            }
        }
        self.exec_block(bus, block, end)
    }
}
