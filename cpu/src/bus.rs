//! The CPU's only window on the rest of the machine.

/// Implemented by the board: physical accesses outside RAM (MMIO, ROM
/// aliases), port I/O and the interrupt controller's INTR line.
pub trait Bus {
    /// Read `size` (1, 2, 4 or 8) bytes of physical memory that is not RAM.
    /// Nothing there: the bus floats high.
    fn mmio_read(&mut self, _addr: u64, size: u8) -> u64 {
        crate::flags::size_mask(size)
    }
    fn mmio_write(&mut self, _addr: u64, _size: u8, _value: u64) {}
    fn io_read(&mut self, _port: u16, size: u8) -> u32 {
        crate::flags::size_mask(size) as u32
    }
    fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
    /// True while a maskable interrupt is being requested (INTR).
    fn intr_pending(&mut self) -> bool {
        false
    }
    /// Interrupt-acknowledge cycle: the vector of the highest-priority request.
    fn intr_ack(&mut self) -> u8 {
        0xff
    }
    /// Checked at block boundaries: the board wants the run loop to return
    /// (a device requested exit, reset, or an event is due).
    fn stop_requested(&self) -> bool {
        false
    }
    /// The FPU's FERR# output: an unmasked x87 exception is pending while
    /// CR0.NE=0 (IRQ 13 on a PC).
    fn ferr(&mut self, _asserted: bool) {}
}

/// A bus with nothing on it: unmapped reads float high, writes vanish.
#[derive(Default)]
pub struct NullBus;

impl Bus for NullBus {}
