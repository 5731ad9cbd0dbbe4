//! Regions: a hot block compiled together with the blocks of its page that
//! it reaches by direct branches and that lead into a loop (a loop of
//! several blocks through it, or one it enters). A branch from one of them to another is a jump inside
//! the host function, with the guest registers still in host registers,
//! instead of an exit through the chain stub and the successor's entry.
//!
//! Each block keeps its own boundaries: before going to the next block,
//! the code checks what the chain stub would (the budget must cover the
//! whole next block; code and mappings unchanged since entry) and leaves
//! for the run loop otherwise, so instruction counts, interrupt points and
//! faults are those of the block-by-block run. Only blocks whose every
//! instruction is inline join a region: helpers could halt, poll devices
//! or change CS, none of which inline code does. A region lives in one
//! physical page, so the page's invalidation (which drops all its blocks,
//! the entry too) retires the whole function.

use super::{flat_plan, gpr_usage, inline_form, mem, Pick, RegSt, Track, Tx};
use crate::runtime::off;
use crate::translate::InlineForm;
use crate::TranslateStats;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{Block as IrBlock, InstBuilder, Value};
use leap_cpu::blocks::{static_successors, Block};
use leap_cpu::insn::Insn;
use leap_cpu::state::CS;
use std::rc::Rc;

/// Which of `near` (`leap_cpu::blocks::region_candidates` of `a`) go into
/// `a`'s region: blocks made only of inline instructions, reachable from
/// `a` and leading into a cycle of such blocks (a loop through `a`, or one
/// that `a` enters). Empty when `a` itself has an instruction that is not
/// inline or leads into no loop.
pub fn region_members(a: &Block, near: &[Rc<Block>]) -> Vec<usize> {
    if near.is_empty() || !all_inline(a) {
        return Vec::new();
    }
    let ip = |b: &Block| b.insns[0].inst.ip();
    // Node 0 is `a`, node i + 1 is near[i]; only inline blocks count.
    let mut nodes: Vec<&Block> = vec![a];
    let mut index: Vec<usize> = vec![usize::MAX];
    for (i, b) in near.iter().enumerate() {
        if !b.insns.is_empty() && all_inline(b) {
            nodes.push(b);
            index.push(i);
        }
    }
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|b| {
            static_successors(b)
                .into_iter()
                .flatten()
                .filter_map(|t| nodes.iter().position(|n| ip(n) == t))
                .collect()
        })
        .collect();
    let n = nodes.len();
    // Forward from `a`.
    let mut fwd = vec![false; n];
    fwd[0] = true;
    let mut stack = vec![0];
    while let Some(x) = stack.pop() {
        for &y in &succ[x] {
            if !fwd[y] {
                fwd[y] = true;
                stack.push(y);
            }
        }
    }
    // Keep what leads to a cycle: drop blocks whose every successor is
    // outside the set until none is left to drop. A block entered from
    // outside a loop (a return point, a function's first block) then gets
    // the loop it leads into, not a function of its own per pass.
    let mut keep = fwd;
    loop {
        let mut shrank = false;
        for x in 0..n {
            if keep[x] && !succ[x].iter().any(|&y| keep[y]) {
                keep[x] = false;
                shrank = true;
            }
        }
        if !shrank {
            break;
        }
    }
    if !keep[0] {
        return Vec::new();
    }
    (1..n).filter(|&x| keep[x]).map(|x| index[x]).collect()
}

fn all_inline(b: &Block) -> bool {
    let n = b.insns.len();
    b.insns
        .iter()
        .enumerate()
        .all(|(k, i)| inline_form(i, k + 1 == n).is_some())
}

/// What the region's code keeps while it runs.
pub(super) struct Region {
    /// Decode-time address, head and instruction count of each block.
    heads: Vec<(u64, IrBlock, usize)>,
    /// The tracking every block starts from, but those below.
    track: Track,
    /// Per block: the one region block that branches to it, if only one
    /// does (and only once).
    single: Vec<Option<usize>>,
    /// For those: the tracking at the branch, once translated.
    inherited: Vec<Option<Track>>,
    /// `JitCtx::end`, the budget; 0 in 32-bit code whose CS is not flat
    /// (then no branch stays inside).
    end: Value,
}

