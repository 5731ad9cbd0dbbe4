//! PCI bus 0: configuration mechanism #1 (ports 0xCF8/0xCFC) and the
//! 256-byte configuration space shared by every function.
//!
//! Ownership: [`PciBus`] owns every function as a `Box<dyn PciFunction +
//! Send>` and only routes configuration cycles. The board reaches a
//! concrete function again (to ask the i440FX for its PAM state or the
//! PIIX3 for its PIRQ routing) with [`PciBus::get_mut`], a downcast through
//! `Any`; this keeps one owner per device and needs no callbacks.
//!
//! Port sharing: 0xCF9 is both a byte of the address register and the
//! PIIX3 reset control register. Only dword accesses at 0xCF8 reach the
//! address register, so the board sends byte accesses to 0xCF9 to
//! `piix3::ResetControl` (see `ResetControl::claims`) and everything else
//! in 0xCF8..=0xCFF here.

use crate::{ones, PortDevice};
use std::any::Any;

/// Dword-only address register of mechanism #1.
pub const PORT_CONFIG_ADDRESS: u16 = 0xcf8;
/// First of the four data ports; the low two port bits select the byte.
pub const PORT_CONFIG_DATA: u16 = 0xcfc;

pub const CMD_IO: u16 = 1 << 0;
pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_SPECIAL_CYCLES: u16 = 1 << 3;
pub const CMD_MWI: u16 = 1 << 4;
pub const CMD_VGA_SNOOP: u16 = 1 << 5;
pub const CMD_PARITY: u16 = 1 << 6;
pub const CMD_SERR: u16 = 1 << 8;
pub const CMD_FAST_B2B: u16 = 1 << 9;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;

/// Status bits a device latches on bus errors; software clears them by
/// writing ones (master data parity error, signalled/received target
/// abort, received master abort, signalled system error, detected parity
/// error).
pub const STATUS_RW1C: u16 = 0xf900;

/// Header type bit 7: functions 1-7 exist.
pub const HEADER_MULTIFUNCTION: u8 = 0x80;

/// One function's view of configuration space. `offset` is 0..=255 and
/// naturally aligned for `size` (1, 2 or 4) when it comes from [`PciBus`].
pub trait PciFunction: Any {
    fn config_read(&mut self, offset: u8, size: u8) -> u32;
    fn config_write(&mut self, offset: u8, size: u8, value: u32);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Io,
    Mem32,
    Mem32Prefetch,
}

#[derive(Clone, Copy, Debug)]
struct Bar {
    size: u32,
    kind: BarKind,
}

/// 256 bytes of configuration registers with per-byte write masks.
/// Bytes not in `wmask` are read-only; bytes in `w1c` are cleared by
/// writing ones and never set by a guest write.
#[derive(Clone)]
pub struct ConfigSpace {
    data: [u8; 256],
    wmask: [u8; 256],
    w1c: [u8; 256],
    bars: [Option<Bar>; 6],
}

impl ConfigSpace {
    /// `class_code` is class<<16 | subclass<<8 | prog-if. The command
    /// register gets the bits every function may implement without extra
    /// hardware (I/O, memory, bus master, parity response, SERR#, INTx
    /// disable); devices narrow or widen that with [`Self::set_writable`].
    pub fn new(vendor: u16, device: u16, class_code: u32, revision: u8, header_type: u8) -> Self {
        let mut c = ConfigSpace {
            data: [0; 256],
            wmask: [0; 256],
            w1c: [0; 256],
            bars: [None; 6],
        };
        c.set_u16(0x00, vendor);
        c.set_u16(0x02, device);
        c.set_u8(0x08, revision);
        c.set_u8(0x09, class_code as u8);
        c.set_u8(0x0a, (class_code >> 8) as u8);
        c.set_u8(0x0b, (class_code >> 16) as u8);
        c.set_u8(0x0e, header_type);
        c.set_writable(
            0x04,
            2,
            (CMD_IO | CMD_MEMORY | CMD_BUS_MASTER | CMD_PARITY | CMD_SERR | CMD_INTX_DISABLE)
                as u32,
        );
        c.set_w1c(0x06, 2, STATUS_RW1C as u32);
        if header_type & 0x7f == 0 {
            // Interrupt line is a scratch byte for software; pin stays RO.
            c.set_writable(0x3c, 1, 0xff);
        }
        c
    }

