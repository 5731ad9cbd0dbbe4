//! Guest memory access from generated code: effective address,
//! segmentation, and the software-TLB hit on RAM (`Cpu::read_mem` /
//! `write_mem`'s fast path). Everything the inline path does not handle
//! sets the `fail` condition that sends the instruction to the interpreter.

use super::Tx;
use crate::runtime::off;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::Endianness;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use leap_cpu::flags::size_mask;
use leap_cpu::insn::{Insn, NO_REG, RIP_REL};
use leap_cpu::mmu::TLB_SIZE;
use leap_cpu::phys::PAGE_MASK;
use leap_cpu::state::{ATTR_DB, FS, SS};

/// Guest RAM: little-endian whatever the host, any alignment.
fn guest() -> MemFlagsData {
    MemFlagsData::new()
        .with_notrap()
        .with_endianness(Endianness::Little)
}

/// Where a checked access goes: the host address is only valid when the
/// guard built from `fail` passed.
pub(super) struct Access {
    pub host: Value,
    pub fail: Value,
}

impl Tx<'_> {
    /// `Cpu::ea`: offset of the memory operand within its segment.
    pub(super) fn ea(&mut self, insn: &Insn) -> Value {
        let m = insn.mem;
        let mut a = self.imm(m.disp);
        if m.base != NO_REG {
            let base = if m.base == RIP_REL {
                self.next_rip(insn)
            } else {
                self.reg(m.base)
            };
            a = self.b.ins().iadd(a, base);
        }
        if m.index != NO_REG {
            let x = self.reg(m.index);
            let x = match m.scale {
                2 => self.b.ins().ishl_imm_s(x, 1),
                4 => self.b.ins().ishl_imm_s(x, 2),
                8 => self.b.ins().ishl_imm_s(x, 3),
                1 => x,
                s => self.b.ins().imul_imm_s(x, s as i64),
            };
            a = self.b.ins().iadd(a, x);
        }
        self.mask_to(a, insn.asize)
    }

    /// `Cpu::seg_lin`: the linear address of `seg:off`, and whether the
    /// segment check fails (the interpreter then raises the fault); None
    /// when no check is needed here.
    fn seg_lin(&mut self, seg: usize, off: Value, size: u8, write: bool) -> (Value, Option<Value>) {
        if self.code64() {
            let lin = if seg >= FS {
                let base = self
                    .b
                    .ins()
                    .load(I64, super::mem(), self.state, off::seg_base(seg));
                self.b.ins().iadd(base, off)
            } else {
                off
            };
            // No canonical check: the interpreter faults on any access
            // with a non-canonical byte before a TLB entry is filled, so
            // such an address never matches a tag (see `tlb`).
            return (lin, None);
        }
        if self.flat_care & (1 << seg) != 0 {
            // Flat (checked with the tag bits, `check_tag_bits`): the
            // linear address is the
            // offset. Only an access running past 4 GiB breaks the limit,
            // and the TLB compare already fails for it: its last byte's
            // page is above 4 GiB, where no entry is without EFER.LMA
            // (which `Cpu::seg_flat` requires clear).
            return (off, None);
        }
        let b = &mut self.b;
        let ok = b
            .ins()
            .uload8(I64, super::mem(), self.cpu, off::CPU_SEG_OK + seg as i32);
        let ok = b.ins().band_imm_s(ok, if write { 2 } else { 1 });
        let denied = b.ins().icmp_imm_s(IntCC::Equal, ok, 0);
        let lo = b.ins().load(
            I64,
            super::mem(),
            self.cpu,
            off::CPU_SEG_LO + 8 * seg as i32,
        );
        let hi = b.ins().load(
            I64,
            super::mem(),
            self.cpu,
            off::CPU_SEG_HI + 8 * seg as i32,
        );
        // `off` is at most 32 bits here, so `end` cannot wrap.
        let end = b.ins().iadd_imm_s(off, size as i64 - 1);
        let below = b.ins().icmp(IntCC::UnsignedLessThan, off, lo);
        let above = b.ins().icmp(IntCC::UnsignedGreaterThan, end, hi);
        let out = b.ins().bor(below, above);
        let fail = b.ins().bor(denied, out);
        let base = b
            .ins()
            .load(I64, super::mem(), self.state, off::seg_base(seg));
        let lin = b.ins().iadd(base, off);
        let lin = super::low_bits(b, lin, 4);
        (lin, Some(fail))
    }

    /// The TLB hit of `read_mem`/`write_mem` for `lin`: host address and
    /// the miss condition (which also covers: page straddle, not direct
    /// RAM).
    ///
    /// One compare decides: the tag of the slot of the access's first byte
    /// against the page of its last byte with the bits the block's CPL
    /// wants (`Tx::tag_bits`; #AC checking is excluded by the entry check).
    /// An access that crosses a page (or runs past 4 GiB in 32-bit code)
    /// looks for a page that slot never holds, and an indirect entry has
    /// `TAG_INDIRECT` set.
    fn tlb(&mut self, lin: Value, size: u8, write: bool) -> Access {
        const _: () = assert!(off::TLBE_SIZE == 32);
        let table = if write {
            off::CPU_TLB_WRITE
        } else {
            off::CPU_TLB_READ
        };
        debug_assert!(self.checks_tags, "the entry checks the tag bits");
        let tag_bits = self.tag_bits();
        let b = &mut self.b;
        // (lin >> 12 & (TLB_SIZE - 1)) * 32, an offset into the table
        // inside `Cpu`.
        let scale = off::TLBE_SIZE.trailing_zeros() as i64;
        let slot = b.ins().ushr_imm_s(lin, 12 - scale);
        let slot = b.ins().band_imm_s(slot, (TLB_SIZE as i64 - 1) << scale);
        let slot = if self.ptr == I64 {
            slot
        } else {
            b.ins().ireduce(self.ptr, slot)
        };
        let e = b.ins().iadd(self.cpu, slot);
        let tag = b.ins().load(I64, super::mem(), e, table + off::TLBE_TAG);
        let last = if size > 1 {
            b.ins().iadd_imm_s(lin, size as i64 - 1)
        } else {
            lin
        };
        let want = b.ins().band_imm_s(last, PAGE_MASK as i64);
        let want = b.ins().bor_imm_s(want, tag_bits as i64);
        let fail = b.ins().icmp(IntCC::NotEqual, tag, want);
        let delta = b
            .ins()
            .load(self.ptr, super::mem(), e, table + off::TLBE_HOST_DELTA);
        let lin = if self.ptr == I64 {
            lin
        } else {
            b.ins().ireduce(self.ptr, lin)
        };
        let host = b.ins().iadd(lin, delta);
        Access { host, fail }
    }

    /// Check an access of `size` bytes at `seg:off` (no guard emitted).
    pub(super) fn check(&mut self, seg: usize, off: Value, size: u8, write: bool) -> Access {
        let (lin, sfail) = self.seg_lin(seg, off, size, write);
        let a = self.tlb(lin, size, write);
        let fail = match sfail {
            Some(f) => self.b.ins().bor(f, a.fail),
            None => a.fail,
        };
        Access { host: a.host, fail }
    }

    pub(super) fn host_load(&mut self, host: Value, size: u8) -> Value {
        let b = &mut self.b;
        match size {
            1 => b.ins().uload8(I64, guest(), host, 0),
            2 => b.ins().uload16(I64, guest(), host, 0),
            4 => b.ins().uload32(guest(), host, 0),
            _ => b.ins().load(I64, guest(), host, 0),
        }
    }

    pub(super) fn host_store(&mut self, host: Value, size: u8, v: Value) {
        let b = &mut self.b;
        match size {
            1 => b.ins().istore8(guest(), v, host, 0),
            2 => b.ins().istore16(guest(), v, host, 0),
            4 => b.ins().istore32(guest(), v, host, 0),
            _ => b.ins().store(guest(), v, host, 0),
        };
    }

    /// Read the instruction's memory operand (`size` bytes), guarded.
    pub(super) fn load_operand(&mut self, insn: &Insn, size: u8) -> Value {
        let off = self.ea(insn);
        let a = self.check(insn.mem.seg as usize, off, size, false);
        self.guard(a.fail);
        self.host_load(a.host, size)
    }

    /// Write the instruction's memory operand, guarded. Nothing may have
    /// changed guest state earlier in the instruction.
    pub(super) fn store_operand(&mut self, insn: &Insn, size: u8, v: Value) {
        let off = self.ea(insn);
        let a = self.check(insn.mem.seg as usize, off, size, true);
        self.guard(a.fail);
        self.host_store(a.host, size, v);
    }

    /// The 16-byte memory operand as `load_mem`/`store_mem` access it: two
    /// 8-byte halves at `ea` and `ea + 8` wrapped to the address size.
    /// Inline only when the halves are contiguous and in one page, so one
    /// segment check over 16 bytes and one TLB entry decide for both.
    /// `aligned` forms also need a 16-aligned linear address: the handler
    /// raises #GP(0) otherwise.
    fn check16(&mut self, insn: &Insn, write: bool, aligned: bool) -> Access {
        let off = self.ea(insn);
        let (lin, sfail) = self.seg_lin(insn.mem.seg as usize, off, 16, write);
        let a = self.tlb(lin, 16, write);
        let mut fail = match sfail {
            Some(f) => self.b.ins().bor(f, a.fail),
            None => a.fail,
        };
        if insn.asize < 8 {
            let last = size_mask(insn.asize) as i64 - 15;
            let wraps = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedGreaterThan, off, last);
            fail = self.b.ins().bor(fail, wraps);
        }
        if aligned {
            let mis = self.b.ins().band_imm_s(lin, 15);
            let mis = self.b.ins().icmp_imm_s(IntCC::NotEqual, mis, 0);
            fail = self.b.ins().bor(fail, mis);
        }
        Access { host: a.host, fail }
    }

    /// Read the 16-byte memory operand, guarded: (low, high) halves.
    pub(super) fn load16(&mut self, insn: &Insn, aligned: bool) -> [Value; 2] {
        let a = self.check16(insn, false, aligned);
        self.guard(a.fail);
        let lo = self.b.ins().load(I64, guest(), a.host, 0);
        let hi = self.b.ins().load(I64, guest(), a.host, 8);
        [lo, hi]
    }

    /// Write the 16-byte memory operand, guarded.
    pub(super) fn store16(&mut self, insn: &Insn, aligned: bool, v: [Value; 2]) {
        let a = self.check16(insn, true, aligned);
        self.guard(a.fail);
        self.b.ins().store(guest(), v[0], a.host, 0);
        self.b.ins().store(guest(), v[1], a.host, 8);
    }

    /// Read-modify-write of the memory operand: both checks up front (as
    /// `modify_op` probes the write before changing anything). Returns the
    /// old value and the host address to store to.
    pub(super) fn rmw_operand(&mut self, insn: &Insn, size: u8) -> (Value, Value) {
        let off = self.ea(insn);
        let seg = insn.mem.seg as usize;
        let r = self.check(seg, off, size, false);
        let w = self.check(seg, off, size, true);
        let fail = self.b.ins().bor(r.fail, w.fail);
        self.guard(fail);
        let old = self.host_load(r.host, size);
        (old, w.host)
    }

    /// True when SS's size is not the one inline stack code assumes: the
    /// code size (a 16-bit stack for 16-bit code, 32-bit for 32-bit;
    /// 64-bit code always has a 64-bit stack).
    fn stack_size_fail(&mut self) -> Option<Value> {
        // A flat SS's size is part of the flat check (`check_tag_bits`).
        if self.code64() || self.flat_care & (1 << SS) != 0 {
            return None;
        }
        let attr = self
            .b
            .ins()
            .uload16(I64, super::mem(), self.state, off::SS_ATTR);
        let db = self.b.ins().band_imm_s(attr, ATTR_DB as i64);
        let cc = if self.code_size == 4 {
            IntCC::Equal
        } else {
            IntCC::NotEqual
        };
        Some(self.b.ins().icmp_imm_s(cc, db, 0))
    }

    /// `Cpu::sp_add` for the assumed stack size.
    pub(super) fn sp_add(&mut self, sp: Value, delta: i64) -> Value {
        let b = &mut self.b;
        match self.code_size {
            2 => {
                let hi = b.ins().band_imm_s(sp, !0xffff);
                let lo = b.ins().iadd_imm_s(sp, delta);
                let lo = b.ins().band_imm_s(lo, 0xffff);
                b.ins().bor(hi, lo)
            }
            4 => {
                let v = b.ins().iadd_imm_s(sp, delta);
                super::low_bits(b, v, 4)
            }
            _ => b.ins().iadd_imm_s(sp, delta),
        }
    }

    /// A stack access of `size` bytes at SP + `delta` (as `push` computes
    /// the new SP, or `pop` reads at SP): returns the check and the
    /// stack pointer after `delta`.
    pub(super) fn stack_check(
        &mut self,
        sp: Value,
        delta: i64,
        size: u8,
        write: bool,
    ) -> (Access, Value) {
        let nsp = self.sp_add(sp, delta);
        let addr = self.mask_to(nsp, self.code_size);
        let a = self.check(SS, addr, size, write);
        let fail = match self.stack_size_fail() {
            Some(f) => self.b.ins().bor(a.fail, f),
            None => a.fail,
        };
        (Access { host: a.host, fail }, nsp)
    }
}
