//! The board: the PC's chips, port and MMIO routing, IRQ wiring, and the
//! virtual clock they all read. The CPU reaches it only through `Bus`.

use crate::clock::Clock;
use leap_bios::mptable::isa_irq_pin;
use leap_cpu::Bus;
use leap_devices::debug_exit::{self, DebugExit};
use leap_devices::debugcon::{self, DebugCon};
use leap_devices::i440fx::I440fx;
use leap_devices::i8042::I8042;
use leap_devices::ioapic::{IoApic, IOAPIC_BASE};
use leap_devices::lapic::{Lapic, LAPIC_BASE};
use leap_devices::pci::PciBus;
use leap_devices::pic::Pic;
use leap_devices::piix3::{Piix3, ResetControl};
use leap_devices::piix4_pm::Piix4Pm;
use leap_devices::pit::Pit;
use leap_devices::port92::Port92;
use leap_devices::post_code::{self, PostCode};
use leap_devices::rtc::Rtc;
use leap_devices::uart::Uart;
use leap_devices::{ones, PortDevice};
use std::collections::HashSet;
use std::io::Write;

/// COM1-COM4 base ports and their ISA IRQs.
pub const COM_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

/// The I/O APIC's ID (the local APIC has 0).
pub const IOAPIC_ID: u8 = 1;
/// Where the PIIX4 power-management function sits (bus 0, 1.3), and the ISA
/// IRQ its SCI drives (hardwired on QEMU's PC; the FADT and MADT say so).
pub const PM_DEV: u8 = 1;
pub const PM_FUNC: u8 = 3;
pub const SCI_IRQ: u8 = 9;
const APIC_BASE_BSP: u64 = 1 << 8;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_TSC_DEADLINE: u32 = 0x6e0;
const APIC_WINDOW: u64 = 0x1000;

/// Everything on the CPU's bus.
pub struct Board {
    pub clock: Clock,
    /// Virtual time of the access being served, set by `sync_time`.
    pub now: u64,
    pub pic: Pic,
    pub lapic: Lapic,
    pub ioapic: IoApic,
    /// IA32_APIC_BASE: the local APIC's address and global enable.
    pub apic_base: u64,
    pub pit: Pit,
    pub rtc: Rtc,
    pub uarts: [Uart; 4],
    pub i8042: I8042,
    pub port92: Port92,
    /// PCI bus 0: the i440FX host bridge (00.0), the PIIX3 ISA bridge (01.0)
    /// and the PIIX4 power-management function (01.3, see [`Board::pm`]).
    pub pci: PciBus,
    pub reset_control: ResetControl,
    pub post: PostCode,
    pub debugcon: DebugCon,
    pub debug_exit: DebugExit,
    /// COM1's output sink.
    pub serial_out: Option<Box<dyn Write + Send>>,
    /// The x87's FERR# output, latched onto IRQ 13 until a write to 0xF0.
    pub ferr: bool,
    /// Text to wait for on COM1 (`--expect-serial`), and whether it appeared.
    pub expect_serial: Option<Vec<u8>>,
    pub expect_seen: bool,
    /// The tail of COM1's output, as long as the expected text.
    serial_tail: Vec<u8>,
    /// Why the guest asked for a reset, once it has.
    pub reset_request: Option<&'static str>,
    /// The guest entered ACPI S5 (soft off).
    pub power_off: bool,
    pub trace_post: bool,
    /// BIOS ROM mapped at the top of the 4 GiB space.
    pub rom_high: Vec<u8>,
    warned_ports: HashSet<u16>,
}

impl Board {
    pub fn new(clock: Clock, rtc_start: u64, out: Box<dyn Write + Send>) -> Self {
        Board {
            clock,
            now: 0,
            pic: Pic::new(),
            lapic: Lapic::new(0),
            ioapic: IoApic::new(IOAPIC_ID),
            apic_base: LAPIC_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE,
            pit: Pit::new(),
            rtc: Rtc::new(rtc_start),
            uarts: std::array::from_fn(|_| Uart::new()),
            i8042: I8042::new(),
            port92: Port92::new(),
            pci: {
                let mut pci = PciBus::new();
                pci.add(0, 0, Box::new(I440fx::new()));
                pci.add(1, 0, Box::new(Piix3::new()));
                pci.add(PM_DEV, PM_FUNC, Box::new(Piix4Pm::new()));
                pci
            },
            reset_control: ResetControl::new(),
            post: PostCode::default(),
            debugcon: DebugCon::new(out),
            debug_exit: DebugExit::default(),
            serial_out: None,
            ferr: false,
            expect_serial: None,
            expect_seen: false,
            serial_tail: Vec::new(),
            reset_request: None,
            power_off: false,
            trace_post: false,
            rom_high: Vec::new(),
            warned_ports: HashSet::new(),
        }
    }

