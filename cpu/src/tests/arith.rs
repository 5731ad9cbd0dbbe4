//! ADD/ADC/SUB/SBB/INC/DEC/NEG flags at each size, the atomic-style
//! exchanges, BSWAP, and every CMOVcc/SETcc condition.

use super::*;

const CF: u64 = FLAG_CF;
const PF: u64 = FLAG_PF;
const AF: u64 = FLAG_AF;
const ZF: u64 = FLAG_ZF;
const SF: u64 = FLAG_SF;
const OF: u64 = FLAG_OF;

/// Run `f` with EAX=a, EBX=b and the given incoming flags; returns
/// (EAX, arithmetic flags).
fn binop(f: impl FnOnce(&mut Asm) -> AsmResult, a: u32, b: u32, flags_in: u64) -> (u32, u64) {
    let mut t = T::pm32(|x| {
        f(x)?;
        x.hlt()
    });
    t.set(EAX, a).set(EBX, b).set_flags(flags_in);
    t.run();
    (t.r(EAX), t.arith())
}

#[test]
fn add8_carry_and_aux() {
    assert_eq!(binop(|a| a.add(al, bl), 0xff, 1, 0), (0, CF | ZF | AF | PF));
}

#[test]
fn add8_signed_overflow() {
    assert_eq!(binop(|a| a.add(al, bl), 0x7f, 1, 0), (0x80, OF | SF | AF));
    assert_eq!(
        binop(|a| a.add(al, bl), 0x80, 0x80, 0),
        (0, CF | OF | ZF | PF)
    );
}

#[test]
fn add16_keeps_upper_half_and_sets_cf_of() {
    assert_eq!(
        binop(|a| a.add(ax, bx), 0x1234_8000, 0x8000, 0),
        (0x1234_0000, CF | OF | ZF | PF)
    );
}

#[test]
fn add32_flags() {
    assert_eq!(
        binop(|a| a.add(eax, ebx), 0xffff_ffff, 1, 0),
        (0, CF | ZF | AF | PF)
    );
    // PF looks only at the low byte (0x00 here).
    assert_eq!(
        binop(|a| a.add(eax, ebx), 0x7fff_ffff, 1, 0),
        (0x8000_0000, OF | SF | AF | PF)
    );
}

#[test]
fn adc_uses_carry_in() {
    assert_eq!(
        binop(|a| a.adc(al, bl), 0xff, 0, CF),
        (0, CF | ZF | AF | PF)
    );
    assert_eq!(binop(|a| a.adc(al, bl), 0x7f, 0, CF), (0x80, OF | SF | AF));
    assert_eq!(binop(|a| a.adc(al, bl), 0x7f, 0, 0), (0x7f, 0));
    assert_eq!(
        binop(|a| a.adc(ax, bx), 0x7fff, 0, CF),
        (0x8000, OF | SF | AF | PF)
    );
    // -1 + -1 + 1 = -1 with a carry out and no signed overflow.
    assert_eq!(
        binop(|a| a.adc(eax, ebx), 0xffff_ffff, 0xffff_ffff, CF),
        (0xffff_ffff, CF | SF | AF | PF)
    );
}

#[test]
fn sub_borrow_and_overflow() {
    assert_eq!(binop(|a| a.sub(al, bl), 0, 1, 0), (0xff, CF | SF | AF | PF));
    assert_eq!(binop(|a| a.sub(al, bl), 0x80, 1, 0), (0x7f, OF | AF));
    assert_eq!(binop(|a| a.sub(ax, bx), 5, 5, CF), (0, ZF | PF));
    assert_eq!(
        binop(|a| a.sub(eax, ebx), 0x8000_0000, 1, 0),
        (0x7fff_ffff, OF | AF | PF)
    );
}

#[test]
fn cmp_sets_flags_without_writing() {
    assert_eq!(binop(|a| a.cmp(eax, ebx), 3, 7, 0), (3, CF | SF | AF | PF));
}

#[test]
fn sbb_uses_borrow_in() {
    assert_eq!(
        binop(|a| a.sbb(al, bl), 0, 0, CF),
        (0xff, CF | SF | AF | PF)
    );
    // Equal operands with a borrow in still borrow.
    assert_eq!(
        binop(|a| a.sbb(al, bl), 5, 5, CF),
        (0xff, CF | SF | AF | PF)
    );
    assert_eq!(binop(|a| a.sbb(al, bl), 5, 5, 0), (0, ZF | PF));
    assert_eq!(
        binop(|a| a.sbb(eax, ebx), 0x8000_0000, 0, CF),
        (0x7fff_ffff, OF | AF | PF)
    );
    // 0 - 0xffff - 1 = 0 with a borrow out; -1 - ... no signed overflow.
    assert_eq!(
        binop(|a| a.sbb(ax, bx), 0, 0xffff, CF),
        (0, CF | ZF | AF | PF)
    );
}

