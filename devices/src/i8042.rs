//! The i8042 keyboard controller: data port 0x60, status/command port 0x64,
//! with a PS/2 keyboard on its first port and a PS/2 mouse on its second.
//! It also owns two system lines: A20 gate and CPU reset (output port bits
//! 1 and 0).
//!
//! Controller commands complete instantly, so the input buffer is never
//! seen full. A byte from a device moves into the one-byte output buffer
//! whenever that buffer is empty, on any port access or host input event.
//! The one exception: right after the guest reads 0x60 the next byte is
//! held back until the next access or until `advance` reaches
//! `next_deadline()`, so the IRQ line falls between two bytes and an
//! edge-triggered PIC sees every one.

use crate::ps2_keyboard::{Ps2Keyboard, Set1Translator};
use crate::ps2_mouse::Ps2Mouse;
use crate::{ones, PortDevice};

pub const DATA_PORT: u16 = 0x60;
pub const STATUS_PORT: u16 = 0x64;

/// Status register bits.
pub const ST_OBF: u8 = 1 << 0;
pub const ST_IBF: u8 = 1 << 1;
pub const ST_SYS: u8 = 1 << 2;
/// Last write went to 0x64 (command) rather than 0x60 (data).
pub const ST_A2: u8 = 1 << 3;
/// Keyboard lock switch open (not inhibited).
pub const ST_INH: u8 = 1 << 4;
/// The output buffer byte came from the mouse.
pub const ST_AUXB: u8 = 1 << 5;

/// Command byte (controller RAM 0) bits.
pub const CB_KBD_INT: u8 = 1 << 0;
pub const CB_AUX_INT: u8 = 1 << 1;
pub const CB_SYS: u8 = 1 << 2;
pub const CB_KBD_DISABLE: u8 = 1 << 4;
pub const CB_AUX_DISABLE: u8 = 1 << 5;
pub const CB_TRANSLATE: u8 = 1 << 6;

/// Output port bits.
pub const OUT_RESET: u8 = 1 << 0;
pub const OUT_A20: u8 = 1 << 1;
pub const OUT_KBD_OBF: u8 = 1 << 4;
pub const OUT_AUX_OBF: u8 = 1 << 5;

/// Both ports disabled and silent until firmware configures them.
const DEFAULT_COMMAND_BYTE: u8 = CB_KBD_DISABLE | CB_AUX_DISABLE;
/// Reset line released, A20 on (as QEMU and Bochs start), clock/data high.
const DEFAULT_OUTPUT_PORT: u8 = 0xcf;
/// Lock switch open, no manufacturing jumper, colour display.
const INPUT_PORT: u8 = 0xa0;

/// How long the next byte is held back after a data read; roughly one
/// byte time on the PS/2 wire.
pub const BYTE_GAP_NS: u64 = 100_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    /// Keyboard, or the controller itself (both raise IRQ1).
    Kbd,
    Aux,
}

/// What the next byte written to 0x60 is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    None,
    Ram(usize),
    OutputPort,
    KbdBuffer,
    AuxBuffer,
    AuxDevice,
}

pub struct I8042 {
    pub kbd: Ps2Keyboard,
    pub mouse: Ps2Mouse,
    /// Controller RAM; byte 0 is the command byte.
    ram: [u8; 32],
    sys: bool,
    a2: bool,
    obf: Option<(u8, Source)>,
    /// What 0x60 returns when nothing is pending: the last byte, as on
    /// hardware where the register simply keeps its value.
    last_data: u8,
    pending: Pending,
    output_port: u8,
    reset_request: bool,
    xlate: Set1Translator,
    now: u64,
    /// Set by a data read: when the held-back next byte may move in.
    refill_at: Option<u64>,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    pub fn new() -> Self {
        let mut ram = [0; 32];
        ram[0] = DEFAULT_COMMAND_BYTE;
        I8042 {
            kbd: Ps2Keyboard::new(),
            mouse: Ps2Mouse::new(),
            ram,
            sys: false,
            a2: false,
            obf: None,
            last_data: 0,
            pending: Pending::None,
            output_port: DEFAULT_OUTPUT_PORT,
            reset_request: false,
            xlate: Set1Translator::default(),
            now: 0,
            refill_at: None,
        }
    }