    /// The power-management function. It lives on the PCI bus, which owns
    /// it; the board reaches it there for its I/O block, clock and SCI.
    pub fn pm(&mut self) -> &mut Piix4Pm {
        self.pci
            .get_mut::<Piix4Pm>(PM_DEV, PM_FUNC)
            .expect("the board plugs the PIIX4 PM function in at 1.3")
    }

    fn pm_ref(&self) -> &Piix4Pm {
        self.pci
            .get::<Piix4Pm>(PM_DEV, PM_FUNC)
            .expect("the board plugs the PIIX4 PM function in at 1.3")
    }

    fn rom_base(&self) -> u64 {
        0x1_0000_0000 - self.rom_high.len() as u64
    }

    fn unassigned_port(&mut self, port: u16, what: &str) {
        if self.warned_ports.insert(port) {
            eprintln!("leap: {what} of unassigned I/O port {port:#06x} (logged once per port)");
        }
    }

    /// Bring every timed device to `self.now`, then forward IRQ levels.
    pub fn advance_all(&mut self) {
        let now = self.now;
        self.pit.advance(now);
        self.rtc.advance(now);
        self.i8042.advance(now);
        self.lapic.advance(now);
        self.pm().advance(now);
        for u in self.uarts.iter_mut() {
            u.advance(now);
        }
        self.update_irqs();
    }

    /// The earliest time a device needs attention.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut d = [
            self.pit.next_deadline(),
            self.rtc.next_deadline(),
            self.i8042.next_deadline(),
            self.lapic.next_deadline(),
            self.pm_ref().next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        for u in &self.uarts {
            if let Some(t) = u.next_deadline() {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        }
        d
    }

    /// Drive one ISA IRQ line: it reaches both the 8259s and the I/O APIC.
    fn isa_irq(&mut self, irq: u8, level: bool) {
        self.pic.set_irq(irq, level);
        self.ioapic.set_irq(isa_irq_pin(irq) as usize, level);
    }

    /// Forward every device's interrupt line to the interrupt controllers.
    pub fn update_irqs(&mut self) {
        if self.pit.take_irq0_edges() > 0 {
            // IRQ0 is edge-triggered: make the edge even if the line was high.
            self.isa_irq(0, false);
            self.isa_irq(0, true);
        }
        self.isa_irq(1, self.i8042.irq1());
        let mut com = [false; 16];
        for (u, &(_, irq)) in self.uarts.iter().zip(COM_PORTS.iter()) {
            com[irq as usize] |= u.irq_level();
        }
        self.isa_irq(3, com[3]);
        self.isa_irq(4, com[4]);
        self.isa_irq(8, self.rtc.irq_level());
        self.isa_irq(SCI_IRQ, self.pm_ref().sci_level());
        self.isa_irq(12, self.i8042.irq12());
        self.isa_irq(13, self.ferr);
        self.route_apic_messages();
    }

    /// Deliver I/O APIC messages to the local APIC, and the local APIC's
    /// level-triggered EOIs back to the I/O APIC.
    fn route_apic_messages(&mut self) {
        loop {
            let mut any = false;
            while let Some(v) = self.lapic.take_eoi() {
                self.ioapic.eoi(v);
                any = true;
            }
            for (vector, level, _dest, mode) in self.ioapic.take_interrupts() {
                any = true;
                match mode {
                    // Fixed and lowest priority: one CPU takes it either way.
                    0 | 1 => self.lapic.accept(vector, level),
                    // ExtINT: the 8259 answers the acknowledge; its INTR
                    // already reaches the CPU through LINT0.
                    _ => {}
                }
            }
            if !any {
                break;
            }
        }
    }

    fn lapic_on(&self) -> bool {
        self.apic_base & APIC_BASE_ENABLE != 0
    }

