//! Intel 8254 programmable interval timer (ports 0x40-0x43) and the PC's
//! system control port B (0x61), which carries channel 2's gate and OUT.
//!
//! The counters are not stepped tick by tick: each channel keeps the state
//! of its counting element at the last `advance` and jumps over any number
//! of input clocks in O(1), so a guest that sleeps for a long time costs
//! nothing and counts read while running match virtual time exactly.
//!
//! Clock model: input clock tick `k` (k >= 1) happens at the first
//! nanosecond `t` with `t * PIT_HZ / 1e9 >= k`; at time `now`, ticks
//! `1..=ticks_at(now)` have happened. A count written at `now` is loaded
//! into the counting element on the next tick, as on the real part.

use crate::PortDevice;

/// Input clock of all three channels on a PC (14.31818 MHz / 12).
pub const PIT_HZ: u64 = 1_193_182;
const NS_PER_S: u128 = 1_000_000_000;
/// The DRAM refresh request bit of port 0x61 flips at this interval (ns).
const REFRESH_TOGGLE_NS: u64 = 15_085;

/// Number of input clock ticks that have happened by `now` (ns).
fn ticks_at(now: u64) -> u64 {
    // Cannot exceed u64: the ratio is below 1.
    (now as u128 * PIT_HZ as u128 / NS_PER_S) as u64
}