    /// Power-on state of the controller and both devices.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    pub fn irq1(&self) -> bool {
        matches!(self.obf, Some((_, Source::Kbd))) && self.command_byte() & CB_KBD_INT != 0
    }

    pub fn irq12(&self) -> bool {
        matches!(self.obf, Some((_, Source::Aux))) && self.command_byte() & CB_AUX_INT != 0
    }

    pub fn a20(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// True once after the guest pulsed the CPU reset line.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_request)
    }

    /// Host key press/release in scan code set 2 (see `Ps2Keyboard`).
    pub fn key_event(&mut self, set2_code: &[u8]) {
        self.kbd.key_event(set2_code);
        self.poll();
    }

    /// Host mouse input (see `Ps2Mouse::motion` for the conventions).
    pub fn mouse_motion(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.mouse.motion(dx, dy, dz, buttons);
        self.poll();
    }

    pub fn advance(&mut self, now: u64) {
        self.now = now;
        if self.refill_at.is_some_and(|t| t <= now) {
            self.poll();
        }
    }

    /// When a held-back byte becomes deliverable, if one is waiting.
    pub fn next_deadline(&self) -> Option<u64> {
        self.refill_at
            .filter(|_| self.obf.is_none() && self.device_waiting())
    }

    fn device_waiting(&self) -> bool {
        let cb = self.command_byte();
        (cb & CB_KBD_DISABLE == 0 && self.kbd.has_data())
            || (cb & CB_AUX_DISABLE == 0 && self.mouse.has_data())
    }

    /// Moves the next device byte into an empty output buffer. The board
    /// need not call this: every access and host event already does.
    pub fn poll(&mut self) {
        self.refill_at = None;
        if self.obf.is_some() {
            return;
        }
        let cb = self.command_byte();
        if cb & CB_KBD_DISABLE == 0 {
            while let Some(b) = self.kbd.read() {
                let b = if cb & CB_TRANSLATE != 0 {
                    match self.xlate.feed(b) {
                        Some(t) => t,
                        // A break prefix only marks the next byte.
                        None => continue,
                    }
                } else {
                    b
                };
                self.obf = Some((b, Source::Kbd));
                return;
            }
        }
        if cb & CB_AUX_DISABLE == 0 {
            if let Some(b) = self.mouse.read() {
                self.obf = Some((b, Source::Aux));
            }
        }
    }

    /// A controller result or D2/D3 byte; like the real part it replaces
    /// whatever device byte the guest had not read yet.
    fn respond(&mut self, b: u8, src: Source) {
        self.obf = Some((b, src));
        self.refill_at = None;
    }

    fn status(&self) -> u8 {
        let mut s = ST_INH;
        match self.obf {
            Some((_, Source::Kbd)) => s |= ST_OBF,
            Some((_, Source::Aux)) => s |= ST_OBF | ST_AUXB,
            None => {}
        }
        if self.sys {
            s |= ST_SYS;
        }
        if self.a2 {
            s |= ST_A2;
        }
        s
    }

    fn output_port_value(&self) -> u8 {
        let mut v = self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF);
        match self.obf {
            Some((_, Source::Kbd)) => v |= OUT_KBD_OBF,
            Some((_, Source::Aux)) => v |= OUT_AUX_OBF,
            None => {}
        }
        v
    }

    fn write_output_port(&mut self, v: u8) {
        if v & OUT_RESET == 0 {
            self.reset_request = true;
        }
        // The reset line is released again right away: the board resets.
        self.output_port = v | OUT_RESET;
    }

    fn set_command_byte(&mut self, v: u8) {
        if (v ^ self.ram[0]) & CB_TRANSLATE != 0 {
            self.xlate.clear();
        }
        self.ram[0] = v;
        self.sys = v & CB_SYS != 0;
    }

    fn self_test(&mut self) {
        // The output port (A20) is left alone: OSes self-test with A20 on.
        self.set_command_byte(DEFAULT_COMMAND_BYTE | CB_SYS);
        self.pending = Pending::None;
        self.xlate.clear();
        self.respond(0x55, Source::Kbd);
    }

    fn command(&mut self, cmd: u8) {
        self.pending = Pending::None;
        match cmd {
            0x20..=0x3f => self.respond(self.ram[(cmd & 0x1f) as usize], Source::Kbd),
            0x60..=0x7f => self.pending = Pending::Ram((cmd & 0x1f) as usize),
            // Password not installed.
            0xa4 => self.respond(0xf1, Source::Kbd),
            0xa7 => self.ram[0] |= CB_AUX_DISABLE,
            0xa8 => self.ram[0] &= !CB_AUX_DISABLE,
            0xa9 | 0xab => self.respond(0x00, Source::Kbd),
            0xaa => self.self_test(),
            0xad => self.ram[0] |= CB_KBD_DISABLE,
            0xae => self.ram[0] &= !CB_KBD_DISABLE,
            0xc0 => self.respond(INPUT_PORT, Source::Kbd),
            0xd0 => self.respond(self.output_port_value(), Source::Kbd),
            0xd1 => self.pending = Pending::OutputPort,
            0xd2 => self.pending = Pending::KbdBuffer,
            0xd3 => self.pending = Pending::AuxBuffer,
            0xd4 => self.pending = Pending::AuxDevice,
            0xdd => self.output_port &= !OUT_A20,
            0xdf => self.output_port |= OUT_A20,
            // Test inputs (keyboard/mouse clock lines): both low.
            0xe0 => self.respond(0x00, Source::Kbd),
            // Pulse the output-port bits whose mask bit is 0; only the
            // reset line has a lasting effect.
            0xf0..=0xff if cmd & OUT_RESET == 0 => self.reset_request = true,
            _ => {}
        }
    }

    fn data(&mut self, v: u8) {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Ram(0) => self.set_command_byte(v),
            Pending::Ram(i) => self.ram[i] = v,
            Pending::OutputPort => self.write_output_port(v),
            Pending::KbdBuffer => self.respond(v, Source::Kbd),
            Pending::AuxBuffer => self.respond(v, Source::Aux),
            Pending::AuxDevice => self.mouse.write(v),
            Pending::None => self.kbd.write(v),
        }
    }
}

