//! The one virtual clock every timed device and the TSC read.
//!
//! Deterministic mode derives time from instructions retired (plus the time
//! HLT skipped), so two runs of the same guest see identical time and give
//! identical output. Realtime mode follows the host's monotonic clock.

use std::time::{Duration, Instant};

/// Nanoseconds of virtual time per instruction in deterministic mode: a
/// 1000-MIPS processor whose TSC ticks once per nanosecond.
pub const NS_PER_INSN: u64 = 1;

/// Virtual time one port access takes in deterministic mode: an ISA bus
/// cycle is about a microsecond, and guests rely on it (Linux reads the PIT
/// once "to delay for a microsecond" before its fast TSC calibration).
pub const NS_PER_PORT_ACCESS: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    Deterministic,
    Realtime,
}

pub struct Clock {
    mode: ClockMode,
    /// Virtual time added by HLT skipping ahead (deterministic mode).
    skipped: u64,
    start: Instant,
    /// Time never runs backwards, whatever the host clock does.
    last: u64,
}

impl Clock {
    pub fn new(mode: ClockMode) -> Self {
        Clock {
            mode,
            skipped: 0,
            start: Instant::now(),
            last: 0,
        }
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Virtual time in ns when `icount` instructions have retired.
    #[inline]
    pub fn now(&mut self, icount: u64) -> u64 {
        let t = match self.mode {
            ClockMode::Deterministic => icount * NS_PER_INSN + self.skipped,
            ClockMode::Realtime => self.start.elapsed().as_nanos() as u64,
        };
        self.last = self.last.max(t);
        self.last
    }

    /// A port access happened: in deterministic mode it takes bus time.
    #[inline]
    pub fn charge_port_access(&mut self) {
        if self.mode == ClockMode::Deterministic {
            self.skipped += NS_PER_PORT_ACCESS;
        }
    }

    /// Let time pass with the CPU halted until `deadline` (or `max_wait` of
    /// host time in realtime mode, so host input is still noticed).
    pub fn idle_until(&mut self, icount: u64, deadline: u64, max_wait: Duration) {
        let now = self.now(icount);
        if deadline <= now {
            return;
        }
        match self.mode {
            ClockMode::Deterministic => self.skipped += deadline - now,
            ClockMode::Realtime => {
                std::thread::sleep(Duration::from_nanos(deadline - now).min(max_wait))
            }
        }
    }

    /// Instructions to run before `deadline` is due (at least 1).
    pub fn budget_until(&mut self, icount: u64, deadline: u64) -> u64 {
        let now = self.now(icount);
        let ns = deadline.saturating_sub(now);
        match self.mode {
            ClockMode::Deterministic => ns.div_ceil(NS_PER_INSN).max(1),
            // Roughly 100 instructions per microsecond; time is re-read after.
            ClockMode::Realtime => (ns / 10).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_time_is_instructions_plus_skips() {
        let mut c = Clock::new(ClockMode::Deterministic);
        assert_eq!(c.now(1000), 1000 * NS_PER_INSN);
        c.idle_until(1000, 50_000, Duration::ZERO);
        assert_eq!(c.now(1000), 50_000);
        assert_eq!(c.now(1010), 50_000 + 10 * NS_PER_INSN);
        assert_eq!(c.budget_until(1010, 50_000 + 110 * NS_PER_INSN), 100);
        // A deadline already passed still runs one instruction.
        assert_eq!(c.budget_until(1010, 0), 1);
        c.charge_port_access();
        assert_eq!(c.now(1010), 50_000 + 10 * NS_PER_INSN + NS_PER_PORT_ACCESS);
    }

    #[test]
    fn realtime_never_runs_backwards() {
        let mut c = Clock::new(ClockMode::Realtime);
        let a = c.now(0);
        let b = c.now(0);
        assert!(b >= a);
        c.idle_until(0, a + 2_000_000, Duration::from_millis(1));
        assert!(c.now(0) >= a + 1_000_000);
    }
}
