//! Control flow and stack: LOOP/JCXZ with 16-bit address size, ENTER
//! (levels 0, 1, 3) and LEAVE, BOUND (#BR), PUSH/POP with ESP-relative
//! memory operands, PUSH/POP ESP, PUSHA/POPA.

use super::*;

#[test]
fn loop_a16_uses_cx_only() {
    // inc ebx; a16 loop back to the inc (67 E2 FC).
    let mut t = T::pm32(|a| {
        a.inc(ebx)?;
        a.db(&[0x67, 0xe2, 0xfc])?;
        a.hlt()
    });
    t.set(ECX, 0x0001_0003).run();
    assert_eq!(t.r(EBX), 3);
    assert_eq!(t.r(ECX), 0x0001_0000);
}

#[test]
fn loop_a16_zero_cx_runs_65536_times() {
    let mut t = T::pm32(|a| {
        a.inc(ebx)?;
        a.db(&[0x67, 0xe2, 0xfc])?;
        a.hlt()
    });
    t.set(ECX, 0xabcd_0000).run();
    assert_eq!(t.r(EBX), 0x1_0000);
    assert_eq!(t.r(ECX), 0xabcd_0000);
}

#[test]
fn loop_real_mode_cx() {
    let mut t = T::real(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.inc(bx)?;
        a.loop_(top)?;
        a.hlt()
    });
    t.set(ECX, 0x7777_0002).run();
    assert_eq!(t.r(EBX), 2);
    assert_eq!(t.r(ECX), 0x7777_0000);
}

#[test]
fn loopne_stops_on_zf_set() {
    // LOOPNE continues while ZF = 0: it ends when CMP EDX,3 sets ZF.
    let mut t = T::pm32(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.inc(edx)?;
        a.cmp(edx, 3)?;
        a.loopne(top)?;
        a.hlt()
    });
    t.set(ECX, 100).run();
    assert_eq!(t.r(EDX), 3);
    assert_eq!(t.r(ECX), 97);
}

#[test]
fn jcxz_tests_cx_in_32bit_code() {
    // a16 JCXZ (67 E3): CX = 0 although ECX != 0 -> taken.
    let mut t = T::pm32(|a| {
        let mut skip = a.create_label();
        a.jcxz(skip)?;
        a.mov(ebx, 1)?;
        a.set_label(&mut skip)?;
        a.hlt()
    });
    t.set(ECX, 0x0001_0000).run();
    assert_eq!(t.r(EBX), 0);
    // JECXZ with the same ECX is not taken.
    let mut t = T::pm32(|a| {
        let mut skip = a.create_label();
        a.jecxz(skip)?;
        a.mov(ebx, 1)?;
        a.set_label(&mut skip)?;
        a.hlt()
    });
    t.set(ECX, 0x0001_0000).run();
    assert_eq!(t.r(EBX), 1);
}

#[test]
fn enter_level0() {
    let mut t = T::pm32(|a| {
        a.enter(16u32, 0u32)?;
        a.hlt()
    });
    t.set(EBP, 0x1234).run();
    assert_eq!(t.rd32(0x7ffc), 0x1234);
    assert_eq!(t.r(EBP), 0x7ffc);
    assert_eq!(t.r(ESP), 0x7fec);
}

#[test]
fn enter_level1() {
    let mut t = T::pm32(|a| {
        a.enter(8u32, 1u32)?;
        a.hlt()
    });
    t.set(EBP, 0x1234).run();
    assert_eq!(t.rd32(0x7ffc), 0x1234);
    // Level 1 pushes the new frame pointer.
    assert_eq!(t.rd32(0x7ff8), 0x7ffc);
    assert_eq!(t.r(EBP), 0x7ffc);
    assert_eq!(t.r(ESP), 0x7ff0);
}

#[test]
fn enter_level3_copies_display() {
    let mut t = T::pm32(|a| {
        a.enter(4u32, 3u32)?;
        a.hlt()
    });
    t.set(EBP, DATA as u32);
    t.wr32(DATA - 4, 0xaaaa)
        .wr32(DATA - 8, 0xbbbb)
        .wr32(DATA - 12, 0xcccc);
    t.run();
    assert_eq!(t.rd32(0x7ffc), DATA as u32, "old EBP");
    assert_eq!(t.rd32(0x7ff8), 0xaaaa, "display entry 1");
    assert_eq!(t.rd32(0x7ff4), 0xbbbb, "display entry 2");
    assert_eq!(t.rd32(0x7ff0), 0x7ffc, "frame pointer");
    assert_eq!(t.r(EBP), 0x7ffc);
    assert_eq!(t.r(ESP), 0x7fec);
}

#[test]
fn leave_restores_frame() {
    let mut t = T::pm32(|a| {
        a.leave()?;
        a.hlt()
    });
    t.set(EBP, 0x7ffc)
        .set(ESP, 0x7000)
        .wr32(0x7ffc, 0x5555)
        .run();
    assert_eq!((t.r(ESP), t.r(EBP)), (0x8000, 0x5555));
}

