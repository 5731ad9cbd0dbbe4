//! Architectural CPU state. `#[repr(C)]` so generated code can address
//! fields by `offset_of!`.

use crate::flags::LazyFlags;

pub const EAX: usize = 0;
pub const ECX: usize = 1;
pub const EDX: usize = 2;
pub const EBX: usize = 3;
pub const ESP: usize = 4;
pub const EBP: usize = 5;
pub const ESI: usize = 6;
pub const EDI: usize = 7;

/// Segment register numbers in encoding order.
pub const ES: usize = 0;
pub const CS: usize = 1;
pub const SS: usize = 2;
pub const DS: usize = 3;
pub const FS: usize = 4;
pub const GS: usize = 5;

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_MP: u64 = 1 << 1;
pub const CR0_EM: u64 = 1 << 2;
pub const CR0_TS: u64 = 1 << 3;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_WP: u64 = 1 << 16;
pub const CR0_AM: u64 = 1 << 18;
pub const CR0_NW: u64 = 1 << 29;
pub const CR0_CD: u64 = 1 << 30;
pub const CR0_PG: u64 = 1 << 31;

pub const CR4_VME: u64 = 1 << 0;
pub const CR4_PVI: u64 = 1 << 1;
pub const CR4_TSD: u64 = 1 << 2;
pub const CR4_DE: u64 = 1 << 3;
pub const CR4_PSE: u64 = 1 << 4;
pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_MCE: u64 = 1 << 6;
pub const CR4_PGE: u64 = 1 << 7;
pub const CR4_PCE: u64 = 1 << 8;
pub const CR4_OSFXSR: u64 = 1 << 9;
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;

pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;

pub const FLAG_CF: u64 = 1 << 0;
pub const FLAG_PF: u64 = 1 << 2;
pub const FLAG_AF: u64 = 1 << 4;
pub const FLAG_ZF: u64 = 1 << 6;
pub const FLAG_SF: u64 = 1 << 7;
pub const FLAG_TF: u64 = 1 << 8;
pub const FLAG_IF: u64 = 1 << 9;
pub const FLAG_DF: u64 = 1 << 10;
pub const FLAG_OF: u64 = 1 << 11;
pub const FLAG_IOPL: u64 = 3 << 12;
pub const FLAG_NT: u64 = 1 << 14;
pub const FLAG_RF: u64 = 1 << 16;
pub const FLAG_VM: u64 = 1 << 17;
pub const FLAG_AC: u64 = 1 << 18;
pub const FLAG_VIF: u64 = 1 << 19;
pub const FLAG_VIP: u64 = 1 << 20;
pub const FLAG_ID: u64 = 1 << 21;
/// The six arithmetic flags that the lazy-flag machinery can produce.
pub const ARITH_FLAGS: u64 = FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF;

/// Descriptor attribute bits as kept in `Segment::attr`: bits 0-7 are the
/// descriptor access byte (type, S, DPL, P), bits 12-15 the AVL/L/DB/G nibble.
pub const ATTR_ACCESSED: u16 = 1 << 0;
pub const ATTR_TYPE_MASK: u16 = 0xf;
pub const ATTR_S: u16 = 1 << 4;
pub const ATTR_P: u16 = 1 << 7;
pub const ATTR_L: u16 = 1 << 13;
pub const ATTR_DB: u16 = 1 << 14;
pub const ATTR_G: u16 = 1 << 15;

/// A segment register with its hidden descriptor cache.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    /// Byte-granular limit (already scaled by G).
    pub limit: u32,
    pub selector: u16,
    pub attr: u16,
}

