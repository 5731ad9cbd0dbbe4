//! MC146818 real-time clock and CMOS RAM of a PC, at ports 0x70 (index; bit
//! 7 is the PC's NMI-disable latch, not part of the chip) and 0x71 (data).
//!
//! The clock never looks at the host: it is `start_unix_secs` plus the
//! virtual time the board passes in, so a run is reproducible. Internally
//! the 32.768 kHz divider chain is counted in ticks derived from virtual
//! nanoseconds; the update cycle (one per 32768 ticks) and the periodic
//! interrupt (a binary tap of the same chain) both hang off that count, so
//! they keep their hardware phase relationship. While the clock runs, the
//! time is held as seconds since 1970 (civil time counted as if UTC) and the
//! registers are re-encoded from it; while it is stopped (SET, or divider
//! not 010) the register bytes are the truth and are parsed back on restart.
//!
//! Not modelled: the DSE daylight-saving jumps (the bit is stored only) and
//! the square-wave pin (SQWE is stored; nothing on a PC listens to it).

use crate::PortDevice;

pub const PORT_INDEX: u16 = 0x70;
pub const PORT_DATA: u16 = 0x71;

const SECONDS: usize = 0x00;
const ALARM_SECONDS: usize = 0x01;
const MINUTES: usize = 0x02;
const ALARM_MINUTES: usize = 0x03;
const HOURS: usize = 0x04;
const ALARM_HOURS: usize = 0x05;
const DAY_OF_WEEK: usize = 0x06;
const DATE: usize = 0x07;
const MONTH: usize = 0x08;
const YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
/// The PC/AT convention (and the ACPI FADT default) for the century byte.
pub const CENTURY_INDEX: u8 = 0x32;
const CENTURY: usize = CENTURY_INDEX as usize;

const A_UIP: u8 = 0x80;
const A_DIVIDER: u8 = 0x70;
/// DV2..DV0 = 010: 32.768 kHz time base, the only setting that keeps time on a PC.
const A_DIVIDER_32K: u8 = 0x20;
const A_RATE: u8 = 0x0f;

const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_DM_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;

const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
const C_FLAGS: u8 = C_PF | C_AF | C_UF;

const D_VRT: u8 = 0x80;

const HOUR_PM: u8 = 0x80;
const ALARM_DONT_CARE: u8 = 0xc0;

const TICK_HZ: u64 = 32_768;
const NS_PER_SEC: u64 = 1_000_000_000;
/// 244 µs is exactly 8 periods of the 32.768 kHz crystal.
const UIP_TICKS: u64 = 8;
const SECS_PER_DAY: i64 = 86_400;
/// 9999-12-31 23:59:59, the last instant a BCD century and year can show.
const MAX_SECS: i64 = 253_402_300_799;

pub struct Rtc {
    cmos: [u8; 128],
    index: u8,
    nmi_masked: bool,
    /// Virtual time of the last `advance`.
    now: u64,
    /// Time shown by the registers while the clock updates.
    secs: i64,
    /// Distance (mod 7) between the guest's day-of-week and the real one:
    /// the chip just counts whatever day-of-week it was given.
    dow_adjust: u8,
    /// The divider chain was at tick `base_tick` at virtual time `base_ns`.
    base_ns: u64,
    base_tick: u64,
}

impl Rtc {
    /// The clock shows `start_unix_secs` (as UTC) at virtual time 0, capped
    /// at 9999-12-31 23:59:59.
    pub fn new(start_unix_secs: u64) -> Self {
        let mut cmos = [0u8; 128];
        // What a BIOS programs (and QEMU resets to): 32.768 kHz, 1024 Hz
        // periodic rate, 24-hour BCD, battery good.
        cmos[REG_A] = A_DIVIDER_32K | 0x06;
        cmos[REG_B] = B_24H;
        cmos[REG_D] = D_VRT;
        let mut rtc = Rtc {
            cmos,
            index: 0,
            nmi_masked: false,
            now: 0,
            secs: start_unix_secs.min(MAX_SECS as u64) as i64,
            dow_adjust: 0,
            base_ns: 0,
            base_tick: 0,
        };
        rtc.store_time();
        rtc
    }

    /// Bring the chip up to virtual time `now`: count update cycles and
    /// periodic taps crossed since the last call and latch their flags.
    pub fn advance(&mut self, now: u64) {
        if now <= self.now {
            return;
        }
        let old = self.now;
        self.now = now;
        if !self.chain_running() {
            return;
        }
        let (t0, t1) = (self.tick_at(old), self.tick_at(now));
        if let Some(p) = self.period_ticks() {
            if t1 / p > t0 / p {
                self.cmos[REG_C] |= C_PF;
            }
        }
        if self.cmos[REG_B] & B_SET == 0 {
            let n = t1 / TICK_HZ - t0 / TICK_HZ;
            if n > 0 {
                if self.alarm_hit_within(n) {
                    self.cmos[REG_C] |= C_AF;
                }
                self.secs = self.secs.saturating_add(n as i64);
                self.store_time();
                self.cmos[REG_C] |= C_UF;
            }
        }
    }