/// The nanosecond at which tick `t` happens (inverse of `ticks_at`).
fn time_of_tick(t: u64) -> u64 {
    let ns = (t as u128 * NS_PER_S).div_ceil(PIT_HZ as u128);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn bcd_to_bin(v: u16) -> u32 {
    // Digits above 9 are not valid BCD; folding them in keeps the value
    // bounded instead of guessing at what the silicon does with them.
    let d = |shift: u32| ((v >> shift) & 0xf) as u32;
    (d(12) * 1000 + d(8) * 100 + d(4) * 10 + d(0)) % 10_000
}

fn bin_to_bcd(v: u32) -> u16 {
    let v = v % 10_000;
    ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Control word written, no count yet: the counter does nothing.
    Idle,
    /// Modes 1/5 have a count but no trigger yet.
    WaitGate,
    /// The count register is copied into the counting element on the next tick.
    Load,
    Run,
}

#[derive(Clone, Debug)]
struct Channel {
    /// Low six bits of the last control word: RW (5:4), mode (3:1), BCD (0).
    /// Kept raw because the read-back status returns them as written.
    ctrl: u8,
    /// Count register as written by the guest (BCD-encoded in BCD mode).
    cr: u16,
    null_count: bool,
    state: State,
    /// Counting element in modes 0/1/4/5 (and whenever not running in 2/3),
    /// as a plain number in 0..modulus.
    ce: u32,
    /// Modes 2/3 while running: the count in effect (1..=modulus) and the
    /// number of ticks since the start of the current cycle (< cur).
    cur: u32,
    pos: u32,
    /// One-shot modes: whether reaching terminal count still changes OUT.
    armed: bool,
    out: bool,
    gate: bool,
    /// Rising edges of OUT not yet collected.
    rising: u64,
    write_msb_next: bool,
    lsb_written: u8,
    read_msb_next: bool,
    latched: Option<u16>,
    status: Option<u8>,
}

impl Channel {
    fn new(gate: bool) -> Self {
        // Power-on contents are undefined; an unprogrammed, silent counter
        // (mode 3 waiting for a count, OUT high) keeps IRQ0 quiet until the
        // firmware sets it up.
        Channel {
            ctrl: 0x36,
            cr: 0,
            null_count: true,
            state: State::Idle,
            ce: 0,
            cur: 1,
            pos: 0,
            armed: false,
            out: true,
            gate,
            rising: 0,
            write_msb_next: false,
            lsb_written: 0,
            read_msb_next: false,
            latched: None,
            status: None,
        }
    }

    fn mode(&self) -> u8 {
        // Modes 6 and 7 are aliases of 2 and 3 (the top bit is don't-care).
        let m = (self.ctrl >> 1) & 7;
        if m >= 6 {
            m - 4
        } else {
            m
        }
    }

    fn rw(&self) -> u8 {
        (self.ctrl >> 4) & 3
    }

    fn bcd(&self) -> bool {
        self.ctrl & 1 != 0
    }

    fn modulus(&self) -> u32 {
        if self.bcd() {
            10_000
        } else {
            65_536
        }
    }

    /// The count register as a number of ticks; zero stands for the full range.
    fn initial(&self) -> u32 {
        let v = if self.bcd() {
            bcd_to_bin(self.cr)
        } else {
            self.cr as u32
        };
        if v == 0 {
            self.modulus()
        } else {
            v
        }
    }

    fn set_out(&mut self, v: bool) {
        if v && !self.out {
            self.rising = self.rising.saturating_add(1);
        }
        self.out = v;
    }

    fn is_periodic(&self) -> bool {
        matches!(self.mode(), 2 | 3)
    }

    fn counts_without_gate(&self) -> bool {
        matches!(self.mode(), 1 | 5)
    }

    /// Current value of the counting element, as a number.
    fn count_value(&self) -> u32 {
        let v = if self.state == State::Run && self.is_periodic() {
            if self.mode() == 2 {
                self.cur - self.pos
            } else {
                // Mode 3 counts down by two from the even part of the count,
                // restarting at each half cycle.
                let even = self.cur & !1;
                let hh = self.cur.div_ceil(2);
                if self.pos < hh {
                    even - 2 * self.pos
                } else {
                    even - 2 * (self.pos - hh)
                }
            }
        } else {
            self.ce
        };
        v % self.modulus()
    }

    fn encoded_count(&self) -> u16 {
        let v = self.count_value();
        if self.bcd() {
            bin_to_bcd(v)
        } else {
            v as u16
        }
    }

    fn status_byte(&self) -> u8 {
        (self.out as u8) << 7 | (self.null_count as u8) << 6 | self.ctrl
    }

    /// Pins the counting element in `ce` before leaving the running
    /// periodic representation, so reads stay continuous.
    fn freeze(&mut self) {
        self.ce = self.count_value();
    }

    fn load(&mut self) {
        self.null_count = false;
        self.state = State::Run;
        if self.is_periodic() {
            self.cur = self.initial();
            self.pos = 0;
            self.set_out(true);
        } else {
            self.ce = self.initial() % self.modulus();
            self.armed = true;
            if self.mode() == 1 {
                self.set_out(false);
            }
        }
    }

    fn reload_periodic(&mut self) {
        self.cur = self.initial();
        self.null_count = false;
        self.pos = 0;
    }

    /// Applies `d` input clock ticks with the gate held at its current level.
    fn run(&mut self, mut d: u64) {
        if d == 0 {
            return;
        }
        // The strobe of modes 4/5 lasts one clock, whatever else happens.
        if matches!(self.mode(), 4 | 5) && !self.out {
            self.set_out(true);
        }
        match self.state {
            State::Idle | State::WaitGate => return,
            State::Load => {
                self.load();
                d -= 1;
                if d == 0 {
                    return;
                }
            }
            State::Run => {}
        }
        match self.mode() {
            2 => self.run_mode2(d),
            3 => self.run_mode3(d),
            mode => {
                if !self.gate && !self.counts_without_gate() {
                    return;
                }
                let m = self.modulus() as u64;
                let to_tc = if self.ce == 0 { m } else { self.ce as u64 };
                if self.armed && d >= to_tc {
                    self.armed = false;
                    if mode <= 1 {
                        self.set_out(true);
                    } else if d > to_tc {
                        // The one-clock strobe started and ended inside this span.
                        self.rising = self.rising.saturating_add(1);
                    } else {
                        self.out = false;
                    }
                }
                self.ce = ((self.ce as u64 + m - d % m) % m) as u32;
            }
        }
    }

    fn run_mode2(&mut self, d: u64) {
        if !self.gate {
            return;
        }
        let n = self.cur as u64;
        let to_reload = n - self.pos as u64;
        if d < to_reload {
            self.pos += d as u32;
        } else {
            // OUT was low for the last clock of the cycle if the count allows one.
            if n >= 2 {
                self.rising = self.rising.saturating_add(1);
            }
            self.reload_periodic();
            let rest = d - to_reload;
            let n2 = self.cur as u64;
            if n2 >= 2 {
                self.rising = self.rising.saturating_add(rest / n2);
            }
            self.pos = (rest % n2) as u32;
        }
        self.out = !(self.cur >= 2 && self.pos == self.cur - 1);
    }

    fn run_mode3(&mut self, mut d: u64) {
        if !self.gate {
            return;
        }
        while d > 0 {
            let n = self.cur;
            if n == 1 {
                // A count of one has no low half: every clock ends a cycle.
                self.reload_periodic();
                d -= 1;
                if self.cur == 1 {
                    break;
                }
                continue;
            }
            let hh = n.div_ceil(2);
            if self.pos < hh {
                let r = (hh - self.pos) as u64;
                if d < r {
                    self.pos += d as u32;
                    break;
                }
                d -= r;
                // A count written meanwhile takes effect at the half-cycle end.
                let new = self.initial();
                self.null_count = false;
                self.cur = new;
                if new == 1 {
                    self.pos = 0;
                } else {
                    self.pos = new.div_ceil(2);
                    self.out = false;
                }
            } else {
                let r = (n - self.pos) as u64;
                if d < r {
                    self.pos += d as u32;
                    break;
                }
                d -= r;
                self.reload_periodic();
                self.set_out(true);
                let n2 = self.cur as u64;
                if n2 >= 2 {
                    let cycles = d / n2;
                    self.rising = self.rising.saturating_add(cycles);
                    d -= cycles * n2;
                }
            }
        }
        self.out = self.cur == 1 || self.pos < self.cur.div_ceil(2);
    }

    /// Ticks from now until OUT next changes level, if it ever will with
    /// the current gate level and count register.
    fn next_change(&self) -> Option<u64> {
        match self.state {
            State::Idle | State::WaitGate => None,
            State::Load => {
                let mut after = self.clone();
                after.run(1);
                if after.out != self.out {
                    Some(1)
                } else {
                    after.next_change().map(|k| k + 1)
                }
            }
            State::Run => match self.mode() {
                2 => {
                    if !self.gate {
                        return None;
                    }
                    if self.cur >= 2 {
                        Some((self.cur - 1 - self.pos).max(1) as u64)
                    } else {
                        let n2 = self.initial();
                        (n2 >= 2).then_some(n2 as u64)
                    }
                }
                3 => {
                    if !self.gate {
                        return None;
                    }
                    let n = self.cur;
                    let hh = n.div_ceil(2);
                    if n == 1 {
                        let n2 = self.initial();
                        (n2 >= 2).then(|| 1 + n2.div_ceil(2) as u64)
                    } else if self.pos < hh {
                        (self.initial() >= 2).then_some((hh - self.pos) as u64)
                    } else {
                        Some((n - self.pos) as u64)
                    }
                }
                mode => {
                    if mode >= 4 && !self.out {
                        return Some(1);
                    }
                    if self.armed && (self.gate || self.counts_without_gate()) {
                        let m = self.modulus() as u64;
                        Some(if self.ce == 0 { m } else { self.ce as u64 })
                    } else {
                        None
                    }
                }
            },
        }
    }

    fn set_gate(&mut self, level: bool) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        if !level {
            if self.is_periodic() {
                self.set_out(true);
            }
            return;
        }
        // Rising edge: a trigger for 1/5, a restart for 2/3 (once a count exists).
        if matches!(self.mode(), 1 | 2 | 3 | 5) && self.state != State::Idle {
            self.freeze();
            self.state = State::Load;
        }
    }

    fn control(&mut self, v: u8) {
        if v & 0x30 == 0 {
            self.latch_count();
            return;
        }
        self.freeze();
        self.ctrl = v & 0x3f;
        self.ce %= self.modulus();
        self.state = State::Idle;
        self.null_count = true;
        self.armed = false;
        self.write_msb_next = false;
        self.read_msb_next = false;
        self.latched = None;
        self.status = None;
        self.set_out(self.mode() != 0);
    }

    fn latch_count(&mut self) {
        if self.latched.is_none() {
            self.latched = Some(self.encoded_count());
        }
    }

    fn latch_status(&mut self) {
        if self.status.is_none() {
            self.status = Some(self.status_byte());
        }
    }

    fn count_written(&mut self) {
        self.null_count = true;
        match self.mode() {
            0 => {
                self.set_out(false);
                self.freeze();
                self.state = State::Load;
            }
            4 => {
                self.freeze();
                self.state = State::Load;
            }
            1 | 5 => {
                if self.state == State::Idle {
                    self.state = State::WaitGate;
                }
            }
            _ => {
                // While running, the new count waits for the next reload.
                if self.state == State::Idle {
                    self.state = State::Load;
                }
            }
        }
    }

    fn write_count(&mut self, v: u8) {
        match self.rw() {
            1 => {
                self.cr = v as u16;
                self.count_written();
            }
            2 => {
                self.cr = (v as u16) << 8;
                self.count_written();
            }
            _ => {
                if self.write_msb_next {
                    self.write_msb_next = false;
                    self.cr = u16::from_le_bytes([self.lsb_written, v]);
                    self.count_written();
                } else {
                    self.write_msb_next = true;
                    self.lsb_written = v;
                    // Mode 0 stops counting as soon as a new count begins.
                    if self.mode() == 0 {
                        self.freeze();
                        self.state = State::Idle;
                        self.set_out(false);
                    }
                }
            }
        }
    }

    fn read_count(&mut self) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        let latched = self.latched.is_some();
        let value = self.latched.unwrap_or_else(|| self.encoded_count());
        let msb = match self.rw() {
            1 => false,
            2 => true,
            _ => {
                self.read_msb_next = !self.read_msb_next;
                !self.read_msb_next
            }
        };
        // A latch holds until every byte of it has been read.
        if latched && (msb || self.rw() == 1) {
            self.latched = None;
        }
        if msb {
            (value >> 8) as u8
        } else {
            value as u8
        }
    }
}

