//! System instructions: descriptor-table registers, LAR/LSL/VERR/VERW/ARPL,
//! control and debug registers, CLTS/LMSW/SMSW, INVLPG, cache control, HLT,
//! CLI/STI, CPUID, RDTSC, RDMSR/WRMSR.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::cpuid;
use crate::exception::{Exception, Result};
use crate::flags::size_mask;
use crate::insn::*;
use crate::state::*;
use iced_x86::{Instruction, Mnemonic};

pub fn handler(m: Mnemonic, inst: &Instruction) -> Option<Handler> {
    use Mnemonic::*;
    Some(match m {
        Lgdt | Lidt => h_lgdt_lidt,
        Sgdt | Sidt => h_sgdt_sidt,
        Lldt => h_lldt,
        Ltr => h_ltr,
        Sldt => h_sldt,
        Str => h_str,
        Lar => h_lar,
        Lsl => h_lsl,
        Verr => h_verr,
        Verw => h_verw,
        Arpl => h_arpl,
        Mov if inst.op0_register().is_cr() => h_mov_to_cr,
        Mov if inst.op1_register().is_cr() => h_mov_from_cr,
        Mov if inst.op0_register().is_dr() => h_mov_to_dr,
        Mov if inst.op1_register().is_dr() => h_mov_from_dr,
        Lmsw => h_lmsw,
        Smsw => h_smsw,
        Clts => h_clts,
        Invlpg => h_invlpg,
        Wbinvd | Invd => h_priv_nop,
        Hlt => h_hlt,
        Cli => h_cli,
        Sti => h_sti,
        Cpuid => h_cpuid,
        Rdtsc => h_rdtsc,
        Rdmsr => h_rdmsr,
        Wrmsr => h_wrmsr,
        _ => return None,
    })
}

impl Cpu {
    /// Privileged instructions: CPL 0 in protected mode, never in v86 mode.
    #[inline]
    pub fn require_cpl0(&self) -> Result<()> {
        if self.s.protected() && (self.s.cpl != 0 || self.s.v86()) {
            return Err(Exception::gp0());
        }
        Ok(())
    }

    fn require_pmode(&self) -> Result<()> {
        if !self.s.protected() || self.s.v86() {
            return Err(Exception::ud());
        }
        Ok(())
    }

    /// Time stamp counter: derived from retired instructions so runs are
    /// reproducible; `s.tsc` holds the offset a WRMSR set.
    pub fn tsc(&self, bus: &mut dyn Bus) -> u64 {
        self.s.tsc.wrapping_add(bus.clock_ns(self.icount))
    }

    /// Load the four PAE PDPTEs from CR3 (done on CR3/CR0/CR4 writes, as
    /// the processor does).
    pub fn load_pdptes(&mut self, bus: &mut dyn Bus) {
        if self.s.cr4 & CR4_PAE == 0 || self.s.long_mode() {
            return;
        }
        let base = self.s.cr3 & 0xffff_ffe0;
        for k in 0..4 {
            self.s.pdpte[k] = self.phys_read(bus, base + 8 * k as u64, 8);
        }
    }

    pub fn write_cr0(&mut self, bus: &mut dyn Bus, v: u64) -> Result<()> {
        if v >> 32 != 0 {
            return Err(Exception::gp0());
        }
        let v = v | CR0_ET;
        if v & CR0_PG != 0 && v & CR0_PE == 0 {
            return Err(Exception::gp0());
        }
        if v & CR0_NW != 0 && v & CR0_CD == 0 {
            return Err(Exception::gp0());
        }
        let old = self.s.cr0;
        // Entering paging with EFER.LME activates long mode.
        if v & CR0_PG != 0 && old & CR0_PG == 0 && self.s.efer & EFER_LME != 0 {
            if self.s.cr4 & CR4_PAE == 0 || self.s.seg[CS].attr & ATTR_L != 0 {
                return Err(Exception::gp0());
            }
            self.s.efer |= EFER_LMA;
        }
        if v & CR0_PG == 0 && old & CR0_PG != 0 {
            // Long mode can only be left from compatibility mode.
            if self.mode64 {
                return Err(Exception::gp0());
            }
            self.s.efer &= !EFER_LMA;
        }
        self.s.cr0 = v;
        if (old ^ v) & (CR0_PG | CR0_WP | CR0_PE) != 0 {
            self.tlb.flush_all();
            if v & CR0_PG != 0 {
                self.load_pdptes(bus);
            }
        }
        if (old ^ v) & CR0_PE != 0 && v & CR0_PE == 0 {
            self.s.cpl = 0;
        }
        self.update_mode();
        self.end_block = true;
        Ok(())
    }

