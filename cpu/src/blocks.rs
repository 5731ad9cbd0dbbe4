//! Block formation and the decoded-block cache. A block is a run of
//! instructions inside one page (the last may straddle into the next),
//! ending at a control transfer or mode change. Blocks are keyed by the
//! physical address of their first byte and the code size they were decoded for.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::insn::*;
use crate::mmu::Access;
use crate::ops;
use crate::phys::{PhysMem, PAGE_MASK, PG_CODE};
use crate::state::CS;
use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, OpKind as IOp, Register};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

pub struct Block {
    pub insns: Vec<Insn>,
    /// Physical address of the first instruction.
    pub phys: u64,
    /// Physical page of the tail of a straddling last instruction, if any.
    pub phys2: Option<u64>,
    /// Bytes covered, from the first instruction's start.
    pub byte_len: u32,
    pub code_size: u8,
    /// `Cpu::seg_flat` when the block was decoded (0 in 64-bit code): the
    /// JIT specialises the block's accesses on it, checked at run time.
    pub seg_flat: u8,
    /// Decoded at CPL 3: the JIT builds the TLB tags its inline accesses
    /// look for on it, checked at run time.
    pub user: bool,
    /// Blocks that ran right after this one (taken and fall-through of a
    /// branch, recent return targets): the run loop finds its next block
    /// here before trying the jump cache. Same validity rules as a jump
    /// entry; weak, so chained blocks never keep each other alive.
    links: RefCell<[Option<Link>; 2]>,
    /// Run count and compiled code (see `crate::tier`).
    pub jit: crate::tier::JitSlot,
}

impl Block {
    /// The same decoded instructions with no successor links: what the JIT
    /// compiles and keeps, away from the run loop's chaining.
    pub fn unlinked_copy(&self) -> Block {
        Block {
            insns: self.insns.clone(),
            phys: self.phys,
            phys2: self.phys2,
            byte_len: self.byte_len,
            code_size: self.code_size,
            seg_flat: self.seg_flat,
            user: self.user,
            links: RefCell::new([None, None]),
            jit: Default::default(),
        }
    }

    /// True when no successor is recorded (always so for an unlinked copy
    /// that only `exec_block` runs: chaining happens in `fetch_block`).
    pub fn has_no_links(&self) -> bool {
        self.links.borrow().iter().all(|l| l.is_none())
    }
}

/// A direct successor of a block (see `Block::links`).
struct Link {
    lin: u64,
    meta: u64,
    epoch: u64,
    tlb_epoch: u64,
    block: Weak<Block>,
}

const FAST_SLOTS: usize = 4096;
const JUMP_SLOTS: usize = 4096;

/// A block found by linear address, valid while nothing that could change
/// the mapping or the code has happened since (`epoch`).
#[derive(Clone)]
struct JumpEntry {
    lin: u64,
    meta: u64,
    epoch: u64,
    tlb_epoch: u64,
    block: Rc<Block>,
}

#[derive(Default)]
pub struct BlockCache {
    /// Linear-address front cache: skips the fetch translation and the
    /// physical lookup for blocks run again under the same mapping.
    jump: Vec<Option<JumpEntry>>,
    /// Bumped by TLB flushes and code invalidation; stale jump entries die.
    pub epoch: u64,
    map: HashMap<u64, Rc<Block>>,
    fast: Vec<Option<(u64, Rc<Block>)>>,
    /// Physical page -> the blocks touching it.
    by_page: HashMap<u64, CodePage>,
    /// Blocks dropped from the cache while compiled code may still be
    /// running them (a chained block has no other owner): freed by the run
    /// loop between blocks.
    pub(crate) dead: Vec<Rc<Block>>,
}

/// The cached blocks whose bytes lie (partly) in one physical page.
#[derive(Default)]
struct CodePage {
    keys: Vec<u64>,
    /// Bit n: some block has a byte in the page's 64-byte line n. A write
    /// elsewhere in the page (data that shares a page with code) leaves
    /// the blocks alone instead of throwing them all away.
    lines: u64,
}

/// The 64-byte lines of a page that bytes `start..end` (page offsets,
/// `start < end <= 4096`) fall in.
fn line_mask(start: u64, end: u64) -> u64 {
    let (first, last) = (start >> 6, (end - 1) >> 6);
    let n = last - first + 1;
    let m = if n >= 64 { !0 } else { (1u64 << n) - 1 };
    m << first
}

