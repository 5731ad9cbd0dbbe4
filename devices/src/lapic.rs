//! Local APIC (xAPIC register set) of the single CPU, memory-mapped at
//! [`LAPIC_BASE`]. The board decodes the page and hands over the offset of
//! aligned 32-bit accesses; the IA32_APIC_BASE MSR (relocation, global
//! enable) is the board's business too.
//!
//! Being uniprocessor, every interprocessor message either targets this CPU
//! or goes nowhere: INIT, SIPI and IPIs to other IDs are dropped.

/// Physical address of the register page after reset.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;

/// Rate of the timer's input clock before the divide configuration applies.
/// At 1 GHz one tick is one virtual nanosecond, so guests that calibrate the
/// timer against the PIT see a round number.
pub const TIMER_BASE_HZ: u64 = 1_000_000_000;
const NS_PER_TICK: u64 = 1_000_000_000 / TIMER_BASE_HZ;

/// Version register: version 0x14 (integrated xAPIC), max LVT entry 5.
pub const VERSION: u32 = 0x0005_0014;

const LVT_TIMER: usize = 0;
const LVT_LINT0: usize = 3;
const LVT_ERROR: usize = 5;
const LVT_COUNT: usize = 6;

const LVT_ACTIVE_LOW: u32 = 1 << 13;
const LVT_REMOTE_IRR: u32 = 1 << 14;
const LVT_LEVEL: u32 = 1 << 15;
const LVT_MASKED: u32 = 1 << 16;

/// Guest-writable bits of timer, thermal, perf, LINT0, LINT1, error.
const LVT_WRITABLE: [u32; LVT_COUNT] = [
    0x0007_00FF,
    0x0001_07FF,
    0x0001_07FF,
    0x0001_A7FF,
    0x0001_A7FF,
    0x0001_00FF,
];

const SVR_ENABLE: u32 = 1 << 8;
const SVR_WRITABLE: u32 = 0x1FF;

/// ICR low: vector, delivery mode, destination mode, level, trigger mode,
/// shorthand. Delivery status (bit 12) stays 0 since delivery is immediate.
const ICR_WRITABLE: u32 = 0x000C_CFFF;
const ICR_LOGICAL: u32 = 1 << 11;
const ICR_LEVEL_TRIGGER: u32 = 1 << 15;

const DM_FIXED: u32 = 0;
const DM_LOWEST: u32 = 1;
const DM_NMI: u32 = 4;
const DM_EXTINT: u32 = 7;

const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
const ESR_RECV_ILLEGAL_VECTOR: u32 = 1 << 6;
const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

pub struct Lapic {
    reset_id: u8,
    id: u8,
    tpr: u8,
    ldr: u32,
    dfr: u32,
    svr: u32,
    irr: [u32; 8],
    isr: [u32; 8],
    tmr: [u32; 8],
    /// What ESR reads return: errors latched by the last ESR write.
    esr: u32,
    /// Errors seen since the last ESR write.
    esr_pending: u32,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; LVT_COUNT],
    timer_initial: u32,
    dcr: u32,
    /// When the count reaches zero (one-shot, periodic); None when stopped.
    timer_next: Option<u64>,
    /// Armed TSC deadline in ns, 0 when disarmed.
    tsc_deadline: u64,
    now: u64,
    lint_level: [bool; 2],
    nmi: bool,
    /// Vectors of level-triggered EOIs not yet broadcast to the IOAPIC.
    eois: Vec<u8>,
}

fn test_bit(bits: &[u32; 8], v: u8) -> bool {
    bits[usize::from(v >> 5)] & (1 << (v & 31)) != 0
}

fn set_bit(bits: &mut [u32; 8], v: u8) {
    bits[usize::from(v >> 5)] |= 1 << (v & 31);
}

fn clear_bit(bits: &mut [u32; 8], v: u8) {
    bits[usize::from(v >> 5)] &= !(1 << (v & 31));
}

/// Highest vector set, i.e. the highest-priority one.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8)
        .rev()
        .find(|&i| bits[i] != 0)
        .map(|i| (i as u32 * 32 + 31 - bits[i].leading_zeros()) as u8)
}

/// Index into a bank of eight 32-bit registers spaced 16 bytes apart.
fn bank_index(offset: u32, base: u32) -> usize {
    ((offset - base) >> 4) as usize
}

impl Lapic {
    pub fn new(apic_id: u8) -> Self {
        Lapic {
            reset_id: apic_id,
            id: apic_id,
            tpr: 0,
            ldr: 0,
            dfr: 0xFFFF_FFFF,
            svr: 0xFF,
            irr: [0; 8],
            isr: [0; 8],
            tmr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [LVT_MASKED; LVT_COUNT],
            timer_initial: 0,
            dcr: 0,
            timer_next: None,
            tsc_deadline: 0,
            now: 0,
            lint_level: [false; 2],
            nmi: false,
            eois: Vec::new(),
        }
    }

    /// Power-up/INIT state. Virtual time and the levels on the LINT pins are
    /// outside the APIC and survive.
    pub fn reset(&mut self) {
        let (now, lint_level) = (self.now, self.lint_level);
        *self = Lapic {
            now,
            lint_level,
            ..Lapic::new(self.reset_id)
        };
    }

