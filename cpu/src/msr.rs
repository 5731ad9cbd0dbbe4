//! Model-specific registers implemented by this CPU. Others raise #GP(0).

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::{Exception, Result};
use crate::state::*;

pub const MSR_TSC: u32 = 0x10;
pub const MSR_APIC_BASE: u32 = 0x1b;
/// IA32_BIOS_SIGN_ID: the microcode revision (none is loaded: 0).
pub const MSR_BIOS_SIGN_ID: u32 = 0x8b;
pub const MSR_MTRRCAP: u32 = 0xfe;
pub const MSR_SYSENTER_CS: u32 = 0x174;
pub const MSR_SYSENTER_ESP: u32 = 0x175;
pub const MSR_SYSENTER_EIP: u32 = 0x176;
pub const MSR_MISC_ENABLE: u32 = 0x1a0;
pub const MSR_MTRR_PHYS_BASE0: u32 = 0x200;
pub const MSR_MTRR_FIX64K: u32 = 0x250;
pub const MSR_MTRR_FIX16K_80000: u32 = 0x258;
pub const MSR_MTRR_FIX16K_A0000: u32 = 0x259;
pub const MSR_MTRR_FIX4K_C0000: u32 = 0x268;
pub const MSR_PAT: u32 = 0x277;
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const MSR_EFER: u32 = 0xc000_0080;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SFMASK: u32 = 0xc000_0084;
pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const MSR_TSC_AUX: u32 = 0xc000_0103;

fn fixed_index(msr: u32) -> Option<usize> {
    match msr {
        MSR_MTRR_FIX64K => Some(0),
        MSR_MTRR_FIX16K_80000 => Some(1),
        MSR_MTRR_FIX16K_A0000 => Some(2),
        0x268..=0x26f => Some(3 + (msr - MSR_MTRR_FIX4K_C0000) as usize),
        _ => None,
    }
}

impl Cpu {
    pub fn read_msr(&mut self, bus: &mut dyn Bus, msr: u32) -> Result<u64> {
        bus.sync_time(self.icount);
        if let Some(v) = bus.rdmsr(msr) {
            return Ok(v);
        }
        Ok(match msr {
            MSR_TSC => self.tsc(bus),
            MSR_APIC_BASE => self.s.apic_base,
            MSR_BIOS_SIGN_ID => 0,
            MSR_MTRRCAP => 0x508, // 8 variable ranges, fixed ranges, WC
            MSR_SYSENTER_CS => self.s.sysenter_cs,
            MSR_SYSENTER_ESP => self.s.sysenter_esp,
            MSR_SYSENTER_EIP => self.s.sysenter_eip,
            MSR_MISC_ENABLE => self.s.misc_enable,
            MSR_PAT => self.s.pat,
            MSR_MTRR_DEF_TYPE => self.s.mtrr_def_type,
            0x200..=0x20f => self.s.mtrr_var[(msr - MSR_MTRR_PHYS_BASE0) as usize],
            MSR_EFER => self.s.efer,
            MSR_STAR => self.s.star,
            MSR_LSTAR => self.s.lstar,
            MSR_CSTAR => self.s.cstar,
            MSR_SFMASK => self.s.sfmask,
            MSR_FS_BASE => self.s.seg[FS].base,
            MSR_GS_BASE => self.s.seg[GS].base,
            MSR_KERNEL_GS_BASE => self.s.kernel_gs_base,
            MSR_TSC_AUX => self.s.tsc_aux,
            _ => match fixed_index(msr) {
                Some(k) => self.s.mtrr_fixed[k],
                None => {
                    self.warn_once(format!("RDMSR of unimplemented MSR {msr:#x}: #GP"));
                    return Err(Exception::gp0());
                }
            },
        })
    }

    pub fn write_msr(&mut self, bus: &mut dyn Bus, msr: u32, v: u64) -> Result<()> {
        bus.sync_time(self.icount);
        if bus.wrmsr(msr, v) {
            self.poll = true;
            return Ok(());
        }
        match msr {
            MSR_TSC => self.s.tsc = v.wrapping_sub(bus.clock_ns(self.icount)),
            MSR_APIC_BASE => self.s.apic_base = v & 0x000f_ffff_ffff_f900,
            // Writing 0 before CPUID(1) is how software asks for the revision.
            MSR_BIOS_SIGN_ID => {}
            MSR_SYSENTER_CS => self.s.sysenter_cs = v & 0xffff,
            MSR_SYSENTER_ESP => self.s.sysenter_esp = v,
            MSR_SYSENTER_EIP => self.s.sysenter_eip = v,
            MSR_MISC_ENABLE => self.s.misc_enable = v,
            MSR_PAT => self.s.pat = v,
            MSR_MTRR_DEF_TYPE => self.s.mtrr_def_type = v & 0xcff,
            0x200..=0x20f => self.s.mtrr_var[(msr - MSR_MTRR_PHYS_BASE0) as usize] = v,
            MSR_EFER => {
                // LMA is the processor's: writes of it are ignored.
                let writable = EFER_SCE | EFER_LME | EFER_NXE;
                if v & !(writable | EFER_LMA) != 0 {
                    return Err(Exception::gp0());
                }
                if (v ^ self.s.efer) & EFER_LME != 0 && self.paging() {
                    return Err(Exception::gp0());
                }
                self.s.efer = (self.s.efer & EFER_LMA) | (v & writable);
                self.tlb.flush_all();
            }
            MSR_STAR => self.s.star = v,
            MSR_LSTAR | MSR_CSTAR | MSR_FS_BASE | MSR_GS_BASE | MSR_KERNEL_GS_BASE => {
                if !crate::mmu::canonical(v) {
                    return Err(Exception::gp0());
                }
                match msr {
                    MSR_LSTAR => self.s.lstar = v,
                    MSR_CSTAR => self.s.cstar = v,
                    MSR_FS_BASE => self.s.seg[FS].base = v,
                    MSR_GS_BASE => self.s.seg[GS].base = v,
                    _ => self.s.kernel_gs_base = v,
                }
                // The bases also serve compatibility-mode code: keep
                // `seg_flat` (base 0) true to them.
                self.update_seg_ok(FS);
                self.update_seg_ok(GS);
            }
            MSR_SFMASK => self.s.sfmask = v & 0xffff_ffff,
            MSR_TSC_AUX => self.s.tsc_aux = v & 0xffff_ffff,
            _ => match fixed_index(msr) {
                Some(k) => self.s.mtrr_fixed[k] = v,
                None => {
                    self.warn_once(format!("WRMSR of unimplemented MSR {msr:#x}: #GP"));
                    return Err(Exception::gp0());
                }
            },
        }
        Ok(())
    }
}