    pub fn get_u8(&self, offset: u8) -> u8 {
        self.data[offset as usize]
    }

    pub fn get_u16(&self, offset: u8) -> u16 {
        self.raw(offset, 2) as u16
    }

    pub fn get_u32(&self, offset: u8) -> u32 {
        self.raw(offset, 4)
    }

    /// Device-side stores that ignore the guest write masks.
    pub fn set_u8(&mut self, offset: u8, value: u8) {
        self.data[offset as usize] = value;
    }

    pub fn set_u16(&mut self, offset: u8, value: u16) {
        self.set_raw(offset, 2, value as u32);
    }

    pub fn set_u32(&mut self, offset: u8, value: u32) {
        self.set_raw(offset, 4, value);
    }

    /// Which bits of `size` bytes at `offset` a guest write may change.
    pub fn set_writable(&mut self, offset: u8, size: u8, mask: u32) {
        for (i, b) in Self::bytes(offset, size) {
            self.wmask[i] = (mask >> (8 * b)) as u8;
        }
    }

    /// Which bits of `size` bytes at `offset` are write-one-to-clear.
    pub fn set_w1c(&mut self, offset: u8, size: u8, mask: u32) {
        for (i, b) in Self::bytes(offset, size) {
            self.w1c[i] = (mask >> (8 * b)) as u8;
        }
    }

    /// Guest read; bytes past 0xFF (only reachable by a misaligned caller)
    /// read as ones like an absent register would.
    pub fn read(&self, offset: u8, size: u8) -> u32 {
        let mut v = ones(size);
        for (i, b) in Self::bytes(offset, size) {
            v &= !(0xff << (8 * b));
            v |= (self.data[i] as u32) << (8 * b);
        }
        v
    }

    /// Guest write honouring the writable and write-one-to-clear masks.
    pub fn write(&mut self, offset: u8, size: u8, value: u32) {
        for (i, b) in Self::bytes(offset, size) {
            let v = (value >> (8 * b)) as u8;
            let old = self.data[i];
            let mut new = (old & !self.wmask[i]) | (v & self.wmask[i]);
            new &= !(v & self.w1c[i]);
            self.data[i] = new;
        }
    }

    pub fn command(&self) -> u16 {
        self.get_u16(0x04)
    }

    /// Declare BAR `index` (0-5 for header type 0, 0-1 for type 1) as a
    /// naturally aligned window of `size` bytes. The size is rounded up to
    /// a power of two and to the minimum the spec allows (4 for I/O, 16 for
    /// memory). I/O BARs decode 16 address bits, the x86 port space, so
    /// their upper half is hardwired to zero. A size of 0 removes the BAR.
    pub fn set_bar(&mut self, index: usize, size: u32, kind: BarKind) {
        if index >= self.bar_count() {
            return;
        }
        let offset = 0x10 + 4 * index as u8;
        if size == 0 {
            self.bars[index] = None;
            self.set_writable(offset, 4, 0);
            self.set_u32(offset, 0);
            return;
        }
        let min = if kind == BarKind::Io { 4 } else { 16 };
        let Some(size) = size.max(min).checked_next_power_of_two() else {
            return;
        };
        if kind == BarKind::Io && size > 0x1_0000 {
            return;
        }
        let (type_bits, addr_bits) = match kind {
            BarKind::Io => (0x1, 0xffff_fffcu32 & 0xffff),
            BarKind::Mem32 => (0x0, 0xffff_fff0),
            BarKind::Mem32Prefetch => (0x8, 0xffff_fff0),
        };
        self.bars[index] = Some(Bar { size, kind });
        self.set_writable(offset, 4, addr_bits & !(size - 1));
        self.set_u32(offset, type_bits);
    }

    /// Base of BAR `index` while its decoder is enabled in the command
    /// register (I/O or memory space bit), else None.
    pub fn bar_address(&self, index: usize) -> Option<u32> {
        let bar = (*self.bars.get(index)?)?;
        let enable = match bar.kind {
            BarKind::Io => CMD_IO,
            _ => CMD_MEMORY,
        };
        if self.command() & enable == 0 {
            return None;
        }
        let raw = self.get_u32(0x10 + 4 * index as u8);
        Some(match bar.kind {
            BarKind::Io => raw & !0x3,
            _ => raw & !0xf,
        })
    }

