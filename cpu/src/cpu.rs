//! The processor: state plus the caches that make it fast (TLB, decoded
//! blocks), and the mode bookkeeping shared by the instruction handlers.

use crate::blocks::BlockCache;
use crate::mmu::Tlb;
use crate::phys::PhysMem;
use crate::state::*;

/// Why `Cpu::run` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The instruction budget is used up.
    Budget,
    /// HLT with nothing to wake the CPU yet.
    Halted,
    /// The bus asked the run loop to return.
    Stopped,
    /// A fault while delivering #DF: the processor shuts down.
    TripleFault(String),
}

pub struct Cpu {
    pub s: CpuState,
    pub mem: PhysMem,
    pub tlb: Tlb,
    pub(crate) cache: BlockCache,
    /// Instructions retired since power-on.
    pub icount: u64,
    /// EIP/RIP of the instruction after the current one; branch handlers
    /// overwrite it. Committed to `s.rip` only when the handler succeeds.
    pub next_rip: u64,
    /// Set by a handler to make the block loop return after this instruction.
    pub end_block: bool,
    pub halted: bool,
    /// Maskable interrupts are held off until `icount` reaches this value
    /// (MOV SS / POP SS / STI shadow).
    pub irq_inhibit_until: u64,
    /// Executing 64-bit code (cached from EFER.LMA and CS.L).
    pub mode64: bool,
    /// Per segment register: bit 0 readable, bit 1 writable (cached at load).
    pub seg_ok: [u8; 6],
    /// Per segment register: lowest and highest valid offset (expand-down
    /// segments have a non-zero low bound).
    pub seg_lo: [u64; 6],
    pub seg_hi: [u64; 6],
    /// Bit `i`: segment register `i` is flat (base 0, every 32-bit offset
    /// valid, readable and writable, EFER.LMA clear), so an access's
    /// linear address is its
    /// offset; bit [`SEG_FLAT_BIG_SS`]: SS is a 32-bit stack. Compiled code
    /// specialised on these checks them once instead of per access.
    pub seg_flat: u8,
    /// Trace every executed instruction to stderr.
    pub trace: bool,
    /// Opcodes already reported as unimplemented (log once).
    pub(crate) warned: std::collections::HashSet<String>,
    /// Pending NMI request.
    pub nmi_pending: bool,
    /// Something may have changed interrupt or stop state (device I/O, IF
    /// set, run entry): poll the bus at the next block boundary.
    pub poll: bool,
    /// The compiling tier, if any (`--jit`).
    pub tier: Option<crate::tier::TierHook>,
    /// Direct jumps between compiled blocks (see `crate::tier`).
    pub chain: Box<crate::tier::ChainState>,
}

/// [`Cpu::seg_flat`]'s bit for SS's B flag.
pub const SEG_FLAT_BIG_SS: u8 = 0x80;

impl Cpu {
    pub fn new(ram_size: usize) -> Self {
        let mut c = Cpu {
            s: CpuState::default(),
            mem: PhysMem::new(ram_size),
            tlb: Tlb::default(),
            cache: BlockCache::default(),
            icount: 0,
            next_rip: 0,
            end_block: false,
            halted: false,
            irq_inhibit_until: 0,
            mode64: false,
            seg_ok: [3; 6],
            seg_lo: [0; 6],
            seg_hi: [0xffff; 6],
            seg_flat: 0,
            trace: false,
            warned: Default::default(),
            nmi_pending: false,
            poll: true,
            tier: None,
            chain: Box::default(),
        };
        c.reset();
        c
    }

    /// Processor RESET (not a power cycle: RAM keeps its contents).
    pub fn reset(&mut self) {
        self.s.reset();
        self.tlb.flush_all();
        self.cache.clear(&mut self.mem);
        self.halted = false;
        self.irq_inhibit_until = 0;
        self.nmi_pending = false;
        self.update_mode();
    }

    /// Recompute cached mode bits after CR0, EFER, CS or RFLAGS.VM changed.
    pub fn update_mode(&mut self) {
        self.mode64 = self.s.code64();
        for i in 0..6 {
            self.update_seg_ok(i);
        }
        if !self.s.protected() {
            self.s.cpl = 0;
        } else if self.s.v86() {
            self.s.cpl = 3;
        }
    }

