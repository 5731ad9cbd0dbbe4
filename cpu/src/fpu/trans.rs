//! Transcendental functions for F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN,
//! FCOS and FSINCOS. Everything is evaluated in SoftFloat's binary128
//! (113-bit significand, 49 bits more than the x87 result), with argument
//! reduction against a 213-bit pi/2 split in three parts, and rounded once to
//! 64 bits at the end: the result is within one unit in the last place of the
//! extended-precision result, as the SDM requires.

use super::F80;
use softfloat_sys as sf;

#[derive(Clone, Copy, Debug)]
pub struct Q(sf::float128_t);

const fn q(lo: u64, hi: u64) -> Q {
    Q(sf::float128_t { v: [lo, hi] })
}

pub const PI: Q = q(0x8469898cc51701b8, 0x4000921fb54442d1);
pub const PI_2: Q = q(0x8469898cc51701b8, 0x3fff921fb54442d1);
pub const PI_4: Q = q(0x8469898cc51701b8, 0x3ffe921fb54442d1);
const LOG2E: Q = q(0xe1777d0ffda0d23a, 0x3fff71547652b82f);
const LN2: Q = q(0xf35793c7673007e6, 0x3ffe62e42fefa39e);
// pi/2 = P1 + P2 + P3; P1 and P2 have 50 significant bits so k*P1, k*P2 are
// exact for |k| < 2^63.
const P1: Q = q(0x8000000000000000, 0x3fff921fb54442d1);
const P2: Q = q(0x0000000000000000, 0x3fc91a62633145c0);
const P3: Q = q(0x1114cf98e804177d, 0x3f97b839a252049c);

#[allow(clippy::should_implement_trait)]
impl Q {
    pub fn from_f80(a: F80) -> Q {
        Q(unsafe { sf::extF80_to_f128(a.sf()) })
    }
    /// Round to extended precision with the current SoftFloat rounding mode.
    pub fn to_f80(self) -> F80 {
        F80::from_sf(unsafe { sf::f128_to_extF80(self.0) })
    }
    pub fn int(v: i64) -> Q {
        Q(unsafe { sf::i64_to_f128(v) })
    }
    pub fn add(self, b: Q) -> Q {
        Q(unsafe { sf::f128_add(self.0, b.0) })
    }
    pub fn sub(self, b: Q) -> Q {
        Q(unsafe { sf::f128_sub(self.0, b.0) })
    }
    pub fn mul(self, b: Q) -> Q {
        Q(unsafe { sf::f128_mul(self.0, b.0) })
    }
    pub fn div(self, b: Q) -> Q {
        Q(unsafe { sf::f128_div(self.0, b.0) })
    }
    pub fn sqrt(self) -> Q {
        Q(unsafe { sf::f128_sqrt(self.0) })
    }
    pub fn neg(self) -> Q {
        Q(sf::float128_t {
            v: [self.0.v[0], self.0.v[1] ^ (1 << 63)],
        })
    }
    pub fn abs(self) -> Q {
        Q(sf::float128_t {
            v: [self.0.v[0], self.0.v[1] & !(1 << 63)],
        })
    }
    pub fn is_neg(self) -> bool {
        self.0.v[1] >> 63 != 0
    }
    pub fn lt(self, b: Q) -> bool {
        unsafe { sf::f128_lt(self.0, b.0) }
    }
    pub fn is_zero(self) -> bool {
        self.0.v[0] == 0 && self.0.v[1] << 1 == 0
    }
    fn round_even(self) -> Q {
        Q(unsafe { sf::f128_roundToInt(self.0, sf::softfloat_round_near_even, false) })
    }
    fn to_i64(self) -> i64 {
        unsafe { sf::f128_to_i64(self.0, sf::softfloat_round_near_even, false) }
    }
}

/// sum over n of x^(2n+1) * c_n where c is produced by `coef(n)`; terms are
/// added from the smallest up.
fn odd_series(x: Q, terms: usize, coef: impl Fn(usize) -> Q) -> Q {
    let x2 = x.mul(x);
    let mut acc = coef(terms - 1);
    for n in (0..terms - 1).rev() {
        acc = acc.mul(x2).add(coef(n));
    }
    acc.mul(x)
}

