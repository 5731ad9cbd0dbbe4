//! What to build and boot.

use crate::clock::ClockMode;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Boot {
    /// A multiboot ELF kernel with its command line.
    Multiboot { image: Vec<u8>, cmdline: String },
    /// A Linux bzImage through the 32-bit boot protocol.
    Linux {
        image: Vec<u8>,
        initrd: Option<Vec<u8>>,
        cmdline: String,
        /// 32- or 64-bit entry (default: 64-bit when the kernel has one).
        entry: leap_bios::linux::EntryChoice,
    },
    /// A raw BIOS ROM run from the reset vector.
    Rom { image: Vec<u8> },
}

/// Where COM1's output goes (and whether host input reaches it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serial {
    /// Output to stdout; stdin bytes go to the guest.
    Stdio,
    /// Output appended to a file.
    File(PathBuf),
    None,
}

/// Which tiers run guest code (`--jit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitMode {
    /// Interpreter only.
    Off,
    /// Blocks that ran `threshold` times are compiled on a worker thread.
    On { threshold: u32 },
    /// Every block is compiled before its first run (tests).
    Always,
}

/// Runs before a block is compiled, by default. A compile costs about
/// 80 us per guest instruction on the worker thread, so only blocks that run
/// thousands of times repay it; with 50, the amd64 boot sent 19,000 blocks
/// and the queue fell up to a second behind, leaving the hottest new code
/// interpreted. 500 was the fastest boot of 50/300/500/1000/4000 (paired
/// runs; benches/README.md).
pub const DEFAULT_JIT_THRESHOLD: u32 = 500;

#[derive(Clone, Debug)]
pub struct Config {
    pub ram_bytes: u64,
    pub boot: Boot,
    /// Stop after this many guest instructions.
    pub max_insns: Option<u64>,
    /// Stop after this much host time.
    pub timeout: Option<Duration>,
    pub trace: bool,
    pub clock: ClockMode,
    pub serial: Serial,
    /// Print POST codes written to port 0x80 on stderr.
    pub trace_post: bool,
    /// End the run successfully once this text appears on COM1.
    pub expect_serial: Option<String>,
    pub jit: JitMode,
}

impl Config {
    /// Defaults for everything but the boot image: deterministic clock,
    /// COM1 on stdio.
    pub fn new(ram_bytes: u64, boot: Boot) -> Self {
        Config {
            ram_bytes,
            boot,
            max_insns: None,
            timeout: None,
            trace: false,
            clock: ClockMode::Deterministic,
            serial: Serial::Stdio,
            trace_post: false,
            expect_serial: None,
            jit: JitMode::Off,
        }
    }
}
