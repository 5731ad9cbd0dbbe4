//! Shifts and rotates (including RCL/RCR and SHLD/SHRD) with counts of 0, 1,
//! and past the operand size. SDM Vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/
//! ROR", "SHLD", "SHRD".

use super::*;

const CF: u64 = FLAG_CF;
const PF: u64 = FLAG_PF;
const ZF: u64 = FLAG_ZF;
const SF: u64 = FLAG_SF;
const OF: u64 = FLAG_OF;

/// Run `f` with EAX, EBX, ECX and incoming flags; returns (EAX, flags).
fn sh(f: impl FnOnce(&mut Asm) -> AsmResult, va: u32, vb: u32, vc: u32, fl: u64) -> (u32, u64) {
    let mut t = T::pm32(|a| {
        f(a)?;
        a.hlt()
    });
    t.set(EAX, va).set(EBX, vb).set(ECX, vc).set_flags(fl);
    t.run();
    (t.r(EAX), t.arith())
}

#[test]
fn shl_by_one_sets_cf_and_of() {
    // 0x81 << 1 = 0x02, CF = old bit 7, OF = MSB(result) ^ CF.
    let (r, f) = sh(|a| a.shl(al, 1), 0x81, 0, 0, 0);
    assert_eq!(r, 0x02);
    assert_eq!(f & (CF | OF | ZF | SF), CF | OF);
    let (r, f) = sh(|a| a.shl(al, 1), 0x40, 0, 0, 0);
    assert_eq!(r, 0x80);
    assert_eq!(f & (CF | OF | SF), OF | SF);
}

#[test]
fn shift_count_zero_leaves_flags() {
    let all = CF | PF | ZF | SF | OF | FLAG_AF;
    for (code, name) in [
        (0u8, "shl"),
        (1, "shr"),
        (2, "sar"),
        (3, "rol"),
        (4, "ror"),
        (5, "rcl"),
        (6, "rcr"),
    ] {
        let (r, f) = sh(
            |a| match code {
                0 => a.shl(eax, cl),
                1 => a.shr(eax, cl),
                2 => a.sar(eax, cl),
                3 => a.rol(eax, cl),
                4 => a.ror(eax, cl),
                5 => a.rcl(eax, cl),
                _ => a.rcr(eax, cl),
            },
            0x8000_0001,
            0,
            0,
            all,
        );
        assert_eq!((r, f), (0x8000_0001, all), "{name} by 0");
        // 32 is masked to 0 as well.
        let (r, f) = sh(
            |a| match code {
                0 => a.shl(eax, cl),
                1 => a.shr(eax, cl),
                2 => a.sar(eax, cl),
                3 => a.rol(eax, cl),
                4 => a.ror(eax, cl),
                5 => a.rcl(eax, cl),
                _ => a.rcr(eax, cl),
            },
            0x8000_0001,
            0,
            32,
            0,
        );
        assert_eq!((r, f), (0x8000_0001, 0), "{name} by 32");
    }
}

#[test]
fn shift_count_masked_to_five_bits() {
    // 33 & 31 = 1.
    let (r, f) = sh(|a| a.shl(eax, cl), 0x8000_0001, 0, 33, 0);
    assert_eq!(r, 2);
    assert_eq!(f & CF, CF);
}

#[test]
fn shl8_by_8_clears() {
    // Counts are masked to 5 bits, not to the operand size: 8 shifts all out.
    let (r, f) = sh(|a| a.shl(al, cl), 0x12ff, 0, 8, 0);
    assert_eq!(r, 0x1200);
    assert_eq!(f & (ZF | SF | PF), ZF | PF);
    let (r, _) = sh(|a| a.shr(ax, cl), 0xffff_ffff, 0, 20, 0);
    assert_eq!(r, 0xffff_0000);
}