    pub fn read(&mut self, offset: u32) -> u32 {
        let aligned = offset & 0xF == 0;
        match offset {
            0x20 => u32::from(self.id) << 24,
            0x30 => VERSION,
            0x80 => u32::from(self.tpr),
            0x90 => u32::from(self.apr()),
            0xA0 => u32::from(self.ppr()),
            // EOI is write-only.
            0xB0 => 0,
            0xD0 => self.ldr,
            0xE0 => self.dfr,
            0xF0 => self.svr,
            0x100..=0x170 if aligned => self.isr[bank_index(offset, 0x100)],
            0x180..=0x1F0 if aligned => self.tmr[bank_index(offset, 0x180)],
            0x200..=0x270 if aligned => self.irr[bank_index(offset, 0x200)],
            0x280 => self.esr,
            0x300 => self.icr_low,
            0x310 => self.icr_high,
            0x320..=0x370 if aligned => self.lvt[bank_index(offset, 0x320)],
            0x380 => self.timer_initial,
            0x390 => self.current_count(),
            0x3E0 => self.dcr,
            _ => {
                self.record_error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    pub fn write(&mut self, offset: u32, value: u32) {
        let aligned = offset & 0xF == 0;
        match offset {
            0x20 => self.id = (value >> 24) as u8,
            // Read-only: version, APR, PPR, ISR/TMR/IRR, current count.
            0x30 | 0x90 | 0xA0 | 0x390 => {}
            0x100..=0x270 if aligned => {}
            0x80 => self.tpr = value as u8,
            0xB0 => self.eoi(),
            0xD0 => self.ldr = value & 0xFF00_0000,
            0xE0 => self.dfr = value | 0x0FFF_FFFF,
            0xF0 => self.write_svr(value),
            0x280 => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            0x300 => {
                self.icr_low = value & ICR_WRITABLE;
                self.send_ipi();
            }
            0x310 => self.icr_high = value & 0xFF00_0000,
            0x320..=0x370 if aligned => self.write_lvt(bank_index(offset, 0x320), value),
            0x380 => self.write_initial_count(value),
            0x3E0 => self.write_dcr(value),
            _ => self.record_error(ESR_ILLEGAL_REGISTER),
        }
    }

    pub fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        let now = self.now;
        if let Some(next) = self.timer_next {
            if now >= next {
                self.timer_next = match self.timer_mode() {
                    TimerMode::Periodic => {
                        // Reload from the expiry, not from `now`, so the
                        // period does not drift when the board is late;
                        // periods skipped entirely merge into one interrupt
                        // as they would in a single IRR bit anyway.
                        let period = self.period_ns().max(1);
                        let skipped = (now - next) / period + 1;
                        Some(next.saturating_add(skipped.saturating_mul(period)))
                    }
                    _ => None,
                };
                self.fire_timer();
            }
        }
        if self.tsc_deadline != 0 && now >= self.tsc_deadline {
            self.tsc_deadline = 0;
            self.fire_timer();
        }
    }

    pub fn next_deadline(&self) -> Option<u64> {
        match self.timer_mode() {
            TimerMode::TscDeadline => (self.tsc_deadline != 0).then_some(self.tsc_deadline),
            _ => self.timer_next,
        }
    }

    /// IA32_TSC_DEADLINE write; ignored unless the timer is in TSC-deadline
    /// mode, and 0 disarms.
    pub fn set_tsc_deadline(&mut self, deadline_ns: u64) {
        if self.timer_mode() != TimerMode::TscDeadline {
            return;
        }
        self.tsc_deadline = deadline_ns;
        if deadline_ns != 0 && deadline_ns <= self.now {
            self.tsc_deadline = 0;
            self.fire_timer();
        }
    }

    /// IA32_TSC_DEADLINE read: the armed deadline, 0 once it fired.
    pub fn tsc_deadline(&self) -> u64 {
        self.tsc_deadline
    }

    pub fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// A fixed interrupt message for this CPU (IOAPIC, MSI, IPI).
    pub fn accept(&mut self, vector: u8, level: bool) {
        self.deliver(vector, level);
    }

    /// Whether the CPU should see INTR from the APIC. A software-disabled
    /// APIC holds its IRR until re-enabled.
    pub fn intr_pending(&self) -> bool {
        self.software_enabled() && highest(&self.irr).is_some_and(|v| v >> 4 > self.ppr() >> 4)
    }

    /// INTA cycle. If the interrupt that raised INTR has meanwhile been
    /// masked by TPR, the CPU gets the spurious vector and nothing moves.
    pub fn ack(&mut self) -> u8 {
        if !self.intr_pending() {
            return self.svr as u8;
        }
        match highest(&self.irr) {
            Some(v) => {
                clear_bit(&mut self.irr, v);
                set_bit(&mut self.isr, v);
                v
            }
            None => self.svr as u8,
        }
    }

    /// Vector of a level-triggered EOI for the IOAPIC; call until None.
    pub fn take_eoi(&mut self) -> Option<u8> {
        if self.eois.is_empty() {
            None
        } else {
            Some(self.eois.remove(0))
        }
    }

    /// The PIC's INTR reaches the CPU as if there were no APIC.
    pub fn lint0_extint(&self) -> bool {
        let lint0 = self.lvt[LVT_LINT0];
        !self.software_enabled() || (lint0 & LVT_MASKED == 0 && (lint0 >> 8) & 7 == DM_EXTINT)
    }

    pub fn set_lint(&mut self, pin: usize, level: bool) {
        if pin > 1 {
            return;
        }
        let was = self.lint_asserted(pin);
        self.lint_level[pin] = level;
        let rising = !was && self.lint_asserted(pin);
        self.eval_lint(pin, rising);
    }

    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi)
    }

