//! A PS/2 mouse (with the IntelliMouse wheel and 5-button extensions) as
//! seen from its cable: bytes in from the host, bytes out to the host.
//!
//! Motion from the host is accumulated and packed into packets while the
//! queue has room for a whole packet; whatever does not fit (or exceeds the
//! 9-bit packet range) stays accumulated and goes out as the host drains
//! the queue, so no movement is lost and packets never straddle a full
//! queue. Because of that the overflow bits are never set.

use std::collections::VecDeque;

/// Bytes the mouse holds for the host.
pub const QUEUE_LEN: usize = 16;

pub const ACK: u8 = 0xfa;
pub const RESEND: u8 = 0xfe;
pub const BAT_OK: u8 = 0xaa;

/// Packet byte 0 bits.
pub const PKT_LEFT: u8 = 1 << 0;
pub const PKT_RIGHT: u8 = 1 << 1;
pub const PKT_MIDDLE: u8 = 1 << 2;
pub const PKT_SYNC: u8 = 1 << 3;
pub const PKT_X_SIGN: u8 = 1 << 4;
pub const PKT_Y_SIGN: u8 = 1 << 5;
pub const PKT_X_OVERFLOW: u8 = 1 << 6;
pub const PKT_Y_OVERFLOW: u8 = 1 << 7;

/// Status byte 0 bits (E9).
pub const ST_RIGHT: u8 = 1 << 0;
pub const ST_MIDDLE: u8 = 1 << 1;
pub const ST_LEFT: u8 = 1 << 2;
pub const ST_SCALING_2_1: u8 = 1 << 4;
pub const ST_ENABLED: u8 = 1 << 5;
pub const ST_REMOTE: u8 = 1 << 6;

/// Device IDs reported by F2.
pub const ID_STANDARD: u8 = 0;
pub const ID_WHEEL: u8 = 3;
pub const ID_FIVE_BUTTON: u8 = 4;

const DEFAULT_RATE: u8 = 100;
/// 4 counts/mm.
const DEFAULT_RESOLUTION: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Stream,
    Remote,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    None,
    SampleRate,
    Resolution,
}

pub struct Ps2Mouse {
    /// Command responses (and EB reads); sent before any stream packet.
    replies: VecDeque<u8>,
    /// Stream-mode packets, always whole.
    packets: VecDeque<u8>,
    pending: Pending,
    mode: Mode,
    wrap: bool,
    reporting: bool,
    scaling_2_1: bool,
    rate: u8,
    resolution: u8,
    id: u8,
    /// The last three sample rates set, oldest first, for the ID knocks.
    knock: [u8; 3],
    dx: i32,
    dy: i32,
    dz: i32,
    buttons: u8,
    /// Buttons in the last packet sent, so a click alone makes a packet.
    sent_buttons: u8,
    last_sent: Option<u8>,
}

impl Default for Ps2Mouse {
    fn default() -> Self {
        Self::new()
    }
}

impl Ps2Mouse {
    pub fn new() -> Self {
        Ps2Mouse {
            replies: VecDeque::with_capacity(QUEUE_LEN),
            packets: VecDeque::with_capacity(QUEUE_LEN),
            pending: Pending::None,
            mode: Mode::Stream,
            wrap: false,
            reporting: false,
            scaling_2_1: false,
            rate: DEFAULT_RATE,
            resolution: DEFAULT_RESOLUTION,
            id: ID_STANDARD,
            knock: [0; 3],
            dx: 0,
            dy: 0,
            dz: 0,
            buttons: 0,
            sent_buttons: 0,
            last_sent: None,
        }
    }

    /// Power-on state, without the BAT bytes (FF sends those).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The ID F2 reports: 0 plain, 3 wheel, 4 wheel + 5 buttons.
    pub fn id(&self) -> u8 {
        self.id
    }

    pub fn sample_rate(&self) -> u8 {
        self.rate
    }

    pub fn resolution(&self) -> u8 {
        self.resolution
    }

    pub fn has_data(&self) -> bool {
        !self.replies.is_empty() || !self.packets.is_empty()
    }

    pub fn read(&mut self) -> Option<u8> {
        let b = self
            .replies
            .pop_front()
            .or_else(|| self.packets.pop_front())?;
        self.last_sent = Some(b);
        self.stream();
        Some(b)
    }

