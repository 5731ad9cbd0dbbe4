//! 16550A UART, as found at COM1-COM4 on a PC.
//!
//! The board routes the eight ports base..base+7 to one instance and passes
//! the full port number; the register is `port & 7`.
//!
//! Transmission takes no virtual time: a byte written to THR leaves through
//! the shift register at once, so THRE and TEMT always read as set and the
//! THR-empty interrupt comes back as soon as it is cleared by a THR write.
//! That keeps runs deterministic and fast. Only the receiver's character
//! timeout needs time, measured in character times derived from the divisor
//! (10 bits per character at 115200/divisor baud).
//!
//! Characters are kept as whole bytes whatever word length LCR selects:
//! guests that write THR without programming LCR (reset value: 5 bits)
//! still print readable text, as on other emulators.
//!
//! Input from the host is always well formed, so parity and framing errors
//! never occur; a host-side break can be injected with [`Uart::push_break`].

use std::collections::VecDeque;

use crate::{ones, PortDevice};

const RX_FIFO_LEN: usize = 16;

// Register offsets.
const REG_DATA: u8 = 0; // RBR / THR, or DLL with DLAB
const REG_IER: u8 = 1; // or DLM with DLAB
const REG_IIR_FCR: u8 = 2;
const REG_LCR: u8 = 3;
const REG_MCR: u8 = 4;
const REG_LSR: u8 = 5;
const REG_MSR: u8 = 6;
const REG_SCR: u8 = 7;

const IER_RDA: u8 = 0x01;
const IER_THRE: u8 = 0x02;
const IER_RLS: u8 = 0x04;
const IER_MSI: u8 = 0x08;

const IIR_NONE: u8 = 0x01;
const IIR_MSI: u8 = 0x00;
const IIR_THRE: u8 = 0x02;
const IIR_RDA: u8 = 0x04;
const IIR_RLS: u8 = 0x06;
const IIR_TIMEOUT: u8 = 0x0c;
const IIR_FIFO_ON: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_RX_RESET: u8 = 0x02;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
const LSR_FIFO_ERR: u8 = 0x80;

const MSR_DCTS: u8 = 0x01;
const MSR_DDSR: u8 = 0x02;
const MSR_TERI: u8 = 0x04;
const MSR_DDCD: u8 = 0x08;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;

/// A connected terminal holds CTS, DSR and DCD asserted and never rings.
const MSR_LINES_CONNECTED: u8 = MSR_CTS | MSR_DSR | MSR_DCD;

/// Base clock of a PC UART divided by 16: the baud rate at divisor 1.
const BAUD_BASE: u64 = 115_200;
const BITS_PER_CHAR: u64 = 10;
const TIMEOUT_CHARS: u64 = 4;

/// 9600 baud: what most firmware programs anyway; the chip's real reset
/// value is undefined.
const RESET_DIVISOR: u16 = 12;

#[derive(Clone, Copy, Debug)]
struct RxChar {
    byte: u8,
    /// Received as a break. Cleared once LSR has reported it, so LSR bit 7
    /// only reflects errors the CPU has not yet seen.
    brk: bool,
}