    /// When the board must call `advance` so an enabled interrupt is raised
    /// on time. Nothing is needed while IRQ8 is already high: flags are
    /// latched over the whole interval at the next `advance`, which the
    /// board does before the guest can read REG C.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.chain_running() || self.irq_level() {
            return None;
        }
        let b = self.cmos[REG_B];
        let t = self.tick_at(self.now);
        let mut next: Option<u64> = None;
        if b & B_PIE != 0 {
            if let Some(p) = self.period_ticks() {
                next = Some((t / p + 1) * p);
            }
        }
        if self.updating() && b & (B_UIE | B_AIE) != 0 {
            let u = (t / TICK_HZ + 1) * TICK_HZ;
            next = Some(next.map_or(u, |n| n.min(u)));
        }
        next.map(|tick| self.ns_of_tick(tick))
    }

    /// IRQ8: high while REG C's IRQF is set.
    pub fn irq_level(&self) -> bool {
        self.irqf()
    }

    /// Bit 7 of the last byte written to port 0x70.
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The stored byte at `index` (0..=127), without the side effects a
    /// guest read has (REG C is not cleared, UIP is not reported).
    pub fn nvram(&self, index: u8) -> u8 {
        let i = (index & 0x7f) as usize;
        match i {
            REG_C => self.cmos[REG_C] | if self.irqf() { C_IRQF } else { 0 },
            _ => self.cmos[i],
        }
    }

    /// Store `value` at `index` exactly as a guest write through port 0x71
    /// would, so clock and control registers stay consistent.
    pub fn set_nvram(&mut self, index: u8, value: u8) {
        self.write_reg(index & 0x7f, value);
    }

    /// The bytes a PC BIOS and OS read for memory size and equipment, with
    /// the AT checksum over 0x10..=0x2D (QEMU/SeaBIOS layout for the
    /// above-16 MiB and above-4 GiB counts).
    pub fn set_pc_config(&mut self, ram_below_4g: u64, ram_above_4g: u64) {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        let c = &mut self.cmos;
        c[0x10] = 0; // no floppy drives
                     // Equipment: bit 1 FPU present; bits 4-5 = 00 (EGA/VGA with its own
                     // BIOS); bit 0 and bits 6-7 clear (no diskette drives).
        c[0x14] = 0x02;
        let base_kib = 640u16;
        c[0x15..=0x16].copy_from_slice(&base_kib.to_le_bytes());
        let ext_kib = (ram_below_4g.saturating_sub(MIB) / KIB).min(0xffff) as u16;
        c[0x17..=0x18].copy_from_slice(&ext_kib.to_le_bytes());
        c[0x30..=0x31].copy_from_slice(&ext_kib.to_le_bytes());
        let above_16m = (ram_below_4g.saturating_sub(16 * MIB) / (64 * KIB)).min(0xffff) as u16;
        c[0x34..=0x35].copy_from_slice(&above_16m.to_le_bytes());
        let above_4g = (ram_above_4g / (64 * KIB)).min(0xff_ffff) as u32;
        c[0x5b..=0x5d].copy_from_slice(&above_4g.to_le_bytes()[..3]);
        let sum: u16 = c[0x10..=0x2d].iter().map(|&b| b as u16).sum();
        // Big-endian, as the AT BIOS stores it.
        c[0x2e..=0x2f].copy_from_slice(&sum.to_be_bytes());
        let b = self.cmos[REG_B];
        let century = civil_from_days(self.secs.div_euclid(SECS_PER_DAY)).0 / 100;
        self.cmos[CENTURY] = enc(b, century.clamp(0, 99) as u32);
    }

    fn chain_running(&self) -> bool {
        self.cmos[REG_A] & A_DIVIDER == A_DIVIDER_32K
    }

    fn updating(&self) -> bool {
        self.chain_running() && self.cmos[REG_B] & B_SET == 0
    }

    fn irqf(&self) -> bool {
        self.cmos[REG_C] & self.cmos[REG_B] & C_FLAGS != 0
    }

    fn tick_at(&self, ns: u64) -> u64 {
        let elapsed = ns.saturating_sub(self.base_ns) as u128;
        self.base_tick + (elapsed * TICK_HZ as u128 / NS_PER_SEC as u128) as u64
    }

    /// The first nanosecond at which the chain has reached `tick`.
    fn ns_of_tick(&self, tick: u64) -> u64 {
        let ticks = tick.saturating_sub(self.base_tick) as u128;
        let ns = (ticks * NS_PER_SEC as u128).div_ceil(TICK_HZ as u128);
        self.base_ns.saturating_add(ns.min(u64::MAX as u128) as u64)
    }

    /// Periodic interrupt period in chain ticks, if the rate select is on.
    fn period_ticks(&self) -> Option<u64> {
        let rs = self.cmos[REG_A] & A_RATE;
        // With a 32.768 kHz base the first two taps are too fast for the
        // divider; the datasheet maps them to 256 Hz and 128 Hz (rs 8 and 9).
        let rs = match rs {
            0 => return None,
            1 | 2 => rs + 7,
            _ => rs,
        };
        Some(1 << (rs - 1))
    }

    fn uip(&self) -> bool {
        self.updating() && self.tick_at(self.now) % TICK_HZ >= TICK_HZ - UIP_TICKS
    }

    /// Whether any of the `n` seconds just about to be counted matches the
    /// alarm. The alarm only looks at time of day, so a day's worth of
    /// seconds covers every possible match.
    fn alarm_hit_within(&self, n: u64) -> bool {
        let b = self.cmos[REG_B];
        let (sa, ma, ha) = (
            self.cmos[ALARM_SECONDS],
            self.cmos[ALARM_MINUTES],
            self.cmos[ALARM_HOURS],
        );
        let matches =
            |alarm: u8, now: u8| alarm & ALARM_DONT_CARE == ALARM_DONT_CARE || alarm == now;
        let count = n.min(SECS_PER_DAY as u64);
        let first = self.secs.saturating_add((n - count) as i64 + 1);
        (0..count as i64).any(|k| {
            let sod = first.saturating_add(k).rem_euclid(SECS_PER_DAY) as u32;
            matches(sa, enc(b, sod % 60))
                && matches(ma, enc(b, sod / 60 % 60))
                && matches(ha, enc_hour(b, sod / 3600))
        })
    }

    /// Encode `secs` into the time registers in the current format.
    fn store_time(&mut self) {
        let b = self.cmos[REG_B];
        let days = self.secs.div_euclid(SECS_PER_DAY);
        let sod = self.secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        let dow = (weekday(days) + self.dow_adjust) % 7 + 1;
        let c = &mut self.cmos;
        c[SECONDS] = enc(b, sod % 60);
        c[MINUTES] = enc(b, sod / 60 % 60);
        c[HOURS] = enc_hour(b, sod / 3600);
        c[DAY_OF_WEEK] = enc(b, dow as u32);
        c[DATE] = enc(b, day);
        c[MONTH] = enc(b, month);
        c[YEAR] = enc(b, year.rem_euclid(100) as u32);
        c[CENTURY] = enc(b, year.div_euclid(100).clamp(0, 99) as u32);
    }

    /// Parse the time registers (in the current format) into `secs`,
    /// pulling out-of-range fields to the nearest legal value.
    fn load_time(&mut self) {
        let b = self.cmos[REG_B];
        let c = &self.cmos;
        let sec = dec(b, c[SECONDS]).min(59) as i64;
        let min = dec(b, c[MINUTES]).min(59) as i64;
        let hour = dec_hour(b, c[HOURS]).min(23) as i64;
        let day = dec(b, c[DATE]).clamp(1, 31);
        let month = dec(b, c[MONTH]).clamp(1, 12);
        let year = dec(b, c[CENTURY]).min(99) as i64 * 100 + dec(b, c[YEAR]).min(99) as i64;
        let days = days_from_civil(year, month, day);
        self.secs = days * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
        let dow = dec(b, c[DAY_OF_WEEK]);
        self.dow_adjust = if (1..=7).contains(&dow) {
            ((dow - 1) as u8 + 7 - weekday(days)) % 7
        } else {
            0
        };
    }

    /// Guest and host both see the clock in the current data mode, so a
    /// change of BCD/binary or 12/24 h re-expresses the time registers.
    fn convert_format(&mut self, old_b: u8, new_b: u8) {
        for i in [SECONDS, MINUTES, DAY_OF_WEEK, DATE, MONTH, YEAR, CENTURY] {
            self.cmos[i] = enc(new_b, dec(old_b, self.cmos[i]));
        }
        self.cmos[HOURS] = enc_hour(new_b, dec_hour(old_b, self.cmos[HOURS]));
    }

    fn read_reg(&mut self, index: u8) -> u8 {
        let i = index as usize;
        match i {
            REG_A => self.cmos[REG_A] | if self.uip() { A_UIP } else { 0 },
            REG_C => {
                let v = self.nvram(index);
                self.cmos[REG_C] = 0;
                v
            }
            _ => self.cmos[i],
        }
    }

    fn write_reg(&mut self, index: u8, value: u8) {
        let i = index as usize;
        let was_running = self.chain_running();
        let was_updating = self.updating();
        match i {
            SECONDS | MINUTES | HOURS | DAY_OF_WEEK | DATE | MONTH | YEAR | CENTURY => {
                self.cmos[i] = value;
                // A running clock counts on from whatever was written.
                if was_updating {
                    self.load_time();
                    self.store_time();
                }
            }
            REG_A => {
                self.cmos[REG_A] = value & !A_UIP;
                if !was_running && self.chain_running() {
                    // Leaving divider reset starts the chain half-way
                    // through a second: the first update is 500 ms later.
                    self.base_ns = self.now;
                    self.base_tick = TICK_HZ / 2;
                }
            }
            REG_B => {
                let mut value = value;
                if value & B_SET != 0 {
                    // Setting SET clears UIE on the real chip.
                    value &= !B_UIE;
                }
                let old = self.cmos[REG_B];
                if (old ^ value) & (B_DM_BINARY | B_24H) != 0 {
                    self.convert_format(old, value);
                }
                self.cmos[REG_B] = value;
            }
            REG_C | REG_D => {} // read-only
            _ => self.cmos[i] = value,
        }
        if !was_updating && self.updating() {
            self.load_time();
            self.store_time();
        }
    }
}

