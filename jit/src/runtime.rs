//! What generated code sees at run time: the context block it is handed,
//! and the table of Rust helpers it calls through.
//!
//! Generated code never refers to a symbol or an absolute address: it gets
//! one pointer (`*mut JitCtx`) and reaches everything from there (the CPU
//! state, the `Cpu`, the helper table) by fixed offsets. The same IR can
//! therefore be compiled on any thread and for any Cranelift target.

use core::mem::offset_of;
use leap_cpu::blocks::Block;
use leap_cpu::flags::LazyFlags;
use leap_cpu::mmu::{Tlb, TlbEntry};
use leap_cpu::state::{FLAG_CF, FLAG_OF};
use leap_cpu::tier::{ChainSlot, ChainState, RasEntry};
use leap_cpu::{Bus, Cpu, CpuState, Exception, Exit};

/// Status returned by generated code and by the helpers that can end a
/// block: keep going, or leave the block (all state is in memory).
pub const CONTINUE: u64 = 0;
pub const LEAVE: u64 = 1;

/// Exits a compiled block has its own chaining slots for: the branch
/// target (or fall-through) and, for Jcc, the fall-through; for CALL the
/// second one is the return point (see `RasEntry`).
pub const OWN_SLOTS: usize = 2;

/// What a chaining slot points at: one compiled block's entry and its own
/// slots. Nodes live as long as their code generation (the `Jit` that made
/// them), not their block, so a slot address kept in the return stack is
/// memory that stays valid while that generation's code runs.
#[repr(C)]
pub struct ChainNode {
    /// The block's code, in Cranelift's `tail` calling convention.
    pub entry: u64,
    /// The decoded block the helpers execute (`*const Block`).
    pub block: u64,
    /// Id of the code generation that owns the node (never 0).
    pub owner: u64,
    /// Instructions in the block (the chain stub's budget check).
    pub len: u64,
    /// A region's other blocks (`*const Block`, an array), which the
    /// helpers run when an instruction index names them (`member << 16 |
    /// index`); 0 for a single block.
    pub members: u64,
    pub slots: [ChainSlot; OWN_SLOTS],
}

/// The context compiled blocks run with. Built on the host stack by
/// [`crate::CompiledBlock::run`] for one call, which may run a chain of
/// blocks: a chained exit switches `node` to the successor's.
#[repr(C)]
pub struct JitCtx {
    /// `&mut cpu.s`.
    pub state: *mut CpuState,
    pub cpu: *mut Cpu,
    pub helpers: *const Helpers,
    /// The block running now.
    pub node: *const ChainNode,
    /// Stop once `cpu.icount` reaches this (the interpreter's budget rule).
    pub end: u64,
    /// The bus, as a fat pointer. Only Rust helpers read it.
    pub bus: *mut (dyn Bus + 'static),
    /// A run-loop exit produced by exception delivery (triple fault).
    pub exit: Option<Exit>,
    /// The chain stub of the entered block's code generation (alive while
    /// that block runs), which every exit tail-calls.
    pub stub: u64,
}

/// Helper entry points, called indirectly by generated code. Every
/// argument and result is pointer-sized (`u64`), so no target ABI has to
/// extend a narrower integer.
#[repr(C)]
pub struct Helpers {
    /// Execute instruction `idx` of the block exactly as the interpreter's
    /// block loop does. Returns [`CONTINUE`] or [`LEAVE`].
    pub step: unsafe extern "C" fn(*mut JitCtx, u64) -> u64,
    /// Run instruction `idx` and the rest of the block in the interpreter,
    /// as `exec_block` would from there (an inline instruction's slow
    /// path). Always returns [`LEAVE`].
    pub rest: unsafe extern "C" fn(*mut JitCtx, u64) -> u64,
    /// Deliver an exception raised by inline code: `(ctx, vector, error
    /// code, has error code)`. Always returns [`LEAVE`].
    pub raise: unsafe extern "C" fn(*mut JitCtx, u64, u64, u64) -> u64,
    /// Evaluate condition code `cc` on the lazy flags in memory.
    pub cond: unsafe extern "C" fn(*const LazyFlags, u64) -> u64,
    /// CF of the lazy flags in memory.
    pub cf: unsafe extern "C" fn(*const LazyFlags) -> u64,
    /// A rotate's CF and OF (given as flag bits) into the lazy flags in
    /// memory, the other flags kept (`LazyFlags::set_rotate`). Returns 0.
    pub rotate: unsafe extern "C" fn(*mut LazyFlags, u64) -> u64,
}

/// The one helper table; every `JitCtx` points at it.
pub static HELPERS: Helpers = Helpers {
    step: helper_step,
    rest: helper_rest,
    raise: helper_raise,
    cond: helper_cond,
    cf: helper_cf,
    rotate: helper_rotate,
};

/// Field offsets used by the translator.
pub mod off {
    use super::*;
    pub const CTX_STATE: i32 = offset_of!(JitCtx, state) as i32;
    pub const CTX_CPU: i32 = offset_of!(JitCtx, cpu) as i32;
    pub const CTX_HELPERS: i32 = offset_of!(JitCtx, helpers) as i32;
    pub const CTX_END: i32 = offset_of!(JitCtx, end) as i32;
    pub const CTX_NODE: i32 = offset_of!(JitCtx, node) as i32;