/// Reduce x (|x| < 2^63) to r in [-pi/4, pi/4] and the quadrant k mod 4.
fn reduce(x: Q) -> (Q, u32) {
    let two_over_pi = Q::int(2).div(PI);
    let kq = x.mul(two_over_pi).round_even();
    if kq.is_zero() {
        return (x, 0);
    }
    let r = x.sub(kq.mul(P1)).sub(kq.mul(P2)).sub(kq.mul(P3));
    (r, (kq.to_i64() & 3) as u32)
}

fn sin_poly(r: Q) -> Q {
    // sin r = r - r^3/3! + r^5/5! ...: 17 terms reach r^33/33! < 2^-120.
    let mut c = [Q::int(1); 17];
    let mut f = Q::int(1);
    for (n, cn) in c.iter_mut().enumerate().skip(1) {
        let k = 2 * n as i64;
        f = f.mul(Q::int(k * (k + 1)));
        *cn = if n % 2 == 1 {
            Q::int(1).div(f).neg()
        } else {
            Q::int(1).div(f)
        };
    }
    odd_series(r, 17, |n| c[n])
}

fn cos_poly(r: Q) -> Q {
    // cos r = 1 - r^2/2! + r^4/4! ...
    let r2 = r.mul(r);
    let mut term = Q::int(1);
    let mut sum = Q::int(1);
    for n in 1..18i64 {
        term = term.mul(r2).div(Q::int((2 * n - 1) * (2 * n))).neg();
        sum = sum.add(term);
    }
    sum
}

/// (sin x, cos x) for finite |x| < 2^63.
pub fn sin_cos(x: F80) -> (Q, Q) {
    let (r, k) = reduce(Q::from_f80(x));
    let (s, c) = (sin_poly(r), cos_poly(r));
    match k {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    }
}

/// atan(t) for 0 <= t <= 1.
fn atan_unit(t: Q) -> Q {
    // Three halvings: atan t = 2 atan(t / (1 + sqrt(1 + t^2))), to t < 0.1.
    let one = Q::int(1);
    let mut t = t;
    for _ in 0..3 {
        t = t.div(one.add(one.add(t.mul(t)).sqrt()));
    }
    let s = odd_series(t, 26, |n| {
        let d = Q::int(2 * n as i64 + 1);
        if n % 2 == 1 {
            one.div(d).neg()
        } else {
            one.div(d)
        }
    });
    s.mul(Q::int(8))
}

/// atan2(y, x) for finite values, not both zero (FPATAN computes
/// atan(ST1/ST0), i.e. y = ST1, x = ST0).
pub fn atan2(y: F80, x: F80) -> Q {
    let (yq, xq) = (Q::from_f80(y).abs(), Q::from_f80(x).abs());
    let mut a = if yq.lt(xq) || (!xq.lt(yq)) {
        if xq.is_zero() {
            PI_2
        } else {
            atan_unit(yq.div(xq))
        }
    } else {
        PI_2.sub(atan_unit(xq.div(yq)))
    };
    if x.sign() {
        a = PI.sub(a);
    }
    if y.sign() {
        a.neg()
    } else {
        a
    }
}

/// ln(1 + u) for u = s-form: 2 atanh(s) with s = u / (2 + u), |s| < 0.18.
fn ln_atanh(s: Q) -> Q {
    let one = Q::int(1);
    odd_series(s, 34, |n| one.div(Q::int(2 * n as i64 + 1))).mul(Q::int(2))
}

/// log2(x) for finite x > 0.
pub fn log2(x: F80) -> Q {
    let (m, mut e) = super::normalize(x);
    let mut mq = Q::from_f80(m);
    // m in [1, 2): move to [sqrt(1/2), sqrt(2)).
    let sqrt2 = Q::int(2).sqrt();
    if sqrt2.lt(mq) {
        mq = mq.div(Q::int(2));
        e += 1;
    }
    let one = Q::int(1);
    let s = mq.sub(one).div(mq.add(one));
    Q::int(e as i64).add(ln_atanh(s).mul(LOG2E))
}

/// log2(1 + x) for |x| < 1 - sqrt(2)/2.
pub fn log2p1(x: F80) -> Q {
    let xq = Q::from_f80(x);
    let s = xq.div(Q::int(2).add(xq));
    ln_atanh(s).mul(LOG2E)
}

/// 2^x - 1 for |x| <= 1.
pub fn exp2m1(x: F80) -> Q {
    let y = Q::from_f80(x).mul(LN2);
    let mut term = y;
    let mut sum = y;
    for n in 2..40i64 {
        term = term.mul(y).div(Q::int(n));
        sum = sum.add(term);
    }
    sum
}