    pub fn write_cr4(&mut self, bus: &mut dyn Bus, v: u64) -> Result<()> {
        let supported = CR4_VME
            | CR4_PVI
            | CR4_TSD
            | CR4_DE
            | CR4_PSE
            | CR4_PAE
            | CR4_MCE
            | CR4_PGE
            | CR4_PCE
            | CR4_OSFXSR
            | CR4_OSXMMEXCPT;
        if v & !supported != 0 {
            return Err(Exception::gp0());
        }
        if self.s.long_mode() && v & CR4_PAE == 0 {
            return Err(Exception::gp0());
        }
        if v & (CR4_VME | CR4_PVI) != 0 {
            self.warn_once("CR4.VME/PVI set: virtual-8086 extensions are not implemented".into());
        }
        self.s.cr4 = v;
        self.tlb.flush_all();
        self.load_pdptes(bus);
        Ok(())
    }
}

fn h_lgdt_lidt(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    if i.op[0].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let ea = c.ea(i);
    let seg = i.mem.seg as usize;
    let limit = c.read_mem(b, seg, ea, 2)?;
    let bsize = if c.mode64 { 8 } else { 4 };
    let mut base = c.read_mem(b, seg, ea.wrapping_add(2) & size_mask(i.asize), bsize)?;
    if !c.mode64 && i.osize == 2 {
        base &= 0x00ff_ffff;
    }
    let t = DescTable {
        base,
        limit: limit as u32,
    };
    if i.inst.mnemonic() == Mnemonic::Lgdt {
        c.s.gdtr = t;
    } else {
        c.s.idtr = t;
    }
    Ok(())
}

fn h_sgdt_sidt(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    if i.op[0].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let t = if i.inst.mnemonic() == Mnemonic::Sgdt {
        c.s.gdtr
    } else {
        c.s.idtr
    };
    let ea = c.ea(i);
    let seg = i.mem.seg as usize;
    let bsize = if c.mode64 { 8 } else { 4 };
    c.probe_write(seg, ea, 2)?;
    c.probe_write(seg, ea.wrapping_add(2) & size_mask(i.asize), bsize)?;
    c.write_mem(b, seg, ea, 2, t.limit as u64)?;
    c.write_mem(
        b,
        seg,
        ea.wrapping_add(2) & size_mask(i.asize),
        bsize,
        t.base,
    )
}

