//! 82093AA-style I/O APIC with 24 input pins at [`IOAPIC_BASE`]: an index
//! register (IOREGSEL, offset 0x00) selects what the data window (IOWIN,
//! offset 0x10) reads and writes. Interrupt messages are queued for the
//! board, which hands them to the local APIC.

/// Physical address of the register window.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;

pub const PINS: usize = 24;

/// Version register: version 0x11, maximum redirection entry 23.
pub const VERSION: u32 = 0x0017_0011;

const REDIR_VECTOR: u64 = 0xFF;
const REDIR_DELIVERY_MODE_SHIFT: u32 = 8;
const REDIR_ACTIVE_LOW: u64 = 1 << 13;
const REDIR_REMOTE_IRR: u64 = 1 << 14;
const REDIR_LEVEL: u64 = 1 << 15;
const REDIR_MASKED: u64 = 1 << 16;
/// Low dword: vector, delivery mode, destination mode, polarity, trigger,
/// mask. Delivery status (12) and remote IRR (14) are read-only.
const REDIR_LOW_WRITABLE: u32 = 0x0001_AFFF;
/// High dword: the destination field (bits 63:56).
const REDIR_HIGH_WRITABLE: u32 = 0xFF00_0000;

const DM_FIXED: u8 = 0;
const DM_LOWEST: u8 = 1;

fn delivery_mode(entry: u64) -> u8 {
    ((entry >> REDIR_DELIVERY_MODE_SHIFT) & 7) as u8
}

/// NMI, SMI, INIT and ExtINT work on edges whatever the trigger bit says;
/// only fixed and lowest-priority pins are level-sensitive and wait for EOI.
fn level_triggered(entry: u64) -> bool {
    let mode = delivery_mode(entry);
    entry & REDIR_LEVEL != 0 && (mode == DM_FIXED || mode == DM_LOWEST)
}

pub struct IoApic {
    reset_id: u8,
    id: u8,
    arb_id: u8,
    regsel: u8,
    redir: [u64; PINS],
    /// Raw input levels as the board drives them, before polarity.
    levels: [bool; PINS],
    /// Edges caught while unmasked, not yet taken by the board.
    edges: u32,
}

impl IoApic {
    pub fn new(id: u8) -> Self {
        let id = id & 0xF;
        IoApic {
            reset_id: id,
            id,
            arb_id: id,
            regsel: 0,
            redir: [REDIR_MASKED; PINS],
            levels: [false; PINS],
            edges: 0,
        }
    }

    /// Power-up state; the input lines belong to the board and keep their
    /// levels.
    pub fn reset(&mut self) {
        let levels = self.levels;
        *self = IoApic {
            levels,
            ..IoApic::new(self.reset_id)
        };
    }

    pub fn read(&mut self, offset: u32) -> u32 {
        match offset {
            0x00 => u32::from(self.regsel),
            0x10 => self.read_register(self.regsel),
            _ => 0,
        }
    }

    pub fn write(&mut self, offset: u32, value: u32) {
        match offset {
            0x00 => self.regsel = value as u8,
            0x10 => self.write_register(self.regsel, value),
            _ => {}
        }
    }

    pub fn set_irq(&mut self, pin: usize, level: bool) {
        if pin >= PINS {
            return;
        }
        let was = self.asserted(pin);
        self.levels[pin] = level;
        let entry = self.redir[pin];
        // A masked edge-triggered pin drops its edges (82093AA behaviour).
        if !was && self.asserted(pin) && !level_triggered(entry) && entry & REDIR_MASKED == 0 {
            self.edges |= 1 << pin;
        }
    }

    /// Messages to deliver now, in pin order. Level pins are delivered
    /// while asserted with remote IRR clear and then wait for an EOI.
    pub fn take_interrupts(&mut self) -> Vec<(u8, bool, u8, u8)> {
        let mut out = Vec::new();
        for pin in 0..PINS {
            let entry = self.redir[pin];
            let edge = self.edges & (1 << pin) != 0;
            self.edges &= !(1 << pin);
            if entry & REDIR_MASKED != 0 {
                continue;
            }
            let level = level_triggered(entry);
            let fire = if level {
                self.asserted(pin) && entry & REDIR_REMOTE_IRR == 0
            } else {
                edge
            };
            if !fire {
                continue;
            }
            if level {
                self.redir[pin] |= REDIR_REMOTE_IRR;
            }
            out.push((
                (entry & REDIR_VECTOR) as u8,
                level,
                (entry >> 56) as u8,
                delivery_mode(entry),
            ));
        }
        out
    }

    pub fn eoi(&mut self, vector: u8) {
        for entry in &mut self.redir {
            if *entry & REDIR_REMOTE_IRR != 0 && (*entry & REDIR_VECTOR) as u8 == vector {
                *entry &= !REDIR_REMOTE_IRR;
            }
        }
    }

    fn asserted(&self, pin: usize) -> bool {
        self.levels[pin] != (self.redir[pin] & REDIR_ACTIVE_LOW != 0)
    }