impl PortDevice for Rtc {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        // A wide access is split into byte cycles on consecutive ports.
        let n = match size {
            1 => 1,
            2 => 2,
            _ => 4,
        };
        (0..n).fold(0u32, |acc, i| {
            let byte = match port.wrapping_add(i) {
                PORT_DATA => self.read_reg(self.index),
                // The index latch is write-only.
                _ => 0xff,
            };
            acc | (byte as u32) << (8 * i)
        })
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        let n = match size {
            1 => 1,
            2 => 2,
            _ => 4,
        };
        for i in 0..n {
            let byte = (value >> (8 * i)) as u8;
            match port.wrapping_add(i) {
                PORT_INDEX => {
                    self.index = byte & 0x7f;
                    self.nmi_masked = byte & 0x80 != 0;
                }
                PORT_DATA => self.write_reg(self.index, byte),
                _ => {}
            }
        }
    }
}

fn enc(b: u8, v: u32) -> u8 {
    if b & B_DM_BINARY != 0 {
        v as u8
    } else {
        (((v / 10 % 10) << 4) | (v % 10)) as u8
    }
}

fn dec(b: u8, x: u8) -> u32 {
    if b & B_DM_BINARY != 0 {
        x as u32
    } else {
        (x >> 4) as u32 * 10 + (x & 0x0f) as u32
    }
}