fn h_lldt(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    c.require_cpl0()?;
    let sel = c.read_op(b, i, 0)? as u16;
    if sel & !3 == 0 {
        c.s.ldtr = Segment::default();
        return Ok(());
    }
    let err = sel as u32 & 0xfffc;
    if sel & 4 != 0 {
        return Err(Exception::gp(err));
    }
    let d = c.fetch_desc(b, sel, Exception::gp)?;
    if !d.is_system() || d.typ() != 2 {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    let mut ldt = d.segment(sel);
    if c.s.long_mode() {
        // 16-byte descriptor: bits 63:32 of the base follow.
        c.check_desc16_limit(sel)?;
        ldt.base |= c.system_desc_upper(b, d.addr, err)?;
    }
    c.s.ldtr = ldt;
    Ok(())
}

fn h_ltr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    c.require_cpl0()?;
    let sel = c.read_op(b, i, 0)? as u16;
    if sel & !3 == 0 {
        return Err(Exception::gp0());
    }
    let err = sel as u32 & 0xfffc;
    if sel & 4 != 0 {
        return Err(Exception::gp(err));
    }
    let d = c.fetch_desc(b, sel, Exception::gp)?;
    // Long mode has only the 64-bit TSS (type 9); 16-bit TSSs are invalid.
    let long = c.s.long_mode();
    if !d.is_system() || !(d.typ() == 9 || (d.typ() == 1 && !long)) {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    let mut upper = 0;
    if long {
        c.check_desc16_limit(sel)?;
        upper = c.system_desc_upper(b, d.addr, err)?;
    }
    c.write_sys(b, d.addr + 4, 4, (d.hi | 0x200) as u64)?;
    let mut s = d.segment(sel);
    s.base |= upper;
    s.attr |= 0x2;
    c.s.tr = s;
    Ok(())
}

fn store_selector(c: &mut Cpu, b: &mut dyn Bus, i: &Insn, sel: u16) -> Result<()> {
    if i.op[0].kind == OpKind::Mem {
        let ea = c.ea(i);
        c.write_mem(b, i.mem.seg as usize, ea, 2, sel as u64)
    } else {
        c.write_op(b, i, 0, sel as u64)
    }
}

fn h_sldt(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.s.ldtr.selector;
    store_selector(c, b, i, sel)
}

fn h_str(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.s.tr.selector;
    store_selector(c, b, i, sel)
}

/// Shared by LAR/LSL/VERR/VERW: the descriptor if the selector is visible
/// at the current privilege level, else None (ZF=0).
fn visible_desc(
    c: &mut Cpu,
    b: &mut dyn Bus,
    sel: u16,
    system_ok: &[u8],
) -> Result<Option<crate::ops::desc::Desc>> {
    if sel & !3 == 0 {
        return Ok(None);
    }
    let d = match c.fetch_desc(b, sel, Exception::gp) {
        Ok(d) => d,
        Err(e) if e.vector() == crate::exception::GP => return Ok(None),
        Err(e) => return Err(e),
    };
    if d.is_system() && !system_ok.contains(&d.typ()) {
        return Ok(None);
    }
    let rpl = (sel & 3) as u8;
    if !d.conforming() && (d.dpl() < c.s.cpl || d.dpl() < rpl) {
        return Ok(None);
    }
    Ok(Some(d))
}

fn set_zf(c: &mut Cpu, on: bool) {
    c.s.flags.set_arith(FLAG_ZF, if on { FLAG_ZF } else { 0 });
}

fn h_lar(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.read_op(b, i, 1)? as u16;
    match visible_desc(c, b, sel, &[1, 2, 3, 4, 5, 9, 0xb, 0xc])? {
        Some(d) => {
            let v = (d.hi & 0x00ff_ff00) as u64;
            c.write_op(b, i, 0, v & size_mask(i.op[0].size))?;
            set_zf(c, true);
        }
        None => set_zf(c, false),
    }
    Ok(())
}

fn h_lsl(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.read_op(b, i, 1)? as u16;
    match visible_desc(c, b, sel, &[1, 2, 3, 9, 0xb])? {
        Some(d) => {
            let lim = d.segment(sel).limit as u64;
            c.write_op(b, i, 0, lim & size_mask(i.op[0].size))?;
            set_zf(c, true);
        }
        None => set_zf(c, false),
    }
    Ok(())
}

fn h_verr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.read_op(b, i, 0)? as u16;
    let ok = matches!(visible_desc(c, b, sel, &[])?, Some(d) if !d.is_system() && d.readable());
    set_zf(c, ok);
    Ok(())
}

fn h_verw(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let sel = c.read_op(b, i, 0)? as u16;
    let ok = matches!(visible_desc(c, b, sel, &[])?, Some(d) if d.writable_data());
    set_zf(c, ok);
    Ok(())
}

fn h_arpl(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_pmode()?;
    let dst = c.read_op(b, i, 0)?;
    let src = c.read_op(b, i, 1)?;
    if dst & 3 < src & 3 {
        c.write_op(b, i, 0, (dst & !3) | (src & 3))?;
        set_zf(c, true);
    } else {
        set_zf(c, false);
    }
    Ok(())
}

fn cr_number(i: &Insn) -> u8 {
    i.inst
        .op_register(if i.inst.op0_register().is_cr() { 0 } else { 1 })
        .number() as u8
}

fn h_mov_to_cr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let v = c.read_op(b, i, 1)?;
    match cr_number(i) {
        0 => c.write_cr0(b, v)?,
        2 => c.s.cr2 = v,
        3 => {
            // Bits above the physical-address width are reserved.
            if v >> crate::cpuid::PHYS_ADDR_BITS != 0 {
                return Err(Exception::gp0());
            }
            c.s.cr3 = v;
            c.load_pdptes(b);
            c.tlb.flush_nonglobal();
        }
        4 => c.write_cr4(b, v)?,
        8 if v & !0xf != 0 => return Err(Exception::gp0()),
        8 => c.s.cr8 = v,
        _ => return Err(Exception::ud()),
    }
    c.end_block = true;
    Ok(())
}

fn h_mov_from_cr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let v = match cr_number(i) {
        0 => c.s.cr0,
        2 => c.s.cr2,
        3 => c.s.cr3,
        4 => c.s.cr4,
        8 => c.s.cr8,
        _ => return Err(Exception::ud()),
    };
    c.write_op(b, i, 0, v)
}

fn dr_number(c: &Cpu, i: &Insn) -> Result<usize> {
    let n = i
        .inst
        .op_register(if i.inst.op0_register().is_dr() { 0 } else { 1 })
        .number();
    match n {
        4 | 5 if c.s.cr4 & CR4_DE != 0 => Err(Exception::ud()),
        4 | 5 => Ok(n + 2),
        0..=7 => Ok(n),
        _ => Err(Exception::ud()),
    }
}