#[test]
fn inc_preserves_cf() {
    assert_eq!(binop(|a| a.inc(al), 0x7f, 0, CF), (0x80, CF | OF | SF | AF));
    // Wrapping to zero does not set CF.
    assert_eq!(binop(|a| a.inc(al), 0xff, 0, 0), (0, ZF | AF | PF));
    assert_eq!(
        binop(|a| a.inc(eax), 0xffff_ffff, 0, CF),
        (0, CF | ZF | AF | PF)
    );
}

#[test]
fn dec_preserves_cf() {
    assert_eq!(
        binop(|a| a.dec(eax), 0x8000_0000, 0, CF),
        (0x7fff_ffff, CF | OF | AF | PF)
    );
    assert_eq!(
        binop(|a| a.dec(ax), 0xabcd_0001, 0, 0),
        (0xabcd_0000, ZF | PF)
    );
    assert_eq!(binop(|a| a.dec(al), 0, 0, 0), (0xff, SF | AF | PF));
}

#[test]
fn inc_then_adc_sees_old_carry() {
    // STC; INC; ADC: the carry set before INC survives into ADC.
    let r = binop(
        |a| {
            a.stc()?;
            a.inc(ebx)?;
            a.adc(eax, ebx)
        },
        10,
        1,
        0,
    );
    assert_eq!(r.0, 13);
}

#[test]
fn neg_flags() {
    assert_eq!(binop(|a| a.neg(al), 0, 0, CF), (0, ZF | PF));
    assert_eq!(binop(|a| a.neg(al), 0x80, 0, 0), (0x80, CF | OF | SF));
    assert_eq!(
        binop(|a| a.neg(eax), 1, 0, 0),
        (0xffff_ffff, CF | SF | AF | PF)
    );
    assert_eq!(
        binop(|a| a.neg(ax), 0x8000, 0, 0),
        (0x8000, CF | OF | SF | PF)
    );
}

#[test]
fn logic_clears_cf_of() {
    assert_eq!(
        binop(|a| a.and(eax, ebx), 0xf0, 0x0f, CF | OF),
        (0, ZF | PF)
    );
    assert_eq!(
        binop(|a| a.xor(al, bl), 0x80, 0x01, CF | OF),
        (0x81, SF | PF)
    );
}

#[test]
fn cmpxchg_equal_and_not_equal() {
    let m = DATA as i32;
    let mut t = T::pm32(|a| {
        a.cmpxchg(dword_ptr(m), ecx)?;
        a.hlt()
    });
    t.set(EAX, 5).set(ECX, 9).wr32(DATA, 5).run();
    assert_eq!((t.rd32(DATA), t.r(EAX)), (9, 5));
    assert_eq!(t.arith() & ZF, ZF);

    let mut t = T::pm32(|a| {
        a.cmpxchg(dword_ptr(m), ecx)?;
        a.hlt()
    });
    t.set(EAX, 5).set(ECX, 9).wr32(DATA, 7).run();
    assert_eq!((t.rd32(DATA), t.r(EAX)), (7, 7));
    // Flags as for CMP EAX(5), 7: result 0xfffffffe.
    assert_eq!(t.arith(), CF | SF | AF);
}

#[test]
fn cmpxchg8_register() {
    let (_, f) = binop(|a| a.cmpxchg(bl, cl), 0x10, 0x10, 0);
    assert_eq!(f & ZF, ZF);
    let mut t = T::pm32(|a| {
        a.cmpxchg(bl, cl)?;
        a.hlt()
    });
    t.set(EAX, 0x10).set(EBX, 0x1210).set(ECX, 0x22).run();
    assert_eq!(t.r(EBX), 0x1222);
}

#[test]
fn cmpxchg8b_both_outcomes() {
    let m = DATA as i32;
    let mut t = T::pm32(|a| {
        a.cmpxchg8b(qword_ptr(m))?;
        a.hlt()
    });
    t.wr(DATA, 8, 0x1111_2222_3333_4444);
    t.set(EDX, 0x1111_2222).set(EAX, 0x3333_4444);
    t.set(ECX, 0xaaaa_bbbb).set(EBX, 0xcccc_dddd).run();
    assert_eq!(t.rd(DATA, 8), 0xaaaa_bbbb_cccc_dddd);
    assert_eq!(t.arith() & ZF, ZF);

    let mut t = T::pm32(|a| {
        a.cmpxchg8b(qword_ptr(m))?;
        a.hlt()
    });
    t.wr(DATA, 8, 0x1111_2222_3333_4444);
    t.set(EDX, 0).set(EAX, 0).set(ECX, 1).set(EBX, 2).run();
    assert_eq!(t.rd(DATA, 8), 0x1111_2222_3333_4444);
    assert_eq!((t.r(EDX), t.r(EAX)), (0x1111_2222, 0x3333_4444));
    assert_eq!(t.arith() & ZF, 0);
}

