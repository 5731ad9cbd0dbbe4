//! leap-devices: emulated PC devices, each a plain struct with a small
//! port/MMIO interface. They know nothing about the CPU or the board.
//!
//! Conventions every device follows, so the board can wire them uniformly:
//! - Port I/O through [`PortDevice`] (`size` is 1, 2 or 4 bytes); a device
//!   only sees the ports the board routes to it.
//! - Time is virtual nanoseconds (`now: u64`), supplied by the board. A
//!   device whose state changes with time has `advance(&mut self, now)`,
//!   which the board calls before every access to it and when the device's
//!   `next_deadline()` is reached; devices never read a host clock.
//! - Interrupt outputs are lines: `irq_level()` (or a named method per line)
//!   returns the current level; the board forwards levels to the PIC/IOAPIC.
//!   Edge-only sources (the PIT's OUT0) also count rising edges so none is
//!   lost when time jumps past several of them in one `advance`.

pub mod debug_exit;
pub mod debugcon;
pub mod i440fx;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod piix3;
pub mod piix4_pm;
pub mod pit;
pub mod port92;
pub mod post_code;
pub mod ps2_keyboard;
pub mod ps2_mouse;
pub mod rtc;
pub mod uart;

/// A device on the ISA/PCI port space.
pub trait PortDevice {
    fn read(&mut self, port: u16, size: u8) -> u32;
    fn write(&mut self, port: u16, size: u8, value: u32);
}

/// All-ones of `size` bytes: what a read of nothing returns on a PC bus.
pub fn ones(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}