    fn deliver(&mut self, vector: u8, level: bool) -> bool {
        if vector < 16 {
            self.record_error(ESR_RECV_ILLEGAL_VECTOR);
            return false;
        }
        set_bit(&mut self.irr, vector);
        if level {
            set_bit(&mut self.tmr, vector);
        } else {
            clear_bit(&mut self.tmr, vector);
        }
        true
    }

    fn record_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        let lvt = self.lvt[LVT_ERROR];
        if lvt & LVT_MASKED != 0 {
            return;
        }
        // Not through deliver(): an illegal error vector must not recurse.
        let vector = lvt as u8;
        if vector < 16 {
            self.esr_pending |= ESR_RECV_ILLEGAL_VECTOR;
        } else {
            set_bit(&mut self.irr, vector);
            clear_bit(&mut self.tmr, vector);
        }
    }

    fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    fn apr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        let irrv = highest(&self.irr).unwrap_or(0);
        if self.tpr >> 4 >= irrv >> 4 && self.tpr >> 4 > isrv >> 4 {
            self.tpr
        } else {
            (self.tpr & 0xF0).max(isrv & 0xF0).max(irrv & 0xF0)
        }
    }

    fn eoi(&mut self) {
        let Some(v) = highest(&self.isr) else {
            return;
        };
        clear_bit(&mut self.isr, v);
        if !test_bit(&self.tmr, v) {
            return;
        }
        // Bounded: every entry needed an INTA, but a board that never
        // drains the queue must not make it grow forever.
        if self.eois.len() < 256 {
            self.eois.push(v);
        }
        for pin in 0..2 {
            let lvt = &mut self.lvt[LVT_LINT0 + pin];
            if *lvt & LVT_REMOTE_IRR != 0 && *lvt as u8 == v {
                *lvt &= !LVT_REMOTE_IRR;
                self.eval_lint(pin, false);
            }
        }
    }

    fn write_svr(&mut self, value: u32) {
        self.svr = value & SVR_WRITABLE;
        if !self.software_enabled() {
            for lvt in &mut self.lvt {
                *lvt |= LVT_MASKED;
            }
        }
    }

    fn write_lvt(&mut self, index: usize, value: u32) {
        let mut v = value & LVT_WRITABLE[index];
        if !self.software_enabled() {
            v |= LVT_MASKED;
        }
        match index {
            LVT_TIMER => {
                let was_tsc = self.timer_mode() == TimerMode::TscDeadline;
                self.lvt[index] = v;
                // Entering or leaving TSC-deadline mode disarms the timer
                // (one-shot <-> periodic keeps counting).
                if was_tsc != (self.timer_mode() == TimerMode::TscDeadline) {
                    self.timer_initial = 0;
                    self.timer_next = None;
                    self.tsc_deadline = 0;
                }
            }
            3 | 4 => {
                let pin = index - LVT_LINT0;
                let remote = self.lvt[index] & LVT_REMOTE_IRR;
                self.lvt[index] = v | remote;
                if !self.lint_is_level(pin) {
                    self.lvt[index] &= !LVT_REMOTE_IRR;
                }
                self.eval_lint(pin, false);
            }
            _ => self.lvt[index] = v,
        }
    }

    fn send_ipi(&mut self) {
        let low = self.icr_low;
        let vector = low as u8;
        let to_self = match (low >> 18) & 3 {
            0 => self.matches_destination((self.icr_high >> 24) as u8, low & ICR_LOGICAL != 0),
            1 | 2 => true,
            _ => false,
        };
        match (low >> 8) & 7 {
            DM_FIXED | DM_LOWEST => {
                if vector < 16 {
                    self.record_error(ESR_SEND_ILLEGAL_VECTOR);
                } else if to_self {
                    self.deliver(vector, low & ICR_LEVEL_TRIGGER != 0);
                }
            }
            DM_NMI if to_self => self.nmi = true,
            // SMI has nowhere to go; INIT/SIPI only address other CPUs.
            _ => {}
        }
    }

    fn matches_destination(&self, dest: u8, logical: bool) -> bool {
        if dest == 0xFF {
            return true;
        }
        if !logical {
            return dest == self.id;
        }
        let ldr = (self.ldr >> 24) as u8;
        if self.dfr >> 28 == 0xF {
            ldr & dest != 0
        } else {
            // Cluster model: high nibble names the cluster, low nibble is a
            // member bitmap.
            (dest >> 4 == ldr >> 4 || dest >> 4 == 0xF) && ldr & dest & 0xF != 0
        }
    }

    fn timer_mode(&self) -> TimerMode {
        match (self.lvt[LVT_TIMER] >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            // 3 is reserved; counting down once is the harmless reading.
            _ => TimerMode::OneShot,
        }
    }

    fn divisor(&self) -> u64 {
        let code = ((self.dcr >> 1) & 4) | (self.dcr & 3);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    fn ns_per_count(&self) -> u64 {
        self.divisor() * NS_PER_TICK
    }

    fn period_ns(&self) -> u64 {
        u64::from(self.timer_initial) * self.ns_per_count()
    }

    fn current_count(&self) -> u32 {
        match self.timer_next {
            Some(next) if next > self.now => {
                let left = (next - self.now).div_ceil(self.ns_per_count());
                left.min(u64::from(u32::MAX)) as u32
            }
            _ => 0,
        }
    }

    fn write_initial_count(&mut self, value: u32) {
        if self.timer_mode() == TimerMode::TscDeadline {
            return;
        }
        self.timer_initial = value;
        self.timer_next = (value != 0).then(|| self.now.saturating_add(self.period_ns()));
    }

    fn write_dcr(&mut self, value: u32) {
        let left = u64::from(self.current_count());
        self.dcr = value & 0xB;
        // The count keeps its value and continues at the new rate.
        if self.timer_next.is_some() && left > 0 {
            self.timer_next = Some(self.now.saturating_add(left * self.ns_per_count()));
        }
    }

    fn fire_timer(&mut self) {
        let lvt = self.lvt[LVT_TIMER];
        if lvt & LVT_MASKED == 0 {
            self.deliver(lvt as u8, false);
        }
    }

    fn lint_asserted(&self, pin: usize) -> bool {
        self.lint_level[pin] != (self.lvt[LVT_LINT0 + pin] & LVT_ACTIVE_LOW != 0)
    }

    /// Only LINT0 does level-sensitive fixed delivery; the SDM has LINT1
    /// edge-only, and NMI/ExtINT ignore the trigger bit.
    fn lint_is_level(&self, pin: usize) -> bool {
        let lvt = self.lvt[LVT_LINT0 + pin];
        pin == 0 && (lvt >> 8) & 7 == DM_FIXED && lvt & LVT_LEVEL != 0
    }

    fn eval_lint(&mut self, pin: usize, rising: bool) {
        let index = LVT_LINT0 + pin;
        let lvt = self.lvt[index];
        if lvt & LVT_MASKED != 0 {
            return;
        }
        if self.lint_is_level(pin) {
            if self.lint_asserted(pin) && lvt & LVT_REMOTE_IRR == 0 && self.deliver(lvt as u8, true)
            {
                self.lvt[index] |= LVT_REMOTE_IRR;
            }
            return;
        }
        match (lvt >> 8) & 7 {
            DM_FIXED if rising => {
                self.deliver(lvt as u8, false);
            }
            DM_NMI if rising => self.nmi = true,
            // ExtINT is wired by the board through lint0_extint().
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVR: u32 = 0xF0;
    const TPR: u32 = 0x80;
    const EOI: u32 = 0xB0;
    const ESR: u32 = 0x280;
    const ICR_LO: u32 = 0x300;
    const ICR_HI: u32 = 0x310;
    const LVT_T: u32 = 0x320;
    const LINT0: u32 = 0x350;
    const LINT1: u32 = 0x360;
    const LVT_ERR: u32 = 0x370;
    const INIT_COUNT: u32 = 0x380;
    const CUR_COUNT: u32 = 0x390;
    const DCR: u32 = 0x3E0;

    /// APIC with software enable and spurious vector 0xFF.
    fn enabled() -> Lapic {
        let mut a = Lapic::new(0);
        a.write(SVR, 0x1FF);
        a
    }

    fn irr_has(a: &mut Lapic, v: u8) -> bool {
        let reg = a.read(0x200 + u32::from(v >> 5) * 0x10);
        reg & (1 << (v & 31)) != 0
    }

    fn latched_esr(a: &mut Lapic) -> u32 {
        a.write(ESR, 0);
        a.read(ESR)
    }

    #[test]
    fn id_register_holds_bits_31_24() {
        let mut a = Lapic::new(3);
        assert_eq!(a.read(0x20), 0x0300_0000);
        a.write(0x20, 0x0512_3456);
        assert_eq!(a.read(0x20), 0x0500_0000);
        a.reset();
        assert_eq!(a.read(0x20), 0x0300_0000);
    }

    #[test]
    fn version_is_read_only() {
        let mut a = Lapic::new(0);
        assert_eq!(a.read(0x30), 0x0005_0014);
        a.write(0x30, 0);
        assert_eq!(a.read(0x30), 0x0005_0014);
    }

    #[test]
    fn tpr_ldr_dfr_svr_masks() {
        let mut a = Lapic::new(0);
        assert_eq!(a.read(SVR), 0xFF);
        assert_eq!(a.read(0xE0), 0xFFFF_FFFF);
        a.write(TPR, 0xFFFF_FFFF);
        assert_eq!(a.read(TPR), 0xFF);
        a.write(0xD0, 0xFFFF_FFFF);
        assert_eq!(a.read(0xD0), 0xFF00_0000);
        a.write(0xE0, 0);
        assert_eq!(a.read(0xE0), 0x0FFF_FFFF);
        a.write(SVR, 0xFFFF_FFFF);
        assert_eq!(a.read(SVR), 0x1FF);
        assert!(a.software_enabled());
        a.write(SVR, 0x0FF);
        assert!(!a.software_enabled());
    }

    #[test]
    fn read_only_registers_ignore_writes() {
        let mut a = enabled();
        a.accept(0x41, true);
        a.ack();
        a.accept(0x62, true);
        a.write(TPR, 0x20);
        for off in [0x90, 0xA0, 0x120, 0x1A0, 0x230, CUR_COUNT] {
            let before = a.read(off);
            a.write(off, 0xFFFF_FFFF);
            assert_eq!(a.read(off), before, "offset {off:#x}");
        }
        assert_eq!(latched_esr(&mut a), 0);
        assert_eq!(a.read(EOI), 0);
    }

    #[test]
    fn reserved_offsets_read_zero_and_flag_illegal_register() {
        let mut a = enabled();
        for off in [0x00, 0x10, 0x40, 0xC0, 0x2F0, 0x3A0, 0x3F0, 0x24, 0x1000] {
            assert_eq!(a.read(off), 0, "offset {off:#x}");
        }
        assert_eq!(latched_esr(&mut a), ESR_ILLEGAL_REGISTER);
        a.write(0x40, 1);
        assert_eq!(latched_esr(&mut a), ESR_ILLEGAL_REGISTER);
    }

    #[test]
    fn esr_latches_on_write() {
        let mut a = enabled();
        a.accept(5, false);
        // Errors are invisible until software writes the ESR.
        assert_eq!(a.read(ESR), 0);
        a.write(ESR, 0xFFFF_FFFF);
        assert_eq!(a.read(ESR), ESR_RECV_ILLEGAL_VECTOR);
        // Reading again does not clear; the next write latches "no errors".
        assert_eq!(a.read(ESR), ESR_RECV_ILLEGAL_VECTOR);
        a.write(ESR, 0);
        assert_eq!(a.read(ESR), 0);
        assert!(!irr_has(&mut a, 5));
    }

    #[test]
    fn error_lvt_delivers_on_error() {
        let mut a = enabled();
        a.write(LVT_ERR, 0xFE);
        a.read(0x40);
        assert!(irr_has(&mut a, 0xFE));
        // Masked: the error is only logged.
        let mut b = enabled();
        b.write(LVT_ERR, LVT_MASKED | 0xFE);
        b.read(0x40);
        assert!(!irr_has(&mut b, 0xFE));
        assert_eq!(latched_esr(&mut b), ESR_ILLEGAL_REGISTER);
        // An illegal error vector logs itself instead of recursing.
        let mut c = enabled();
        c.write(LVT_ERR, 0x03);
        c.read(0x40);
        assert_eq!(
            latched_esr(&mut c),
            ESR_ILLEGAL_REGISTER | ESR_RECV_ILLEGAL_VECTOR
        );
    }

    #[test]
    fn lvt_reset_values_and_write_masks() {
        let mut a = enabled();
        for off in (0x320..=0x370).step_by(0x10) {
            assert_eq!(a.read(off), LVT_MASKED, "offset {off:#x}");
        }
        let expect = [
            0x0007_00FF,
            0x0001_07FF,
            0x0001_07FF,
            0x0001_A7FF,
            0x0001_A7FF,
            0x0001_00FF,
        ];
        for (i, e) in expect.iter().enumerate() {
            let off = 0x320 + 0x10 * i as u32;
            a.write(off, 0xFFFF_FFFF);
            assert_eq!(a.read(off), *e, "offset {off:#x}");
            a.write(off, 0);
            assert_eq!(a.read(off), 0, "offset {off:#x}");
        }
    }

    #[test]
    fn software_disable_masks_lvts_and_they_stay_masked() {
        let mut a = Lapic::new(0);
        a.write(LINT0, 0x700);
        assert_eq!(a.read(LINT0), LVT_MASKED | 0x700);
        a.write(SVR, 0x1FF);
        assert_eq!(a.read(LINT0), LVT_MASKED | 0x700);
        a.write(LINT0, 0x700);
        assert_eq!(a.read(LINT0), 0x700);
        a.write(LVT_T, 0x20);
        a.write(SVR, 0xFF);
        assert_eq!(a.read(LINT0), LVT_MASKED | 0x700);
        assert_eq!(a.read(LVT_T), LVT_MASKED | 0x20);
        a.write(SVR, 0x1FF);
        assert_eq!(a.read(LVT_T), LVT_MASKED | 0x20);
    }

    #[test]
    fn software_disabled_holds_irr() {
        let mut a = enabled();
        a.accept(0x50, false);
        a.write(SVR, 0xFF);
        assert!(!a.intr_pending());
        assert_eq!(a.ack(), 0xFF);
        a.write(SVR, 0x1FF);
        assert!(a.intr_pending());
        assert_eq!(a.ack(), 0x50);
    }

    #[test]
    fn isr_tmr_irr_banks() {
        let mut a = enabled();
        a.accept(0x45, true);
        a.accept(0x46, false);
        a.accept(0xE1, false);
        assert_eq!(a.read(0x220), 0x60);
        assert_eq!(a.read(0x270), 0x2);
        assert_eq!(a.read(0x1A0), 0x20);
        assert_eq!(a.ack(), 0xE1);
        assert_eq!(a.read(0x170), 0x2);
        assert_eq!(a.read(0x270), 0);
        // Re-accepting a vector as edge clears its TMR bit.
        a.accept(0x45, false);
        assert_eq!(a.read(0x1A0), 0);
    }

    #[test]
    fn ppr_from_tpr_and_isr() {
        let mut a = enabled();
        a.write(TPR, 0x35);
        assert_eq!(a.read(0xA0), 0x35);
        a.accept(0x52, false);
        assert_eq!(a.ack(), 0x52);
        assert_eq!(a.read(0xA0), 0x50);
        a.write(TPR, 0x55);
        assert_eq!(a.read(0xA0), 0x55);
        a.write(TPR, 0x65);
        assert_eq!(a.read(0xA0), 0x65);
        a.write(TPR, 0);
        a.write(EOI, 0);
        assert_eq!(a.read(0xA0), 0);
    }

    #[test]
    fn apr_from_tpr_isr_irr() {
        let mut a = enabled();
        a.write(TPR, 0x47);
        assert_eq!(a.read(0x90), 0x47);
        a.accept(0x62, false);
        assert_eq!(a.read(0x90), 0x60);
        a.write(TPR, 0x0);
        assert_eq!(a.ack(), 0x62);
        a.write(TPR, 0x37);
        assert_eq!(a.read(0x90), 0x60);
        a.write(TPR, 0x77);
        assert_eq!(a.read(0x90), 0x77);
    }

    #[test]
    fn tpr_blocks_equal_and_lower_classes() {
        let mut a = enabled();
        a.accept(0x40, false);
        a.write(TPR, 0x40);
        assert!(!a.intr_pending());
        assert_eq!(a.ack(), 0xFF);
        assert!(irr_has(&mut a, 0x40));
        a.write(TPR, 0x3F);
        assert!(a.intr_pending());
        assert_eq!(a.ack(), 0x40);
        assert!(!a.intr_pending());
    }

    #[test]
    fn spurious_vector_when_nothing_pending() {
        let mut a = enabled();
        a.write(SVR, 0x1E7);
        assert!(!a.intr_pending());
        assert_eq!(a.ack(), 0xE7);
        assert_eq!(a.read(0x100), 0);
    }

    #[test]
    fn nested_priorities_ack_and_eoi() {
        let mut a = enabled();
        a.accept(0x30, false);
        assert_eq!(a.ack(), 0x30);
        a.accept(0x31, false);
        assert!(!a.intr_pending(), "same class waits for EOI");
        a.accept(0x50, false);
        assert!(a.intr_pending());
        assert_eq!(a.ack(), 0x50);
        assert_eq!(a.read(0x110), 1 << 16);
        assert_eq!(a.read(0x120), 1 << 16);
        a.write(EOI, 0);
        assert_eq!(a.read(0x120), 0);
        assert_eq!(a.read(0x110), 1 << 16);
        assert!(!a.intr_pending());
        a.write(EOI, 0);
        assert!(a.intr_pending());
        assert_eq!(a.ack(), 0x31);
        a.write(EOI, 0);
        assert_eq!(a.read(0x110), 0);
        // EOI with nothing in service is harmless.
        a.write(EOI, 0);
        assert_eq!(a.take_eoi(), None);
    }

    #[test]
    fn level_eoi_is_reported_edge_eoi_is_not() {
        let mut a = enabled();
        a.accept(0x61, true);
        a.accept(0x71, false);
        assert_eq!(a.ack(), 0x71);
        a.write(EOI, 0);
        assert_eq!(a.take_eoi(), None);
        assert_eq!(a.ack(), 0x61);
        a.write(EOI, 0);
        assert_eq!(a.take_eoi(), Some(0x61));
        assert_eq!(a.take_eoi(), None);
    }

    #[test]
    fn divide_configuration() {
        let table = [
            (0x0, 2),
            (0x1, 4),
            (0x2, 8),
            (0x3, 16),
            (0x8, 32),
            (0x9, 64),
            (0xA, 128),
            (0xB, 1),
        ];
        for (dcr, div) in table {
            let mut a = enabled();
            a.write(DCR, dcr | 0xFFFF_FFF4);
            assert_eq!(a.read(DCR), dcr);
            a.advance(1000);
            a.write(INIT_COUNT, 10);
            assert_eq!(a.next_deadline(), Some(1000 + 10 * div), "dcr {dcr:#x}");
        }
    }

    #[test]
    fn one_shot_counts_down_and_fires_once() {
        let mut a = enabled();
        assert_eq!(TIMER_BASE_HZ, 1_000_000_000);
        a.write(LVT_T, 0x40);
        a.write(DCR, 0x0); // divide by 2
        a.write(INIT_COUNT, 1000);
        assert_eq!(a.read(INIT_COUNT), 1000);
        assert_eq!(a.read(CUR_COUNT), 1000);
        assert_eq!(a.next_deadline(), Some(2000));
        a.advance(1);
        assert_eq!(a.read(CUR_COUNT), 1000);
        a.advance(2);
        assert_eq!(a.read(CUR_COUNT), 999);
        a.advance(1000);
        assert_eq!(a.read(CUR_COUNT), 500);
        a.advance(1999);
        assert_eq!(a.read(CUR_COUNT), 1);
        assert!(!irr_has(&mut a, 0x40));
        a.advance(2000);
        assert!(irr_has(&mut a, 0x40));
        assert_eq!(a.read(CUR_COUNT), 0);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.ack(), 0x40);
        a.advance(10_000);
        assert!(!irr_has(&mut a, 0x40));
    }

    #[test]
    fn periodic_reloads_without_drift() {
        let mut a = enabled();
        a.write(LVT_T, (1 << 17) | 0x41);
        a.write(DCR, 0xB);
        a.write(INIT_COUNT, 100);
        a.advance(100);
        assert!(irr_has(&mut a, 0x41));
        assert_eq!(a.read(CUR_COUNT), 100);
        assert_eq!(a.next_deadline(), Some(200));
        a.advance(150);
        assert_eq!(a.read(CUR_COUNT), 50);
        assert_eq!(a.ack(), 0x41);
        // The board is late: the next expiry stays on the 100 ns grid.
        a.advance(1050);
        assert!(irr_has(&mut a, 0x41));
        assert_eq!(a.next_deadline(), Some(1100));
        assert_eq!(a.read(CUR_COUNT), 50);
    }

    #[test]
    fn initial_count_zero_stops_timer() {
        let mut a = enabled();
        a.write(LVT_T, 0x40);
        a.write(INIT_COUNT, 100);
        a.advance(50);
        a.write(INIT_COUNT, 0);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.read(CUR_COUNT), 0);
        a.advance(1000);
        assert!(!irr_has(&mut a, 0x40));
    }

    #[test]
    fn masked_timer_counts_but_does_not_interrupt() {
        let mut a = enabled();
        a.write(LVT_T, LVT_MASKED | (1 << 17) | 0x40);
        a.write(DCR, 0xB);
        a.write(INIT_COUNT, 100);
        a.advance(100);
        assert!(!irr_has(&mut a, 0x40));
        assert_eq!(a.next_deadline(), Some(200));
        a.write(LVT_T, (1 << 17) | 0x40);
        a.advance(200);
        assert!(irr_has(&mut a, 0x40));
    }

    #[test]
    fn divide_change_keeps_count() {
        let mut a = enabled();
        a.write(DCR, 0xB);
        a.write(INIT_COUNT, 100);
        a.advance(40);
        a.write(DCR, 0x1); // divide by 4
        assert_eq!(a.read(CUR_COUNT), 60);
        assert_eq!(a.next_deadline(), Some(40 + 60 * 4));
    }

    #[test]
    fn tsc_deadline_mode() {
        let mut a = enabled();
        // Not in TSC-deadline mode: the MSR ignores writes.
        a.set_tsc_deadline(5000);
        assert_eq!(a.tsc_deadline(), 0);
        a.write(LVT_T, (2 << 17) | 0x42);
        assert_eq!(a.read(LVT_T), (2 << 17) | 0x42);
        a.write(INIT_COUNT, 10);
        assert_eq!(a.read(INIT_COUNT), 0);
        assert_eq!(a.next_deadline(), None);
        a.set_tsc_deadline(5000);
        assert_eq!(a.tsc_deadline(), 5000);
        assert_eq!(a.next_deadline(), Some(5000));
        a.advance(4999);
        assert!(!irr_has(&mut a, 0x42));
        a.advance(5000);
        assert!(irr_has(&mut a, 0x42));
        assert_eq!(a.tsc_deadline(), 0);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.read(CUR_COUNT), 0);
        // A deadline already past fires at once; 0 disarms.
        assert_eq!(a.ack(), 0x42);
        a.set_tsc_deadline(100);
        assert!(irr_has(&mut a, 0x42));
        a.set_tsc_deadline(9000);
        a.set_tsc_deadline(0);
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn leaving_tsc_deadline_mode_disarms() {
        let mut a = enabled();
        a.write(LVT_T, (2 << 17) | 0x42);
        a.set_tsc_deadline(5000);
        a.write(LVT_T, 0x42);
        assert_eq!(a.tsc_deadline(), 0);
        assert_eq!(a.next_deadline(), None);
        a.write(INIT_COUNT, 10);
        a.write(LVT_T, (2 << 17) | 0x42);
        assert_eq!(a.read(INIT_COUNT), 0);
        assert_eq!(a.next_deadline(), None);
        // One-shot to periodic keeps the running count.
        a.write(LVT_T, 0x42);
        a.write(INIT_COUNT, 10);
        a.write(LVT_T, (1 << 17) | 0x42);
        assert_eq!(a.next_deadline(), Some(20));
    }

    #[test]
    fn icr_masks_and_delivery_status() {
        let mut a = enabled();
        a.write(ICR_HI, 0xFFFF_FFFF);
        assert_eq!(a.read(ICR_HI), 0xFF00_0000);
        // Reserved delivery mode 7 to "all excluding self": goes nowhere.
        a.write(ICR_LO, 0xFFFF_FFFF);
        assert_eq!(a.read(ICR_LO), 0x000C_CFFF);
        assert_eq!(a.read(0x200 + 0x70), 0);
    }

    #[test]
    fn self_ipi_shorthands() {
        let mut a = Lapic::new(2);
        a.write(SVR, 0x1FF);
        a.write(ICR_LO, (1 << 18) | 0x51);
        assert!(irr_has(&mut a, 0x51));
        a.write(ICR_LO, (2 << 18) | 0x52);
        assert!(irr_has(&mut a, 0x52));
        a.write(ICR_LO, (3 << 18) | 0x53);
        assert!(!irr_has(&mut a, 0x53));
        // Physical destination: own ID or broadcast.
        a.write(ICR_HI, 0x0200_0000);
        a.write(ICR_LO, 0x54);
        assert!(irr_has(&mut a, 0x54));
        a.write(ICR_HI, 0x0300_0000);
        a.write(ICR_LO, 0x55);
        assert!(!irr_has(&mut a, 0x55));
        a.write(ICR_HI, 0xFF00_0000);
        a.write(ICR_LO, 0x56);
        assert!(irr_has(&mut a, 0x56));
        // Lowest priority behaves as fixed with a single CPU.
        a.write(ICR_LO, (1 << 18) | (1 << 8) | 0x57);
        assert!(irr_has(&mut a, 0x57));
        // Level trigger sets TMR.
        a.write(ICR_LO, (1 << 18) | ICR_LEVEL_TRIGGER | (1 << 14) | 0x58);
        assert_eq!(a.read(0x180 + 0x20) & (1 << 0x18), 1 << 0x18);
    }

    #[test]
    fn logical_destinations() {
        let mut a = enabled();
        a.write(0xD0, 0x0400_0000);
        a.write(ICR_HI, 0x0600_0000);
        a.write(ICR_LO, ICR_LOGICAL | 0x61);
        assert!(irr_has(&mut a, 0x61));
        a.write(ICR_HI, 0x0300_0000);
        a.write(ICR_LO, ICR_LOGICAL | 0x62);
        assert!(!irr_has(&mut a, 0x62));
        // Cluster model: cluster 2, member bit 1.
        a.write(0xE0, 0x0FFF_FFFF);
        a.write(0xD0, 0x2100_0000);
        a.write(ICR_HI, 0x2300_0000);
        a.write(ICR_LO, ICR_LOGICAL | 0x63);
        assert!(irr_has(&mut a, 0x63));
        a.write(ICR_HI, 0x3100_0000);
        a.write(ICR_LO, ICR_LOGICAL | 0x64);
        assert!(!irr_has(&mut a, 0x64));
        a.write(ICR_HI, 0xF100_0000);
        a.write(ICR_LO, ICR_LOGICAL | 0x65);
        assert!(irr_has(&mut a, 0x65));
    }

    #[test]
    fn ipi_other_modes() {
        let mut a = enabled();
        for mode in [2, 5, 6] {
            a.write(ICR_LO, (1 << 18) | (mode << 8) | 0x70);
        }
        assert_eq!(a.read(0x230), 0);
        assert!(!a.take_nmi());
        a.write(ICR_LO, (1 << 18) | (4 << 8));
        assert!(a.take_nmi());
        assert!(!a.take_nmi());
        a.write(ICR_LO, (1 << 18) | 0x0E);
        assert_eq!(latched_esr(&mut a), ESR_SEND_ILLEGAL_VECTOR);
    }

    #[test]
    fn lint0_extint_flag() {
        let mut a = Lapic::new(0);
        assert!(a.lint0_extint(), "software-disabled APIC passes the PIC");
        a.write(SVR, 0x1FF);
        assert!(!a.lint0_extint());
        a.write(LINT0, 0x700);
        assert!(a.lint0_extint());
        a.write(LINT0, LVT_MASKED | 0x700);
        assert!(!a.lint0_extint());
        a.write(LINT0, 0x400);
        assert!(!a.lint0_extint());
    }

    #[test]
    fn lint1_nmi_on_rising_edge() {
        let mut a = enabled();
        a.write(LINT1, 0x400);
        a.set_lint(1, true);
        assert!(a.take_nmi());
        a.set_lint(1, true);
        assert!(!a.take_nmi());
        a.set_lint(1, false);
        a.set_lint(1, true);
        assert!(a.take_nmi());
        a.set_lint(1, false);
        a.write(LINT1, LVT_MASKED | 0x400);
        a.set_lint(1, true);
        assert!(!a.take_nmi());
        a.set_lint(5, true);
    }

    #[test]
    fn lint_edge_fixed_and_polarity() {
        let mut a = enabled();
        a.write(LINT1, 0x66);
        a.set_lint(1, true);
        assert!(irr_has(&mut a, 0x66));
        assert_eq!(a.ack(), 0x66);
        a.write(EOI, 0);
        a.set_lint(1, false);
        assert!(!irr_has(&mut a, 0x66));
        // Active low: the falling wire is the asserting edge.
        a.write(LINT1, LVT_ACTIVE_LOW | 0x400);
        a.set_lint(1, true);
        assert!(!a.take_nmi());
        a.set_lint(1, false);
        assert!(a.take_nmi());
    }

    #[test]
    fn lint0_level_fixed_remote_irr() {
        let mut a = enabled();
        a.write(LINT0, LVT_LEVEL | 0x60);
        a.set_lint(0, true);
        assert!(irr_has(&mut a, 0x60));
        assert_eq!(a.read(LINT0), LVT_REMOTE_IRR | LVT_LEVEL | 0x60);
        // Writes cannot clear remote IRR.
        a.write(LINT0, LVT_LEVEL | 0x60);
        assert_eq!(a.read(LINT0) & LVT_REMOTE_IRR, LVT_REMOTE_IRR);
        assert_eq!(a.ack(), 0x60);
        a.write(EOI, 0);
        assert_eq!(a.take_eoi(), Some(0x60));
        // Still asserted: delivered again.
        assert!(irr_has(&mut a, 0x60));
        assert_eq!(a.read(LINT0) & LVT_REMOTE_IRR, LVT_REMOTE_IRR);
        a.set_lint(0, false);
        assert_eq!(a.ack(), 0x60);
        a.write(EOI, 0);
        assert_eq!(a.read(LINT0) & LVT_REMOTE_IRR, 0);
        assert!(!irr_has(&mut a, 0x60));
    }

    #[test]
    fn reset_restores_power_up_state() {
        let mut a = enabled();
        a.write(TPR, 0x20);
        a.write(LINT0, 0x700);
        a.accept(0x40, false);
        a.write(INIT_COUNT, 5);
        a.advance(7);
        a.reset();
        assert_eq!(a.read(SVR), 0xFF);
        assert_eq!(a.read(TPR), 0);
        assert_eq!(a.read(LINT0), LVT_MASKED);
        assert_eq!(a.read(0x200 + 0x20), 0);
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn any_offset_and_value_is_safe() {
        let mut a = enabled();
        for off in (0..0x1010).step_by(4) {
            for v in [0, 0xFFFF_FFFF, 0x0004_0000 | 0x20, 0x0001_0000] {
                a.write(off, v);
                a.read(off);
            }
        }
        a.advance(u64::MAX - 1);
        a.write(DCR, 0xA);
        a.write(LVT_T, 1 << 17);
        a.write(INIT_COUNT, u32::MAX);
        a.advance(u64::MAX);
        a.read(CUR_COUNT);
        a.write(SVR, 0x1FF);
        a.write(TPR, 0);
        for _ in 0..300 {
            a.accept(0x80, true);
            assert_eq!(a.ack(), 0x80);
            a.write(EOI, 0);
        }
        // The EOI queue is bounded even when nobody drains it.
        assert_eq!(std::iter::from_fn(|| a.take_eoi()).count(), 256);
        assert_eq!(a.read(0x100 + 0x40), 0);
        assert_eq!(
            latched_esr(&mut a) & ESR_ILLEGAL_REGISTER,
            ESR_ILLEGAL_REGISTER
        );
    }
}
