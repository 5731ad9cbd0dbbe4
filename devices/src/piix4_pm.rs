//! Intel 82371AB (PIIX4) function 3, the power-management controller, as
//! QEMU's i440FX PC has it at bus 0, device 1, function 3 (beside a PIIX3
//! ISA bridge at 1.0): the ACPI fixed-hardware registers that an OS finds
//! through the FADT.
//!
//! Configuration space: PMBA (0x40) places a 64-byte I/O block and
//! PMREGMISC (0x80) bit 0 turns its decoding on. SeaBIOS programs PMBA to
//! 0x600; for direct boots there is no firmware, so the board does that
//! itself with [`Piix4Pm::firmware_init`]. The SMBus controller's
//! registers of the same function are not modelled (they read zero, so a
//! driver finds no SMBus base and leaves it alone).
//!
//! The I/O block, at PMBA:
//! - 0x00 PM1_STS: status bits, write one to clear;
//! - 0x02 PM1_EN: which of those raise the SCI;
//! - 0x04 PM1_CNT: SCI_EN, BM_RLD, GBL_RLS, SLP_TYP, SLP_EN;
//! - 0x08 PM_TMR: the 24-bit ACPI power-management timer at 3.579545 MHz.
//!
//! Everything else in the block reads zero and ignores writes; there is no
//! GPE block (the FADT declares none).
//!
//! ACPI mode: real PIIX4s come up with SCI_EN clear and leave the switch to
//! the firmware's SMI handler, reached through the SMI command port 0xB2.
//! Leap has no SMM, so `firmware_init` sets SCI_EN as the firmware would
//! have, and the FADT says SMI_CMD = 0, which the ACPI spec defines as
//! "the platform is always in ACPI mode": the OS never tries the handshake.
//!
//! The timer is derived from the board's virtual clock (`advance(now)`),
//! never from the host, so a deterministic run reads the same values.

use crate::pci::{ConfigSpace, PciFunction};
use crate::PortDevice;

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x7113;
/// The revision QEMU reports for its PIIX4 PM function.
pub const REVISION: u8 = 0x03;
/// Bridge device, "other" subclass.
pub const CLASS_BRIDGE_OTHER: u32 = 0x06_80_00;

/// Power-management base address register (dword, I/O indicator in bit 0).
pub const PMBA: u8 = 0x40;
/// Bit 0 (PMIOSE) enables decoding of the block PMBA points at.
pub const PMREGMISC: u8 = 0x80;
const PMIOSE: u8 = 1 << 0;
/// PMBA bits 15:6: the block is 64 bytes, naturally aligned.
const PMBA_ADDR_MASK: u32 = 0xffc0;

/// Where SeaBIOS puts the block on QEMU's PC, and so where direct boots do.
pub const DEFAULT_BASE: u16 = 0x600;
pub const BLOCK_SIZE: u16 = 64;

/// Offsets of the fixed-hardware registers inside the block.
pub const PM1_STS: u16 = 0x00;
pub const PM1_EN: u16 = 0x02;
pub const PM1_CNT: u16 = 0x04;
pub const PM_TMR: u16 = 0x08;
/// Register lengths as the FADT must state them.
pub const PM1_EVT_LEN: u8 = 4;
pub const PM1_CNT_LEN: u8 = 2;
pub const PM_TMR_LEN: u8 = 4;

/// PM1_STS / PM1_EN bits (same positions in both where both exist).
pub const TMR_STS: u16 = 1 << 0;
pub const BM_STS: u16 = 1 << 4;
pub const GBL_STS: u16 = 1 << 5;
pub const PWRBTN_STS: u16 = 1 << 8;
pub const RTC_STS: u16 = 1 << 10;
pub const WAK_STS: u16 = 1 << 15;
pub const TMR_EN: u16 = TMR_STS;
pub const GBL_EN: u16 = GBL_STS;
pub const PWRBTN_EN: u16 = PWRBTN_STS;
pub const RTC_EN: u16 = RTC_STS;
const STS_BITS: u16 = TMR_STS | BM_STS | GBL_STS | PWRBTN_STS | RTC_STS | WAK_STS;
const EN_BITS: u16 = TMR_EN | GBL_EN | PWRBTN_EN | RTC_EN;