    pub const NODE_ENTRY: i32 = offset_of!(ChainNode, entry) as i32;
    pub const NODE_OWNER: i32 = offset_of!(ChainNode, owner) as i32;
    pub const NODE_LEN: i32 = offset_of!(ChainNode, len) as i32;
    pub const NODE_SLOTS: i32 = offset_of!(ChainNode, slots) as i32;
    pub const SLOT_SIZE: i32 = core::mem::size_of::<ChainSlot>() as i32;
    pub const SLOT_NODE: i32 = offset_of!(ChainSlot, node) as i32;
    pub const SLOT_RIP: i32 = offset_of!(ChainSlot, rip) as i32;
    pub const SLOT_CS_BASE: i32 = offset_of!(ChainSlot, cs_base) as i32;
    pub const SLOT_META: i32 = offset_of!(ChainSlot, meta) as i32;
    pub const SLOT_EPOCH: i32 = offset_of!(ChainSlot, epoch) as i32;
    pub const SLOT_TLB_EPOCH: i32 = offset_of!(ChainSlot, tlb_epoch) as i32;
    pub const SLOT_LAST: i32 = offset_of!(ChainSlot, last) as i32;
    pub const CH_MISS: i32 = offset_of!(ChainState, miss) as i32;
    pub const CH_MISS_EPOCH: i32 = offset_of!(ChainState, miss_epoch) as i32;
    pub const CH_RAS_TOP: i32 = offset_of!(ChainState, ras_top) as i32;
    pub const CH_RAS: i32 = offset_of!(ChainState, ras) as i32;
    pub const CH_TABLE: i32 = offset_of!(ChainState, table) as i32;
    pub const RAS_SIZE_LOG2: i64 = core::mem::size_of::<RasEntry>().trailing_zeros() as i64;
    pub const RAS_RET: i32 = offset_of!(RasEntry, ret) as i32;
    pub const RAS_SLOT: i32 = offset_of!(RasEntry, slot) as i32;
    pub const RAS_OWNER: i32 = offset_of!(RasEntry, owner) as i32;
    pub const CTX_STUB: i32 = offset_of!(JitCtx, stub) as i32;

    pub const H_STEP: i32 = offset_of!(Helpers, step) as i32;
    pub const H_REST: i32 = offset_of!(Helpers, rest) as i32;
    pub const H_RAISE: i32 = offset_of!(Helpers, raise) as i32;
    pub const H_COND: i32 = offset_of!(Helpers, cond) as i32;
    pub const H_CF: i32 = offset_of!(Helpers, cf) as i32;
    pub const H_ROTATE: i32 = offset_of!(Helpers, rotate) as i32;

