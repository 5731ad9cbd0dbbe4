//! leap-cpu: the x86 processor. Architectural state, decoding (iced-x86)
//! into blocks, instruction semantics, MMU/TLB, exceptions and interrupts,
//! and the interpreter that runs it all. The CPU talks to the rest of the
//! machine only through the [`Bus`] trait.

pub mod blocks;
pub mod bus;
pub mod cpu;
pub mod cpuid;
pub mod exception;
pub mod exec;
pub mod flags;
pub mod fpu;
pub mod insn;
pub mod mmu;
pub mod msr;
pub mod ops;
pub mod phys;
pub mod state;
#[cfg(test)]
mod tests;
pub mod tier;

pub use bus::{Bus, NullBus};
pub use cpu::{Cpu, Exit, SEG_FLAT_BIG_SS};
pub use exception::Exception;
pub use state::CpuState;