    fn read_register(&self, index: u8) -> u32 {
        match index {
            0x00 => u32::from(self.id) << 24,
            0x01 => VERSION,
            0x02 => u32::from(self.arb_id) << 24,
            0x10..=0x3F => {
                let entry = self.redir[usize::from(index - 0x10) / 2];
                if index & 1 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, index: u8, value: u32) {
        match index {
            0x00 => {
                self.id = ((value >> 24) & 0xF) as u8;
                // The arbitration ID is loaded from the ID on every write.
                self.arb_id = self.id;
            }
            0x10..=0x3F => {
                let pin = usize::from(index - 0x10) / 2;
                let old = self.redir[pin];
                let mut entry = if index & 1 == 0 {
                    let keep = old & (0xFFFF_FFFF_0000_0000 | REDIR_REMOTE_IRR);
                    keep | u64::from(value & REDIR_LOW_WRITABLE)
                } else {
                    (old & 0xFFFF_FFFF) | (u64::from(value & REDIR_HIGH_WRITABLE) << 32)
                };
                // Remote IRR means nothing for an edge pin; a stale one
                // left from level mode would block it after switching back.
                if !level_triggered(entry) {
                    entry &= !REDIR_REMOTE_IRR;
                }
                self.redir[pin] = entry;
            }
            // Version, arbitration and unimplemented indices are read-only.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg_read(io: &mut IoApic, index: u32) -> u32 {
        io.write(0x00, index);
        io.read(0x10)
    }

    fn reg_write(io: &mut IoApic, index: u32, value: u32) {
        io.write(0x00, index);
        io.write(0x10, value);
    }

    fn program(io: &mut IoApic, pin: u32, low: u32, high: u32) {
        reg_write(io, 0x11 + 2 * pin, high);
        reg_write(io, 0x10 + 2 * pin, low);
    }

    #[test]
    fn ioregsel_reads_back_low_byte() {
        let mut io = IoApic::new(0);
        io.write(0x00, 0x1234_5617);
        assert_eq!(io.read(0x00), 0x17);
    }

    #[test]
    fn id_version_arbitration() {
        let mut io = IoApic::new(2);
        assert_eq!(reg_read(&mut io, 0x00), 0x0200_0000);
        assert_eq!(reg_read(&mut io, 0x02), 0x0200_0000);
        reg_write(&mut io, 0x00, 0xFFFF_FFFF);
        assert_eq!(reg_read(&mut io, 0x00), 0x0F00_0000);
        assert_eq!(reg_read(&mut io, 0x02), 0x0F00_0000);
        assert_eq!(reg_read(&mut io, 0x01), 0x0017_0011);
        reg_write(&mut io, 0x01, 0);
        reg_write(&mut io, 0x02, 0);
        assert_eq!(reg_read(&mut io, 0x01), 0x0017_0011);
        assert_eq!(reg_read(&mut io, 0x02), 0x0F00_0000);
        io.reset();
        assert_eq!(reg_read(&mut io, 0x00), 0x0200_0000);
    }

    #[test]
    fn redirection_entry_masks_and_reset() {
        let mut io = IoApic::new(0);
        for pin in 0..PINS as u32 {
            assert_eq!(reg_read(&mut io, 0x10 + 2 * pin), 0x0001_0000);
            assert_eq!(reg_read(&mut io, 0x11 + 2 * pin), 0);
        }
        reg_write(&mut io, 0x10 + 2 * 23, 0xFFFF_FFFF);
        reg_write(&mut io, 0x11 + 2 * 23, 0xFFFF_FFFF);
        assert_eq!(reg_read(&mut io, 0x10 + 2 * 23), 0x0001_AFFF);
        assert_eq!(reg_read(&mut io, 0x11 + 2 * 23), 0xFF00_0000);
        // The halves are independent.
        reg_write(&mut io, 0x11 + 2 * 23, 0x0100_0000);
        assert_eq!(reg_read(&mut io, 0x10 + 2 * 23), 0x0001_AFFF);
        assert_eq!(reg_read(&mut io, 0x11 + 2 * 23), 0x0100_0000);
        io.reset();
        assert_eq!(reg_read(&mut io, 0x10 + 2 * 23), 0x0001_0000);
    }

    #[test]
    fn reserved_indices_and_offsets() {
        let mut io = IoApic::new(1);
        for index in [0x03, 0x0F, 0x40, 0xFF] {
            reg_write(&mut io, index, 0xFFFF_FFFF);
            assert_eq!(reg_read(&mut io, index), 0, "index {index:#x}");
        }
        io.write(0x00, 0x10);
        io.write(0x20, 0x30);
        io.write(0x40, 0x30);
        assert_eq!(io.read(0x20), 0);
        assert_eq!(io.read(0x40), 0);
        assert_eq!(io.read(0x10), 0x0001_0000);
    }

    #[test]
    fn edge_pin_delivers_once_per_rising_edge() {
        let mut io = IoApic::new(0);
        program(&mut io, 2, 0x30, 0x0100_0000);
        io.set_irq(2, true);
        assert_eq!(io.take_interrupts(), vec![(0x30, false, 1, 0)]);
        io.set_irq(2, true);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(2, false);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(2, true);
        assert_eq!(io.take_interrupts(), vec![(0x30, false, 1, 0)]);
        // Edges ignore EOIs and remote IRR.
        io.eoi(0x30);
        assert_eq!(reg_read(&mut io, 0x14) & (1 << 14), 0);
    }

    #[test]
    fn masked_edge_is_lost() {
        let mut io = IoApic::new(0);
        program(&mut io, 4, 0x0001_0034, 0);
        io.set_irq(4, true);
        program(&mut io, 4, 0x34, 0);
        assert!(io.take_interrupts().is_empty());
        // Masking after the edge but before delivery drops it too.
        io.set_irq(4, false);
        io.set_irq(4, true);
        program(&mut io, 4, 0x0001_0034, 0);
        assert!(io.take_interrupts().is_empty());
    }

    #[test]
    fn level_pin_remote_irr_and_eoi() {
        let mut io = IoApic::new(0);
        program(&mut io, 9, 0x8039, 0);
        io.set_irq(9, true);
        assert_eq!(io.take_interrupts(), vec![(0x39, true, 0, 0)]);
        assert_eq!(reg_read(&mut io, 0x22), 0xC039);
        assert!(io.take_interrupts().is_empty(), "waits for EOI");
        // Rewriting the entry keeps remote IRR.
        program(&mut io, 9, 0x8039, 0);
        assert_eq!(reg_read(&mut io, 0x22), 0xC039);
        io.eoi(0x38);
        assert!(io.take_interrupts().is_empty(), "other vector");
        io.eoi(0x39);
        assert_eq!(reg_read(&mut io, 0x22), 0x8039);
        // Still asserted: delivered again.
        assert_eq!(io.take_interrupts(), vec![(0x39, true, 0, 0)]);
        io.set_irq(9, false);
        io.eoi(0x39);
        assert!(io.take_interrupts().is_empty());
        assert_eq!(reg_read(&mut io, 0x22), 0x8039);
    }

    #[test]
    fn masked_level_pin_delivers_when_unmasked() {
        let mut io = IoApic::new(0);
        program(&mut io, 11, 0x0001_803B, 0);
        io.set_irq(11, true);
        assert!(io.take_interrupts().is_empty());
        assert_eq!(reg_read(&mut io, 0x26) & (1 << 14), 0);
        program(&mut io, 11, 0x803B, 0);
        assert_eq!(io.take_interrupts(), vec![(0x3B, true, 0, 0)]);
    }

    #[test]
    fn active_low_polarity() {
        let mut io = IoApic::new(0);
        // Level, active low: a low wire is asserted.
        program(&mut io, 16, 0xA050, 0);
        io.set_irq(16, true);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(16, false);
        assert_eq!(io.take_interrupts(), vec![(0x50, true, 0, 0)]);
        // Edge, active low: the falling wire is the edge.
        program(&mut io, 17, 0x2051, 0);
        io.set_irq(17, true);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(17, false);
        assert_eq!(io.take_interrupts(), vec![(0x51, false, 0, 0)]);
    }

    #[test]
    fn non_fixed_modes_are_edge_messages() {
        let mut io = IoApic::new(0);
        // NMI programmed level: delivered as an edge, no remote IRR.
        program(&mut io, 1, 0x8400, 0xFF00_0000);
        io.set_irq(1, true);
        assert_eq!(io.take_interrupts(), vec![(0, false, 0xFF, 4)]);
        assert!(io.take_interrupts().is_empty(), "held NMI line fires once");
        assert_eq!(reg_read(&mut io, 0x12) & (1 << 14), 0);
        // ExtINT, edge.
        program(&mut io, 0, 0x0700, 0);
        io.set_irq(0, true);
        assert_eq!(io.take_interrupts(), vec![(0, false, 0, 7)]);
        // Lowest priority keeps level semantics.
        program(&mut io, 3, 0x8143, 0x0200_0000);
        io.set_irq(3, true);
        assert_eq!(io.take_interrupts(), vec![(0x43, true, 2, 1)]);
    }

    #[test]
    fn switching_to_edge_clears_remote_irr() {
        let mut io = IoApic::new(0);
        program(&mut io, 5, 0x8035, 0);
        io.set_irq(5, true);
        io.take_interrupts();
        program(&mut io, 5, 0x0035, 0);
        assert_eq!(reg_read(&mut io, 0x1A), 0x35);
    }

    #[test]
    fn several_pins_in_pin_order_and_bad_pins_ignored() {
        let mut io = IoApic::new(0);
        program(&mut io, 1, 0x31, 0);
        program(&mut io, 14, 0x3E, 0);
        io.set_irq(14, true);
        io.set_irq(1, true);
        io.set_irq(24, true);
        io.set_irq(usize::MAX, true);
        assert_eq!(
            io.take_interrupts(),
            vec![(0x31, false, 0, 0), (0x3E, false, 0, 0)]
        );
    }
}