    /// Size in bytes of BAR `index` as rounded by [`Self::set_bar`].
    pub fn bar_size(&self, index: usize) -> Option<u32> {
        Some(self.bars.get(index).copied()??.size)
    }

    fn bar_count(&self) -> usize {
        match self.data[0x0e] & 0x7f {
            0 => 6,
            1 => 2,
            _ => 0,
        }
    }

    fn raw(&self, offset: u8, size: u8) -> u32 {
        let mut v = 0;
        for (i, b) in Self::bytes(offset, size) {
            v |= (self.data[i] as u32) << (8 * b);
        }
        v
    }

    fn set_raw(&mut self, offset: u8, size: u8, value: u32) {
        for (i, b) in Self::bytes(offset, size) {
            self.data[i] = (value >> (8 * b)) as u8;
        }
    }

    /// (index into the arrays, byte lane) for each in-range byte.
    fn bytes(offset: u8, size: u8) -> impl Iterator<Item = (usize, u32)> {
        let n = size.min(4) as usize;
        (0..n).filter_map(move |b| {
            let i = offset as usize + b;
            (i < 256).then_some((i, b as u32))
        })
    }
}

/// Bus 0 with 32 devices of 8 functions, decoded by mechanism #1.
pub struct PciBus {
    address: u32,
    slots: [Option<Box<dyn PciFunction + Send>>; 256],
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    pub fn new() -> Self {
        PciBus {
            address: 0,
            slots: std::array::from_fn(|_| None),
        }
    }

    /// Plug `f` in at device `dev` (0-31), function `func` (0-7), replacing
    /// whatever was there. Out-of-range numbers are a board bug.
    pub fn add(&mut self, dev: u8, func: u8, f: Box<dyn PciFunction + Send>) {
        assert!(dev < 32 && func < 8, "PCI {dev}.{func} out of range");
        self.slots[Self::slot(dev, func)] = Some(f);
    }

    /// The function at `dev`.`func`, whether or not the guest can see it.
    pub fn function_mut(&mut self, dev: u8, func: u8) -> Option<&mut (dyn PciFunction + Send)> {
        if dev >= 32 || func >= 8 {
            return None;
        }
        self.slots[Self::slot(dev, func)].as_deref_mut()
    }

    /// The function at `dev`.`func` as its concrete type, read-only.
    pub fn get<T: PciFunction>(&self, dev: u8, func: u8) -> Option<&T> {
        if dev >= 32 || func >= 8 {
            return None;
        }
        let f: &dyn Any = self.slots[Self::slot(dev, func)].as_deref()?;
        f.downcast_ref::<T>()
    }

    /// The function at `dev`.`func` as its concrete type.
    pub fn get_mut<T: PciFunction>(&mut self, dev: u8, func: u8) -> Option<&mut T> {
        let f: &mut dyn Any = self.function_mut(dev, func)?;
        f.downcast_mut::<T>()
    }

    /// Current value of the address register.
    pub fn address(&self) -> u32 {
        self.address
    }

    /// A configuration read as the guest sees it: other buses, absent
    /// functions and functions hidden by a single-function header read all
    /// ones. Misaligned accesses are split into bytes.
    pub fn config_read(&mut self, bus: u8, dev: u8, func: u8, offset: u8, size: u8) -> u32 {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 256 {
            return ones(size);
        }
        let Some(f) = self.visible(bus, dev, func) else {
            return ones(size);
        };
        if offset.is_multiple_of(size) {
            return f.config_read(offset, size);
        }
        (0..size).fold(0, |v, b| v | f.config_read(offset + b, 1) << (8 * b))
    }

    /// A configuration write as the guest sees it; dropped where a read
    /// would return all ones.
    pub fn config_write(&mut self, bus: u8, dev: u8, func: u8, offset: u8, size: u8, value: u32) {
        if !matches!(size, 1 | 2 | 4) || offset as usize + size as usize > 256 {
            return;
        }
        let Some(f) = self.visible(bus, dev, func) else {
            return;
        };
        if offset.is_multiple_of(size) {
            f.config_write(offset, size, value);
            return;
        }
        for b in 0..size {
            f.config_write(offset + b, 1, (value >> (8 * b)) & 0xff);
        }
    }

