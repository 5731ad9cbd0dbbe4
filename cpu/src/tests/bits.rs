//! BT/BTS/BTR/BTC (register offsets address memory beyond the operand,
//! SDM Vol. 2A "BT": bit offset is signed, -2^31..2^31-1 for 32-bit) and
//! BSF/BSR.

use super::*;

const CF: u64 = FLAG_CF;
const ZF: u64 = FLAG_ZF;

fn run(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    T::pm32(|a| {
        f(a)?;
        a.hlt()
    })
}

#[test]
fn bt_register_offsets_wrap_modulo_size() {
    let mut t = run(|a| a.bt(eax, ecx));
    t.set(EAX, 0x20).set(ECX, 37).run();
    assert_eq!(t.arith() & CF, CF, "37 mod 32 = bit 5");
    let mut t = run(|a| a.bt(eax, 4));
    t.set(EAX, 0x20).set_flags(CF).run();
    assert_eq!(t.arith() & CF, 0);
}

#[test]
fn bts_btr_btc_register() {
    let mut t = run(|a| {
        a.bts(eax, 31)?;
        a.btr(ebx, 0)?;
        a.btc(ecx, 8)
    });
    t.set(EAX, 1).set(EBX, 3).set(ECX, 0x100).run();
    assert_eq!((t.r(EAX), t.r(EBX), t.r(ECX)), (0x8000_0001, 2, 0));
    // CF is the old value of the last bit operated on (BTC: bit 8 was 1).
    assert_eq!(t.arith() & CF, CF);
}

#[test]
fn bt_memory_beyond_operand() {
    // Bit 100 of the bit string at DATA is bit 4 of the dword at DATA+12.
    let mut t = run(|a| a.bt(dword_ptr(DATA as i32), ecx));
    t.wr32(DATA + 12, 0x10).set(ECX, 100).run();
    assert_eq!(t.arith() & CF, CF);
    let mut t = run(|a| a.bt(dword_ptr(DATA as i32), ecx));
    t.wr32(DATA, 0x10).set(ECX, 100).set_flags(CF).run();
    assert_eq!(t.arith() & CF, 0, "must not read bit 4 of the first dword");
}

#[test]
fn bts_memory_negative_offset() {
    // Offset -1 from DATA+16 is bit 31 of the dword at DATA+12.
    let mut t = run(|a| a.bts(dword_ptr(DATA as i32 + 16), ecx));
    t.set(ECX, 0xffff_ffff).wr32(DATA + 16, 0).run();
    assert_eq!(t.rd32(DATA + 12), 0x8000_0000);
    assert_eq!(t.rd32(DATA + 16), 0);
    assert_eq!(t.arith() & CF, 0);
}

#[test]
fn btr_word_memory_beyond_operand() {
    // 16-bit: offset 17 is bit 1 of the word at +2.
    let mut t = run(|a| a.btr(word_ptr(DATA as i32), cx));
    t.wr(DATA, 2, 0xffff)
        .wr(DATA + 2, 2, 0xffff)
        .set(ECX, 17)
        .run();
    assert_eq!(t.rd(DATA, 2), 0xffff);
    assert_eq!(t.rd(DATA + 2, 2), 0xfffd);
    assert_eq!(t.arith() & CF, CF);
}

#[test]
fn btc_memory_large_offset() {
    // 0x21 = dword +4, bit 1.
    let mut t = run(|a| a.btc(dword_ptr(DATA as i32), ecx));
    t.wr32(DATA + 4, 0x2).set(ECX, 0x21).run();
    assert_eq!(t.rd32(DATA + 4), 0);
    assert_eq!(t.rd32(DATA), 0);
    assert_eq!(t.arith() & CF, CF);
}

#[test]
fn bt_memory_immediate_is_masked() {
    // With an immediate the offset is taken modulo the operand size.
    let mut t = run(|a| a.bts(dword_ptr(DATA as i32), 33));
    t.wr32(DATA, 0).wr32(DATA + 4, 0).run();
    assert_eq!(t.rd32(DATA), 2);
    assert_eq!(t.rd32(DATA + 4), 0);
}

#[test]
fn bsf_bsr() {
    let mut t = run(|a| {
        a.bsf(eax, ebx)?;
        a.bsr(ecx, ebx)
    });
    t.set(EBX, 0x0001_8000).set_flags(ZF).run();
    assert_eq!((t.r(EAX), t.r(ECX)), (15, 16));
    assert_eq!(t.arith() & ZF, 0);

    let mut t = run(|a| a.bsr(ax, bx));
    t.set(EAX, 0xaaaa_5555).set(EBX, 0xffff_0001).run();
    assert_eq!(t.r(EAX), 0xaaaa_0000);

    let mut t = run(|a| a.bsf(eax, dword_ptr(DATA as i32)));
    t.wr32(DATA, 0x8000_0000).run();
    assert_eq!(t.r(EAX), 31);
}

#[test]
fn bsf_zero_source_sets_zf() {
    let mut t = run(|a| a.bsf(eax, ebx));
    t.set(EBX, 0).run();
    assert_eq!(t.arith() & ZF, ZF);
    let mut t = run(|a| a.bsr(eax, ebx));
    t.set(EBX, 0).run();
    assert_eq!(t.arith() & ZF, ZF);
}

#[test]
fn tzcnt_lzcnt_encodings_run_as_bsf_bsr_without_bmi() {
    // F3 0F BC / F3 0F BD on a CPU without BMI1/ABM: REP is ignored.
    let mut t = T::pm32(|a| {
        a.mov(ecx, 0x0000_0500u32)?;
        a.tzcnt(eax, ecx)?;
        a.lzcnt(ebx, ecx)?;
        a.mov(edx, 0x1234u32)?;
        a.xor(esi, esi)?;
        a.tzcnt(edx, esi)?; // BSF of 0: ZF=1, destination unchanged
        a.hlt()
    });
    t.run();
    assert_eq!(t.r(EAX), 8, "BSF result, not TZCNT's");
    assert_eq!(t.r(EBX), 10, "BSR gives the index (LZCNT would give 21)");
    assert_eq!(t.r(EDX), 0x1234);
    assert_ne!(t.flags() & FLAG_ZF, 0);
}
