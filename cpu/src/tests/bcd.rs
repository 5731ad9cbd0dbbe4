//! DAA, DAS, AAA, AAS, AAM, AAD with the examples and pseudocode of SDM
//! Vol. 2A. OF (and for AAA/AAS also SF/ZF/PF) is undefined and masked out.

use super::*;

const CF: u64 = FLAG_CF;
const PF: u64 = FLAG_PF;
const AF: u64 = FLAG_AF;
const ZF: u64 = FLAG_ZF;
const SF: u64 = FLAG_SF;
const SZAPC: u64 = SF | ZF | AF | PF | CF;

fn run(f: impl FnOnce(&mut Asm) -> AsmResult, va: u32, vb: u32, fl: u64) -> (u32, u64) {
    let mut t = T::pm32(|a| {
        f(a)?;
        a.hlt()
    });
    t.set(EAX, va).set(EBX, vb).set_flags(fl).run();
    (t.r(EAX), t.arith())
}

#[test]
fn daa_sdm_example() {
    // SDM DAA example: 79H + 35H = AEH, DAA -> 14H, CF=1, AF=1, PF=1.
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.daa()
        },
        0x79,
        0x35,
        0,
    );
    assert_eq!(r, 0x14);
    assert_eq!(f & SZAPC, CF | AF | PF);
}

#[test]
fn daa_low_digit_only() {
    // 19 + 15 = 2EH -> 34.
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.daa()
        },
        0x19,
        0x15,
        0,
    );
    assert_eq!(r, 0x34);
    assert_eq!(f & (CF | AF), AF);
    // AF from the addition itself: 9 + 9 = 12H with AF -> 18.
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.daa()
        },
        0x09,
        0x09,
        0,
    );
    assert_eq!(r, 0x18);
    assert_eq!(f & (CF | AF), AF);
    // 99 + 1 -> 00 with CF.
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.daa()
        },
        0x99,
        0x01,
        0,
    );
    assert_eq!(r, 0x00);
    assert_eq!(f & (CF | ZF), CF | ZF);
}

#[test]
fn das_sdm_example() {
    // SDM DAS example: 35H - 47H = EEH, DAS -> 88H, SF=1 AF=1 PF=1 CF=1.
    let (r, f) = run(
        |a| {
            a.sub(al, bl)?;
            a.das()
        },
        0x35,
        0x47,
        0,
    );
    assert_eq!(r, 0x88);
    assert_eq!(f & SZAPC, SF | AF | PF | CF);
}

#[test]
fn aaa_adjusts_and_clears_high_nibble() {
    // 6 + 9 = 0FH -> AX = 0105H, CF = AF = 1.
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.aaa()
        },
        0x0006,
        0x09,
        0,
    );
    assert_eq!(r, 0x0105);
    assert_eq!(f & (CF | AF), CF | AF);
    // ASCII '5' (35H), no adjust: AL = 05H, AH unchanged, CF = AF = 0.
    let (r, f) = run(|a| a.aaa(), 0x0735, 0, CF);
    assert_eq!(r, 0x0705);
    assert_eq!(f & (CF | AF), 0);
}

#[test]
fn aas_borrows_from_ah() {
    // 28 - 9 in unpacked BCD: AX = 0208H, SUB AL,9 -> FFH (AF), AAS -> 0109H.
    let (r, f) = run(
        |a| {
            a.sub(al, 9)?;
            a.aas()
        },
        0x0208,
        0,
        0,
    );
    assert_eq!(r, 0x0109);
    assert_eq!(f & (CF | AF), CF | AF);
}

#[test]
fn aam_default_and_other_base() {
    let (r, f) = run(|a| a.aam(10), 0x3f, 0, 0);
    assert_eq!(r, 0x0603);
    assert_eq!(f & (SF | ZF | PF), PF);
    let (r, _) = run(|a| a.aam(16), 0x3f, 0, 0);
    assert_eq!(r, 0x030f);
    let (r, f) = run(|a| a.aam(10), 0x1200, 0, 0);
    assert_eq!(r, 0x0000);
    assert_eq!(f & (SF | ZF | PF), ZF | PF);
}

#[test]
fn aam_zero_is_divide_error() {
    let mut t = T::pm32(|a| {
        a.aam(0)?;
        a.hlt()
    });
    t.set(EAX, 0x1234);
    t.expect_fault(crate::exception::DE, None, CODE);
    assert_eq!(t.r(EAX), 0x1234);
}

#[test]
fn aad_default_and_other_base() {
    let (r, f) = run(|a| a.aad(10), 0xffff_0603, 0, 0);
    assert_eq!(r, 0xffff_003f);
    assert_eq!(f & (SF | ZF | PF), PF);
    let (r, _) = run(|a| a.aad(16), 0x0304, 0, 0);
    assert_eq!(r, 0x0034);
    // The sum wraps at 8 bits: 0x0A * 0x1A + 0x10 = 0x114 -> 0x14.
    let (r, _) = run(|a| a.aad(0x1a), 0x0a10, 0, 0);
    assert_eq!(r, 0x0014);
}

#[test]
fn das_low_digit_borrow_sets_cf() {
    // SDM DAS: CF <- old_CF or borrow from AL - 6, and the high-digit step
    // has no ELSE branch: AL = 03H with AF = 1 -> FDH, CF = 1.
    let (r, f) = run(|a| a.das(), 0x03, 0, AF);
    assert_eq!(r, 0xfd);
    assert_eq!(f & (CF | AF), CF | AF);
}

#[test]
fn daa_uses_incoming_carry() {
    // 99 + 99: ADD gives 32H with CF = AF = 1; DAA -> 98H, CF = 1 (198).
    let (r, f) = run(
        |a| {
            a.add(al, bl)?;
            a.daa()
        },
        0x99,
        0x99,
        0,
    );
    assert_eq!(r, 0x98);
    assert_eq!(f & (CF | AF), CF | AF);
}
