//! Intel 82441FX (i440FX PMC): the host bridge at bus 0, device 0,
//! function 0. What matters to the board is the memory map it controls:
//! the PAM registers (0x59-0x5F) decide per segment whether reads and
//! writes in 0xC0000-0xFFFFF go to DRAM or to the PCI/ISA side (ROM), and
//! the SMRAM register (0x72) decides who sees DRAM at 0xA0000-0xBFFFF.
//! The other registers only tune DRAM and cache timing on real hardware;
//! here they hold what the firmware writes, within their writable bits.

use crate::pci::{ConfigSpace, PciFunction, CMD_MEMORY, CMD_SERR};

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x1237;
pub const REVISION: u8 = 0x02;
pub const CLASS_HOST_BRIDGE: u32 = 0x06_00_00;

/// PAM0 (high nibble: 0xF0000-0xFFFFF); PAM1-PAM6 follow, two 16 KiB
/// segments each starting at 0xC0000, low nibble first.
pub const PAM0: u8 = 0x59;
/// DRAM row boundary registers DRB0-DRB7 (cumulative, 8 MiB units).
pub const DRB0: u8 = 0x60;
pub const SMRAM: u8 = 0x72;

/// PAM nibble bits.
pub const PAM_RE: u8 = 1 << 0;
pub const PAM_WE: u8 = 1 << 1;

/// SMRAM register bits. C_BASE_SEG (bits 2:0) is fixed at 010b: SMRAM
/// lives at 0xA0000.
pub const SMRAM_D_OPEN: u8 = 1 << 6;
pub const SMRAM_D_CLS: u8 = 1 << 5;
pub const SMRAM_D_LCK: u8 = 1 << 4;
pub const SMRAM_G_SMRAME: u8 = 1 << 3;

/// (offset, reset value, writable bits) of every byte register beyond the
/// standard header.
const REGS: &[(u8, u8, u8)] = &[
    (0x0d, 0x00, 0xf8), // master latency timer, 8-clock granularity
    (0x50, 0x00, 0xf4), // PMCCFG low
    (0x51, 0x01, 0xc3), // PMCCFG high
    (0x52, 0x00, 0xff),
    (0x53, 0x80, 0x00),
    (0x54, 0x00, 0x82),
    (0x55, 0x00, 0xff),
    (0x56, 0x00, 0xff),
    (0x57, 0x00, 0x77), // DRAMC
    (0x58, 0x10, 0x7f), // DRAMT
    (0x59, 0x00, 0x70), // PAM0: only the BIOS area nibble exists
    (0x5a, 0x00, 0x77),
    (0x5b, 0x00, 0x77),
    (0x5c, 0x00, 0x77),
    (0x5d, 0x00, 0x77),
    (0x5e, 0x00, 0x77),
    (0x5f, 0x00, 0x77),
    (0x60, 0x01, 0xff),
    (0x61, 0x01, 0xff),
    (0x62, 0x01, 0xff),
    (0x63, 0x01, 0xff),
    (0x64, 0x01, 0xff),
    (0x65, 0x01, 0xff),
    (0x66, 0x01, 0xff),
    (0x67, 0x01, 0xff),
    (0x68, 0x00, 0xc0), // FDHC: memory hole enable/size
    (0x70, 0x00, 0xf8), // MTT
    (0x71, 0x00, 0x1f), // CLT
    (0x72, 0x02, 0x78), // SMRAM, until D_LCK
    (0x90, 0x00, 0x1b), // ERRCMD
];

/// ERRSTS: error flags the hardware sets and software clears with ones.
const ERRSTS: u8 = 0x91;
const ERRSTS_RW1C: u8 = 0x11;

pub struct I440fx {
    cfg: ConfigSpace,
    map_changed: bool,
}

impl Default for I440fx {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fx {
    pub fn new() -> Self {
        let mut cfg = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS_HOST_BRIDGE, REVISION, 0x00);
        // The bridge always decodes memory and masters the bus; only the
        // memory enable and SERR# reporting are under software control.
        cfg.set_u16(0x04, 0x0006);
        cfg.set_writable(0x04, 2, (CMD_MEMORY | CMD_SERR) as u32);
        // Medium DEVSEL timing, fast back-to-back capable.
        cfg.set_u16(0x06, 0x0280);
        cfg.set_writable(0x3c, 1, 0);
        for &(off, val, mask) in REGS {
            cfg.set_u8(off, val);
            cfg.set_writable(off, 1, mask as u32);
        }
        cfg.set_w1c(ERRSTS, 1, ERRSTS_RW1C as u32);
        I440fx {
            cfg,
            // The board has not mapped anything yet, so the first poll
            // installs the reset map.
            map_changed: true,
        }
    }

