//! MUL, IMUL (1/2/3 operands), DIV, IDIV and #DE (SDM Vol. 2 "DIV", "IDIV":
//! divide by zero or a quotient too large for the destination). #DE is a
//! fault: registers and EIP must be those of the DIV.

use super::*;

const CF: u64 = FLAG_CF;
const OF: u64 = FLAG_OF;

fn run(f: impl FnOnce(&mut Asm) -> AsmResult, regs: &[(usize, u32)]) -> T {
    let mut t = T::pm32(|a| {
        f(a)?;
        a.hlt()
    });
    for &(r, v) in regs {
        t.set(r, v);
    }
    t.run();
    t
}

#[test]
fn mul8() {
    let t = run(|a| a.mul(bl), &[(EAX, 0xffff_0080), (EBX, 2)]);
    assert_eq!(t.r(EAX), 0xffff_0100);
    assert_eq!(t.arith() & (CF | OF), CF | OF);
    let t = run(|a| a.mul(bl), &[(EAX, 0x10), (EBX, 0x0f), (EDX, 0x77)]);
    assert_eq!(t.r(EAX), 0xf0);
    assert_eq!(t.r(EDX), 0x77, "8-bit MUL does not touch DX");
    assert_eq!(t.arith() & (CF | OF), 0);
}

#[test]
fn mul16_and_32() {
    let t = run(
        |a| a.mul(cx),
        &[(EAX, 0xaaaa_1234), (ECX, 0x100), (EDX, 0xbbbb_0000)],
    );
    assert_eq!((t.r(EDX), t.r(EAX)), (0xbbbb_0012, 0xaaaa_3400));
    assert_eq!(t.arith() & (CF | OF), CF | OF);
    let t = run(|a| a.mul(ecx), &[(EAX, 0xffff_ffff), (ECX, 0xffff_ffff)]);
    assert_eq!((t.r(EDX), t.r(EAX)), (0xffff_fffe, 1));
    assert_eq!(t.arith() & (CF | OF), CF | OF);
}

#[test]
fn imul_one_operand() {
    // -1 * -128 = 128 does not fit in a signed byte.
    let t = run(|a| a.imul(bl), &[(EAX, 0xff), (EBX, 0x80)]);
    assert_eq!(t.r(EAX) & 0xffff, 0x0080);
    assert_eq!(t.arith() & (CF | OF), CF | OF);
    let t = run(|a| a.imul(bl), &[(EAX, 0xfe), (EBX, 3)]);
    assert_eq!(t.r(EAX) & 0xffff, 0xfffa);
    assert_eq!(t.arith() & (CF | OF), 0);
    let t = run(|a| a.imul(ecx), &[(EAX, 0x4000_0000), (ECX, 4)]);
    assert_eq!((t.r(EDX), t.r(EAX)), (1, 0));
    assert_eq!(t.arith() & (CF | OF), CF | OF);
    let t = run(|a| a.imul(ecx), &[(EAX, 0xffff_ffff), (ECX, 5)]);
    assert_eq!((t.r(EDX), t.r(EAX)), (0xffff_ffff, 0xffff_fffb));
    assert_eq!(t.arith() & (CF | OF), 0);
}

#[test]
fn imul_two_and_three_operands() {
    let t = run(|a| a.imul_2(ecx, edx), &[(ECX, (-3i32) as u32), (EDX, 7)]);
    assert_eq!(t.r(ECX), (-21i32) as u32);
    assert_eq!(t.arith() & (CF | OF), 0);
    let t = run(|a| a.imul_3(eax, ebx, 0x10), &[(EBX, 0x1000_0000)]);
    assert_eq!(t.r(EAX), 0);
    assert_eq!(t.arith() & (CF | OF), CF | OF);
    // 16-bit form with a sign-extended imm8: 0x100 * -1.
    let t = run(
        |a| a.imul_3(ax, bx, -1),
        &[(EAX, 0x5555_0000), (EBX, 0x100)],
    );
    assert_eq!(t.r(EAX), 0x5555_ff00);
    assert_eq!(t.arith() & (CF | OF), 0);
}

#[test]
fn div_results() {
    let t = run(|a| a.div(bl), &[(EAX, 0x0101), (EBX, 2)]);
    assert_eq!(t.r(EAX), 0x0180);
    let t = run(|a| a.div(ecx), &[(EDX, 1), (EAX, 0), (ECX, 3)]);
    assert_eq!((t.r(EAX), t.r(EDX)), (0x5555_5555, 1));
    let t = run(
        |a| a.div(cx),
        &[(EDX, 0xaaaa_0001), (EAX, 0xbbbb_0000), (ECX, 0x10)],
    );
    assert_eq!((t.r(EAX), t.r(EDX)), (0xbbbb_1000, 0xaaaa_0000));
}

#[test]
fn idiv_results_truncate_toward_zero() {
    // -7 / 2 = -3 remainder -1.
    let t = run(|a| a.idiv(bl), &[(EAX, 0xfff9), (EBX, 2)]);
    assert_eq!(t.r(EAX) & 0xffff, 0xfffd);
    // -9 / 4 = -2 remainder -1.
    let t = run(
        |a| a.idiv(ecx),
        &[(EDX, 0xffff_ffff), (EAX, 0xffff_fff7), (ECX, 4)],
    );
    assert_eq!((t.r(EAX), t.r(EDX)), (0xffff_fffe, 0xffff_ffff));
    // 9 / -4 = -2 remainder 1 (remainder takes the dividend's sign).
    let t = run(
        |a| a.idiv(ecx),
        &[(EDX, 0), (EAX, 9), (ECX, (-4i32) as u32)],
    );
    assert_eq!((t.r(EAX), t.r(EDX)), (0xffff_fffe, 1));
}