    /// Host mouse input. `dx` positive right, `dy` positive **up** (PS/2
    /// convention: negate screen-space deltas), `dz` wheel as the packet
    /// carries it (positive = towards the user). `buttons`: bit 0 left,
    /// bit 1 right, bit 2 middle, bits 3/4 the side buttons (ID 4 only).
    pub fn motion(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.buttons = buttons & 0x1f;
        let streaming = self.mode == Mode::Stream && self.reporting && !self.wrap;
        if self.mode == Mode::Remote || streaming {
            self.dx = self.dx.saturating_add(dx);
            self.dy = self.dy.saturating_add(dy);
            if self.id != ID_STANDARD {
                self.dz = self.dz.saturating_add(dz);
            }
            self.stream();
        } else {
            // Nobody is listening: a later enable must not replay old moves.
            self.sent_buttons = self.buttons;
        }
    }

    fn packet_len(&self) -> usize {
        if self.id == ID_STANDARD {
            3
        } else {
            4
        }
    }

    fn stream(&mut self) {
        if self.mode != Mode::Stream || !self.reporting || self.wrap {
            return;
        }
        while self.dx != 0 || self.dy != 0 || self.dz != 0 || self.buttons != self.sent_buttons {
            if self.packets.len() + self.packet_len() > QUEUE_LEN {
                return;
            }
            let p = self.make_packet(self.scaling_2_1);
            self.packets.extend(p);
        }
    }

    /// Scaling 2:1 maps small moves through a table and doubles big ones.
    fn scale(d: i32) -> i32 {
        let m = match d.unsigned_abs() {
            0 => 0,
            1 | 2 => 1,
            3 => 3,
            4 => 6,
            5 => 9,
            n => (n as i32).saturating_mul(2),
        };
        if d < 0 {
            -m
        } else {
            m
        }
    }

    /// Packs up to one packet's worth of accumulated motion; the rest stays.
    fn make_packet(&mut self, scaled: bool) -> Vec<u8> {
        let dx = self.dx.clamp(-256, 255);
        let dy = self.dy.clamp(-256, 255);
        self.dx -= dx;
        self.dy -= dy;
        let (mut px, mut py) = (dx, dy);
        if scaled {
            px = Self::scale(px).clamp(-256, 255);
            py = Self::scale(py).clamp(-256, 255);
        }
        let b = self.buttons;
        let mut b0 = PKT_SYNC | (b & (PKT_LEFT | PKT_RIGHT | PKT_MIDDLE));
        if px < 0 {
            b0 |= PKT_X_SIGN;
        }
        if py < 0 {
            b0 |= PKT_Y_SIGN;
        }
        let mut bytes = [b0, px as u8, py as u8, 0];
        let len = self.packet_len();
        match self.id {
            ID_WHEEL => {
                let dz = self.dz.clamp(-128, 127);
                self.dz -= dz;
                bytes[3] = dz as u8;
            }
            ID_FIVE_BUTTON => {
                let dz = self.dz.clamp(-8, 7);
                self.dz -= dz;
                bytes[3] = (dz as u8 & 0x0f) | ((b >> 3) & 3) << 4;
            }
            // A plain mouse has no wheel: its movement is dropped.
            _ => self.dz = 0,
        }
        self.sent_buttons = b;
        bytes[..len].to_vec()
    }

