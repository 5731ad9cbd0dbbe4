//! The two cascaded 8259A interrupt controllers of a PC plus the PIIX3
//! edge/level control registers (ELCR).
//!
//! Ports: master 0x20/0x21, slave 0xA0/0xA1, ELCR 0x4D0 (IRQ0-7) and
//! 0x4D1 (IRQ8-15). The slave's INT output drives the master's IR2 input.
//!
//! Modelling choices:
//! - An edge-triggered input latches its IRR bit on a rising edge and keeps
//!   it until the request is acknowledged (INTA or poll) or the chip is
//!   re-initialised, even if the line falls meanwhile (as QEMU does).
//! - A level-triggered input (ELCR bit set) has its IRR bit follow the
//!   line, and acknowledging it does not clear IRR: the line itself does.
//! - ICW1's LTIM bit is ignored: on the PIIX3 the ELCR replaces it.
//! - ICW3 is accepted and ignored: the wiring of a PC is fixed (slave on
//!   master IR2, slave ID 2). A master initialised in single mode supplies
//!   the IR2 vector itself instead of handing the cycle to the slave.
//! - Input levels are kept across ICW1 and `reset()`, because the wires do
//!   not change when the chip is reset; the edge detector is cleared, so a
//!   line that is already high must fall and rise again to be seen.
//! - 16/32-bit accesses act on the addressed byte only; the upper bytes of
//!   a wide read float (all ones).

use crate::{ones, PortDevice};

/// Lowest-priority IR line, also the line a spurious request reports.
const SPURIOUS_IRQ: u8 = 7;
/// Master input the slave's INT is wired to.
const CASCADE_IRQ: u8 = 2;

/// Where the next write to the odd port goes while an ICW sequence runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Init {
    /// Not initialising: odd-port writes are OCW1 (the mask).
    Done,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Clone, Debug)]
struct Chip {
    /// Current level of each IR input pin.
    lines: u8,
    irr: u8,
    isr: u8,
    imr: u8,
    /// Level-triggered inputs (ELCR), already limited to `elcr_mask`.
    elcr: u8,
    /// ELCR bits that can be written; the others read as zero.
    elcr_mask: u8,
    /// IR line that currently has the highest priority (rotation).
    top: u8,
    /// Vector of IR0 (ICW2 bits 7:3).
    base: u8,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
    init: Init,
    icw4_expected: bool,
    single: bool,
    auto_eoi: bool,
    rotate_auto_eoi: bool,
    special_fully_nested: bool,
    master: bool,
}

impl Chip {
    fn new(master: bool) -> Self {
        Chip {
            lines: 0,
            irr: 0,
            isr: 0,
            imr: 0,
            elcr: 0,
            // PIIX3: IRQ0, 1 and 2 (timer, keyboard, cascade) on the master
            // and IRQ8 and 13 (RTC, FPU error) on the slave are always edge.
            elcr_mask: if master { 0xf8 } else { 0xde },
            top: 0,
            base: 0,
            read_isr: false,
            poll: false,
            special_mask: false,
            init: Init::Done,
            icw4_expected: false,
            single: false,
            auto_eoi: false,
            rotate_auto_eoi: false,
            special_fully_nested: false,
            master,
        }
    }

    /// Power-on state; the input wires keep their levels.
    fn reset(&mut self) {
        let lines = self.lines;
        *self = Chip::new(self.master);
        self.lines = lines;
    }

    /// Priority rank (0 = highest) of the highest-priority bit in `bits`.
    fn rank(&self, bits: u8) -> Option<u8> {
        let r = bits.rotate_right(u32::from(self.top)).trailing_zeros();
        (r < 8).then_some(r as u8)
    }

    fn irq_of_rank(&self, rank: u8) -> u8 {
        (rank + self.top) & 7
    }

    /// IR line this chip would raise INT for, if any.
    fn pending(&self) -> Option<u8> {
        let req_rank = self.rank(self.irr & !self.imr)?;
        let irq = self.irq_of_rank(req_rank);
        let mut blocking = self.isr;
        if self.special_mask {
            // A masked in-service level no longer holds off other levels,
            // which is what lets a handler open up lower priorities.
            blocking &= !self.imr;
        }
        if self.master && self.special_fully_nested && irq == CASCADE_IRQ {
            // The slave already arbitrated among its own inputs, so a
            // further request arriving on IR2 is a higher slave priority.
            blocking &= !(1 << CASCADE_IRQ);
        }
        match self.rank(blocking) {
            Some(cur) if cur <= req_rank => None,
            _ => Some(irq),
        }
    }

