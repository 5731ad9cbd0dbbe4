//! ACPI tables for direct boots: what SeaBIOS would have left in memory on
//! QEMU's i440FX PC, cut down to what Leap's board has.
//!
//! One contiguous blob, placed by the caller in the BIOS area (the OS finds
//! the RSDP by scanning 0xE0000-0xFFFFF on 16-byte boundaries):
//! - RSDP, revision 2, pointing at both an RSDT and an XSDT;
//! - FACS (64-byte aligned; the FADT must point at one, and ACPICA uses its
//!   global-lock word);
//! - RSDT and XSDT listing the FADT and the MADT;
//! - FADT, revision 3 (ACPI 2.0), with both the 32-bit and the extended
//!   (GAS) addresses of the PIIX4 PM blocks, which must agree;
//! - MADT: one local APIC, the I/O APIC, ISA overrides and LINT1 = NMI;
//! - DSDT with `\_S5_`, so the OS knows the SLP_TYP value for soft off,
//!   and the PCI root bridge: with ACPI on, Linux finds PCI buses only
//!   through PNP0A03 devices in the namespace.
//!
//! The fixed-layout tables are written here field by field (each is a
//! short list of offsets); the AML comes from rust-vmm's `acpi_tables`
//! encoder, which gets package lengths and integer encodings right.

use acpi_tables::{aml, Aml};

/// What the tables describe.
pub struct AcpiConfig {
    pub lapic_addr: u32,
    pub lapic_id: u8,
    pub ioapic_id: u8,
    pub ioapic_addr: u32,
    /// First port of the PIIX4 PM block: PM1a_EVT at +0, PM1a_CNT at +4,
    /// PM_TMR at +8.
    pub pm_base: u16,
    /// The ISA IRQ (and, identity-mapped, the GSI) of the SCI.
    pub sci_irq: u8,
    /// The SLP_TYP value PM1_CNT takes for soft off (S5).
    pub s5_slp_typ: u8,
    /// An I/O port and the byte that resets the machine (0xCF9, 0x06).
    pub reset: Option<(u16, u8)>,
    /// The CMOS index of the RTC's century byte, 0 for none.
    pub rtc_century: u8,
    /// The memory window PCI devices may be placed in (first and last
    /// byte): from the top of RAM to below the I/O APIC.
    pub pci_mem: (u32, u32),
}

pub const RSDP_LEN: usize = 36;
pub const FADT_LEN: usize = 244;
pub const FACS_LEN: usize = 64;
const HEADER_LEN: usize = 36;

const OEM_ID: &[u8; 6] = b"LEAP  ";
const OEM_TABLE_ID: &[u8; 8] = b"LEAPPC  ";
const CREATOR_ID: &[u8; 4] = b"LEAP";

/// FADT flags.
const FADT_WBINVD: u32 = 1 << 0;
const FADT_PROC_C1: u32 = 1 << 2;
/// Set: no fixed-feature sleep button. The power button stays a fixed
/// feature (PWR_BUTTON, bit 4, clear), backed by PM1 PWRBTN_STS/EN.
const FADT_SLP_BUTTON: u32 = 1 << 5;
const FADT_RESET_REG_SUP: u32 = 1 << 10;
/// IAPC_BOOT_ARCH: ISA devices exist, and an 8042 (Linux skips the i8042
/// driver on a revision 2+ FADT without this bit).
const BOOT_ARCH_LEGACY_DEVICES: u16 = 1 << 0;
const BOOT_ARCH_8042: u16 = 1 << 1;
/// Latencies above 100 and 1000 us mean "no C2" and "no C3".
const NO_C2_LATENCY: u16 = 0x0fff;
const NO_C3_LATENCY: u16 = 0x0fff;

/// MADT flags: the PC's dual 8259s are present (OS must mask them).
const MADT_PCAT_COMPAT: u32 = 1 << 0;
const MADT_LAPIC: u8 = 0;
const MADT_IOAPIC: u8 = 1;
const MADT_ISO: u8 = 2;
const MADT_LAPIC_NMI: u8 = 4;
/// MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2.
const INTI_CONFORMS: u16 = 0;
const INTI_ACTIVE_HIGH: u16 = 0b01;
const INTI_LEVEL: u16 = 0b11 << 2;

