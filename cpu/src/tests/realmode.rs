//! Real mode: far CALL/RET across segments, INT/IRET through the IVT, and
//! exception delivery (16-bit frame: FLAGS, CS, IP).

use super::*;

/// Load 16-bit code assembled for linear address `lin` (segment base 0 at
/// assembly time, so only position-independent code or IP-relative labels).
fn load16(t: &mut T, lin: u64, ip: u64, f: impl FnOnce(&mut Asm) -> AsmResult) {
    let code = assemble(16, ip, f);
    assert!(t.cpu.mem.load(lin, &code));
}

#[test]
fn far_call_pushes_cs_ip() {
    let mut t = T::real(|a| {
        a.call_far(0x0200, 0x0010)?;
        a.hlt()
    });
    // 0200:0010 = linear 0x2010.
    load16(&mut t, 0x2010, 0x10, |a| {
        a.mov(bx, cs)?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.r(EBX), 0x200);
    assert_eq!(t.cpu.s.seg[CS].base, 0x2000);
    assert_eq!(t.cpu.s.rip, 0x13, "past the HLT at 0200:0012");
    assert_eq!(t.r(ESP), 0x7ffc);
    assert_eq!(t.stack16(0), CODE as u16 + 5, "return IP");
    assert_eq!(t.stack16(1), 0, "return CS");
}

#[test]
fn far_call_and_retf_imm() {
    let mut t = T::real(|a| {
        a.push(ax)?;
        a.call_far(0x0200, 0x0010)?;
        a.mov(dx, cs)?;
        a.hlt()
    });
    load16(&mut t, 0x2010, 0x10, |a| {
        a.mov(bx, cs)?;
        a.retf_1(2)
    });
    t.run();
    assert_eq!(t.r(EBX), 0x200);
    assert_eq!(t.r(EDX), 0);
    assert_eq!(t.r(ESP), 0x8000);
    assert_eq!(t.cpu.s.seg[CS].base, 0);
}

#[test]
fn far_jmp_sets_cs_base() {
    // 0400:0004 is linear 0x4004.
    let mut t = T::real(|a| {
        a.jmp_far(0x0400, 0x0004)?;
        a.hlt()
    });
    load16(&mut t, 0x4004, 0x4, |a| {
        a.mov(bx, 0x99)?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.r(EBX), 0x99);
    assert_eq!(t.cpu.s.seg[CS].selector, 0x400);
    assert_eq!(t.cpu.s.seg[CS].base, 0x4000);
}

#[test]
fn int_pushes_flags_cs_ip_and_clears_if() {
    let mut t = T::real(|a| {
        a.sti()?;
        a.int(0x40)?;
        a.hlt()
    });
    t.set_flags(FLAG_CF);
    let v = t.run_any();
    assert_eq!(v, Some(0x40));
    assert_eq!(t.r(ESP), 0x8000 - 6);
    assert_eq!(t.stack16(0), CODE as u16 + 3, "IP after INT");
    assert_eq!(t.stack16(1), 0, "CS");
    assert_eq!(t.stack16(2), 0x0203, "FLAGS with IF and CF");
    assert_eq!(t.flags() & (FLAG_IF | FLAG_TF), 0);
}

#[test]
fn int_iret_roundtrip_through_ivt() {
    let mut t = T::real(|a| {
        a.sti()?;
        a.stc()?;
        a.int(0x40)?;
        a.hlt()
    });
    // IVT[0x40] = 0500:0000 (linear 0x5000).
    t.wr(0x40 * 4, 2, 0).wr(0x40 * 4 + 2, 2, 0x500);
    load16(&mut t, 0x5000, 0, |a| {
        a.pushf()?;
        a.pop(cx)?;
        a.mov(bx, cs)?;
        a.clc()?;
        a.iret()
    });
    t.run();
    assert_eq!(t.r(EBX), 0x500);
    assert_eq!(t.r(ECX) & 0x200, 0, "IF clear inside the handler");
    assert_eq!(t.r(ECX) & 1, 1, "CF as it was at INT");
    // IRET restores FLAGS: IF=1 and CF=1 again despite the handler's CLC.
    assert_eq!(t.flags() & (FLAG_IF | FLAG_CF), FLAG_IF | FLAG_CF);
    assert_eq!(t.r(ESP), 0x8000);
    assert_eq!(t.cpu.s.rip, CODE + 5);
}

#[test]
fn real_mode_divide_error_frame_points_at_div() {
    let mut t = T::real(|a| {
        a.nop()?;
        a.div(bl)?;
        a.hlt()
    });
    t.set(EAX, 0x1234).set(EBX, 0);
    assert_eq!(t.run_any(), Some(crate::exception::DE));
    assert_eq!(t.stack16(0), CODE as u16 + 1);
    assert_eq!(t.r(EAX), 0x1234);
    assert_eq!(t.r(ESP), 0x8000 - 6, "no error code in real mode");
}

#[test]
fn real_mode_segment_arithmetic() {
    // DS = 0x0900: [0x0010] is linear 0x9010.
    let mut t = T::real(|a| {
        a.mov(ax, 0x0900)?;
        a.mov(ds, ax)?;
        a.mov(bx, word_ptr(0x0010))?;
        a.hlt()
    });
    t.wr(0x9010, 2, 0xbeef).run();
    assert_eq!(t.r(EBX) & 0xffff, 0xbeef);
}
