//! Linux x86 boot protocol, 32-bit and 64-bit entries: checks the bzImage
//! setup header, loads the protected-mode kernel at 1 MiB, and builds
//! boot_params (the "zero page") with the E820 map, the command line and
//! the initrd. For the 64-bit entry it also builds identity-mapped page
//! tables and a GDT with a 64-bit code segment.
//! Offsets are the ones Documentation/arch/x86/boot.rst defines.

use crate::e820::{self, E820Entry};
use crate::multiboot::GuestRam;
use crate::LoadError;

/// Where the loader puts its structures: free conventional memory that
/// neither the kernel nor its decompressor touch before reading them.
pub const BOOT_PARAMS_ADDR: u64 = 0x1_0000;
pub const GDT_ADDR: u64 = 0x1_1000;
/// PML4, one PDPT and four page directories identity-mapping the low
/// 4 GiB with 2 MiB pages (64-bit entry only).
pub const PAGE_TABLES_ADDR: u64 = 0x1_2000;
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// The protected-mode kernel of a bzImage is loaded at 1 MiB.
pub const KERNEL_ADDR: u64 = 0x10_0000;

/// Boot segment selectors the protocol requires (__BOOT_CS, __BOOT_DS).
pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;

const HDR_MAGIC: &[u8; 4] = b"HdrS";
const LOADED_HIGH: u8 = 1;
const LOADER_UNDEFINED: u8 = 0xff;

// Setup header fields (offsets into the image and into boot_params alike).
const OFF_SETUP_SECTS: usize = 0x1f1;
const OFF_SYSSIZE: usize = 0x1f4;
const OFF_BOOT_FLAG: usize = 0x1fe;
const OFF_JUMP: usize = 0x200;
const OFF_HEADER: usize = 0x202;
const OFF_VERSION: usize = 0x206;
const OFF_TYPE_OF_LOADER: usize = 0x210;
const OFF_LOADFLAGS: usize = 0x211;
const OFF_CODE32_START: usize = 0x214;
const OFF_RAMDISK_IMAGE: usize = 0x218;
const OFF_RAMDISK_SIZE: usize = 0x21c;
const OFF_CMD_LINE_PTR: usize = 0x228;
const OFF_INITRD_ADDR_MAX: usize = 0x22c;
const OFF_XLOADFLAGS: usize = 0x236;
const OFF_CMDLINE_SIZE: usize = 0x238;
/// xloadflags bit 0: a 64-bit entry point sits 0x200 past the load address.
const XLF_KERNEL_64: u16 = 1;
const OFF_PREF_ADDRESS: usize = 0x258;
const OFF_INIT_SIZE: usize = 0x260;
// boot_params fields outside the setup header.
const BP_ALT_MEM_K: usize = 0x1e0;
const BP_E820_ENTRIES: usize = 0x1e8;
const BP_E820_TABLE: usize = 0x2d0;
const BP_E820_MAX: usize = 128;

/// Which entry point of the kernel to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryChoice {
    /// The 64-bit entry when the kernel has one, else the 32-bit one.
    #[default]
    Auto,
    Bits32,
    Bits64,
}

/// Register state for the chosen entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub entry: u64,
    /// Enter in 64-bit mode (CR3 = `PAGE_TABLES_ADDR`, GDT at `GDT_ADDR`
    /// with a 64-bit code segment) rather than flat 32-bit protected mode.
    pub long_mode: bool,
    /// ESI: physical address of boot_params.
    pub boot_params: u32,
    /// Where the initrd went (address, size), if any.
    pub initrd: Option<(u64, u64)>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// True when `image` starts like a bzImage (so the CLI can pick the loader).
pub fn is_bzimage(image: &[u8]) -> bool {
    image.len() > OFF_HEADER + 4
        && u16_at(image, OFF_BOOT_FLAG) == 0xaa55
        && &image[OFF_HEADER..OFF_HEADER + 4] == HDR_MAGIC
}