    pub fn update_seg_ok(&mut self, i: usize) {
        let s = &self.s.seg[i];
        if s.expand_down() {
            self.seg_lo[i] = s.limit as u64 + 1;
            self.seg_hi[i] = if s.big() { 0xffff_ffff } else { 0xffff };
        } else {
            self.seg_lo[i] = 0;
            self.seg_hi[i] = s.limit as u64;
        }
        self.seg_ok[i] = if !self.s.protected() || self.s.v86() {
            3
        } else if !s.present() || s.attr & ATTR_S == 0 {
            0
        } else {
            (s.readable() as u8) | (s.writable() as u8) << 1
        };
        // Not with EFER.LMA: compatibility-mode code shares the TLB with
        // 64-bit code, whose entries above 4 GiB an access running past
        // the limit could match (without LMA every entry is below 4 GiB).
        let flat = self.seg_ok[i] == 3
            && self.seg_lo[i] == 0
            && self.seg_hi[i] == 0xffff_ffff
            && s.base == 0
            && self.s.efer & crate::state::EFER_LMA == 0;
        self.seg_flat = (self.seg_flat & !(1 << i)) | (flat as u8) << i;
        if i == crate::state::SS {
            let big = s.big() as u8;
            self.seg_flat = (self.seg_flat & !SEG_FLAT_BIG_SS) | (big * SEG_FLAT_BIG_SS);
        }
    }

    /// Flat 32-bit protected mode, as a multiboot loader leaves the machine.
    /// Take the chipset's A20 gate after a port write: with A20 off,
    /// physical address bit 20 wraps as on an 8086.
    pub fn follow_a20(&mut self, bus: &mut dyn crate::bus::Bus) {
        let mask = if bus.a20_enabled() {
            u64::MAX
        } else {
            !(1u64 << 20)
        };
        if mask != self.mem.a20_mask {
            self.mem.a20_mask = mask;
            self.tlb.flush_all();
            self.end_block = true;
        }
    }

    pub fn set_flat32(&mut self) {
        self.s.cr0 |= CR0_PE;
        let code = Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x10,
            attr: ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0xb,
        };
        let data = Segment {
            selector: 0x18,
            attr: ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3,
            ..code
        };
        for i in 0..6 {
            self.s.seg[i] = data;
        }
        self.s.seg[CS] = code;
        self.s.cpl = 0;
        self.update_mode();
        self.tlb.flush_all();
    }

    /// 64-bit mode with flat segments, as a boot loader leaves the machine
    /// for a 64-bit entry point: PAE paging through `cr3`, EFER.LME/LMA,
    /// CS = `code_sel` (64-bit), the data registers = `data_sel`.
    pub fn enter_long_mode_flat(&mut self, cr3: u64, code_sel: u16, data_sel: u16) {
        self.set_flat32();
        for i in 0..6 {
            self.s.seg[i].selector = data_sel;
        }
        self.s.seg[CS] = Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: code_sel,
            attr: ATTR_P | ATTR_S | ATTR_L | ATTR_G | 0xb,
        };
        self.s.cr3 = cr3;
        self.s.cr4 |= CR4_PAE;
        self.s.efer |= EFER_LME | EFER_LMA;
        self.s.cr0 |= CR0_PE | CR0_PG;
        self.update_mode();
        self.tlb.flush_all();
    }

    /// Run a multi-step operation (far transfer, IRET, interrupt delivery)
    /// all-or-nothing: on a fault the registers are as before it started.
    /// Stack bytes it already wrote stay, as on hardware.
    pub fn rollback_on_err<T>(
        &mut self,
        f: impl FnOnce(&mut Cpu) -> crate::exception::Result<T>,
    ) -> crate::exception::Result<T> {
        let saved = self.s.clone();
        let r = f(self);
        if r.is_err() {
            self.s = saved;
            self.update_mode();
            // CR3 or paging mode may have changed on the way (task switch).
            self.tlb.flush_all();
        }
        r
    }

    /// Log an unimplemented feature once per distinct message.
    pub fn warn_once(&mut self, msg: String) {
        if self.warned.insert(msg.clone()) {
            eprintln!("leap: warning: {msg}");
        }
    }

    /// Stack pointer mask for the current stack size.
    #[inline]
    pub fn sp_mask(&self) -> u64 {
        match self.s.stack_size() {
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }
}