    fn set_line(&mut self, irq: u8, level: bool) {
        let bit = 1u8 << irq;
        // A level input's IRR bit always equals its line (ICW1, ELCR writes
        // and INTA keep it so), so the rising-edge test serves both kinds.
        if level {
            if self.lines & bit == 0 {
                self.irr |= bit;
            }
            self.lines |= bit;
        } else {
            self.lines &= !bit;
            if self.elcr & bit != 0 {
                self.irr &= !bit;
            }
        }
    }

    /// What an INTA (or a poll read) does to the chip once it picked `irq`.
    fn intack(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if self.auto_eoi {
            if self.rotate_auto_eoi {
                self.top = (irq + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        if self.elcr & bit == 0 {
            self.irr &= !bit;
        }
    }

    fn poll_read(&mut self) -> u8 {
        self.poll = false;
        match self.pending() {
            Some(irq) => {
                self.intack(irq);
                0x80 | irq
            }
            None => 0,
        }
    }

    fn read(&mut self, odd: bool) -> u8 {
        if self.poll {
            self.poll_read()
        } else if odd {
            self.imr
        } else if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    fn write(&mut self, odd: bool, val: u8) {
        if odd {
            self.write_data(val);
        } else if val & 0x10 != 0 {
            self.icw1(val);
        } else if val & 0x08 != 0 {
            self.ocw3(val);
        } else {
            self.ocw2(val);
        }
    }

    fn icw1(&mut self, val: u8) {
        let (lines, elcr) = (self.lines, self.elcr);
        self.reset();
        self.elcr = elcr;
        // Edge latches are cleared; level inputs still show their line.
        self.irr = lines & elcr;
        self.icw4_expected = val & 0x01 != 0;
        self.single = val & 0x02 != 0;
        self.init = Init::Icw2;
    }

    fn write_data(&mut self, val: u8) {
        self.init = match self.init {
            Init::Done => {
                self.imr = val;
                Init::Done
            }
            Init::Icw2 => {
                self.base = val & 0xf8;
                if !self.single {
                    Init::Icw3
                } else if self.icw4_expected {
                    Init::Icw4
                } else {
                    Init::Done
                }
            }
            Init::Icw3 => {
                if self.icw4_expected {
                    Init::Icw4
                } else {
                    Init::Done
                }
            }
            Init::Icw4 => {
                self.auto_eoi = val & 0x02 != 0;
                self.special_fully_nested = val & 0x10 != 0;
                Init::Done
            }
        };
    }

    fn ocw2(&mut self, val: u8) {
        let level = val & 7;
        match val >> 5 {
            0 => self.rotate_auto_eoi = false,
            4 => self.rotate_auto_eoi = true,
            1 | 5 => {
                if let Some(rank) = self.rank(self.isr) {
                    let irq = self.irq_of_rank(rank);
                    self.isr &= !(1 << irq);
                    if val >> 5 == 5 {
                        self.top = (irq + 1) & 7;
                    }
                }
            }
            3 => self.isr &= !(1 << level),
            7 => {
                self.isr &= !(1 << level);
                self.top = (level + 1) & 7;
            }
            6 => self.top = (level + 1) & 7,
            _ => {} // 2: no operation
        }
    }

    fn ocw3(&mut self, val: u8) {
        if val & 0x04 != 0 {
            self.poll = true;
        }
        if val & 0x02 != 0 {
            self.read_isr = val & 0x01 != 0;
        }
        if val & 0x40 != 0 {
            self.special_mask = val & 0x20 != 0;
        }
    }

    fn write_elcr(&mut self, val: u8) {
        self.elcr = val & self.elcr_mask;
        // Inputs now level-triggered show their line; edge ones keep
        // whatever they have latched.
        self.irr = (self.irr & !self.elcr) | (self.lines & self.elcr);
    }
}

/// The master/slave 8259A pair and the ELCR of a PC.
#[derive(Clone, Debug)]
pub struct Pic {
    master: Chip,
    slave: Chip,
}

impl Pic {
    /// Power-on state: both chips uninitialised (vector base 0, nothing
    /// masked), every input edge-triggered.
    pub fn new() -> Self {
        Pic {
            master: Chip::new(true),
            slave: Chip::new(false),
        }
    }

    /// Back to the power-on state, including the ELCR. Input levels seen
    /// so far are kept (the wires did not move).
    pub fn reset(&mut self) {
        self.master.reset();
        self.slave.reset();
        self.cascade();
    }

    /// Drive input `irq` (0..=15) to `level`. IRQ2 is the cascade input,
    /// owned by the slave, so a device driving it is ignored, as is any
    /// number above 15.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            0 | 1 | 3..=7 => self.master.set_line(irq, level),
            8..=15 => self.slave.set_line(irq - 8, level),
            _ => return,
        }
        self.cascade();
    }

    /// The INT output of the master, i.e. the CPU's INTR input.
    pub fn intr(&self) -> bool {
        self.master.pending().is_some()
    }

    /// An interrupt-acknowledge cycle: the vector the CPU receives. When
    /// the request that raised INTR has gone, the chip answers with its
    /// IR7 vector without marking it in service (spurious interrupt).
    pub fn ack(&mut self) -> u8 {
        match self.master.pending() {
            None => self.master.base | SPURIOUS_IRQ,
            Some(CASCADE_IRQ) if !self.master.single => {
                // The master marks IR2 in service whatever the slave says:
                // it only learns afterwards that the slave had nothing.
                let vector = match self.slave.pending() {
                    Some(irq) => {
                        self.slave.intack(irq);
                        self.slave.base | irq
                    }
                    None => self.slave.base | SPURIOUS_IRQ,
                };
                self.master.intack(CASCADE_IRQ);
                // The slave's INT falls during the INTA cycle, so if it is
                // still requesting afterwards the master sees a new edge
                // (otherwise a second slave request would be lost).
                self.master.lines &= !(1 << CASCADE_IRQ);
                self.cascade();
                vector
            }
            Some(irq) => {
                self.master.intack(irq);
                self.master.base | irq
            }
        }
    }

    /// ELCR contents: bit n set means IRQn is level-triggered.
    pub fn elcr(&self) -> u16 {
        u16::from(self.master.elcr) | u16::from(self.slave.elcr) << 8
    }

    /// Feed the slave's INT output to the master's IR2.
    fn cascade(&mut self) {
        let level = self.slave.pending().is_some();
        self.master.set_line(CASCADE_IRQ, level);
    }

    fn read_byte(&mut self, port: u16) -> Option<u8> {
        let val = match port {
            0x20 | 0x21 => self.master.read(port & 1 != 0),
            0xa0 | 0xa1 => self.slave.read(port & 1 != 0),
            0x4d0 => self.master.elcr,
            0x4d1 => self.slave.elcr,
            _ => return None,
        };
        // A poll read acknowledges, which can change the slave's INT.
        self.cascade();
        Some(val)
    }
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl PortDevice for Pic {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        match self.read_byte(port) {
            Some(b) => (ones(size) & !0xff) | u32::from(b),
            None => ones(size),
        }
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let val = value as u8;
        match port {
            0x20 | 0x21 => self.master.write(port & 1 != 0, val),
            0xa0 | 0xa1 => self.slave.write(port & 1 != 0, val),
            0x4d0 => self.master.write_elcr(val),
            0x4d1 => self.slave.write_elcr(val),
            _ => return,
        }
        self.cascade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(p: &mut Pic, port: u16, val: u8) {
        p.write(port, 1, u32::from(val));
    }

    fn inb(p: &mut Pic, port: u16) -> u8 {
        p.read(port, 1) as u8
    }

    /// The BIOS setup: master at 0x08, slave at 0x70, 8086 mode, normal EOI.
    fn init_with(p: &mut Pic, icw4: u8) {
        out(p, 0x20, 0x11);
        out(p, 0x21, 0x08);
        out(p, 0x21, 0x04);
        out(p, 0x21, icw4);
        out(p, 0xa0, 0x11);
        out(p, 0xa1, 0x70);
        out(p, 0xa1, 0x02);
        out(p, 0xa1, icw4);
    }

    fn pic() -> Pic {
        let mut p = Pic::new();
        init_with(&mut p, 0x01);
        p
    }

    fn pulse(p: &mut Pic, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    fn irr(p: &mut Pic, port: u16) -> u8 {
        out(p, port, 0x0a);
        inb(p, port)
    }

    fn isr(p: &mut Pic, port: u16) -> u8 {
        out(p, port, 0x0b);
        let v = inb(p, port);
        out(p, port, 0x0a);
        v
    }

    const EOI: u8 = 0x20;

    #[test]
    fn init_sequence_sets_vector_bases() {
        let mut p = pic();
        assert!(!p.intr());
        pulse(&mut p, 0);
        assert!(p.intr());
        assert_eq!(p.ack(), 0x08);
        assert!(!p.intr());
        out(&mut p, 0x20, EOI);
        pulse(&mut p, 6);
        assert_eq!(p.ack(), 0x0e);
        out(&mut p, 0x20, EOI);
        pulse(&mut p, 11);
        assert_eq!(p.ack(), 0x73);
    }

    #[test]
    fn icw2_low_bits_are_ignored() {
        let mut p = Pic::new();
        out(&mut p, 0x20, 0x11);
        out(&mut p, 0x21, 0x27);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0x01);
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x21);
    }

    #[test]
    fn icw4_is_optional() {
        // IC4 clear: after ICW2 and ICW3 the next data write is the mask.
        let mut p = Pic::new();
        out(&mut p, 0x20, 0x10);
        out(&mut p, 0x21, 0x40);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0xfe);
        assert_eq!(inb(&mut p, 0x21), 0xfe);
        pulse(&mut p, 0);
        assert_eq!(p.ack(), 0x40);
        // Without ICW4, auto-EOI is off.
        assert_eq!(isr(&mut p, 0x20), 0x01);
    }

    #[test]
    fn single_mode_skips_icw3() {
        let mut p = Pic::new();
        out(&mut p, 0x20, 0x13); // single, IC4
        out(&mut p, 0x21, 0x50);
        out(&mut p, 0x21, 0x03); // ICW4 straight away: AEOI
        out(&mut p, 0x21, 0xf0); // then the mask
        assert_eq!(inb(&mut p, 0x21), 0xf0);
        pulse(&mut p, 0);
        assert_eq!(p.ack(), 0x50);
        assert_eq!(isr(&mut p, 0x20), 0, "ICW4 AEOI bit took effect");
    }

    #[test]
    fn single_mode_master_supplies_ir2_vector() {
        let mut p = Pic::new();
        out(&mut p, 0x20, 0x13);
        out(&mut p, 0x21, 0x50);
        out(&mut p, 0x21, 0x01);
        out(&mut p, 0xa0, 0x11);
        out(&mut p, 0xa1, 0x70);
        out(&mut p, 0xa1, 0x02);
        out(&mut p, 0xa1, 0x01);
        pulse(&mut p, 9);
        assert_eq!(p.ack(), 0x52);
        assert_eq!(isr(&mut p, 0xa0), 0, "slave not acknowledged");
    }

    #[test]
    fn icw1_clears_mask_isr_and_edge_latches() {
        let mut p = pic();
        out(&mut p, 0x21, 0xff);
        pulse(&mut p, 3);
        out(&mut p, 0x21, 0x00);
        p.set_irq(4, true);
        assert_eq!(p.ack(), 0x0b);
        assert_eq!(isr(&mut p, 0x20), 0x08);
        out(&mut p, 0x20, 0x0b); // select ISR, must be reset to IRR by ICW1
        init_with(&mut p, 0x01);
        assert_eq!(inb(&mut p, 0x21), 0, "IMR cleared");
        assert_eq!(inb(&mut p, 0x20), 0, "IRR selected, latches cleared");
        assert_eq!(isr(&mut p, 0x20), 0);
        assert!(!p.intr());
        // IR4 is still high; it needs a fresh rising edge.
        p.set_irq(4, true);
        assert!(!p.intr());
        p.set_irq(4, false);
        p.set_irq(4, true);
        assert_eq!(p.ack(), 0x0c);
    }

    #[test]
    fn icw1_keeps_level_requests() {
        let mut p = pic();
        out(&mut p, 0x4d0, 0x20);
        p.set_irq(5, true);
        init_with(&mut p, 0x01);
        assert_eq!(irr(&mut p, 0x20), 0x20);
        assert_eq!(p.ack(), 0x0d);
    }

    #[test]
    fn mask_holds_request_in_irr() {
        let mut p = pic();
        out(&mut p, 0x21, 0x08);
        assert_eq!(inb(&mut p, 0x21), 0x08);
        pulse(&mut p, 3);
        assert!(!p.intr());
        assert_eq!(irr(&mut p, 0x20), 0x08);
        out(&mut p, 0x21, 0x00);
        assert!(p.intr());
        assert_eq!(p.ack(), 0x0b);
        // Slave mask.
        out(&mut p, 0x20, EOI);
        out(&mut p, 0xa1, 0x02);
        assert_eq!(inb(&mut p, 0xa1), 0x02);
        pulse(&mut p, 9);
        assert!(!p.intr());
        out(&mut p, 0xa1, 0x00);
        assert_eq!(p.ack(), 0x71);
        // Masking the cascade input hides the whole slave.
        out(&mut p, 0xa0, EOI);
        out(&mut p, 0x20, EOI);
        out(&mut p, 0x21, 0x04);
        pulse(&mut p, 10);
        assert!(!p.intr());
        out(&mut p, 0x21, 0x00);
        assert_eq!(p.ack(), 0x72);
    }

    #[test]
    fn priority_order_and_nesting() {
        let mut p = pic();
        pulse(&mut p, 5);
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        // IR5 is lower than the in-service IR3.
        assert!(!p.intr());
        // IR1 is higher and nests.
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x09);
        assert_eq!(isr(&mut p, 0x20), 0x0a);
        out(&mut p, 0x20, EOI); // clears IR1
        assert!(!p.intr());
        out(&mut p, 0x20, EOI); // clears IR3
        assert_eq!(p.ack(), 0x0d);
        // Slave IRQs sit at master IR2's priority: above 3, below 1.
        out(&mut p, 0x20, EOI);
        pulse(&mut p, 3);
        pulse(&mut p, 12);
        assert_eq!(p.ack(), 0x74);
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x09);
    }

    #[test]
    fn non_specific_eoi_clears_highest_priority() {
        let mut p = pic();
        pulse(&mut p, 4);
        assert_eq!(p.ack(), 0x0c);
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x09);
        out(&mut p, 0x20, EOI);
        assert_eq!(isr(&mut p, 0x20), 0x10);
    }

    #[test]
    fn specific_eoi_clears_named_level() {
        let mut p = pic();
        pulse(&mut p, 4);
        p.ack();
        pulse(&mut p, 1);
        p.ack();
        out(&mut p, 0x20, 0x64); // specific EOI IR4
        assert_eq!(isr(&mut p, 0x20), 0x02);
        out(&mut p, 0x20, 0x61);
        assert_eq!(isr(&mut p, 0x20), 0x00);
        // Specific EOI does not rotate.
        pulse(&mut p, 0);
        pulse(&mut p, 7);
        assert_eq!(p.ack(), 0x08);
    }

    #[test]
    fn ocw2_no_op_and_eoi_with_empty_isr() {
        let mut p = pic();
        pulse(&mut p, 3);
        p.ack();
        out(&mut p, 0x20, 0x40); // no operation
        assert_eq!(isr(&mut p, 0x20), 0x08);
        out(&mut p, 0x20, EOI);
        out(&mut p, 0x20, EOI); // nothing left in service: harmless
        out(&mut p, 0x20, 0xa0); // rotating EOI with nothing in service
        assert_eq!(isr(&mut p, 0x20), 0);
        pulse(&mut p, 0);
        pulse(&mut p, 7);
        assert_eq!(p.ack(), 0x08, "priority not rotated");
    }

    #[test]
    fn rotate_on_non_specific_eoi() {
        let mut p = pic();
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        out(&mut p, 0x20, 0xa0);
        assert_eq!(isr(&mut p, 0x20), 0);
        // IR3 is now lowest, IR4 highest.
        pulse(&mut p, 3);
        pulse(&mut p, 2 + 8); // slave, i.e. master IR2
        pulse(&mut p, 4);
        assert_eq!(p.ack(), 0x0c);
        out(&mut p, 0x20, 0x64); // specific EOI, keep rotation
        assert_eq!(p.ack(), 0x72);
        out(&mut p, 0xa0, EOI);
        out(&mut p, 0x20, 0x62);
        assert_eq!(p.ack(), 0x0b);
    }

    #[test]
    fn rotate_on_specific_eoi_and_set_priority() {
        let mut p = pic();
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x09);
        out(&mut p, 0x20, 0xe5); // rotate on specific EOI: IR5 becomes lowest
        assert_eq!(isr(&mut p, 0x20), 0x02, "IR1 not named: still in service");
        out(&mut p, 0x20, 0x61);
        pulse(&mut p, 5);
        pulse(&mut p, 6);
        assert_eq!(p.ack(), 0x0e, "IR6 is highest now");
        out(&mut p, 0x20, 0x66);
        assert_eq!(p.ack(), 0x0d);
        out(&mut p, 0x20, 0x65);
        // Set priority: IR6 lowest, so IR7 highest.
        out(&mut p, 0x20, 0xc6);
        assert_eq!(isr(&mut p, 0x20), 0, "set priority is not an EOI");
        pulse(&mut p, 0);
        pulse(&mut p, 7);
        assert_eq!(p.ack(), 0x0f);
        out(&mut p, 0x20, 0x67);
        assert_eq!(p.ack(), 0x08);
        // IR1 highest: IR0 in service is now the lowest level, so even IR7
        // nests above it.
        out(&mut p, 0x20, 0xc0);
        pulse(&mut p, 7);
        assert_eq!(p.ack(), 0x0f);
        assert_eq!(isr(&mut p, 0x20), 0x81);
    }

    #[test]
    fn non_specific_eoi_uses_rotated_priority() {
        let mut p = pic();
        out(&mut p, 0x20, 0xc4); // IR5 highest, IR4 lowest
        pulse(&mut p, 0);
        assert_eq!(p.ack(), 0x08);
        pulse(&mut p, 6);
        assert_eq!(p.ack(), 0x0e);
        assert_eq!(isr(&mut p, 0x20), 0x41);
        out(&mut p, 0x20, EOI); // IR6 is higher than IR0 now
        assert_eq!(isr(&mut p, 0x20), 0x01);
    }

    #[test]
    fn auto_eoi() {
        let mut p = Pic::new();
        init_with(&mut p, 0x03);
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        assert_eq!(isr(&mut p, 0x20), 0);
        // Lower priority gets through at once: nothing is in service.
        pulse(&mut p, 5);
        assert_eq!(p.ack(), 0x0d);
        pulse(&mut p, 9);
        assert_eq!(p.ack(), 0x71);
        assert_eq!(isr(&mut p, 0x20), 0);
        assert_eq!(isr(&mut p, 0xa0), 0);
    }

    #[test]
    fn rotate_in_auto_eoi_mode() {
        let mut p = Pic::new();
        init_with(&mut p, 0x03);
        out(&mut p, 0x20, 0x80); // set rotate in AEOI
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        pulse(&mut p, 3);
        pulse(&mut p, 7);
        assert_eq!(p.ack(), 0x0f, "IR3 became lowest");
        out(&mut p, 0x20, 0x00); // clear rotate in AEOI
                                 // IR7 was acked while rotating: IR0 is now highest, and stays so.
        pulse(&mut p, 7);
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b, "no further rotation");
        assert_eq!(p.ack(), 0x0f);
    }

    #[test]
    fn cascade_vectors_and_isr_bits() {
        let mut p = pic();
        for irq in 8..16u8 {
            pulse(&mut p, irq);
            assert!(p.intr());
            assert_eq!(p.ack(), 0x70 + irq - 8);
            assert_eq!(isr(&mut p, 0x20), 0x04);
            assert_eq!(isr(&mut p, 0xa0), 1 << (irq - 8));
            assert!(!p.intr());
            out(&mut p, 0xa0, EOI);
            out(&mut p, 0x20, EOI);
            assert_eq!(isr(&mut p, 0x20), 0);
            assert_eq!(isr(&mut p, 0xa0), 0);
        }
    }

    #[test]
    fn slave_requests_wait_for_master_eoi() {
        let mut p = pic();
        pulse(&mut p, 8);
        pulse(&mut p, 9);
        assert_eq!(p.ack(), 0x70);
        assert!(!p.intr());
        out(&mut p, 0xa0, EOI);
        // Slave wants IR1 again but the master still has IR2 in service.
        assert!(!p.intr());
        assert_eq!(irr(&mut p, 0x20) & 0x04, 0x04);
        out(&mut p, 0x20, EOI);
        assert_eq!(p.ack(), 0x71);
    }

    #[test]
    fn slave_auto_eoi_second_request_not_lost() {
        let mut p = Pic::new();
        init_with(&mut p, 0x03);
        pulse(&mut p, 8);
        pulse(&mut p, 9);
        assert_eq!(p.ack(), 0x70);
        // The slave's INT never fell between the two requests.
        assert!(p.intr());
        assert_eq!(p.ack(), 0x71);
        assert!(!p.intr());
    }

    #[test]
    fn special_fully_nested_mode() {
        let mut p = pic();
        pulse(&mut p, 10);
        assert_eq!(p.ack(), 0x72);
        // Normal nesting: a higher slave request waits for master EOI.
        pulse(&mut p, 8);
        assert!(!p.intr());
        let mut p = Pic::new();
        init_with(&mut p, 0x11);
        pulse(&mut p, 10);
        assert_eq!(p.ack(), 0x72);
        pulse(&mut p, 8);
        assert!(p.intr());
        assert_eq!(p.ack(), 0x70);
        // Lower master levels are still held off by IR2 in service.
        pulse(&mut p, 5);
        assert!(!p.intr());
        // A lower slave request is held off by the slave itself.
        pulse(&mut p, 12);
        assert!(!p.intr());
    }

    #[test]
    fn spurious_master_irq7() {
        let mut p = pic();
        out(&mut p, 0x4d0, 0x10);
        p.set_irq(4, true);
        assert!(p.intr());
        p.set_irq(4, false);
        assert!(!p.intr());
        assert_eq!(p.ack(), 0x0f);
        assert_eq!(isr(&mut p, 0x20), 0, "spurious IR7 not in service");
        // Nothing at all pending also answers IR7.
        assert_eq!(p.ack(), 0x0f);
        // An edge request masked after INTR rose also vanishes.
        pulse(&mut p, 3);
        out(&mut p, 0x21, 0x08);
        assert_eq!(p.ack(), 0x0f);
    }

    #[test]
    fn spurious_slave_irq15() {
        let mut p = pic();
        out(&mut p, 0x4d1, 0x04); // IRQ10 level
        p.set_irq(10, true);
        assert!(p.intr());
        p.set_irq(10, false);
        // The master latched the edge on IR2 and still asks.
        assert!(p.intr());
        assert_eq!(p.ack(), 0x77);
        assert_eq!(isr(&mut p, 0x20), 0x04, "master IR2 in service");
        assert_eq!(isr(&mut p, 0xa0), 0, "slave IR7 not in service");
        assert!(!p.intr());
    }

    #[test]
    fn edge_latches_level_follows() {
        let mut p = pic();
        // Edge: a pulse is remembered.
        pulse(&mut p, 3);
        assert_eq!(irr(&mut p, 0x20), 0x08);
        assert_eq!(p.ack(), 0x0b);
        assert_eq!(irr(&mut p, 0x20), 0);
        out(&mut p, 0x20, EOI);
        // Holding an edge line high does not re-request.
        p.set_irq(3, true);
        p.ack();
        out(&mut p, 0x20, EOI);
        p.set_irq(3, true);
        assert!(!p.intr());
        p.set_irq(3, false);

        // Level: the request is the line.
        out(&mut p, 0x4d0, 0x08);
        p.set_irq(3, true);
        assert_eq!(irr(&mut p, 0x20), 0x08);
        p.set_irq(3, false);
        assert_eq!(irr(&mut p, 0x20), 0);
        assert!(!p.intr());
        p.set_irq(3, true);
        assert_eq!(p.ack(), 0x0b);
        assert_eq!(irr(&mut p, 0x20), 0x08, "still asserted");
        assert!(!p.intr(), "in service");
        out(&mut p, 0x20, EOI);
        assert!(p.intr(), "line still high: requests again");
        p.set_irq(3, false);
        assert!(!p.intr());

        // Slave level input.
        out(&mut p, 0xa1, 0x00);
        out(&mut p, 0x4d1, 0x08);
        p.set_irq(11, true);
        assert_eq!(p.ack(), 0x73);
        out(&mut p, 0xa0, EOI);
        out(&mut p, 0x20, EOI);
        assert!(p.intr());
        assert_eq!(p.ack(), 0x73);
    }

    #[test]
    fn elcr_write_applies_current_line_levels() {
        let mut p = pic();
        p.set_irq(6, true);
        assert_eq!(p.ack(), 0x0e);
        out(&mut p, 0x20, EOI);
        assert_eq!(irr(&mut p, 0x20), 0);
        out(&mut p, 0x4d0, 0x40);
        assert_eq!(irr(&mut p, 0x20), 0x40, "level input shows the high line");
        p.set_irq(6, false);
        out(&mut p, 0x4d0, 0x00);
        assert_eq!(irr(&mut p, 0x20), 0);
    }

    #[test]
    fn poll_command() {
        let mut p = pic();
        out(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x00, "nothing pending");
        // The poll applies to one read only.
        pulse(&mut p, 5);
        assert_eq!(inb(&mut p, 0x20), 0x20, "plain IRR read");
        out(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x21), 0x85, "poll via the odd port too");
        assert_eq!(isr(&mut p, 0x20), 0x20, "poll acknowledges");
        assert_eq!(irr(&mut p, 0x20), 0x00);
        assert_eq!(inb(&mut p, 0x21), 0x00, "odd port is IMR again");
        // Slave poll.
        out(&mut p, 0x20, EOI);
        pulse(&mut p, 14);
        out(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x82);
        out(&mut p, 0xa0, 0x0c);
        assert_eq!(inb(&mut p, 0xa0), 0x86);
        assert_eq!(isr(&mut p, 0xa0), 0x40);
        assert_eq!(isr(&mut p, 0x20), 0x04);
        // The poll command does not change the read select.
        out(&mut p, 0x20, 0x0b);
        out(&mut p, 0x20, 0x0c);
        inb(&mut p, 0x20);
        assert_eq!(inb(&mut p, 0x20), 0x04, "ISR still selected");
    }

    #[test]
    fn poll_in_auto_eoi() {
        let mut p = Pic::new();
        init_with(&mut p, 0x03);
        pulse(&mut p, 2 + 4);
        out(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x86);
        assert_eq!(isr(&mut p, 0x20), 0);
    }

    #[test]
    fn irr_isr_read_select() {
        let mut p = pic();
        pulse(&mut p, 1);
        pulse(&mut p, 4);
        assert_eq!(inb(&mut p, 0x20), 0x12, "IRR after init");
        p.ack();
        out(&mut p, 0x20, 0x0b);
        assert_eq!(inb(&mut p, 0x20), 0x02);
        assert_eq!(inb(&mut p, 0x20), 0x02, "select persists");
        out(&mut p, 0x20, 0x08); // OCW3 without RR: no change
        assert_eq!(inb(&mut p, 0x20), 0x02);
        out(&mut p, 0x20, 0x09); // RIS without RR: still no change
        out(&mut p, 0x20, 0x0a);
        assert_eq!(inb(&mut p, 0x20), 0x10);
        out(&mut p, 0x20, 0x09);
        assert_eq!(inb(&mut p, 0x20), 0x10);
        // Slave registers are separate.
        pulse(&mut p, 13);
        assert_eq!(irr(&mut p, 0xa0), 0x20);
        assert_eq!(irr(&mut p, 0x20), 0x14, "cascade line requests on IR2");
    }

    #[test]
    fn special_mask_mode() {
        let mut p = pic();
        pulse(&mut p, 3);
        assert_eq!(p.ack(), 0x0b);
        out(&mut p, 0x21, 0x08); // handler masks its own level
        pulse(&mut p, 5);
        assert!(!p.intr(), "normal mode: IR3 in service blocks IR5");
        out(&mut p, 0x20, 0x68); // set special mask
        assert!(p.intr());
        assert_eq!(p.ack(), 0x0d);
        assert_eq!(isr(&mut p, 0x20), 0x28);
        out(&mut p, 0x20, 0x65);
        // An unmasked in-service level still blocks lower ones.
        pulse(&mut p, 4);
        out(&mut p, 0x21, 0x00);
        assert!(!p.intr());
        out(&mut p, 0x21, 0x08);
        assert!(p.intr());
        out(&mut p, 0x20, 0x48); // reset special mask
        assert!(!p.intr());
        // RR/RIS and poll bits of the same OCW3 act independently.
        out(&mut p, 0x20, 0x6b);
        assert!(p.intr());
        assert_eq!(inb(&mut p, 0x20), 0x08, "ISR selected together with SMM");
        // Bit 5 without bit 6 does not change the mode.
        out(&mut p, 0x20, 0x28);
        assert!(p.intr());
    }

    #[test]
    fn elcr_read_only_bits() {
        let mut p = Pic::new();
        assert_eq!(p.elcr(), 0);
        out(&mut p, 0x4d0, 0xff);
        out(&mut p, 0x4d1, 0xff);
        assert_eq!(inb(&mut p, 0x4d0), 0xf8);
        assert_eq!(inb(&mut p, 0x4d1), 0xde);
        assert_eq!(p.elcr(), 0xdef8);
        out(&mut p, 0x4d0, 0x2f);
        out(&mut p, 0x4d1, 0x2f);
        assert_eq!(p.elcr(), 0x0e28);
        // Read-only bits stay edge: a pulse on IRQ8 is latched.
        init_with(&mut p, 0x01);
        out(&mut p, 0x4d1, 0xff);
        pulse(&mut p, 8);
        assert_eq!(p.ack(), 0x70);
    }

    #[test]
    fn irq2_and_out_of_range_inputs_ignored() {
        let mut p = pic();
        p.set_irq(2, true);
        assert!(!p.intr());
        assert_eq!(irr(&mut p, 0x20), 0);
        p.set_irq(16, true);
        p.set_irq(255, true);
        assert!(!p.intr());
        assert_eq!(irr(&mut p, 0xa0), 0);
    }

    #[test]
    fn reset_returns_to_power_on() {
        let mut p = pic();
        out(&mut p, 0x4d0, 0x08);
        out(&mut p, 0x21, 0x55);
        pulse(&mut p, 9);
        p.ack();
        p.set_irq(4, true);
        p.reset();
        assert_eq!(p.elcr(), 0);
        assert_eq!(inb(&mut p, 0x21), 0);
        assert_eq!(inb(&mut p, 0x20), 0);
        assert_eq!(isr(&mut p, 0x20), 0);
        assert_eq!(isr(&mut p, 0xa0), 0);
        assert!(!p.intr());
        // Vector base is 0 before initialisation.
        pulse(&mut p, 1);
        assert_eq!(p.ack(), 0x01);
        // IR4 stayed high through reset: no edge seen.
        p.set_irq(4, true);
        assert_eq!(irr(&mut p, 0x20), 0);
        let d = Pic::default();
        assert_eq!(d.elcr(), 0);
        assert!(!d.intr());
    }

    #[test]
    fn wide_accesses_use_low_byte() {
        let mut p = pic();
        p.write(0x21, 2, 0xab12);
        assert_eq!(p.read(0x21, 1), 0x12);
        assert_eq!(p.read(0x21, 2), 0xff12);
        assert_eq!(p.read(0x21, 4), 0xffff_ff12);
        p.write(0x4d0, 4, 0xffff_ff20);
        assert_eq!(p.elcr(), 0x0020);
        assert_eq!(p.read(0x4d0, 2), 0xff20);
        assert_eq!(p.read(0x60, 1), 0xff);
        assert_eq!(p.read(0x60, 4), 0xffff_ffff);
        p.write(0x60, 1, 0x11); // not ours: ignored
        assert_eq!(p.read(0x21, 1), 0x12);
    }

    #[test]
    fn any_guest_input_is_safe() {
        let mut p = Pic::new();
        let ports = [0x20u16, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0];
        let mut seed = 0x1234_5678u32;
        for _ in 0..20000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let port = ports[(seed >> 8) as usize % ports.len()];
            let size = [1u8, 2, 4, 3][(seed >> 4) as usize % 4];
            match seed >> 29 {
                0..=2 => p.write(port, size, seed >> 13),
                3..=4 => {
                    p.read(port, size);
                }
                5 => p.set_irq((seed >> 14) as u8, seed & 0x100 != 0),
                _ => {
                    if p.intr() {
                        p.ack();
                    }
                }
            }
        }
    }
}