/// The lines of `page` that `b`'s bytes cover (`page` is its first page or
/// the page its last instruction straddles into).
fn block_lines(b: &Block, page: u64) -> u64 {
    let first = b.phys & PAGE_MASK;
    let end = (b.phys & 0xfff) + b.byte_len as u64;
    if page == first {
        line_mask(b.phys & 0xfff, end.min(4096))
    } else {
        line_mask(0, (end - 4096).max(1))
    }
}

/// Offset of the code epoch in `Cpu`, for generated code.
pub const CPU_CODE_EPOCH_OFFSET: usize =
    core::mem::offset_of!(Cpu, cache) + core::mem::offset_of!(BlockCache, epoch);

fn key_of(phys: u64, code_size: u8) -> u64 {
    (phys << 2) | (code_size.trailing_zeros() as u64 & 3)
}

/// Most blocks a region may hold besides its entry.
pub const REGION_MAX: usize = 11;

/// Decode-time addresses where `b` continues when its last instruction is
/// a direct JMP/Jcc (target, and the fall-through of a Jcc; only branches
/// as wide as the code size, whose target the decoder's address gives
/// exactly) or one that goes on to the next (a block cut at a page end).
pub fn static_successors(b: &Block) -> [Option<u64>; 2] {
    let Some(last) = b.insns.last() else {
        return [None, None];
    };
    if last.inst.flow_control() == FlowControl::Next && !last.ends_block {
        return [Some(last.inst.next_ip()), None];
    }
    if last.osize < b.code_size {
        return [None, None];
    }
    match last.inst.flow_control() {
        FlowControl::UnconditionalBranch if last.inst.is_jmp_short_or_near() => {
            [Some(last.inst.near_branch_target()), None]
        }
        FlowControl::ConditionalBranch if last.inst.is_jcc_short_or_near() => [
            Some(last.inst.near_branch_target()),
            Some(last.inst.next_ip()),
        ],
        _ => [None, None],
    }
}

/// Blocks a region entered at `a` may include: cached blocks reached from
/// `a` through direct branches (`static_successors`), breadth first, that
/// lie wholly in `a`'s physical pages (its first, and the one its last
/// instruction straddles into), were decoded at the address the branch
/// names, and have `a`'s code size and segment bits. `flat` says the code
/// runs where RIP is the linear address (64-bit code, or CS with base 0
/// and a 4 GiB limit, which the region's code checks again on entry), and
/// `rip` is where `a` runs now. Then a target's RIP is the entry's plus a
/// constant, in a page whose mapping the entry's fetch has checked, and
/// inside the CS limit: compiled code can go from block to block of the
/// region without the run loop's lookup.
pub fn region_candidates(cache: &BlockCache, a: &Block, flat: bool, rip: u64) -> Vec<Rc<Block>> {
    let Some(ip0) = a.insns.first().map(|i| i.inst.ip()) else {
        return Vec::new();
    };
    if !flat || a.code_size < 4 || ip0 != rip {
        return Vec::new();
    }
    let first = a.phys & PAGE_MASK;
    let page_of = |ip: u64| -> Option<u64> {
        if ip >> 12 == ip0 >> 12 {
            Some(first)
        } else if ip >> 12 == (ip0 >> 12) + 1 {
            a.phys2
        } else {
            None
        }
    };
    let mut out: Vec<Rc<Block>> = Vec::new();
    let mut seen = vec![ip0];
    let mut k = 0;
    loop {
        let from = if k == 0 { a } else { &*out[k - 1] };
        for ip in static_successors(from).into_iter().flatten() {
            if out.len() >= REGION_MAX || seen.contains(&ip) {
                continue;
            }
            seen.push(ip);
            let Some(page) = page_of(ip) else { continue };
            let phys = page | (ip & 0xfff);
            let Some(b) = cache.map.get(&key_of(phys, a.code_size)) else {
                continue;
            };
            // A block straddling into a page `a` does not touch could be
            // changed without `a` (and so the region) being dropped.
            let pages_ok = match b.phys2 {
                None => true,
                Some(p2) => page == first && Some(p2) == a.phys2,
            };
            if pages_ok
                && b.seg_flat == a.seg_flat
                && b.user == a.user
                && b.insns.first().map(|i| i.inst.ip()) == Some(ip)
            {
                out.push(b.clone());
            }
        }
        k += 1;
        if k > out.len() {
            return out;
        }
    }
}