    fn lapic_window(&self) -> u64 {
        self.apic_base & !0xfff & 0xf_ffff_ffff
    }

    /// Move COM1's transmitted bytes to its sink.
    fn flush_serial(&mut self) {
        let out = self.uarts[0].take_output();
        if let Some(sink) = self.serial_out.as_mut() {
            if !out.is_empty() {
                let _ = sink.write_all(&out);
                let _ = sink.flush();
            }
        }
        if let Some(want) = &self.expect_serial {
            for &b in &out {
                self.serial_tail.push(b);
                if self.serial_tail.len() > want.len() {
                    self.serial_tail.remove(0);
                }
                if self.serial_tail == *want {
                    self.expect_seen = true;
                }
            }
        }
        for u in &mut self.uarts[1..] {
            u.take_output();
        }
    }

    fn check_resets(&mut self) {
        if self.i8042.take_reset_request() {
            self.reset_request
                .get_or_insert("keyboard controller reset pulse");
        }
        if self.port92.take_reset_request() {
            self.reset_request.get_or_insert("port 0x92 fast reset");
        }
        if self.reset_control.take_reset_request() {
            self.reset_request
                .get_or_insert("reset control register 0xcf9");
        }
    }

    fn com_index(port: u16) -> Option<usize> {
        COM_PORTS
            .iter()
            .position(|&(base, _)| (base..base + 8).contains(&port))
    }
}

/// The bytes a narrow read at `off` takes from a 32-bit register.
fn dword_lane(dword: u32, off: u32, size: u8) -> u64 {
    ((dword as u64) >> (8 * (off & 3))) & leap_cpu::flags::size_mask(size)
}

impl Bus for Board {
    fn mmio_read(&mut self, addr: u64, size: u8) -> u64 {
        let lapic = self.lapic_window();
        if self.lapic_on() && (lapic..lapic + APIC_WINDOW).contains(&addr) {
            let off = (addr - lapic) as u32;
            self.lapic.advance(self.now);
            return dword_lane(self.lapic.read(off & !3), off, size);
        }
        if (IOAPIC_BASE..IOAPIC_BASE + APIC_WINDOW).contains(&addr) {
            let off = (addr - IOAPIC_BASE) as u32;
            return dword_lane(self.ioapic.read(off & !3), off, size);
        }
        if !self.rom_high.is_empty() && addr >= self.rom_base() && addr < 0x1_0000_0000 {
            let off = (addr - self.rom_base()) as usize;
            let mut v = 0u64;
            for k in 0..size as usize {
                v |= (*self.rom_high.get(off + k).unwrap_or(&0xff) as u64) << (8 * k);
            }
            return v;
        }
        leap_cpu::flags::size_mask(size)
    }