/// PM1_CNT bits.
pub const SCI_EN: u16 = 1 << 0;
pub const BM_RLD: u16 = 1 << 1;
/// Write-only: tells the firmware the OS released the global lock.
pub const GBL_RLS: u16 = 1 << 2;
pub const SLP_TYP_SHIFT: u16 = 10;
pub const SLP_TYP_MASK: u16 = 7 << SLP_TYP_SHIFT;
/// Write-only: enter the sleep state SLP_TYP names.
pub const SLP_EN: u16 = 1 << 13;
const CNT_STORED: u16 = SCI_EN | BM_RLD | SLP_TYP_MASK;

/// The PIIX4's SUS_TYP encoding for soft off: what the DSDT's `\_S5_`
/// package must hand the OS. (The other encodings are suspend states that
/// need firmware to resume; the DSDT does not offer them.)
pub const SLP_TYP_S5: u8 = 0;

/// The ACPI PM timer's fixed rate.
pub const PM_TIMER_HZ: u64 = 3_579_545;
const NS_PER_SEC: u64 = 1_000_000_000;
/// TMR_STS is set whenever the counter's most significant bit (bit 23 of
/// the 24-bit timer) changes, i.e. every 2^23 ticks (about 2.34 s).
const TMR_STS_PERIOD: u64 = 1 << 23;
const TMR_MASK: u32 = 0x00ff_ffff;

pub struct Piix4Pm {
    cfg: ConfigSpace,
    sts: u16,
    en: u16,
    cnt: u16,
    /// Virtual time of the last `advance`.
    now: u64,
    power_off: bool,
}

impl Default for Piix4Pm {
    fn default() -> Self {
        Self::new()
    }
}

/// Whole timer ticks elapsed at virtual time `ns`.
fn ticks_at(ns: u64) -> u64 {
    (ns as u128 * PM_TIMER_HZ as u128 / NS_PER_SEC as u128) as u64
}

/// The first virtual time at which `ticks_at` reaches `tick`.
fn time_of_tick(tick: u64) -> u64 {
    let ns = (tick as u128 * NS_PER_SEC as u128).div_ceil(PM_TIMER_HZ as u128);
    ns.min(u64::MAX as u128) as u64
}