    pub const CPU_ICOUNT: i32 = offset_of!(Cpu, icount) as i32;
    pub const CPU_END_BLOCK: i32 = offset_of!(Cpu, end_block) as i32;
    pub const CPU_HALTED: i32 = offset_of!(Cpu, halted) as i32;
    pub const CPU_POLL: i32 = offset_of!(Cpu, poll) as i32;
    pub const CPU_INHIBIT: i32 = offset_of!(Cpu, irq_inhibit_until) as i32;
    pub const CPU_CHAIN: i32 = offset_of!(Cpu, chain) as i32;
    pub const CPU_CODE_EPOCH: i32 = leap_cpu::blocks::CPU_CODE_EPOCH_OFFSET as i32;
    pub const CPU_TLB_EPOCH: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, epoch)) as i32;
    pub const CPU_SEG_OK: i32 = offset_of!(Cpu, seg_ok) as i32;
    pub const CPU_SEG_FLAT: i32 = offset_of!(Cpu, seg_flat) as i32;
    pub const CPU_SEG_LO: i32 = offset_of!(Cpu, seg_lo) as i32;
    pub const CPU_SEG_HI: i32 = offset_of!(Cpu, seg_hi) as i32;
    pub const CPU_TLB_READ: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, read)) as i32;
    pub const CPU_TLB_WRITE: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, write)) as i32;

    pub const TLBE_SIZE: i64 = core::mem::size_of::<TlbEntry>() as i64;
    pub const TLBE_TAG: i32 = offset_of!(TlbEntry, tag) as i32;
    pub const TLBE_HOST_DELTA: i32 = offset_of!(TlbEntry, host_delta) as i32;
    /// `JitCtx::state` is `&mut cpu.s`: generated code keeps only the CPU
    /// pointer and reaches the state at this offset from it.
    pub const CPU_STATE: i64 = offset_of!(Cpu, s) as i64;

    pub const GPR: i32 = offset_of!(CpuState, gpr) as i32;
    pub const RIP: i32 = offset_of!(CpuState, rip) as i32;
    pub const FLAGS: i32 = offset_of!(CpuState, flags) as i32;
    pub const F_BITS: i32 = FLAGS + LazyFlags::BITS_OFFSET as i32;
    pub const F_OP: i32 = FLAGS + offset_of!(LazyFlags, op) as i32;
    pub const F_SIZE: i32 = FLAGS + offset_of!(LazyFlags, size) as i32;
    pub const F_A: i32 = FLAGS + offset_of!(LazyFlags, a) as i32;
    pub const F_B: i32 = FLAGS + offset_of!(LazyFlags, b) as i32;
    pub const F_RES: i32 = FLAGS + offset_of!(LazyFlags, res) as i32;
    pub const CPL: i32 = offset_of!(CpuState, cpl) as i32;
    pub const CR0: i32 = offset_of!(CpuState, cr0) as i32;
    pub const CR4: i32 = offset_of!(CpuState, cr4) as i32;
    /// `xmm[0]`: each register is `[low u64, high u64]` in host order.
    pub const XMM: i32 = offset_of!(CpuState, xmm) as i32;
    /// `fpu.mxcsr` (u32).
    pub const MXCSR: i32 =
        (offset_of!(CpuState, fpu) + offset_of!(leap_cpu::fpu::FpuState, mxcsr)) as i32;
    pub const DR7: i32 = (offset_of!(CpuState, dr) + 7 * 8) as i32;
    /// `seg[CS].limit` (u32).
    pub const CS_LIMIT: i32 = (offset_of!(CpuState, seg)
        + leap_cpu::state::CS * core::mem::size_of::<leap_cpu::state::Segment>()
        + offset_of!(leap_cpu::state::Segment, limit)) as i32;
    /// `seg[SS].attr` (u16).
    pub const SS_ATTR: i32 = (offset_of!(CpuState, seg)
        + leap_cpu::state::SS * core::mem::size_of::<leap_cpu::state::Segment>()
        + offset_of!(leap_cpu::state::Segment, attr)) as i32;

    /// `seg[i].base` (u64).
    pub const fn seg_base(i: usize) -> i32 {
        (offset_of!(CpuState, seg)
            + i * core::mem::size_of::<leap_cpu::state::Segment>()
            + offset_of!(leap_cpu::state::Segment, base)) as i32
    }
}

