//! Bochs/QEMU debug console on port 0xE9: bytes written appear on the
//! host's output; reads return 0xE9 so guests can detect the port.

use crate::PortDevice;
use std::io::Write;

pub const PORT: u16 = 0xe9;

pub struct DebugCon {
    out: Box<dyn Write + Send>,
    /// Everything written, kept for wait-for-text and tests.
    pub captured: Vec<u8>,
}

impl DebugCon {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        DebugCon {
            out,
            captured: Vec::new(),
        }
    }
}

impl PortDevice for DebugCon {
    fn read(&mut self, _port: u16, _size: u8) -> u32 {
        PORT as u32
    }
    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        let b = value as u8;
        self.captured.push(b);
        let _ = self.out.write_all(&[b]);
        if b == b'\n' {
            let _ = self.out.flush();
        }
    }
}

impl Drop for DebugCon {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_captured_and_reads_identify_the_port() {
        let mut d = DebugCon::new(Box::new(std::io::sink()));
        for b in b"hi\n" {
            d.write(PORT, 1, *b as u32 | 0x100);
        }
        assert_eq!(d.captured, b"hi\n");
        assert_eq!(d.read(PORT, 1), 0xe9);
    }
}