    fn reply(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.replies.len() < QUEUE_LEN {
                self.replies.push_back(b);
            }
        }
    }

    fn clear_motion(&mut self) {
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
    }

    fn defaults(&mut self) {
        self.rate = DEFAULT_RATE;
        self.resolution = DEFAULT_RESOLUTION;
        self.scaling_2_1 = false;
        self.mode = Mode::Stream;
        self.reporting = false;
    }

    fn status(&self) -> [u8; 3] {
        let mut s = 0;
        if self.buttons & 1 != 0 {
            s |= ST_LEFT;
        }
        if self.buttons & 2 != 0 {
            s |= ST_RIGHT;
        }
        if self.buttons & 4 != 0 {
            s |= ST_MIDDLE;
        }
        if self.scaling_2_1 {
            s |= ST_SCALING_2_1;
        }
        if self.reporting {
            s |= ST_ENABLED;
        }
        if self.mode == Mode::Remote {
            s |= ST_REMOTE;
        }
        [s, self.resolution, self.rate]
    }

    /// A byte from the host.
    pub fn write(&mut self, byte: u8) {
        match self.pending {
            Pending::SampleRate => {
                self.pending = Pending::None;
                self.set_rate(byte);
                return;
            }
            Pending::Resolution => {
                self.pending = Pending::None;
                if byte <= 3 {
                    self.resolution = byte;
                    self.reply(&[ACK]);
                } else {
                    self.reply(&[RESEND]);
                }
                return;
            }
            Pending::None => {}
        }
        if self.wrap && byte != 0xec && byte != 0xff {
            self.reply(&[byte]);
            return;
        }
        // The mouse abandons any report in flight when the host talks to it.
        self.packets.clear();
        self.command(byte);
    }

    fn set_rate(&mut self, rate: u8) {
        self.rate = rate;
        self.knock = [self.knock[1], self.knock[2], rate];
        match self.knock {
            [200, 100, 80] if self.id == ID_STANDARD => self.id = ID_WHEEL,
            [200, 200, 80] if self.id == ID_WHEEL => self.id = ID_FIVE_BUTTON,
            _ => {}
        }
        self.reply(&[ACK]);
    }

    fn command(&mut self, cmd: u8) {
        match cmd {
            0xff => {
                self.reset();
                self.reply(&[ACK, BAT_OK, ID_STANDARD]);
            }
            0xfe => {
                let b = self.last_sent.unwrap_or(ACK);
                self.reply(&[b]);
            }
            0xf6 => {
                self.defaults();
                self.clear_motion();
                self.reply(&[ACK]);
            }
            0xf5 => {
                self.reporting = false;
                self.clear_motion();
                self.reply(&[ACK]);
            }
            0xf4 => {
                self.reporting = true;
                self.clear_motion();
                self.reply(&[ACK]);
            }
            0xf3 => {
                self.pending = Pending::SampleRate;
                self.reply(&[ACK]);
            }
            0xf2 => {
                let id = self.id;
                self.reply(&[ACK, id]);
            }
            0xf0 => {
                self.mode = Mode::Remote;
                self.clear_motion();
                self.reply(&[ACK]);
            }
            0xee => {
                self.wrap = true;
                self.reply(&[ACK]);
            }
            0xec => {
                self.wrap = false;
                self.reply(&[ACK]);
            }
            0xeb => {
                // Remote reads are never scaled and always produce a packet.
                let p = self.make_packet(false);
                self.reply(&[ACK]);
                self.reply(&p);
            }
            0xea => {
                self.mode = Mode::Stream;
                self.clear_motion();
                self.reply(&[ACK]);
            }
            0xe9 => {
                let s = self.status();
                self.reply(&[ACK, s[0], s[1], s[2]]);
            }
            0xe8 => {
                self.pending = Pending::Resolution;
                self.reply(&[ACK]);
            }
            0xe7 => {
                self.scaling_2_1 = true;
                self.reply(&[ACK]);
            }
            0xe6 => {
                self.scaling_2_1 = false;
                self.reply(&[ACK]);
            }
            _ => self.reply(&[RESEND]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &mut Ps2Mouse) -> Vec<u8> {
        std::iter::from_fn(|| m.read()).collect()
    }

    fn cmd(m: &mut Ps2Mouse, bytes: &[u8]) -> Vec<u8> {
        for &b in bytes {
            m.write(b);
        }
        drain(m)
    }

    fn enabled() -> Ps2Mouse {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xf4]), [ACK]);
        m
    }

    #[test]
    fn reset_sequence() {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xff]), [ACK, BAT_OK, 0x00]);
    }

    #[test]
    fn reset_clears_wheel_id_and_reporting() {
        let mut m = enabled();
        cmd(&mut m, &[0xf3, 200, 0xf3, 100, 0xf3, 80]);
        assert_eq!(m.id(), ID_WHEEL);
        cmd(&mut m, &[0xff]);
        assert_eq!(m.id(), ID_STANDARD);
        m.motion(1, 1, 0, 0);
        assert!(!m.has_data());
    }

    #[test]
    fn no_packets_until_enabled() {
        let mut m = Ps2Mouse::new();
        m.motion(5, 5, 0, 1);
        assert!(!m.has_data());
        // Motion while disabled is not replayed once reporting is on.
        assert_eq!(cmd(&mut m, &[0xf4]), [ACK]);
        m.motion(1, 0, 0, 1);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_LEFT, 1, 0]);
    }

    #[test]
    fn packet_negative_dy_and_buttons() {
        let mut m = enabled();
        m.motion(3, -2, 0, 0b011);
        assert_eq!(
            drain(&mut m),
            [PKT_SYNC | PKT_Y_SIGN | PKT_LEFT | PKT_RIGHT, 3, 0xfe]
        );
        m.motion(-1, 4, 0, 0b100);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_X_SIGN | PKT_MIDDLE, 0xff, 4]);
    }

    #[test]
    fn button_change_alone_sends_packet() {
        let mut m = enabled();
        m.motion(0, 0, 0, 1);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_LEFT, 0, 0]);
        m.motion(0, 0, 0, 1);
        assert!(!m.has_data());
        m.motion(0, 0, 0, 0);
        assert_eq!(drain(&mut m), [PKT_SYNC, 0, 0]);
    }

    #[test]
    fn large_motion_split_without_overflow() {
        let mut m = enabled();
        m.motion(300, -300, 0, 0);
        let out = drain(&mut m);
        assert_eq!(out.len(), 6);
        assert_eq!(out[0], PKT_SYNC | PKT_Y_SIGN);
        assert_eq!(out[0] & (PKT_X_OVERFLOW | PKT_Y_OVERFLOW), 0);
        assert_eq!((out[1], out[2]), (255, 0x00)); // +255, -256
        assert_eq!(out[3], PKT_SYNC | PKT_Y_SIGN);
        assert_eq!((out[4], out[5] as i8), (45, -44));
    }

    #[test]
    fn full_queue_defers_motion() {
        let mut m = enabled();
        for i in 0..10 {
            m.motion(1, 0, 0, (i & 1) as u8);
        }
        // Five whole packets fit in 16 bytes; the rest waits, never torn.
        let mut total = 0;
        let mut bytes = 0;
        while let Some(b0) = m.read() {
            assert_ne!(b0 & PKT_SYNC, 0, "packet boundary lost");
            total += m.read().unwrap() as i32;
            m.read().unwrap();
            bytes += 3;
        }
        assert_eq!(total, 10);
        assert!(bytes > QUEUE_LEN);
    }

    #[test]
    fn intellimouse_knock() {
        let mut m = enabled();
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, 0]);
        assert_eq!(
            cmd(&mut m, &[0xf3, 200, 0xf3, 100, 0xf3, 80]),
            [ACK, ACK, ACK, ACK, ACK, ACK]
        );
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, ID_WHEEL]);
        m.motion(1, -1, -2, 0);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_Y_SIGN, 1, 0xff, 0xfe]);
    }

    #[test]
    fn wrong_knock_keeps_id() {
        let mut m = Ps2Mouse::new();
        cmd(&mut m, &[0xf3, 200, 0xf3, 80, 0xf3, 100]);
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, 0]);
    }

    #[test]
    fn explorer_knock_after_wheel() {
        let mut m = enabled();
        cmd(&mut m, &[0xf3, 200, 0xf3, 100, 0xf3, 80]);
        cmd(&mut m, &[0xf3, 200, 0xf3, 200, 0xf3, 80]);
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, ID_FIVE_BUTTON]);
        m.motion(0, 0, 1, 0b01000);
        assert_eq!(drain(&mut m), [PKT_SYNC, 0, 0, 0x11]);
        m.motion(0, 0, -1, 0b10000);
        assert_eq!(drain(&mut m), [PKT_SYNC, 0, 0, 0x2f]);
    }

    #[test]
    fn standard_mouse_drops_wheel() {
        let mut m = enabled();
        m.motion(0, 0, 3, 0);
        assert!(!m.has_data());
    }

    #[test]
    fn status_request() {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xe9]), [ACK, 0, 2, 100]);
        cmd(&mut m, &[0xf4, 0xe7, 0xe8, 3, 0xf3, 40, 0xf0]);
        m.motion(0, 0, 0, 0b111);
        assert_eq!(
            cmd(&mut m, &[0xe9]),
            [
                ACK,
                ST_REMOTE | ST_ENABLED | ST_SCALING_2_1 | ST_LEFT | ST_MIDDLE | ST_RIGHT,
                3,
                40
            ]
        );
        assert_eq!(m.sample_rate(), 40);
        assert_eq!(m.resolution(), 3);
    }

    #[test]
    fn scaling_commands() {
        let mut m = enabled();
        assert_eq!(cmd(&mut m, &[0xe7]), [ACK]);
        m.motion(4, -5, 0, 0);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_Y_SIGN, 6, (-9i8) as u8]);
        m.motion(10, 2, 0, 0);
        assert_eq!(drain(&mut m), [PKT_SYNC, 20, 1]);
        assert_eq!(cmd(&mut m, &[0xe6]), [ACK]);
        m.motion(4, 0, 0, 0);
        assert_eq!(drain(&mut m), [PKT_SYNC, 4, 0]);
    }

    #[test]
    fn bad_resolution_refused() {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xe8, 4]), [ACK, RESEND]);
        assert_eq!(m.resolution(), 2);
    }

    #[test]
    fn defaults_command() {
        let mut m = enabled();
        cmd(&mut m, &[0xe7, 0xe8, 0, 0xf3, 10, 0xf0]);
        assert_eq!(cmd(&mut m, &[0xf6]), [ACK]);
        assert_eq!(cmd(&mut m, &[0xe9]), [ACK, 0, 2, 100]);
    }

    #[test]
    fn disable_stops_stream() {
        let mut m = enabled();
        assert_eq!(cmd(&mut m, &[0xf5]), [ACK]);
        m.motion(1, 1, 0, 0);
        assert!(!m.has_data());
    }

    #[test]
    fn remote_mode_and_read_data() {
        let mut m = enabled();
        assert_eq!(cmd(&mut m, &[0xf0]), [ACK]);
        m.motion(7, -3, 0, 1);
        assert!(!m.has_data());
        assert_eq!(
            cmd(&mut m, &[0xeb]),
            [ACK, PKT_SYNC | PKT_Y_SIGN | PKT_LEFT, 7, 0xfd]
        );
        // No movement since: EB still answers, with zero deltas.
        assert_eq!(cmd(&mut m, &[0xeb]), [ACK, PKT_SYNC | PKT_LEFT, 0, 0]);
        assert_eq!(cmd(&mut m, &[0xea]), [ACK]);
        m.motion(1, 0, 0, 1);
        assert_eq!(drain(&mut m), [PKT_SYNC | PKT_LEFT, 1, 0]);
    }

    #[test]
    fn wrap_mode_echoes_until_reset_wrap() {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xee]), [ACK]);
        assert_eq!(cmd(&mut m, &[0x12, 0xf2, 0xe9]), [0x12, 0xf2, 0xe9]);
        assert_eq!(cmd(&mut m, &[0xec]), [ACK]);
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, 0]);
    }

    #[test]
    fn wrap_mode_ignores_motion() {
        let mut m = enabled();
        cmd(&mut m, &[0xee]);
        m.motion(3, 3, 0, 1);
        assert!(!m.has_data());
    }

    #[test]
    fn remote_read_is_not_scaled() {
        let mut m = Ps2Mouse::new();
        cmd(&mut m, &[0xe7, 0xf0]);
        m.motion(4, 0, 0, 0);
        assert_eq!(cmd(&mut m, &[0xeb]), [ACK, PKT_SYNC, 4, 0]);
    }

    #[test]
    fn wrap_mode_left_by_reset() {
        let mut m = Ps2Mouse::new();
        cmd(&mut m, &[0xee]);
        assert_eq!(cmd(&mut m, &[0xff]), [ACK, BAT_OK, 0]);
        assert_eq!(cmd(&mut m, &[0xf2]), [ACK, 0]);
    }

    #[test]
    fn resend_and_unknown() {
        let mut m = Ps2Mouse::new();
        assert_eq!(cmd(&mut m, &[0xe9]), [ACK, 0, 2, 100]);
        assert_eq!(cmd(&mut m, &[0xfe]), [100]);
        assert_eq!(cmd(&mut m, &[0x00]), [RESEND]);
        assert_eq!(cmd(&mut m, &[0xf1]), [RESEND]);
    }

    #[test]
    fn command_discards_unread_packet() {
        let mut m = enabled();
        m.motion(1, 1, 0, 0);
        m.read();
        assert_eq!(cmd(&mut m, &[0xf5]), [ACK]);
    }

    #[test]
    fn reset_method() {
        let mut m = enabled();
        m.motion(1, 1, 0, 0);
        m.reset();
        assert!(!m.has_data());
        assert_eq!(cmd(&mut m, &[0xe9]), [ACK, 0, 2, 100]);
    }

    #[test]
    fn wrap_echo_bounded() {
        let mut m = Ps2Mouse::new();
        cmd(&mut m, &[0xee]);
        for _ in 0..100 {
            m.write(0x55);
        }
        assert_eq!(drain(&mut m).len(), QUEUE_LEN);
    }
}