fn h_mov_to_dr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let n = dr_number(c, i)?;
    let v = c.read_op(b, i, 1)?;
    c.s.dr[n] = match n {
        6 => (v & 0xe00f) | 0xffff_0ff0,
        7 => (v & 0xffff_2bff) | 0x400,
        _ => v,
    };
    Ok(())
}

fn h_mov_from_dr(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let n = dr_number(c, i)?;
    let v = c.s.dr[n];
    c.write_op(b, i, 0, v)
}

fn h_lmsw(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let v = c.read_op(b, i, 0)? & 0xf;
    // LMSW can set PE but never clear it.
    let nv = (c.s.cr0 & !0xe) | v | (c.s.cr0 & CR0_PE);
    c.write_cr0(b, nv)
}

fn h_smsw(c: &mut Cpu, b: &mut dyn Bus, i: &Insn) -> Result<()> {
    let v = c.s.cr0;
    if i.op[0].kind == OpKind::Mem {
        let ea = c.ea(i);
        c.write_mem(b, i.mem.seg as usize, ea, 2, v & 0xffff)
    } else {
        c.write_op(b, i, 0, v & size_mask(i.op[0].size))
    }
}

fn h_clts(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    c.s.cr0 &= !CR0_TS;
    Ok(())
}

fn h_invlpg(c: &mut Cpu, _b: &mut dyn Bus, i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    if i.op[0].kind != OpKind::Mem {
        return Err(Exception::ud());
    }
    let ea = c.ea(i);
    let seg = &c.s.seg[i.mem.seg as usize];
    let lin = if c.mode64 && i.mem.seg < 4 {
        ea
    } else {
        seg.base.wrapping_add(ea) & if c.mode64 { u64::MAX } else { 0xffff_ffff }
    };
    c.tlb.flush_page(lin);
    Ok(())
}

fn h_priv_nop(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.require_cpl0()
}

fn h_hlt(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    c.halted = true;
    c.end_block = true;
    Ok(())
}

/// CLI/STI permission: CPL <= IOPL in protected mode, IOPL = 3 in v86 mode.
fn if_allowed(c: &Cpu) -> Result<()> {
    if c.s.protected() && c.s.cpl > c.s.iopl() {
        return Err(Exception::gp0());
    }
    Ok(())
}

fn h_cli(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if_allowed(c)?;
    c.s.flags.set_bit(FLAG_IF, false);
    Ok(())
}

fn h_sti(c: &mut Cpu, _b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if_allowed(c)?;
    if c.s.flags.raw_bits() & FLAG_IF == 0 {
        c.s.flags.set_bit(FLAG_IF, true);
        c.inhibit_interrupts();
        c.poll = true;
    }
    Ok(())
}

fn h_cpuid(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    let leaf = c.s.gpr[EAX] as u32;
    let sub = c.s.gpr[ECX] as u32;
    let mut r = cpuid::cpuid(leaf, sub);
    // The APIC bit follows IA32_APIC_BASE's global enable (SDM 10.4.3).
    if leaf == 1 && b.apic_enabled() {
        r[3] |= cpuid::FEAT_APIC;
    }
    c.s.gpr[EAX] = r[0] as u64;
    c.s.gpr[EBX] = r[1] as u64;
    c.s.gpr[ECX] = r[2] as u64;
    c.s.gpr[EDX] = r[3] as u64;
    Ok(())
}

fn h_rdtsc(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    if c.s.cr4 & CR4_TSD != 0 && c.s.protected() && c.s.cpl != 0 {
        return Err(Exception::gp0());
    }
    let t = c.tsc(b);
    c.s.gpr[EAX] = t & 0xffff_ffff;
    c.s.gpr[EDX] = t >> 32;
    Ok(())
}

fn h_rdmsr(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let v = c.read_msr(b, c.s.gpr[ECX] as u32)?;
    c.s.gpr[EAX] = v & 0xffff_ffff;
    c.s.gpr[EDX] = v >> 32;
    Ok(())
}

fn h_wrmsr(c: &mut Cpu, b: &mut dyn Bus, _i: &Insn) -> Result<()> {
    c.require_cpl0()?;
    let v = (c.s.gpr[EDX] << 32) | (c.s.gpr[EAX] & 0xffff_ffff);
    c.write_msr(b, c.s.gpr[ECX] as u32, v)
}
