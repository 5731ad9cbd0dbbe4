//! Unit tests for the interpreter. Guest code is assembled in each test with
//! iced-x86's `code_asm`; expected values come from the Intel SDM, not from
//! the emulator.
//!
//! Memory map used by the harness (1 MiB of RAM):
//! - 0x0500 GDT, 0x0800 IDT (256 interrupt gates, 32-bit mode) or the IVT at
//!   0 (real mode)
//! - 0x1000 test code, 0x3000 one 16-byte `HLT` stub per vector
//! - 0x8000 initial ESP, 0x9000 data area

use crate::state::*;
use crate::{Bus, Cpu, Exit, NullBus};
use iced_x86::code_asm::*;

mod arith;
mod bcd;
mod bits;
mod codecache;
mod fpu;
mod long_mode;
mod mmx;
mod muldiv;
mod realmode;
mod shift;
mod sse;
mod stack;
mod string;
mod system;

pub const CODE: u64 = 0x1000;
pub const STACK: u64 = 0x8000;
pub const DATA: u64 = 0x9000;
pub const GDT: u64 = 0x500;
pub const IDT: u64 = 0x800;
pub const STUBS: u64 = 0x3000;

/// GDT selectors built by the harness.
pub const SEL_CODE: u16 = 0x10;
pub const SEL_DATA: u16 = 0x18;
/// Data segment, base 0x20000, byte-granular limit 0xfff.
pub const SEL_DATA_20000: u16 = 0x20;
/// Data segment marked not present.
pub const SEL_NOT_PRESENT: u16 = 0x28;
/// Execute-only code segment.
pub const SEL_EXEC_ONLY: u16 = 0x30;
/// Writable data segment with DPL 3.
pub const SEL_DPL3_DATA: u16 = 0x38;
/// LDT system descriptor.
pub const SEL_LDT: u16 = 0x40;
const GDT_LIMIT: u32 = 0x47;

pub type Asm = CodeAssembler;
pub type AsmResult = Result<(), IcedError>;

/// Encode a segment descriptor.
pub fn descriptor(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let lo = (base << 16) | (limit & 0xffff);
    let hi = (base & 0xff00_0000)
        | ((flags as u32 & 0xf) << 20)
        | (limit & 0x000f_0000)
        | ((access as u32) << 8)
        | ((base >> 16) & 0xff);
    (hi as u64) << 32 | lo as u64
}

/// Assemble `f` for `bitness` at `addr`.
pub fn assemble(bitness: u32, addr: u64, f: impl FnOnce(&mut Asm) -> AsmResult) -> Vec<u8> {
    let mut a = CodeAssembler::new(bitness).unwrap();
    f(&mut a).unwrap();
    a.assemble(addr).unwrap()
}

/// A CPU with guest code loaded at `CODE`.
pub struct T {
    pub cpu: Cpu,
}

/// A bus that requests one maskable interrupt.
pub struct IrqBus {
    pub pending: bool,
    pub vector: u8,
}

impl Bus for IrqBus {
    fn intr_pending(&mut self) -> bool {
        self.pending
    }
    fn intr_ack(&mut self) -> u8 {
        self.pending = false;
        self.vector
    }
}

impl T {
    /// Flat 32-bit protected mode with a GDT, an IDT of interrupt gates to
    /// HLT stubs, ESP = 0x8000 and EFLAGS = 2.
    pub fn pm32(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
        let code = assemble(32, CODE, f);
        let mut cpu = Cpu::new(1 << 20);
        cpu.set_flat32();
        let gdt = [
            0,
            0,
            descriptor(0, 0xfffff, 0x9a, 0xc),
            descriptor(0, 0xfffff, 0x92, 0xc),
            descriptor(0x20000, 0xfff, 0x92, 0x4),
            descriptor(0, 0xfffff, 0x12, 0xc),
            descriptor(0, 0xfffff, 0x98, 0xc),
            descriptor(0, 0xfffff, 0xf2, 0xc),
            descriptor(0x6000, 0xff, 0x82, 0x0),
        ];
        for (k, d) in gdt.iter().enumerate() {
            cpu.mem.write_ram(GDT + 8 * k as u64, 8, *d);
        }
        cpu.s.gdtr = DescTable {
            base: GDT,
            limit: GDT_LIMIT,
        };
        for v in 0..256u64 {
            let off = STUBS + 16 * v;
            let lo = (SEL_CODE as u64) << 16 | (off & 0xffff);
            let hi = (off & 0xffff_0000) | 0x8e00;
            cpu.mem.write_ram(IDT + 8 * v, 8, hi << 32 | lo);
            cpu.mem.write_ram(off, 1, 0xf4);
        }
        cpu.s.idtr = DescTable {
            base: IDT,
            limit: 0x7ff,
        };
        assert!(cpu.mem.load(CODE, &code));
        cpu.s.rip = CODE;
        // RESET leaves the processor signature in EDX: start from zero.
        cpu.s.gpr = [0; 16];
        cpu.s.gpr[ESP] = STACK;
        cpu.s.flags.set_raw(2);
        T { cpu }
    }

