//! Linear-to-physical translation: the page walker (2-level, PAE, 4-level),
//! the software TLB, and the segmented/linear access paths the instruction
//! handlers use.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result, AC, PF};
use crate::phys::{PAGE_MASK, PG_CODE, PG_HOLE, PG_ROM};
use crate::state::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Entries per access type, direct-mapped by linear page. With 256 the
/// i386 Linux boot filled 2.27 M entries, with 1024 0.41 M (amd64: 3.58 M
/// and 1.49 M); a flush clears 3 x 1024 tags, about 16-19 k flushes a boot.
pub const TLB_SIZE: usize = 1024;
pub const TAG_VALID: u64 = 1;
pub const TAG_USER: u64 = 2;
/// Set in the tag of an entry whose page is not RAM the fast paths may
/// touch directly for this access type (MMIO, ROM or code for writes):
/// the fast paths compare the whole tag, so one compare covers both the
/// translation and directness.
pub const TAG_INDIRECT: u64 = 4;

/// 32 bytes, so generated code finds an entry with a shift and a mask.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
pub struct TlbEntry {
    /// Linear page | TAG_INDIRECT | TAG_USER (filled for a CPL3 access) |
    /// TAG_VALID.
    pub tag: u64,
    /// Physical page base.
    pub paddr: u64,
    /// For a direct entry: the host address of the page's RAM minus the
    /// linear page (wrapping), so generated code finds an access's host
    /// address with one add to the linear address. Meaningless otherwise
    /// (the tag compare already fails).
    pub host_delta: u64,
    pub global: bool,
}

pub struct Tlb {
    /// Bumped by every flush (code found by linear address must be re-checked).
    pub epoch: u64,
    /// Held inside `Cpu` (not boxed), so generated code reaches an entry
    /// at a constant offset from the one CPU pointer it keeps.
    pub read: [TlbEntry; TLB_SIZE],
    pub write: [TlbEntry; TLB_SIZE],
    pub fetch: [TlbEntry; TLB_SIZE],
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            epoch: 0,
            read: [TlbEntry::default(); TLB_SIZE],
            write: [TlbEntry::default(); TLB_SIZE],
            fetch: [TlbEntry::default(); TLB_SIZE],
        }
    }
}

impl Tlb {
    pub fn flush_all(&mut self) {
        self.epoch += 1;
        for t in [&mut self.read, &mut self.write, &mut self.fetch] {
            t.iter_mut().for_each(|e| e.tag = 0);
        }
    }
    pub fn flush_nonglobal(&mut self) {
        self.epoch += 1;
        for t in [&mut self.read, &mut self.write, &mut self.fetch] {
            t.iter_mut().filter(|e| !e.global).for_each(|e| e.tag = 0);
        }
    }
    pub fn flush_page(&mut self, lin: u64) {
        self.epoch += 1;
        let i = ((lin >> 12) as usize) & (TLB_SIZE - 1);
        let page = lin & PAGE_MASK;
        for t in [&mut self.read, &mut self.write, &mut self.fetch] {
            if t[i].tag & PAGE_MASK == page {
                t[i].tag = 0;
            }
        }
    }
    /// A page became a code page: no write entry may bypass the check.
    pub fn drop_direct_writes(&mut self, ppage: u64) {
        self.write
            .iter_mut()
            .filter(|e| e.paddr == ppage)
            .for_each(|e| e.tag |= TAG_INDIRECT);
    }
    #[inline]
    fn slot(lin: u64) -> usize {
        ((lin >> 12) as usize) & (TLB_SIZE - 1)
    }
}

#[inline]
fn tag_of(lin: u64, user: bool) -> u64 {
    (lin & PAGE_MASK) | if user { TAG_USER } else { 0 } | TAG_VALID
}

/// Result of a page walk.
struct Walk {
    paddr: u64,
    global: bool,
}

const PTE_P: u64 = 1;
const PTE_RW: u64 = 2;
const PTE_US: u64 = 4;
const PTE_A: u64 = 0x20;
const PTE_D: u64 = 0x40;
const PTE_PS: u64 = 0x80;
const PTE_G: u64 = 0x100;
const PTE_NX: u64 = 1 << 63;

impl Cpu {
    pub fn paging(&self) -> bool {
        self.s.cr0 & CR0_PG != 0
    }

    fn pf(&mut self, lin: u64, err: u32) -> Exception {
        self.s.cr2 = lin;
        Exception::with_code(PF, err)
    }

