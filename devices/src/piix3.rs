//! Intel 82371SB (PIIX3) function 0, the PCI-to-ISA bridge at bus 0,
//! device 1, plus its Reset Control register at I/O port 0xCF9.
//!
//! The board cares about the PIRQ route control registers (which ISA IRQ
//! each PCI INTx line drives), MBIRQ0, the top-of-memory register and the
//! I/O APIC base. The SMI/power-management registers are stored within
//! their writable bits but nothing acts on them. Header type 0x80 marks
//! the device multifunction; functions 1 (IDE) and 2 (USB) are separate
//! devices the board plugs in at 1.1 and 1.2.

use crate::pci::{ConfigSpace, PciFunction, CMD_SERR, CMD_SPECIAL_CYCLES};
use crate::{ones, PortDevice};

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x7000;
pub const REVISION: u8 = 0x00;
pub const CLASS_ISA_BRIDGE: u32 = 0x06_01_00;

/// PIRQ route control for INTA#-INTD# (PIRQA-PIRQD).
pub const PIRQRC: u8 = 0x60;
pub const TOM: u8 = 0x69;
pub const MBIRQ0: u8 = 0x70;
pub const APICBASE: u8 = 0x80;

/// Route register bit 7: the line is not routed to any ISA IRQ.
pub const ROUTE_DISABLE: u8 = 0x80;

/// (offset, reset value, writable bits) of the byte registers beyond the
/// standard header. Offsets not listed are reserved: read 0, ignore
/// writes. That includes 0x71: the PIIX3 has only MBIRQ0.
const REGS: &[(u8, u8, u8)] = &[
    (0x4c, 0x4d, 0xff), // IORT: ISA I/O recovery timer
    (0x4e, 0x03, 0xff), // XBCS low: RTC and keyboard decode enabled
    (0x4f, 0x00, 0x01), // XBCS high
    (0x60, 0x80, 0x8f), // PIRQRC[A]
    (0x61, 0x80, 0x8f), // PIRQRC[B]
    (0x62, 0x80, 0x8f), // PIRQRC[C]
    (0x63, 0x80, 0x8f), // PIRQRC[D]
    (0x69, 0x02, 0xfe), // TOM: 1 MiB, F-segment forwarding on
    (0x6a, 0x00, 0xd1), // MSTAT low
    (0x70, 0x80, 0xef), // MBIRQ0
    (0x76, 0x0c, 0x87), // MBDMA0
    (0x77, 0x0c, 0x87), // MBDMA1
    (0x78, 0x02, 0xff), // PCSC low
    (0x79, 0x00, 0xff), // PCSC high
    (0x80, 0x00, 0x7f), // APICBASE
    (0xa0, 0x08, 0x1f), // SMICNTL
    (0xa2, 0x00, 0xff), // SMIEN low
    (0xa3, 0x00, 0x01), // SMIEN high
    (0xa4, 0x00, 0xfb), // SEE
    (0xa5, 0x00, 0xff),
    (0xa6, 0x00, 0xff),
    (0xa7, 0x00, 0xef),
    (0xa8, 0x0f, 0xff), // FTMR
    (0xac, 0x00, 0xff), // CTLTMR
    (0xae, 0x00, 0xff), // CTHTMR
];

/// MSTAT high bit 7 is a sticky status flag cleared by writing one.
const MSTAT_HIGH: u8 = 0x6b;

/// Returns the IRQ a route register selects, None when disabled or when
/// it names an IRQ the PIIX3 reserves (0, 1, 2, 8, 13 belong to the
/// timer, keyboard, cascade, RTC and FPU).
fn decode_route(reg: u8) -> Option<u8> {
    let irq = reg & 0x0f;
    (reg & ROUTE_DISABLE == 0 && !matches!(irq, 0 | 1 | 2 | 8 | 13)).then_some(irq)
}

pub struct Piix3 {
    cfg: ConfigSpace,
    routing_changed: bool,
}