    fn mmio_write(&mut self, addr: u64, _size: u8, value: u64) {
        // The APICs decode aligned 32-bit accesses; narrower writes land on
        // their dword as the registers are defined only whole.
        let lapic = self.lapic_window();
        if self.lapic_on() && (lapic..lapic + APIC_WINDOW).contains(&addr) {
            self.lapic.advance(self.now);
            self.lapic.write((addr - lapic) as u32 & !3, value as u32);
            self.route_apic_messages();
        } else if (IOAPIC_BASE..IOAPIC_BASE + APIC_WINDOW).contains(&addr) {
            self.ioapic
                .write((addr - IOAPIC_BASE) as u32 & !3, value as u32);
            self.route_apic_messages();
        }
    }

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let now = self.now;
        self.clock.charge_port_access();
        let v = match port {
            0x20 | 0x21 | 0xa0 | 0xa1 | 0x4d0 | 0x4d1 => self.pic.read(port, size),
            0x40..=0x43 | 0x61 => {
                self.pit.advance(now);
                self.pit.read(port, size)
            }
            0x70 | 0x71 => {
                self.rtc.advance(now);
                self.rtc.read(port, size)
            }
            0x60 | 0x64 => {
                self.i8042.advance(now);
                self.i8042.read(port, size)
            }
            0x92 => self.port92.read(port, size),
            0xcf8..=0xcff if ResetControl::claims(port, size) => {
                self.reset_control.read(port, size)
            }
            0xcf8..=0xcff => self.pci.read(port, size),
            post_code::PORT => self.post.read(port, size),
            debugcon::PORT => self.debugcon.read(port, size),
            _ => match Self::com_index(port) {
                Some(k) => {
                    self.uarts[k].advance(now);
                    self.uarts[k].read(port, size)
                }
                None if self.pm_ref().claims(port) => {
                    let pm = self.pm();
                    pm.advance(now);
                    pm.read(port, size)
                }
                None => {
                    self.unassigned_port(port, "read");
                    return ones(size);
                }
            },
        };
        self.update_irqs();
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        let now = self.now;
        self.clock.charge_port_access();
        match port {
            0x20 | 0x21 | 0xa0 | 0xa1 | 0x4d0 | 0x4d1 => self.pic.write(port, size, value),
            0x40..=0x43 | 0x61 => {
                self.pit.advance(now);
                self.pit.write(port, size, value)
            }
            0x70 | 0x71 => {
                self.rtc.advance(now);
                self.rtc.write(port, size, value)
            }
            0x60 | 0x64 => {
                self.i8042.advance(now);
                self.i8042.write(port, size, value);
                self.check_resets();
            }
            0x92 => {
                self.port92.write(port, size, value);
                self.check_resets();
            }
            0xcf8..=0xcff if ResetControl::claims(port, size) => {
                self.reset_control.write(port, size, value);
                self.check_resets();
            }
            0xcf8..=0xcff => self.pci.write(port, size, value),
            post_code::PORT => {
                self.post.write(port, size, value);
                if self.trace_post {
                    eprintln!("leap: POST code {:#04x}", value as u8);
                }
            }
            debugcon::PORT => self.debugcon.write(port, size, value),
            debug_exit::PORT => self.debug_exit.write(port, size, value),
            // Clearing the coprocessor busy/error latch drops IRQ 13.
            0xf0 => self.ferr = false,
            _ => match Self::com_index(port) {
                Some(k) => {
                    self.uarts[k].advance(now);
                    self.uarts[k].write(port, size, value);
                    self.flush_serial();
                }
                None if self.pm_ref().claims(port) => {
                    let pm = self.pm();
                    pm.advance(now);
                    pm.write(port, size, value);
                    if pm.take_power_off() {
                        self.power_off = true;
                    }
                }
                None => {
                    self.unassigned_port(port, "write");
                    return;
                }
            },
        }
        self.update_irqs();
    }

    fn intr_pending(&mut self) -> bool {
        if !self.lapic_on() {
            return self.pic.intr();
        }
        self.lapic.intr_pending() || (self.lapic.lint0_extint() && self.pic.intr())
    }

    fn intr_ack(&mut self) -> u8 {
        if self.lapic_on() && self.lapic.intr_pending() {
            self.lapic.ack()
        } else {
            self.pic.ack()
        }
    }

    fn rdmsr(&mut self, msr: u32) -> Option<u64> {
        match msr {
            MSR_APIC_BASE => Some(self.apic_base),
            MSR_TSC_DEADLINE => Some(self.lapic.tsc_deadline()),
            _ => None,
        }
    }

    fn wrmsr(&mut self, msr: u32, value: u64) -> bool {
        match msr {
            MSR_APIC_BASE => {
                // BSP is read-only; clearing the enable bit resets the APIC.
                let was_on = self.lapic_on();
                self.apic_base =
                    (value & (0xf_ffff_f000 | APIC_BASE_ENABLE)) | (self.apic_base & APIC_BASE_BSP);
                if was_on && !self.lapic_on() {
                    self.lapic.reset();
                }
                true
            }
            MSR_TSC_DEADLINE => {
                self.lapic.advance(self.now);
                self.lapic.set_tsc_deadline(value);
                true
            }
            _ => false,
        }
    }

    fn apic_enabled(&self) -> bool {
        self.lapic_on()
    }

    fn ferr(&mut self, asserted: bool) {
        // Only assertion latches; the latch clears through port 0xF0.
        if asserted && !self.ferr {
            self.ferr = true;
            self.update_irqs();
        }
    }

    fn sync_time(&mut self, icount: u64) {
        self.now = self.clock.now(icount);
    }

    fn clock_ns(&mut self, icount: u64) -> u64 {
        self.clock.now(icount)
    }

    fn a20_enabled(&self) -> bool {
        self.i8042.a20() || self.port92.a20()
    }

    fn stop_requested(&self) -> bool {
        self.debug_exit.status.is_some()
            || self.reset_request.is_some()
            || self.power_off
            || self.expect_seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockMode;
    use leap_devices::piix4_pm::{self, PM1_CNT, PM1_EN, PM1_STS, PM_TMR, PWRBTN_EN, SLP_EN};

    fn board() -> Board {
        let mut b = Board::new(
            Clock::new(ClockMode::Deterministic),
            0,
            Box::new(std::io::sink()),
        );
        b.pm().firmware_init(piix4_pm::DEFAULT_BASE);
        b
    }

    const PM: u16 = piix4_pm::DEFAULT_BASE;

    #[test]
    fn pm_function_is_on_the_pci_bus_at_1_3() {
        let mut b = board();
        b.io_write(0xcf8, 4, 0x8000_0b00);
        assert_eq!(b.io_read(0xcfc, 4), 0x7113_8086);
        b.io_write(0xcf8, 4, 0x8000_0b40);
        assert_eq!(b.io_read(0xcfc, 4), 0x601);
    }

    #[test]
    fn pm_block_follows_pmba_and_pmregmisc() {
        let mut b = Board::new(
            Clock::new(ClockMode::Deterministic),
            0,
            Box::new(std::io::sink()),
        );
        assert_eq!(b.io_read(PM + PM1_CNT, 2), 0xffff, "not decoded at reset");
        b.io_write(0xcf8, 4, 0x8000_0b40);
        b.io_write(0xcfc, 4, 0xb000);
        b.io_write(0xcf8, 4, 0x8000_0b80);
        b.io_write(0xcfc, 1, 1);
        assert_eq!(b.io_read(0xb000 + PM1_CNT, 2), 0);
        assert_eq!(b.io_read(PM + PM1_CNT, 2), 0xffff);
    }

    #[test]
    fn pm_timer_reads_the_board_clock() {
        let mut b = board();
        b.now = 1_000_000_000;
        assert_eq!(b.io_read(PM + PM_TMR, 4), 3_579_545);
    }

    #[test]
    fn sci_reaches_irq_9_level_triggered() {
        let mut b = board();
        b.io_write(PM + PM1_EN, 2, PWRBTN_EN as u32);
        assert!(!b.pm_ref().sci_level());
        b.pm().press_power_button();
        b.update_irqs();
        assert!(b.pm_ref().sci_level());
        // Unmask IRQ 9 on the slave 8259 and check it is requested.
        b.io_write(0x20, 1, 0x11);
        b.io_write(0x21, 1, 0x20);
        b.io_write(0x21, 1, 0x04);
        b.io_write(0x21, 1, 0x01);
        b.io_write(0xa0, 1, 0x11);
        b.io_write(0xa1, 1, 0x28);
        b.io_write(0xa1, 1, 0x02);
        b.io_write(0xa1, 1, 0x01);
        b.io_write(0x21, 1, 0xfb);
        b.io_write(0xa1, 1, 0xfd);
        // ELCR: IRQ 9 level-triggered, as the OS sets it for the SCI.
        b.io_write(0x4d1, 1, 0x02);
        b.apic_base &= !APIC_BASE_ENABLE;
        assert!(b.intr_pending());
        assert_eq!(b.intr_ack(), 0x29);
        b.io_write(PM + PM1_STS, 2, piix4_pm::PWRBTN_STS as u32);
        assert!(!b.pm_ref().sci_level());
    }

    #[test]
    fn slp_en_with_s5_stops_the_machine() {
        let mut b = board();
        assert!(!b.stop_requested());
        b.io_write(PM + PM1_CNT, 2, 1);
        assert!(!b.power_off);
        b.io_write(PM + PM1_CNT, 2, (SLP_EN | 1) as u32);
        assert!(b.power_off);
        assert!(b.stop_requested());
        assert!(b.reset_request.is_none());
    }

    #[test]
    fn resets_still_end_the_run() {
        let mut b = board();
        b.io_write(0xcf9, 1, 0x06);
        assert_eq!(b.reset_request, Some("reset control register 0xcf9"));
        let mut b = board();
        b.io_write(0x64, 1, 0xfe);
        assert_eq!(b.reset_request, Some("keyboard controller reset pulse"));
        assert!(!b.power_off);
    }
}