    /// Back to power-on state (hard reset).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    pub fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    /// For an address in 0xC0000-0xFFFFF: (reads go to DRAM, writes go to
    /// DRAM). Where a direction is not DRAM it goes to the PCI/ISA side,
    /// i.e. the ROM for reads and nowhere for writes. None outside.
    pub fn pam(&self, addr: u32) -> Option<(bool, bool)> {
        let attr = match addr {
            0xf_0000..=0xf_ffff => self.cfg.get_u8(PAM0) >> 4,
            0xc_0000..=0xe_ffff => {
                let seg = (addr - 0xc_0000) >> 14;
                let reg = self.cfg.get_u8(PAM0 + 1 + (seg / 2) as u8);
                if seg.is_multiple_of(2) {
                    reg & 0xf
                } else {
                    reg >> 4
                }
            }
            _ => return None,
        };
        Some((attr & PAM_RE != 0, attr & PAM_WE != 0))
    }

    /// The 13 PAM segments as (start, length, read DRAM, write DRAM), in
    /// address order, so the board can remap without probing addresses.
    pub fn pam_regions(&self) -> [(u32, u32, bool, bool); 13] {
        std::array::from_fn(|i| {
            let (start, len) = if i < 12 {
                (0xc_0000 + 0x4000 * i as u32, 0x4000)
            } else {
                (0xf_0000, 0x1_0000)
            };
            let (re, we) = self.pam(start).unwrap_or((false, false));
            (start, len, re, we)
        })
    }

    /// True once after any PAM or SMRAM register changed value: the board
    /// then rebuilds its 0xA0000-0xFFFFF mapping.
    pub fn take_pam_changed(&mut self) -> bool {
        std::mem::take(&mut self.map_changed)
    }

    pub fn smram(&self) -> u8 {
        self.cfg.get_u8(SMRAM)
    }

    /// Whether an access to 0xA0000-0xBFFFF reaches DRAM (SMRAM) rather
    /// than the PCI side (VGA). SMRAM must be globally enabled; SMM code
    /// always sees it, other code only while D_OPEN is set. D_CLS (data
    /// accesses from SMM go to VGA) is not modelled.
    pub fn smram_visible(&self, in_smm: bool) -> bool {
        let r = self.smram();
        r & SMRAM_G_SMRAME != 0 && (in_smm || r & SMRAM_D_OPEN != 0)
    }

    /// DRAM row boundary `row` (0-7), None past the last row.
    pub fn drb(&self, row: usize) -> Option<u8> {
        (row < 8).then(|| self.cfg.get_u8(DRB0 + row as u8))
    }

    fn map_bytes(&self) -> [u8; 8] {
        let mut b = [0; 8];
        for (i, v) in b.iter_mut().take(7).enumerate() {
            *v = self.cfg.get_u8(PAM0 + i as u8);
        }
        b[7] = self.cfg.get_u8(SMRAM);
        b
    }
}