#[test]
fn shr_by_one() {
    let (r, f) = sh(|a| a.shr(eax, 1), 0x8000_0001, 0, 0, 0);
    assert_eq!(r, 0x4000_0000);
    // OF = MSB of the original operand.
    assert_eq!(f & (CF | OF | SF | ZF), CF | OF);
}

#[test]
fn sar_fills_with_sign() {
    let (r, f) = sh(|a| a.sar(al, 1), 0x81, 0, 0, OF);
    assert_eq!(r, 0xc0);
    assert_eq!(f & (CF | OF | SF), CF | SF);
    let (r, f) = sh(|a| a.sar(al, cl), 0x80, 0, 7, 0);
    assert_eq!(r, 0xff);
    assert_eq!(f & CF, 0);
    // Past the operand size: every bit is the sign, and so is CF.
    let (r, f) = sh(|a| a.sar(al, cl), 0x80, 0, 8, 0);
    assert_eq!(r, 0xff);
    assert_eq!(f & CF, CF);
    let (r, _) = sh(|a| a.sar(eax, cl), 0x8000_0000, 0, 31, 0);
    assert_eq!(r, 0xffff_ffff);
}

#[test]
fn rol_ror() {
    let (r, f) = sh(|a| a.rol(al, 1), 0x80, 0, 0, 0);
    assert_eq!(r, 0x01);
    assert_eq!(f & (CF | OF), CF | OF);
    let (r, f) = sh(|a| a.rol(eax, 4), 0x1234_5678, 0, 0, 0);
    assert_eq!(r, 0x2345_6781);
    assert_eq!(f & CF, CF);
    let (r, f) = sh(|a| a.ror(al, 1), 0x01, 0, 0, 0);
    assert_eq!(r, 0x80);
    // ROR 1: OF = MSB(result) XOR MSB-1(result).
    assert_eq!(f & (CF | OF), CF | OF);
    let (r, f) = sh(|a| a.ror(ax, 8), 0x1234, 0, 0, CF);
    assert_eq!(r, 0x3412);
    assert_eq!(f & CF, 0);
}

#[test]
fn rol8_by_8_updates_cf_only() {
    // The rotate amount is 8 mod 8 = 0, but the masked count is not 0, so
    // CF = LSB(result).
    let (r, f) = sh(|a| a.rol(al, cl), 0x81, 0, 8, 0);
    assert_eq!(r, 0x81);
    assert_eq!(f & CF, CF);
}

#[test]
fn rol_does_not_touch_szp() {
    let (r, f) = sh(|a| a.rol(eax, 1), 0, 0, 0, ZF | PF);
    assert_eq!(r, 0);
    assert_eq!(f & (ZF | PF | SF), ZF | PF);
}

#[test]
fn rcl_through_carry() {
    let (r, f) = sh(|a| a.rcl(al, 1), 0x80, 0, 0, CF);
    assert_eq!(r, 0x01);
    assert_eq!(f & (CF | OF), CF | OF);
    // 9-bit rotate of CF:AL = 1:0x40 left by 2 -> 0x02, CF = 1.
    let (r, f) = sh(|a| a.rcl(al, 2), 0x40, 0, 0, CF);
    assert_eq!(r, 0x02);
    assert_eq!(f & CF, CF);
    // Count 9 on a byte is a full turn: nothing changes.
    let (r, f) = sh(|a| a.rcl(al, cl), 0x5a, 0, 9, CF);
    assert_eq!(r, 0x5a);
    assert_eq!(f & CF, CF);
    // Count 17 on a word is a full turn too.
    let (r, f) = sh(|a| a.rcl(ax, cl), 0x8001, 0, 17, 0);
    assert_eq!(r, 0x8001);
    assert_eq!(f & CF, 0);
    // 32-bit: CF enters bit 0.
    let (r, f) = sh(|a| a.rcl(eax, cl), 0x8000_0000, 0, 2, CF);
    assert_eq!(r, 0x0000_0003);
    assert_eq!(f & CF, 0);
}