    /// Real mode, all segments 0, IVT entries pointing at HLT stubs,
    /// SP = 0x8000.
    pub fn real(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
        let code = assemble(16, CODE, f);
        let mut cpu = Cpu::new(1 << 20);
        for i in 0..6 {
            cpu.s.seg[i] = Segment::real_mode(0);
        }
        cpu.update_mode();
        for v in 0..256u64 {
            let off = STUBS + 16 * v;
            cpu.mem.write_ram(4 * v, 4, off);
            cpu.mem.write_ram(off, 1, 0xf4);
        }
        assert!(cpu.mem.load(CODE, &code));
        cpu.s.rip = CODE;
        // RESET leaves the processor signature in EDX: start from zero.
        cpu.s.gpr = [0; 16];
        cpu.s.gpr[ESP] = STACK;
        cpu.s.flags.set_raw(2);
        T { cpu }
    }

    pub fn set(&mut self, reg: usize, v: u32) -> &mut Self {
        self.cpu.s.gpr[reg] = v as u64;
        self
    }
    pub fn r(&self, reg: usize) -> u32 {
        self.cpu.s.gpr[reg] as u32
    }
    pub fn set_flags(&mut self, v: u64) -> &mut Self {
        self.cpu.s.flags.set_raw(v | 2);
        self
    }
    /// The six arithmetic flags.
    pub fn arith(&self) -> u64 {
        self.cpu.s.flags.get() & ARITH_FLAGS
    }
    pub fn flags(&self) -> u64 {
        self.cpu.s.flags.get()
    }
    pub fn rd(&self, addr: u64, size: u8) -> u64 {
        self.cpu.mem.read_ram(addr, size)
    }
    pub fn rd32(&self, addr: u64) -> u32 {
        self.rd(addr, 4) as u32
    }
    pub fn wr(&mut self, addr: u64, size: u8, v: u64) -> &mut Self {
        self.cpu.mem.write_ram(addr, size, v);
        self
    }
    pub fn wr32(&mut self, addr: u64, v: u32) -> &mut Self {
        self.wr(addr, 4, v as u64)
    }

    /// Run until HLT; returns the vector whose stub halted, if any.
    pub fn run_any(&mut self) -> Option<u8> {
        let exit = self.cpu.run(&mut NullBus, 1_000_000);
        assert_eq!(exit, Exit::Halted, "guest did not halt");
        self.vector_taken()
    }

    /// The vector whose HLT stub the CPU is stopped in, if any.
    pub fn vector_taken(&self) -> Option<u8> {
        let lin = self.cpu.s.seg[CS].base + self.cpu.s.rip - 1;
        if (STUBS..STUBS + 256 * 16).contains(&lin) {
            Some(((lin - STUBS) / 16) as u8)
        } else {
            None
        }
    }

    /// Run to the final HLT of the test code; no exception allowed.
    pub fn run(&mut self) -> &mut Self {
        let v = self.run_any();
        assert_eq!(v, None, "unexpected exception vector {v:?}");
        self
    }

    /// Run and expect an exception; returns its vector.
    pub fn run_fault(&mut self) -> u8 {
        match self.run_any() {
            Some(v) => v,
            None => panic!("expected an exception, guest ran to HLT"),
        }
    }

    /// Dword `n` of the stack (n = 0 is the top).
    pub fn stack32(&self, n: u64) -> u32 {
        let top = self.cpu.s.seg[SS].base + (self.cpu.s.gpr[ESP] & 0xffff_ffff);
        self.rd32(top + 4 * n)
    }
    pub fn stack16(&self, n: u64) -> u16 {
        let top = self.cpu.s.seg[SS].base + (self.cpu.s.gpr[ESP] & 0xffff);
        self.rd(top + 2 * n, 2) as u16
    }

    /// Expect fault `vector` with optional error code at the instruction at
    /// `eip`: checks the frame a protected-mode handler sees.
    pub fn expect_fault(&mut self, vector: u8, code: Option<u32>, eip: u64) {
        let v = self.run_fault();
        assert_eq!(v, vector, "wrong vector");
        let mut n = 0;
        if let Some(c) = code {
            assert_eq!(self.stack32(0), c, "wrong error code");
            n = 1;
        }
        assert_eq!(self.stack32(n) as u64, eip, "wrong pushed EIP");
        assert_eq!(self.stack32(n + 1), SEL_CODE as u32, "wrong pushed CS");
        let want = STACK - 12 - 4 * n;
        assert_eq!(self.cpu.s.gpr[ESP], want, "wrong frame size");
    }
}

/// Byte length of the code `f` assembles to (for computing fault EIPs).
pub fn len32(f: impl FnOnce(&mut Asm) -> AsmResult) -> u64 {
    assemble(32, CODE, f).len() as u64
}