impl PortDevice for I8042 {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let high = ones(size) & !0xff;
        match port {
            DATA_PORT => {
                self.poll();
                if let Some((b, _)) = self.obf.take() {
                    self.last_data = b;
                    self.refill_at = Some(self.now.saturating_add(BYTE_GAP_NS));
                }
                high | self.last_data as u32
            }
            STATUS_PORT => {
                self.poll();
                high | self.status() as u32
            }
            _ => ones(size),
        }
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let v = value as u8;
        match port {
            DATA_PORT => {
                self.a2 = false;
                self.poll();
                self.data(v);
            }
            STATUS_PORT => {
                self.a2 = true;
                self.poll();
                self.command(v);
            }
            _ => return,
        }
        self.poll();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ps2_mouse::{PKT_LEFT, PKT_RIGHT, PKT_SYNC, PKT_Y_SIGN};

    fn cmd(c: &mut I8042, b: u8) {
        c.write(STATUS_PORT, 1, b as u32);
    }

    fn data(c: &mut I8042, b: u8) {
        c.write(DATA_PORT, 1, b as u32);
    }

    fn status(c: &mut I8042) -> u8 {
        c.read(STATUS_PORT, 1) as u8
    }

    /// Reads one byte if the status says one is there.
    fn read_byte(c: &mut I8042) -> Option<u8> {
        if status(c) & ST_OBF == 0 {
            return None;
        }
        Some(c.read(DATA_PORT, 1) as u8)
    }

    fn drain(c: &mut I8042) -> Vec<u8> {
        std::iter::from_fn(|| read_byte(c)).collect()
    }

    fn write_cb(c: &mut I8042, v: u8) {
        cmd(c, 0x60);
        data(c, v);
    }

    /// Controller as firmware leaves it: both ports on, both IRQs, no
    /// translation.
    fn ready() -> I8042 {
        let mut c = I8042::new();
        write_cb(&mut c, CB_KBD_INT | CB_AUX_INT | CB_SYS);
        c
    }

