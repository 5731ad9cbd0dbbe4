//! MMX: lane arithmetic with wrap-around and saturation, packs, unpacks,
//! shifts, and the aliasing with the x87 state (SDM Vol. 1 ch. 9).

use super::*;

const D: u64 = DATA;

fn mmx(a_val: u64, b_val: u64, f: impl FnOnce(&mut Asm) -> AsmResult) -> u64 {
    let mut t = T::pm32(|a| {
        a.movq(mm0, qword_ptr(D))?;
        a.movq(mm1, qword_ptr(D + 8))?;
        f(a)?;
        a.movq(qword_ptr(D + 16), mm0)?;
        a.hlt()
    });
    t.wr(D, 8, a_val).wr(D + 8, 8, b_val);
    t.run();
    t.rd(D + 16, 8)
}

#[test]
fn add_sub_wrap_and_saturate() {
    let a = 0x7f80_ff01_7fff_8000u64;
    let b = 0x0180_0101_0001_ffffu64;
    assert_eq!(mmx(a, b, |x| x.paddb(mm0, mm1)), 0x8000_0002_7f00_7fff);
    assert_eq!(mmx(a, b, |x| x.paddsb(mm0, mm1)), 0x7f80_0002_7f00_80ff);
    assert_eq!(mmx(a, b, |x| x.paddusb(mm0, mm1)), 0x80ff_ff02_7fff_ffff);
    assert_eq!(mmx(a, b, |x| x.paddsw(mm0, mm1)), 0x7fff_0002_7fff_8000);
    assert_eq!(mmx(a, b, |x| x.paddusw(mm0, mm1)), 0x8100_ffff_8000_ffff);
    assert_eq!(mmx(a, b, |x| x.psubusb(mm0, mm1)), 0x7e00_fe00_7ffe_0000);
    assert_eq!(mmx(a, b, |x| x.psubsw(mm0, mm1)), 0x7e00_fe00_7ffe_8001);
    assert_eq!(mmx(a, b, |x| x.paddd(mm0, mm1)), 0x8101_0002_8001_7fff);
    assert_eq!(mmx(a, b, |x| x.psubd(mm0, mm1)), 0x7e00_fe00_7ffd_8001);
}

#[test]
fn compares_and_logic() {
    let a = 0x0102_0304_ffff_0005u64;
    let b = 0x0102_0404_0000_0004u64;
    assert_eq!(mmx(a, b, |x| x.pcmpeqb(mm0, mm1)), 0xffff_00ff_0000_ff00);
    assert_eq!(mmx(a, b, |x| x.pcmpgtw(mm0, mm1)), 0x0000_0000_0000_ffff);
    assert_eq!(mmx(a, b, |x| x.pcmpeqd(mm0, mm1)), 0);
    assert_eq!(mmx(a, b, |x| x.pandn(mm0, mm1)), !a & b);
    assert_eq!(mmx(a, b, |x| x.pxor(mm0, mm1)), a ^ b);
}

#[test]
fn multiplies() {
    let a = 0x8000_7fff_0003_fffeu64; // -32768, 32767, 3, -2
    let b = 0x8000_0002_0004_0005u64; // -32768, 2, 4, 5
    assert_eq!(mmx(a, b, |x| x.pmullw(mm0, mm1)), 0x0000_fffe_000c_fff6);
    assert_eq!(mmx(a, b, |x| x.pmulhw(mm0, mm1)), 0x4000_0000_0000_ffff);
    // (-32768*-32768 + 32767*2), (3*4 + -2*5)
    assert_eq!(mmx(a, b, |x| x.pmaddwd(mm0, mm1)), 0x4000_fffe_0000_0002);
}