#[test]
fn rcr_through_carry() {
    // OF for RCR 1 is MSB(dest) XOR CF, taken before the rotate.
    let (r, f) = sh(|a| a.rcr(al, 1), 0x01, 0, 0, CF);
    assert_eq!(r, 0x80);
    assert_eq!(f & (CF | OF), CF | OF);
    let (r, f) = sh(|a| a.rcr(al, 1), 0x80, 0, 0, 0);
    assert_eq!(r, 0x40);
    assert_eq!(f & (CF | OF), OF);
    // 33-bit rotate of 0:5 right by 3 -> 0x40000000, CF = 1.
    let (r, f) = sh(|a| a.rcr(eax, cl), 5, 0, 3, 0);
    assert_eq!(r, 0x4000_0000);
    assert_eq!(f & CF, CF);
    // Count 10 on a byte = 10 mod 9 = 1.
    let (r, f) = sh(|a| a.rcr(al, cl), 0x02, 0, 10, CF);
    assert_eq!(r, 0x81);
    assert_eq!(f & CF, 0);
}

#[test]
fn shld_basic() {
    let (r, f) = sh(|a| a.shld(eax, ebx, 4), 0x1234_5678, 0x9abc_def0, 0, 0);
    assert_eq!(r, 0x2345_6789);
    // CF = bit 28 of the destination; result 0x..89 has odd parity.
    assert_eq!(f & (CF | ZF | SF | PF), CF);
    // Count 1 with a sign change: OF = 1.
    let (r, f) = sh(|a| a.shld(eax, ebx, 1), 0x4000_0000, 0x8000_0000, 0, 0);
    assert_eq!(r, 0x8000_0001);
    assert_eq!(f & (CF | OF | SF), OF | SF);
}

#[test]
fn shld_counts_zero_and_masked() {
    let all = CF | PF | ZF | SF | OF;
    for n in [0u32, 32] {
        let (r, f) = sh(|a| a.shld(eax, ebx, cl), 0x1234_5678, 0x9abc_def0, n, all);
        assert_eq!((r, f & all), (0x1234_5678, all), "count {n}");
    }
    // 36 & 31 = 4.
    let (r, _) = sh(|a| a.shld(eax, ebx, cl), 0x1234_5678, 0x9abc_def0, 36, 0);
    assert_eq!(r, 0x2345_6789);
}

#[test]
fn shld16_by_16_takes_source() {
    // Count equal to the operand size: DEST = SRC, CF = BIT[DEST, 0].
    let (r, f) = sh(|a| a.shld(ax, bx, cl), 0xffff_8001, 0x1234, 16, 0);
    assert_eq!(r, 0xffff_1234);
    assert_eq!(f & CF, CF);
}

#[test]
fn shrd_basic() {
    let (r, f) = sh(|a| a.shrd(eax, ebx, 8), 0x1234_5678, 0x9abc_def0, 0, 0);
    assert_eq!(r, 0xf012_3456);
    // CF = bit 7 of 0x78 = 0.
    assert_eq!(f & (CF | SF | ZF), SF);
    let (r, f) = sh(|a| a.shrd(eax, ebx, 1), 1, 0, 0, 0);
    assert_eq!(r, 0);
    assert_eq!(f & (CF | ZF | OF | PF), CF | ZF | PF);
    let (r, f) = sh(|a| a.shrd(ax, bx, cl), 0x0001, 0x8000, 4, 0);
    assert_eq!(r, 0x0000);
    assert_eq!(f & (CF | ZF), ZF);
}

#[test]
fn shrd_memory_destination() {
    let mut t = T::pm32(|a| {
        a.shrd(dword_ptr(DATA as i32), ebx, cl)?;
        a.hlt()
    });
    t.wr32(DATA, 0x0000_00f0)
        .set(EBX, 0x0000_000f)
        .set(ECX, 4)
        .run();
    assert_eq!(t.rd32(DATA), 0xf000_000f);
    assert_eq!(t.arith() & CF, 0);
}
