//! Multiboot (version 1) loader: finds the header, loads the ELF's program
//! segments (or the a.out-kludge range), and builds the multiboot
//! information structure with memory sizes, a memory map and the command line.

use crate::LoadError;
use goblin::elf::{program_header::PT_LOAD, Elf};

pub const HEADER_MAGIC: u32 = 0x1bad_b002;
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;

const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Header flag bits this loader honours (page-align, memory info, a.out kludge).
const SUPPORTED_REQUIRED: u32 = 0x3;

/// Where the loader puts its structures (free low memory).
const MBI_ADDR: u64 = 0x9000;
const CMDLINE_ADDR: u64 = 0x9100;
const MMAP_ADDR: u64 = 0x9800;
const NAME_ADDR: u64 = 0x9a00;
const CMDLINE_MAX: usize = 0x6ff;

/// The register state a multiboot kernel starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub entry: u32,
    /// EBX: physical address of the multiboot information structure.
    pub mbi: u32,
}

/// Memory accessible to the loader: writes into guest RAM.
pub trait GuestRam {
    fn size(&self) -> u64;
    fn write(&mut self, addr: u64, data: &[u8]) -> bool;
}

impl GuestRam for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let end = addr as usize + data.len();
        if end > self.len() {
            return false;
        }
        self[addr as usize..end].copy_from_slice(data);
        true
    }
}

struct Header {
    offset: usize,
    flags: u32,
    header_addr: u32,
    load_addr: u32,
    load_end_addr: u32,
    bss_end_addr: u32,
    entry_addr: u32,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn find_header(image: &[u8]) -> Option<Header> {
    let limit = image.len().min(8192);
    let mut off = 0;
    while off + 12 <= limit {
        let magic = u32_at(image, off);
        if magic == HEADER_MAGIC {
            let flags = u32_at(image, off + 4);
            let sum = u32_at(image, off + 8);
            if magic.wrapping_add(flags).wrapping_add(sum) == 0 {
                let field = |k: usize| {
                    if off + 12 + 4 * k + 4 <= image.len() {
                        u32_at(image, off + 12 + 4 * k)
                    } else {
                        0
                    }
                };
                return Some(Header {
                    offset: off,
                    flags,
                    header_addr: field(0),
                    load_addr: field(1),
                    load_end_addr: field(2),
                    bss_end_addr: field(3),
                    entry_addr: field(4),
                });
            }
        }
        off += 4;
    }
    None
}

/// Load `image` into `ram` and build the boot information.
pub fn load(image: &[u8], cmdline: &str, ram: &mut dyn GuestRam) -> Result<BootState, LoadError> {
    let h = find_header(image).ok_or_else(|| {
        LoadError("has no multiboot header (magic 0x1BADB002) in its first 8 KiB".into())
    })?;
    let unsupported = h.flags & 0xffff & !SUPPORTED_REQUIRED;
    if unsupported != 0 {
        return Err(LoadError(format!(
            "multiboot header requires unsupported features (flags {unsupported:#x})"
        )));
    }
    let entry = if h.flags & FLAG_AOUT_KLUDGE != 0 {
        load_aout(image, &h, ram)?
    } else {
        load_elf(image, ram)?
    };
    let mbi = build_info(cmdline, ram)?;
    Ok(BootState { entry, mbi })
}

fn load_aout(image: &[u8], h: &Header, ram: &mut dyn GuestRam) -> Result<u32, LoadError> {
    if h.load_addr > h.header_addr {
        return Err(LoadError(
            "multiboot header: load_addr above header_addr".into(),
        ));
    }
    let file_start = h.offset - (h.header_addr - h.load_addr) as usize;
    let end = if h.load_end_addr == 0 {
        image.len()
    } else {
        file_start + (h.load_end_addr - h.load_addr) as usize
    };
    if end > image.len() || file_start > end {
        return Err(LoadError(
            "multiboot header: load range past end of file".into(),
        ));
    }
    let data = &image[file_start..end];
    if !ram.write(h.load_addr as u64, data) {
        return Err(LoadError(format!(
            "kernel does not fit in guest RAM (loads at {:#x}, {} bytes)",
            h.load_addr,
            data.len()
        )));
    }
    if h.bss_end_addr > h.load_addr + data.len() as u32 {
        let bss = vec![0u8; (h.bss_end_addr - h.load_addr) as usize - data.len()];
        if !ram.write(h.load_addr as u64 + data.len() as u64, &bss) {
            return Err(LoadError("kernel BSS does not fit in guest RAM".into()));
        }
    }
    Ok(h.entry_addr)
}

fn load_elf(image: &[u8], ram: &mut dyn GuestRam) -> Result<u32, LoadError> {
    let elf = Elf::parse(image).map_err(|e| LoadError(format!("is not a valid ELF file: {e}")))?;
    if elf.is_64 {
        return Err(LoadError(
            "is a 64-bit ELF; multiboot v1 kernels must be ELF32 (or use the a.out kludge)".into(),
        ));
    }
    let mut loaded = 0;
    for ph in elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD) {
        let off = ph.p_offset as usize;
        let filesz = ph.p_filesz as usize;
        if off.checked_add(filesz).is_none_or(|e| e > image.len()) {
            return Err(LoadError(format!(
                "ELF segment at file offset {off:#x} runs past the end of the file"
            )));
        }
        if ph.p_memsz < ph.p_filesz {
            return Err(LoadError("ELF segment with memsz < filesz".into()));
        }
        let mut data = image[off..off + filesz].to_vec();
        data.resize(ph.p_memsz as usize, 0);
        if !ram.write(ph.p_paddr, &data) {
            return Err(LoadError(format!(
                "ELF segment at {:#x} ({} bytes) does not fit in guest RAM of {} MiB",
                ph.p_paddr,
                data.len(),
                ram.size() >> 20
            )));
        }
        loaded += 1;
    }
    if loaded == 0 {
        return Err(LoadError("ELF file has no loadable segments".into()));
    }
    Ok(elf.entry as u32)
}

