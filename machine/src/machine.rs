//! The machine: builds the board from a `Config`, loads the boot image, and
//! runs the CPU from one device deadline to the next.

use crate::board::Board;
use crate::clock::{Clock, ClockMode};
use crate::config::{Boot, Config, JitMode, Serial};
use leap_bios::{acpi, e820, linux, mptable, multiboot, rom};
use leap_cpu::phys::{PG_HOLE, PG_ROM};
use leap_cpu::state::{DescTable, FLAG_IF};
use leap_cpu::tier::TierHook;
use leap_cpu::{Cpu, Exit};
use leap_devices::piix4_pm;
use leap_jit::Tier;
use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest wrote to the isa-debug-exit port: exit with this status.
    DebugExit(i32),
    /// HLT with nothing that could ever wake the CPU.
    HaltedForever,
    /// A triple fault shut the processor down.
    Shutdown(String),
    /// The text given with `--expect-serial` appeared on COM1.
    ExpectedText,
    /// The guest reset the machine (there is no firmware to reboot into
    /// yet, so a reset ends the run like QEMU's -no-reboot).
    Reset(&'static str),
    /// The guest put the machine in ACPI S5 (soft off) through PM1_CNT.
    PowerOff,
    /// The user typed Ctrl-A X on the serial console (as in QEMU).
    Quit,
    InstructionLimit,
    Timeout,
}

pub struct Machine {
    pub cpu: Cpu,
    pub board: Board,
    cfg: Config,
    /// Host bytes for COM1, from a reader thread on stdin.
    input: Option<Receiver<u8>>,
    pending_input: Vec<u8>,
    /// Ctrl-A was typed: the next byte is a console command.
    escape: bool,
    quit: bool,
}

/// Most instructions run between checks of the host (time limit, input).
const SLICE: u64 = 1 << 20;
/// The RTC's start date in deterministic mode (2024-01-01 00:00:00 UTC), so
/// runs do not depend on the day they happen.
pub const DETERMINISTIC_EPOCH: u64 = 1_704_067_200;

