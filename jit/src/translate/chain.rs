//! Block exits that enter the next compiled block directly.
//!
//! An exit first commits the state (as any exit does), then picks a
//! `ChainSlot`: one of the block's own (a static target), the return
//! stack's guess (RET), or the indirect table entry for the target. The
//! exit tail-calls the chain stub with it. The stub, compiled once per code
//! generation, holds the checks every exit would otherwise repeat: the
//! slot is used only if it describes exactly the block the run loop would
//! pick (target RIP, CS base, code size and CPL, code and TLB epochs, CS
//! limit over the whole block) and the run loop would run that block's
//! code whole (budget for all of it, no poll pending, and for blocks that
//! ran interpreter handlers: not halted, no TF, no DR7 breakpoints, no
//! interrupt shadow). Then the stub tail-calls the successor's code with
//! the context switched to its node. Otherwise it returns to the run loop,
//! leaving the slot's address so the loop can fill it with the block it
//! finds. Keeping this out of every block makes blocks smaller and their
//! compiles faster; at run time it costs one more jump per transition.

use super::{mem, Translator, Tx};
use crate::runtime::{off, CONTINUE};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    AbiParam, Block as IrBlock, Function, InstBuilder, Signature, UserFuncName, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
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
    /// the last instruction counted): write everything back, pick the
    /// slot, and tail-call the shared chain stub, which enters the
    /// successor directly if the slot is valid or returns to the run loop.
    pub(super) fn leave_via(&mut self, target: Value, pick: Pick) {
        debug_assert_eq!(self.ptr, I64, "64-bit hosts only");
        // The node's own slots are the entry block's; an exit from another
        // block of a region looks its successor up in the table.
        let pick = match pick {
            Pick::Own(_) | Pick::Sel(_) if self.member > 0 => Pick::Ind,
            p => p,
        };
        self.writeback();
        let p = self.ptr;
        let node = self.b.ins().load(p, mem(), self.ctx, off::CTX_NODE);
        let slot = match pick {
            Pick::Own(i) => self.own_slot(node, i),
            Pick::Sel(c) => {
                let s0 = self.own_slot(node, 0);
                let s1 = self.own_slot(node, 1);
                self.b.ins().select(c, s0, s1)
            }
            Pick::Ind => {
                let chain = self.b.ins().load(p, mem(), self.cpu, off::CPU_CHAIN);
                self.table_slot(chain, target)
            }
            Pick::Ret => {
                let chain = self.b.ins().load(p, mem(), self.cpu, off::CPU_CHAIN);
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
        let info = self.code_size as i64 | if self.full_stop { STUB_FULL_STOP } else { 0 };
        let info = self.b.ins().iconst(I64, info);
        let stub = self.b.ins().load(p, mem(), self.ctx, off::CTX_STUB);
        self.b
            .ins()
            .return_call_indirect(self.sig_stub, stub, &[self.ctx, slot, info]);
    }
}

fn ld(b: &mut FunctionBuilder, base: Value, o: i32) -> Value {
    b.ins().load(I64, mem(), base, o)
}

/// Continue in a fresh block when `ok`, else branch to `fail`.
fn next_if(b: &mut FunctionBuilder, ok: Value, fail: IrBlock) {
    let pass = b.create_block();
    b.ins().brif(ok, pass, &[], fail, &[]);
    b.switch_to_block(pass);
}

/// `info` argument of the chain stub: the leaving block's code size (low
/// byte), and this bit when it ran interpreter handlers.
pub(crate) const STUB_FULL_STOP: i64 = 1 << 8;

impl Translator {
    /// The chain stub's signature: `(ctx, slot, info) -> u64`, `tail`.
    pub fn stub_signature(&self) -> Signature {
        let mut sig = Signature::new(CallConv::Tail);
        for _ in 0..3 {
            sig.params.push(AbiParam::new(self.ptr));
        }
        sig.returns.push(AbiParam::new(I64));
        sig
    }

    /// The code every block exit tail-calls (one copy per code generation,
    /// so blocks stay small): with RIP and the count already in memory,
    /// use `slot` only if it describes exactly the block the run loop would
    /// pick (target RIP, CS base, code size and CPL, code and TLB epochs,
    /// CS limit over the whole block) and the run loop would run that
    /// block's code whole (budget for all its instructions, no poll
    /// pending, no stale `end_block`, and after interpreter handlers: not
    /// halted, no TF, no DR7 breakpoint, no interrupt shadow). Then enter
    /// the successor with the context switched to its node. On a slot
    /// mismatch, return to the run loop leaving the slot's address, so the
    /// loop can fill it with the block it finds.
    pub fn chain_stub(&self, fctx: &mut FunctionBuilderContext) -> Function {
        let p = self.ptr;
        let mut func =
            Function::with_name_signature(UserFuncName::default(), self.stub_signature());
        let sig_block = func.import_signature(self.signature());
        let mut b = FunctionBuilder::new(&mut func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let prm = b.block_params(entry).to_vec();
        let (ctx, slot, info) = (prm[0], prm[1], prm[2]);
        // Each check branches out on its own, in order: the hit path is
        // predicted through, and only a few values are live at a time, so
        // the stub needs no callee-saved registers (no spills per transition).
        let miss = b.create_block();
        let out = b.create_block();
        let state = b.ins().load(p, mem(), ctx, off::CTX_STATE);
        let cpu = b.ins().load(p, mem(), ctx, off::CTX_CPU);
        let target = ld(&mut b, state, off::RIP);
        let srip = ld(&mut b, slot, off::SLOT_RIP);
        let c = b.ins().icmp(IntCC::Equal, srip, target);
        next_if(&mut b, c, miss);
        let cpl = b.ins().uload8(I64, mem(), state, off::CPL);
        let meta = b.ins().ishl_imm_s(cpl, 8);
        let size = b.ins().band_imm_s(info, 0xff);
        let meta = b.ins().bor(meta, size);
        let smeta = ld(&mut b, slot, off::SLOT_META);
        let c = b.ins().icmp(IntCC::Equal, smeta, meta);
        next_if(&mut b, c, miss);
        let epoch = ld(&mut b, cpu, off::CPU_CODE_EPOCH);
        let sepoch = ld(&mut b, slot, off::SLOT_EPOCH);
        let c = b.ins().icmp(IntCC::Equal, sepoch, epoch);
        next_if(&mut b, c, miss);
        let tlb = ld(&mut b, cpu, off::CPU_TLB_EPOCH);
        let stlb = ld(&mut b, slot, off::SLOT_TLB_EPOCH);
        let c = b.ins().icmp(IntCC::Equal, stlb, tlb);
        next_if(&mut b, c, miss);

        // Outside 64-bit code the slot also needs the same CS base and the
        // whole target block inside CS's limit.
        let is64 = b.ins().icmp_imm_s(IntCC::Equal, size, 8);
        let hit = b.create_block();
        let seg = b.create_block();
        b.ins().brif(is64, hit, &[], seg, &[]);
        b.switch_to_block(seg);
        let base = ld(&mut b, state, off::seg_base(CS));
        let sbase = ld(&mut b, slot, off::SLOT_CS_BASE);
        let c = b.ins().icmp(IntCC::Equal, sbase, base);
        next_if(&mut b, c, miss);
        let last = ld(&mut b, slot, off::SLOT_LAST);
        let end = b.ins().iadd(target, last);
        let lim = b.ins().load(I32, mem(), state, off::CS_LIMIT);
        let lim = b.ins().uextend(I64, lim);
        let c = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, lim);
        b.ins().brif(c, hit, &[], miss, &[]);

        b.switch_to_block(miss);
        let chain = b.ins().load(p, mem(), cpu, off::CPU_CHAIN);
        let epoch = ld(&mut b, cpu, off::CPU_CODE_EPOCH);
        b.ins().store(mem(), slot, chain, off::CH_MISS);
        b.ins().store(mem(), epoch, chain, off::CH_MISS_EPOCH);
        b.ins().jump(out, &[]);

        // Would the run loop stop before the next block, or hand it to the
        // interpreter because the budget ends inside it?
        b.switch_to_block(hit);
        let next = b.ins().load(p, mem(), slot, off::SLOT_NODE);
        let ic = ld(&mut b, cpu, off::CPU_ICOUNT);
        let len = ld(&mut b, next, off::NODE_LEN);
        let budget = b.ins().load(I64, mem(), ctx, off::CTX_END);
        let last = b.ins().iadd(ic, len);
        let last = b.ins().iadd_imm_s(last, -1);
        let c = b.ins().icmp(IntCC::UnsignedLessThan, last, budget);
        next_if(&mut b, c, out);
        let poll = b.ins().uload8(I64, mem(), cpu, off::CPU_POLL);
        let eb = b.ins().uload8(I64, mem(), cpu, off::CPU_END_BLOCK);
        let any = b.ins().bor(poll, eb);
        let c = b.ins().icmp_imm_s(IntCC::Equal, any, 0);
        next_if(&mut b, c, out);
        let go = b.create_block();
        let full = b.create_block();
        let fs = b.ins().band_imm_s(info, STUB_FULL_STOP);
        b.ins().brif(fs, full, &[], go, &[]);
        b.switch_to_block(full);
        let h = b.ins().uload8(I64, mem(), cpu, off::CPU_HALTED);
        let bits = ld(&mut b, state, off::F_BITS);
        let tf = b.ins().band_imm_s(bits, FLAG_TF as i64);
        let dr7 = ld(&mut b, state, off::DR7);
        let dr7 = b.ins().band_imm_s(dr7, 0xff);
        let any = b.ins().bor(h, tf);
        let any = b.ins().bor(any, dr7);
        let c = b.ins().icmp_imm_s(IntCC::Equal, any, 0);
        next_if(&mut b, c, out);
        let until = ld(&mut b, cpu, off::CPU_INHIBIT);
        let c = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, ic, until);
        b.ins().brif(c, go, &[], out, &[]);

        b.switch_to_block(out);
        let cont = b.ins().iconst(I64, CONTINUE as i64);
        b.ins().return_(&[cont]);

        b.switch_to_block(go);
        b.ins().store(mem(), next, ctx, off::CTX_NODE);
        let entry = b.ins().load(p, mem(), next, off::NODE_ENTRY);
        b.ins().return_call_indirect(sig_block, entry, &[ctx]);
        b.seal_all_blocks();
        b.finalize(self.frontend);
        func
    }
}