    fn read_pte(&mut self, addr: u64, wide: bool) -> u64 {
        let a = addr & self.mem.a20_mask;
        if self.mem.is_ram(a) && a + 8 <= self.mem.size() {
            if wide {
                self.mem.read_ram(a, 8)
            } else {
                self.mem.read_ram(a, 4)
            }
        } else {
            0
        }
    }

    fn write_pte(&mut self, addr: u64, wide: bool, v: u64) {
        let a = addr & self.mem.a20_mask;
        if self.mem.is_ram(a) && a + 8 <= self.mem.size() {
            self.mem.write_ram(a, if wide { 8 } else { 4 }, v);
            if self.mem.flags(a).unwrap_or(0) & PG_CODE != 0 {
                self.code_page_written(a, if wide { 8 } else { 4 });
            }
        }
    }

    /// Walk the page tables. `user` is a CPL3 access (implicit supervisor
    /// accesses such as descriptor-table reads pass false).
    fn walk(&mut self, lin: u64, acc: Access, user: bool) -> Result<Walk> {
        let wp = self.s.cr0 & CR0_WP != 0;
        let nxe = self.s.efer & EFER_NXE != 0;
        let write = acc == Access::Write;
        let mut err: u32 = (write as u32) << 1 | (user as u32) << 2;
        let pae = self.s.cr4 & CR4_PAE != 0;
        if pae && nxe && acc == Access::Fetch {
            err |= 1 << 4;
        }
        // Collect entries from the top level down.
        let mut entries: [(u64, u64); 4] = [(0, 0); 4];
        let mut n = 0;
        let (leaf, page_size): (u64, u64);
        // Entry bits from MAXPHYADDR (CPUID 0x80000008) to 62 are reserved,
        // and bit 63 too unless EFER.NXE.
        let above_phys = !((1u64 << crate::cpuid::PHYS_ADDR_BITS) - 1);
        let rsvd_hi: u64 = if nxe {
            above_phys & !PTE_NX
        } else {
            above_phys
        };
        if !pae {
            let pde_addr = (self.s.cr3 & 0xffff_f000) | ((lin >> 20) & 0xffc);
            let pde = self.read_pte(pde_addr, false);
            if pde & PTE_P == 0 {
                return Err(self.pf(lin, err));
            }
            entries[n] = (pde_addr, pde);
            n += 1;
            if pde & PTE_PS != 0 && self.s.cr4 & CR4_PSE != 0 {
                // 4 MiB page; bits 13-20 are physical address bits 32-39 (PSE-36).
                if pde & (1 << 21) != 0 {
                    return Err(self.pf(lin, err | 1 | 8));
                }
                leaf = (pde & 0xffc0_0000) | ((pde >> 13) & 0xff) << 32;
                page_size = 4 << 20;
            } else {
                let pte_addr = (pde & 0xffff_f000) | ((lin >> 10) & 0xffc);
                let pte = self.read_pte(pte_addr, false);
                if pte & PTE_P == 0 {
                    return Err(self.pf(lin, err));
                }
                entries[n] = (pte_addr, pte);
                n += 1;
                leaf = pte & 0xffff_f000;
                page_size = 4096;
            }
        } else {
            let long = self.s.efer & EFER_LMA != 0;
            let mut table;
            let mut level;
            if long {
                table = self.s.cr3 & 0x000f_ffff_ffff_f000;
                level = 4;
            } else {
                let pdpte = self.s.pdpte[((lin >> 30) & 3) as usize];
                if pdpte & PTE_P == 0 {
                    return Err(self.pf(lin, err));
                }
                if pdpte & (0x1e6 | rsvd_hi | PTE_NX) != 0 {
                    return Err(self.pf(lin, err | 1 | 8));
                }
                table = pdpte & 0x000f_ffff_ffff_f000;
                level = 2;
            }
            loop {
                let shift = 12 + 9 * (level - 1);
                let addr = table | ((lin >> shift) & 0x1ff) << 3;
                let e = self.read_pte(addr, true);
                if e & PTE_P == 0 {
                    return Err(self.pf(lin, err));
                }
                let mut rsvd = e & rsvd_hi;
                if long && level == 4 {
                    rsvd |= e & PTE_PS;
                }
                let big = level > 1 && e & PTE_PS != 0;
                if big {
                    // Large page: address bits below the page size must be zero (bit 12 is PAT).
                    rsvd |= e & (((1u64 << shift) - 1) & !0x1fff) & 0x000f_ffff_ffff_f000;
                    if level == 3 && !long {
                        rsvd |= PTE_PS;
                    }
                }
                if rsvd != 0 {
                    return Err(self.pf(lin, err | 1 | 8));
                }
                entries[n] = (addr, e);
                n += 1;
                if level == 1 || big {
                    leaf = e & 0x000f_ffff_ffff_f000 & !((1u64 << shift) - 1);
                    page_size = 1u64 << shift;
                    break;
                }
                table = e & 0x000f_ffff_ffff_f000;
                level -= 1;
            }
        }
        // Combine permissions across levels.
        let mut rw = true;
        let mut us = true;
        let mut nx = false;
        for &(_, e) in &entries[..n] {
            rw &= e & PTE_RW != 0;
            us &= e & PTE_US != 0;
            nx |= nxe && e & PTE_NX != 0;
        }
        let denied =
            (user && !us) || (write && !rw && (user || wp)) || (acc == Access::Fetch && nx);
        if denied {
            return Err(self.pf(lin, err | 1));
        }
        // Accessed bits on every level, Dirty on the leaf for writes.
        let wide = pae;
        for (i, &(addr, e)) in entries[..n].iter().enumerate() {
            let mut ne = e | PTE_A;
            if i == n - 1 && write {
                ne |= PTE_D;
            }
            if ne != e {
                self.write_pte(addr, wide, ne);
            }
        }
        let last = entries[n - 1].1;
        let global = last & PTE_G != 0 && self.s.cr4 & CR4_PGE != 0;
        Ok(Walk {
            paddr: (leaf | (lin & (page_size - 1))) & PAGE_MASK,
            global,
        })
    }