impl PciFunction for I440fx {
    fn config_read(&mut self, offset: u8, size: u8) -> u32 {
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u8, size: u8, value: u32) {
        let before = self.map_bytes();
        self.cfg.write(offset, size, value);
        let smram = self.cfg.get_u8(SMRAM);
        if smram & SMRAM_D_LCK != 0 {
            // Locking closes SMRAM to non-SMM code and freezes everything
            // but D_CLS until the next hard reset.
            self.cfg.set_u8(SMRAM, smram & !SMRAM_D_OPEN);
            self.cfg.set_writable(SMRAM, 1, SMRAM_D_CLS as u32);
        }
        if self.map_bytes() != before {
            self.map_changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciBus;
    use crate::PortDevice;

    fn fresh() -> I440fx {
        let mut b = I440fx::new();
        assert!(b.take_pam_changed(), "reset map must be installed once");
        assert!(!b.take_pam_changed());
        b
    }

    #[test]
    fn identity() {
        let mut b = fresh();
        assert_eq!(b.config_read(0x00, 4), 0x1237_8086);
        assert_eq!(b.config_read(0x08, 4), 0x0600_0002);
        assert_eq!(b.config_read(0x0e, 1), 0x00);
        assert_eq!(b.config_read(0x04, 4), 0x0280_0006);
        assert_eq!(b.config().get_u16(0x02), DEVICE_ID);
        b.config_write(0x00, 4, 0);
        b.config_write(0x08, 4, 0);
        b.config_write(0x0c, 4, 0xffff_ffff);
        assert_eq!(b.config_read(0x00, 4), 0x1237_8086);
        assert_eq!(b.config_read(0x08, 4), 0x0600_0002);
        assert_eq!(b.config_read(0x0c, 4), 0x0000_f800);
        // No BARs, no interrupt line on a host bridge.
        b.config_write(0x10, 4, 0xffff_ffff);
        b.config_write(0x3c, 1, 0xff);
        assert_eq!(b.config_read(0x10, 4), 0);
        assert_eq!(b.config_read(0x3c, 1), 0);
    }

    #[test]
    fn command_and_status() {
        let mut b = fresh();
        b.config_write(0x04, 2, 0xffff);
        assert_eq!(b.config_read(0x04, 2), 0x0106);
        b.config_write(0x04, 2, 0);
        assert_eq!(b.config_read(0x04, 2), 0x0004);
        b.cfg.set_u16(0x06, 0xfa80);
        b.config_write(0x06, 2, 0xffff);
        assert_eq!(b.config_read(0x06, 2), 0x0280);
    }

    #[test]
    fn register_defaults_and_writable_bits() {
        for &(off, val, mask) in REGS {
            let mut b = fresh();
            assert_eq!(b.config_read(off, 1), val as u32, "default {off:#x}");
            // Setting D_LCK has side effects of its own, tested below.
            let all = if off == SMRAM { !SMRAM_D_LCK } else { 0xff };
            b.config_write(off, 1, all as u32);
            assert_eq!(
                b.config_read(off, 1),
                (val | (mask & all)) as u32,
                "ones {off:#x}"
            );
            b.config_write(off, 1, 0x00);
            // SMRAM's fixed base segment survives a zero write.
            assert_eq!(
                b.config_read(off, 1),
                (val & !mask) as u32,
                "zeros {off:#x}"
            );
        }
    }

    #[test]
    fn errsts_is_write_one_to_clear() {
        let mut b = fresh();
        b.cfg.set_u8(ERRSTS, 0xff);
        b.config_write(ERRSTS, 1, 0x01);
        assert_eq!(b.config_read(ERRSTS, 1), 0xfe);
        b.config_write(ERRSTS, 1, 0xff);
        assert_eq!(b.config_read(ERRSTS, 1), 0xee);
        b.cfg.set_u8(ERRSTS, 0);
        b.config_write(ERRSTS, 1, 0xff);
        assert_eq!(b.config_read(ERRSTS, 1), 0);
    }

    #[test]
    fn drb_rows() {
        let mut b = fresh();
        assert_eq!(b.drb(0), Some(1));
        b.config_write(0x64, 4, 0x1008_0604);
        assert_eq!(b.drb(4), Some(0x04));
        assert_eq!(b.drb(7), Some(0x10));
        assert_eq!(b.drb(8), None);
        assert!(!b.take_pam_changed(), "DRBs are not part of the PAM map");
    }

    #[test]
    fn pam_reset_state_is_rom() {
        let b = fresh();
        for addr in [0xc_0000, 0xd_4000, 0xe_ffff, 0xf_0000, 0xf_ffff] {
            assert_eq!(b.pam(addr), Some((false, false)), "{addr:#x}");
        }
        assert_eq!(b.pam(0xb_ffff), None);
        assert_eq!(b.pam(0x10_0000), None);
        assert_eq!(b.pam(0xffff_fff0), None);
    }

    #[test]
    fn pam_decode_each_segment() {
        // (register, nibble shift, first byte of the segment, length)
        let mut segs = vec![(PAM0, 4, 0xf_0000u32, 0x1_0000u32)];
        for i in 0..12u32 {
            segs.push((
                PAM0 + 1 + (i / 2) as u8,
                4 * (i % 2),
                0xc_0000 + i * 0x4000,
                0x4000,
            ));
        }
        for &(reg, shift, start, len) in &segs {
            for (attr, expect) in [
                (1u8, (true, false)),
                (2, (false, true)),
                (3, (true, true)),
                (0, (false, false)),
            ] {
                let mut b = fresh();
                b.config_write(reg, 1, (attr as u32) << shift);
                assert_eq!(b.take_pam_changed(), attr != 0, "{start:#x}");
                assert_eq!(b.pam(start), Some(expect), "{start:#x} attr {attr}");
                assert_eq!(b.pam(start + len - 1), Some(expect), "{start:#x} end");
                // Neighbours keep their reset state.
                for other in [start.wrapping_sub(1), start + len] {
                    if let Some(got) = b.pam(other) {
                        assert_eq!(got, (false, false), "{other:#x} by {start:#x}");
                    }
                }
                let region = b.pam_regions().into_iter().find(|r| r.0 == start).unwrap();
                assert_eq!(region, (start, len, expect.0, expect.1));
            }
        }
        assert_eq!(segs.len(), 13);
    }

    #[test]
    fn pam_cache_enable_bit_is_stored_but_not_decoded() {
        let mut b = fresh();
        b.config_write(0x5a, 1, 0x44);
        assert_eq!(b.config_read(0x5a, 1), 0x44);
        assert_eq!(b.pam(0xc_0000), Some((false, false)));
        // PAM0's low nibble does not exist.
        b.config_write(PAM0, 1, 0x0f);
        assert_eq!(b.config_read(PAM0, 1), 0);
    }

    #[test]
    fn pam_changed_only_on_real_change() {
        let mut b = fresh();
        b.config_write(0x5a, 1, 0x33);
        assert!(b.take_pam_changed());
        assert!(!b.take_pam_changed());
        b.config_write(0x5a, 1, 0x33);
        assert!(!b.take_pam_changed(), "same value");
        b.config_write(0x5a, 1, 0xbb); // differs only in reserved bits
        assert!(!b.take_pam_changed());
        b.config_write(0x58, 1, 0x00);
        assert!(!b.take_pam_changed(), "unrelated register");
        // A dword write spanning PAM registers counts.
        b.config_write(0x5c, 4, 0x1111_1111);
        assert!(b.take_pam_changed());
        assert_eq!(b.pam(0xe_c000), Some((true, false)));
    }

    #[test]
    fn smram_open_close_and_lock() {
        let mut b = fresh();
        assert_eq!(b.smram(), 0x02);
        assert!(!b.smram_visible(true), "disabled until G_SMRAME");
        b.config_write(SMRAM, 1, SMRAM_G_SMRAME as u32);
        assert!(b.take_pam_changed());
        assert!(b.smram_visible(true));
        assert!(!b.smram_visible(false));
        b.config_write(SMRAM, 1, (SMRAM_G_SMRAME | SMRAM_D_OPEN) as u32);
        assert!(b.smram_visible(false));
        assert_eq!(b.smram(), 0x4a);
        b.config_write(SMRAM, 1, SMRAM_D_OPEN as u32);
        assert!(!b.smram_visible(false), "D_OPEN needs G_SMRAME");
        // Lock: D_OPEN drops, then only D_CLS can still change.
        b.config_write(
            SMRAM,
            1,
            (SMRAM_G_SMRAME | SMRAM_D_OPEN | SMRAM_D_LCK) as u32,
        );
        assert_eq!(b.smram(), 0x1a);
        assert!(b.take_pam_changed());
        b.config_write(SMRAM, 1, 0x40 | 0x20);
        assert_eq!(b.smram(), 0x3a);
        b.config_write(SMRAM, 1, 0x00);
        assert_eq!(b.smram(), 0x1a);
        assert!(!b.smram_visible(false));
        assert!(b.smram_visible(true));
        b.reset();
        assert_eq!(b.smram(), 0x02);
        b.config_write(SMRAM, 1, SMRAM_D_OPEN as u32);
        assert_eq!(b.smram(), 0x42, "unlocked again after reset");
    }

    #[test]
    fn through_the_bus() {
        let mut bus = PciBus::new();
        bus.add(0, 0, Box::new(I440fx::new()));
        bus.write(0xcf8, 4, 0x8000_0058);
        bus.write(0xcfd, 1, 0x30); // PAM0 via byte lane 1
        assert_eq!(bus.read(0xcfc, 4), 0x0000_3010);
        let b = bus.get_mut::<I440fx>(0, 0).unwrap();
        assert!(b.take_pam_changed());
        assert_eq!(b.pam(0xf_8000), Some((true, true)));
        // Single-function: 0.1 is invisible.
        bus.write(0xcf8, 4, 0x8000_0100);
        assert_eq!(bus.read(0xcfc, 4), 0xffff_ffff);
    }
}