impl Default for Piix3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3 {
    pub fn new() -> Self {
        let mut cfg = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS_ISA_BRIDGE, REVISION, 0x80);
        // I/O, memory and bus master are hardwired on in a bridge.
        cfg.set_u16(0x04, 0x0007);
        cfg.set_writable(0x04, 2, (CMD_SPECIAL_CYCLES | CMD_SERR) as u32);
        // Medium DEVSEL timing; only the abort and SERR# flags exist.
        cfg.set_u16(0x06, 0x0200);
        cfg.set_w1c(0x06, 2, 0x7800);
        cfg.set_writable(0x3c, 1, 0);
        for &(off, val, mask) in REGS {
            cfg.set_u8(off, val);
            cfg.set_writable(off, 1, mask as u32);
        }
        cfg.set_w1c(MSTAT_HIGH, 1, 0x80);
        Piix3 {
            cfg,
            routing_changed: true,
        }
    }

    /// Back to power-on state (hard reset).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    pub fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    /// ISA IRQ that PIRQ `pirq` (0-3 = A-D) drives, None if the route is
    /// disabled, names a reserved IRQ or `pirq` is out of range.
    pub fn pirq_route(&self, pirq: usize) -> Option<u8> {
        if pirq >= 4 {
            return None;
        }
        decode_route(self.cfg.get_u8(PIRQRC + pirq as u8))
    }

    /// ISA IRQ that the motherboard interrupt MIRQ0 drives, same rules.
    pub fn mbirq0_route(&self) -> Option<u8> {
        decode_route(self.cfg.get_u8(MBIRQ0))
    }

    /// True once after any PIRQ or MBIRQ0 routing register changed value.
    /// Starts true so the board's first poll installs the reset routing.
    pub fn take_routing_changed(&mut self) -> bool {
        std::mem::take(&mut self.routing_changed)
    }

    /// Top of ISA-visible DRAM in bytes (TOM bits 7:4 + 1, in MiB): ISA
    /// masters' accesses below it are forwarded to PCI (main memory).
    pub fn top_of_memory(&self) -> u32 {
        ((self.cfg.get_u8(TOM) as u32 >> 4) + 1) << 20
    }

    /// Base of the I/O APIC window: 0xFEC0_0000 with address bits 15:12
    /// from APICBASE bits 5:2 and bits 11:10 from bits 1:0.
    pub fn ioapic_base(&self) -> u32 {
        let v = self.cfg.get_u8(APICBASE) as u32;
        0xfec0_0000 | ((v >> 2) & 0xf) << 12 | (v & 3) << 10
    }

    fn routing_bytes(&self) -> [u8; 5] {
        [
            self.cfg.get_u8(PIRQRC),
            self.cfg.get_u8(PIRQRC + 1),
            self.cfg.get_u8(PIRQRC + 2),
            self.cfg.get_u8(PIRQRC + 3),
            self.cfg.get_u8(MBIRQ0),
        ]
    }
}

impl PciFunction for Piix3 {
    fn config_read(&mut self, offset: u8, size: u8) -> u32 {
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u8, size: u8, value: u32) {
        let before = self.routing_bytes();
        self.cfg.write(offset, size, value);
        if self.routing_bytes() != before {
            self.routing_changed = true;
        }
    }
}

pub const RESET_CONTROL_PORT: u16 = 0xcf9;
/// System reset: 1 = hard (CPU RESET and PCI RST#), 0 = soft (INIT).
pub const RC_SRST: u8 = 1 << 1;
/// Reset CPU: a 0 to 1 transition starts the reset SRST selects.
pub const RC_RCPU: u8 = 1 << 2;
/// Full reset: a hard reset that also cycles power.
pub const RC_FULL_RST: u8 = 1 << 3;
const RC_BITS: u8 = RC_SRST | RC_RCPU | RC_FULL_RST;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    /// INIT: processor only, memory and devices keep their state.
    Soft,
    /// Processor and every device back to power-on state.
    Hard,
    /// Like Hard, with a power cycle on boards that can do one.
    Full,
}

/// The Reset Control register at 0xCF9. It shares its port with byte 1
/// of the PCI address register, which only dword accesses reach, so the
/// board gives this device the byte accesses ([`ResetControl::claims`]).
pub struct ResetControl {
    value: u8,
    pending: bool,
    kind: ResetKind,
}

impl Default for ResetControl {
    fn default() -> Self {
        Self::new()
    }
}

impl ResetControl {
    pub fn new() -> Self {
        ResetControl {
            value: 0,
            pending: false,
            kind: ResetKind::Soft,
        }
    }

    /// Clear the register, as a hard reset does. A soft reset leaves it
    /// alone, so software writes RCPU=0 before requesting another one.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Whether an access at `port` of `size` bytes belongs to this
    /// register rather than to the PCI configuration ports.
    pub fn claims(port: u16, size: u8) -> bool {
        port == RESET_CONTROL_PORT && size == 1
    }

    /// True once per requested reset; the kind is [`Self::reset_kind`].
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.pending)
    }

    /// Kind of the most recently requested reset.
    pub fn reset_kind(&self) -> ResetKind {
        self.kind
    }
}

impl PortDevice for ResetControl {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        if port != RESET_CONTROL_PORT {
            return ones(size);
        }
        self.value as u32 | (ones(size) & !0xff)
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        if port != RESET_CONTROL_PORT {
            return;
        }
        let new = value as u8 & RC_BITS;
        if new & RC_RCPU != 0 && self.value & RC_RCPU == 0 {
            self.pending = true;
            self.kind = if new & RC_FULL_RST != 0 {
                ResetKind::Full
            } else if new & RC_SRST != 0 {
                ResetKind::Hard
            } else {
                ResetKind::Soft
            };
        }
        self.value = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::{PciBus, HEADER_MULTIFUNCTION};