#[test]
fn xadd_register_and_memory() {
    let mut t = T::pm32(|a| {
        a.xadd(eax, ebx)?;
        a.hlt()
    });
    t.set(EAX, 3).set(EBX, 4).run();
    assert_eq!((t.r(EAX), t.r(EBX)), (7, 3));

    let mut t = T::pm32(|a| {
        a.xadd(dword_ptr(DATA as i32), ecx)?;
        a.hlt()
    });
    t.wr32(DATA, 0xffff_ffff).set(ECX, 1).run();
    assert_eq!((t.rd32(DATA), t.r(ECX)), (0, 0xffff_ffff));
    assert_eq!(t.arith(), CF | ZF | AF | PF);
}

#[test]
fn bswap32() {
    let mut t = T::pm32(|a| {
        a.bswap(eax)?;
        a.bswap(esi)?;
        a.hlt()
    });
    t.set(EAX, 0x1234_5678).set(ESI, 0x8000_00ff).run();
    assert_eq!((t.r(EAX), t.r(ESI)), (0x7856_3412, 0xff00_0080));
}

/// SDM Vol. 1 Table B-1: condition `cc` (0..16, Jcc low nibble) for `f`.
fn cond_ref(cc: u8, f: u64) -> bool {
    let (cf, zf, sf, of, pf) = (
        f & CF != 0,
        f & ZF != 0,
        f & SF != 0,
        f & OF != 0,
        f & PF != 0,
    );
    let r = match cc >> 1 {
        0 => of,
        1 => cf,
        2 => zf,
        3 => cf || zf,
        4 => sf,
        5 => pf,
        6 => sf != of,
        _ => zf || sf != of,
    };
    r != (cc & 1 == 1)
}

fn setcc(a: &mut Asm, cc: u8, m: AsmMemoryOperand) -> AsmResult {
    match cc {
        0 => a.seto(m),
        1 => a.setno(m),
        2 => a.setb(m),
        3 => a.setae(m),
        4 => a.sete(m),
        5 => a.setne(m),
        6 => a.setbe(m),
        7 => a.seta(m),
        8 => a.sets(m),
        9 => a.setns(m),
        10 => a.setp(m),
        11 => a.setnp(m),
        12 => a.setl(m),
        13 => a.setge(m),
        14 => a.setle(m),
        _ => a.setg(m),
    }
}

fn cmovcc(a: &mut Asm, cc: u8) -> AsmResult {
    match cc {
        0 => a.cmovo(edx, ecx),
        1 => a.cmovno(edx, ecx),
        2 => a.cmovb(edx, ecx),
        3 => a.cmovae(edx, ecx),
        4 => a.cmove(edx, ecx),
        5 => a.cmovne(edx, ecx),
        6 => a.cmovbe(edx, ecx),
        7 => a.cmova(edx, ecx),
        8 => a.cmovs(edx, ecx),
        9 => a.cmovns(edx, ecx),
        10 => a.cmovp(edx, ecx),
        11 => a.cmovnp(edx, ecx),
        12 => a.cmovl(edx, ecx),
        13 => a.cmovge(edx, ecx),
        14 => a.cmovle(edx, ecx),
        _ => a.cmovg(edx, ecx),
    }
}

#[test]
fn setcc_and_cmovcc_all_conditions() {
    let mut t = T::pm32(|a| {
        for cc in 0..16u8 {
            setcc(a, cc, byte_ptr(DATA as i32 + cc as i32))?;
            a.mov(edx, 0x5555_5555u32)?;
            cmovcc(a, cc)?;
            a.mov(dword_ptr(DATA as i32 + 0x100 + 4 * cc as i32), edx)?;
        }
        a.hlt()
    });
    for combo in 0..32u64 {
        let f = [CF, PF, ZF, SF, OF]
            .iter()
            .enumerate()
            .filter(|(k, _)| combo >> k & 1 != 0)
            .fold(0, |acc, (_, b)| acc | b);
        t.cpu.s.rip = CODE;
        t.cpu.halted = false;
        t.set(ECX, 0x1234_5678).set_flags(f);
        for k in 0..16 {
            t.wr(DATA + k, 1, 0xee);
        }
        t.run();
        for cc in 0..16u8 {
            let want = cond_ref(cc, f);
            assert_eq!(
                t.rd(DATA + cc as u64, 1),
                want as u64,
                "SETcc {cc} flags {f:#x}"
            );
            let moved = t.rd32(DATA + 0x100 + 4 * cc as u64);
            let exp = if want { 0x1234_5678 } else { 0x5555_5555 };
            assert_eq!(moved, exp, "CMOVcc {cc} flags {f:#x}");
        }
    }
}
