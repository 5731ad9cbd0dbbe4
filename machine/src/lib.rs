//! leap-machine: the PC board. Memory map, port routing, IRQ wiring, the
//! virtual clock, and the run loop that drives the CPU from one device
//! deadline to the next.

pub mod board;
pub mod clock;
pub mod config;
pub mod machine;

pub use board::Board;
pub use clock::ClockMode;
pub use config::{Boot, Config, JitMode, Serial, DEFAULT_JIT_THRESHOLD};
pub use leap_bios::linux::{is_bzimage, EntryChoice};
pub use leap_cpu::state::CS;
pub use machine::{Machine, RunOutcome};