    fn visible(&mut self, bus: u8, dev: u8, func: u8) -> Option<&mut (dyn PciFunction + Send)> {
        if bus != 0 || dev >= 32 || func >= 8 {
            return None;
        }
        if func != 0 {
            let f0 = self.slots[Self::slot(dev, 0)].as_deref_mut()?;
            if f0.config_read(0x0e, 1) as u8 & HEADER_MULTIFUNCTION == 0 {
                return None;
            }
        }
        self.slots[Self::slot(dev, func)].as_deref_mut()
    }

    /// Decode the latched address for a data-port access at `port`, or
    /// None when the enable bit is clear or the access would spill past
    /// the dword the address selects.
    fn target(&self, port: u16, size: u8) -> Option<(u8, u8, u8, u8)> {
        let a = self.address;
        let lane = (port & 3) as u8;
        if a & 0x8000_0000 == 0 || !matches!(size, 1 | 2 | 4) || lane + size > 4 {
            return None;
        }
        let bus = (a >> 16) as u8;
        let dev = ((a >> 11) & 0x1f) as u8;
        let func = ((a >> 8) & 7) as u8;
        let offset = (a & 0xfc) as u8 + lane;
        Some((bus, dev, func, offset))
    }

    fn slot(dev: u8, func: u8) -> usize {
        dev as usize * 8 + func as usize
    }
}