/// The 8254 PIT with port 0x61.
#[derive(Clone, Debug)]
pub struct Pit {
    ch: [Channel; 3],
    /// Input clock ticks elapsed at the last `advance`.
    ticks: u64,
    now: u64,
    /// Writable bits of port 0x61 (gate 2, speaker data, parity/IOCHK enables).
    port61: u8,
}

impl Pit {
    pub fn new() -> Self {
        Pit {
            ch: [Channel::new(true), Channel::new(true), Channel::new(false)],
            ticks: 0,
            now: 0,
            port61: 0,
        }
    }

    /// Brings the counters up to virtual time `now` (ns, monotonic).
    pub fn advance(&mut self, now: u64) {
        if now <= self.now {
            return;
        }
        let t = ticks_at(now);
        let d = t - self.ticks;
        for c in &mut self.ch {
            c.run(d);
        }
        self.ticks = t;
        self.now = now;
    }

    /// Next virtual time (ns) at which channel 0's OUT changes level.
    pub fn next_deadline(&self) -> Option<u64> {
        self.ch[0]
            .next_change()
            .map(|k| time_of_tick(self.ticks.saturating_add(k)))
    }

    /// OUT pin of channel `ch` at the last `advance` (false for no such channel).
    pub fn out(&self, ch: usize) -> bool {
        self.ch.get(ch).is_some_and(|c| c.out)
    }

    /// Rising edges of OUT0 since the last call.
    pub fn take_irq0_edges(&mut self) -> u32 {
        let n = std::mem::take(&mut self.ch[0].rising);
        n.min(u32::MAX as u64) as u32
    }

    /// True while channel 2 drives a tone into the speaker.
    pub fn speaker_on(&self) -> bool {
        let c = &self.ch[2];
        self.port61 & 3 == 3
            && c.is_periodic()
            && matches!(c.state, State::Load | State::Run)
            && c.next_change().is_some()
    }