#[test]
fn shifts() {
    let a = 0x8001_4000_0000_ffffu64;
    assert_eq!(mmx(a, 0, |x| x.psraw(mm0, 1)), 0xc000_2000_0000_ffff);
    assert_eq!(mmx(a, 20, |x| x.psraw(mm0, mm1)), 0xffff_0000_0000_ffff);
    assert_eq!(mmx(a, 4, |x| x.psrlw(mm0, mm1)), 0x0800_0400_0000_0fff);
    assert_eq!(mmx(a, 0, |x| x.pslld(mm0, 16)), 0x4000_0000_ffff_0000);
    assert_eq!(mmx(a, 64, |x| x.psllq(mm0, mm1)), 0);
    assert_eq!(mmx(a, 8, |x| x.psrlq(mm0, mm1)), 0x0080_0140_0000_00ff);
    assert_eq!(mmx(a, 0, |x| x.psrad(mm0, 31)), 0xffff_ffff_0000_0000);
}

#[test]
fn packs_and_unpacks() {
    let a = 0x0100_ff80_007f_fffeu64; // words 256, -128, 127, -2
    let b = 0x8000_7fff_0001_ff00u64; // -32768, 32767, 1, -256
    assert_eq!(mmx(a, b, |x| x.packsswb(mm0, mm1)), 0x807f_0180_7f80_7ffe);
    assert_eq!(mmx(a, b, |x| x.packuswb(mm0, mm1)), 0x00ff_0100_ff00_7f00);
    let c = 0x0001_0000_ffff_8000u64;
    let d = 0x7fff_ffff_8000_0000u64;
    assert_eq!(mmx(c, d, |x| x.packssdw(mm0, mm1)), 0x7fff_8000_7fff_8000);
    let a = 0x0706_0504_0302_0100u64;
    let b = 0x1716_1514_1312_1110u64;
    assert_eq!(mmx(a, b, |x| x.punpcklbw(mm0, mm1)), 0x1303_1202_1101_1000);
    assert_eq!(mmx(a, b, |x| x.punpckhwd(mm0, mm1)), 0x1716_0706_1514_0504);
    assert_eq!(mmx(a, b, |x| x.punpckldq(mm0, mm1)), 0x1312_1110_0302_0100);
    assert_eq!(
        mmx(a, b, |x| x.punpcklbw(mm0, dword_ptr(D + 8))),
        0x1303_1202_1101_1000
    );
}

#[test]
fn movd_and_fpu_aliasing() {
    let mut t = T::pm32(|a| {
        a.fninit()?;
        a.fld1()?;
        a.mov(eax, 0x8765_4321u32)?;
        a.movd(mm3, eax)?;
        a.movq(mm2, mm3)?;
        a.movd(ecx, mm2)?;
        a.movd(dword_ptr(D), mm3)?;
        a.hlt()
    });
    t.run();
    let f = &t.cpu.s.fpu;
    assert_eq!(f.regs[3].mant, 0x8765_4321, "MOVD zero-extends");
    assert_eq!(f.regs[3].se, 0xffff, "exponent set to all ones");
    assert_eq!(f.top(), 0);
    assert_eq!(f.empty, 0, "all tags valid");
    assert_eq!(t.r(ECX), 0x8765_4321);
    assert_eq!(t.rd32(D), 0x8765_4321);
    // R7 holds the 1.0 pushed before the MMX code.
    assert_eq!(f.regs[7].mant, crate::fpu::J);
}

#[test]
fn emms_empties_and_em_is_ud() {
    let mut t = T::pm32(|a| {
        a.pxor(mm0, mm0)?;
        a.emms()?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.cpu.s.fpu.tag_word(), 0xffff);
    let mut t = T::pm32(|a| {
        a.pxor(mm0, mm0)?;
        a.hlt()
    });
    t.cpu.s.cr0 |= CR0_EM;
    t.expect_fault(crate::exception::UD, None, CODE);
    let mut t = T::pm32(|a| {
        a.pxor(mm0, mm0)?;
        a.hlt()
    });
    t.cpu.s.cr0 |= CR0_TS;
    t.expect_fault(crate::exception::NM, None, CODE);
}
