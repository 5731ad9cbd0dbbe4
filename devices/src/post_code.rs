//! The POST diagnostic port 0x80: firmware and kernels write progress codes
//! here (Linux also uses it as an I/O delay). Reads return the last code.

use crate::PortDevice;

pub const PORT: u16 = 0x80;

#[derive(Default)]
pub struct PostCode {
    pub last: u8,
    /// Codes written since the board last took them (for `--trace-post`).
    pub log: Vec<u8>,
    pub keep_log: bool,
}

impl PortDevice for PostCode {
    fn read(&mut self, _port: u16, _size: u8) -> u32 {
        self.last as u32
    }
    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        self.last = value as u8;
        if self.keep_log {
            self.log.push(self.last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_code_reads_back_and_is_logged_on_request() {
        let mut p = PostCode::default();
        p.write(PORT, 1, 0x1234);
        assert_eq!(p.read(PORT, 1), 0x34);
        assert!(p.log.is_empty());
        p.keep_log = true;
        p.write(PORT, 1, 0xaa);
        assert_eq!(p.log, vec![0xaa]);
    }
}