impl PortDevice for PciBus {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        match port {
            PORT_CONFIG_ADDRESS if size == 4 => self.address,
            0xcfc..=0xcff => match self.target(port, size) {
                Some((bus, dev, func, offset)) => self.config_read(bus, dev, func, offset, size),
                None => ones(size),
            },
            _ => ones(size),
        }
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        match port {
            // Bits 30:24 are reserved and 1:0 select a type 1 cycle on
            // bridges; neither exists here, so they read back as zero.
            PORT_CONFIG_ADDRESS if size == 4 => self.address = value & 0x80ff_fffc,
            0xcfc..=0xcff => {
                if let Some((bus, dev, func, offset)) = self.target(port, size) {
                    let value = value & ones(size);
                    self.config_write(bus, dev, func, offset, size, value);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain function backed by a ConfigSpace.
    struct Dummy(ConfigSpace);

    impl PciFunction for Dummy {
        fn config_read(&mut self, offset: u8, size: u8) -> u32 {
            self.0.read(offset, size)
        }
        fn config_write(&mut self, offset: u8, size: u8, value: u32) {
            self.0.write(offset, size, value)
        }
    }

    fn dummy(device: u16, header_type: u8) -> Box<Dummy> {
        Box::new(Dummy(ConfigSpace::new(
            0x1234,
            device,
            0x020000,
            0x05,
            header_type,
        )))
    }

    fn addr(dev: u32, func: u32, reg: u32) -> u32 {
        0x8000_0000 | dev << 11 | func << 8 | reg
    }

    fn bus_with(dev: u8, func: u8, header_type: u8) -> PciBus {
        let mut bus = PciBus::new();
        bus.add(dev, func, dummy(0x1000 + func as u16, header_type));
        bus
    }

    fn cfg_read(bus: &mut PciBus, a: u32, port: u16, size: u8) -> u32 {
        bus.write(0xcf8, 4, a);
        bus.read(port, size)
    }

    #[test]
    fn address_register_latches_only_dwords() {
        let mut bus = PciBus::new();
        bus.write(0xcf8, 4, 0x8000_1234);
        assert_eq!(bus.read(0xcf8, 4), 0x8000_1234);
        bus.write(0xcf8, 1, 0x00);
        bus.write(0xcf8, 2, 0x0000);
        bus.write(0xcfa, 2, 0x0000);
        bus.write(0xcfb, 1, 0x00);
        assert_eq!(bus.read(0xcf8, 4), 0x8000_1234);
        assert_eq!(bus.address(), 0x8000_1234);
        // Byte and word reads are not the address register either.
        assert_eq!(bus.read(0xcf8, 1), 0xff);
        assert_eq!(bus.read(0xcf8, 2), 0xffff);
        assert_eq!(bus.read(0xcfb, 1), 0xff);
    }

    #[test]
    fn address_register_reserved_bits_read_zero() {
        let mut bus = PciBus::new();
        bus.write(0xcf8, 4, 0xffff_ffff);
        assert_eq!(bus.read(0xcf8, 4), 0x80ff_fffc);
    }

    #[test]
    fn enable_bit_gates_data_port() {
        let mut bus = bus_with(3, 0, 0);
        assert_eq!(cfg_read(&mut bus, addr(3, 0, 0), 0xcfc, 4), 0x1000_1234);
        assert_eq!(
            cfg_read(&mut bus, addr(3, 0, 0) & 0x7fff_ffff, 0xcfc, 4),
            0xffff_ffff
        );
        // Writes with the enable bit clear are dropped.
        bus.write(0xcf8, 4, addr(3, 0, 0x3c) & 0x7fff_ffff);
        bus.write(0xcfc, 1, 0x0b);
        assert_eq!(cfg_read(&mut bus, addr(3, 0, 0x3c), 0xcfc, 1), 0x00);
    }

    #[test]
    fn missing_device_function_and_bus_read_ones() {
        let mut bus = bus_with(3, 0, 0);
        assert_eq!(cfg_read(&mut bus, addr(4, 0, 0), 0xcfc, 4), 0xffff_ffff);
        assert_eq!(cfg_read(&mut bus, addr(4, 0, 0), 0xcfc, 2), 0xffff);
        assert_eq!(cfg_read(&mut bus, addr(4, 0, 0), 0xcfd, 1), 0xff);
        assert_eq!(cfg_read(&mut bus, addr(31, 7, 0xfc), 0xcfc, 4), 0xffff_ffff);
        assert_eq!(
            cfg_read(&mut bus, addr(3, 0, 0) | 1 << 16, 0xcfc, 4),
            0xffff_ffff
        );
        // Writes to nothing are harmless.
        bus.write(0xcf8, 4, addr(4, 0, 0x3c));
        bus.write(0xcfc, 4, 0x1234_5678);
        assert_eq!(cfg_read(&mut bus, addr(4, 0, 0x3c), 0xcfc, 4), 0xffff_ffff);
    }

    #[test]
    fn data_port_byte_and_word_lanes() {
        let mut bus = bus_with(0, 0, 0);
        let a = addr(0, 0, 0x08);
        // Dword 0x08: revision 05, prog-if 00, subclass 00, class 02.
        assert_eq!(cfg_read(&mut bus, a, 0xcfc, 4), 0x0200_0005);
        assert_eq!(bus.read(0xcfc, 1), 0x05);
        assert_eq!(bus.read(0xcfe, 1), 0x00);
        assert_eq!(bus.read(0xcff, 1), 0x02);
        assert_eq!(bus.read(0xcfe, 2), 0x0200);
        let a = addr(0, 0, 0x00);
        assert_eq!(cfg_read(&mut bus, a, 0xcfe, 2), 0x1000);
        assert_eq!(bus.read(0xcfc, 2), 0x1234);
        assert_eq!(bus.read(0xcfd, 1), 0x12);
        // A misaligned word inside the dword is split, not refused.
        assert_eq!(bus.read(0xcfd, 2), 0x0012);
        // An access spilling past the dword reaches nothing.
        assert_eq!(bus.read(0xcff, 2), 0xffff);
        assert_eq!(bus.read(0xcfd, 4), 0xffff_ffff);
        // Byte writes land in the lane the port selects.
        bus.write(0xcf8, 4, addr(0, 0, 0x3c));
        bus.write(0xcfc, 1, 0x0a);
        assert_eq!(bus.read(0xcfc, 4), 0x0000_000a);
        bus.write(0xcfd, 1, 0x77); // interrupt pin is read-only
        assert_eq!(bus.read(0xcfc, 4), 0x0000_000a);
        bus.write(0xcfc, 2, 0xff0b);
        assert_eq!(bus.read(0xcfc, 1), 0x0b);
    }

    #[test]
    fn single_function_header_hides_functions_1_to_7() {
        let mut bus = bus_with(5, 0, 0x00);
        bus.add(5, 1, dummy(0x2000, 0));
        assert_eq!(cfg_read(&mut bus, addr(5, 1, 0), 0xcfc, 4), 0xffff_ffff);
        bus.write(0xcf8, 4, addr(5, 1, 0x3c));
        bus.write(0xcfc, 1, 0x0a);
        // The board still reaches it and sees the write was dropped.
        assert_eq!(bus.function_mut(5, 1).unwrap().config_read(0x3c, 1), 0);

        let mut bus = bus_with(5, 0, HEADER_MULTIFUNCTION);
        bus.add(5, 1, dummy(0x2000, 0));
        assert_eq!(cfg_read(&mut bus, addr(5, 1, 0), 0xcfc, 4), 0x2000_1234);
        // A function without function 0 is invisible too.
        let mut bus = bus_with(6, 2, 0);
        assert_eq!(cfg_read(&mut bus, addr(6, 2, 0), 0xcfc, 4), 0xffff_ffff);
    }

    #[test]
    fn downcast_to_concrete_type() {
        let mut bus = bus_with(2, 0, 0);
        assert!(bus.get_mut::<Dummy>(2, 0).is_some());
        assert!(bus.get::<Dummy>(2, 0).is_some());
        assert!(bus.get::<Dummy>(2, 1).is_none());
        assert!(bus.get::<Dummy>(32, 0).is_none());
        assert!(bus.get_mut::<Dummy>(2, 1).is_none());
        assert!(bus.function_mut(32, 0).is_none());
        assert!(bus.function_mut(0, 8).is_none());
    }

    #[test]
    fn ids_class_revision_header_are_read_only() {
        let mut c = ConfigSpace::new(0x8086, 0x1237, 0x060000, 0x02, 0x00);
        for off in (0x00..0x10).step_by(4) {
            let before = c.read(off, 4);
            if off == 0x04 {
                continue;
            }
            c.write(off, 4, 0xffff_ffff);
            c.write(off, 4, 0);
            assert_eq!(c.read(off, 4), before, "offset {off:#x}");
        }
        assert_eq!(c.read(0, 4), 0x1237_8086);
        assert_eq!(c.read(0x08, 4), 0x0600_0002);
        assert_eq!(c.read(0x0e, 1), 0);
    }

    #[test]
    fn command_register_writable_bits() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.write(0x04, 2, 0xffff);
        let expect =
            CMD_IO | CMD_MEMORY | CMD_BUS_MASTER | CMD_PARITY | CMD_SERR | CMD_INTX_DISABLE;
        assert_eq!(c.read(0x04, 2) as u16, expect);
        assert_eq!(expect, 0x0547);
        c.write(0x04, 2, 0);
        assert_eq!(c.read(0x04, 2), 0);
        // Byte writes affect only their lane.
        c.write(0x05, 1, 0xff);
        assert_eq!(c.command(), CMD_SERR | CMD_INTX_DISABLE);
    }

    #[test]
    fn status_bits_are_write_one_to_clear() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_u16(0x06, 0xffff);
        // Writing zeros changes nothing; writing ones clears only RW1C bits.
        c.write(0x06, 2, 0);
        assert_eq!(c.read(0x06, 2), 0xffff);
        c.write(0x06, 2, 0x8000);
        assert_eq!(c.read(0x06, 2), 0x7fff);
        c.write(0x06, 2, 0xffff);
        assert_eq!(c.read(0x06, 2), 0xffff & !STATUS_RW1C as u32);
        for bit in [8, 11, 12, 13, 14, 15] {
            assert_ne!(STATUS_RW1C & 1 << bit, 0, "bit {bit}");
        }
        // A guest cannot set a RW1C bit.
        c.set_u16(0x06, 0);
        c.write(0x06, 2, 0xffff);
        assert_eq!(c.read(0x06, 2), 0);
        // Through a dword write at 0x04 the command half is independent.
        c.set_u16(0x06, 0x0100);
        c.write(0x04, 4, 0x0100_0001);
        assert_eq!(c.read(0x04, 4), 0x0000_0001);
    }

    #[test]
    fn interrupt_line_writable_pin_not() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_u8(0x3d, 1);
        c.write(0x3c, 2, 0xffff);
        assert_eq!(c.read(0x3c, 2), 0x01ff);
        // Bridges (header type 1) keep 0x3C read-only by default here.
        let mut b = ConfigSpace::new(1, 2, 0x060400, 0, 1);
        b.write(0x3c, 1, 0xff);
        assert_eq!(b.read(0x3c, 1), 0);
    }

