//! A PS/2 keyboard as seen from its cable: bytes in from the host, bytes
//! out to the host. The controller (i8042) sits between it and the CPU.
//!
//! The host-side event source hands in scan code set 2 (the keyboard's
//! native set). If the guest selects set 1 with command F0, the keyboard
//! converts on the fly with the same table an i8042 uses for translation.
//! Set 3 is refused with FE (its key-by-key make/break/typematic modes are
//! not modelled), so a guest probing for it falls back to set 2.

use std::collections::VecDeque;

/// Bytes the keyboard holds for the host before it starts losing keys.
pub const QUEUE_LEN: usize = 16;

pub const ACK: u8 = 0xfa;
pub const RESEND: u8 = 0xfe;
pub const BAT_OK: u8 = 0xaa;
pub const ECHO: u8 = 0xee;

/// Power-on typematic setting: 10.9 characters/s after 500 ms.
const DEFAULT_TYPEMATIC: u8 = 0x2b;

/// Set 2 → set 1 for codes below 0x80; row r holds codes 8r..8r+7.
const SET2_TO_SET1: [u8; 128] = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, //
    0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59, //
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, //
    0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b, //
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, //
    0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d, //
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, //
    0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f, //
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, //
    0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61, //
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, //
    0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76, //
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, //
    0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f, //
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, //
    0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54, //
];

/// One set-2 byte as its set-1 counterpart (without the break bit).
/// Prefixes (E0, E1) and responses (FA, AA, EE, FE) pass through unchanged;
/// F7 (0x83) and Alt+SysRq (0x84) are the only codes above 0x7F that move.
pub fn set2_to_set1(code: u8) -> u8 {
    match code {
        0x00..=0x7f => SET2_TO_SET1[code as usize],
        0x83 => 0x41,
        0x84 => 0x54,
        _ => code,
    }
}

/// Folds set-2 F0 break prefixes into bit 7 while converting to set 1.
/// Shared by the keyboard (set 1 selected) and the i8042 (translation).
#[derive(Clone, Copy, Default, Debug)]
pub struct Set1Translator {
    release: bool,
}

impl Set1Translator {
    /// Feeds one set-2 byte; returns the set-1 byte to emit, if any.
    pub fn feed(&mut self, code: u8) -> Option<u8> {
        if code == 0xf0 {
            self.release = true;
            return None;
        }
        let out = set2_to_set1(code) | if self.release { 0x80 } else { 0 };
        self.release = false;
        Some(out)
    }

    pub fn clear(&mut self) {
        self.release = false;
    }
}

/// Which argument byte the keyboard is waiting for after a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    None,
    Leds,
    ScanSet,
    Typematic,
    /// FB/FC/FD take a list of set-3 keys, ended by the next command.
    KeyList,
}

pub struct Ps2Keyboard {
    /// Scan codes waiting for the host, in the current set.
    keys: VecDeque<u8>,
    /// Command responses; the keyboard answers these before buffered keys.
    replies: VecDeque<u8>,
    pending: Pending,
    scanning: bool,
    set: u8,
    leds: u8,
    typematic: u8,
    /// The last byte the host took, for FE (resend).
    last_sent: Option<u8>,
    to_set1: Set1Translator,
}

impl Default for Ps2Keyboard {
    fn default() -> Self {
        Self::new()
    }
}

impl Ps2Keyboard {
    pub fn new() -> Self {
        Ps2Keyboard {
            keys: VecDeque::with_capacity(QUEUE_LEN),
            replies: VecDeque::with_capacity(QUEUE_LEN),
            pending: Pending::None,
            scanning: true,
            set: 2,
            leds: 0,
            typematic: DEFAULT_TYPEMATIC,
            last_sent: None,
            to_set1: Set1Translator::default(),
        }
    }

    /// Power-on state, without the BAT byte (FF sends that).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The LED bits from the last ED command (0 scroll, 1 num, 2 caps).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// The scan code set in use (1 or 2).
    pub fn scan_code_set(&self) -> u8 {
        self.set
    }