/// Put the compiling tier asked for in place. A host without a Cranelift
/// backend keeps the interpreter, with a warning.
fn install_jit(cpu: &mut Cpu, mode: JitMode) {
    let (tier, threshold) = match mode {
        JitMode::Off => return,
        JitMode::On { threshold } => (Tier::background(), threshold),
        JitMode::Always => (Tier::inline(), 1),
    };
    match tier {
        Ok(t) => cpu.set_tier(Some(TierHook::new(Box::new(t), threshold))),
        Err(e) => eprintln!("leap: warning: {e}; running in the interpreter only"),
    }
}

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
        install_jit(&mut cpu, cfg.jit);
        // Legacy VGA window: not RAM.
        cpu.mem.set_range_flags(0xa0000, 0x20000, PG_HOLE, 0);
        let rtc_start = match cfg.clock {
            ClockMode::Deterministic => DETERMINISTIC_EPOCH,
            ClockMode::Realtime => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(DETERMINISTIC_EPOCH),
        };
        let mut board = Board::new(Clock::new(cfg.clock), rtc_start, out);
        board.rtc.set_pc_config(cfg.ram_bytes, 0);
        board.trace_post = cfg.trace_post;
        board.expect_serial = cfg
            .expect_serial
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| t.as_bytes().to_vec());
        board.post.keep_log = false;
        let mut input = None;
        match &cfg.serial {
            Serial::Stdio => {
                board.serial_out = Some(Box::new(std::io::stdout()));
                input = Some(spawn_stdin_reader());
            }
            Serial::File(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("--serial file:{}: {e}", p.display()))?;
                board.serial_out = Some(Box::new(f));
            }
            Serial::None => {}
        }
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
            Boot::Linux {
                image,
                initrd,
                cmdline,
                entry,
            } => {
                let st = linux::load(
                    image,
                    initrd.as_deref(),
                    cmdline,
                    *entry,
                    &mut RamView(&mut cpu),
                )
                .map_err(|e| e.to_string())?;
                cpu.set_flat32();
                cpu.s.gdtr = DescTable {
                    base: linux::GDT_ADDR,
                    limit: 0x1f,
                };
                if st.long_mode {
                    cpu.enter_long_mode_flat(
                        linux::PAGE_TABLES_ADDR,
                        linux::BOOT_CS,
                        linux::BOOT_DS,
                    );
                }
                cpu.s.gpr = [0; 16];
                cpu.s.rip = st.entry;
                cpu.s.gpr[6] = st.boot_params as u64; // ESI
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
        if !matches!(cfg.boot, Boot::Rom { .. }) {
            // No firmware runs, so do what SeaBIOS does to the PM function.
            board.pm().firmware_init(piix4_pm::DEFAULT_BASE);
            write_firmware_tables(&mut cpu);
        }
        Ok(Machine {
            cpu,
            board,
            cfg,
            input,
            pending_input: Vec::new(),
            escape: false,
            quit: false,
        })
    }

    /// Run until the guest exits, halts for good, or a limit is reached.
    pub fn run(&mut self) -> RunOutcome {
        let start = Instant::now();
        loop {
            if let Some(max) = self.cfg.max_insns {
                if self.cpu.icount >= max {
                    return RunOutcome::InstructionLimit;
                }
            }
            if let Some(t) = self.cfg.timeout {
                if start.elapsed() >= t {
                    return RunOutcome::Timeout;
                }
            }
            self.board.now = self.board.clock.now(self.cpu.icount);
            self.board.advance_all();
            self.feed_input();
            if self.quit {
                return RunOutcome::Quit;
            }
            let deadline = self.board.next_deadline();
            let mut budget = SLICE;
            if let Some(d) = deadline {
                budget = budget.min(self.board.clock.budget_until(self.cpu.icount, d));
            }
            if let Some(max) = self.cfg.max_insns {
                budget = budget.min(max - self.cpu.icount);
            }
            match self.cpu.run(&mut self.board, budget) {
                Exit::Stopped | Exit::Budget => {}
                Exit::Halted => {
                    let can_wake = self.cpu.s.flags.raw_bits() & FLAG_IF != 0;
                    // Not `deadline`: the guest may have changed device state
                    // (e.g. read RTC REG C, dropping IRQ8) since it was taken.
                    match self.board.next_deadline() {
                        _ if !can_wake => return RunOutcome::HaltedForever,
                        Some(d) => self.board.clock.idle_until(
                            self.cpu.icount,
                            d,
                            Duration::from_millis(10),
                        ),
                        None if self.input.is_some()
                            && self.board.clock.mode() == ClockMode::Realtime =>
                        {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        None => return RunOutcome::HaltedForever,
                    }
                }
                Exit::TripleFault(msg) => return RunOutcome::Shutdown(msg),
            }
            if let Some(st) = self.board.debug_exit.status {
                return RunOutcome::DebugExit(st);
            }
            if self.board.expect_seen {
                return RunOutcome::ExpectedText;
            }
            if self.board.power_off {
                return RunOutcome::PowerOff;
            }
            if let Some(why) = self.board.reset_request {
                return RunOutcome::Reset(why);
            }
        }
    }

    /// QEMU's serial-console escapes: Ctrl-A X quits, Ctrl-A Ctrl-A sends
    /// one Ctrl-A, Ctrl-A H lists the commands; any other byte after
    /// Ctrl-A is dropped with it.
    fn console_byte(&mut self, b: u8) {
        const CTRL_A: u8 = 0x01;
        if !self.escape {
            if b == CTRL_A {
                self.escape = true;
            } else {
                self.pending_input.push(b);
            }
            return;
        }
        self.escape = false;
        match b {
            b'x' | b'X' => self.quit = true,
            CTRL_A => self.pending_input.push(CTRL_A),
            b'h' | b'H' | b'?' => {
                eprintln!(
                    "\r\nleap: C-a x  quit\r\nleap: C-a C-a  send C-a\r\nleap: C-a h  this help\r"
                )
            }
            _ => {}
        }
    }

    /// Hand host input to COM1 as fast as its FIFO takes it.
    fn feed_input(&mut self) {
        while let Some(rx) = &self.input {
            match rx.try_recv() {
                Ok(b) => self.console_byte(b),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.input = None,
            }
        }
        if self.pending_input.is_empty() {
            return;
        }
        let com1 = &mut self.board.uarts[0];
        let n = com1.rx_space().min(self.pending_input.len());
        if n > 0 {
            com1.push_input(&self.pending_input[..n]);
            self.pending_input.drain(..n);
            self.board.update_irqs();
        }
    }

    /// Everything the guest wrote to port 0xE9.
    pub fn debug_output(&self) -> &[u8] {
        &self.board.debugcon.captured
    }
}

