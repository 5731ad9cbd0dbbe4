//! The board: RAM and ROM placement, port dispatch to devices, and the run
//! loop. Later issues add the chipset, interrupt controllers and timers.

use crate::config::{Boot, Config};
use leap_bios::{multiboot, rom};
use leap_cpu::phys::{PG_HOLE, PG_ROM};
use leap_cpu::{Bus, Cpu, Exit};
use leap_devices::debug_exit::{self, DebugExit};
use leap_devices::debugcon::{self, DebugCon};
use leap_devices::PortDevice;
use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

/// Everything on the CPU's bus.
pub struct Board {
    pub debugcon: DebugCon,
    pub debug_exit: DebugExit,
    /// BIOS ROM mapped at the top of the 4 GiB space.
    rom_high: Vec<u8>,
    warned_ports: HashSet<u16>,
}

impl Board {
    fn new(out: Box<dyn Write + Send>) -> Self {
        Board {
            debugcon: DebugCon::new(out),
            debug_exit: DebugExit::default(),
            rom_high: Vec::new(),
            warned_ports: HashSet::new(),
        }
    }

    fn rom_base(&self) -> u64 {
        0x1_0000_0000 - self.rom_high.len() as u64
    }

    fn unassigned_port(&mut self, port: u16, what: &str) {
        if self.warned_ports.insert(port) {
            eprintln!("leap: {what} of unassigned I/O port {port:#06x} (logged once per port)");
        }
    }
}

fn ones(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

impl Bus for Board {
    fn mmio_read(&mut self, addr: u64, size: u8) -> u64 {
        if !self.rom_high.is_empty() && addr >= self.rom_base() && addr < 0x1_0000_0000 {
            let off = (addr - self.rom_base()) as usize;
            let mut v = 0u64;
            for k in 0..size as usize {
                v |= (*self.rom_high.get(off + k).unwrap_or(&0xff) as u64) << (8 * k);
            }
            return v;
        }
        ones(size)
    }

    fn mmio_write(&mut self, _addr: u64, _size: u8, _value: u64) {}

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        match port {
            debugcon::PORT => self.debugcon.read(port, size),
            _ => {
                self.unassigned_port(port, "read");
                ones(size) as u32
            }
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        match port {
            debugcon::PORT => self.debugcon.write(port, size, value),
            debug_exit::PORT => self.debug_exit.write(port, size, value),
            _ => self.unassigned_port(port, "write"),
        }
    }

    fn stop_requested(&self) -> bool {
        self.debug_exit.status.is_some()
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest wrote to the isa-debug-exit port: exit with this status.
    DebugExit(i32),
    /// HLT with interrupts disabled and nothing that could wake the CPU.
    HaltedForever,
    /// A triple fault shut the processor down.
    Shutdown(String),
    InstructionLimit,
    Timeout,
}

pub struct Machine {
    pub cpu: Cpu,
    pub board: Board,
    cfg: Config,
}

/// Instructions per run slice between wall-clock checks.
const SLICE: u64 = 1 << 20;

impl Machine {
    /// Build the machine and load the boot image. Errors name the problem.
    pub fn new(cfg: Config, out: Box<dyn Write + Send>) -> Result<Self, String> {
        if cfg.ram_bytes < 1 << 20 {
            return Err(format!(
                "-m: at least 1 MiB of RAM is needed, got {} bytes",
                cfg.ram_bytes
            ));
        }
        if cfg.ram_bytes > 3584 << 20 {
            return Err("-m: at most 3584 MiB is supported (32-bit physical map)".into());
        }
        let mut cpu = Cpu::new(cfg.ram_bytes as usize);
        cpu.trace = cfg.trace;
        // Legacy VGA window: not RAM.
        cpu.mem.set_range_flags(0xa0000, 0x20000, PG_HOLE, 0);
        let mut board = Board::new(out);
        match &cfg.boot {
            Boot::Multiboot { image, cmdline } => {
                let st = multiboot::load(image, cmdline, &mut RamView(&mut cpu))
                    .map_err(|e| e.to_string())?;
                cpu.set_flat32();
                cpu.s.rip = st.entry as u64;
                cpu.s.gpr[0] = multiboot::BOOTLOADER_MAGIC as u64;
                cpu.s.gpr[3] = st.mbi as u64;
                cpu.s.flags.set_raw(0x2);
            }
            Boot::Rom { image } => {
                rom::check_rom(image).map_err(|e| e.to_string())?;
                let (base, win) = rom::low_window(image);
                cpu.mem.set_range_flags(base, win.len() as u64, 0, PG_HOLE);
                cpu.mem.load(base, win);
                cpu.mem.set_range_flags(base, win.len() as u64, PG_ROM, 0);
                board.rom_high = image.clone();
            }
        }
        Ok(Machine { cpu, board, cfg })
    }

    /// Run until the guest exits, halts for good, or a limit is reached.
    pub fn run(&mut self) -> RunOutcome {
        let start = Instant::now();
        loop {
            let mut budget = SLICE;
            if let Some(max) = self.cfg.max_insns {
                if self.cpu.icount >= max {
                    return RunOutcome::InstructionLimit;
                }
                budget = budget.min(max - self.cpu.icount);
            }
            match self.cpu.run(&mut self.board, budget) {
                Exit::Stopped => {}
                Exit::Budget => {}
                Exit::Halted => {
                    // No interrupt sources exist yet, so HLT can only end the run.
                    return RunOutcome::HaltedForever;
                }
                Exit::TripleFault(msg) => return RunOutcome::Shutdown(msg),
            }
            if let Some(st) = self.board.debug_exit.status {
                return RunOutcome::DebugExit(st);
            }
            if let Some(t) = self.cfg.timeout {
                if start.elapsed() >= t {
                    return RunOutcome::Timeout;
                }
            }
        }
    }

    /// Everything the guest wrote to port 0xE9.
    pub fn debug_output(&self) -> &[u8] {
        &self.board.debugcon.captured
    }
}

/// The multiboot loader's view of guest RAM.
struct RamView<'a>(&'a mut Cpu);

impl multiboot::GuestRam for RamView<'_> {
    fn size(&self) -> u64 {
        self.0.mem.size()
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        self.0.mem.load(addr, data)
    }
}
