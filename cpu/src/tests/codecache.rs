//! The decoded-block cache against writes into code pages: stores to code
//! bytes must be seen by the next fetch (SDM vol. 3A 11.6, self-modifying
//! code), while stores to data that only shares a page with code must not
//! throw the page's blocks away (a loop writing next to itself would
//! otherwise decode, and under the JIT compile, every iteration).

use super::*;

/// Code epoch: bumped whenever blocks are dropped.
fn epoch(t: &T) -> u64 {
    t.cpu.cache.epoch
}

#[test]
fn data_stores_next_to_code_keep_its_blocks() -> AsmResult {
    // The loop body sits in the first 64-byte line of the page; the data
    // it writes is at CODE + 0x800, in the same 4 KiB page.
    let mut t = T::pm32(|a| {
        a.mov(ecx, 1000)?;
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.mov(dword_ptr(CODE + 0x800), ecx)?;
        a.add(dword_ptr(CODE + 0x804), 3)?;
        a.dec(ecx)?;
        a.jnz(l)?;
        a.hlt()
    });
    let before = epoch(&t);
    t.run();
    assert_eq!(t.rd32(CODE + 0x804), 3000);
    assert_eq!(t.rd32(CODE + 0x800), 1);
    // Every store before the fix bumped the epoch (2000 times).
    assert!(
        epoch(&t) - before < 10,
        "code epoch moved {} times",
        epoch(&t) - before
    );
    Ok(())
}

#[test]
fn a_store_into_the_next_instruction_is_seen() -> AsmResult {
    // `mov al, imm8` is B0 ib: the store rewrites its immediate, which is
    // in the same block as the store.
    // The store (C6 05 disp32 ib) is 7 bytes, so `mov al` is at CODE + 7.
    let mut t = T::pm32(|a| {
        a.mov(byte_ptr(CODE + 8), 0x42)?;
        a.mov(al, 0x11)?;
        a.hlt()
    });
    assert_eq!(t.rd(CODE + 7, 2), 0x11b0);
    t.run();
    assert_eq!(t.r(EAX) & 0xff, 0x42);
    Ok(())
}

#[test]
fn a_store_into_code_far_down_the_page_is_seen_on_the_next_pass() -> AsmResult {
    // A loop that runs a subroutine near the end of the page (line 60), then rewrites
    // that subroutine's immediate from the loop (different lines): the
    // second call must run the new code.
    let sub = CODE + 0xf00;
    let mut t = T::pm32(|a| {
        a.mov(esi, 0)?;
        a.mov(ecx, 2)?;
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.mov(eax, sub as u32)?;
        a.call(eax)?;
        a.add(esi, edx)?;
        a.mov(dword_ptr(sub + 1), 100)?; // the imm32 of `mov edx, imm32`
        a.dec(ecx)?;
        a.jnz(l)?;
        a.hlt()
    });
    // mov edx, 7 ; ret
    t.cpu.mem.load(sub, &[0xba, 7, 0, 0, 0, 0xc3]);
    t.run();
    assert_eq!(t.r(ESI), 107);
    Ok(())
}