#[derive(Debug)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    divisor: u16,
    fifo_enabled: bool,
    rx_trigger: usize,
    rx: VecDeque<RxChar>,
    /// RBR keeps the last character after it was read.
    rbr: u8,
    overrun: bool,
    /// LSR.BI, latched when a break character reaches the top of the FIFO.
    break_seen: bool,
    thre_pending: bool,
    timeout_pending: bool,
    /// Virtual time of the last character into or out of the RX FIFO.
    rx_activity: u64,
    now: u64,
    msr_delta: u8,
    output: Vec<u8>,
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart {
    pub fn new() -> Self {
        Uart {
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            divisor: RESET_DIVISOR,
            fifo_enabled: false,
            rx_trigger: 1,
            rx: VecDeque::with_capacity(RX_FIFO_LEN),
            rbr: 0,
            overrun: false,
            break_seen: false,
            thre_pending: false,
            timeout_pending: false,
            rx_activity: 0,
            now: 0,
            msr_delta: 0,
            output: Vec::new(),
        }
    }

    /// Brings the receiver's character timeout up to virtual time `now`.
    /// Host input pushed afterwards is stamped with this time.
    pub fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        if let Some(deadline) = self.next_deadline() {
            if self.now >= deadline {
                self.timeout_pending = true;
            }
        }
    }

    /// When the character timeout would fire, if it is armed: only in FIFO
    /// mode, with data below the trigger level and no timeout yet pending.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.fifo_enabled || self.rx.is_empty() || self.timeout_pending || self.rx_ready() {
            return None;
        }
        Some(self.rx_activity.saturating_add(self.timeout_ns()))
    }

    /// The INTRPT pin reaches the PIC only through the buffer OUT2 enables.
    /// In loopback the OUT pins are forced inactive, so the line stays low.
    pub fn irq_level(&self) -> bool {
        self.mcr & MCR_OUT2 != 0 && self.mcr & MCR_LOOP == 0 && self.pending_source().is_some()
    }

    /// Bytes the guest transmitted (not in loopback) since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// How many bytes `push_input` can take now without overrun. Zero in
    /// loopback, where the serial input is disconnected, so the board keeps
    /// host input until the guest leaves loopback.
    pub fn rx_space(&self) -> usize {
        if self.loopback() {
            0
        } else {
            self.rx_capacity().saturating_sub(self.rx.len())
        }
    }

    /// Host → guest. Bytes beyond the FIFO set OE; in loopback the serial
    /// input is disconnected and bytes are dropped.
    pub fn push_input(&mut self, bytes: &[u8]) {
        if self.loopback() {
            return;
        }
        for &b in bytes {
            self.receive(b, false);
        }
    }

    /// Host → guest break condition: one all-zero character flagged BI.
    pub fn push_break(&mut self) {
        if !self.loopback() {
            self.receive(0, true);
        }
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled {
            RX_FIFO_LEN
        } else {
            1
        }
    }

    fn timeout_ns(&self) -> u64 {
        let div = if self.divisor == 0 {
            // A zero divisor lets the counter wrap: the slowest rate.
            0x1_0000
        } else {
            u64::from(self.divisor)
        };
        TIMEOUT_CHARS * BITS_PER_CHAR * div * 1_000_000_000 / BAUD_BASE
    }

    fn receive(&mut self, byte: u8, brk: bool) {
        if self.rx.len() >= self.rx_capacity() {
            self.overrun = true;
            if self.fifo_enabled {
                // The character stays in the shift register and is
                // overwritten by the next one: it never reaches the FIFO.
                return;
            }
            // Without FIFO the new character replaces the unread one.
            self.rx.clear();
        }
        if self.rx.is_empty() && brk {
            self.break_seen = true;
        }
        self.rx.push_back(RxChar { byte, brk });
        if !self.timeout_pending {
            self.rx_activity = self.now;
        }
    }

    /// Data-available condition: trigger level reached in FIFO mode, any
    /// character otherwise.
    fn rx_ready(&self) -> bool {
        if self.fifo_enabled {
            self.rx.len() >= self.rx_trigger
        } else {
            !self.rx.is_empty()
        }
    }

    fn lsr_errors(&self) -> bool {
        self.overrun || self.break_seen
    }

    fn pending_source(&self) -> Option<u8> {
        if self.ier & IER_RLS != 0 && self.lsr_errors() {
            return Some(IIR_RLS);
        }
        if self.ier & IER_RDA != 0 {
            if self.rx_ready() {
                return Some(IIR_RDA);
            }
            if self.timeout_pending && !self.rx.is_empty() {
                return Some(IIR_TIMEOUT);
            }
        }
        if self.ier & IER_THRE != 0 && self.thre_pending {
            return Some(IIR_THRE);
        }
        if self.ier & IER_MSI != 0 && self.msr_delta != 0 {
            return Some(IIR_MSI);
        }
        None
    }

    /// Current state of the four modem status inputs (MSR bits 7:4).
    fn modem_lines(&self) -> u8 {
        if !self.loopback() {
            return MSR_LINES_CONNECTED;
        }
        let mut lines = 0;
        if self.mcr & MCR_RTS != 0 {
            lines |= MSR_CTS;
        }
        if self.mcr & MCR_DTR != 0 {
            lines |= MSR_DSR;
        }
        if self.mcr & MCR_OUT1 != 0 {
            lines |= MSR_RI;
        }
        if self.mcr & MCR_OUT2 != 0 {
            lines |= MSR_DCD;
        }
        lines
    }

    fn write_mcr(&mut self, value: u8) {
        let old = self.modem_lines();
        self.mcr = value & MCR_MASK;
        let new = self.modem_lines();
        let changed = old ^ new;
        if changed & MSR_CTS != 0 {
            self.msr_delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_delta |= MSR_DDSR;
        }
        // Only the trailing edge of RI is reported.
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            self.msr_delta |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            self.msr_delta |= MSR_DDCD;
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled {
            // Switching between FIFO and 16450 mode empties the FIFOs.
            self.clear_rx();
        }
        self.fifo_enabled = enable;
        if !enable {
            // The other bits are only programmed together with bit 0.
            return;
        }
        if value & FCR_RX_RESET != 0 {
            self.clear_rx();
        }
        // The TX FIFO reset (bit 2) has nothing to do: transmission is
        // instantaneous, so the TX FIFO is always empty. Bit 3 (DMA mode)
        // has no effect on a PC.
        self.rx_trigger = match value >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        };
    }

    fn clear_rx(&mut self) {
        self.rx.clear();
        self.timeout_pending = false;
    }

    fn write_thr(&mut self, value: u8) {
        if self.loopback() {
            self.receive(value, false);
        } else {
            self.output.push(value);
        }
        // THR is empty again at once, so the interrupt that the write
        // cleared is raised again.
        self.thre_pending = true;
    }

    fn write_ier(&mut self, value: u8) {
        let old = self.ier;
        self.ier = value & 0x0f;
        if self.ier & IER_THRE == 0 {
            self.thre_pending = false;
        } else if old & IER_THRE == 0 {
            // Enabling the interrupt while THR is empty raises it.
            self.thre_pending = true;
        }
    }

    fn read_rbr(&mut self) -> u8 {
        if let Some(c) = self.rx.pop_front() {
            self.rbr = c.byte;
        }
        if self.rx.front().is_some_and(|c| c.brk) {
            self.break_seen = true;
        }
        self.timeout_pending = false;
        self.rx_activity = self.now;
        self.rbr
    }

    fn read_iir(&mut self) -> u8 {
        let source = self.pending_source();
        if source == Some(IIR_THRE) {
            self.thre_pending = false;
        }
        let fifo = if self.fifo_enabled { IIR_FIFO_ON } else { 0 };
        source.unwrap_or(IIR_NONE) | fifo
    }

    fn read_lsr(&mut self) -> u8 {
        let mut lsr = LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            lsr |= LSR_DR;
        }
        if self.overrun {
            lsr |= LSR_OE;
        }
        if self.break_seen {
            lsr |= LSR_BI;
        }
        if self.fifo_enabled && self.rx.iter().any(|c| c.brk) {
            lsr |= LSR_FIFO_ERR;
        }
        self.overrun = false;
        self.break_seen = false;
        // The error of the top character has now been reported.
        if let Some(top) = self.rx.front_mut() {
            top.brk = false;
        }
        lsr
    }

    fn read_msr(&mut self) -> u8 {
        let msr = self.modem_lines() | self.msr_delta;
        self.msr_delta = 0;
        msr
    }

    fn read_reg(&mut self, reg: u8) -> u8 {
        match reg {
            REG_DATA if self.dlab() => self.divisor as u8,
            REG_DATA => self.read_rbr(),
            REG_IER if self.dlab() => (self.divisor >> 8) as u8,
            REG_IER => self.ier,
            REG_IIR_FCR => self.read_iir(),
            REG_LCR => self.lcr,
            REG_MCR => self.mcr,
            REG_LSR => self.read_lsr(),
            REG_MSR => self.read_msr(),
            _ => self.scr,
        }
    }

    fn write_reg(&mut self, reg: u8, value: u8) {
        match reg {
            REG_DATA if self.dlab() => self.divisor = (self.divisor & 0xff00) | u16::from(value),
            REG_DATA => self.write_thr(value),
            REG_IER if self.dlab() => {
                self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8)
            }
            REG_IER => self.write_ier(value),
            REG_IIR_FCR => self.write_fcr(value),
            REG_LCR => self.lcr = value,
            REG_MCR => self.write_mcr(value),
            // LSR and MSR are read-only; writes only reach factory test logic.
            REG_LSR | REG_MSR => {}
            _ => self.scr = value,
        }
    }
}

