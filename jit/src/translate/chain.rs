//! Block exits that enter the next compiled block directly.
//!
//! An exit first commits the state (as any exit does), then picks a
//! `ChainSlot`: one of the block's own (a static target), the return
//! stack's guess (RET), or the indirect table entry for the target. The
//! slot is used only if it describes exactly the block the run loop would
//! pick (target RIP, CS base, code size and CPL, code and TLB epochs, CS
//! limit over the whole block) and the run loop would not stop first
//! (budget reached, a poll pending, and for blocks that ran interpreter
//! handlers: halted, TF, DR7 breakpoints, an interrupt shadow). Then the
//! exit tail-calls the successor's code with the context switched to its
//! node. Otherwise it returns to the run loop, leaving the slot's address
//! so the loop can fill it with the block it finds.

use super::{mem, Tx};
use crate::runtime::{off, CONTINUE};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, Value};
use leap_cpu::state::{CS, FLAG_TF};
use leap_cpu::tier::{IND_SIZE, RAS_SIZE};

/// Which slot a chained exit tries.
#[derive(Clone, Copy)]
pub(crate) enum Pick {
    /// The block's own slot `i`.
    Own(usize),
    /// Own slot 0 when the condition is set (branch taken), else slot 1.
    Sel(Value),
    /// The return stack's top if it predicted this target, else the table.
    Ret,
    /// The indirect-branch table.
    Ind,
}