    fn fresh() -> Piix3 {
        let mut p = Piix3::new();
        assert!(p.take_routing_changed(), "reset routing installed once");
        assert!(!p.take_routing_changed());
        p
    }

    #[test]
    fn identity_is_read_only() {
        let mut p = fresh();
        assert_eq!(p.config_read(0x00, 4), 0x7000_8086);
        assert_eq!(p.config_read(0x08, 4), 0x0601_0000);
        assert_eq!(p.config_read(0x0e, 1), 0x80);
        assert_eq!(p.config().get_u16(0x02), DEVICE_ID);
        for off in [0x00, 0x08, 0x0c] {
            p.config_write(off, 4, 0xffff_ffff);
        }
        assert_eq!(p.config_read(0x00, 4), 0x7000_8086);
        assert_eq!(p.config_read(0x08, 4), 0x0601_0000);
        assert_eq!(p.config_read(0x0c, 4), 0x0080_0000);
        p.config_write(0x3c, 1, 0xff);
        assert_eq!(p.config_read(0x3c, 1), 0);
    }

    #[test]
    fn command_and_status() {
        let mut p = fresh();
        assert_eq!(p.config_read(0x04, 4), 0x0200_0007);
        p.config_write(0x04, 2, 0xffff);
        assert_eq!(p.config_read(0x04, 2), 0x010f);
        p.config_write(0x04, 2, 0);
        assert_eq!(p.config_read(0x04, 2), 0x0007);
        p.cfg.set_u16(0x06, 0xfa00);
        p.config_write(0x06, 2, 0xffff);
        assert_eq!(p.config_read(0x06, 2), 0x8200);
    }

    #[test]
    fn register_defaults_and_writable_bits() {
        for &(off, val, mask) in REGS {
            let mut p = fresh();
            assert_eq!(p.config_read(off, 1), val as u32, "default {off:#x}");
            p.config_write(off, 1, 0xff);
            assert_eq!(p.config_read(off, 1), (val | mask) as u32, "ones {off:#x}");
            p.config_write(off, 1, 0);
            assert_eq!(
                p.config_read(off, 1),
                (val & !mask) as u32,
                "zeros {off:#x}"
            );
        }
    }

    #[test]
    fn reserved_offsets_read_zero() {
        let mut p = fresh();
        for off in [0x40u8, 0x71, 0x81, 0xaa, 0xff] {
            p.config_write(off, 1, 0xff);
            assert_eq!(p.config_read(off, 1), 0, "{off:#x}");
        }
    }

    #[test]
    fn mstat_high_bit7_write_one_to_clear() {
        let mut p = fresh();
        p.cfg.set_u8(MSTAT_HIGH, 0x80);
        p.config_write(MSTAT_HIGH, 1, 0x7f);
        assert_eq!(p.config_read(MSTAT_HIGH, 1), 0x80);
        p.config_write(MSTAT_HIGH, 1, 0x80);
        assert_eq!(p.config_read(MSTAT_HIGH, 1), 0);
    }

    #[test]
    fn pirq_routes() {
        let mut p = fresh();
        for pirq in 0..4 {
            assert_eq!(p.pirq_route(pirq), None, "disabled at reset");
        }
        for irq in 0u8..16 {
            p.config_write(PIRQRC + 2, 1, irq as u32);
            let valid = !matches!(irq, 0 | 1 | 2 | 8 | 13);
            assert_eq!(p.pirq_route(2), valid.then_some(irq), "irq {irq}");
            // The disable bit wins over any IRQ number.
            p.config_write(PIRQRC + 2, 1, 0x80 | irq as u32);
            assert_eq!(p.pirq_route(2), None, "irq {irq} disabled");
        }
        // Reserved bits 6:4 neither stick nor disturb decoding.
        p.config_write(PIRQRC, 1, 0x7b);
        assert_eq!(p.config_read(PIRQRC, 1), 0x0b);
        assert_eq!(p.pirq_route(0), Some(11));
        p.config_write(PIRQRC, 4, 0x800a_0b05);
        assert_eq!(p.pirq_route(0), Some(5));
        assert_eq!(p.pirq_route(1), Some(11));
        assert_eq!(p.pirq_route(2), Some(10));
        assert_eq!(p.pirq_route(3), None);
        assert_eq!(p.pirq_route(4), None);
        assert_eq!(p.pirq_route(usize::MAX), None);
    }