impl Piix4Pm {
    pub fn new() -> Self {
        let mut cfg = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS_BRIDGE_OTHER, REVISION, 0x00);
        cfg.set_u32(PMBA, 1);
        cfg.set_writable(PMBA, 4, PMBA_ADDR_MASK);
        cfg.set_writable(PMREGMISC, 1, PMIOSE as u32);
        // The SCI goes out on ISA IRQ 9, not a PCI interrupt pin.
        cfg.set_writable(0x3c, 1, 0);
        Piix4Pm {
            cfg,
            sts: 0,
            en: 0,
            cnt: 0,
            now: 0,
            power_off: false,
        }
    }

    /// Back to power-on state (PMBA, decode and ACPI mode off).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// What the firmware does before handing over to an OS: the block at
    /// `base` (rounded down to 64 bytes), decoding on, ACPI mode on.
    pub fn firmware_init(&mut self, base: u16) {
        self.cfg.set_u32(PMBA, (base as u32 & PMBA_ADDR_MASK) | 1);
        self.cfg.set_u8(PMREGMISC, PMIOSE);
        self.cnt |= SCI_EN;
    }

    pub fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    /// First port of the register block while PMIOSE is on.
    pub fn io_base(&self) -> Option<u16> {
        (self.cfg.get_u8(PMREGMISC) & PMIOSE != 0)
            .then(|| (self.cfg.get_u32(PMBA) & PMBA_ADDR_MASK) as u16)
    }

    /// Whether `port` is inside the decoded block.
    pub fn claims(&self, port: u16) -> bool {
        self.io_base()
            .is_some_and(|b| port >= b && port - b < BLOCK_SIZE)
    }

    /// The PM timer's 24-bit value at the last `advance`.
    pub fn timer(&self) -> u32 {
        ticks_at(self.now) as u32 & TMR_MASK
    }

    pub fn advance(&mut self, now: u64) {
        if now <= self.now {
            return;
        }
        if ticks_at(now) / TMR_STS_PERIOD != ticks_at(self.now) / TMR_STS_PERIOD {
            self.sts |= TMR_STS;
        }
        self.now = now;
    }

    /// When TMR_STS will next be set, if that would raise the SCI.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.cnt & SCI_EN == 0 || self.en & TMR_EN == 0 || self.sts & TMR_STS != 0 {
            return None;
        }
        let next = (ticks_at(self.now) / TMR_STS_PERIOD + 1) * TMR_STS_PERIOD;
        Some(time_of_tick(next))
    }

    /// The SCI line: an enabled fixed event is pending and ACPI mode is on
    /// (out of ACPI mode the PIIX4 signals SMIs instead, which Leap lacks).
    pub fn sci_level(&self) -> bool {
        self.cnt & SCI_EN != 0 && self.sts & self.en & EN_BITS != 0
    }

    /// The power button was pressed: a fixed-feature event for the OS.
    pub fn press_power_button(&mut self) {
        self.sts |= PWRBTN_STS;
    }

    /// True once after the guest wrote SLP_EN with the soft-off type.
    pub fn take_power_off(&mut self) -> bool {
        std::mem::take(&mut self.power_off)
    }

    /// One byte of the block at offset `off`.
    fn read_byte(&self, off: u16) -> u8 {
        let reg = |v: u16| (v >> (8 * (off & 1))) as u8;
        match off {
            0..=1 => reg(self.sts),
            2..=3 => reg(self.en),
            4..=5 => reg(self.cnt & CNT_STORED),
            8..=11 => (self.timer() >> (8 * (off - 8))) as u8,
            _ => 0,
        }
    }

    /// A write to the 16-bit register at `reg`, changing only the bits in
    /// `mask` (the bytes the access covered).
    fn write_reg(&mut self, reg: u16, value: u16, mask: u16) {
        let v = value & mask;
        match reg {
            PM1_STS => self.sts &= !(v & STS_BITS),
            PM1_EN => self.en = (self.en & !mask) | (v & EN_BITS),
            PM1_CNT => {
                self.cnt = (self.cnt & !(mask & CNT_STORED)) | (v & CNT_STORED);
                if v & SLP_EN != 0 {
                    let typ = ((self.cnt & SLP_TYP_MASK) >> SLP_TYP_SHIFT) as u8;
                    if typ == SLP_TYP_S5 {
                        self.power_off = true;
                    }
                    // Wake from the other states needs firmware Leap lacks;
                    // the DSDT does not offer them, so they are ignored.
                }
            }
            _ => {}
        }
    }
}

impl PciFunction for Piix4Pm {
    fn config_read(&mut self, offset: u8, size: u8) -> u32 {
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u8, size: u8, value: u32) {
        self.cfg.write(offset, size, value);
    }
}