impl Tx<'_> {
    /// Translate a region: `blocks[0]` is the entry, every block is made of
    /// inline instructions only (`region_members`).
    pub(super) fn region_body(&mut self, blocks: &[&Block]) -> TranslateStats {
        let forms: Vec<Vec<InlineForm>> = blocks
            .iter()
            .map(|b| {
                let n = b.insns.len();
                b.insns
                    .iter()
                    .enumerate()
                    .map(|(k, i)| inline_form(i, k + 1 == n).expect("region blocks are inline"))
                    .collect()
            })
            .collect();
        let mut stats = TranslateStats {
            insns: blocks.iter().map(|b| b.insns.len()).sum(),
            inline: 0,
            looping: true,
        };
        stats.inline = stats.insns;
        let mut memory = false;
        let mut care = 0;
        for (b, f) in blocks.iter().zip(&forms) {
            let opt: Vec<Option<InlineForm>> = f.iter().map(|&x| Some(x)).collect();
            memory |= f.iter().zip(&b.insns).any(|(f, i)| f.touches_memory(i));
            care |= flat_plan(b, &opt).0;
        }
        // Every block has the entry's segment bits (`region_candidates`).
        self.flat_care = care;
        self.flat_want = blocks[0].seg_flat & care;
        self.cpl3 = blocks[0].user;
        self.full_stop = false;
        self.entry_loads(memory);
        self.open_region(blocks);
        // A block with one way in from the region starts with the tracking
        // of that way (flags still lazy, registers where they are), so it
        // is translated after its predecessor.
        let single = self.region.as_ref().expect("open region").single.clone();
        let mut done = vec![false; blocks.len()];
        while let Some(m) =
            (0..blocks.len()).find(|&m| !done[m] && single[m].is_none_or(|p| done[p]))
        {
            done[m] = true;
            let (b, f) = (blocks[m], &forms[m]);
            self.member = m;
            if m > 0 {
                let (head, track) = {
                    let r = self.region.as_ref().expect("open region");
                    (r.heads[m].1, r.inherited[m].unwrap_or(r.track))
                };
                self.b.switch_to_block(head);
                self.t = track;
            }
            let mut ended = false;
            for (k, (insn, &form)) in b.insns.iter().zip(f).enumerate() {
                if self.inline(k, insn, form) {
                    ended = true;
                    break;
                }
            }
            if !ended {
                // Fall-through after an inline instruction (page end, size cap).
                let next = self.rip_now();
                let ip = b
                    .insns
                    .last()
                    .expect("a block has instructions")
                    .inst
                    .next_ip();
                match self.head_of(ip) {
                    Some(j) => self.edge(next, j, Pick::Own(0), false),
                    None => self.leave_for(next, Pick::Own(0), false),
                }
            }
        }
        stats
    }

    /// Load what the region uses, then make one head per block. Every head
    /// starts from the same tracking: the registers some block uses held
    /// in variables (those some block writes as dirty, so exits store
    /// them), the flags in memory, RIP in the `rip` variable.
    fn open_region(&mut self, blocks: &[&Block]) {
        let (mut used, mut written) = (0u16, 0u16);
        for b in blocks {
            let (u, w) = gpr_usage(b);
            used |= u;
            written |= w;
        }
        let _ = self.rip_now();
        for r in 0..16u8 {
            if used & (1 << r) != 0 {
                self.reg(r);
            }
        }
        let mut end = self.b.ins().load(I64, mem(), self.ctx, off::CTX_END);
        // CS base 0 and a 4 GiB limit: RIP is the linear address, and no
        // target in the page can be past the limit. Otherwise a budget of
        // 0 makes every edge leave.
        if self.code_size != 8 {
            let b = &mut self.b;
            let base = b.ins().load(I64, mem(), self.state, off::seg_base(CS));
            let lim = b.ins().load(I32, mem(), self.state, off::CS_LIMIT);
            let lim = b.ins().uextend(I64, lim);
            let lim = b.ins().bxor_imm_s(lim, 0xffff_ffff);
            let any = b.ins().bor(base, lim);
            let zero = b.ins().iconst(I64, 0);
            end = b.ins().select(any, zero, end);
        }
        let heads: Vec<(u64, IrBlock, usize)> = blocks
            .iter()
            .map(|b| (b.insns[0].inst.ip(), self.b.create_block(), b.insns.len()))
            .collect();
        self.b.ins().jump(heads[0].1, &[]);
        self.b.switch_to_block(heads[0].1);
        for r in 0..16 {
            if written & (1 << r) != 0 && self.t.gst[r] == RegSt::Clean {
                self.t.gst[r] = RegSt::Dirty;
            }
        }
        // Ways into each block from the region's blocks (the entry also
        // has the function's own).
        let mut ways = vec![0usize; blocks.len()];
        let mut from = vec![0usize; blocks.len()];
        for (i, b) in blocks.iter().enumerate() {
            for t in static_successors(b).into_iter().flatten() {
                if let Some(j) = heads.iter().position(|h| h.0 == t) {
                    ways[j] += 1;
                    from[j] = i;
                }
            }
        }
        let single = (0..blocks.len())
            .map(|j| (j > 0 && ways[j] == 1).then_some(from[j]))
            .collect();
        self.region = Some(Region {
            inherited: vec![None; blocks.len()],
            single,
            heads,
            track: self.t,
            end,
        });
    }

    /// The region block that starts at decode-time address `ip`.
    fn head_of(&self, ip: u64) -> Option<usize> {
        let r = self.region.as_ref()?;
        r.heads.iter().position(|h| h.0 == ip)
    }

    /// JMP/Jcc rel ending a region block (`taken`: Jcc's condition): a
    /// successor in the region is entered by `edge`, any other is left for
    /// as usual. False (nothing emitted) when neither successor is in it.
    pub(super) fn region_branch(&mut self, insn: &Insn, taken: Option<Value>) -> bool {
        if insn.osize < self.code_size {
            return false;
        }
        let jt = self.head_of(insn.inst.near_branch_target());
        let jf = match taken {
            Some(_) => self.head_of(insn.inst.next_ip()),
            None => None,
        };
        if jt.is_none() && jf.is_none() {
            return false;
        }
        let next = self.next_rip(insn);
        let target = self.b.ins().iadd_imm_s(next, insn.imm as i64);
        let target = self.mask_to(target, insn.osize);
        let Some(c) = taken else {
            self.edge(target, jt.expect("a head"), Pick::Own(0), true);
            return true;
        };
        let tb = self.b.create_block();
        let fb = self.b.create_block();
        self.b.ins().brif(c, tb, &[], fb, &[]);
        let saved = self.t;
        self.b.switch_to_block(tb);
        match jt {
            Some(j) => self.edge(target, j, Pick::Own(0), true),
            None => self.exit_checked(target, Pick::Own(0)),
        }
        self.t = saved;
        self.b.switch_to_block(fb);
        match jf {
            Some(j) => self.edge(next, j, Pick::Own(1), true),
            None => self.exit_to(next, Pick::Own(1)),
        }
        self.t = saved;
        true
    }

    /// Leave for `target` after the #GP check a branch out of the region
    /// needs (`Cpu::branch_to`).
    fn exit_checked(&mut self, target: Value, pick: Pick) {
        let bad = self.branch_bad(target);
        let gp = self.b.create_block();
        let ok = self.b.create_block();
        self.b.ins().brif(bad, gp, &[], ok, &[]);
        self.b.switch_to_block(gp);
        self.writeback();
        let v = self.imm(leap_cpu::exception::GP as u64);
        let z = self.imm(0);
        let one = self.imm(1);
        let r = self.call(off::H_RAISE, self.sig_raise, &[self.ctx, v, z, one]);
        self.b.ins().jump(self.leave, &[r.into()]);
        self.b.switch_to_block(ok);
        self.exit_to(target, pick);
    }

    /// The code goes on to region block `j` at `target`, after a branch
    /// not counted yet (`branch`) or after the block's last instruction:
    /// go there unless the run loop would stop first or hand the block to
    /// the interpreter (budget); in that case leave for it through `pick`.
    ///
    /// The code and TLB epochs need no check: only inline code runs
    /// between entry and here, and everything that bumps them (a store
    /// into a code page, a TLB flush) is a slow path or helper, which
    /// leaves the function.
    fn edge(&mut self, target: Value, j: usize, pick: Pick, branch: bool) {
        let (head, track, inherit, taken, end, len) = {
            let r = self.region.as_ref().expect("open region");
            (
                r.heads[j].1,
                r.track,
                r.single[j].is_some(),
                r.inherited[j].is_some(),
                r.end,
                r.heads[j].2,
            )
        };
        if inherit && taken {
            // Counted as the only way in, yet a second one: leave instead
            // (never expected; `open_region` counts every direct branch).
            debug_assert!(false, "a second branch to region block {j}");
            self.leave_for(target, pick, branch);
            return;
        }
        let saved = self.t;
        let ic = self.b.use_var(self.v.ic);
        // The count after the branch, and after block j's last instruction
        // but one (the run loop's condition for running a block whole).
        let ic_next = self
            .b
            .ins()
            .iadd_imm_s(ic, self.t.ic_add as i64 + branch as i64);
        let last = self.b.ins().iadd_imm_s(ic_next, len as i64 - 1);
        let stop = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, last, end);
        let out = self.b.create_block();
        let again = self.b.create_block();
        self.b.ins().brif(stop, out, &[], again, &[]);

        self.b.switch_to_block(out);
        self.leave_for(target, pick, branch);

        // Bring the tracking to the heads': registers a head does not hold
        // as dirty go to memory, the flags record too.
        self.b.switch_to_block(again);
        self.t = saved;
        if inherit {
            // The only way in: the head takes this tracking as it is, RIP
            // and the count as every head has them.
            let t = Track {
                gst: self.t.gst,
                fl: self.t.fl,
                ..track
            };
            self.region.as_mut().expect("open region").inherited[j] = Some(t);
        } else {
            self.reconcile_with_head(&track);
        }
        self.b.def_var(self.v.ic, ic_next);
        self.b.def_var(self.v.rip, target);
        self.b.ins().jump(head, &[]);
        self.t = saved;
    }

    /// Leave the region for `target`: after a branch not counted yet
    /// (`branch`), or after a block's last instruction.
    fn leave_for(&mut self, target: Value, pick: Pick, branch: bool) {
        if branch {
            self.exit_to(target, pick);
        } else {
            self.t.rip_val = Some(target);
            self.leave_via(target, pick);
        }
    }
}