    /// Translate a linear address, filling the TLB. Returns the physical address.
    pub fn translate(&mut self, lin: u64, acc: Access, user: bool) -> Result<u64> {
        let tag = tag_of(lin, user);
        let i = Tlb::slot(lin);
        let e = match acc {
            Access::Read => &self.tlb.read[i],
            Access::Write => &self.tlb.write[i],
            Access::Fetch => &self.tlb.fetch[i],
        };
        if e.tag & !TAG_INDIRECT == tag {
            return Ok(e.paddr | (lin & 0xfff));
        }
        let (ppage, global) = if self.paging() {
            let w = self.walk(lin, acc, user)?;
            (w.paddr, w.global)
        } else {
            ((lin & PAGE_MASK & 0xffff_ffff) & self.mem.a20_mask, false)
        };
        let flags = self.mem.flags(ppage);
        let ram = matches!(flags, Some(f) if f & PG_HOLE == 0);
        let direct = match acc {
            Access::Write => ram && flags.unwrap_or(0) & (PG_ROM | PG_CODE) == 0,
            _ => ram,
        };
        // RAM is allocated once for the CPU's life, so the host address
        // of a direct page stays valid until the entry is replaced.
        let host_page = (self.mem.ram.as_ptr() as u64).wrapping_add(ppage);
        let entry = TlbEntry {
            tag: tag | if direct { 0 } else { TAG_INDIRECT },
            paddr: ppage,
            host_delta: host_page.wrapping_sub(lin & PAGE_MASK),
            global,
        };
        match acc {
            Access::Read => self.tlb.read[i] = entry,
            Access::Fetch => self.tlb.fetch[i] = entry,
            Access::Write => self.tlb.write[i] = entry,
        }
        Ok(ppage | (lin & 0xfff))
    }

    // ---- physical accesses -------------------------------------------------

    pub fn phys_read(&mut self, bus: &mut dyn Bus, paddr: u64, size: u8) -> u64 {
        let paddr = paddr & self.mem.a20_mask;
        if (paddr & 0xfff) + size as u64 > 0x1000 {
            let mut v = 0;
            for k in 0..size as u64 {
                v |= self.phys_read(bus, paddr + k, 1) << (8 * k);
            }
            return v;
        }
        if self.mem.is_ram(paddr) {
            self.mem.read_ram(paddr, size)
        } else {
            self.poll = true;
            bus.sync_time(self.icount);
            bus.mmio_read(paddr, size)
        }
    }

    pub fn phys_write(&mut self, bus: &mut dyn Bus, paddr: u64, size: u8, v: u64) {
        let paddr = paddr & self.mem.a20_mask;
        if (paddr & 0xfff) + size as u64 > 0x1000 {
            for k in 0..size as u64 {
                self.phys_write(bus, paddr + k, 1, v >> (8 * k));
            }
            return;
        }
        match self.mem.flags(paddr) {
            Some(f) if f & PG_HOLE == 0 => {
                if f & PG_ROM != 0 {
                    return;
                }
                self.mem.write_ram(paddr, size, v);
                if f & PG_CODE != 0 {
                    self.code_page_written(paddr, size as u64);
                }
            }
            _ => {
                self.poll = true;
                bus.sync_time(self.icount);
                bus.mmio_write(paddr, size, v)
            }
        }
    }

