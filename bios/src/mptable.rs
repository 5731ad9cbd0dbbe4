//! Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
//! finds the local APIC, the I/O APIC and the ISA interrupt routing.
//! Direct boots put them in the BIOS area, where Linux searches.

/// Where the ISA IRQs arrive on the I/O APIC: IRQ0 (the PIT) on pin 2, as
/// on every PC chipset with an I/O APIC, the others on their own number.
pub fn isa_irq_pin(irq: u8) -> u8 {
    if irq == 0 {
        2
    } else {
        irq
    }
}

pub struct MpConfig {
    pub lapic_addr: u32,
    pub lapic_id: u8,
    pub lapic_version: u8,
    pub ioapic_id: u8,
    pub ioapic_version: u8,
    pub ioapic_addr: u32,
    /// CPUID leaf 1 EAX and EDX of the boot processor.
    pub cpu_signature: u32,
    pub cpu_features: u32,
}

const BUS_PCI: u8 = 0;
const BUS_ISA: u8 = 1;

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)))
}

/// The floating pointer structure followed by the configuration table, to
/// be placed at physical address `base` (16-byte aligned).
pub fn build(base: u32, c: &MpConfig) -> Vec<u8> {
    let mut entries: Vec<u8> = Vec::new();
    let mut count = 0u16;
    // Processor: enabled bootstrap processor.
    entries.extend_from_slice(&[0, c.lapic_id, c.lapic_version, 0b11]);
    entries.extend_from_slice(&c.cpu_signature.to_le_bytes());
    entries.extend_from_slice(&c.cpu_features.to_le_bytes());
    entries.extend_from_slice(&[0; 8]);
    count += 1;
    for (id, name) in [(BUS_PCI, b"PCI   "), (BUS_ISA, b"ISA   ")] {
        entries.extend_from_slice(&[1, id]);
        entries.extend_from_slice(name);
        count += 1;
    }
    entries.extend_from_slice(&[2, c.ioapic_id, c.ioapic_version, 1]);
    entries.extend_from_slice(&c.ioapic_addr.to_le_bytes());
    count += 1;
    // The 8259 reaches pin 0 as ExtINT (virtual wire through the I/O APIC).
    entries.extend_from_slice(&[3, 3, 0, 0, BUS_ISA, 0, c.ioapic_id, 0]);
    count += 1;
    for irq in 0..16u8 {
        if irq == 2 {
            continue; // the cascade input carries no device
        }
        // Flags 0: polarity and trigger conform to the ISA bus (high, edge).
        entries.extend_from_slice(&[3, 0, 0, 0, BUS_ISA, irq, c.ioapic_id, isa_irq_pin(irq)]);
        count += 1;
    }
    // LINT0 = ExtINT, LINT1 = NMI on every local APIC.
    entries.extend_from_slice(&[4, 3, 0, 0, BUS_ISA, 0, 0xff, 0]);
    entries.extend_from_slice(&[4, 1, 0, 0, BUS_ISA, 0, 0xff, 1]);
    count += 2;

    let mut table = Vec::new();
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&((44 + entries.len()) as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"LEAP    ");
    table.extend_from_slice(b"LEAP PC     ");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table
    table.extend_from_slice(&0u16.to_le_bytes());
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&c.lapic_addr.to_le_bytes());
    table.extend_from_slice(&[0, 0, 0, 0]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut fp = Vec::with_capacity(16);
    fp.extend_from_slice(b"_MP_");
    fp.extend_from_slice(&(base + 16).to_le_bytes());
    fp.push(1); // length in 16-byte units
    fp.push(4);
    fp.push(0); // checksum, below
    fp.extend_from_slice(&[0; 5]); // feature 1 = 0: the table above is used; no IMCR
    fp[10] = checksum(&fp);
    fp.extend_from_slice(&table);
    fp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MpConfig {
        MpConfig {
            lapic_addr: 0xfee0_0000,
            lapic_id: 0,
            lapic_version: 0x14,
            ioapic_id: 1,
            ioapic_version: 0x11,
            ioapic_addr: 0xfec0_0000,
            cpu_signature: 0x633,
            cpu_features: 0x1234,
        }
    }

    #[test]
    fn checksums_and_pointers_are_valid() {
        let t = build(0xf6000, &cfg());
        assert_eq!(&t[0..4], b"_MP_");
        assert_eq!(t[0..16].iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 0xf6010);
        let table = &t[16..];
        assert_eq!(&table[0..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(table.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        assert_eq!(
            u32::from_le_bytes(table[36..40].try_into().unwrap()),
            0xfee0_0000
        );
    }

    #[test]
    fn entries_describe_cpu_ioapic_and_isa_routing() {
        let t = build(0xf6000, &cfg());
        let table = &t[16..];
        let count = u16::from_le_bytes([table[34], table[35]]);
        let mut off = 44;
        let mut irqs = Vec::new();
        let mut ioapic = None;
        for _ in 0..count {
            let len = if table[off] == 0 { 20 } else { 8 };
            let e = &table[off..off + len];
            match e[0] {
                0 => assert_eq!(e[3], 0b11, "enabled BSP"),
                2 => ioapic = Some((e[1], u32::from_le_bytes(e[4..8].try_into().unwrap()))),
                3 if e[1] == 0 => irqs.push((e[5], e[7])),
                _ => {}
            }
            off += len;
        }
        assert_eq!(off, table.len());
        assert_eq!(ioapic, Some((1, 0xfec0_0000)));
        assert!(irqs.contains(&(0, 2)), "PIT on pin 2");
        assert!(irqs.contains(&(4, 4)));
        assert!(!irqs.iter().any(|&(irq, _)| irq == 2));
        assert_eq!(irqs.len(), 15);
    }
}
