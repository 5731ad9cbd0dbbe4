//! leap-machine: the PC board. Memory map, port routing, and the run loop
//! that drives the CPU under instruction and wall-clock limits.

pub mod board;
pub mod config;

pub use board::{Board, Machine, RunOutcome};
pub use config::{Boot, Config};