impl BlockCache {
    pub fn clear(&mut self, mem: &mut PhysMem) {
        for &page in self.by_page.keys() {
            mem.set_range_flags(page, 4096, 0, PG_CODE);
        }
        self.dead.extend(self.map.drain().map(|(_, b)| b));
        self.by_page.clear();
        self.fast = vec![None; FAST_SLOTS];
        self.jump = vec![None; JUMP_SLOTS];
        self.epoch += 1;
    }

    #[inline]
    fn lookup(&mut self, key: u64) -> Option<Rc<Block>> {
        let slot = (key as usize >> 2 ^ key as usize >> 12) & (FAST_SLOTS - 1);
        if let Some((k, b)) = &self.fast[slot] {
            if *k == key {
                return Some(b.clone());
            }
        }
        let b = self.map.get(&key)?.clone();
        self.fast[slot] = Some((key, b.clone()));
        Some(b)
    }

    fn insert(&mut self, key: u64, b: Rc<Block>) {
        let pages = [Some(b.phys & PAGE_MASK), b.phys2];
        for page in pages.into_iter().flatten() {
            let cp = self.by_page.entry(page).or_default();
            cp.keys.push(key);
            cp.lines |= block_lines(&b, page);
        }
        self.map.insert(key, b);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Cpu {
    /// RAM bytes `paddr..paddr + len` (within one page, whose `PG_CODE`
    /// flag is set) were written: drop the page's blocks if the write
    /// touches a line holding code, else keep them (the flag stays, so
    /// later writes to the page are checked too).
    pub fn code_page_written(&mut self, paddr: u64, len: u64) {
        let page = paddr & PAGE_MASK;
        let start = paddr & 0xfff;
        let end = (start + len.max(1)).min(4096);
        match self.cache.by_page.get(&page) {
            Some(cp) if cp.lines & line_mask(start, end) == 0 => {}
            _ => self.invalidate_code_page(page),
        }
    }

    /// Drop every block that touches physical page `page` (self-modifying
    /// code, DMA into code). The running block stops after this instruction.
    pub fn invalidate_code_page(&mut self, page: u64) {
        let page = page & PAGE_MASK;
        if let Some(cp) = self.cache.by_page.remove(&page) {
            for k in cp.keys {
                if let Some(b) = self.cache.map.remove(&k) {
                    self.cache.dead.push(b);
                }
                let slot = (k as usize >> 2 ^ k as usize >> 12) & (FAST_SLOTS - 1);
                if matches!(&self.cache.fast[slot], Some((fk, _)) if *fk == k) {
                    self.cache.fast[slot] = None;
                }
            }
        }
        self.mem.set_range_flags(page, 4096, 0, PG_CODE);
        self.cache.epoch += 1;
        self.end_block = true;
    }

    /// True when `b` is the block the cache holds for its address (not a
    /// one-off decode).
    pub(crate) fn is_cached(&self, b: &Rc<Block>) -> bool {
        self.cache
            .map
            .get(&key_of(b.phys, b.code_size))
            .is_some_and(|c| Rc::ptr_eq(c, b))
    }

    /// Forget all decoded code (mode changes that alter decoding are keyed,
    /// but a full flush is the safe answer to e.g. a RAM reload).
    pub fn flush_code_cache(&mut self) {
        self.cache.clear(&mut self.mem);
    }

    fn mark_code_page(&mut self, page: u64) {
        if self.mem.is_ram(page) && self.mem.flags(page).unwrap_or(0) & PG_CODE == 0 {
            self.mem.set_range_flags(page, 4096, PG_CODE, 0);
            self.tlb.drop_direct_writes(page);
        }
    }

    /// Linear address of CS:rip.
    #[inline]
    pub fn code_lin(&self) -> u64 {
        if self.mode64 {
            self.s.rip
        } else {
            (self.s.seg[CS].base.wrapping_add(self.s.rip)) & 0xffff_ffff
        }
    }

    /// The block starting at CS:rip, decoding it if needed.
    pub fn fetch_block(&mut self, bus: &mut dyn Bus) -> Result<Rc<Block>> {
        self.fetch_block_after(bus, None)
    }

    /// The block starting at CS:rip, where `prev` is the block that ran just
    /// before (if any): its links are tried first, and the block found is
    /// linked to it.
    #[inline]
    pub fn fetch_block_after(
        &mut self,
        bus: &mut dyn Bus,
        prev: Option<&Block>,
    ) -> Result<Rc<Block>> {
        let code_size = self.s.code_size();
        let lin = self.code_lin();
        let meta = code_size as u64 | (self.s.cpl as u64) << 8;
        let Some(prev) = prev else {
            if !self.mode64 && self.s.rip > self.s.seg[CS].limit as u64 {
                return Err(Exception::gp0());
            }
            return self.fetch_block_by_lin(bus, lin, meta, code_size);
        };
        // A linked block that fits under the CS limit also proves RIP is
        // within it, so the limit check on its own waits until no link fits.
        {
            let links = prev.links.borrow();
            for l in links.iter().flatten() {
                if l.lin == lin
                    && l.meta == meta
                    && l.epoch == self.cache.epoch
                    && l.tlb_epoch == self.tlb.epoch
                {
                    if let Some(b) = l.block.upgrade() {
                        if self.mode64
                            || self.s.rip + b.byte_len as u64 - 1 <= self.s.seg[CS].limit as u64
                        {
                            return Ok(b);
                        }
                    }
                }
            }
        }
        if !self.mode64 && self.s.rip > self.s.seg[CS].limit as u64 {
            return Err(Exception::gp0());
        }
        let b = self.fetch_block_by_lin(bus, lin, meta, code_size)?;
        if self.mem.is_ram(b.phys) {
            let link = Link {
                lin,
                meta,
                epoch: self.cache.epoch,
                tlb_epoch: self.tlb.epoch,
                block: Rc::downgrade(&b),
            };
            let mut links = prev.links.borrow_mut();
            let live = |l: &Option<Link>| {
                matches!(l, Some(l) if l.epoch == self.cache.epoch
                    && l.tlb_epoch == self.tlb.epoch
                    && l.block.strong_count() != 0)
            };
            // Fill a dead slot; otherwise the older link (slot 1) goes.
            if !live(&links[0]) {
                links[0] = Some(link);
            } else {
                links[1] = links[0].take();
                links[0] = Some(link);
            }
        }
        Ok(b)
    }

    #[inline]
    fn fetch_block_by_lin(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        meta: u64,
        code_size: u8,
    ) -> Result<Rc<Block>> {
        let jslot = ((lin ^ (lin >> 12)) as usize) & (JUMP_SLOTS - 1);
        if let Some(e) = &self.cache.jump[jslot] {
            if e.lin == lin
                && e.meta == meta
                && e.epoch == self.cache.epoch
                && e.tlb_epoch == self.tlb.epoch
                && (self.mode64
                    || self.s.rip + e.block.byte_len as u64 - 1 <= self.s.seg[CS].limit as u64)
            {
                return Ok(e.block.clone());
            }
        }
        let b = self.fetch_block_slow(bus, lin, code_size)?;
        if self.mem.is_ram(b.phys) {
            self.cache.jump[jslot] = Some(JumpEntry {
                lin,
                meta,
                epoch: self.cache.epoch,
                tlb_epoch: self.tlb.epoch,
                block: b.clone(),
            });
        }
        Ok(b)
    }

    fn fetch_block_slow(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        code_size: u8,
    ) -> Result<Rc<Block>> {
        let user = self.user_access();
        let phys = self.translate(lin, Access::Fetch, user)?;
        let key = key_of(phys, code_size);
        if let Some(b) = self.cache.lookup(key) {
            let mut ok = true;
            if let Some(p2) = b.phys2 {
                let next = (lin & PAGE_MASK) + 4096;
                ok = self.translate(next, Access::Fetch, user).ok() == Some(p2);
            }
            if !self.mode64 && self.s.rip + b.byte_len as u64 - 1 > self.s.seg[CS].limit as u64 {
                ok = false;
            }
            if ok {
                return Ok(b);
            }
            // Same start, different tail mapping or limit: decode afresh below
            // without caching over the existing entry.
            return self.decode_block(bus, lin, phys, code_size).map(Rc::new);
        }
        let b = Rc::new(self.decode_block(bus, lin, phys, code_size)?);
        if self.mem.is_ram(phys) {
            self.mark_code_page(phys & PAGE_MASK);
            if let Some(p2) = b.phys2 {
                self.mark_code_page(p2);
            }
            self.cache.insert(key, b.clone());
        }
        Ok(b)
    }

    /// Append `n` code bytes at `phys` (within one page) to `buf`: a
    /// copy from RAM, or byte reads for ROM and device memory.
    fn read_code(&mut self, bus: &mut dyn Bus, phys: u64, n: usize, buf: &mut Vec<u8>) {
        let p = phys & self.mem.a20_mask;
        if self.mem.is_ram(p) && (p & 0xfff) as usize + n <= 0x1000 {
            let a = p as usize;
            buf.extend_from_slice(&self.mem.ram[a..a + n]);
        } else {
            for k in 0..n {
                buf.push(self.phys_read(bus, phys + k as u64, 1) as u8);
            }
        }
    }

    fn decode_block(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        phys: u64,
        code_size: u8,
    ) -> Result<Block> {
        let user = self.user_access();
        let in_page = (4096 - (lin & 0xfff)) as usize;
        // Bytes allowed by the CS limit.
        let max = if self.mode64 {
            usize::MAX
        } else {
            (self.s.seg[CS].limit as u64 - self.s.rip + 1) as usize
        };
        let mut buf = Vec::with_capacity(in_page + 15);
        self.read_code(bus, phys, in_page.min(max), &mut buf);
        let mut tail_phys = None;
        let mut tail_fault = None;
        if in_page < max {
            let next = (lin & PAGE_MASK) + 4096;
            match self.translate(next, Access::Fetch, user) {
                Ok(p2) => {
                    self.read_code(bus, p2, 15.min(max - in_page), &mut buf);
                    tail_phys = Some(p2 & PAGE_MASK);
                }
                Err(e) => tail_fault = Some(e),
            }
        }
        let bitness = code_size as u32 * 8;
        let mut dec = Decoder::with_ip(bitness, &buf, self.s.rip, DecoderOptions::NONE);
        let mut insns = Vec::new();
        let mut inst = Instruction::default();
        let mut pos = 0usize;
        let mut straddles = false;
        while pos < in_page.min(max) {
            dec.decode_out(&mut inst);
            let len = inst.len();
            if inst.is_invalid() {
                let err = dec.last_error();
                if err == iced_x86::DecoderError::NoMoreBytes {
                    // Instruction runs past the page (fetch fault) or the CS limit.
                    if insns.is_empty() {
                        return Err(tail_fault.unwrap_or(Exception::gp0()));
                    }
                    break;
                }
                // Invalid encoding: a #UD instruction of the bytes decoded so far.
                insns.push(build_insn(&inst, code_size, 1.max(len as u8)));
                break;
            }
            if pos + len > in_page {
                straddles = true;
            }
            let insn = build_insn(&inst, code_size, len as u8);
            let ends = insn.ends_block;
            insns.push(insn);
            pos += len;
            if ends || straddles || insns.len() >= 256 {
                break;
            }
        }
        if insns.is_empty() {
            return Err(Exception::gp0());
        }
        Ok(Block {
            insns,
            phys,
            phys2: if straddles { tail_phys } else { None },
            byte_len: pos as u32,
            code_size,
            seg_flat: if self.mode64 { 0 } else { self.seg_flat },
            user: self.s.cpl == 3,
            links: RefCell::new([None, None]),
            jit: Default::default(),
        })
    }
}

/// Build the executable form of one decoded instruction.
pub fn build_insn(inst: &Instruction, code_size: u8, len: u8) -> Insn {
    let mut op = [Operand::default(); 3];
    let mut mem = MemRef {
        base: NO_REG,
        index: NO_REG,
        scale: 1,
        seg: 3,
        disp: 0,
    };
    let mut imm = 0u64;
    let mut imm2 = 0u64;
    let mut asize = code_size;
    let mut nimm = 0;
    for i in 0..inst.op_count().min(3) {
        let k = inst.op_kind(i);
        let o = &mut op[i as usize];
        match k {
            IOp::Register => {
                let r = inst.op_register(i);
                if let Some((idx, hi, size)) = gpr(r) {
                    *o = Operand {
                        kind: OpKind::Reg,
                        reg: idx,
                        hi,
                        size,
                    };
                } else if let Some(s) = seg_index(r) {
                    *o = Operand {
                        kind: OpKind::Seg,
                        reg: s,
                        hi: false,
                        size: 2,
                    };
                } else {
                    *o = Operand {
                        kind: OpKind::Other,
                        reg: r.number() as u8,
                        hi: false,
                        size: r.size() as u8,
                    };
                }
            }
            IOp::Memory => {
                o.kind = OpKind::Mem;
                o.size = inst.memory_size().size() as u8;
                let base = inst.memory_base();
                let index = inst.memory_index();
                mem.seg = seg_index(inst.memory_segment()).unwrap_or(3);
                mem.scale = inst.memory_index_scale() as u8;
                if base == Register::RIP || base == Register::EIP {
                    mem.base = RIP_REL;
                    mem.disp = inst.memory_displacement64().wrapping_sub(inst.next_ip());
                    asize = if base == Register::RIP { 8 } else { 4 };
                } else {
                    mem.disp = inst.memory_displacement64();
                    if base != Register::None {
                        mem.base = base.number() as u8;
                        asize = base.size() as u8;
                    }
                    // XLAT's AL "index" is implicit; its handler adds it.
                    if index != Register::None && index.size() > 1 {
                        mem.index = index.number() as u8;
                        asize = index.size() as u8;
                    }
                    if base == Register::None && index == Register::None {
                        let ds = inst.memory_displ_size();
                        if ds != 0 {
                            asize = ds as u8;
                        }
                    }
                }
            }
            IOp::Immediate8
            | IOp::Immediate16
            | IOp::Immediate32
            | IOp::Immediate64
            | IOp::Immediate8to16
            | IOp::Immediate8to32
            | IOp::Immediate8to64
            | IOp::Immediate32to64
            | IOp::Immediate8_2nd => {
                let v = inst.immediate(i);
                o.kind = OpKind::Imm;
                o.size = match k {
                    IOp::Immediate8 | IOp::Immediate8_2nd => 1,
                    IOp::Immediate16 | IOp::Immediate8to16 => 2,
                    IOp::Immediate32 | IOp::Immediate8to32 => 4,
                    _ => 8,
                };
                if nimm == 0 {
                    imm = v;
                } else {
                    imm2 = v;
                }
                nimm += 1;
            }
            IOp::NearBranch16 | IOp::NearBranch32 | IOp::NearBranch64 => {
                o.kind = OpKind::Imm;
                imm = inst.near_branch_target().wrapping_sub(inst.next_ip());
            }
            IOp::FarBranch16 | IOp::FarBranch32 => {
                o.kind = OpKind::Imm;
                imm = if k == IOp::FarBranch16 {
                    inst.far_branch16() as u64
                } else {
                    inst.far_branch32() as u64
                };
                imm2 = inst.far_branch_selector() as u64;
            }
            IOp::MemorySegSI | IOp::MemorySegDI | IOp::MemoryESDI => {
                o.kind = OpKind::Other;
                o.size = inst.memory_size().size() as u8;
                asize = 2;
                mem.seg = seg_index(inst.memory_segment()).unwrap_or(3);
            }
            IOp::MemorySegESI | IOp::MemorySegEDI | IOp::MemoryESEDI => {
                o.kind = OpKind::Other;
                o.size = inst.memory_size().size() as u8;
                asize = 4;
                mem.seg = seg_index(inst.memory_segment()).unwrap_or(3);
            }
            IOp::MemorySegRSI | IOp::MemorySegRDI | IOp::MemoryESRDI => {
                o.kind = OpKind::Other;
                o.size = inst.memory_size().size() as u8;
                asize = 8;
                mem.seg = seg_index(inst.memory_segment()).unwrap_or(3);
            }
            #[allow(unreachable_patterns)]
            _ => o.kind = OpKind::Other,
        }
    }
    let opc = inst.op_code();
    let addr_sz = opc.address_size();
    if addr_sz != 0 {
        asize = (addr_sz / 8) as u8;
    }
    let osize = {
        let s = opc.operand_size();
        if s != 0 {
            (s / 8) as u8
        } else {
            match op[0].kind {
                OpKind::Reg | OpKind::Mem if op[0].size != 0 => op[0].size,
                _ => code_size.min(4),
            }
        }
    };
    let cc = match inst.condition_code() {
        iced_x86::ConditionCode::None => 0,
        c => c as u8 - 1,
    };
    let rep = if inst.has_repne_prefix() {
        2
    } else if inst.has_rep_prefix() {
        1
    } else {
        0
    };
    let handler = ops::handler_for(inst);
    let ends_block = inst.is_invalid()
        || !matches!(inst.flow_control(), FlowControl::Next)
        || ops::ends_block(inst);
    Insn {
        handler,
        op,
        mem,
        imm,
        imm2,
        len,
        osize,
        asize,
        rep,
        cc,
        ends_block,
        inst: *inst,
    }
}