#[test]
fn enter_then_leave_roundtrip() {
    let mut t = T::pm32(|a| {
        a.enter(0x20u32, 2u32)?;
        a.leave()?;
        a.hlt()
    });
    t.set(EBP, DATA as u32).run();
    assert_eq!((t.r(ESP), t.r(EBP)), (0x8000, DATA as u32));
}

fn bound_case(va: u32, lo: i32, hi: i32) -> Option<u8> {
    let mut t = T::pm32(|a| {
        a.bound(eax, qword_ptr(DATA as i32))?;
        a.hlt()
    });
    t.set(EAX, va)
        .wr32(DATA, lo as u32)
        .wr32(DATA + 4, hi as u32);
    let v = t.run_any();
    if v.is_some() {
        // #BR is a fault: EIP of the BOUND, no error code.
        assert_eq!(t.stack32(0) as u64, CODE);
        assert_eq!(t.r(ESP), 0x8000 - 12);
    }
    v
}

#[test]
fn bound_in_range_and_out() {
    assert_eq!(bound_case(15, 10, 20), None);
    assert_eq!(bound_case(10, 10, 20), None);
    assert_eq!(bound_case(20, 10, 20), None);
    assert_eq!(bound_case(21, 10, 20), Some(crate::exception::BR));
    assert_eq!(bound_case(9, 10, 20), Some(crate::exception::BR));
    // Signed comparison.
    assert_eq!(bound_case((-1i32) as u32, -5, 5), None);
    assert_eq!(bound_case(0x8000_0000, -5, 5), Some(crate::exception::BR));
}

#[test]
fn push_esp_relative_memory_uses_old_esp() {
    let mut t = T::pm32(|a| {
        a.push(dword_ptr(esp + 4))?;
        a.hlt()
    });
    t.wr32(0x8004, 0x1111_1111).wr32(0x8000, 0x2222_2222).run();
    assert_eq!(t.rd32(0x7ffc), 0x1111_1111);
    assert_eq!(t.r(ESP), 0x7ffc);
}

#[test]
fn pop_esp_relative_memory_uses_new_esp() {
    // The address is computed after ESP is incremented: [0x8000 + 4].
    let mut t = T::pm32(|a| {
        a.pop(dword_ptr(esp + 4))?;
        a.hlt()
    });
    t.set(ESP, 0x7ffc).wr32(0x7ffc, 0xcafe).run();
    assert_eq!(t.r(ESP), 0x8000);
    assert_eq!(t.rd32(0x8004), 0xcafe);
    assert_eq!(t.rd32(0x8000), 0);
}

#[test]
fn push_esp_pushes_old_value_and_pop_esp_loads() {
    let mut t = T::pm32(|a| {
        a.push(esp)?;
        a.pop(ebx)?;
        a.push(0x1234)?;
        a.pop(esp)?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.r(EBX), 0x8000);
    assert_eq!(t.r(ESP), 0x1234);
}

#[test]
fn pushad_order_and_popad_skips_esp() {
    let mut t = T::pm32(|a| {
        a.pushad()?;
        a.hlt()
    });
    for r in 0..8 {
        if r != ESP {
            t.set(r, 0x100 * (r as u32 + 1));
        }
    }
    t.run();
    let expect = [0x100, 0x200, 0x300, 0x400, 0x8000, 0x600, 0x700, 0x800];
    for (k, v) in expect.iter().enumerate() {
        assert_eq!(t.rd32(0x7ffc - 4 * k as u64), *v, "slot {k}");
    }
    assert_eq!(t.r(ESP), 0x7fe0);

    let mut t = T::pm32(|a| {
        a.popad()?;
        a.hlt()
    });
    t.set(ESP, 0x7fe0);
    for k in 0..8u64 {
        t.wr32(0x7fe0 + 4 * k, 0x1000 + k as u32);
    }
    t.run();
    // Memory from low to high: EDI, ESI, EBP, (ESP), EBX, EDX, ECX, EAX.
    assert_eq!(t.r(EDI), 0x1000);
    assert_eq!(t.r(ESI), 0x1001);
    assert_eq!(t.r(EBP), 0x1002);
    assert_eq!(t.r(EBX), 0x1004);
    assert_eq!(t.r(EDX), 0x1005);
    assert_eq!(t.r(ECX), 0x1006);
    assert_eq!(t.r(EAX), 0x1007);
    assert_eq!(t.r(ESP), 0x8000);
}

#[test]
fn pushaw_16bit() {
    let mut t = T::pm32(|a| {
        a.pusha()?;
        a.hlt()
    });
    t.set(EAX, 0xaaaa_1111).set(EDI, 0xbbbb_8888).run();
    assert_eq!(t.r(ESP), 0x8000 - 16);
    assert_eq!(t.rd(0x7ffe, 2), 0x1111);
    assert_eq!(t.rd(0x7ff6, 2), 0x8000, "SP slot");
    assert_eq!(t.rd(0x7ff0, 2), 0x8888);
}
