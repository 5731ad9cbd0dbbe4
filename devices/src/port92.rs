//! System Control Port A (port 0x92, "fast A20"): a faster way than the
//! keyboard controller to gate A20 and to reset the CPU.

use crate::{ones, PortDevice};

pub const PORT: u16 = 0x92;

/// Bit 0: a 0→1 write requests a CPU reset; the bit reads back as written.
pub const FAST_RESET: u8 = 1 << 0;
/// Bit 1: A20 gate enabled.
pub const A20: u8 = 1 << 1;

#[derive(Default)]
pub struct Port92 {
    value: u8,
    reset_request: bool,
}

impl Port92 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn a20(&self) -> bool {
        self.value & A20 != 0
    }

    /// True once after the guest asked for a fast reset.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_request)
    }
}

impl PortDevice for Port92 {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        if port != PORT {
            return ones(size);
        }
        // A wide read also covers 0x93.. which nothing here drives.
        (ones(size) & !0xff) | self.value as u32
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        if port != PORT {
            return;
        }
        let v = value as u8;
        if v & FAST_RESET != 0 && self.value & FAST_RESET == 0 {
            self.reset_request = true;
        }
        self.value = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_on_a20_off_no_reset() {
        let mut p = Port92::new();
        assert!(!p.a20());
        assert!(!p.take_reset_request());
        assert_eq!(p.read(PORT, 1), 0);
    }

    #[test]
    fn a20_bit() {
        let mut p = Port92::new();
        p.write(PORT, 1, 0x02);
        assert!(p.a20());
        assert_eq!(p.read(PORT, 1), 0x02);
        assert!(!p.take_reset_request());
        p.write(PORT, 1, 0x00);
        assert!(!p.a20());
    }

    #[test]
    fn reset_on_rising_bit0_only() {
        let mut p = Port92::new();
        p.write(PORT, 1, 0x03);
        assert!(p.take_reset_request());
        assert!(!p.take_reset_request());
        assert_eq!(p.read(PORT, 1) & 1, 1);
        // Still 1: no new edge, no new reset.
        p.write(PORT, 1, 0x01);
        assert!(!p.take_reset_request());
        p.write(PORT, 1, 0x00);
        assert!(!p.take_reset_request());
        p.write(PORT, 1, 0x01);
        assert!(p.take_reset_request());
    }

    #[test]
    fn other_bits_read_back_and_wide_access() {
        let mut p = Port92::new();
        p.write(PORT, 4, 0x1234_56c8);
        assert_eq!(p.read(PORT, 1), 0xc8);
        assert_eq!(p.read(PORT, 2), 0xffc8);
        assert!(!p.a20());
        assert_eq!(p.read(0x93, 1), 0xff);
        p.write(0x93, 1, 0x02);
        assert!(!p.a20());
    }
}