#[test]
fn idiv_boundary_quotients_fit() {
    // -128 / 1 and 128 / -1 are both -128: representable.
    let t = run(|a| a.idiv(bl), &[(EAX, 0xff80), (EBX, 1)]);
    assert_eq!(t.r(EAX) & 0xffff, 0x0080);
    let t = run(|a| a.idiv(bl), &[(EAX, 0x0080), (EBX, 0xff)]);
    assert_eq!(t.r(EAX) & 0xffff, 0x0080);
}

/// Run a single faulting instruction (preceded by a NOP) and check #DE is
/// delivered with EIP at the instruction and EAX/EDX unchanged.
fn expect_de(f: impl Fn(&mut Asm) -> AsmResult, regs: &[(usize, u32)]) {
    let mut t = T::pm32(|a| {
        a.nop()?;
        f(a)?;
        a.hlt()
    });
    for &(r, v) in regs {
        t.set(r, v);
    }
    t.expect_fault(crate::exception::DE, None, CODE + 1);
    for &(r, v) in regs {
        assert_eq!(t.r(r), v, "register {r} changed by the faulting divide");
    }
}

#[test]
fn div_by_zero_faults() {
    expect_de(|a| a.div(ecx), &[(EDX, 0), (EAX, 100), (ECX, 0)]);
    expect_de(|a| a.div(bl), &[(EAX, 100), (EBX, 0)]);
    expect_de(|a| a.idiv(cx), &[(EDX, 0), (EAX, 100), (ECX, 0)]);
}

#[test]
fn div_quotient_overflow_faults() {
    expect_de(|a| a.div(cl), &[(EAX, 0x1000), (ECX, 0x10)]);
    expect_de(|a| a.div(ecx), &[(EDX, 1), (EAX, 0), (ECX, 1)]);
    expect_de(|a| a.div(cx), &[(EDX, 0x0010), (EAX, 0), (ECX, 0x0010)]);
}

#[test]
fn idiv_quotient_overflow_faults() {
    // -32768 / -1 = 32768 does not fit in AL.
    expect_de(|a| a.idiv(cl), &[(EAX, 0x8000), (ECX, 0xff)]);
    // -2^31 / -1.
    expect_de(
        |a| a.idiv(ecx),
        &[(EDX, 0xffff_ffff), (EAX, 0x8000_0000), (ECX, 0xffff_ffff)],
    );
    // 256 / 2 = 128 > 127.
    expect_de(|a| a.idiv(cl), &[(EAX, 0x0100), (ECX, 2)]);
}

#[test]
fn div_by_zero_memory_operand() {
    let mut t = T::pm32(|a| {
        a.div(dword_ptr(DATA as i32))?;
        a.hlt()
    });
    t.set(EAX, 7).set(EDX, 0).wr32(DATA, 0);
    t.expect_fault(crate::exception::DE, None, CODE);
    assert_eq!(t.r(EAX), 7);
}

#[test]
fn multiply_flags_come_from_the_low_half() {
    // The flags Leap defines for MUL/IMUL (SF, ZF, PF undefined in the SDM,
    // so outside the Unicorn comparison): CF = OF = overflow, AF clear,
    // ZF, SF and PF of the low half; the same whatever reads them next.
    const ZF: u64 = FLAG_ZF;
    const SF: u64 = FLAG_SF;
    const PF: u64 = FLAG_PF;
    // AF set in the flag word beforehand (SAHF), then 0x8000_0003 * 1: no
    // overflow, negative, low byte 0x03 has two ones.
    let t = run(
        |a| {
            a.sahf()?;
            a.imul_2(ecx, ebx)
        },
        &[(EAX, 0x1000), (EBX, 1), (ECX, 0x8000_0003)],
    );
    assert_eq!(t.arith(), SF | PF, "AF from SAHF cleared");
    // 0x10000 * 0x10000 = 2^32: overflow, low half zero.
    let t = run(|a| a.mul(ecx), &[(EAX, 0x1_0000), (ECX, 0x1_0000)]);
    assert_eq!(t.arith(), CF | OF | ZF | PF);
    // 8-bit: 0x07 * 0x07 = 0x31 (three ones), no overflow.
    let t = run(|a| a.imul(bl), &[(EAX, 7), (EBX, 7)]);
    assert_eq!(t.arith(), 0);
    // Readers of the record: SETcc, ADC's carry-in, a rotate keeping ZF.
    let t = run(
        |a| {
            a.imul_3(eax, ebx, 0x10)?;
            a.sets(dl)?;
            a.setp(dh)?;
            a.adc(esi, 0)?;
            a.imul_3(eax, ebx, 0x10)?;
            a.rol(edi, 1)?;
            a.setz(cl)
        },
        &[
            (EBX, 0x1000_0000),
            (ECX, 0xff),
            (EDX, 0xffff),
            (EDI, 0x8000_0000),
        ],
    );
    assert_eq!(t.r(EDX) & 0xffff, 0x0100, "SF clear, PF set after 0");
    assert_eq!(t.r(ESI), 1, "ADC takes CF = overflow");
    assert_eq!(t.r(ECX) & 0xff, 1, "ZF of the product survives a rotate");
    assert_eq!(t.arith() & (CF | OF), CF | OF, "ROL by 1 of 0x80000000");
}