    fn read_port61(&self) -> u8 {
        let refresh = (self.now / REFRESH_TOGGLE_NS) & 1 == 1;
        self.port61 | (refresh as u8) << 4 | (self.ch[2].out as u8) << 5
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            0x40..=0x42 => self.ch[(port - 0x40) as usize].read_count(),
            0x61 => self.read_port61(),
            // The control register is write-only; nothing drives the bus.
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            0x40..=0x42 => self.ch[(port - 0x40) as usize].write_count(v),
            0x43 => {
                let sel = (v >> 6) as usize;
                if sel < 3 {
                    self.ch[sel].control(v);
                    return;
                }
                // Read-back: bits 1-3 select counters; bit 5 / bit 4 clear
                // mean latch count / latch status.
                for (i, c) in self.ch.iter_mut().enumerate() {
                    if v & (2 << i) == 0 {
                        continue;
                    }
                    if v & 0x20 == 0 {
                        c.latch_count();
                    }
                    if v & 0x10 == 0 {
                        c.latch_status();
                    }
                }
            }
            0x61 => {
                // Bits 4-7 are status inputs on an AT; writes to them are lost.
                self.port61 = v & 0x0f;
                self.ch[2].set_gate(v & 1 != 0);
            }
            _ => {}
        }
    }
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl PortDevice for Pit {
    /// Wider accesses split into byte cycles on consecutive ports, as an
    /// 8-bit ISA device sees them.
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let n = match size {
            1 => 1,
            2 => 2,
            _ => 4,
        };
        (0..n).fold(0u32, |acc, i| {
            acc | (self.read_byte(port.wrapping_add(i)) as u32) << (8 * i)
        })
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        let n = match size {
            1 => 1,
            2 => 2,
            _ => 4,
        };
        for i in 0..n {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time (ns) of input tick `t`.
    fn at(t: u64) -> u64 {
        time_of_tick(t)
    }

    fn wr(p: &mut Pit, port: u16, v: u8) {
        p.write(port, 1, v as u32);
    }

    fn rd(p: &mut Pit, port: u16) -> u8 {
        p.read(port, 1) as u8
    }

    /// Live 16-bit read in lo/hi access mode.
    fn read16(p: &mut Pit, port: u16) -> u16 {
        let lo = rd(p, port);
        let hi = rd(p, port);
        u16::from_le_bytes([lo, hi])
    }

    /// Programs channel `ch` with `mode`, lo/hi access, binary, `count`.
    fn program(p: &mut Pit, ch: u8, mode: u8, count: u16) {
        wr(p, 0x43, ch << 6 | 0x30 | mode << 1);
        wr(p, 0x40 + ch as u16, count as u8);
        wr(p, 0x40 + ch as u16, (count >> 8) as u8);
    }

    /// OUT of `ch` at each of ticks `from..=to`.
    fn waveform(p: &mut Pit, ch: usize, from: u64, to: u64) -> Vec<bool> {
        (from..=to)
            .map(|t| {
                p.advance(at(t));
                p.out(ch)
            })
            .collect()
    }

    fn bits(s: &str) -> Vec<bool> {
        s.bytes().map(|b| b == b'1').collect()
    }

    #[test]
    fn tick_conversion_is_exact_and_inverse() {
        assert_eq!(ticks_at(0), 0);
        assert_eq!(ticks_at(1_000_000_000), PIT_HZ);
        assert_eq!(ticks_at(3_600_000_000_000), 3600 * PIT_HZ);
        for t in [1u64, 2, 3, 1000, 65_536, 1_193_181, 1_193_183, 1 << 40] {
            assert_eq!(ticks_at(at(t)), t);
            assert_eq!(ticks_at(at(t) - 1), t - 1);
        }
        assert_eq!(at(1), 839); // 838.095... ns, rounded up
    }

    #[test]
    fn mode0_out_rises_n_plus_one_ticks_after_write() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 10);
        assert!(!p.out(0));
        assert_eq!(p.next_deadline(), Some(at(11)));
        p.advance(at(10));
        assert!(!p.out(0));
        assert_eq!(p.take_irq0_edges(), 0);
        p.advance(at(11));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
        // Terminal count happens once; the counter wraps and OUT stays high.
        assert_eq!(p.next_deadline(), None);
        p.advance(at(11 + 200_000));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 0);
    }

    #[test]
    fn mode0_counter_reads_follow_ticks_and_wrap() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 10);
        p.advance(at(1));
        assert_eq!(read16(&mut p, 0x40), 10); // load clock does not decrement
        p.advance(at(5));
        assert_eq!(read16(&mut p, 0x40), 6);
        p.advance(at(11));
        assert_eq!(read16(&mut p, 0x40), 0);
        p.advance(at(12));
        assert_eq!(read16(&mut p, 0x40), 0xffff);
        // Between ticks the count holds.
        p.advance(at(13) - 1);
        assert_eq!(read16(&mut p, 0x40), 0xffff);
    }

    #[test]
    fn mode0_rewrite_stops_on_first_byte_and_restarts() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 5);
        p.advance(at(6));
        assert!(p.out(0));
        p.take_irq0_edges();
        // First byte: counting stops and OUT drops.
        wr(&mut p, 0x40, 3);
        assert!(!p.out(0));
        assert_eq!(p.next_deadline(), None);
        // Counting stays stopped (the counter sat at 0 after terminal count).
        p.advance(at(20));
        assert_eq!(read16(&mut p, 0x40), 0);
        assert!(!p.out(0));
        wr(&mut p, 0x40, 0);
        // Second byte completed the count 3 (lo 3, hi 0): loads at tick 21.
        assert_eq!(p.next_deadline(), Some(at(24)));
        p.advance(at(24));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
    }

    #[test]
    fn mode0_count_zero_is_65536() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 0);
        assert_eq!(p.next_deadline(), Some(at(65_537)));
        p.advance(at(1));
        assert_eq!(read16(&mut p, 0x40), 0);
        p.advance(at(2));
        assert_eq!(read16(&mut p, 0x40), 0xffff);
        p.advance(at(65_536));
        assert!(!p.out(0));
        p.advance(at(65_537));
        assert!(p.out(0));
    }

    #[test]
    fn mode0_gate_low_pauses_channel2() {
        let mut p = Pit::new();
        wr(&mut p, 0x61, 1);
        program(&mut p, 2, 0, 10);
        p.advance(at(4)); // loaded at 1, decremented at 2..=4
        assert_eq!(read16(&mut p, 0x42), 7);
        wr(&mut p, 0x61, 0);
        p.advance(at(100));
        assert_eq!(read16(&mut p, 0x42), 7);
        assert!(!p.out(2));
        wr(&mut p, 0x61, 1);
        p.advance(at(106));
        assert!(!p.out(2));
        assert_eq!(rd(&mut p, 0x61) & 0x20, 0);
        p.advance(at(107));
        assert!(p.out(2));
        assert_eq!(rd(&mut p, 0x61) & 0x20, 0x20);
    }

    #[test]
    fn linux_style_tsc_calibration_sees_out2_at_exact_time() {
        // Gate on, speaker off, mode 0 lo/hi binary, latch = 11932 (10 ms).
        let mut p = Pit::new();
        let v = rd(&mut p, 0x61);
        wr(&mut p, 0x61, (v & !0x02) | 0x01);
        wr(&mut p, 0x43, 0xb0);
        wr(&mut p, 0x42, (11_932u16 & 0xff) as u8);
        wr(&mut p, 0x42, (11_932u16 >> 8) as u8);
        let mut now = 0;
        while rd(&mut p, 0x61) & 0x20 == 0 {
            now += 100;
            p.advance(now);
        }
        assert_eq!(ticks_at(now), 11_933);
        assert!(now >= at(11_933) && now < at(11_933) + 100);
    }

    #[test]
    fn mode1_one_shot_triggered_and_retriggered_by_gate2() {
        let mut p = Pit::new();
        program(&mut p, 2, 1, 3);
        assert!(p.out(2));
        p.advance(at(10));
        assert!(p.out(2)); // no trigger yet
        wr(&mut p, 0x61, 1); // trigger between ticks 10 and 11
        assert_eq!(waveform(&mut p, 2, 11, 15), bits("00011"));
        // Retrigger while low extends the pulse.
        wr(&mut p, 0x61, 0);
        wr(&mut p, 0x61, 1); // at tick 15, load at 16 → high at 19
        assert_eq!(waveform(&mut p, 2, 16, 20), bits("00011"));
        wr(&mut p, 0x61, 0);
        p.advance(at(21));
        wr(&mut p, 0x61, 1);
        p.advance(at(22));
        assert!(!p.out(2));
        p.advance(at(23));
        wr(&mut p, 0x61, 0);
        wr(&mut p, 0x61, 1); // retrigger at 23
        assert_eq!(waveform(&mut p, 2, 24, 28), bits("00011"));
    }

    #[test]
    fn mode2_rate_generator_waveform_and_counts() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 4);
        assert!(p.out(0));
        assert_eq!(waveform(&mut p, 0, 1, 13), bits("1110111011101"));
        assert_eq!(p.take_irq0_edges(), 3); // rising at 5, 9, 13
        let mut p = Pit::new();
        program(&mut p, 0, 2, 4);
        let counts: Vec<u16> = (1..=6)
            .map(|t| {
                p.advance(at(t));
                read16(&mut p, 0x40)
            })
            .collect();
        assert_eq!(counts, [4, 3, 2, 1, 4, 3]);
    }

    #[test]
    fn mode2_deadlines_and_skipped_periods() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 4);
        assert_eq!(p.next_deadline(), Some(at(4)));
        p.advance(at(4));
        assert_eq!(p.next_deadline(), Some(at(5)));
        p.advance(at(5));
        assert_eq!(p.next_deadline(), Some(at(8)));
        assert_eq!(p.take_irq0_edges(), 1);
        // Rising edges at 9, 13, ..., 4001: 999 of them.
        p.advance(at(4001));
        assert_eq!(p.take_irq0_edges(), 999);
        assert_eq!(p.take_irq0_edges(), 0);
        // 18.2 Hz with count 0: one edge per 65536 ticks over an hour.
        let mut p = Pit::new();
        program(&mut p, 0, 2, 0);
        p.advance(3_600_000_000_000);
        assert_eq!(p.take_irq0_edges() as u64, (3600 * PIT_HZ - 1 + 1) / 65_536);
    }

    #[test]
    fn mode2_new_count_takes_effect_at_reload() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 4);
        p.advance(at(2));
        wr(&mut p, 0x40, 6);
        wr(&mut p, 0x40, 0);
        // Current cycle finishes with 4: low at 4, reload at 5 with 6.
        p.advance(at(4));
        assert!(!p.out(0));
        p.advance(at(5));
        assert_eq!(read16(&mut p, 0x40), 6);
        assert_eq!(waveform(&mut p, 0, 6, 11), bits("111101"));
    }

    #[test]
    fn mode2_gate_low_forces_out_high_and_rising_gate_reloads() {
        let mut p = Pit::new();
        wr(&mut p, 0x61, 1);
        program(&mut p, 2, 2, 4);
        p.advance(at(4));
        assert!(!p.out(2));
        wr(&mut p, 0x61, 0);
        assert!(p.out(2));
        p.advance(at(50));
        assert_eq!(read16(&mut p, 0x42), 1); // frozen
        wr(&mut p, 0x61, 1); // reload at tick 51
        assert_eq!(waveform(&mut p, 2, 51, 55), bits("11101"));
        p.advance(at(51) + 1);
    }

    #[test]
    fn mode3_even_and_odd_square_waves() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 4);
        assert_eq!(waveform(&mut p, 0, 1, 9), bits("110011001"));
        let mut p = Pit::new();
        program(&mut p, 0, 3, 5);
        assert_eq!(waveform(&mut p, 0, 1, 11), bits("11100111001"));
        assert_eq!(p.take_irq0_edges(), 2); // rising at 6 and 11
        let mut p = Pit::new();
        program(&mut p, 0, 3, 5);
        let counts: Vec<u16> = (1..=6)
            .map(|t| {
                p.advance(at(t));
                read16(&mut p, 0x40)
            })
            .collect();
        assert_eq!(counts, [4, 2, 0, 4, 2, 4]);
        let mut p = Pit::new();
        program(&mut p, 0, 3, 6);
        let counts: Vec<u16> = (1..=7)
            .map(|t| {
                p.advance(at(t));
                read16(&mut p, 0x40)
            })
            .collect();
        assert_eq!(counts, [6, 4, 2, 6, 4, 2, 6]);
    }

    #[test]
    fn mode3_deadlines_and_bios_rate() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 5);
        assert_eq!(p.next_deadline(), Some(at(4)));
        p.advance(at(4));
        assert_eq!(p.next_deadline(), Some(at(6)));
        // BIOS 18.2 Hz: 0x36 with count 0 → edges every 65536 ticks.
        let mut p = Pit::new();
        wr(&mut p, 0x43, 0x36);
        wr(&mut p, 0x40, 0);
        wr(&mut p, 0x40, 0);
        assert_eq!(p.next_deadline(), Some(at(1 + 32_768)));
        p.advance(at(1 + 65_536 * 100));
        assert_eq!(p.take_irq0_edges(), 100);
        assert_eq!(p.next_deadline(), Some(at(1 + 65_536 * 100 + 32_768)));
    }

    #[test]
    fn mode3_new_count_waits_for_half_cycle_end() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 8);
        p.advance(at(2));
        wr(&mut p, 0x40, 4);
        wr(&mut p, 0x40, 0);
        // The high half of 8 (ticks 1-4) finishes; the low half uses 4.
        assert_eq!(waveform(&mut p, 0, 3, 10), bits("11001100"));
    }

    #[test]
    fn mode3_gate2_and_speaker() {
        let mut p = Pit::new();
        program(&mut p, 2, 3, 4);
        assert!(!p.speaker_on());
        wr(&mut p, 0x61, 0x01);
        assert!(!p.speaker_on()); // speaker data disabled
        wr(&mut p, 0x61, 0x03);
        assert!(p.speaker_on());
        p.advance(at(3));
        assert!(!p.out(2));
        wr(&mut p, 0x61, 0x02); // gate low: OUT high, silent
        assert!(p.out(2));
        assert!(!p.speaker_on());
        wr(&mut p, 0x61, 0x03); // rising gate restarts at the next clock
        assert_eq!(waveform(&mut p, 2, 4, 8), bits("11001"));
        // Mode 0 never makes a tone.
        program(&mut p, 2, 0, 100);
        assert!(!p.speaker_on());
    }

    #[test]
    fn mode4_software_strobe() {
        let mut p = Pit::new();
        program(&mut p, 0, 4, 3);
        assert!(p.out(0));
        assert_eq!(p.next_deadline(), Some(at(4)));
        assert_eq!(waveform(&mut p, 0, 1, 6), bits("111011"));
        assert_eq!(p.take_irq0_edges(), 1);
        assert_eq!(p.next_deadline(), None);
        // A strobe skipped over entirely still counts as one edge.
        program(&mut p, 0, 4, 3);
        p.advance(at(100));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
    }

    #[test]
    fn mode5_hardware_strobe_on_gate2() {
        let mut p = Pit::new();
        program(&mut p, 2, 5, 2);
        p.advance(at(5));
        assert!(p.out(2));
        wr(&mut p, 0x61, 1); // trigger; load at 6, TC at 8
        assert_eq!(waveform(&mut p, 2, 6, 10), bits("11011"));
        wr(&mut p, 0x61, 0);
        wr(&mut p, 0x61, 1); // retrigger at 10
        assert_eq!(waveform(&mut p, 2, 11, 14), bits("1101"));
    }

    #[test]
    fn counter_latch_holds_value_until_read() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1000);
        p.advance(at(11)); // count 990
        wr(&mut p, 0x43, 0x00);
        p.advance(at(21));
        wr(&mut p, 0x43, 0x00); // ignored: already latched
        assert_eq!(read16(&mut p, 0x40), 990);
        assert_eq!(read16(&mut p, 0x40), 980); // live again
                                               // A latch read in two halves keeps its value across time.
        wr(&mut p, 0x43, 0x00);
        let lo = rd(&mut p, 0x40);
        p.advance(at(300));
        let hi = rd(&mut p, 0x40);
        assert_eq!(u16::from_le_bytes([lo, hi]), 980);
    }

    #[test]
    fn read_back_status_and_count() {
        let mut p = Pit::new();
        wr(&mut p, 0x43, 0x34); // ch0 mode 2 lo/hi binary
        wr(&mut p, 0x43, 0x7b); // ch1 mode 5 lo/hi BCD
        wr(&mut p, 0x43, 0x9c); // ch2 mode 6 (acts as 2, reported as 6), lsb only
                                // Status of all three: null count set, OUT high in these modes.
        wr(&mut p, 0x43, 0xee);
        assert_eq!(rd(&mut p, 0x40), 0x80 | 0x40 | 0x34);
        assert_eq!(rd(&mut p, 0x41), 0x80 | 0x40 | 0x3b);
        assert_eq!(rd(&mut p, 0x42), 0x80 | 0x40 | 0x1c);
        wr(&mut p, 0x40, 0x10);
        wr(&mut p, 0x40, 0x00);
        wr(&mut p, 0x43, 0xe2);
        assert_eq!(rd(&mut p, 0x40) & 0x40, 0x40); // not loaded yet
        p.advance(at(1));
        wr(&mut p, 0x43, 0xe2);
        assert_eq!(rd(&mut p, 0x40), 0x80 | 0x34); // null count cleared by the load
                                                   // Count and status together: status first, then the count.
        p.advance(at(16)); // pos 15 of 16: OUT low, count 1
        wr(&mut p, 0x43, 0xc2);
        p.advance(at(17));
        assert_eq!(rd(&mut p, 0x40), 0x34);
        assert_eq!(read16(&mut p, 0x40), 1);
        assert_eq!(read16(&mut p, 0x40), 16); // live after the latch was consumed
                                              // Count-only read-back for two channels.
        program(&mut p, 1, 0, 500);
        p.advance(at(100)); // ch1 loaded at 18 → 500 - 82
        wr(&mut p, 0x43, 0xd6);
        p.advance(at(200));
        assert_eq!(read16(&mut p, 0x41), 418);
        assert_eq!(read16(&mut p, 0x40), 16 - (99 % 16) as u16);
        // A control word drops a pending status latch of its channel only.
        wr(&mut p, 0x43, 0xe2);
        program(&mut p, 2, 1, 1);
        wr(&mut p, 0x43, 0x30);
        wr(&mut p, 0x43, 0xe2);
        assert_eq!(rd(&mut p, 0x40), 0x40 | 0x30);
    }

    #[test]
    fn status_latch_is_kept_until_read() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 4);
        p.advance(at(2));
        wr(&mut p, 0x43, 0xe2); // status: OUT high
        p.advance(at(4)); // OUT low now
        wr(&mut p, 0x43, 0xe2); // ignored
        assert_eq!(rd(&mut p, 0x40), 0x80 | 0x34);
        wr(&mut p, 0x43, 0xe2);
        assert_eq!(rd(&mut p, 0x40), 0x34);
        // With no status latched, reads return the count again.
        assert_eq!(read16(&mut p, 0x40), 1);
    }

    #[test]
    fn one_shot_new_count_waits_for_next_trigger() {
        let mut p = Pit::new();
        program(&mut p, 2, 1, 3);
        wr(&mut p, 0x61, 1); // trigger at 0: low 1..=3, high at 4
        p.advance(at(2));
        wr(&mut p, 0x42, 6);
        wr(&mut p, 0x42, 0);
        assert_eq!(waveform(&mut p, 2, 3, 5), bits("011"));
        wr(&mut p, 0x61, 0);
        wr(&mut p, 0x61, 1); // trigger at 5 with the new count 6
        assert_eq!(waveform(&mut p, 2, 6, 12), bits("0000001"));
    }

    #[test]
    fn access_modes_and_flip_flops() {
        let mut p = Pit::new();
        // LSB only: MSB becomes zero.
        wr(&mut p, 0x43, 0x10); // ch0 lsb, mode 0
        wr(&mut p, 0x40, 0x34);
        p.advance(at(1));
        assert_eq!(rd(&mut p, 0x40), 0x34);
        assert_eq!(rd(&mut p, 0x40), 0x34); // no flip-flop
        wr(&mut p, 0x43, 0x00);
        assert_eq!(rd(&mut p, 0x40), 0x34);
        // MSB only: LSB becomes zero.
        wr(&mut p, 0x43, 0x20);
        wr(&mut p, 0x40, 0x12);
        p.advance(at(2));
        assert_eq!(rd(&mut p, 0x40), 0x12);
        wr(&mut p, 0x43, 0x30);
        wr(&mut p, 0x40, 0x00);
        wr(&mut p, 0x40, 0x12);
        p.advance(at(3));
        assert_eq!(read16(&mut p, 0x40), 0x1200);
        // Reads and writes use separate flip-flops, so they may interleave.
        wr(&mut p, 0x43, 0x34);
        wr(&mut p, 0x40, 0x00);
        wr(&mut p, 0x40, 0x10); // 0x1000, load at 4
        p.advance(at(4));
        let lo = rd(&mut p, 0x40);
        wr(&mut p, 0x40, 0x00);
        let hi = rd(&mut p, 0x40);
        wr(&mut p, 0x40, 0x20);
        assert_eq!(u16::from_le_bytes([lo, hi]), 0x1000);
        // The new count 0x2000 arrives at the end of the 0x1000 cycle.
        p.advance(at(4 + 0x1000));
        assert_eq!(read16(&mut p, 0x40), 0x2000);
        // A control word resets both flip-flops.
        let _ = rd(&mut p, 0x40);
        wr(&mut p, 0x40, 0x77);
        wr(&mut p, 0x43, 0x30);
        wr(&mut p, 0x40, 0x05);
        wr(&mut p, 0x40, 0x00);
        assert_eq!(p.next_deadline(), Some(at(4 + 0x1000 + 6)));
    }

    #[test]
    fn bcd_counting() {
        let mut p = Pit::new();
        wr(&mut p, 0x43, 0x31); // ch0 mode 0 lo/hi BCD
        wr(&mut p, 0x40, 0x12);
        wr(&mut p, 0x40, 0x00); // 12 decimal
        assert_eq!(p.next_deadline(), Some(at(13)));
        p.advance(at(4));
        assert_eq!(read16(&mut p, 0x40), 0x0009);
        p.advance(at(13));
        assert_eq!(read16(&mut p, 0x40), 0x0000);
        p.advance(at(14));
        assert_eq!(read16(&mut p, 0x40), 0x9999);
        assert_eq!(p.take_irq0_edges(), 1);
        // Count 0 in BCD is 10000.
        wr(&mut p, 0x43, 0x35); // mode 2 BCD
        wr(&mut p, 0x40, 0);
        wr(&mut p, 0x40, 0);
        p.advance(at(15));
        assert_eq!(read16(&mut p, 0x40), 0x0000);
        p.advance(at(16));
        assert_eq!(read16(&mut p, 0x40), 0x9999);
        p.advance(at(15 + 10_000 * 7));
        assert_eq!(p.take_irq0_edges(), 7);
        // Bin/BCD helpers.
        assert_eq!(bcd_to_bin(0x9999), 9999);
        assert_eq!(bin_to_bcd(1234), 0x1234);
    }

    #[test]
    fn port61_bits() {
        let mut p = Pit::new();
        wr(&mut p, 0x61, 0xff);
        // Bits 0-3 read back, 6-7 (error status) read zero, 4/5 are inputs.
        p.advance(1);
        assert_eq!(rd(&mut p, 0x61) & 0xcf, 0x0f);
        wr(&mut p, 0x61, 0x0a);
        assert_eq!(rd(&mut p, 0x61) & 0xcf, 0x0a);
        // Refresh toggles every 15.085 us.
        p.advance(15_084);
        assert_eq!(rd(&mut p, 0x61) & 0x10, 0);
        p.advance(15_085);
        assert_eq!(rd(&mut p, 0x61) & 0x10, 0x10);
        p.advance(30_169);
        assert_eq!(rd(&mut p, 0x61) & 0x10, 0x10);
        p.advance(30_170);
        assert_eq!(rd(&mut p, 0x61) & 0x10, 0);
        // Bit 5 is OUT2 (mode 3 idle: high; mode 0 programmed: low).
        assert_eq!(rd(&mut p, 0x61) & 0x20, 0x20);
        wr(&mut p, 0x43, 0xb0);
        assert_eq!(rd(&mut p, 0x61) & 0x20, 0);
    }

    #[test]
    fn control_word_edges_and_irq_counting() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 100);
        assert_eq!(p.take_irq0_edges(), 0);
        // Leaving mode 0 before terminal count raises OUT0: a real edge.
        wr(&mut p, 0x43, 0x34);
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
        // Idle channel: nothing scheduled.
        assert_eq!(p.next_deadline(), None);
        assert_eq!(Pit::default().next_deadline(), None);
    }

    #[test]
    fn wide_accesses_split_into_bytes_and_odd_ports() {
        let mut p = Pit::new();
        wr(&mut p, 0x43, 0x34);
        // The high byte of a word write lands on port 0x41 (channel 1), so
        // channel 0 still waits for its MSB.
        p.write(0x40, 2, 0x0500);
        assert_eq!(p.next_deadline(), None);
        wr(&mut p, 0x40, 0x00);
        assert_eq!(p.next_deadline(), Some(at(0x10000)));
        wr(&mut p, 0x43, 0x74); // channel 1: mode 2, lo/hi
        wr(&mut p, 0x41, 0x34);
        wr(&mut p, 0x41, 0x12);
        p.advance(at(10));
        // Dword write to 0x42: byte 1 (0x00) reaches 0x43 as a latch of
        // channel 0; bytes for 0x44/0x45 go nowhere.
        wr(&mut p, 0x43, 0x80); // channel 2 lsb-only so its byte completes a count
        p.write(0x42, 4, 0xffff_0000);
        p.advance(at(20));
        assert_eq!(read16(&mut p, 0x40), 0x10000u32.wrapping_sub(9) as u16);
        // Word read of 0x40 returns channel 0's LSB and channel 1's LSB.
        let w = p.read(0x40, 2);
        assert_eq!(w & 0xff, (0x10000u32 - 19) & 0xff);
        assert_eq!(w >> 8, (0x1234 - 19) & 0xff);
        // Unhandled and write-only ports float high.
        assert_eq!(p.read(0x43, 1), 0xff);
        assert_eq!(p.read(0x44, 2), 0xffff);
        assert_eq!(p.read(0x43, 4) & 0xff, 0xff);
        assert!(!p.out(3));
    }

    #[test]
    fn fuzz_never_panics_and_is_deterministic() {
        fn run() -> Vec<u32> {
            let mut p = Pit::new();
            let mut seed = 0x1234_5678_9abc_def0u64;
            let mut now = 0u64;
            let mut log = Vec::new();
            for _ in 0..20_000 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let r = seed >> 16;
                now += r % 50_000;
                p.advance(now);
                let port = [0x40u16, 0x41, 0x42, 0x43, 0x61, 0x44][(r >> 20) as usize % 6];
                let size = [1u8, 2, 4, 3][(r >> 24) as usize % 4];
                if r & 1 == 0 {
                    p.write(port, size, (r >> 28) as u32);
                } else {
                    log.push(p.read(port, size));
                }
                log.push(p.take_irq0_edges());
                log.push(p.next_deadline().map_or(0, |d| {
                    assert!(d > now);
                    d as u32
                }));
                log.push(p.speaker_on() as u32);
            }
            log
        }
        assert_eq!(run(), run());
    }

    /// One channel stepped in one jump must match the same channel stepped
    /// one tick at a time, and `next_change` must predict the first tick at
    /// which single-stepping changes OUT.
    #[test]
    fn jumps_match_single_steps_in_every_mode() {
        let mut seed = 42u64;
        let mut rnd = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let mut a = Channel::new(true);
            for _ in 0..60 {
                match rnd(8) {
                    0 => {
                        let bcd = rnd(4) == 0;
                        a.control(0x30 | (rnd(8) as u8) << 1 | bcd as u8);
                    }
                    1 | 2 => {
                        let n = 1 + rnd(12) as u16;
                        let cr = if a.bcd() { bin_to_bcd(n as u32) } else { n };
                        a.write_count(cr as u8);
                        a.write_count((cr >> 8) as u8);
                    }
                    3 => a.set_gate(!a.gate),
                    _ => {
                        // Check the prediction, then compare a jump with steps.
                        let predicted = a.next_change();
                        let mut s = a.clone();
                        let mut first = None;
                        for k in 1..=64 {
                            let before = s.out;
                            s.run(1);
                            if s.out != before {
                                first = Some(k);
                                break;
                            }
                        }
                        assert_eq!(predicted, first, "{a:?}");
                        let d = rnd(40);
                        let mut b = a.clone();
                        a.run(d);
                        for _ in 0..d {
                            b.run(1);
                        }
                        assert_eq!(a.out, b.out, "{a:?} {b:?}");
                        assert_eq!(a.rising, b.rising, "{a:?} {b:?}");
                        assert_eq!(a.count_value(), b.count_value(), "{a:?} {b:?}");
                        assert_eq!(a.null_count, b.null_count);
                        assert_eq!(a.state, b.state);
                    }
                }
            }
        }
    }
}