impl PortDevice for Piix4Pm {
    /// Accesses of any width are assembled from bytes; a part beyond the
    /// block reads as ones, like an undecoded port.
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let Some(base) = self.io_base() else {
            return crate::ones(size);
        };
        let mut v = 0u32;
        for k in 0..size.min(4) as u16 {
            let b = match port.checked_add(k).and_then(|p| p.checked_sub(base)) {
                Some(off) if off < BLOCK_SIZE => self.read_byte(off),
                _ => 0xff,
            };
            v |= (b as u32) << (8 * k);
        }
        v
    }

    /// Each 16-bit register an access touches gets one write with the
    /// covered bytes, so a dword write to PM1_STS also sets PM1_EN and a
    /// SLP_EN write acts once.
    fn write(&mut self, port: u16, size: u8, value: u32) {
        let Some(base) = self.io_base() else {
            return;
        };
        let Some(start) = port.checked_sub(base) else {
            return;
        };
        let mut k = 0u16;
        while k < size.min(4) as u16 {
            let Some(off) = start.checked_add(k).filter(|&o| o < BLOCK_SIZE) else {
                return;
            };
            let reg = off & !1;
            let mut mask = 0u16;
            let mut val = 0u16;
            while k < size.min(4) as u16 && (start + k) & !1 == reg {
                let lane = (start + k) & 1;
                mask |= 0xff << (8 * lane);
                val |= (((value >> (8 * k)) & 0xff) as u16) << (8 * lane);
                k += 1;
            }
            self.write_reg(reg, val, mask);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciBus;

    const B: u16 = DEFAULT_BASE;

    fn on() -> Piix4Pm {
        let mut pm = Piix4Pm::new();
        pm.firmware_init(DEFAULT_BASE);
        pm
    }

    /// Virtual time (ns) at which the timer has counted `ticks`.
    fn at_tick(ticks: u64) -> u64 {
        time_of_tick(ticks)
    }

    #[test]
    fn identity_and_class() {
        let mut pm = Piix4Pm::new();
        assert_eq!(pm.config_read(0x00, 4), 0x7113_8086);
        assert_eq!(pm.config_read(0x08, 4), 0x0680_0003);
        assert_eq!(pm.config_read(0x0e, 1), 0);
        pm.config_write(0x00, 4, 0);
        pm.config_write(0x08, 4, 0);
        assert_eq!(pm.config_read(0x00, 4), 0x7113_8086);
        assert_eq!(pm.config_read(0x08, 4), 0x0680_0003);
        // No PCI interrupt: the SCI is ISA IRQ 9.
        pm.config_write(0x3c, 2, 0xffff);
        assert_eq!(pm.config_read(0x3c, 2), 0);
    }

    #[test]
    fn pmba_register() {
        let mut pm = Piix4Pm::new();
        assert_eq!(pm.config_read(PMBA, 4), 1, "I/O indicator, base 0");
        pm.config_write(PMBA, 4, 0xffff_ffff);
        assert_eq!(pm.config_read(PMBA, 4), 0xffc1);
        pm.config_write(PMBA, 4, 0x0000_b03f);
        assert_eq!(pm.config_read(PMBA, 4), 0xb001, "64-byte aligned");
        pm.config_write(PMBA, 2, 0x0600);
        assert_eq!(pm.config_read(PMBA, 4), 0x0601);
        assert_eq!(pm.io_base(), None, "PMIOSE still off");
    }

    #[test]
    fn pmregmisc_gates_the_block() {
        let mut pm = Piix4Pm::new();
        pm.config_write(PMBA, 4, 0x600);
        assert!(!pm.claims(0x600));
        assert_eq!(pm.read(0x608, 4), 0xffff_ffff);
        pm.config_write(PMREGMISC, 1, 0xff);
        assert_eq!(pm.config_read(PMREGMISC, 1), 1, "only PMIOSE is writable");
        assert_eq!(pm.io_base(), Some(0x600));
        assert!(pm.claims(0x600) && pm.claims(0x63f));
        assert!(!pm.claims(0x5ff) && !pm.claims(0x640));
        pm.config_write(PMREGMISC, 1, 0);
        assert_eq!(pm.io_base(), None);
    }

    #[test]
    fn firmware_init_places_block_and_enables_acpi() {
        let mut pm = Piix4Pm::new();
        assert_eq!(pm.read(B + PM1_CNT, 2), 0xffff);
        pm.firmware_init(0x1234);
        assert_eq!(pm.io_base(), Some(0x1200));
        let mut pm = on();
        assert_eq!(pm.io_base(), Some(0x600));
        assert_eq!(pm.config_read(PMBA, 4), 0x601);
        assert_eq!(pm.read(B + PM1_CNT, 2), SCI_EN as u32);
        pm.reset();
        assert_eq!(pm.io_base(), None);
    }

    #[test]
    fn pm_timer_follows_virtual_time() {
        let mut pm = on();
        assert_eq!(pm.read(B + PM_TMR, 4), 0);
        pm.advance(1_000_000_000);
        assert_eq!(pm.read(B + PM_TMR, 4), PM_TIMER_HZ as u32);
        // 279 ns is the last time before the first tick (279.4 ns period).
        let mut pm = on();
        pm.advance(279);
        assert_eq!(pm.timer(), 0);
        pm.advance(280);
        assert_eq!(pm.timer(), 1);
        // Byte and word reads see the lanes of the 24-bit value.
        let mut pm = on();
        pm.advance(at_tick(0x12_3456));
        assert_eq!(pm.read(B + PM_TMR, 4), 0x12_3456);
        assert_eq!(pm.read(B + PM_TMR, 1), 0x56);
        assert_eq!(pm.read(B + PM_TMR + 1, 1), 0x34);
        assert_eq!(pm.read(B + PM_TMR + 2, 2), 0x0012);
        assert_eq!(pm.read(B + PM_TMR + 3, 1), 0, "bits 31:24 are zero");
        // Read-only.
        pm.write(B + PM_TMR, 4, 0);
        assert_eq!(pm.read(B + PM_TMR, 4), 0x12_3456);
    }

    #[test]
    fn pm_timer_wraps_at_24_bits_and_never_goes_back() {
        let mut pm = on();
        pm.advance(at_tick(0xff_ffff));
        assert_eq!(pm.timer(), 0xff_ffff);
        pm.advance(at_tick(0x100_0005));
        assert_eq!(pm.timer(), 5);
        let t = pm.timer();
        pm.advance(10);
        assert_eq!(pm.timer(), t, "time does not run backwards");
    }

    #[test]
    fn tmr_sts_on_every_bit_23_change() {
        let mut pm = on();
        pm.advance(at_tick(TMR_STS_PERIOD - 1));
        assert_eq!(pm.read(B + PM1_STS, 2) as u16 & TMR_STS, 0);
        pm.advance(at_tick(TMR_STS_PERIOD));
        assert_ne!(pm.read(B + PM1_STS, 2) as u16 & TMR_STS, 0, "bit 23 set");
        pm.write(B + PM1_STS, 2, TMR_STS as u32);
        assert_eq!(pm.read(B + PM1_STS, 2), 0);
        pm.advance(at_tick(2 * TMR_STS_PERIOD));
        assert_ne!(pm.read(B + PM1_STS, 2) as u16 & TMR_STS, 0, "bit 23 clear");
        pm.write(B + PM1_STS, 2, TMR_STS as u32);
        // A jump over several changes sets it once; it is a flag.
        pm.advance(at_tick(7 * TMR_STS_PERIOD + 3));
        assert_eq!(pm.read(B + PM1_STS, 2) as u16, TMR_STS);
    }

    #[test]
    fn timer_sci_and_deadline() {
        let mut pm = on();
        assert_eq!(pm.next_deadline(), None, "TMR_EN off");
        pm.write(B + PM1_EN, 2, TMR_EN as u32);
        let d = pm.next_deadline().unwrap();
        assert_eq!(d, at_tick(TMR_STS_PERIOD));
        pm.advance(d - 1);
        assert!(!pm.sci_level());
        pm.advance(d);
        assert!(pm.sci_level());
        assert_eq!(pm.next_deadline(), None, "already pending");
        pm.write(B + PM1_STS, 2, TMR_STS as u32);
        assert!(!pm.sci_level());
        assert_eq!(pm.next_deadline(), Some(at_tick(2 * TMR_STS_PERIOD)));
        // Out of ACPI mode the SCI stays low and needs no deadline.
        pm.write(B + PM1_CNT, 2, 0);
        assert_eq!(pm.next_deadline(), None);
        pm.advance(at_tick(2 * TMR_STS_PERIOD));
        assert!(!pm.sci_level());
        pm.write(B + PM1_CNT, 2, SCI_EN as u32);
        assert!(pm.sci_level());
    }

    #[test]
    fn pm1_en_writable_bits() {
        let mut pm = on();
        pm.write(B + PM1_EN, 2, 0xffff);
        assert_eq!(pm.read(B + PM1_EN, 2) as u16, EN_BITS);
        assert_eq!(EN_BITS, 0x0521);
        pm.write(B + PM1_EN + 1, 1, 0);
        assert_eq!(pm.read(B + PM1_EN, 2) as u16, TMR_EN | GBL_EN, "byte lane");
        pm.write(B + PM1_EN, 2, 0);
        assert_eq!(pm.read(B + PM1_EN, 2), 0);
    }

    #[test]
    fn pm1_sts_write_one_to_clear() {
        let mut pm = on();
        pm.sts = 0xffff;
        assert_eq!(pm.read(B + PM1_STS, 2) as u16, 0xffff);
        pm.sts = STS_BITS;
        pm.write(B + PM1_STS, 2, 0);
        assert_eq!(pm.read(B + PM1_STS, 2) as u16, STS_BITS, "zeros do nothing");
        for bit in [TMR_STS, BM_STS, GBL_STS, PWRBTN_STS, RTC_STS, WAK_STS] {
            pm.sts = STS_BITS;
            pm.write(B + PM1_STS, 2, bit as u32);
            assert_eq!(pm.read(B + PM1_STS, 2) as u16, STS_BITS & !bit, "{bit:#x}");
        }
        // The guest can never set a status bit.
        pm.sts = 0;
        pm.write(B + PM1_STS, 2, 0xffff);
        assert_eq!(pm.read(B + PM1_STS, 2), 0);
    }

    #[test]
    fn dword_write_at_pm1_evt_hits_status_and_enable() {
        let mut pm = on();
        pm.press_power_button();
        pm.write(B + PM1_STS, 4, (PWRBTN_EN as u32) << 16 | PWRBTN_STS as u32);
        assert_eq!(pm.read(B + PM1_STS, 4), (PWRBTN_EN as u32) << 16);
    }

    #[test]
    fn power_button_raises_sci_when_enabled() {
        let mut pm = on();
        pm.press_power_button();
        assert_eq!(pm.read(B + PM1_STS, 2) as u16, PWRBTN_STS);
        assert!(!pm.sci_level(), "PWRBTN_EN off");
        pm.write(B + PM1_EN, 2, PWRBTN_EN as u32);
        assert!(pm.sci_level());
        pm.write(B + PM1_STS, 2, PWRBTN_STS as u32);
        assert!(!pm.sci_level());
    }

    #[test]
    fn gbl_and_rtc_enables_raise_sci() {
        for bit in [GBL_STS, RTC_STS] {
            let mut pm = on();
            pm.sts = bit;
            assert!(!pm.sci_level());
            pm.write(B + PM1_EN, 2, bit as u32);
            assert!(pm.sci_level(), "{bit:#x}");
        }
        // BM_STS and WAK_STS have no enable.
        let mut pm = on();
        pm.sts = BM_STS | WAK_STS;
        pm.write(B + PM1_EN, 2, 0xffff);
        assert!(!pm.sci_level());
    }

    #[test]
    fn pm1_cnt_bits() {
        let mut pm = on();
        pm.write(B + PM1_CNT, 2, 0xffff & !SLP_EN as u32);
        assert_eq!(
            pm.read(B + PM1_CNT, 2) as u16,
            CNT_STORED,
            "GBL_RLS reads 0"
        );
        assert!(!pm.take_power_off(), "no SLP_EN");
        pm.write(B + PM1_CNT, 2, 5 << SLP_TYP_SHIFT | BM_RLD as u32);
        assert_eq!(pm.read(B + PM1_CNT, 2) as u16, 5 << SLP_TYP_SHIFT | BM_RLD);
        assert_eq!(
            pm.read(B + PM1_CNT, 2) as u16 & SCI_EN,
            0,
            "SCI_EN is writable"
        );
        // Bytes 6-7 of the block are not part of PM1_CNT.
        pm.write(B + PM1_CNT, 4, 0xffff_0000);
        assert_eq!(pm.read(B + PM1_CNT, 4), 0);
    }

    #[test]
    fn slp_en_with_s5_powers_off_once() {
        let mut pm = on();
        let typ = (SLP_TYP_S5 as u32) << SLP_TYP_SHIFT;
        // Linux writes the type first, then type | SLP_EN.
        pm.write(B + PM1_CNT, 2, typ | SCI_EN as u32);
        assert!(!pm.take_power_off());
        pm.write(B + PM1_CNT, 2, typ | (SLP_EN | SCI_EN) as u32);
        assert!(pm.take_power_off());
        assert!(!pm.take_power_off(), "reported once");
        assert_eq!(pm.read(B + PM1_CNT, 2) as u16 & SLP_EN, 0, "write-only");
        // The high byte alone carries SLP_EN and SLP_TYP.
        pm.write(B + PM1_CNT + 1, 1, (SLP_EN >> 8) as u32);
        assert!(pm.take_power_off());
        // Without ACPI mode the write still powers off.
        let mut pm = on();
        pm.write(B + PM1_CNT, 2, SLP_EN as u32);
        assert!(pm.take_power_off());
    }

    #[test]
    fn other_sleep_types_are_ignored() {
        for typ in 1..8u32 {
            let mut pm = on();
            pm.write(B + PM1_CNT, 2, typ << SLP_TYP_SHIFT | SLP_EN as u32);
            assert!(!pm.take_power_off(), "type {typ}");
        }
        // Writing the low byte leaves a stored SLP_TYP alone.
        let mut pm = on();
        pm.write(B + PM1_CNT, 2, 1 << SLP_TYP_SHIFT);
        pm.write(B + PM1_CNT, 1, SCI_EN as u32);
        assert_eq!(pm.read(B + PM1_CNT, 2) as u16, 1 << SLP_TYP_SHIFT | SCI_EN);
    }

    #[test]
    fn unmodelled_offsets_read_zero() {
        let mut pm = on();
        for off in [6u16, 7, 0x0c, 0x10, 0x20, 0x3f] {
            pm.write(B + off, 1, 0xff);
            assert_eq!(pm.read(B + off, 1), 0, "{off:#x}");
        }
    }

    #[test]
    fn accesses_at_the_edges_never_panic() {
        let mut pm = on();
        assert_eq!(pm.read(B + 0x3e, 4), 0xffff_0000, "half outside");
        pm.write(B + 0x3e, 4, 0xffff_ffff);
        for size in [0u8, 1, 2, 3, 4, 8] {
            for port in [0u16, B - 1, B, B + 0x3f, 0xfffe, 0xffff] {
                pm.read(port, size);
                pm.write(port, size, 0xffff_ffff);
            }
        }
        pm.firmware_init(0xffc0);
        pm.read(0xffff, 4);
        pm.write(0xfffe, 4, 0xffff_ffff);
        pm.advance(u64::MAX);
        let _ = pm.next_deadline();
        assert!(time_of_tick(u64::MAX) > 0);
    }

    #[test]
    fn reachable_as_pci_function_1_3() {
        let mut bus = PciBus::new();
        bus.add(1, 0, Box::new(crate::piix3::Piix3::new()));
        bus.add(1, 3, Box::new(Piix4Pm::new()));
        bus.write(0xcf8, 4, 0x8000_0b00);
        assert_eq!(bus.read(0xcfc, 4), 0x7113_8086);
        bus.write(0xcf8, 4, 0x8000_0b40);
        bus.write(0xcfc, 4, 0x600);
        bus.write(0xcf8, 4, 0x8000_0b80);
        bus.write(0xcfc, 1, 1);
        assert_eq!(bus.get_mut::<Piix4Pm>(1, 3).unwrap().io_base(), Some(0x600));
    }
}
