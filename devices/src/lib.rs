//! leap-devices: emulated PC devices, each a plain struct with a small
//! port/MMIO interface. They know nothing about the CPU.

pub mod debug_exit;
pub mod debugcon;

/// A device on the ISA/PCI port space.
pub trait PortDevice {
    fn read(&mut self, port: u16, size: u8) -> u32;
    fn write(&mut self, port: u16, size: u8, value: u32);
}