/// Where direct boots put the MP tables: the BIOS area, which E820 reserves
/// and where kernels search for them.
pub const MPTABLE_ADDR: u64 = 0xf6000;
/// Where direct boots put the ACPI tables (RSDP first): the 4 KiB below the
/// MP tables, in the same reserved BIOS area the OS scans for the RSDP.
pub const ACPI_ADDR: u64 = 0xf5000;
pub const ACPI_AREA: u64 = 0x1000;
// Inside the RSDP scan range, 16-byte aligned, clear of the MP tables.
const _: () = assert!(
    ACPI_ADDR >= 0xe0000 && ACPI_ADDR.is_multiple_of(16) && ACPI_ADDR + ACPI_AREA <= MPTABLE_ADDR
);

/// What a BIOS would leave for a directly booted kernel: the BIOS data
/// area's memory fields, the MP tables that describe the APICs, and the
/// ACPI tables (which guests that know ACPI prefer; they also describe
/// power-off).
fn write_firmware_tables(cpu: &mut Cpu) {
    let ebda_seg = (e820::LOW_RAM_END >> 4) as u16;
    cpu.mem.load(0x40e, &ebda_seg.to_le_bytes());
    cpu.mem
        .load(0x413, &((e820::LOW_RAM_END >> 10) as u16).to_le_bytes());
    let id = leap_cpu::cpuid::cpuid(1, 0);
    let table = mptable::build(
        MPTABLE_ADDR as u32,
        &mptable::MpConfig {
            lapic_addr: leap_devices::lapic::LAPIC_BASE as u32,
            lapic_id: 0,
            lapic_version: leap_devices::lapic::VERSION as u8,
            ioapic_id: crate::board::IOAPIC_ID,
            ioapic_version: leap_devices::ioapic::VERSION as u8,
            ioapic_addr: leap_devices::ioapic::IOAPIC_BASE as u32,
            cpu_signature: id[0],
            cpu_features: id[3] | leap_cpu::cpuid::FEAT_APIC,
        },
    );
    cpu.mem.load(MPTABLE_ADDR, &table);
    let acpi = acpi::build(ACPI_ADDR as u32, &acpi_config(cpu.mem.size()));
    debug_assert!(acpi.len() as u64 <= ACPI_AREA);
    cpu.mem.load(ACPI_ADDR, &acpi);
}

/// The last byte PCI memory may use: the I/O APIC window follows.
const PCI_MEM_END: u32 = leap_devices::ioapic::IOAPIC_BASE as u32 - 1;

/// The board as the ACPI tables describe it.
pub fn acpi_config(ram_bytes: u64) -> acpi::AcpiConfig {
    acpi::AcpiConfig {
        lapic_addr: leap_devices::lapic::LAPIC_BASE as u32,
        lapic_id: 0,
        ioapic_id: crate::board::IOAPIC_ID,
        ioapic_addr: leap_devices::ioapic::IOAPIC_BASE as u32,
        pm_base: piix4_pm::DEFAULT_BASE,
        sci_irq: crate::board::SCI_IRQ,
        s5_slp_typ: piix4_pm::SLP_TYP_S5,
        reset: Some((
            leap_devices::piix3::RESET_CONTROL_PORT,
            leap_devices::piix3::RC_SRST | leap_devices::piix3::RC_RCPU,
        )),
        rtc_century: leap_devices::rtc::CENTURY_INDEX,
        pci_mem: (
            (ram_bytes.div_ceil(1 << 20) << 20).min(PCI_MEM_END as u64) as u32,
            PCI_MEM_END,
        ),
    }
}

fn spawn_stdin_reader() -> Receiver<u8> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if tx.send(b).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The loaders' view of guest RAM.
struct RamView<'a>(&'a mut Cpu);

impl multiboot::GuestRam for RamView<'_> {
    fn size(&self) -> u64 {
        self.0.mem.size()
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        self.0.mem.load(addr, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acpi_tables_fit_their_area_inside_reserved_memory() {
        let blob = acpi::build(ACPI_ADDR as u32, &acpi_config(256 << 20));
        assert_eq!(acpi_config(256 << 20).pci_mem, (0x1000_0000, 0xfebf_ffff));
        assert_eq!(acpi_config(3584 << 20).pci_mem.0, 0xe000_0000);
        assert!(blob.len() as u64 <= ACPI_AREA);
        let map = e820::pc_map(256 << 20);
        assert!(map.iter().any(|e| e.kind == e820::RESERVED
            && e.addr <= ACPI_ADDR
            && ACPI_ADDR + ACPI_AREA <= e.addr + e.size));
    }
}