    // ---- linear accesses ---------------------------------------------------

    #[inline]
    pub fn read_lin(&mut self, bus: &mut dyn Bus, lin: u64, size: u8, user: bool) -> Result<u64> {
        if (lin & 0xfff) + size as u64 <= 0x1000 {
            let e = &self.tlb.read[Tlb::slot(lin)];
            if e.tag == tag_of(lin, user) {
                return Ok(self.mem.read_ram(e.paddr | (lin & 0xfff), size));
            }
            let p = self.translate(lin, Access::Read, user)?;
            return Ok(self.phys_read(bus, p, size));
        }
        // Split access: translate both pages before touching anything.
        let first = 0x1000 - (lin & 0xfff);
        let p1 = self.translate(lin, Access::Read, user)?;
        let p2 = self.translate(lin + first, Access::Read, user)?;
        let mut v = 0u64;
        for k in 0..size as u64 {
            let p = if k < first { p1 + k } else { p2 + (k - first) };
            v |= self.phys_read(bus, p, 1) << (8 * k);
        }
        Ok(v)
    }

    #[inline]
    pub fn write_lin(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        size: u8,
        v: u64,
        user: bool,
    ) -> Result<()> {
        if (lin & 0xfff) + size as u64 <= 0x1000 {
            let e = &self.tlb.write[Tlb::slot(lin)];
            if e.tag == tag_of(lin, user) {
                self.mem.write_ram(e.paddr | (lin & 0xfff), size, v);
                return Ok(());
            }
            let p = self.translate(lin, Access::Write, user)?;
            self.phys_write(bus, p, size, v);
            return Ok(());
        }
        let first = 0x1000 - (lin & 0xfff);
        let p1 = self.translate(lin, Access::Write, user)?;
        let p2 = self.translate(lin + first, Access::Write, user)?;
        for k in 0..size as u64 {
            let p = if k < first { p1 + k } else { p2 + (k - first) };
            self.phys_write(bus, p, 1, v >> (8 * k));
        }
        Ok(())
    }

    /// Check a write to a linear range will succeed, without writing.
    pub fn probe_write_lin(&mut self, lin: u64, size: u8, user: bool) -> Result<()> {
        self.translate(lin, Access::Write, user)?;
        let last = lin.wrapping_add(size as u64 - 1);
        if last & PAGE_MASK != lin & PAGE_MASK {
            self.translate(last, Access::Write, user)?;
        }
        Ok(())
    }

    // ---- segmented accesses ------------------------------------------------

    #[inline]
    pub fn user_access(&self) -> bool {
        self.s.cpl == 3
    }

    /// Segmentation: check the access against the segment's limit and type and
    /// return the linear address.
    #[inline]
    pub fn seg_lin(&self, seg: usize, off: u64, size: u8, write: bool) -> Result<u64> {
        if self.mode64 {
            let base = if seg >= FS { self.s.seg[seg].base } else { 0 };
            let lin = base.wrapping_add(off);
            // Every byte must be canonical: no TLB entry is ever filled for
            // a non-canonical page, which the JIT's tag compare relies on.
            if !canonical(lin) || !canonical(lin.wrapping_add(size as u64 - 1)) {
                return Err(if seg == SS {
                    Exception::ss(0)
                } else {
                    Exception::gp0()
                });
            }
            return Ok(lin);
        }
        let ok = self.seg_ok[seg] & if write { 2 } else { 1 } != 0;
        let end = off.wrapping_add(size as u64 - 1);
        let in_limit = off >= self.seg_lo[seg] && end <= self.seg_hi[seg] && end >= off;
        if !ok || !in_limit {
            return Err(if seg == SS {
                Exception::ss(0)
            } else {
                Exception::gp0()
            });
        }
        Ok(self.s.seg[seg].base.wrapping_add(off) & 0xffff_ffff)
    }

    #[inline]
    fn check_align(&self, lin: u64, size: u8) -> Result<()> {
        if size > 1
            && lin & (size as u64 - 1) != 0
            && self.s.cpl == 3
            && self.s.cr0 & CR0_AM != 0
            && self.s.flags.raw_bits() & FLAG_AC != 0
        {
            return Err(Exception::with_code(AC, 0));
        }
        Ok(())
    }

    /// Read seg:off. The TLB hit on RAM within one page is inlined into
    /// the handlers; everything else goes through `read_lin`.
    #[inline(always)]
    pub fn read_mem(&mut self, bus: &mut dyn Bus, seg: usize, off: u64, size: u8) -> Result<u64> {
        let lin = self.seg_lin(seg, off, size, false)?;
        self.check_align(lin, size)?;
        let user = self.user_access();
        if (lin & 0xfff) + size as u64 <= 0x1000 {
            let e = &self.tlb.read[Tlb::slot(lin)];
            if e.tag == tag_of(lin, user) {
                return Ok(self.mem.read_ram(e.paddr | (lin & 0xfff), size));
            }
        }
        self.read_lin_outlined(bus, lin, size, user)
    }