fn enc_hour(b: u8, h: u32) -> u8 {
    if b & B_24H != 0 {
        return enc(b, h);
    }
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    enc(b, h12) | if h >= 12 { HOUR_PM } else { 0 }
}

fn dec_hour(b: u8, x: u8) -> u32 {
    if b & B_24H != 0 {
        return dec(b, x);
    }
    dec(b, x & !HOUR_PM) % 12 + if x & HOUR_PM != 0 { 12 } else { 0 }
}

/// 0 = Sunday. Day 0 (1970-01-01) was a Thursday.
fn weekday(days: i64) -> u8 {
    (days + 4).rem_euclid(7) as u8
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are shifted
/// to start on 1 March so the leap day is the last day of its year, and
/// counted in 400-year cycles of 146097 days.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let cycle = y.div_euclid(400);
    let year_of_cycle = y - cycle * 400;
    let month_from_march = (month as i64 + 9) % 12;
    // Month lengths from March run 31,30,31,30,31 twice then 31,28/29:
    // (153 m + 2) / 5 gives the days before month m of that pattern.
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719468 days from 0000-03-01 to 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let cycle = z.div_euclid(146_097);
    let day_of_cycle = z - cycle * 146_097;
    // Undo the leap days (every 4th year, not 100th, but 400th) to find
    // the year within the cycle.
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = cycle * 400 + year_of_cycle + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = NS_PER_SEC;
    /// 2024-02-29 13:45:30 UTC, a Thursday.
    const LEAP_DAY: u64 = 1_709_214_330;

    fn rd(r: &mut Rtc, index: u8) -> u8 {
        r.write(PORT_INDEX, 1, index as u32);
        r.read(PORT_DATA, 1) as u8
    }

    fn wr(r: &mut Rtc, index: u8, value: u8) {
        r.write(PORT_INDEX, 1, index as u32);
        r.write(PORT_DATA, 1, value as u32);
    }

    /// (century, year, month, date, day of week, hours, minutes, seconds)
    fn clock(r: &mut Rtc) -> [u8; 8] {
        [0x32, 9, 8, 7, 6, 4, 2, 0].map(|i| rd(r, i))
    }

    /// Count the interrupts the board would see up to `until`,
    /// acknowledging each one by reading REG C.
    fn count_irqs(r: &mut Rtc, until: u64) -> u32 {
        let mut n = 0;
        while let Some(t) = r.next_deadline() {
            if t > until {
                break;
            }
            r.advance(t);
            assert!(r.irq_level());
            n += 1;
            rd(r, 0x0c);
        }
        n
    }

    #[test]
    fn civil_conversion_round_trips_and_knows_leap_years() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in (-800_000..3_000_000).step_by(37) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn start_time_reads_in_bcd_24h() {
        let mut r = Rtc::new(LEAP_DAY);
        assert_eq!(clock(&mut r), [0x20, 0x24, 0x02, 0x29, 5, 0x13, 0x45, 0x30]);
        assert_eq!(rd(&mut r, 0x0a), 0x26);
        assert_eq!(rd(&mut r, 0x0b), 0x02);
        assert_eq!(rd(&mut r, 0x0d), 0x80);
    }

    #[test]
    fn binary_mode_reads_binary_and_back() {
        let mut r = Rtc::new(LEAP_DAY);
        wr(&mut r, 0x0b, 0x06);
        assert_eq!(rd(&mut r, 0x0b), 0x06);
        assert_eq!(clock(&mut r), [20, 24, 2, 29, 5, 13, 45, 30]);
        r.advance(SEC);
        assert_eq!(rd(&mut r, 0), 31);
        wr(&mut r, 0x0b, 0x02);
        assert_eq!(clock(&mut r), [0x20, 0x24, 0x02, 0x29, 5, 0x13, 0x45, 0x31]);
    }

    #[test]
    fn twelve_hour_mode_uses_bit7_for_pm() {
        let mut r = Rtc::new(LEAP_DAY); // 13:45
        wr(&mut r, 0x0b, 0x00);
        assert_eq!(rd(&mut r, 4), 0x81);
        wr(&mut r, 0x0b, 0x04); // binary 12 h
        assert_eq!(rd(&mut r, 4), 0x81);
        let day = LEAP_DAY - (13 * 3600 + 45 * 60 + 30);
        for (h, bcd, bin) in [
            (0, 0x12, 12),
            (1, 0x01, 1),
            (11, 0x11, 11),
            (12, 0x92, 0x8c),
            (23, 0x91, 0x8b),
        ] {
            let mut r = Rtc::new(day + h * 3600);
            wr(&mut r, 0x0b, 0x00);
            assert_eq!(rd(&mut r, 4), bcd, "hour {h} bcd");
            wr(&mut r, 0x0b, 0x04);
            assert_eq!(rd(&mut r, 4), bin, "hour {h} binary");
            wr(&mut r, 0x0b, 0x06);
            assert_eq!(rd(&mut r, 4), h as u8, "hour {h} back to 24 h");
        }
        // 11:59:59 PM rolls to 12 AM; 11:59:59 AM to 12 PM.
        let mut r = Rtc::new(day + 86_399);
        wr(&mut r, 0x0b, 0x00);
        r.advance(SEC);
        assert_eq!(rd(&mut r, 4), 0x12);
        let mut r = Rtc::new(day + 12 * 3600 - 1);
        wr(&mut r, 0x0b, 0x00);
        assert_eq!(rd(&mut r, 4), 0x11);
        r.advance(SEC);
        assert_eq!(rd(&mut r, 4), 0x92);
    }

    #[test]
    fn seconds_tick_only_on_whole_virtual_seconds() {
        let mut r = Rtc::new(LEAP_DAY);
        r.advance(SEC - 1);
        assert_eq!(rd(&mut r, 0), 0x30);
        r.advance(SEC);
        assert_eq!(rd(&mut r, 0), 0x31);
        r.advance(30 * SEC - 1);
        assert_eq!(clock(&mut r)[6..], [0x45, 0x59]);
        r.advance(30 * SEC);
        assert_eq!(clock(&mut r)[6..], [0x46, 0x00]);
        // A long jump lands on the right time.
        r.advance(30 * SEC + (10 * 3600 + 14 * 60) * SEC);
        assert_eq!(clock(&mut r), [0x20, 0x24, 0x03, 0x01, 6, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn calendar_rolls_over_days_months_years_and_leap_days() {
        // (start, expected clock one second later)
        let cases = [
            // 2024-01-31 23:59:58 +2 s: into February (Wednesday -> Thursday)
            (
                1_706_745_599u64,
                [0x20, 0x24, 0x02, 0x01, 5, 0x00, 0x00, 0x00],
            ),
            // 2024-02-28 -> 29 (leap year)
            (1_709_164_799, [0x20, 0x24, 0x02, 0x29, 5, 0x00, 0x00, 0x00]),
            // 2024-02-29 -> 03-01
            (1_709_251_199, [0x20, 0x24, 0x03, 0x01, 6, 0x00, 0x00, 0x00]),
            // 2023-02-28 -> 03-01 (not leap)
            (1_677_628_799, [0x20, 0x23, 0x03, 0x01, 4, 0x00, 0x00, 0x00]),
            // 2100-02-28 -> 03-01 (century, not leap)
            (4_107_542_399, [0x21, 0x00, 0x03, 0x01, 2, 0x00, 0x00, 0x00]),
            // 2000-02-28 -> 29 (400-year leap)
            (951_782_399, [0x20, 0x00, 0x02, 0x29, 3, 0x00, 0x00, 0x00]),
            // 1999-12-31 -> 2000-01-01, century byte too; Friday -> Saturday
            (946_684_799, [0x20, 0x00, 0x01, 0x01, 7, 0x00, 0x00, 0x00]),
            // Saturday -> Sunday wraps day-of-week to 1
            (946_771_199, [0x20, 0x00, 0x01, 0x02, 1, 0x00, 0x00, 0x00]),
        ];
        for (start, want) in cases {
            let mut r = Rtc::new(start);
            r.advance(SEC);
            assert_eq!(clock(&mut r), want, "start {start}");
        }
        let mut r = Rtc::new(946_684_799);
        assert_eq!(clock(&mut r)[..4], [0x19, 0x99, 0x12, 0x31]);
    }

    #[test]
    fn uip_is_set_for_244us_before_each_update() {
        let mut r = Rtc::new(LEAP_DAY);
        r.advance(SEC - 245_000);
        assert_eq!(rd(&mut r, 0x0a), 0x26);
        r.advance(SEC - 244_000);
        assert_eq!(rd(&mut r, 0x0a), 0xa6);
        assert_eq!(rd(&mut r, 0), 0x30, "not yet updated");
        r.advance(SEC - 1);
        assert_eq!(rd(&mut r, 0x0a), 0xa6);
        r.advance(SEC);
        assert_eq!(rd(&mut r, 0x0a), 0x26);
        assert_eq!(rd(&mut r, 0), 0x31);
        // UIP is read-only.
        wr(&mut r, 0x0a, 0xa6);
        assert_eq!(r.nvram(0x0a), 0x26);
        // SET and a stopped divider hide UIP.
        r.advance(2 * SEC - 1000);
        assert_eq!(rd(&mut r, 0x0a) & 0x80, 0x80);
        wr(&mut r, 0x0b, 0x82);
        assert_eq!(rd(&mut r, 0x0a) & 0x80, 0);
        wr(&mut r, 0x0b, 0x02);
        wr(&mut r, 0x0a, 0x66);
        assert_eq!(rd(&mut r, 0x0a), 0x66);
    }

    #[test]
    fn periodic_rates_follow_the_rate_select() {
        for (rs, hz) in [
            (1u8, 256u32),
            (2, 128),
            (3, 8192),
            (4, 4096),
            (6, 1024),
            (9, 128),
            (13, 8),
            (15, 2),
        ] {
            let mut r = Rtc::new(LEAP_DAY);
            wr(&mut r, 0x0a, 0x20 | rs);
            wr(&mut r, 0x0b, 0x42);
            assert_eq!(count_irqs(&mut r, 2 * SEC), 2 * hz, "rs {rs}");
        }
        let mut r = Rtc::new(LEAP_DAY);
        wr(&mut r, 0x0a, 0x20);
        wr(&mut r, 0x0b, 0x42);
        assert_eq!(r.next_deadline(), None, "rate 0 is off");
        r.advance(SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x40, 0);
    }

    #[test]
    fn periodic_flag_timing_and_enable() {
        let mut r = Rtc::new(LEAP_DAY); // 1024 Hz: 976562.5 ns
        r.advance(976_562);
        assert_eq!(r.nvram(0x0c), 0);
        r.advance(976_563);
        // PF latches without PIE, but IRQF and IRQ8 stay low.
        assert_eq!(r.nvram(0x0c), 0x40);
        assert!(!r.irq_level());
        assert_eq!(r.next_deadline(), None);
        // Enabling PIE with PF pending raises IRQ8 at once; disabling lowers it.
        wr(&mut r, 0x0b, 0x42);
        assert!(r.irq_level());
        assert_eq!(r.nvram(0x0c), 0xc0);
        wr(&mut r, 0x0b, 0x02);
        assert!(!r.irq_level());
        wr(&mut r, 0x0b, 0x42);
        assert_eq!(r.next_deadline(), None, "already asserted");
        assert_eq!(rd(&mut r, 0x0c), 0xc0);
        assert!(!r.irq_level());
        assert_eq!(r.next_deadline(), Some(1_953_125));
    }

    #[test]
    fn divider_reset_stops_everything_and_restart_waits_half_a_second() {
        let mut r = Rtc::new(LEAP_DAY);
        wr(&mut r, 0x0b, 0x52); // PIE | UIE
        wr(&mut r, 0x0a, 0x76);
        assert_eq!(r.next_deadline(), None);
        r.advance(5 * SEC + 300_000_000);
        assert_eq!(rd(&mut r, 0), 0x30);
        assert_eq!(rd(&mut r, 0x0c), 0);
        for div in [0x00, 0x10, 0x30, 0x40, 0x50] {
            wr(&mut r, 0x0a, div | 0x06);
            r.advance(r.now + 2 * SEC);
            assert_eq!(rd(&mut r, 0), 0x30, "divider {div:#x} must not run");
            assert_eq!(rd(&mut r, 0x0c), 0);
        }
        let t = r.now;
        wr(&mut r, 0x0a, 0x26);
        wr(&mut r, 0x0b, 0x12); // UIE only
        assert_eq!(r.next_deadline(), Some(t + SEC / 2));
        r.advance(t + SEC / 2 - 1);
        assert_eq!(rd(&mut r, 0), 0x30);
        r.advance(t + SEC / 2);
        assert_eq!(rd(&mut r, 0), 0x31);
        assert!(r.irq_level());
        rd(&mut r, 0x0c);
        assert_eq!(r.next_deadline(), Some(t + 3 * SEC / 2));
    }

    #[test]
    fn update_ended_interrupt_each_second() {
        let mut r = Rtc::new(LEAP_DAY);
        r.advance(SEC / 3);
        assert_eq!(r.next_deadline(), None);
        wr(&mut r, 0x0b, 0x12);
        assert_eq!(r.next_deadline(), Some(SEC));
        r.advance(SEC - 1);
        assert!(!r.irq_level());
        r.advance(SEC);
        assert!(r.irq_level());
        // PF is latched too (rate 6 runs), but without PIE it does not interrupt.
        assert_eq!(rd(&mut r, 0x0c), 0xd0);
        assert!(!r.irq_level());
        assert_eq!(rd(&mut r, 0x0c), 0, "reading clears");
        // UF latches without UIE.
        wr(&mut r, 0x0b, 0x02);
        wr(&mut r, 0x0a, 0x20);
        r.advance(2 * SEC);
        assert_eq!(rd(&mut r, 0x0c), 0x10);
        assert!(!r.irq_level());
    }

    #[test]
    fn next_deadline_is_the_earliest_enabled_event() {
        let mut r = Rtc::new(LEAP_DAY);
        wr(&mut r, 0x0a, 0x2f); // 2 Hz
        wr(&mut r, 0x0b, 0x52); // PIE | UIE
        assert_eq!(r.next_deadline(), Some(SEC / 2));
        r.advance(SEC / 2);
        rd(&mut r, 0x0c);
        assert_eq!(r.next_deadline(), Some(SEC));
        // With SET only the periodic interrupt keeps running.
        wr(&mut r, 0x0b, 0xe2); // SET | PIE | AIE
        assert_eq!(r.next_deadline(), Some(SEC));
        wr(&mut r, 0x0b, 0xa2); // SET | AIE
        assert_eq!(r.next_deadline(), None);
        r.advance(3 * SEC);
        assert_eq!(rd(&mut r, 0x0c), 0x40);
    }

    #[test]
    fn alarm_matches_exact_time_and_dont_care() {
        let mut r = Rtc::new(LEAP_DAY); // 13:45:30
        wr(&mut r, 5, 0x13);
        wr(&mut r, 3, 0x45);
        wr(&mut r, 1, 0x35);
        wr(&mut r, 0x0b, 0x22); // AIE
        assert_eq!(r.next_deadline(), Some(SEC));
        let mut when = None;
        for s in 1..=10 {
            r.advance(s * SEC);
            let c = rd(&mut r, 0x0c);
            assert_eq!(c & 0x10, 0x10, "UF every second");
            if c & 0x20 != 0 {
                assert_eq!(c & 0x80, 0x80);
                assert!(when.is_none());
                when = Some(s);
            }
        }
        assert_eq!(when, Some(5));
        // Seconds don't care: every second of 13:46.
        wr(&mut r, 1, 0xc0);
        wr(&mut r, 3, 0x46);
        let mut hits = 0;
        for s in 11..=100 {
            r.advance(s * SEC);
            if rd(&mut r, 0x0c) & 0x20 != 0 {
                hits += 1;
                assert_eq!(rd(&mut r, 2), 0x46);
            }
        }
        assert_eq!(hits, 60);
        // All three don't care (any value 0xC0-0xFF): every second.
        wr(&mut r, 1, 0xff);
        wr(&mut r, 3, 0xc7);
        wr(&mut r, 5, 0xd3);
        r.advance(101 * SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x20, 0x20);
        // 0xBF is not "don't care".
        wr(&mut r, 1, 0xbf);
        r.advance(102 * SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x20, 0);
    }

    #[test]
    fn alarm_compares_in_current_format_and_across_long_jumps() {
        let mut r = Rtc::new(LEAP_DAY); // 13:45:30
        wr(&mut r, 0x0b, 0x04); // binary 12 h: 1 PM = 0x81
        wr(&mut r, 5, 0x81);
        wr(&mut r, 3, 50);
        wr(&mut r, 1, 0);
        // Without AIE, AF still latches even when jumping past the match.
        r.advance(3600 * SEC);
        assert_eq!(rd(&mut r, 0x0c), 0x70);
        assert!(!r.irq_level());
        r.advance(7200 * SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x20, 0);
        r.advance(30 * 86_400 * SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x20, 0x20);
        // 13 in 12 h format never matches.
        wr(&mut r, 5, 13);
        r.advance(40 * 86_400 * SEC);
        assert_eq!(rd(&mut r, 0x0c) & 0x20, 0);
    }

    #[test]
    fn set_bit_freezes_and_guest_time_takes_over() {
        let mut r = Rtc::new(LEAP_DAY);
        r.advance(SEC / 4);
        wr(&mut r, 0x0b, 0x92); // SET | UIE: UIE is dropped
        assert_eq!(rd(&mut r, 0x0b), 0x82);
        r.advance(10 * SEC);
        assert_eq!(rd(&mut r, 0), 0x30, "frozen");
        assert_eq!(rd(&mut r, 0x0c) & 0x10, 0, "no update cycles");
        // Write 1999-12-31 23:59:58, Friday, in binary 12 h.
        wr(&mut r, 0x0b, 0x84);
        for (i, v) in [
            (0x32, 19),
            (9, 99),
            (8, 12),
            (7, 31),
            (6, 6),
            (4, 0x8b),
            (2, 59),
            (0, 58),
        ] {
            wr(&mut r, i, v);
        }
        assert_eq!(rd(&mut r, 0), 58);
        r.advance(10 * SEC + SEC / 2);
        wr(&mut r, 0x0b, 0x06);
        assert_eq!(clock(&mut r), [19, 99, 12, 31, 6, 23, 59, 58]);
        // The divider kept its phase: updates still fall on whole seconds.
        r.advance(11 * SEC - 1);
        assert_eq!(rd(&mut r, 0), 58);
        r.advance(12 * SEC);
        assert_eq!(clock(&mut r), [20, 0, 1, 1, 7, 0, 0, 0]);
    }

    #[test]
    fn guest_writes_apply_while_running_and_keep_its_weekday() {
        let mut r = Rtc::new(LEAP_DAY);
        wr(&mut r, 2, 0x59);
        wr(&mut r, 0, 0x59);
        assert_eq!(clock(&mut r)[5..], [0x13, 0x59, 0x59]);
        r.advance(SEC);
        assert_eq!(clock(&mut r)[5..], [0x14, 0x00, 0x00]);
        // A day of week the guest chose is counted on from, not corrected.
        wr(&mut r, 6, 7);
        wr(&mut r, 4, 0x23);
        wr(&mut r, 2, 0x59);
        wr(&mut r, 0, 0x59);
        r.advance(2 * SEC);
        assert_eq!(clock(&mut r)[2..5], [0x03, 0x01, 1]);
        // Century write moves the year.
        wr(&mut r, 0x32, 0x19);
        assert_eq!(clock(&mut r)[..4], [0x19, 0x24, 0x03, 0x01]);
        // Out-of-range values are pulled into range instead of panicking.
        wr(&mut r, 0, 0xff);
        wr(&mut r, 8, 0x00);
        assert_eq!(rd(&mut r, 0), 0x59);
        assert_eq!(rd(&mut r, 8), 0x01);
    }

    #[test]
    fn control_bits_read_back() {
        let mut r = Rtc::new(LEAP_DAY);
        // SQWE (bit 3) and DSE (bit 0) are stored as written.
        wr(&mut r, 0x0b, 0x0b);
        assert_eq!(rd(&mut r, 0x0b), 0x0b);
        wr(&mut r, 0x0b, 0x6a);
        assert_eq!(rd(&mut r, 0x0b), 0x6a);
        // REG C and REG D ignore writes.
        wr(&mut r, 0x0c, 0xff);
        assert_eq!(r.nvram(0x0c), 0);
        wr(&mut r, 0x0d, 0x00);
        assert_eq!(rd(&mut r, 0x0d), 0x80);
        // Rate and divider bits are stored.
        wr(&mut r, 0x0a, 0x2f);
        assert_eq!(rd(&mut r, 0x0a), 0x2f);
    }

    #[test]
    fn nmi_mask_bit_and_index_latch() {
        let mut r = Rtc::new(LEAP_DAY);
        assert!(!r.nmi_masked());
        r.write(PORT_INDEX, 1, 0x8f);
        assert!(r.nmi_masked());
        r.write(PORT_DATA, 1, 0x5a);
        assert_eq!(r.nvram(0x0f), 0x5a, "bit 7 is not part of the index");
        r.write(PORT_INDEX, 1, 0x0f);
        assert!(!r.nmi_masked());
        assert_eq!(r.read(PORT_DATA, 1), 0x5a);
        assert_eq!(r.read(PORT_INDEX, 1), 0xff);
        // A 16-bit write is an index then a data cycle.
        r.write(PORT_INDEX, 2, 0xa540);
        assert_eq!(r.nvram(0x40), 0xa5);
        assert_eq!(r.read(PORT_INDEX, 2), 0xa5ff);
        r.write(PORT_INDEX, 4, 0xffff_ffff);
        assert_eq!(r.read(0x72, 1), 0xff);
    }

    #[test]
    fn nvram_round_trips() {
        let mut r = Rtc::new(LEAP_DAY);
        for i in (0x0e..0x80u8).filter(|&i| i != 0x32) {
            wr(&mut r, i, i ^ 0xa5);
        }
        for i in (0x0e..0x80u8).filter(|&i| i != 0x32) {
            assert_eq!(rd(&mut r, i), i ^ 0xa5);
            assert_eq!(r.nvram(i), i ^ 0xa5);
            r.set_nvram(i, !i);
            assert_eq!(rd(&mut r, i), !i);
        }
        // Alarm bytes are plain storage.
        for i in [1u8, 3, 5] {
            r.set_nvram(i, 0x42);
            assert_eq!(rd(&mut r, i), 0x42);
        }
    }

    #[test]
    fn pc_config_bytes_and_checksum() {
        let mut r = Rtc::new(LEAP_DAY);
        r.set_pc_config(128 << 20, 0);
        assert_eq!(r.nvram(0x10), 0);
        assert_eq!(r.nvram(0x14), 0x02);
        assert_eq!([r.nvram(0x15), r.nvram(0x16)], [0x80, 0x02]);
        // 127 MiB above 1 MiB is more than 65535 KiB.
        assert_eq!([r.nvram(0x17), r.nvram(0x18)], [0xff, 0xff]);
        assert_eq!([r.nvram(0x30), r.nvram(0x31)], [0xff, 0xff]);
        // (128 - 16) MiB / 64 KiB = 1792 = 0x0700
        assert_eq!([r.nvram(0x34), r.nvram(0x35)], [0x00, 0x07]);
        assert_eq!([r.nvram(0x5b), r.nvram(0x5c), r.nvram(0x5d)], [0, 0, 0]);
        assert_eq!(r.nvram(0x32), 0x20);
        let sum: u16 = (0x10..=0x2d).map(|i| r.nvram(i) as u16).sum();
        assert_eq!(sum, 0x02 + 0x80 + 0x02 + 0xff + 0xff);
        assert_eq!([r.nvram(0x2e), r.nvram(0x2f)], sum.to_be_bytes());

        let mut r = Rtc::new(LEAP_DAY);
        r.set_pc_config(32 << 20, 0x1_2345_0000 + 0x8000);
        // 31 MiB = 31744 KiB = 0x7C00
        assert_eq!([r.nvram(0x17), r.nvram(0x18)], [0x00, 0x7c]);
        assert_eq!([r.nvram(0x30), r.nvram(0x31)], [0x00, 0x7c]);
        assert_eq!([r.nvram(0x34), r.nvram(0x35)], [0x00, 0x01]);
        assert_eq!(
            [r.nvram(0x5b), r.nvram(0x5c), r.nvram(0x5d)],
            [0x45, 0x23, 0x01]
        );
        let sum: u16 = 0x02 + 0x80 + 0x02 + 0x7c;
        assert_eq!([r.nvram(0x2e), r.nvram(0x2f)], sum.to_be_bytes());

        // Less than 1 MiB does not underflow.
        let mut r = Rtc::new(LEAP_DAY);
        r.set_pc_config(512 << 10, 0);
        assert_eq!([r.nvram(0x17), r.nvram(0x18), r.nvram(0x34)], [0, 0, 0]);
    }

    #[test]
    fn any_guest_input_is_harmless() {
        let mut r = Rtc::new(u64::MAX);
        r.advance(u64::MAX / 2);
        for i in 0..=0xffu32 {
            for v in [0x00u32, 0x7f, 0x80, 0xa5, 0xff] {
                for size in [1u8, 2, 4] {
                    r.write(PORT_INDEX, size, i);
                    r.write(PORT_DATA, size, v);
                    r.read(PORT_DATA, size);
                    r.read(PORT_INDEX, size);
                }
            }
            r.advance(r.now + 1_234_567_891);
            let _ = r.next_deadline();
        }
    }
}
