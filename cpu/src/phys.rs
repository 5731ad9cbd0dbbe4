//! Guest physical memory: one host allocation for RAM plus per-page
//! attributes (ROM, hole forwarded to the bus, holds decoded code).

pub const PAGE_SIZE: u64 = 4096;
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

/// Writes are dropped (ROM shadow).
pub const PG_ROM: u8 = 1;
/// Not RAM: accesses go to the bus (VGA window, MMIO).
pub const PG_HOLE: u8 = 2;
/// Decoded blocks exist for this page: writes must invalidate them.
pub const PG_CODE: u8 = 4;

pub struct PhysMem {
    pub ram: Vec<u8>,
    pub page_flags: Vec<u8>,
    /// 0xffff_ffff_ffef_ffff when the A20 gate is closed.
    pub a20_mask: u64,
}

impl PhysMem {
    pub fn new(size: usize) -> Self {
        let size = (size + PAGE_SIZE as usize - 1) & PAGE_MASK as usize;
        PhysMem {
            ram: vec![0; size],
            page_flags: vec![0; size / PAGE_SIZE as usize],
            a20_mask: u64::MAX,
        }
    }

    pub fn size(&self) -> u64 {
        self.ram.len() as u64
    }

    /// Flags of the page holding `paddr`, or None when it is not RAM at all.
    #[inline]
    pub fn flags(&self, paddr: u64) -> Option<u8> {
        self.page_flags.get((paddr >> 12) as usize).copied()
    }

    /// RAM that reads and writes directly (not a hole).
    #[inline]
    pub fn is_ram(&self, paddr: u64) -> bool {
        matches!(self.flags(paddr), Some(f) if f & PG_HOLE == 0)
    }

    pub fn set_range_flags(&mut self, start: u64, len: u64, set: u8, clear: u8) {
        let first = (start >> 12) as usize;
        let last = ((start + len).div_ceil(PAGE_SIZE)) as usize;
        for i in first..last.min(self.page_flags.len()) {
            self.page_flags[i] = (self.page_flags[i] & !clear) | set;
        }
    }

    /// Copy bytes into RAM (loaders, DMA without code checks). Returns false
    /// if the range is not entirely RAM.
    pub fn load(&mut self, addr: u64, data: &[u8]) -> bool {
        let end = addr as usize + data.len();
        if end > self.ram.len() {
            return false;
        }
        self.ram[addr as usize..end].copy_from_slice(data);
        true
    }

    #[inline]
    pub fn read_ram(&self, paddr: u64, size: u8) -> u64 {
        let a = paddr as usize;
        match size {
            1 => self.ram[a] as u64,
            2 => u16::from_le_bytes([self.ram[a], self.ram[a + 1]]) as u64,
            4 => u32::from_le_bytes(self.ram[a..a + 4].try_into().unwrap()) as u64,
            _ => u64::from_le_bytes(self.ram[a..a + 8].try_into().unwrap()),
        }
    }

    #[inline]
    pub fn write_ram(&mut self, paddr: u64, size: u8, v: u64) {
        let a = paddr as usize;
        match size {
            1 => self.ram[a] = v as u8,
            2 => self.ram[a..a + 2].copy_from_slice(&(v as u16).to_le_bytes()),
            4 => self.ram[a..a + 4].copy_from_slice(&(v as u32).to_le_bytes()),
            _ => self.ram[a..a + 8].copy_from_slice(&v.to_le_bytes()),
        }
    }
}