/// Generic Address Structure address-space ID for port I/O.
const GAS_SYSTEM_IO: u8 = 1;
/// GAS access size 1: byte accesses.
const GAS_ACCESS_BYTE: u8 = 1;

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

fn put16(t: &mut [u8], off: usize, v: u16) {
    t[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(t: &mut [u8], off: usize, v: u32) {
    t[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(t: &mut [u8], off: usize, v: u64) {
    t[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// A system I/O Generic Address Structure for a register of `len` bytes.
fn put_gas_io(t: &mut [u8], off: usize, port: u16, len: u8, access: u8) {
    if port == 0 {
        return; // an all-zero GAS means "not present"
    }
    t[off] = GAS_SYSTEM_IO;
    t[off + 1] = len * 8;
    t[off + 2] = 0;
    t[off + 3] = access;
    put64(t, off + 4, port as u64);
}

/// A description table: the common header around `body`, checksummed.
fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; HEADER_LEN];
    t[0..4].copy_from_slice(signature);
    t[8] = revision;
    t[10..16].copy_from_slice(OEM_ID);
    t[16..24].copy_from_slice(OEM_TABLE_ID);
    put32(&mut t, 24, 1); // OEM revision
    t[28..32].copy_from_slice(CREATOR_ID);
    put32(&mut t, 32, 1); // creator revision
    t.extend_from_slice(body);
    let len = t.len() as u32;
    put32(&mut t, 4, len);
    t[9] = checksum(&t);
    t
}

fn facs() -> Vec<u8> {
    let mut t = vec![0u8; FACS_LEN];
    t[0..4].copy_from_slice(b"FACS");
    put32(&mut t, 4, FACS_LEN as u32);
    // Hardware signature 0, no waking vector (nothing resumes), global
    // lock free, no S4BIOS; version 1 is the ACPI 2.0 layout.
    t[32] = 1;
    t
}

fn fadt(c: &AcpiConfig, facs: u32, dsdt: u32) -> Vec<u8> {
    let mut t = sdt(b"FACP", 3, &[0u8; FADT_LEN - HEADER_LEN]);
    let pm1_evt = c.pm_base;
    let pm1_cnt = c.pm_base + 4;
    let pm_tmr = c.pm_base + 8;
    put32(&mut t, 36, facs);
    put32(&mut t, 40, dsdt);
    put16(&mut t, 46, c.sci_irq as u16);
    // SMI_CMD 0: the hardware is in ACPI mode already (SCI_EN set by the
    // board), there is no handshake to make. ACPI_ENABLE/DISABLE stay 0.
    put32(&mut t, 48, 0);
    put32(&mut t, 56, pm1_evt as u32);
    put32(&mut t, 64, pm1_cnt as u32);
    put32(&mut t, 76, pm_tmr as u32);
    t[88] = 4; // PM1_EVT_LEN: status and enable, 16 bits each
    t[89] = 2; // PM1_CNT_LEN
    t[91] = 4; // PM_TMR_LEN
    put16(&mut t, 96, NO_C2_LATENCY);
    put16(&mut t, 98, NO_C3_LATENCY);
    t[108] = c.rtc_century;
    put16(&mut t, 109, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042);
    let mut flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON;
    if let Some((port, value)) = c.reset {
        flags |= FADT_RESET_REG_SUP;
        put_gas_io(&mut t, 116, port, 1, GAS_ACCESS_BYTE);
        t[128] = value;
    }
    put32(&mut t, 112, flags);
    // X_FIRMWARE_CTRL stays 0: the spec allows only one of the two FACS
    // pointers to be set (and Linux would load the FACS twice).
    put64(&mut t, 140, dsdt as u64);
    // ACPICA checks each extended block against its 32-bit twin: same
    // address, bit width = 8 x the length byte.
    put_gas_io(&mut t, 148, pm1_evt, 4, 0);
    put_gas_io(&mut t, 172, pm1_cnt, 2, 0);
    put_gas_io(&mut t, 208, pm_tmr, 4, 0);
    t[9] = 0;
    t[9] = checksum(&t);
    t
}

fn madt(c: &AcpiConfig) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&c.lapic_addr.to_le_bytes());
    b.extend_from_slice(&MADT_PCAT_COMPAT.to_le_bytes());
    // Processor local APIC: ACPI processor UID 0, enabled.
    b.extend_from_slice(&[MADT_LAPIC, 8, 0, c.lapic_id]);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&[MADT_IOAPIC, 12, c.ioapic_id, 0]);
    b.extend_from_slice(&c.ioapic_addr.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // GSI base
    let mut iso = |irq: u8, gsi: u32, flags: u16| {
        b.extend_from_slice(&[MADT_ISO, 10, 0, irq]); // bus 0 = ISA
        b.extend_from_slice(&gsi.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
    };
    // The PIT's IRQ0 arrives on pin 2; ISA edge/high otherwise.
    iso(0, 2, INTI_CONFORMS);
    // The SCI is a shareable level interrupt, active high on the PIIX4.
    iso(c.sci_irq, c.sci_irq as u32, INTI_LEVEL | INTI_ACTIVE_HIGH);
    // LINT1 of every processor (UID 0xFF) is the NMI input.
    b.extend_from_slice(&[MADT_LAPIC_NMI, 6, 0xff]);
    b.extend_from_slice(&INTI_CONFORMS.to_le_bytes());
    b.push(1);
    sdt(b"APIC", 1, &b)
}

/// The DSDT's AML.
///
/// `Name (\_S5, Package () { typ, typ, 0, 0 })`: the first two elements
/// are the SLP_TYP values for PM1a_CNT and PM1b_CNT (there is no PM1b; it
/// gets the same value by convention), the rest reserved.
///
/// `\_SB.PCI0`, the host bridge: bus 0-255, the configuration ports it
/// consumes, and the windows it forwards: all other ports, the legacy VGA
/// hole and the memory between RAM and the I/O APIC.
fn dsdt(c: &AcpiConfig) -> Vec<u8> {
    let typ = c.s5_slp_typ;
    let zero = 0u8;
    let mut body = Vec::new();
    aml::Name::new(
        "\\_S5_".into(),
        &aml::Package::new(vec![&typ, &typ, &zero, &zero]),
    )
    .to_aml_bytes(&mut body);
    let bus = aml::AddressSpace::new_bus_number(0u16, 0xffu16);
    let cfg_ports = aml::IO::new(0xcf8, 0xcf8, 1, 8);
    let io_low = aml::AddressSpace::new_io(0u16, 0xcf7u16, None);
    let io_high = aml::AddressSpace::new_io(0xd00u16, 0xffffu16, None);
    let mem = |lo: u32, hi: u32| {
        aml::AddressSpace::new_memory(aml::AddressSpaceCacheable::NotCacheable, true, lo, hi, None)
    };
    let vga = mem(0xa_0000, 0xb_ffff);
    let hole = mem(c.pci_mem.0, c.pci_mem.1);
    let mut windows: Vec<&dyn Aml> = vec![&bus, &cfg_ports, &io_low, &io_high, &vga];
    if c.pci_mem.0 < c.pci_mem.1 {
        windows.push(&hole);
    }
    let crs = aml::ResourceTemplate::new(windows);
    let hid = aml::EISAName::new("PNP0A03");
    aml::Scope::new(
        "\\_SB_".into(),
        vec![&aml::Device::new(
            "PCI0".into(),
            vec![
                &aml::Name::new("_HID".into(), &hid),
                &aml::Name::new("_ADR".into(), &zero),
                &aml::Name::new("_UID".into(), &zero),
                &aml::Name::new("_CRS".into(), &crs),
            ],
        )],
    )
    .to_aml_bytes(&mut body);
    // Revision 2: integers in this table's AML are 64-bit.
    sdt(b"DSDT", 2, &body)
}

fn rsdp(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut t = vec![0u8; RSDP_LEN];
    t[0..8].copy_from_slice(b"RSD PTR ");
    t[9..15].copy_from_slice(OEM_ID);
    t[15] = 2;
    put32(&mut t, 16, rsdt);
    put32(&mut t, 20, RSDP_LEN as u32);
    put64(&mut t, 24, xsdt);
    t[8] = checksum(&t[..20]);
    t[32] = checksum(&t);
    t
}

/// Rounds `x` up to a multiple of `align` (a power of two).
fn align_up(x: u32, align: u32) -> u32 {
    (x + align - 1) & !(align - 1)
}

/// Every table, laid out for physical address `base` (16-byte aligned;
/// the RSDP comes first, at `base`). Returns the bytes to copy there.
pub fn build(base: u32, c: &AcpiConfig) -> Vec<u8> {
    let mut out = vec![0u8; RSDP_LEN];
    let place = |out: &mut Vec<u8>, table: &[u8], align: u32| -> u32 {
        let at = align_up(base + out.len() as u32, align);
        out.resize((at - base) as usize, 0);
        out.extend_from_slice(table);
        at
    };
    let facs_at = place(&mut out, &facs(), 64);
    let dsdt_at = place(&mut out, &dsdt(c), 16);
    let fadt_at = place(&mut out, &fadt(c, facs_at, dsdt_at), 16);
    let madt_at = place(&mut out, &madt(c), 16);
    let listed = [fadt_at, madt_at];
    let rsdt_body: Vec<u8> = listed.iter().flat_map(|a| a.to_le_bytes()).collect();
    let rsdt_at = place(&mut out, &sdt(b"RSDT", 1, &rsdt_body), 16);
    let xsdt_body: Vec<u8> = listed
        .iter()
        .flat_map(|&a| (a as u64).to_le_bytes())
        .collect();
    let xsdt_at = place(&mut out, &sdt(b"XSDT", 1, &xsdt_body), 16);
    out[..RSDP_LEN].copy_from_slice(&rsdp(rsdt_at, xsdt_at as u64));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u32 = 0xf5000;

    fn cfg() -> AcpiConfig {
        AcpiConfig {
            lapic_addr: 0xfee0_0000,
            lapic_id: 0,
            ioapic_id: 1,
            ioapic_addr: 0xfec0_0000,
            pm_base: 0x600,
            sci_irq: 9,
            s5_slp_typ: 0,
            reset: Some((0xcf9, 0x06)),
            rtc_century: 0x32,
            pci_mem: (0x1000_0000, 0xfebf_ffff),
        }
    }

    /// The BIOS area 0xE0000-0xFFFFF with the blob copied in at `base`.
    fn bios_area(base: u32) -> Vec<u8> {
        let mut mem = vec![0u8; 0x20000];
        let blob = build(base, &cfg());
        let off = (base - 0xe0000) as usize;
        mem[off..off + blob.len()].copy_from_slice(&blob);
        mem
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    /// Linux's search: every 16 bytes of 0xE0000-0xFFFFF, signature plus
    /// the ACPI 1.0 checksum, plus the extended one for revision 2+.
    fn scan_rsdp(area: &[u8]) -> Option<u32> {
        (0..area.len() - RSDP_LEN).step_by(16).find_map(|off| {
            let r = &area[off..off + RSDP_LEN];
            let ok = &r[..8] == b"RSD PTR "
                && sum(&r[..20]) == 0
                && (r[15] < 2 || sum(&r[..u32_at(r, 20) as usize]) == 0);
            ok.then_some(0xe0000 + off as u32)
        })
    }

    /// The table at physical address `addr` inside the blob built at BASE.
    fn table(blob: &[u8], addr: u64) -> &[u8] {
        let off = (addr - BASE as u64) as usize;
        let len = u32_at(blob, off + 4) as usize;
        &blob[off..off + len]
    }

    fn tables_listed(blob: &[u8]) -> Vec<[u8; 4]> {
        let xsdt = table(blob, u64_at(blob, 24));
        (HEADER_LEN..xsdt.len())
            .step_by(8)
            .map(|o| table(blob, u64_at(xsdt, o))[0..4].try_into().unwrap())
            .collect()
    }

    #[test]
    fn rsdp_is_found_by_a_bios_area_scan() {
        let area = bios_area(BASE);
        assert_eq!(scan_rsdp(&area), Some(BASE));
        let blob = build(BASE, &cfg());
        assert_eq!(blob[15], 2, "revision 2: XSDT present");
        assert_eq!(u32_at(&blob, 20), 36);
        assert_eq!(sum(&blob[..20]), 0);
        assert_eq!(sum(&blob[..36]), 0);
        assert_eq!(&blob[9..15], OEM_ID);
        assert!(blob.len() <= 0x1000, "fits the 4 KiB the board sets aside");
    }

    #[test]
    fn rsdt_and_xsdt_list_the_same_tables() {
        let blob = build(BASE, &cfg());
        let rsdt = table(&blob, u32_at(&blob, 16) as u64);
        let xsdt = table(&blob, u64_at(&blob, 24));
        assert_eq!(&rsdt[0..4], b"RSDT");
        assert_eq!(&xsdt[0..4], b"XSDT");
        assert_eq!(rsdt.len(), HEADER_LEN + 2 * 4);
        assert_eq!(xsdt.len(), HEADER_LEN + 2 * 8);
        for k in 0..2 {
            assert_eq!(
                u32_at(rsdt, HEADER_LEN + 4 * k) as u64,
                u64_at(xsdt, HEADER_LEN + 8 * k)
            );
        }
        assert_eq!(tables_listed(&blob), [*b"FACP", *b"APIC"]);
    }

    #[test]
    fn every_table_checksums_to_zero_with_its_length() {
        let blob = build(BASE, &cfg());
        let xsdt = table(&blob, u64_at(&blob, 24));
        let fadt = table(&blob, u64_at(xsdt, HEADER_LEN));
        let dsdt = table(&blob, u32_at(fadt, 40) as u64);
        let madt = table(&blob, u64_at(xsdt, HEADER_LEN + 8));
        let rsdt = table(&blob, u32_at(&blob, 16) as u64);
        for t in [xsdt, fadt, dsdt, madt, rsdt] {
            assert_eq!(sum(t), 0, "{:?}", std::str::from_utf8(&t[0..4]));
            assert_eq!(&t[10..16], OEM_ID);
        }
        assert_eq!(fadt.len(), FADT_LEN);
        assert_eq!(fadt[8], 3);
        // Tables start on 16-byte boundaries.
        for t in [xsdt, fadt, dsdt, madt, rsdt] {
            assert_eq!((t.as_ptr() as usize - blob.as_ptr() as usize) % 16, 0);
        }
    }

    #[test]
    fn facs_is_64_byte_aligned_and_referenced_once() {
        let blob = build(BASE, &cfg());
        let xsdt = table(&blob, u64_at(&blob, 24));
        let fadt = table(&blob, u64_at(xsdt, HEADER_LEN));
        let facs_at = u32_at(fadt, 36);
        assert_eq!(facs_at % 64, 0);
        assert_eq!(
            u64_at(fadt, 132),
            0,
            "X_FIRMWARE_CTRL excludes FIRMWARE_CTRL"
        );
        let facs = table(&blob, facs_at as u64);
        assert_eq!(&facs[0..4], b"FACS");
        assert_eq!(facs.len(), 64);
        assert_eq!(facs[32], 1);
        assert_eq!(u32_at(facs, 16), 0, "global lock free");
        assert_eq!(u64_at(fadt, 140), u32_at(fadt, 40) as u64, "X_DSDT");
    }

    #[test]
    fn fadt_describes_the_piix4_pm_block() {
        let blob = build(BASE, &cfg());
        let xsdt = table(&blob, u64_at(&blob, 24));
        let f = table(&blob, u64_at(xsdt, HEADER_LEN));
        assert_eq!(u16::from_le_bytes([f[46], f[47]]), 9, "SCI_INT");
        assert_eq!(u32_at(f, 48), 0, "SMI_CMD: always in ACPI mode");
        assert_eq!((f[52], f[53]), (0, 0));
        assert_eq!(u32_at(f, 56), 0x600, "PM1a_EVT_BLK");
        assert_eq!(u32_at(f, 60), 0, "no PM1b");
        assert_eq!(u32_at(f, 64), 0x604, "PM1a_CNT_BLK");
        assert_eq!(u32_at(f, 72), 0, "no PM2");
        assert_eq!(u32_at(f, 76), 0x608, "PM_TMR_BLK");
        assert_eq!(u32_at(f, 80), 0, "no GPE0");
        assert_eq!(&f[88..96], &[4, 2, 0, 4, 0, 0, 0, 0]);
        assert!(u16::from_le_bytes([f[96], f[97]]) > 100, "no C2");
        assert!(u16::from_le_bytes([f[98], f[99]]) > 1000, "no C3");
        assert_eq!(f[108], 0x32, "century");
        assert_eq!(u16::from_le_bytes([f[109], f[110]]), 3, "legacy + 8042");
        let flags = u32_at(f, 112);
        assert_eq!(flags & 1 << 8, 0, "24-bit timer (TMR_VAL_EXT clear)");
        assert_eq!(flags & 1 << 4, 0, "fixed power button");
        assert_ne!(flags & 1 << 10, 0, "reset register");
        assert_eq!(&f[116..128], &[1, 8, 0, 1, 0xf9, 0x0c, 0, 0, 0, 0, 0, 0]);
        assert_eq!(f[128], 6);
        // Extended blocks agree with the 32-bit ones: port, 8 x length.
        for (x, port, bits) in [(148, 0x600, 32), (172, 0x604, 16), (208, 0x608, 32)] {
            assert_eq!(&f[x..x + 3], &[1, bits, 0], "GAS at {x}");
            assert_eq!(u64_at(f, x + 4), port);
        }
        for x in [160, 184, 196, 220, 232] {
            assert_eq!(&f[x..x + 12], &[0; 12], "absent block at {x}");
        }
    }

    #[test]
    fn no_reset_register_when_not_asked() {
        let mut c = cfg();
        c.reset = None;
        let f = fadt(&c, 0, 0);
        assert_eq!(u32_at(&f, 112) & FADT_RESET_REG_SUP, 0);
        assert_eq!(&f[116..129], &[0; 13]);
        assert_eq!(sum(&f), 0);
    }

    #[test]
    fn madt_entries() {
        let blob = build(BASE, &cfg());
        let xsdt = table(&blob, u64_at(&blob, 24));
        let m = table(&blob, u64_at(xsdt, HEADER_LEN + 8));
        assert_eq!(&m[0..4], b"APIC");
        assert_eq!(u32_at(m, 36), 0xfee0_0000);
        assert_eq!(u32_at(m, 40), 1, "PC-AT compatible 8259s");
        let mut off = 44;
        let mut lapics = Vec::new();
        let mut ioapics = Vec::new();
        let mut isos = Vec::new();
        let mut nmis = Vec::new();
        while off < m.len() {
            let (kind, len) = (m[off], m[off + 1] as usize);
            let e = &m[off..off + len];
            match kind {
                0 => lapics.push((e[2], e[3], u32_at(e, 4))),
                1 => ioapics.push((e[2], u32_at(e, 4), u32_at(e, 8))),
                2 => isos.push((e[2], e[3], u32_at(e, 4), u16::from_le_bytes([e[8], e[9]]))),
                4 => nmis.push((e[2], u16::from_le_bytes([e[3], e[4]]), e[5])),
                k => panic!("unexpected MADT entry type {k}"),
            }
            off += len;
        }
        assert_eq!(off, m.len(), "entries fill the table exactly");
        assert_eq!(lapics, [(0, 0, 1)], "UID 0, APIC ID 0, enabled");
        assert_eq!(ioapics, [(1, 0xfec0_0000, 0)]);
        assert_eq!(isos, [(0, 0, 2, 0), (0, 9, 9, 0x000d)]);
        assert_eq!(nmis, [(0xff, 0, 1)], "LINT1 of every CPU");
    }

    #[test]
    fn dsdt_holds_the_s5_package() {
        let blob = build(BASE, &cfg());
        let xsdt = table(&blob, u64_at(&blob, 24));
        let f = table(&blob, u64_at(xsdt, HEADER_LEN));
        let d = table(&blob, u32_at(f, 40) as u64);
        assert_eq!(&d[0..4], b"DSDT");
        assert_eq!(d[8], 2);
        // NameOp, \_S5_, PackageOp, PkgLength 6, 4 elements, ZeroOp x 4.
        let s5 = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0,
        ];
        assert_eq!(&d[HEADER_LEN..HEADER_LEN + s5.len()], &s5);
        // Another SLP_TYP value is a BytePrefix constant.
        let mut c = cfg();
        c.s5_slp_typ = 5;
        let d = dsdt(&c);
        let s5 = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0,
        ];
        assert_eq!(&d[HEADER_LEN..HEADER_LEN + s5.len()], &s5);
        assert_eq!(sum(&d), 0);
    }

    /// Finds `needle` in `hay`.
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn dsdt_declares_the_pci_root_bridge() {
        let d = dsdt(&cfg());
        let aml = &d[HEADER_LEN + 13..];
        // Scope (\_SB) { Device (PCI0) { ... } }, each with a PkgLength
        // that covers exactly the rest of the table.
        assert_eq!(aml[0], 0x10, "ScopeOp");
        let pkg_len = |b: &[u8]| -> (usize, usize) {
            match b[0] >> 6 {
                0 => ((b[0] & 0x3f) as usize, 1),
                n => {
                    let mut v = (b[0] & 0x0f) as usize;
                    for k in 0..n as usize {
                        v |= (b[1 + k] as usize) << (4 + 8 * k);
                    }
                    (v, 1 + n as usize)
                }
            }
        };
        let (len, n) = pkg_len(&aml[1..]);
        assert_eq!(1 + len, aml.len());
        assert_eq!(&aml[1 + n..1 + n + 5], b"\\_SB_");
        let dev = &aml[1 + n + 5..];
        assert_eq!(&dev[0..2], &[0x5b, 0x82], "DeviceOp");
        let (len, n) = pkg_len(&dev[2..]);
        assert_eq!(2 + len, dev.len());
        assert_eq!(&dev[2 + n..2 + n + 4], b"PCI0");
        // _HID EISAID ("PNP0A03") is the dword 0x030AD041.
        let hid = find(dev, b"_HID").unwrap();
        assert_eq!(&dev[hid + 4..hid + 9], &[0x0c, 0x41, 0xd0, 0x0a, 0x03]);
        // _CRS: the bus range, the 0xCF8 ports, and the memory hole.
        let crs = find(dev, b"_CRS").unwrap();
        let res = &dev[crs..];
        assert!(
            find(res, &[0x88, 0x0d, 0x00, 0x02]).is_some(),
            "bus numbers"
        );
        assert!(find(res, &[0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8]).is_some());
        assert!(find(res, &0x1000_0000u32.to_le_bytes()).is_some());
        assert!(find(res, &0xfebf_ffffu32.to_le_bytes()).is_some());
        assert_eq!(&res[res.len() - 2..], &[0x79, 0x00], "end tag, checksum 0");
        assert_eq!(sum(&d), 0);
    }

    #[test]
    fn layout_follows_base() {
        let a = build(0xe0000, &cfg());
        let b = build(0xf5000, &cfg());
        assert_eq!(a.len(), b.len());
        assert_eq!(scan_rsdp(&bios_area(0xe0000)), Some(0xe0000));
        assert_eq!(u64_at(&a, 24) + 0x15000, u64_at(&b, 24));
    }
}