/// EIP/RIP wrap mask for a block decoded with `code_size`.
#[inline]
pub fn ip_mask(code_size: u8) -> u64 {
    match code_size {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Bits of a helper's instruction index above the index within a block:
/// which block of a region (0: the entry block).
pub const MEMBER_SHIFT: u32 = 16;

/// The decoded block a helper's instruction index `idx` names, and the
/// instruction's index in it.
///
/// # Safety
/// `ctx.node` must be the running block's node, whose blocks are alive
/// while it runs (see `ChainNode`), and `idx` one its code was compiled
/// with.
unsafe fn ctx_block<'a>(ctx: &JitCtx, idx: u64) -> (&'a Block, usize) {
    let m = (idx >> MEMBER_SHIFT) as usize;
    let k = (idx & ((1 << MEMBER_SHIFT) - 1)) as usize;
    unsafe {
        let node = &*ctx.node;
        let b = if m == 0 {
            &*(node.block as *const Block)
        } else {
            &*(node.members as *const Block).add(m - 1)
        };
        (b, k)
    }
}

unsafe extern "C" fn helper_step(ctx: *mut JitCtx, idx: u64) -> u64 {
    // SAFETY: generated code passes the context `CompiledBlock::run` built;
    // its pointers are live and unaliased for the duration of the call.
    let ctx = unsafe { &mut *ctx };
    let (cpu, bus, (block, k)) = unsafe { (&mut *ctx.cpu, &mut *ctx.bus, ctx_block(ctx, idx)) };
    let insn = &block.insns[k];
    cpu.next_rip = cpu.s.rip.wrapping_add(insn.len as u64) & ip_mask(block.code_size);
    match (insn.handler)(cpu, bus, insn) {
        Ok(()) => {
            cpu.s.rip = cpu.next_rip;
            cpu.icount += 1;
        }
        Err(e) => {
            cpu.end_block = false;
            ctx.exit = cpu.exception(bus, e);
            return LEAVE;
        }
    }
    if cpu.end_block {
        cpu.end_block = false;
        return LEAVE;
    }
    if cpu.icount >= ctx.end {
        return LEAVE;
    }
    CONTINUE
}

unsafe extern "C" fn helper_rest(ctx: *mut JitCtx, idx: u64) -> u64 {
    // SAFETY: as in `helper_step`; `ctx_block` is a block this code was
    // compiled from, so every index below its length is an instruction.
    let (block, k) = unsafe { ctx_block(&*ctx, idx) };
    let n = block.insns.len() as u64;
    let base = idx - k as u64;
    let mut i = k as u64;
    // `helper_step` commits each instruction with the block loop's rules
    // and says LEAVE where `exec_block` would stop (fault, end_block,
    // budget); past the last instruction the block is over anyway.
    while i < n && unsafe { helper_step(ctx, base + i) } == CONTINUE {
        i += 1;
    }
    LEAVE
}

unsafe extern "C" fn helper_raise(ctx: *mut JitCtx, vector: u64, code: u64, has_code: u64) -> u64 {
    // SAFETY: as in `helper_step`.
    let ctx = unsafe { &mut *ctx };
    let (cpu, bus) = unsafe { (&mut *ctx.cpu, &mut *ctx.bus) };
    let e = if has_code != 0 {
        Exception::with_code(vector as u8, code as u32)
    } else {
        Exception::new(vector as u8)
    };
    cpu.end_block = false;
    ctx.exit = cpu.exception(bus, e);
    LEAVE
}

unsafe extern "C" fn helper_cond(flags: *const LazyFlags, cc: u64) -> u64 {
    // SAFETY: points at `cpu.s.flags`, which generated code has written back.
    unsafe { (*flags).cond(cc as u8) as u64 }
}

unsafe extern "C" fn helper_cf(flags: *const LazyFlags) -> u64 {
    // SAFETY: as in `helper_cond`.
    unsafe { (*flags).cf() as u64 }
}

unsafe extern "C" fn helper_rotate(flags: *mut LazyFlags, v: u64) -> u64 {
    // SAFETY: as in `helper_cond`.
    unsafe { (*flags).set_rotate(v & FLAG_CF != 0, v & FLAG_OF != 0) };
    0
}
