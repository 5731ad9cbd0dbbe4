//! What to build and boot.

use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Boot {
    /// A multiboot ELF kernel with its command line.
    Multiboot { image: Vec<u8>, cmdline: String },
    /// A raw BIOS ROM run from the reset vector.
    Rom { image: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub ram_bytes: u64,
    pub boot: Boot,
    /// Stop after this many guest instructions.
    pub max_insns: Option<u64>,
    /// Stop after this much host time.
    pub timeout: Option<Duration>,
    pub trace: bool,
}