impl Segment {
    pub fn real_mode(selector: u16) -> Self {
        Segment {
            base: (selector as u64) << 4,
            limit: 0xffff,
            selector,
            // present, S, DPL 0, read/write data, accessed
            attr: ATTR_P | ATTR_S | 0x3,
        }
    }
    pub fn dpl(&self) -> u8 {
        ((self.attr >> 5) & 3) as u8
    }
    pub fn present(&self) -> bool {
        self.attr & ATTR_P != 0
    }
    pub fn is_code(&self) -> bool {
        self.attr & ATTR_S != 0 && self.attr & 0x8 != 0
    }
    pub fn big(&self) -> bool {
        self.attr & ATTR_DB != 0
    }
    /// Data segment with the expand-down bit.
    pub fn expand_down(&self) -> bool {
        self.attr & ATTR_S != 0 && self.attr & 0xc == 0x4
    }
    pub fn writable(&self) -> bool {
        self.attr & ATTR_S != 0 && self.attr & 0xa == 0x2
    }
    pub fn readable(&self) -> bool {
        self.attr & ATTR_S != 0 && (self.attr & 0x8 == 0 || self.attr & 0x2 != 0)
    }
    /// Build the cache from the two dwords of a descriptor.
    pub fn from_descriptor(selector: u16, lo: u32, hi: u32) -> Self {
        let base = ((lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff00_0000)) as u64;
        let mut limit = (lo & 0xffff) | (hi & 0x000f_0000);
        let attr = (((hi >> 8) & 0xff) | ((hi >> 8) & 0xf000)) as u16;
        if attr & ATTR_G != 0 {
            limit = (limit << 12) | 0xfff;
        }
        Segment {
            base,
            limit,
            selector,
            attr,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DescTable {
    pub base: u64,
    pub limit: u32,
}

/// The architectural state of one logical processor.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct CpuState {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub flags: LazyFlags,
    pub seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DescTable,
    pub idtr: DescTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub dr: [u64; 8],
    pub tsc: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub pat: u64,
    pub apic_base: u64,
    pub misc_enable: u64,
    pub mtrr_def_type: u64,
    pub mtrr_fixed: [u64; 11],
    pub mtrr_var: [u64; 16],
    /// SYSCALL/SYSRET: selectors (STAR), 64-bit and compatibility-mode
    /// entry points (LSTAR, CSTAR) and the RFLAGS mask (SFMASK).
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    /// The GS base SWAPGS exchanges with GS.base.
    pub kernel_gs_base: u64,
    /// IA32_TSC_AUX, returned in ECX by RDTSCP.
    pub tsc_aux: u64,
    /// Current privilege level (CS.RPL in protected mode, 3 in v86 mode).
    pub cpl: u8,
    /// PDPTE registers loaded when PAE paging is enabled.
    pub pdpte: [u64; 4],
    /// x87 FPU / MMX registers. MXCSR lives in there too (`fpu.mxcsr`),
    /// next to the x87 control registers FXSAVE stores beside it.
    pub fpu: crate::fpu::FpuState,
    /// XMM0-XMM15 as (low, high) quadwords; only XMM0-7 exist outside
    /// 64-bit mode.
    pub xmm: [[u64; 2]; 16],
}

impl Default for CpuState {
    fn default() -> Self {
        let mut s = CpuState {
            gpr: [0; 16],
            rip: 0,
            flags: LazyFlags::default(),
            seg: [Segment::real_mode(0); 6],
            ldtr: Segment::default(),
            tr: Segment::default(),
            gdtr: DescTable::default(),
            idtr: DescTable::default(),
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            dr: [0; 8],
            tsc: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            pat: 0x0007_0406_0007_0406,
            apic_base: 0xfee0_0900,
            misc_enable: 1,
            mtrr_def_type: 0,
            mtrr_fixed: [0; 11],
            mtrr_var: [0; 16],
            star: 0,
            lstar: 0,
            cstar: 0,
            sfmask: 0,
            kernel_gs_base: 0,
            tsc_aux: 0,
            cpl: 0,
            pdpte: [0; 4],
            fpu: Default::default(),
            xmm: [[0; 2]; 16],
        };
        s.reset();
        s
    }
}

impl CpuState {
    /// Power-on / RESET state (Intel SDM Vol. 3A, 9.1.1).
    pub fn reset(&mut self) {
        self.gpr = [0; 16];
        self.gpr[EDX] = 0x0000_0633; // family 6, model 3, stepping 3
        self.rip = 0xfff0;
        self.flags = LazyFlags::default();
        self.flags.set_raw(0x2);
        for s in self.seg.iter_mut() {
            *s = Segment::real_mode(0);
        }
        self.seg[CS] = Segment {
            base: 0xffff_0000,
            limit: 0xffff,
            selector: 0xf000,
            attr: ATTR_P | ATTR_S | 0xb,
        };
        self.ldtr = Segment {
            base: 0,
            limit: 0xffff,
            selector: 0,
            attr: ATTR_P | 0x2,
        };
        self.tr = Segment {
            base: 0,
            limit: 0xffff,
            selector: 0,
            attr: ATTR_P | 0xb,
        };
        self.gdtr = DescTable {
            base: 0,
            limit: 0xffff,
        };
        self.idtr = DescTable {
            base: 0,
            limit: 0xffff,
        };
        self.cr0 = CR0_ET | CR0_CD | CR0_NW;
        self.cr2 = 0;
        self.cr3 = 0;
        self.cr4 = 0;
        self.cr8 = 0;
        self.efer = 0;
        self.star = 0;
        self.lstar = 0;
        self.cstar = 0;
        self.sfmask = 0;
        self.kernel_gs_base = 0;
        self.tsc_aux = 0;
        self.dr = [0, 0, 0, 0, 0xffff_0ff0, 0x400, 0xffff_0ff0, 0x400];
        self.cpl = 0;
        self.fpu = crate::fpu::FpuState::reset_state();
        self.xmm = [[0; 2]; 16];
    }

    #[inline]
    pub fn xmm(&self, n: usize) -> u128 {
        let x = self.xmm[n & 15];
        (x[1] as u128) << 64 | x[0] as u128
    }
    #[inline]
    pub fn set_xmm(&mut self, n: usize, v: u128) {
        self.xmm[n & 15] = [v as u64, (v >> 64) as u64];
    }

    #[inline]
    pub fn rflags(&self) -> u64 {
        self.flags.get()
    }
    pub fn iopl(&self) -> u8 {
        ((self.flags.raw_bits() >> 12) & 3) as u8
    }
    pub fn protected(&self) -> bool {
        self.cr0 & CR0_PE != 0
    }
    pub fn v86(&self) -> bool {
        self.flags.raw_bits() & FLAG_VM != 0
    }
    pub fn long_mode(&self) -> bool {
        self.efer & EFER_LMA != 0
    }
    /// True when executing 64-bit code (long mode with CS.L).
    pub fn code64(&self) -> bool {
        self.long_mode() && self.seg[CS].attr & ATTR_L != 0
    }
    /// Default operand/address size of the current code segment in bytes.
    pub fn code_size(&self) -> u8 {
        if self.code64() {
            8
        } else if self.protected() && !self.v86() && self.seg[CS].big() {
            4
        } else {
            2
        }
    }
    /// Stack address size in bytes (SS.B).
    pub fn stack_size(&self) -> u8 {
        if self.code64() {
            8
        } else if self.protected() && !self.v86() && self.seg[SS].big() {
            4
        } else {
            2
        }
    }
}