/// Load `image` (a bzImage) with `initrd` and `cmdline` into `ram`.
pub fn load(
    image: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    choice: EntryChoice,
    ram: &mut dyn GuestRam,
) -> Result<BootState, LoadError> {
    let err = |m: String| Err(LoadError(m));
    if !is_bzimage(image) {
        return err("not a Linux bzImage (no 0xAA55 boot flag and \"HdrS\" setup header)".into());
    }
    let version = u16_at(image, OFF_VERSION);
    if version < 0x0204 {
        return err(format!(
            "boot protocol {}.{:02} is too old (2.04 or later needed)",
            version >> 8,
            version & 0xff
        ));
    }
    if image[OFF_LOADFLAGS] & LOADED_HIGH == 0 {
        return err("zImage kernels (loaded below 1 MiB) are not supported; use a bzImage".into());
    }
    let has64 = version >= 0x020c && u16_at(image, OFF_XLOADFLAGS) & XLF_KERNEL_64 != 0;
    let long_mode = match choice {
        EntryChoice::Auto => has64,
        EntryChoice::Bits32 => false,
        EntryChoice::Bits64 if has64 => true,
        EntryChoice::Bits64 => {
            return err(
                "this kernel has no 64-bit entry point (boot protocol 2.12+ with XLF_KERNEL_64 needed); use the 32-bit entry".into(),
            )
        }
    };
    let setup_sects = match image[OFF_SETUP_SECTS] {
        0 => 4,
        n => n as usize,
    };
    let setup_len = (setup_sects + 1) * 512;
    let header_end = OFF_HEADER + image[OFF_JUMP + 1] as usize;
    let kernel_len = u32_at(image, OFF_SYSSIZE) as usize * 16;
    if image.len() < setup_len + kernel_len || header_end > setup_len {
        return err(format!(
            "truncated bzImage: {} bytes, header says {} (setup {} + kernel {})",
            image.len(),
            setup_len + kernel_len,
            setup_len,
            kernel_len
        ));
    }
    let kernel = &image[setup_len..];
    let ram_size = ram.size();
    // The decompressor works in place from its preferred address.
    let pref = if version >= 0x020a {
        u64::from_le_bytes(
            image[OFF_PREF_ADDRESS..OFF_PREF_ADDRESS + 8]
                .try_into()
                .unwrap(),
        )
    } else {
        KERNEL_ADDR
    };
    let init_size = if version >= 0x020a {
        u32_at(image, OFF_INIT_SIZE) as u64
    } else {
        0
    };
    let kernel_end = (KERNEL_ADDR + kernel.len() as u64).max(pref + init_size);
    if kernel_end > ram_size {
        return err(format!(
            "the kernel needs RAM up to {:#x} (it decompresses to {:#x}, {} bytes) but -m gives {} MiB",
            kernel_end,
            pref,
            init_size,
            ram_size >> 20
        ));
    }

    let mut bp = vec![0u8; 4096];
    bp[OFF_SETUP_SECTS..header_end].copy_from_slice(&image[OFF_SETUP_SECTS..header_end]);
    bp[OFF_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    let extended_k = ram_size.saturating_sub(0x10_0000) >> 10;
    put_u32(
        &mut bp,
        BP_ALT_MEM_K,
        extended_k.min(u32::MAX as u64) as u32,
    );

    let cmdline_max = if version >= 0x0206 {
        u32_at(image, OFF_CMDLINE_SIZE) as usize
    } else {
        255
    };
    if cmdline.len() > cmdline_max {
        return err(format!(
            "--append: command line is {} bytes, this kernel takes at most {}",
            cmdline.len(),
            cmdline_max
        ));
    }
    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    put_u32(&mut bp, OFF_CMD_LINE_PTR, CMDLINE_ADDR as u32);

    let map: Vec<E820Entry> = e820::pc_map(ram_size);
    bp[BP_E820_ENTRIES] = map.len().min(BP_E820_MAX) as u8;
    for (k, e) in map.iter().take(BP_E820_MAX).enumerate() {
        let off = BP_E820_TABLE + 20 * k;
        bp[off..off + 20].copy_from_slice(&e.to_bytes());
    }

    let mut placed = None;
    if let Some(rd) = initrd {
        let size = rd.len() as u64;
        let limit = (u32_at(image, OFF_INITRD_ADDR_MAX) as u64 + 1).min(ram_size);
        let addr = limit.checked_sub(size).map(|a| a & !0xfff);
        match addr {
            Some(a) if a >= kernel_end => {
                put_u32(&mut bp, OFF_RAMDISK_IMAGE, a as u32);
                put_u32(&mut bp, OFF_RAMDISK_SIZE, size as u32);
                placed = Some((a, size));
            }
            _ => {
                return err(format!(
                    "--initrd: {} bytes do not fit between the kernel's end {:#x} and the initrd limit {:#x}; give more memory with -m",
                    size, kernel_end, limit
                ))
            }
        }
    }

    // Flat 4 GiB code and data descriptors at the selectors the protocol
    // names; for the 64-bit entry the code segment has L set.
    let code: u64 = if long_mode {
        0x00af_9a00_0000_ffff
    } else {
        0x00cf_9a00_0000_ffff
    };
    let mut gdt = [0u8; 32];
    gdt[16..24].copy_from_slice(&code.to_le_bytes());
    gdt[24..32].copy_from_slice(&0x00cf_9200_0000_ffffu64.to_le_bytes());

    let mut write = |addr: u64, data: &[u8], what: &str| {
        if ram.write(addr, data) {
            Ok(())
        } else {
            Err(LoadError(format!("{what} does not fit in guest RAM")))
        }
    };
    write(KERNEL_ADDR, kernel, "the kernel")?;
    write(BOOT_PARAMS_ADDR, &bp, "boot_params")?;
    write(CMDLINE_ADDR, &cl, "the command line")?;
    write(GDT_ADDR, &gdt, "the boot GDT")?;
    if let (Some(rd), Some((a, _))) = (initrd, placed) {
        write(a, rd, "the initrd")?;
    }
    if long_mode {
        write(PAGE_TABLES_ADDR, &identity_tables(), "the boot page tables")?;
    }
    Ok(BootState {
        entry: if long_mode {
            KERNEL_ADDR + 0x200
        } else {
            u32_at(image, OFF_CODE32_START) as u64
        },
        long_mode,
        boot_params: BOOT_PARAMS_ADDR as u32,
        initrd: placed,
    })
}

/// Page tables for the 64-bit entry: the protocol wants the kernel, its
/// decompression buffer, boot_params and the command line identity-mapped;
/// mapping all of the low 4 GiB with 2 MiB pages covers the initrd too.
fn identity_tables() -> Vec<u8> {
    const PRESENT_RW: u64 = 0x3;
    const LARGE: u64 = 0x80;
    let mut t = vec![0u8; 6 * 4096];
    let mut put = |off: usize, v: u64| t[off..off + 8].copy_from_slice(&v.to_le_bytes());
    let pdpt = PAGE_TABLES_ADDR + 0x1000;
    put(0, pdpt | PRESENT_RW);
    for g in 0..4u64 {
        let pd = PAGE_TABLES_ADDR + 0x2000 + g * 0x1000;
        put(0x1000 + 8 * g as usize, pd | PRESENT_RW);
        for m in 0..512u64 {
            let addr = (g << 30) | (m << 21);
            put(
                0x2000 + (g as usize * 512 + m as usize) * 8,
                addr | PRESENT_RW | LARGE,
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal synthetic bzImage: setup header, 1 setup sector, `kernel` bytes.
    fn image(version: u16, kernel: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[OFF_SETUP_SECTS] = 1;
        put_u32(&mut b, OFF_SYSSIZE, kernel.len().div_ceil(16) as u32);
        b[OFF_BOOT_FLAG] = 0x55;
        b[OFF_BOOT_FLAG + 1] = 0xaa;
        b[OFF_JUMP] = 0xeb;
        b[OFF_JUMP + 1] = 0x66; // header ends at 0x268
        b[OFF_HEADER..OFF_HEADER + 4].copy_from_slice(HDR_MAGIC);
        b[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&version.to_le_bytes());
        b[OFF_LOADFLAGS] = LOADED_HIGH;
        put_u32(&mut b, OFF_CODE32_START, 0x10_0000);
        put_u32(&mut b, OFF_INITRD_ADDR_MAX, 0x37ff_ffff);
        put_u32(&mut b, OFF_CMDLINE_SIZE, 2047);
        b[OFF_PREF_ADDRESS..OFF_PREF_ADDRESS + 8].copy_from_slice(&0x100_0000u64.to_le_bytes());
        put_u32(&mut b, OFF_INIT_SIZE, 0x10_0000);
        let mut k = kernel.to_vec();
        k.resize(kernel.len().div_ceil(16) * 16, 0);
        b.extend_from_slice(&k);
        b
    }

    #[test]
    fn loads_kernel_params_cmdline_and_initrd() {
        let img = image(0x020f, &[0xf4, 0x90, 0x90]);
        let mut ram = vec![0u8; 64 << 20];
        let rd = vec![0x5a; 5000];
        let st = load(
            &img,
            Some(&rd),
            "console=ttyS0",
            EntryChoice::Auto,
            &mut ram,
        )
        .unwrap();
        assert_eq!(st.entry, 0x10_0000);
        assert!(!st.long_mode, "no XLF_KERNEL_64: 32-bit entry");
        assert_eq!(st.boot_params, BOOT_PARAMS_ADDR as u32);
        assert_eq!(ram[0x10_0000], 0xf4);
        let bp = &ram[BOOT_PARAMS_ADDR as usize..BOOT_PARAMS_ADDR as usize + 4096];
        assert_eq!(&bp[OFF_HEADER..OFF_HEADER + 4], HDR_MAGIC);
        assert_eq!(bp[OFF_TYPE_OF_LOADER], 0xff);
        assert_eq!(u32_at(bp, OFF_CMD_LINE_PTR), CMDLINE_ADDR as u32);
        assert_eq!(
            &ram[CMDLINE_ADDR as usize..CMDLINE_ADDR as usize + 14],
            b"console=ttyS0\0"
        );
        let (a, s) = st.initrd.unwrap();
        assert_eq!(s, 5000);
        assert_eq!(a, ((64 << 20) - 5000) & !0xfff);
        assert_eq!(u32_at(bp, OFF_RAMDISK_IMAGE) as u64, a);
        assert_eq!(u32_at(bp, OFF_RAMDISK_SIZE), 5000);
        assert_eq!(ram[a as usize + 4999], 0x5a);
        assert_eq!(bp[BP_E820_ENTRIES] as usize, e820::pc_map(64 << 20).len());
        assert_eq!(u32_at(bp, BP_ALT_MEM_K), 63 * 1024);
        // The extended-memory E820 entry is where the table says.
        let e3 = &bp[BP_E820_TABLE + 60..BP_E820_TABLE + 80];
        assert_eq!(u32_at(e3, 0), 0x10_0000);
        assert_eq!(u32_at(e3, 16), e820::RAM);
        // Flat boot descriptors at 0x10 and 0x18.
        assert_eq!(ram[GDT_ADDR as usize + 16 + 5], 0x9a);
        assert_eq!(ram[GDT_ADDR as usize + 24 + 5], 0x92);
    }

    #[test]
    fn kernel_64_uses_the_64_bit_entry_with_identity_tables() {
        let mut img = image(0x020f, &[0xf4; 0x300]);
        img[OFF_XLOADFLAGS] = XLF_KERNEL_64 as u8;
        let mut ram = vec![0u8; 64 << 20];
        let st = load(&img, None, "", EntryChoice::Auto, &mut ram).unwrap();
        assert!(st.long_mode);
        assert_eq!(st.entry, KERNEL_ADDR + 0x200);
        let q = |a: u64| u64::from_le_bytes(ram[a as usize..a as usize + 8].try_into().unwrap());
        // GDT 0x10: code with L=1, D=0.
        assert_eq!(q(GDT_ADDR + 16) >> 52 & 0xf, 0xa);
        // Walk 0x5234_5678: PML4[0] -> PDPT[1] -> PD[0x91], a 2 MiB page.
        let lin = 0x5234_5678u64;
        let pml4e = q(PAGE_TABLES_ADDR);
        let pdpte = q((pml4e & !0xfff) + 8 * ((lin >> 30) & 0x1ff));
        let pde = q((pdpte & !0xfff) + 8 * ((lin >> 21) & 0x1ff));
        assert_eq!(pde & 0x83, 0x83, "present, writable, 2 MiB");
        assert_eq!(pde & !0xfff, 0x5220_0000);
        // The top of the 4 GiB is mapped too.
        let pdpte3 = q((pml4e & !0xfff) + 8 * 3);
        assert_eq!(q((pdpte3 & !0xfff) + 8 * 511) & !0xfff, 0xffe0_0000);
        // Forcing the 32-bit entry still works; forcing 64 on a 32-bit-only kernel fails.
        let st32 = load(&img, None, "", EntryChoice::Bits32, &mut ram).unwrap();
        assert!(!st32.long_mode);
        assert_eq!(st32.entry, 0x10_0000);
        let plain = image(0x020f, &[0; 16]);
        let e = load(&plain, None, "", EntryChoice::Bits64, &mut ram).unwrap_err();
        assert!(e.0.contains("no 64-bit entry"), "{e}");
    }

    #[test]
    fn rejects_bad_images_with_reasons() {
        let mut ram = vec![0u8; 64 << 20];
        let e = load(b"MZ not linux", None, "", EntryChoice::Auto, &mut ram).unwrap_err();
        assert!(e.0.contains("not a Linux bzImage"), "{e}");
        let old = image(0x0202, &[0; 32]);
        assert!(load(&old, None, "", EntryChoice::Auto, &mut ram)
            .unwrap_err()
            .0
            .contains("too old"));
        let mut trunc = image(0x020f, &[0; 64]);
        trunc.truncate(trunc.len() - 20);
        assert!(load(&trunc, None, "", EntryChoice::Auto, &mut ram)
            .unwrap_err()
            .0
            .contains("truncated"));
        let img = image(0x020f, &[0; 16]);
        let long = "x".repeat(3000);
        assert!(load(&img, None, &long, EntryChoice::Auto, &mut ram)
            .unwrap_err()
            .0
            .contains("at most 2047"));
    }

    #[test]
    fn initrd_that_does_not_fit_is_an_error() {
        let img = image(0x020f, &[0; 16]);
        let mut ram = vec![0u8; 24 << 20];
        let rd = vec![0u8; 10 << 20];
        let e = load(&img, Some(&rd), "", EntryChoice::Auto, &mut ram).unwrap_err();
        assert!(e.0.contains("--initrd"), "{e}");
        // Too little RAM for the decompressed kernel.
        let mut small = vec![0u8; 8 << 20];
        assert!(load(&img, None, "", EntryChoice::Auto, &mut small)
            .unwrap_err()
            .0
            .contains("-m gives"));
    }
}