    /// The typematic byte from the last F3 command.
    pub fn typematic(&self) -> u8 {
        self.typematic
    }

    /// Whether key events are being reported (F4/F5).
    pub fn scanning(&self) -> bool {
        self.scanning
    }

    pub fn has_data(&self) -> bool {
        !self.replies.is_empty() || !self.keys.is_empty()
    }

    pub fn read(&mut self) -> Option<u8> {
        let b = self.replies.pop_front().or_else(|| self.keys.pop_front())?;
        self.last_sent = Some(b);
        Some(b)
    }

    /// A key went down or up on the host; `set2_code` is the whole
    /// sequence (e.g. `[0x1c]` make, `[0xf0, 0x1c]` break of 'A').
    pub fn key_event(&mut self, set2_code: &[u8]) {
        if !self.scanning {
            return;
        }
        for &b in set2_code {
            let code = if self.set == 1 {
                match self.to_set1.feed(b) {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                b
            };
            self.push_key(code);
        }
    }

    fn push_key(&mut self, code: u8) {
        if self.keys.len() < QUEUE_LEN - 1 {
            self.keys.push_back(code);
        } else if self.keys.len() == QUEUE_LEN - 1 {
            // The last slot is kept for the overrun marker so the host
            // learns keys were lost; everything after it is dropped.
            self.keys.push_back(if self.set == 1 { 0xff } else { 0x00 });
        }
    }

    fn reply(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // A guest that never reads could otherwise grow this forever.
            if self.replies.len() < QUEUE_LEN {
                self.replies.push_back(b);
            }
        }
    }

    fn defaults(&mut self) {
        self.set = 2;
        self.typematic = DEFAULT_TYPEMATIC;
        self.to_set1.clear();
    }

    /// A byte from the host.
    pub fn write(&mut self, byte: u8) {
        // A command byte in place of an expected argument aborts the old
        // command, as on real keyboards; anything below ED is an argument.
        if self.pending != Pending::None && byte < 0xed {
            self.argument(byte);
            return;
        }
        self.pending = Pending::None;
        self.command(byte);
    }

    fn argument(&mut self, byte: u8) {
        match self.pending {
            Pending::Leds => {
                self.leds = byte & 7;
                self.pending = Pending::None;
                self.reply(&[ACK]);
            }
            Pending::Typematic => {
                self.typematic = byte & 0x7f;
                self.pending = Pending::None;
                self.reply(&[ACK]);
            }
            Pending::ScanSet => {
                self.pending = Pending::None;
                match byte {
                    0 => {
                        let set = self.set;
                        self.reply(&[ACK, set]);
                    }
                    1 | 2 => {
                        self.set = byte;
                        self.keys.clear();
                        self.to_set1.clear();
                        self.reply(&[ACK]);
                    }
                    _ => self.reply(&[RESEND]),
                }
            }
            Pending::KeyList => self.reply(&[ACK]),
            Pending::None => {}
        }
    }

