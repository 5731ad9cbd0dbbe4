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
    /// Called before every port or MMIO access with the instructions retired
    /// so far, so a device sees the exact virtual time of the access.
    fn sync_time(&mut self, _icount: u64) {}
    /// Virtual time in nanoseconds at `icount`: what the TSC counts (one
    /// tick per nanosecond).
    fn clock_ns(&mut self, icount: u64) -> u64 {
        icount
    }
    /// MSRs that belong to the board (the local APIC's): `None` when `msr`
    /// is not one of them.
    fn rdmsr(&mut self, _msr: u32) -> Option<u64> {
        None
    }
    /// Returns false when `msr` is not the board's.
    fn wrmsr(&mut self, _msr: u32, _value: u64) -> bool {
        false
    }
    /// A local APIC exists and IA32_APIC_BASE enables it (CPUID.1:EDX.APIC).
    fn apic_enabled(&self) -> bool {
        false
    }
    /// The A20 gate as the chipset drives it (8042 output port, port 0x92).
    fn a20_enabled(&self) -> bool {
        true
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
