//! The seam between the interpreter's run loop and a compiling tier.
//!
//! The CPU crate knows nothing of Cranelift: it counts how often each
//! decoded block runs, hands a block that reaches the threshold to the
//! installed [`Tiering`], and runs a block's [`CompiledCode`] instead of
//! the interpreter once one is attached to it. Compiled code is stored in
//! the block itself, so the hot path needs no lookup, and it dies with the
//! block when self-modifying code or a cache flush drops the block.

use crate::blocks::Block;
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;

/// Host code for one block. `run` must have exactly the contract of
/// [`Cpu::exec_block`]: same instructions retired, same state on a fault.
pub trait CompiledCode {
    fn run(&self, cpu: &mut Cpu, bus: &mut dyn Bus, end: u64) -> Option<Exit>;
}

/// A compiler the run loop feeds with hot blocks.
pub trait Tiering {
    /// `block` has run `threshold` times (or is seen for the first time
    /// with threshold 1). The tier may compile it now and attach the code
    /// with [`JitSlot::install`], or queue it and attach it later from
    /// [`Tiering::poll`].
    fn hot(&mut self, block: &Rc<Block>);
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
                h.tier.hot(block);
                h.outstanding = true;
            }
            // `block` is the caller's, not borrowed from `self`.
            if let Some(code) = block.jit.code() {
                return code.run(self, bus, end);
            }
        }
        self.exec_block(bus, block, end)
    }
}