    fn command(&mut self, cmd: u8) {
        match cmd {
            0xed => {
                self.pending = Pending::Leds;
                self.reply(&[ACK]);
            }
            0xee => self.reply(&[ECHO]),
            0xf0 => {
                self.pending = Pending::ScanSet;
                self.reply(&[ACK]);
            }
            0xf2 => self.reply(&[ACK, 0xab, 0x83]),
            0xf3 => {
                self.pending = Pending::Typematic;
                self.reply(&[ACK]);
            }
            0xf4 => {
                self.keys.clear();
                self.scanning = true;
                self.reply(&[ACK]);
            }
            0xf5 => {
                self.keys.clear();
                self.defaults();
                self.scanning = false;
                self.reply(&[ACK]);
            }
            0xf6 => {
                self.keys.clear();
                self.defaults();
                self.scanning = true;
                self.reply(&[ACK]);
            }
            // Set-3 key attribute commands: accepted, no effect in sets 1/2.
            0xf7..=0xfa => self.reply(&[ACK]),
            0xfb..=0xfd => {
                self.pending = Pending::KeyList;
                self.reply(&[ACK]);
            }
            0xfe => {
                let b = self.last_sent.unwrap_or(ACK);
                self.reply(&[b]);
            }
            0xff => {
                self.reset();
                self.reply(&[ACK, BAT_OK]);
            }
            _ => self.reply(&[RESEND]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(k: &mut Ps2Keyboard) -> Vec<u8> {
        std::iter::from_fn(|| k.read()).collect()
    }

    #[test]
    fn translation_table_known_keys() {
        // A, Esc, Enter, space, F7, F12, keypad 0, left shift.
        let pairs = [
            (0x1c, 0x1e),
            (0x76, 0x01),
            (0x5a, 0x1c),
            (0x29, 0x39),
            (0x83, 0x41),
            (0x07, 0x58),
            (0x70, 0x52),
            (0x12, 0x2a),
            (0xe0, 0xe0),
            (0xfa, 0xfa),
        ];
        for (s2, s1) in pairs {
            assert_eq!(set2_to_set1(s2), s1, "set 2 code {s2:#x}");
        }
    }

    #[test]
    fn translator_folds_break_prefix() {
        let mut t = Set1Translator::default();
        let out: Vec<u8> = [0x1c, 0xf0, 0x1c, 0xe0, 0xf0, 0x75]
            .iter()
            .filter_map(|&b| t.feed(b))
            .collect();
        assert_eq!(out, [0x1e, 0x9e, 0xe0, 0xc8]);
    }

    #[test]
    fn key_event_set2_passes_through() {
        let mut k = Ps2Keyboard::new();
        assert!(!k.has_data());
        k.key_event(&[0x1c]);
        k.key_event(&[0xf0, 0x1c]);
        assert!(k.has_data());
        assert_eq!(drain(&mut k), [0x1c, 0xf0, 0x1c]);
        assert!(!k.has_data());
    }

    #[test]
    fn reset_acks_then_bat() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf0);
        k.write(0x01);
        k.write(0xf5);
        drain(&mut k);
        k.write(0xff);
        assert_eq!(drain(&mut k), [ACK, BAT_OK]);
        assert_eq!(k.scan_code_set(), 2);
        assert!(k.scanning());
    }

    #[test]
    fn identify() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf2);
        assert_eq!(drain(&mut k), [ACK, 0xab, 0x83]);
    }

    #[test]
    fn echo_is_not_acked() {
        let mut k = Ps2Keyboard::new();
        k.write(0xee);
        assert_eq!(drain(&mut k), [ECHO]);
    }

    #[test]
    fn leds_take_argument() {
        let mut k = Ps2Keyboard::new();
        k.write(0xed);
        assert_eq!(drain(&mut k), [ACK]);
        k.write(0x05);
        assert_eq!(drain(&mut k), [ACK]);
        assert_eq!(k.leds(), 5);
    }

    #[test]
    fn command_aborts_pending_argument() {
        let mut k = Ps2Keyboard::new();
        k.write(0xed);
        k.write(0xf2);
        assert_eq!(drain(&mut k), [ACK, ACK, 0xab, 0x83]);
        assert_eq!(k.leds(), 0);
        // The next low byte is a command again (unknown → resend).
        k.write(0x01);
        assert_eq!(drain(&mut k), [RESEND]);
    }

    #[test]
    fn typematic_takes_argument() {
        let mut k = Ps2Keyboard::new();
        assert_eq!(k.typematic(), DEFAULT_TYPEMATIC);
        k.write(0xf3);
        k.write(0x20);
        assert_eq!(drain(&mut k), [ACK, ACK]);
        assert_eq!(k.typematic(), 0x20);
        k.write(0xf6);
        assert_eq!(drain(&mut k), [ACK]);
        assert_eq!(k.typematic(), DEFAULT_TYPEMATIC);
    }

    #[test]
    fn scan_code_set_get_and_set() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf0);
        k.write(0x00);
        assert_eq!(drain(&mut k), [ACK, ACK, 2]);
        k.write(0xf0);
        k.write(0x01);
        assert_eq!(drain(&mut k), [ACK, ACK]);
        k.write(0xf0);
        k.write(0x00);
        assert_eq!(drain(&mut k), [ACK, ACK, 1]);
        // Set 1 output: make and break of 'A', E0-prefixed cursor up.
        k.key_event(&[0x1c]);
        k.key_event(&[0xf0, 0x1c]);
        k.key_event(&[0xe0, 0xf0, 0x75]);
        assert_eq!(drain(&mut k), [0x1e, 0x9e, 0xe0, 0xc8]);
    }

    #[test]
    fn set3_and_bad_sets_refused() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf0);
        k.write(0x03);
        assert_eq!(drain(&mut k), [ACK, RESEND]);
        k.write(0xf0);
        k.write(0x07);
        assert_eq!(drain(&mut k), [ACK, RESEND]);
        assert_eq!(k.scan_code_set(), 2);
    }

    #[test]
    fn disable_stops_keys_enable_resumes() {
        let mut k = Ps2Keyboard::new();
        k.key_event(&[0x1c]);
        k.write(0xf5);
        // F5 throws away buffered keys and stops scanning.
        assert_eq!(drain(&mut k), [ACK]);
        k.key_event(&[0x1c]);
        assert!(!k.has_data());
        k.write(0xf4);
        assert_eq!(drain(&mut k), [ACK]);
        k.key_event(&[0x1c]);
        assert_eq!(drain(&mut k), [0x1c]);
    }

    #[test]
    fn f5_restores_default_set() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf0);
        k.write(0x01);
        k.write(0xf5);
        drain(&mut k);
        assert_eq!(k.scan_code_set(), 2);
        assert!(!k.scanning());
    }

    #[test]
    fn resend_repeats_last_byte() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf2);
        assert_eq!(drain(&mut k), [ACK, 0xab, 0x83]);
        k.write(0xfe);
        assert_eq!(drain(&mut k), [0x83]);
    }

    #[test]
    fn unknown_command_gets_resend() {
        let mut k = Ps2Keyboard::new();
        k.write(0x42);
        assert_eq!(drain(&mut k), [RESEND]);
        k.write(0xf1);
        assert_eq!(drain(&mut k), [RESEND]);
    }

    #[test]
    fn set3_key_commands_acked() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf8);
        k.write(0xfb);
        k.write(0x1c);
        k.write(0x1b);
        assert_eq!(drain(&mut k), [ACK, ACK, ACK, ACK]);
    }

    #[test]
    fn replies_overtake_buffered_keys() {
        let mut k = Ps2Keyboard::new();
        k.key_event(&[0x1c]);
        k.write(0xee);
        assert_eq!(drain(&mut k), [ECHO, 0x1c]);
    }

    #[test]
    fn overflow_marks_last_slot_with_zero() {
        let mut k = Ps2Keyboard::new();
        for _ in 0..40 {
            k.key_event(&[0x1c]);
        }
        let out = drain(&mut k);
        assert_eq!(out.len(), QUEUE_LEN);
        assert!(out[..QUEUE_LEN - 1].iter().all(|&b| b == 0x1c));
        assert_eq!(out[QUEUE_LEN - 1], 0x00);
    }

    #[test]
    fn overflow_marker_in_set1_is_ff() {
        let mut k = Ps2Keyboard::new();
        k.write(0xf0);
        k.write(0x01);
        drain(&mut k);
        for _ in 0..40 {
            k.key_event(&[0x1c]);
        }
        assert_eq!(drain(&mut k).last(), Some(&0xff));
    }

    #[test]
    fn reply_queue_is_bounded() {
        let mut k = Ps2Keyboard::new();
        for _ in 0..100 {
            k.write(0xee);
        }
        assert_eq!(drain(&mut k).len(), QUEUE_LEN);
    }

    #[test]
    fn reset_method_clears_everything() {
        let mut k = Ps2Keyboard::new();
        k.key_event(&[0x1c]);
        k.write(0xed);
        k.reset();
        assert!(!k.has_data());
        // No argument pending any more: 0x05 is an unknown command.
        k.write(0x05);
        assert_eq!(drain(&mut k), [RESEND]);
    }
}