    #[inline(never)]
    fn read_lin_outlined(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        size: u8,
        user: bool,
    ) -> Result<u64> {
        self.read_lin(bus, lin, size, user)
    }

    /// Write seg:off, with the TLB hit inlined as for `read_mem`.
    #[inline(always)]
    pub fn write_mem(
        &mut self,
        bus: &mut dyn Bus,
        seg: usize,
        off: u64,
        size: u8,
        v: u64,
    ) -> Result<()> {
        let lin = self.seg_lin(seg, off, size, true)?;
        self.check_align(lin, size)?;
        let user = self.user_access();
        if (lin & 0xfff) + size as u64 <= 0x1000 {
            let e = &self.tlb.write[Tlb::slot(lin)];
            if e.tag == tag_of(lin, user) {
                self.mem.write_ram(e.paddr | (lin & 0xfff), size, v);
                return Ok(());
            }
        }
        self.write_lin_outlined(bus, lin, size, v, user)
    }

    #[inline(never)]
    fn write_lin_outlined(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        size: u8,
        v: u64,
        user: bool,
    ) -> Result<()> {
        self.write_lin(bus, lin, size, v, user)
    }

    /// For string instructions: how many `size`-byte elements from seg:off
    /// upwards (at most `max`) read or write RAM directly, and the RAM
    /// offset of the first. That is, all of them pass the segment checks
    /// without wrapping at the address size `amask`, need no alignment
    /// check, and sit in one page with a direct TLB entry; every one of
    /// them would take `read_mem`/`write_mem`'s fast path. None when not
    /// even the first does (the caller then takes the ordinary path).
    #[inline]
    pub fn direct_span(
        &self,
        seg: usize,
        off: u64,
        size: u8,
        amask: u64,
        max: u64,
        write: bool,
    ) -> Option<(usize, u64)> {
        if self.mode64 || self.seg_ok[seg] & if write { 2 } else { 1 } == 0 {
            return None;
        }
        let sz = size as u64;
        if off < self.seg_lo[seg] || off > self.seg_hi[seg].min(amask) {
            return None;
        }
        let lin = self.s.seg[seg].base.wrapping_add(off) & 0xffff_ffff;
        if sz > 1
            && self.s.cpl == 3
            && self.s.cr0 & CR0_AM != 0
            && self.s.flags.raw_bits() & FLAG_AC != 0
        {
            return None;
        }
        let room = (self.seg_hi[seg].min(amask) - off + 1)
            .min(0x1000 - (lin & 0xfff))
            .min(0x1_0000_0000 - lin);
        let n = (room / sz).min(max);
        if n == 0 {
            return None;
        }
        let i = Tlb::slot(lin);
        let e = if write {
            &self.tlb.write[i]
        } else {
            &self.tlb.read[i]
        };
        if e.tag != tag_of(lin, self.user_access()) {
            return None;
        }
        Some(((e.paddr | (lin & 0xfff)) as usize, n))
    }

    /// Fail now if a later write of `size` bytes at seg:off would fault.
    pub fn probe_write(&mut self, seg: usize, off: u64, size: u8) -> Result<()> {
        let lin = self.seg_lin(seg, off, size, true)?;
        self.check_align(lin, size)?;
        let user = self.user_access();
        self.probe_write_lin(lin, size, user)
    }

    /// Supervisor-level (implicit) linear read, as for descriptor tables.
    pub fn read_sys(&mut self, bus: &mut dyn Bus, lin: u64, size: u8) -> Result<u64> {
        self.read_lin(bus, lin, size, false)
    }

    pub fn write_sys(&mut self, bus: &mut dyn Bus, lin: u64, size: u8, v: u64) -> Result<()> {
        self.write_lin(bus, lin, size, v, false)
    }

    /// Read guest memory for debugging/tracing without side effects on faults.
    pub fn peek_lin(&mut self, bus: &mut dyn Bus, lin: u64, buf: &mut [u8]) -> bool {
        for (k, b) in buf.iter_mut().enumerate() {
            let a = lin + k as u64;
            match self.translate(a, Access::Read, false) {
                Ok(p) => *b = self.phys_read(bus, p, 1) as u8,
                Err(_) => return false,
            }
        }
        true
    }
}

#[inline]
pub fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}