fn build_info(cmdline: &str, ram: &mut dyn GuestRam) -> Result<u32, LoadError> {
    let size = ram.size();
    if size < 2 << 20 {
        return Err(LoadError(
            "guest RAM must be at least 2 MiB for multiboot".into(),
        ));
    }
    let mut cmd = cmdline.as_bytes().to_vec();
    if cmd.len() > CMDLINE_MAX {
        return Err(LoadError(format!(
            "kernel command line is {} bytes; at most {CMDLINE_MAX} are supported",
            cmd.len()
        )));
    }
    cmd.push(0);
    ram.write(CMDLINE_ADDR, &cmd);
    ram.write(NAME_ADDR, b"Leap\0");
    // E820-style map: conventional memory, EBDA, BIOS area, extended memory.
    let below_4g = size.min(0xfec0_0000);
    let map: [(u64, u64, u32); 4] = [
        (0, 0x9fc00, 1),
        (0x9fc00, 0x400, 2),
        (0xf0000, 0x10000, 2),
        (0x10_0000, below_4g - 0x10_0000, 1),
    ];
    let mut mmap = Vec::new();
    for (base, len, typ) in map {
        mmap.extend_from_slice(&20u32.to_le_bytes());
        mmap.extend_from_slice(&base.to_le_bytes());
        mmap.extend_from_slice(&len.to_le_bytes());
        mmap.extend_from_slice(&typ.to_le_bytes());
    }
    ram.write(MMAP_ADDR, &mmap);
    let mut mbi = [0u8; 88];
    let mut put = |off: usize, v: u32| mbi[off..off + 4].copy_from_slice(&v.to_le_bytes());
    // flags: mem_*, cmdline, mmap, boot_loader_name
    put(0, 1 | 1 << 2 | 1 << 6 | 1 << 9);
    put(4, 639);
    put(8, ((below_4g - 0x10_0000) >> 10) as u32);
    put(16, CMDLINE_ADDR as u32);
    put(44, mmap.len() as u32);
    put(48, MMAP_ADDR as u32);
    put(64, NAME_ADDR as u32);
    ram.write(MBI_ADDR, &mbi);
    Ok(MBI_ADDR as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aout_image(flags_extra: u32) -> Vec<u8> {
        // Header at offset 0, loaded at 1 MiB, entry 12 bytes in.
        let mut img = vec![0u8; 64];
        let flags = FLAG_AOUT_KLUDGE | 0x2 | flags_extra;
        let words = [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)),
            0x10_0000,
            0x10_0000,
            0,
            0x10_0100,
            0x10_0030,
        ];
        for (k, w) in words.iter().enumerate() {
            img[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
        }
        img[0x30] = 0xf4;
        img
    }

    #[test]
    fn loads_aout_kludge_and_builds_info() {
        let mut ram = vec![0u8; 4 << 20];
        let st = load(&aout_image(0), "console=x", &mut ram).unwrap();
        assert_eq!(st.entry, 0x10_0030);
        assert_eq!(st.mbi, MBI_ADDR as u32);
        assert_eq!(ram[0x10_0030], 0xf4);
        let mbi = MBI_ADDR as usize;
        assert_eq!(u32_at(&ram, mbi), 0x245);
        assert_eq!(u32_at(&ram, mbi + 8), (3 << 20) >> 10);
        let cmd = u32_at(&ram, mbi + 16) as usize;
        assert_eq!(&ram[cmd..cmd + 10], b"console=x\0");
        let mmap = u32_at(&ram, mbi + 48) as usize;
        assert_eq!(u32_at(&ram, mmap), 20);
        assert_eq!(u32_at(&ram, mmap + 28), 0x9fc00);
    }

    #[test]
    fn rejects_missing_header_and_bad_elf() {
        let mut ram = vec![0u8; 4 << 20];
        let e = load(&[0u8; 100], "", &mut ram).unwrap_err();
        assert!(e.0.contains("no multiboot header"), "{e}");
        // Header without the a.out kludge in a non-ELF file.
        let mut img = aout_image(0);
        let flags = 0x2u32;
        img[4..8].copy_from_slice(&flags.to_le_bytes());
        let sum = 0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags));
        img[8..12].copy_from_slice(&sum.to_le_bytes());
        let e = load(&img, "", &mut ram).unwrap_err();
        assert!(e.0.contains("not a valid ELF"), "{e}");
    }

    #[test]
    fn rejects_unsupported_flags_and_small_ram() {
        let mut ram = vec![0u8; 4 << 20];
        let e = load(&aout_image(1 << 2), "", &mut ram).unwrap_err();
        assert!(e.0.contains("unsupported"), "{e}");
        let mut small = vec![0u8; 1 << 20];
        assert!(load(&aout_image(0), "", &mut small).is_err());
    }
}