    #[test]
    fn mbirq0_route() {
        let mut p = fresh();
        assert_eq!(p.mbirq0_route(), None);
        p.config_write(MBIRQ0, 1, 0x0e);
        assert_eq!(p.mbirq0_route(), Some(14));
        assert!(p.take_routing_changed());
        p.config_write(MBIRQ0, 1, 0x08);
        assert_eq!(p.mbirq0_route(), None, "IRQ 8 is reserved");
        p.config_write(MBIRQ0, 1, 0x60 | 0x0f);
        assert_eq!(p.config_read(MBIRQ0, 1), 0x6f);
        assert_eq!(p.mbirq0_route(), Some(15), "bits 6:5 are not routing");
    }

    #[test]
    fn routing_changed_flag() {
        let mut p = fresh();
        p.config_write(PIRQRC + 3, 1, 0x0a);
        assert!(p.take_routing_changed());
        assert!(!p.take_routing_changed());
        p.config_write(PIRQRC + 3, 1, 0x0a);
        assert!(!p.take_routing_changed(), "same value");
        p.config_write(TOM, 1, 0xf0);
        assert!(!p.take_routing_changed(), "unrelated register");
    }

    #[test]
    fn top_of_memory() {
        let mut p = fresh();
        assert_eq!(p.top_of_memory(), 1 << 20);
        p.config_write(TOM, 1, 0xf2);
        assert_eq!(p.top_of_memory(), 16 << 20);
        p.config_write(TOM, 1, 0x72);
        assert_eq!(p.top_of_memory(), 8 << 20);
    }

    #[test]
    fn ioapic_base() {
        let mut p = fresh();
        assert_eq!(p.ioapic_base(), 0xfec0_0000);
        p.config_write(APICBASE, 1, 0x3c);
        assert_eq!(p.ioapic_base(), 0xfec0_f000);
        p.config_write(APICBASE, 1, 0x03);
        assert_eq!(p.ioapic_base(), 0xfec0_0c00);
        p.config_write(APICBASE, 1, 0x45); // A12 mask bit does not move it
        assert_eq!(p.ioapic_base(), 0xfec0_1400);
    }

    #[test]
    fn multifunction_exposes_function_1() {
        struct Ide;
        impl PciFunction for Ide {
            fn config_read(&mut self, _offset: u8, _size: u8) -> u32 {
                0x7010_8086
            }
            fn config_write(&mut self, _offset: u8, _size: u8, _value: u32) {}
        }
        assert_ne!(fresh().config_read(0x0e, 1) as u8 & HEADER_MULTIFUNCTION, 0);
        let mut bus = PciBus::new();
        bus.add(1, 0, Box::new(Piix3::new()));
        bus.add(1, 1, Box::new(Ide));
        bus.write(0xcf8, 4, 0x8000_0900);
        assert_eq!(bus.read(0xcfc, 4), 0x7010_8086);
        bus.write(0xcf8, 4, 0x8000_0860);
        bus.write(0xcfe, 1, 0x09);
        assert_eq!(bus.get_mut::<Piix3>(1, 0).unwrap().pirq_route(2), Some(9));
    }

    #[test]
    fn reset_control_requests() {
        let mut rc = ResetControl::new();
        assert_eq!(rc.read(0xcf9, 1), 0);
        assert!(!rc.take_reset_request());
        // Selecting the kind alone does nothing.
        rc.write(0xcf9, 1, 0x02);
        assert!(!rc.take_reset_request());
        assert_eq!(rc.read(0xcf9, 1), 0x02);
        rc.write(0xcf9, 1, 0x06);
        assert!(rc.take_reset_request());
        assert!(!rc.take_reset_request(), "reported once");
        assert_eq!(rc.reset_kind(), ResetKind::Hard);
        // RCPU already 1: no new edge.
        rc.write(0xcf9, 1, 0x06);
        assert!(!rc.take_reset_request());
        rc.write(0xcf9, 1, 0x00);
        rc.write(0xcf9, 1, 0x04);
        assert!(rc.take_reset_request());
        assert_eq!(rc.reset_kind(), ResetKind::Soft);
        rc.reset();
        assert_eq!(rc.read(0xcf9, 1), 0);
        rc.write(0xcf9, 1, 0x0e);
        assert!(rc.take_reset_request());
        assert_eq!(rc.reset_kind(), ResetKind::Full);
        // Reserved bits read back as zero.
        rc.write(0xcf9, 1, 0xf1);
        assert_eq!(rc.read(0xcf9, 1), 0);
    }

    #[test]
    fn reset_control_port_sharing() {
        assert!(ResetControl::claims(0xcf9, 1));
        assert!(!ResetControl::claims(0xcf9, 2));
        assert!(!ResetControl::claims(0xcf8, 4));
        assert!(!ResetControl::claims(0xcf8, 1));
        let mut rc = ResetControl::new();
        rc.write(0xcf8, 1, 0x06);
        assert!(!rc.take_reset_request());
        assert_eq!(rc.read(0xcf8, 1), 0xff);
        assert_eq!(rc.read(0xcf9, 2), 0xff00);
    }
}