impl PortDevice for Uart {
    /// A wider access is split into byte accesses on consecutive ports, as
    /// the bus does for an 8-bit device; bytes past the last register float.
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let size = size.clamp(1, 4);
        let first = (port & 7) as u8;
        let mut value = ones(size);
        for i in 0..size {
            let reg = first + i;
            if reg > REG_SCR {
                break;
            }
            let byte = self.read_reg(reg);
            value &= !(0xff << (8 * i));
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        let size = size.clamp(1, 4);
        let first = (port & 7) as u8;
        for i in 0..size {
            let reg = first + i;
            if reg > REG_SCR {
                break;
            }
            self.write_reg(reg, (value >> (8 * i)) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COM1: u16 = 0x3f8;

    fn rd(u: &mut Uart, reg: u8) -> u8 {
        u.read(COM1 + u16::from(reg), 1) as u8
    }

    fn wr(u: &mut Uart, reg: u8, v: u8) {
        u.write(COM1 + u16::from(reg), 1, u32::from(v));
    }

    /// 4 character times at divisor 1, in ns.
    const T1: u64 = 40 * 1_000_000_000 / 115_200;

    #[test]
    fn reset_values() {
        let mut u = Uart::new();
        assert_eq!(rd(&mut u, REG_IER), 0);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        assert_eq!(rd(&mut u, REG_LCR), 0);
        assert_eq!(rd(&mut u, REG_MCR), 0);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0);
        assert_eq!(rd(&mut u, REG_SCR), 0);
        wr(&mut u, REG_LCR, 0x80);
        assert_eq!(rd(&mut u, REG_DATA), 12);
        assert_eq!(rd(&mut u, REG_IER), 0);
        assert!(!u.irq_level());
        assert_eq!(u.next_deadline(), None);
        assert_eq!(u.rx_space(), 1);
        assert!(u.take_output().is_empty());
    }

    #[test]
    fn default_is_new() {
        let mut u = Uart::default();
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0);
    }

    #[test]
    fn scratch_register() {
        let mut u = Uart::new();
        for v in [0x00, 0x55, 0xaa, 0xff] {
            wr(&mut u, REG_SCR, v);
            assert_eq!(rd(&mut u, REG_SCR), v);
        }
    }

    #[test]
    fn works_at_every_com_base() {
        for base in [0x3f8u16, 0x2f8, 0x3e8, 0x2e8] {
            let mut u = Uart::new();
            u.write(base + 7, 1, 0x5a);
            assert_eq!(u.read(base + 7, 1), 0x5a);
            u.write(base, 1, u32::from(b'x'));
            assert_eq!(u.take_output(), b"x");
        }
    }

    #[test]
    fn ier_keeps_four_bits() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, 0xff);
        assert_eq!(rd(&mut u, REG_IER), 0x0f);
        for bit in 0..4 {
            wr(&mut u, REG_IER, 1 << bit);
            assert_eq!(rd(&mut u, REG_IER), 1 << bit);
        }
    }

    #[test]
    fn lcr_reads_back_all_bits() {
        let mut u = Uart::new();
        for bit in 0..8 {
            wr(&mut u, REG_LCR, 1 << bit);
            assert_eq!(rd(&mut u, REG_LCR), 1 << bit);
        }
        wr(&mut u, REG_LCR, 0x7f);
        assert_eq!(rd(&mut u, REG_LCR), 0x7f);
    }

    #[test]
    fn mcr_keeps_five_bits() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, 0xff);
        assert_eq!(rd(&mut u, REG_MCR), 0x1f);
        for bit in 0..5 {
            wr(&mut u, REG_MCR, 1 << bit);
            assert_eq!(rd(&mut u, REG_MCR), 1 << bit);
        }
    }

    #[test]
    fn divisor_latch_access() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, 0x05);
        wr(&mut u, REG_LCR, 0x83);
        wr(&mut u, REG_DATA, 0x34);
        wr(&mut u, REG_IER, 0x12);
        assert_eq!(rd(&mut u, REG_DATA), 0x34);
        assert_eq!(rd(&mut u, REG_IER), 0x12);
        // Writing the latch neither transmits nor touches IER.
        assert!(u.take_output().is_empty());
        wr(&mut u, REG_LCR, 0x03);
        assert_eq!(rd(&mut u, REG_IER), 0x05);
        assert_eq!(u.divisor, 0x1234);
        // With DLAB clear, offsets 0/1 are THR/IER and leave the latch alone.
        wr(&mut u, REG_DATA, b'a');
        wr(&mut u, REG_IER, 0x00);
        assert_eq!(u.take_output(), b"a");
        wr(&mut u, REG_LCR, 0x80);
        assert_eq!(rd(&mut u, REG_DATA), 0x34);
        assert_eq!(rd(&mut u, REG_IER), 0x12);
        // The rest of the registers stay reachable with DLAB set.
        wr(&mut u, REG_SCR, 0x77);
        assert_eq!(rd(&mut u, REG_SCR), 0x77);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
    }

    #[test]
    fn transmit_goes_to_output_instantly() {
        let mut u = Uart::new();
        wr(&mut u, REG_LCR, 0x03);
        for &b in b"hi\n" {
            wr(&mut u, REG_DATA, b);
            assert_eq!(rd(&mut u, REG_LSR) & (LSR_THRE | LSR_TEMT), 0x60);
        }
        assert_eq!(u.take_output(), b"hi\n");
        assert!(u.take_output().is_empty());
        // Nothing transmitted shows up on the receive side.
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
    }

    #[test]
    fn word_length_does_not_truncate_bytes() {
        let mut u = Uart::new();
        for lcr in 0..4 {
            wr(&mut u, REG_LCR, lcr);
            wr(&mut u, REG_DATA, 0xff);
            assert_eq!(u.take_output(), [0xff]);
            u.push_input(&[0xff]);
            assert_eq!(rd(&mut u, REG_DATA), 0xff);
        }
    }

    #[test]
    fn thre_interrupt_raise_and_clear() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(!u.irq_level());
        wr(&mut u, REG_IER, IER_THRE);
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x02);
        // Reading IIR while THRE is the reported source clears it.
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        // A THR write clears it, and the instant transmission raises it
        // again.
        wr(&mut u, REG_DATA, b'x');
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x02);
        // Disabling the interrupt drops it; re-enabling raises it anew.
        wr(&mut u, REG_DATA, b'y');
        wr(&mut u, REG_IER, 0);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        wr(&mut u, REG_IER, IER_THRE);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x02);
        // Rewriting IER with the bit still set does not re-raise it.
        wr(&mut u, REG_IER, IER_THRE);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
    }

    #[test]
    fn thre_not_cleared_by_iir_when_not_reported() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, IER_THRE | IER_RDA);
        u.push_input(b"a");
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        rd(&mut u, REG_DATA);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x02);
    }

    #[test]
    fn received_data_non_fifo() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_OUT2);
        wr(&mut u, REG_IER, IER_RDA);
        assert_eq!(u.rx_space(), 1);
        u.push_input(b"k");
        assert_eq!(u.rx_space(), 0);
        assert_eq!(rd(&mut u, REG_LSR), 0x61);
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        // Reading IIR does not clear the data interrupt.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        assert_eq!(rd(&mut u, REG_DATA), b'k');
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        assert_eq!(u.rx_space(), 1);
        // RBR keeps its last character.
        assert_eq!(rd(&mut u, REG_DATA), b'k');
        // No character timeout without FIFO.
        u.push_input(b"z");
        assert_eq!(u.next_deadline(), None);
    }

    #[test]
    fn overrun_non_fifo_overwrites_holding_register() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_OUT2);
        wr(&mut u, REG_IER, IER_RDA | IER_RLS);
        u.push_input(b"ab");
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x06);
        // Reading IIR does not clear the line status interrupt.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x06);
        assert_eq!(rd(&mut u, REG_LSR), 0x63);
        // OE is cleared by the LSR read; the data interrupt remains.
        assert_eq!(rd(&mut u, REG_LSR), 0x61);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        assert_eq!(rd(&mut u, REG_DATA), b'b');
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        assert!(!u.irq_level());
    }

    #[test]
    fn overrun_fifo_drops_extra_characters() {
        let mut u = Uart::new();
        wr(&mut u, REG_IIR_FCR, 0x01);
        assert_eq!(u.rx_space(), 16);
        let data: Vec<u8> = (0..17).collect();
        u.push_input(&data[..10]);
        assert_eq!(u.rx_space(), 6);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_OE, 0);
        u.push_input(&data[10..]);
        assert_eq!(u.rx_space(), 0);
        assert_eq!(rd(&mut u, REG_LSR), 0x63);
        assert_eq!(rd(&mut u, REG_LSR), 0x61);
        for i in 0..16 {
            assert_eq!(rd(&mut u, REG_DATA), i);
        }
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
    }

    #[test]
    fn fifo_trigger_levels() {
        for (bits, level) in [(0x00u8, 1usize), (0x40, 4), (0x80, 8), (0xc0, 14)] {
            let mut u = Uart::new();
            wr(&mut u, REG_MCR, MCR_OUT2);
            wr(&mut u, REG_IER, IER_RDA);
            wr(&mut u, REG_IIR_FCR, 0x01 | bits);
            u.push_input(&vec![b'q'; level - 1]);
            assert!(!u.irq_level(), "level {level}");
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1, "level {level}");
            u.push_input(b"q");
            assert!(u.irq_level(), "level {level}");
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc4, "level {level}");
            // Dropping below the trigger level clears it.
            rd(&mut u, REG_DATA);
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1, "level {level}");
            assert!(!u.irq_level(), "level {level}");
        }
    }

    #[test]
    fn fcr_is_write_only_and_iir_shows_fifo_mode() {
        let mut u = Uart::new();
        wr(&mut u, REG_IIR_FCR, 0xc7);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
        wr(&mut u, REG_IIR_FCR, 0x00);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
    }

    #[test]
    fn fcr_rx_reset_and_mode_switch_clear_fifo() {
        let mut u = Uart::new();
        wr(&mut u, REG_IIR_FCR, 0x01);
        u.push_input(b"abc");
        // Rewriting FCR without the reset bit keeps the data.
        wr(&mut u, REG_IIR_FCR, 0x01);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR);
        // TX FIFO reset leaves the receiver alone.
        wr(&mut u, REG_IIR_FCR, 0x05);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR);
        wr(&mut u, REG_IIR_FCR, 0x03);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
        assert_eq!(u.rx_space(), 16);

        u.push_input(b"abc");
        wr(&mut u, REG_IIR_FCR, 0x00);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
        assert_eq!(u.rx_space(), 1);
        u.push_input(b"a");
        wr(&mut u, REG_IIR_FCR, 0x01);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
    }

    #[test]
    fn character_timeout_at_four_char_times() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_OUT2);
        wr(&mut u, REG_IER, IER_RDA);
        wr(&mut u, REG_LCR, 0x80);
        wr(&mut u, REG_DATA, 1);
        wr(&mut u, REG_IER, 0);
        wr(&mut u, REG_LCR, 0x03);
        wr(&mut u, REG_IIR_FCR, 0x81); // trigger 8
        assert_eq!(u.next_deadline(), None);
        u.advance(1_000);
        u.push_input(b"ab");
        let deadline = 1_000 + T1;
        assert_eq!(u.next_deadline(), Some(deadline));
        u.advance(deadline - 1);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
        u.advance(deadline);
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        assert_eq!(u.next_deadline(), None);
        // Reading a character clears it and restarts the timer.
        u.advance(deadline + 500);
        assert_eq!(rd(&mut u, REG_DATA), b'a');
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
        assert_eq!(u.next_deadline(), Some(deadline + 500 + T1));
        u.advance(deadline + 500 + T1);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        assert_eq!(rd(&mut u, REG_DATA), b'b');
        // Empty FIFO: nothing to time out.
        assert_eq!(u.next_deadline(), None);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
    }

    #[test]
    fn character_timeout_restarts_on_new_data_and_scales_with_divisor() {
        let mut u = Uart::new(); // divisor 12
        wr(&mut u, REG_IIR_FCR, 0xc1);
        u.advance(0);
        u.push_input(b"a");
        let t12 = 40 * 12 * 1_000_000_000 / 115_200;
        assert_eq!(u.next_deadline(), Some(t12));
        u.advance(t12 / 2);
        u.push_input(b"b");
        assert_eq!(u.next_deadline(), Some(t12 / 2 + t12));
        // Timeout pending but interrupt disabled: IIR shows nothing until
        // IER enables it.
        u.advance(t12 / 2 + t12);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
        wr(&mut u, REG_IER, IER_RDA);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        // Divisor 0 is the slowest rate, and does not panic.
        let mut u = Uart::new();
        wr(&mut u, REG_LCR, 0x80);
        wr(&mut u, REG_DATA, 0);
        wr(&mut u, REG_IER, 0);
        wr(&mut u, REG_LCR, 0x03);
        wr(&mut u, REG_IIR_FCR, 0x41);
        u.push_input(b"a");
        assert_eq!(
            u.next_deadline(),
            Some(40 * 65_536 * 1_000_000_000 / 115_200)
        );
    }

    #[test]
    fn new_data_does_not_clear_a_pending_timeout() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, IER_RDA);
        wr(&mut u, REG_IIR_FCR, 0x81);
        u.push_input(b"a");
        let d = u.next_deadline().unwrap();
        u.advance(d);
        u.push_input(b"b");
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        // Reaching the trigger level reports data available instead.
        u.push_input(b"cdefgh");
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc4);
    }

    #[test]
    fn no_timeout_at_or_above_trigger_level() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, IER_RDA);
        wr(&mut u, REG_IIR_FCR, 0x41);
        u.push_input(b"abcd");
        assert_eq!(u.next_deadline(), None);
        u.advance(1 << 40);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc4);
    }

    #[test]
    fn iir_priority_order() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_OUT2);
        wr(&mut u, REG_MCR, MCR_OUT2);
        u.push_input(b"xy"); // overrun in 16450 mode
        wr(&mut u, REG_IER, 0x0f);
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x06);
        rd(&mut u, REG_LSR);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        rd(&mut u, REG_DATA);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x02);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x00);
        assert!(u.irq_level());
        rd(&mut u, REG_MSR);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        assert!(!u.irq_level());
    }

    #[test]
    fn timeout_outranks_thre() {
        let mut u = Uart::new();
        wr(&mut u, REG_IIR_FCR, 0xc1);
        wr(&mut u, REG_IER, IER_RDA | IER_THRE);
        u.push_input(b"a");
        let d = u.next_deadline().unwrap();
        u.advance(d);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        // THRE stays pending underneath the timeout.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xcc);
        rd(&mut u, REG_DATA);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc2);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
    }

    #[test]
    fn msr_connected_terminal_outside_loopback() {
        let mut u = Uart::new();
        // The host-side lines don't follow our outputs.
        wr(&mut u, REG_MCR, 0x0f);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0);
        wr(&mut u, REG_MCR, 0x00);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0);
        // MSR writes are ignored.
        wr(&mut u, REG_MSR, 0x0f);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0);
    }

    #[test]
    fn loopback_msr_mapping_and_deltas() {
        let mut u = Uart::new();
        // Entering loopback with all outputs off drops CTS, DSR, DCD.
        wr(&mut u, REG_MCR, MCR_LOOP);
        assert_eq!(rd(&mut u, REG_MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        assert_eq!(rd(&mut u, REG_MSR), 0x00);
        let map = [
            (MCR_RTS, MSR_CTS, MSR_DCTS),
            (MCR_DTR, MSR_DSR, MSR_DDSR),
            (MCR_OUT2, MSR_DCD, MSR_DDCD),
        ];
        for (mcr, line, delta) in map {
            wr(&mut u, REG_MCR, MCR_LOOP | mcr);
            assert_eq!(rd(&mut u, REG_MSR), line | delta);
            assert_eq!(rd(&mut u, REG_MSR), line);
            wr(&mut u, REG_MCR, MCR_LOOP);
            assert_eq!(rd(&mut u, REG_MSR), delta);
            assert_eq!(rd(&mut u, REG_MSR), 0);
        }
        // RI reports only its trailing edge.
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_OUT1);
        assert_eq!(rd(&mut u, REG_MSR), MSR_RI);
        wr(&mut u, REG_MCR, MCR_LOOP);
        assert_eq!(rd(&mut u, REG_MSR), MSR_TERI);
        assert_eq!(rd(&mut u, REG_MSR), 0);
        // All four together, the classic probe value.
        wr(&mut u, REG_MCR, MCR_LOOP | 0x0f);
        assert_eq!(rd(&mut u, REG_MSR) & 0xf0, 0xf0);
        // Leaving loopback returns to the terminal's lines.
        wr(&mut u, REG_MCR, 0);
        assert_eq!(rd(&mut u, REG_MSR), 0xb0 | MSR_TERI);
    }

    #[test]
    fn modem_status_interrupt() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, IER_MSI);
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
        // Pending, but in loopback the OUT2 pin is inactive.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x00);
        assert!(!u.irq_level());
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x00);
        rd(&mut u, REG_MSR);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        // Masked in IER: deltas collect without an interrupt.
        wr(&mut u, REG_IER, 0);
        wr(&mut u, REG_MCR, MCR_LOOP);
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
    }

    #[test]
    fn loopback_receives_transmitted_bytes() {
        let mut u = Uart::new();
        wr(&mut u, REG_LCR, 0x03);
        wr(&mut u, REG_IIR_FCR, 0x01);
        wr(&mut u, REG_MCR, MCR_LOOP);
        for &b in b"loop" {
            wr(&mut u, REG_DATA, b);
        }
        assert!(u.take_output().is_empty());
        assert_eq!(rd(&mut u, REG_LSR), 0x61);
        // The serial input is disconnected while looping.
        assert_eq!(u.rx_space(), 0);
        u.push_input(b"host");
        u.push_break();
        let got: Vec<u8> = (0..4).map(|_| rd(&mut u, REG_DATA)).collect();
        assert_eq!(got, b"loop");
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        wr(&mut u, REG_MCR, 0);
        assert_eq!(u.rx_space(), 16);
        wr(&mut u, REG_DATA, b'!');
        assert_eq!(u.take_output(), b"!");
    }

    #[test]
    fn loopback_overrun_non_fifo() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_LOOP);
        wr(&mut u, REG_DATA, 1);
        wr(&mut u, REG_DATA, 2);
        assert_eq!(rd(&mut u, REG_LSR), 0x63);
        assert_eq!(rd(&mut u, REG_DATA), 2);
    }

    #[test]
    fn out2_gates_irq() {
        let mut u = Uart::new();
        wr(&mut u, REG_IER, IER_RDA);
        u.push_input(b"a");
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x04);
        assert!(!u.irq_level());
        wr(&mut u, REG_MCR, MCR_DTR | MCR_RTS | MCR_OUT1);
        assert!(!u.irq_level());
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(u.irq_level());
        wr(&mut u, REG_MCR, MCR_OUT2 | MCR_LOOP);
        assert!(!u.irq_level());
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(u.irq_level());
        wr(&mut u, REG_MCR, 0);
        assert!(!u.irq_level());
    }

    #[test]
    fn break_sets_bi_and_fifo_error() {
        let mut u = Uart::new();
        wr(&mut u, REG_MCR, MCR_OUT2);
        wr(&mut u, REG_IER, IER_RLS);
        wr(&mut u, REG_IIR_FCR, 0xc1);
        u.push_input(b"a");
        u.push_break();
        // Not yet at the top of the FIFO: only the FIFO error bit shows.
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_LSR), 0xe1);
        assert_eq!(rd(&mut u, REG_DATA), b'a');
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc6);
        // PE and FE never occur: host input is always well formed.
        assert_eq!(rd(&mut u, REG_LSR), 0xf1);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, REG_LSR), 0x61);
        assert_eq!(rd(&mut u, REG_DATA), 0);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        // Bit 7 is a FIFO-mode bit only.
        wr(&mut u, REG_IIR_FCR, 0x00);
        u.push_break();
        assert_eq!(rd(&mut u, REG_LSR), 0x71);
    }

    #[test]
    fn lsr_writes_ignored() {
        let mut u = Uart::new();
        wr(&mut u, REG_LSR, 0x1f);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
    }

    #[test]
    fn wide_accesses_split_into_bytes() {
        let mut u = Uart::new();
        // Low byte to THR, high byte to IER.
        u.write(COM1, 2, 0x0380);
        assert_eq!(u.take_output(), [0x80]);
        assert_eq!(rd(&mut u, REG_IER), 0x03);
        u.write(COM1, 2, 0x0000);
        assert_eq!(rd(&mut u, REG_IER), 0);
        wr(&mut u, REG_LCR, 0x80);
        u.write(COM1, 2, 0x0201);
        assert_eq!(u.divisor, 0x0201);
        assert_eq!(u.read(COM1, 2), 0x0201);
        wr(&mut u, REG_SCR, 0x42);
        // Bytes past the last register float high.
        assert_eq!(u.read(COM1 + 6, 4), 0xffff_42b0);
        u.write(COM1 + 7, 4, 0xaabb_cc11);
        assert_eq!(rd(&mut u, REG_SCR), 0x11);
    }

    #[test]
    fn any_access_is_safe() {
        let mut u = Uart::new();
        for port in 0..16u16 {
            for size in [0u8, 1, 2, 3, 4, 8] {
                for v in [0u32, 0xffff_ffff, 0x1234_5678] {
                    u.write(0x3f8 + port, size, v);
                    u.read(0x3f8 + port, size);
                }
            }
        }
        u.advance(u64::MAX);
        let _ = u.next_deadline();
        u.push_input(&[0; 100]);
        u.advance(u64::MAX);
    }
}
