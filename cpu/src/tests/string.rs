//! String instructions: REP/REPE/REPNE termination, DF=1, segment
//! overrides (source only; ES:EDI cannot be overridden), 16-bit addressing.

use super::*;

const CF: u64 = FLAG_CF;
const ZF: u64 = FLAG_ZF;

const SRC: u64 = DATA;
const DST: u64 = DATA + 0x100;

fn run(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
    T::pm32(|a| {
        f(a)?;
        a.hlt()
    })
}

#[test]
fn rep_movsb_forward() {
    let mut t = run(|a| a.rep().movsb());
    t.cpu.mem.load(SRC, b"0123456789AB");
    t.set(ESI, SRC as u32)
        .set(EDI, DST as u32)
        .set(ECX, 10)
        .run();
    assert_eq!(
        &t.cpu.mem.ram[DST as usize..DST as usize + 11],
        b"0123456789\0"
    );
    assert_eq!(t.r(ECX), 0);
    assert_eq!(t.r(ESI), SRC as u32 + 10);
    assert_eq!(t.r(EDI), DST as u32 + 10);
}

#[test]
fn rep_movsd_backward_with_df() {
    let mut t = run(|a| {
        a.std()?;
        a.rep().movsd()
    });
    for k in 0..4 {
        t.wr32(SRC + 4 * k, 0x1111_1111 * (k as u32 + 1));
    }
    t.set(ESI, SRC as u32 + 8)
        .set(EDI, DST as u32 + 8)
        .set(ECX, 3);
    t.run();
    assert_eq!(t.rd32(DST), 0x1111_1111);
    assert_eq!(t.rd32(DST + 4), 0x2222_2222);
    assert_eq!(t.rd32(DST + 8), 0x3333_3333);
    assert_eq!(t.rd32(DST + 12), 0, "one element too many");
    assert_eq!(t.r(ESI), SRC as u32 - 4);
    assert_eq!(t.r(EDI), DST as u32 - 4);
    assert_eq!(t.flags() & FLAG_DF, FLAG_DF);
}

#[test]
fn rep_stosw_count() {
    let mut t = run(|a| a.rep().stosw());
    t.set(EAX, 0xdead_beef)
        .set(EDI, DST as u32)
        .set(ECX, 5)
        .run();
    for k in 0..5 {
        assert_eq!(t.rd(DST + 2 * k, 2), 0xbeef);
    }
    assert_eq!(t.rd(DST + 10, 2), 0);
    assert_eq!(t.r(EDI), DST as u32 + 10);
}

#[test]
fn rep_with_zero_count_does_nothing() {
    let mut t = run(|a| a.rep().movsb());
    t.wr(SRC, 1, 0x55);
    t.set(ESI, SRC as u32)
        .set(EDI, DST as u32)
        .set(ECX, 0)
        .run();
    assert_eq!(t.rd(DST, 1), 0);
    assert_eq!((t.r(ESI), t.r(EDI)), (SRC as u32, DST as u32));
}

#[test]
fn repe_cmpsb_stops_at_difference() {
    let mut t = run(|a| a.repe().cmpsb());
    t.cpu.mem.load(SRC, b"abcdXzzzzz");
    t.cpu.mem.load(DST, b"abcdYzzzzz");
    t.set(ESI, SRC as u32)
        .set(EDI, DST as u32)
        .set(ECX, 10)
        .run();
    assert_eq!(t.r(ECX), 5);
    assert_eq!(t.r(ESI), SRC as u32 + 5);
    assert_eq!(t.r(EDI), DST as u32 + 5);
    // Flags of CMP 'X', 'Y'.
    assert_eq!(t.arith() & (ZF | CF), CF);
}

#[test]
fn repe_cmpsd_all_equal() {
    let mut t = run(|a| a.repe().cmpsd());
    for k in 0..4 {
        t.wr32(SRC + 4 * k, k as u32 + 7)
            .wr32(DST + 4 * k, k as u32 + 7);
    }
    t.set(ESI, SRC as u32)
        .set(EDI, DST as u32)
        .set(ECX, 4)
        .run();
    assert_eq!(t.r(ECX), 0);
    assert_eq!(t.arith() & ZF, ZF);
}

#[test]
fn repne_scasb_finds_terminator() {
    let mut t = run(|a| a.repne().scasb());
    t.cpu.mem.load(DST, b"hello\0world");
    t.set(EAX, 0)
        .set(EDI, DST as u32)
        .set(ECX, 0xffff_ffff)
        .run();
    assert_eq!(t.r(EDI), DST as u32 + 6);
    assert_eq!(t.r(ECX), 0xffff_ffff - 6);
    assert_eq!(t.arith() & ZF, ZF);
}

