//! The PC's physical memory map as BIOS INT 15h/E820 reports it; shared by
//! the direct-boot loaders so every guest sees the same layout.

/// E820 range types.
pub const RAM: u32 = 1;
pub const RESERVED: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Top of conventional memory: the last KiB below 640 KiB is the EBDA.
pub const LOW_RAM_END: u64 = 0x9fc00;

/// The map of a board with `ram_bytes` of RAM below 4 GiB: conventional
/// memory, the EBDA and the BIOS area reserved, extended memory from 1 MiB.
pub fn pc_map(ram_bytes: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: LOW_RAM_END,
            kind: RAM,
        },
        E820Entry {
            addr: LOW_RAM_END,
            size: 0xa0000 - LOW_RAM_END,
            kind: RESERVED,
        },
        E820Entry {
            addr: 0xf0000,
            size: 0x10000,
            kind: RESERVED,
        },
    ];
    if ram_bytes > 0x10_0000 {
        map.push(E820Entry {
            addr: 0x10_0000,
            size: ram_bytes - 0x10_0000,
            kind: RAM,
        });
    }
    // The BIOS ROM alias at the top of the 4 GiB space.
    map.push(E820Entry {
        addr: 0xfffc_0000,
        size: 0x4_0000,
        kind: RESERVED,
    });
    map
}

impl E820Entry {
    /// The 20-byte layout of boot_params.e820_table and INT 15h/E820.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_covers_low_and_extended_ram() {
        let m = pc_map(128 << 20);
        let ram: u64 = m.iter().filter(|e| e.kind == RAM).map(|e| e.size).sum();
        assert_eq!(ram, LOW_RAM_END + (127 << 20));
        assert!(m.iter().any(|e| e.addr == 0x10_0000 && e.size == 127 << 20));
        // Ranges are sorted and never overlap.
        for w in m.windows(2) {
            assert!(w[0].addr + w[0].size <= w[1].addr);
        }
    }

    #[test]
    fn entry_bytes_are_little_endian_fields() {
        let e = E820Entry {
            addr: 0x1122_3344_5566_7788,
            size: 0x10,
            kind: RESERVED,
        };
        let b = e.to_bytes();
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[8], 0x10);
        assert_eq!(b[16], 2);
    }
}