    #[test]
    fn power_on_state() {
        let mut c = I8042::new();
        assert_eq!(status(&mut c), ST_INH);
        assert!(!c.irq1());
        assert!(!c.irq12());
        assert!(c.a20());
        assert!(!c.take_reset_request());
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_COMMAND_BYTE));
    }

    #[test]
    fn self_test_sets_sys_and_restores_defaults() {
        let mut c = I8042::new();
        write_cb(&mut c, CB_KBD_INT | CB_TRANSLATE);
        assert_eq!(status(&mut c) & ST_SYS, 0);
        cmd(&mut c, 0xaa);
        assert_eq!(status(&mut c), ST_INH | ST_A2 | ST_SYS | ST_OBF);
        assert_eq!(c.read(DATA_PORT, 1), 0x55);
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_COMMAND_BYTE | CB_SYS));
        assert!(c.a20());
    }

    #[test]
    fn interface_tests_and_password() {
        let mut c = I8042::new();
        cmd(&mut c, 0xab);
        assert_eq!(read_byte(&mut c), Some(0));
        cmd(&mut c, 0xa9);
        assert_eq!(read_byte(&mut c), Some(0));
        cmd(&mut c, 0xa4);
        assert_eq!(read_byte(&mut c), Some(0xf1));
        cmd(&mut c, 0xe0);
        assert_eq!(read_byte(&mut c), Some(0));
    }

    #[test]
    fn a2_tracks_last_write_port() {
        let mut c = ready();
        cmd(&mut c, 0xa8);
        assert_ne!(status(&mut c) & ST_A2, 0);
        data(&mut c, 0xf5);
        assert_eq!(status(&mut c) & ST_A2, 0);
    }

    #[test]
    fn ibf_never_set_and_no_errors() {
        let mut c = ready();
        data(&mut c, 0xff);
        for _ in 0..3 {
            assert_eq!(status(&mut c) & (ST_IBF | 0xc0), 0);
            c.read(DATA_PORT, 1);
        }
    }

    #[test]
    fn command_byte_read_write_and_sys() {
        let mut c = I8042::new();
        write_cb(&mut c, 0x47);
        assert_ne!(status(&mut c) & ST_SYS, 0);
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c), Some(0x47));
        write_cb(&mut c, 0x43);
        assert_eq!(status(&mut c) & ST_SYS, 0);
    }

    #[test]
    fn controller_ram() {
        let mut c = I8042::new();
        cmd(&mut c, 0x65);
        data(&mut c, 0x5a);
        cmd(&mut c, 0x7f);
        data(&mut c, 0xa5);
        cmd(&mut c, 0x25);
        assert_eq!(read_byte(&mut c), Some(0x5a));
        cmd(&mut c, 0x3f);
        assert_eq!(read_byte(&mut c), Some(0xa5));
        // Writing RAM 5 left the command byte alone.
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_COMMAND_BYTE));
    }

    #[test]
    fn controller_results_raise_irq1_when_enabled() {
        let mut c = I8042::new();
        write_cb(&mut c, CB_KBD_INT);
        cmd(&mut c, 0x20);
        assert!(c.irq1());
        assert!(!c.irq12());
        c.read(DATA_PORT, 1);
        assert!(!c.irq1());
        write_cb(&mut c, 0);
        cmd(&mut c, 0x20);
        assert!(!c.irq1());
    }

    #[test]
    fn keyboard_bytes_and_irq1_gate() {
        let mut c = ready();
        c.key_event(&[0x1c]);
        assert_eq!(status(&mut c) & (ST_OBF | ST_AUXB), ST_OBF);
        assert!(c.irq1());
        assert!(!c.irq12());
        // Clearing the interrupt enable drops the line; data stays.
        write_cb(&mut c, CB_SYS);
        assert!(!c.irq1());
        assert_eq!(read_byte(&mut c), Some(0x1c));
    }

    #[test]
    fn keyboard_commands_through_data_port() {
        let mut c = ready();
        data(&mut c, 0xff);
        assert_eq!(drain(&mut c), [0xfa, 0xaa]);
        data(&mut c, 0xf2);
        assert_eq!(drain(&mut c), [0xfa, 0xab, 0x83]);
        data(&mut c, 0xee);
        assert_eq!(drain(&mut c), [0xee]);
        data(&mut c, 0xf0);
        data(&mut c, 0x00);
        assert_eq!(drain(&mut c), [0xfa, 0xfa, 0x02]);
    }

    #[test]
    fn translation_make_break_of_a() {
        let mut c = ready();
        write_cb(&mut c, CB_KBD_INT | CB_SYS | CB_TRANSLATE);
        c.key_event(&[0x1c]);
        c.key_event(&[0xf0, 0x1c]);
        c.key_event(&[0xe0, 0x75]);
        c.key_event(&[0xe0, 0xf0, 0x75]);
        assert_eq!(drain(&mut c), [0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);
        // ACK and BAT pass through untouched.
        data(&mut c, 0xff);
        assert_eq!(drain(&mut c), [0xfa, 0xaa]);
    }

    #[test]
    fn translation_off_gives_raw_set2() {
        let mut c = ready();
        c.key_event(&[0xf0, 0x1c]);
        assert_eq!(drain(&mut c), [0xf0, 0x1c]);
    }

    #[test]
    fn mouse_reset_through_d4_with_auxb() {
        let mut c = ready();
        cmd(&mut c, 0xd4);
        data(&mut c, 0xff);
        assert_eq!(status(&mut c) & (ST_OBF | ST_AUXB), ST_OBF | ST_AUXB);
        assert!(c.irq12());
        assert!(!c.irq1());
        assert_eq!(drain(&mut c), [0xfa, 0xaa, 0x00]);
        assert!(!c.irq12());
    }

    #[test]
    fn data_without_d4_goes_to_keyboard() {
        let mut c = ready();
        data(&mut c, 0xf2);
        assert_eq!(status(&mut c) & ST_AUXB, 0);
        assert_eq!(drain(&mut c), [0xfa, 0xab, 0x83]);
    }

    #[test]
    fn mouse_stream_packet_with_negative_dy() {
        let mut c = ready();
        cmd(&mut c, 0xd4);
        data(&mut c, 0xf4);
        assert_eq!(drain(&mut c), [0xfa]);
        c.mouse_motion(2, -3, 0, 0b011);
        assert!(c.irq12());
        assert_eq!(
            drain(&mut c),
            [PKT_SYNC | PKT_Y_SIGN | PKT_LEFT | PKT_RIGHT, 2, 0xfd]
        );
    }

    #[test]
    fn intellimouse_id_through_controller() {
        let mut c = ready();
        for b in [0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2] {
            cmd(&mut c, 0xd4);
            data(&mut c, b);
        }
        assert_eq!(
            drain(&mut c),
            [0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x03]
        );
    }

    #[test]
    fn aux_irq_needs_enable_bit() {
        let mut c = ready();
        write_cb(&mut c, CB_KBD_INT);
        cmd(&mut c, 0xd4);
        data(&mut c, 0xf2);
        assert_ne!(status(&mut c) & ST_AUXB, 0);
        assert!(!c.irq12());
        assert!(!c.irq1());
    }

    #[test]
    fn disabled_keyboard_interface_holds_bytes() {
        let mut c = ready();
        cmd(&mut c, 0xad);
        c.key_event(&[0x1c]);
        assert_eq!(status(&mut c) & ST_OBF, 0);
        assert!(!c.irq1());
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c).unwrap() & CB_KBD_DISABLE, CB_KBD_DISABLE);
        cmd(&mut c, 0xae);
        assert_eq!(drain(&mut c), [0x1c]);
    }

    #[test]
    fn disabled_aux_interface_holds_bytes() {
        let mut c = ready();
        cmd(&mut c, 0xa7);
        cmd(&mut c, 0xd4);
        data(&mut c, 0xf2);
        assert_eq!(status(&mut c) & ST_OBF, 0);
        cmd(&mut c, 0x20);
        assert_eq!(read_byte(&mut c).unwrap() & CB_AUX_DISABLE, CB_AUX_DISABLE);
        cmd(&mut c, 0xa8);
        assert_eq!(drain(&mut c), [0xfa, 0x00]);
    }

    #[test]
    fn command_byte_disable_bits_gate_delivery() {
        let mut c = ready();
        write_cb(&mut c, CB_KBD_INT | CB_KBD_DISABLE);
        c.key_event(&[0x1c]);
        assert!(!c.irq1());
        write_cb(&mut c, CB_KBD_INT);
        assert!(c.irq1());
    }

    #[test]
    fn d2_d3_write_output_buffer() {
        let mut c = ready();
        cmd(&mut c, 0xd2);
        data(&mut c, 0x42);
        assert_eq!(status(&mut c) & (ST_OBF | ST_AUXB), ST_OBF);
        assert!(c.irq1());
        assert_eq!(c.read(DATA_PORT, 1), 0x42);
        cmd(&mut c, 0xd3);
        data(&mut c, 0x43);
        assert_eq!(status(&mut c) & (ST_OBF | ST_AUXB), ST_OBF | ST_AUXB);
        assert!(c.irq12());
        assert_eq!(c.read(DATA_PORT, 1), 0x43);
        // The keyboard never saw those bytes.
        assert!(!c.kbd.has_data());
    }

    #[test]
    fn input_and_output_ports() {
        let mut c = ready();
        cmd(&mut c, 0xc0);
        assert_eq!(read_byte(&mut c), Some(INPUT_PORT));
        cmd(&mut c, 0xd0);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_OUTPUT_PORT));
        // Bits 4/5 mirror a full buffer from each side.
        cmd(&mut c, 0xd3);
        data(&mut c, 0x11);
        cmd(&mut c, 0xd0);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_OUTPUT_PORT | OUT_AUX_OBF));
    }

    #[test]
    fn output_port_bit4_shows_keyboard_buffer() {
        let mut c = ready();
        cmd(&mut c, 0xd2);
        data(&mut c, 0x11);
        cmd(&mut c, 0xd0);
        assert_eq!(read_byte(&mut c), Some(DEFAULT_OUTPUT_PORT | OUT_KBD_OBF));
    }

    #[test]
    fn a20_via_d1() {
        let mut c = ready();
        cmd(&mut c, 0xd1);
        data(&mut c, 0xdd);
        assert!(!c.a20());
        assert!(!c.take_reset_request());
        cmd(&mut c, 0xd0);
        assert_eq!(read_byte(&mut c).unwrap() & OUT_A20, 0);
        cmd(&mut c, 0xd1);
        data(&mut c, 0xdf);
        assert!(c.a20());
        // The trailing FF "pulse nothing" many A20 routines send is harmless.
        cmd(&mut c, 0xff);
        assert!(!c.take_reset_request());
        assert!(c.a20());
    }

    #[test]
    fn a20_via_dd_df() {
        let mut c = ready();
        cmd(&mut c, 0xdd);
        assert!(!c.a20());
        cmd(&mut c, 0xdf);
        assert!(c.a20());
    }

    #[test]
    fn reset_via_fe_and_pulses() {
        let mut c = ready();
        cmd(&mut c, 0xfe);
        assert!(c.take_reset_request());
        assert!(!c.take_reset_request());
        cmd(&mut c, 0xf0);
        assert!(c.take_reset_request());
        cmd(&mut c, 0xfd);
        assert!(!c.take_reset_request());
        assert!(c.a20());
    }

    #[test]
    fn reset_via_d1_bit0_low() {
        let mut c = ready();
        cmd(&mut c, 0xd1);
        data(&mut c, 0xde);
        assert!(c.take_reset_request());
        assert!(!c.take_reset_request());
        assert!(c.a20());
    }

    #[test]
    fn new_command_cancels_pending_data() {
        let mut c = ready();
        cmd(&mut c, 0xd1);
        cmd(&mut c, 0xa8);
        data(&mut c, 0xee);
        // 0xEE went to the keyboard (echo), not to the output port.
        assert_eq!(drain(&mut c), [0xee]);
        assert!(c.a20());
    }

    #[test]
    fn irq_dips_between_bytes() {
        let mut c = ready();
        c.key_event(&[0xf0, 0x1c]);
        assert!(c.irq1());
        c.advance(1_000);
        assert_eq!(c.read(DATA_PORT, 1), 0xf0);
        // Line is low until the gap passes, then the next byte arrives.
        assert!(!c.irq1());
        assert_eq!(c.next_deadline(), Some(1_000 + BYTE_GAP_NS));
        c.advance(1_000 + BYTE_GAP_NS - 1);
        assert!(!c.irq1());
        c.advance(1_000 + BYTE_GAP_NS);
        assert!(c.irq1());
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.read(DATA_PORT, 1), 0x1c);
        assert!(!c.irq1());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn status_read_fetches_held_byte() {
        let mut c = ready();
        c.key_event(&[0xf0, 0x1c]);
        c.read(DATA_PORT, 1);
        assert_ne!(status(&mut c) & ST_OBF, 0);
        assert_eq!(c.read(DATA_PORT, 1), 0x1c);
    }

    #[test]
    fn empty_data_read_repeats_last_byte() {
        let mut c = ready();
        cmd(&mut c, 0xd2);
        data(&mut c, 0x77);
        assert_eq!(c.read(DATA_PORT, 1), 0x77);
        assert_eq!(c.read(DATA_PORT, 1), 0x77);
        assert_eq!(status(&mut c) & ST_OBF, 0);
    }

    #[test]
    fn controller_result_replaces_unread_byte() {
        let mut c = ready();
        c.key_event(&[0x1c]);
        cmd(&mut c, 0x20);
        assert_eq!(drain(&mut c), [CB_KBD_INT | CB_AUX_INT | CB_SYS]);
    }

    #[test]
    fn keyboard_before_mouse() {
        let mut c = ready();
        cmd(&mut c, 0xd4);
        data(&mut c, 0xf4);
        assert_eq!(drain(&mut c), [0xfa]);
        c.mouse_motion(1, 0, 0, 0);
        c.key_event(&[0x1c]);
        // The mouse byte was already in the buffer; the key waits behind it.
        assert_ne!(status(&mut c) & ST_AUXB, 0);
        c.read(DATA_PORT, 1);
        assert_eq!(status(&mut c) & ST_AUXB, 0);
        assert_eq!(c.read(DATA_PORT, 1), 0x1c);
        assert_ne!(status(&mut c) & ST_AUXB, 0);
    }

    #[test]
    fn wide_and_foreign_accesses() {
        let mut c = ready();
        assert_eq!(
            c.read(STATUS_PORT, 2),
            0xff00 | ST_INH as u32 | ST_SYS as u32
        );
        assert_eq!(c.read(0x61, 1), 0xff);
        c.write(0x61, 1, 0xfe);
        assert!(!c.take_reset_request());
        c.write(STATUS_PORT, 4, 0xffff_ff20);
        assert_eq!(
            c.read(DATA_PORT, 4),
            0xffff_ff00 | (CB_KBD_INT | CB_AUX_INT | CB_SYS) as u32
        );
    }

    #[test]
    fn unknown_commands_ignored() {
        let mut c = ready();
        for b in [0x00, 0x10, 0x90, 0xa0, 0xc8, 0xe5] {
            cmd(&mut c, b);
        }
        assert_eq!(status(&mut c) & ST_OBF, 0);
        assert!(!c.take_reset_request());
        assert!(c.a20());
    }

    #[test]
    fn random_guest_traffic_never_panics() {
        let mut c = ready();
        let mut x: u32 = 0x1234_5678;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let port = [DATA_PORT, STATUS_PORT, 0x61][(x % 3) as usize];
            let size = [1, 2, 4][((x >> 2) % 3) as usize];
            match (x >> 4) % 4 {
                0 => c.write(port, size, x >> 8),
                1 => {
                    c.read(port, size);
                }
                2 => c.key_event(&[(x >> 8) as u8, (x >> 16) as u8]),
                _ => c.mouse_motion(
                    (x >> 8) as i8 as i32 * 1000,
                    x as i32,
                    (x >> 20) as i8 as i32,
                    (x >> 12) as u8,
                ),
            }
            c.advance(i * 1000);
            c.take_reset_request();
        }
        c.advance(u64::MAX);
        c.read(DATA_PORT, 1);
        c.advance(u64::MAX);
    }

    #[test]
    fn reset_method_restores_power_on() {
        let mut c = ready();
        cmd(&mut c, 0xdd);
        c.key_event(&[0x1c]);
        c.reset();
        assert!(c.a20());
        assert_eq!(status(&mut c), ST_INH);
    }
}
