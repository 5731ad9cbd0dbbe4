//! QEMU's isa-debug-exit device at port 0xF4: writing V ends the run with
//! exit status (V << 1) | 1, so a test guest can report success or failure.

use crate::PortDevice;

pub const PORT: u16 = 0xf4;

#[derive(Default)]
pub struct DebugExit {
    /// The process exit status requested by the guest, once written.
    pub status: Option<i32>,
}

impl PortDevice for DebugExit {
    fn read(&mut self, _port: u16, size: u8) -> u32 {
        match size {
            1 => 0xff,
            2 => 0xffff,
            _ => 0xffff_ffff,
        }
    }
    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        // QEMU shifts the whole written value; a process status keeps its low byte.
        self.status = Some(((value << 1) | 1) as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_value_shifted_with_low_bit_set() {
        let mut d = DebugExit::default();
        assert_eq!(d.status, None);
        d.write(PORT, 1, 0);
        assert_eq!(d.status, Some(1));
        d.write(PORT, 1, 0x10);
        assert_eq!(d.status, Some(0x21));
    }
}