#[test]
fn repne_scasb_runs_out() {
    let mut t = run(|a| a.repne().scasb());
    t.cpu.mem.load(DST, b"abc");
    t.set(EAX, b'z' as u32)
        .set(EDI, DST as u32)
        .set(ECX, 3)
        .run();
    assert_eq!(t.r(ECX), 0);
    assert_eq!(t.arith() & ZF, 0);
}

#[test]
fn lodsb_with_fs_override() {
    // FS base 0x20000: the byte comes from linear 0x20010.
    let mut t = run(|a| {
        a.mov(ax, SEL_DATA_20000 as u32)?;
        a.mov(fs, ax)?;
        a.db(&[0x64, 0xac]) // fs lodsb
    });
    t.wr(0x20010, 1, 0x42).wr(0x10, 1, 0x99);
    t.set(ESI, 0x10).run();
    assert_eq!(t.r(EAX) & 0xff, 0x42);
    assert_eq!(t.r(ESI), 0x11);
}

#[test]
fn rep_movsb_override_applies_to_source_only() {
    let mut t = run(|a| {
        a.mov(ax, SEL_DATA_20000 as u32)?;
        a.mov(fs, ax)?;
        a.db(&[0xf3, 0x64, 0xa4]) // rep fs movsb
    });
    t.cpu.mem.load(0x20000 + 0x40, b"XYZ");
    t.set(ESI, 0x40).set(EDI, DST as u32).set(ECX, 3).run();
    assert_eq!(&t.cpu.mem.ram[DST as usize..DST as usize + 3], b"XYZ");
    assert_eq!(
        t.rd(0x20000 + DST, 1),
        0,
        "ES:EDI must not take the override"
    );
}

#[test]
fn stos_ignores_segment_override() {
    let mut t = run(|a| {
        a.mov(ax, SEL_DATA_20000 as u32)?;
        a.mov(fs, ax)?;
        a.mov(al, 0x77)?;
        a.db(&[0x64, 0xaa]) // fs stosb
    });
    t.set(EDI, 0x80).run();
    assert_eq!(t.rd(0x80, 1), 0x77);
    assert_eq!(t.rd(0x20080, 1), 0);
}

#[test]
fn string_override_limit_fault() {
    // FS limit is 0xfff: reading FS:0x1000 is a #GP(0) fault with ESI, EDI
    // and ECX left at the failing element.
    let mut t = run(|a| {
        a.mov(ax, SEL_DATA_20000 as u32)?;
        a.mov(fs, ax)?;
        a.db(&[0xf3, 0x64, 0xa4])
    });
    let movs_at = CODE
        + len32(|a| {
            a.mov(ax, SEL_DATA_20000 as u32)?;
            a.mov(fs, ax)
        });
    t.set(ESI, 0xffe).set(EDI, DST as u32).set(ECX, 4);
    t.expect_fault(crate::exception::GP, Some(0), movs_at);
    assert_eq!((t.r(ESI), t.r(EDI), t.r(ECX)), (0x1000, DST as u32 + 2, 2));
}

#[test]
fn movsb_16bit_addressing() {
    // a16 rep movsb: CX counts, SI/DI wrap at 16 bits, upper halves kept.
    let mut t = run(|a| a.db(&[0x67, 0xf3, 0xa4]));
    t.cpu.mem.load(0x100, b"abc");
    t.set(ECX, 0xffff_0003)
        .set(ESI, 0x1234_0100)
        .set(EDI, 0x5678_0200)
        .run();
    assert_eq!(&t.cpu.mem.ram[0x200..0x203], b"abc");
    assert_eq!(t.r(ECX), 0xffff_0000);
    assert_eq!((t.r(ESI), t.r(EDI)), (0x1234_0103, 0x5678_0203));
}

#[test]
fn rep_stosb_long_count_completes() {
    // Long REPs may be split internally; the architectural result must be
    // the same as one uninterrupted instruction.
    let mut t = run(|a| a.rep().stosb());
    t.set(EAX, 0xab).set(EDI, 0x20000).set(ECX, 10_000).run();
    assert_eq!(t.r(ECX), 0);
    assert_eq!(t.r(EDI), 0x20000 + 10_000);
    assert!(t.cpu.mem.ram[0x20000..0x20000 + 10_000]
        .iter()
        .all(|&b| b == 0xab));
    assert_eq!(t.rd(0x20000 + 10_000, 1), 0);
}