    #[test]
    fn bar_sizing_io() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_bar(0, 32, BarKind::Io);
        assert_eq!(c.read(0x10, 4), 0x1);
        c.write(0x10, 4, 0xffff_ffff);
        assert_eq!(c.read(0x10, 4), 0x0000_ffe1);
        c.write(0x10, 4, 0xc123);
        assert_eq!(c.read(0x10, 4), 0xc121);
        assert_eq!(c.bar_address(0), None, "I/O decode off");
        c.write(0x04, 2, CMD_IO as u32);
        assert_eq!(c.bar_address(0), Some(0xc120));
        assert_eq!(c.bar_size(0), Some(32));
        // Minimum I/O size is 4 bytes.
        c.set_bar(1, 1, BarKind::Io);
        c.write(0x14, 4, 0xffff_ffff);
        assert_eq!(c.read(0x14, 4), 0xfffd);
    }

    #[test]
    fn bar_sizing_memory() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_bar(1, 0x1000, BarKind::Mem32);
        c.set_bar(2, 0x10_0000, BarKind::Mem32Prefetch);
        c.set_bar(3, 3000, BarKind::Mem32); // rounds to 4 KiB
        c.write(0x14, 4, 0xffff_ffff);
        c.write(0x18, 4, 0xffff_ffff);
        c.write(0x1c, 4, 0xffff_ffff);
        assert_eq!(c.read(0x14, 4), 0xffff_f000);
        assert_eq!(c.read(0x18, 4), 0xfff0_0008);
        assert_eq!(c.read(0x1c, 4), 0xffff_f000);
        assert_eq!(c.bar_size(3), Some(0x1000));
        c.write(0x14, 4, 0xfebf_f123);
        assert_eq!(c.read(0x14, 4), 0xfebf_f000);
        assert_eq!(c.bar_address(1), None, "memory decode off");
        c.write(0x04, 2, CMD_MEMORY as u32);
        assert_eq!(c.bar_address(1), Some(0xfebf_f000));
        assert_eq!(c.bar_address(2), Some(0xfff0_0000));
        // Unimplemented BARs read zero and ignore writes.
        c.write(0x20, 4, 0xffff_ffff);
        assert_eq!(c.read(0x20, 4), 0);
        assert_eq!(c.bar_address(4), None);
        assert_eq!(c.bar_address(9), None);
        // Removing a BAR makes it read-only zero again.
        c.set_bar(1, 0, BarKind::Mem32);
        c.write(0x14, 4, 0xffff_ffff);
        assert_eq!(c.read(0x14, 4), 0);
        assert_eq!(c.bar_size(1), None);
    }

    #[test]
    fn bar_out_of_range_or_oversized_is_ignored() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_bar(6, 16, BarKind::Mem32);
        c.set_bar(0, 0x8000_0001, BarKind::Mem32);
        c.set_bar(1, 0x2_0000, BarKind::Io);
        assert_eq!(c.bar_size(0), None);
        assert_eq!(c.bar_size(1), None);
        let mut b = ConfigSpace::new(1, 2, 0x060400, 0, 1);
        b.set_bar(2, 16, BarKind::Mem32); // type 1 has only two BARs
        assert_eq!(b.bar_size(2), None);
        b.set_bar(1, 16, BarKind::Mem32);
        assert_eq!(b.bar_size(1), Some(16));
    }

    #[test]
    fn config_space_edges_never_panic() {
        let mut c = ConfigSpace::new(1, 2, 0, 0, 0);
        c.set_writable(0xfc, 4, 0xffff_ffff);
        c.write(0xfe, 4, 0xaabb_ccdd);
        assert_eq!(c.read(0xfe, 4), 0xffff_ccdd);
        assert_eq!(c.read(0xff, 2), 0xffcc);
        assert_eq!(c.read(0, 0), 0xffff_ffff);
        c.write(0x3c, 7, 0x11);
        let mut bus = bus_with(0, 0, 0);
        for size in [0u8, 3, 5, 8] {
            for port in 0xcf8..=0xcff {
                bus.write(port, size, 0xffff_ffff);
                bus.read(port, size);
            }
            assert_eq!(bus.config_read(0, 0, 0, 0, size), ones(size));
            bus.config_write(0, 0, 0, 0x3c, size, 0xff);
        }
        assert_eq!(bus.config_read(0, 0, 0, 0xfe, 4), 0xffff_ffff);
        assert_eq!(bus.config_read(0, 0, 0, 0x3c, 1), 0);
    }

    #[test]
    fn other_ports_are_not_decoded() {
        let mut bus = bus_with(0, 0, 0);
        bus.write(0xcf8, 4, addr(0, 0, 0));
        assert_eq!(bus.read(0xcf7, 1), 0xff);
        assert_eq!(bus.read(0xd00, 4), 0xffff_ffff);
        bus.write(0xcf4, 4, 0);
        assert_eq!(bus.read(0xcf8, 4), addr(0, 0, 0));
    }
}