impl Tx<'_> {
    fn own_slot(&mut self, node: Value, i: usize) -> Value {
        let o = off::NODE_SLOTS + i as i32 * off::SLOT_SIZE;
        self.b.ins().iadd_imm_s(node, o as i64)
    }

    /// The table entry for `target` (`leap_cpu::tier::ind_index`).
    fn table_slot(&mut self, chain: Value, target: Value) -> Value {
        let b = &mut self.b;
        let h = b.ins().ushr_imm_s(target, 10);
        let h = b.ins().bxor(h, target);
        let h = b.ins().band_imm_s(h, IND_SIZE as i64 - 1);
        let h = b.ins().imul_imm_s(h, off::SLOT_SIZE as i64);
        let t = b.ins().iadd(chain, h);
        b.ins().iadd_imm_s(t, off::CH_TABLE as i64)
    }

    fn load64(&mut self, base: Value, offset: i32) -> Value {
        self.b.ins().load(I64, mem(), base, offset)
    }

    /// CALL: remember where it returns to, and the block's slot for the
    /// code found there (own slot 1).
    pub(super) fn push_return(&mut self, ret: Value) {
        let p = self.ptr;
        let node = self.b.ins().load(p, mem(), self.ctx, off::CTX_NODE);
        let chain = self.b.ins().load(p, mem(), self.cpu, off::CPU_CHAIN);
        let top = self.load64(chain, off::CH_RAS_TOP);
        let top = self.b.ins().iadd_imm_s(top, 1);
        let top = self.b.ins().band_imm_s(top, RAS_SIZE as i64 - 1);
        self.b.ins().store(mem(), top, chain, off::CH_RAS_TOP);
        let e = self.b.ins().ishl_imm_s(top, off::RAS_SIZE_LOG2);
        let e = self.b.ins().iadd(chain, e);
        let slot = self.own_slot(node, 1);
        let owner = self.load64(node, off::NODE_OWNER);
        let b = &mut self.b;
        b.ins().store(mem(), ret, e, off::CH_RAS + off::RAS_RET);
        b.ins().store(mem(), slot, e, off::CH_RAS + off::RAS_SLOT);
        b.ins().store(mem(), owner, e, off::CH_RAS + off::RAS_OWNER);
    }

    /// Leave the block for `target` (the RIP the tracking now holds, with
    /// the last instruction counted): write everything back, then enter
    /// the successor directly if the slot `pick` finds is valid, or return
    /// to the run loop.
    pub(super) fn leave_via(&mut self, target: Value, pick: Pick) {
        debug_assert_eq!(self.ptr, I64, "64-bit hosts only");
        self.writeback();
        let ic = if self.t.ic_loaded {
            let v = self.b.use_var(self.v.ic);
            self.b.ins().iadd_imm_s(v, self.t.ic_add as i64)
        } else {
            self.b.ins().load(I64, mem(), self.cpu, off::CPU_ICOUNT)
        };
        let p = self.ptr;
        let node = self.b.ins().load(p, mem(), self.ctx, off::CTX_NODE);
        let chain = self.b.ins().load(p, mem(), self.cpu, off::CPU_CHAIN);
        let epoch = self.load64(self.cpu, off::CPU_CODE_EPOCH);
        let slot = match pick {
            Pick::Own(i) => self.own_slot(node, i),
            Pick::Sel(c) => {
                let s0 = self.own_slot(node, 0);
                let s1 = self.own_slot(node, 1);
                self.b.ins().select(c, s0, s1)
            }
            Pick::Ind => self.table_slot(chain, target),
            Pick::Ret => {
                // Pop whether or not the guess is right, as a CPU's return
                // stack does.
                let top = self.load64(chain, off::CH_RAS_TOP);
                let down = self.b.ins().iadd_imm_s(top, -1);
                let down = self.b.ins().band_imm_s(down, RAS_SIZE as i64 - 1);
                self.b.ins().store(mem(), down, chain, off::CH_RAS_TOP);
                let e = self.b.ins().ishl_imm_s(top, off::RAS_SIZE_LOG2);
                let e = self.b.ins().iadd(chain, e);
                let ret = self.load64(e, off::CH_RAS + off::RAS_RET);
                let owner = self.load64(e, off::CH_RAS + off::RAS_OWNER);
                let guess = self.load64(e, off::CH_RAS + off::RAS_SLOT);
                let mine = self.load64(node, off::NODE_OWNER);
                // The entry's slot is only read when it belongs to this
                // block's generation, whose memory this block keeps alive.
                let same_ret = self.b.ins().icmp(IntCC::Equal, ret, target);
                let same_gen = self.b.ins().icmp(IntCC::Equal, owner, mine);
                let hit = self.b.ins().band(same_ret, same_gen);
                let t = self.table_slot(chain, target);
                self.b.ins().select(hit, guess, t)
            }
        };

        // Would the run loop pick this slot's block?
        let srip = self.load64(slot, off::SLOT_RIP);
        let mut ok = self.b.ins().icmp(IntCC::Equal, srip, target);
        let cpl = self.b.ins().uload8(I64, mem(), self.state, off::CPL);
        let meta = self.b.ins().ishl_imm_s(cpl, 8);
        let meta = self.b.ins().bor_imm_s(meta, self.code_size as i64);
        let smeta = self.load64(slot, off::SLOT_META);
        let c = self.b.ins().icmp(IntCC::Equal, smeta, meta);
        ok = self.b.ins().band(ok, c);
        let sepoch = self.load64(slot, off::SLOT_EPOCH);
        let c = self.b.ins().icmp(IntCC::Equal, sepoch, epoch);
        ok = self.b.ins().band(ok, c);
        let tlb = self.load64(self.cpu, off::CPU_TLB_EPOCH);
        let stlb = self.load64(slot, off::SLOT_TLB_EPOCH);
        let c = self.b.ins().icmp(IntCC::Equal, stlb, tlb);
        ok = self.b.ins().band(ok, c);
        if !self.code64() {
            let base = self.load64(self.state, off::seg_base(CS));
            let sbase = self.load64(slot, off::SLOT_CS_BASE);
            let c = self.b.ins().icmp(IntCC::Equal, sbase, base);
            ok = self.b.ins().band(ok, c);
            let last = self.load64(slot, off::SLOT_LAST);
            let end = self.b.ins().iadd(target, last);
            let lim = self.b.ins().load(I32, mem(), self.state, off::CS_LIMIT);
            let lim = self.b.ins().uextend(I64, lim);
            let c = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, lim);
            ok = self.b.ins().band(ok, c);
        }
        let hit = self.b.create_block();
        let miss = self.b.create_block();
        self.b.ins().brif(ok, hit, &[], miss, &[]);

        self.b.switch_to_block(miss);
        self.b.ins().store(mem(), slot, chain, off::CH_MISS);
        self.b.ins().store(mem(), epoch, chain, off::CH_MISS_EPOCH);
        let c = self.imm(CONTINUE);
        self.b.ins().jump(self.leave, &[c.into()]);

        // Would the run loop stop before the next block?
        self.b.switch_to_block(hit);
        let end = self.end.expect("entry check loads the budget");
        let mut stop = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, ic, end);
        let poll = self.b.ins().uload8(I64, mem(), self.cpu, off::CPU_POLL);
        let c = self.b.ins().icmp_imm_s(IntCC::NotEqual, poll, 0);
        stop = self.b.ins().bor(stop, c);
        if self.full_stop {
            let h = self.b.ins().uload8(I64, mem(), self.cpu, off::CPU_HALTED);
            let bits = self.load64(self.state, off::F_BITS);
            let tf = self.b.ins().band_imm_s(bits, FLAG_TF as i64);
            let dr7 = self.load64(self.state, off::DR7);
            let dr7 = self.b.ins().band_imm_s(dr7, 0xff);
            let any = self.b.ins().bor(h, tf);
            let any = self.b.ins().bor(any, dr7);
            let c = self.b.ins().icmp_imm_s(IntCC::NotEqual, any, 0);
            stop = self.b.ins().bor(stop, c);
            let until = self.load64(self.cpu, off::CPU_INHIBIT);
            let c = self.b.ins().icmp(IntCC::UnsignedLessThan, ic, until);
            stop = self.b.ins().bor(stop, c);
        }
        let go = self.b.create_block();
        let c = self.imm(CONTINUE);
        self.b.ins().brif(stop, self.leave, &[c.into()], go, &[]);

        self.b.switch_to_block(go);
        let next = self.b.ins().load(p, mem(), slot, off::SLOT_NODE);
        self.b.ins().store(mem(), next, self.ctx, off::CTX_NODE);
        let entry = self.b.ins().load(p, mem(), next, off::NODE_ENTRY);
        self.b
            .ins()
            .return_call_indirect(self.sig_block, entry, &[self.ctx]);
    }
}
