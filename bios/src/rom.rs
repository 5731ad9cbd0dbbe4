//! Raw BIOS ROM images: the image's last 64 KiB appear at 0xF0000-0xFFFFF
//! and the whole image ends at 4 GiB, so the reset vector F000:FFF0 runs it.

use crate::LoadError;

/// Check a ROM image's size: a non-zero multiple of 64 KiB, at most 16 MiB.
pub fn check_rom(image: &[u8]) -> Result<(), LoadError> {
    if image.is_empty() || !image.len().is_multiple_of(0x1_0000) || image.len() > 16 << 20 {
        return Err(LoadError(format!(
            "is {} bytes; a BIOS ROM must be a non-zero multiple of 64 KiB, at most 16 MiB",
            image.len()
        )));
    }
    Ok(())
}

/// The part of the ROM visible below 1 MiB (its last 128 KiB or all of it),
/// with the physical address where it starts.
pub fn low_window(image: &[u8]) -> (u64, &[u8]) {
    let n = image.len().min(0x2_0000);
    (0x10_0000 - n as u64, &image[image.len() - n..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rom_sizes() {
        assert!(check_rom(&[]).is_err());
        assert!(check_rom(&vec![0; 1000]).is_err());
        assert!(check_rom(&vec![0; 0x10000]).is_ok());
        let img = vec![0u8; 0x40000];
        let (base, win) = low_window(&img);
        assert_eq!(base, 0xe0000);
        assert_eq!(win.len(), 0x20000);
        let img = vec![0u8; 0x10000];
        assert_eq!(low_window(&img).0, 0xf0000);
    }
}
