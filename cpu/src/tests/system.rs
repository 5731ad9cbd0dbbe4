//! Protected-mode faults and system instructions: segment-load error codes,
//! #PF error code and CR2, CPUID, RDMSR, #UD, self-modifying code and the
//! MOV SS / STI interrupt shadow.

use super::*;
use crate::exception::{GP, NP, PF, UD};

/// Code that loads `sel` into the segment register `seg` via AX; returns
/// the EIP of the MOV Sreg.
fn seg_load(sel: u16, to_ss: bool) -> (T, u64) {
    let pre = |a: &mut Asm| a.mov(eax, sel as u32);
    let at = CODE + len32(pre);
    let t = T::pm32(|a| {
        pre(a)?;
        if to_ss {
            a.mov(ss, ax)?;
        } else {
            a.mov(ds, ax)?;
        }
        a.hlt()
    });
    (t, at)
}

#[test]
fn mov_ss_dpl3_segment_is_gp_with_selector() {
    let (mut t, at) = seg_load(SEL_DPL3_DATA, true);
    t.expect_fault(GP, Some(SEL_DPL3_DATA as u32), at);
    assert_eq!(t.cpu.s.seg[SS].selector, SEL_DATA);
}

#[test]
fn mov_ss_rpl_mismatch_error_code_drops_rpl() {
    let (mut t, at) = seg_load(SEL_DPL3_DATA | 3, true);
    t.expect_fault(GP, Some(SEL_DPL3_DATA as u32), at);
}

#[test]
fn mov_ss_null_is_gp0() {
    let (mut t, at) = seg_load(0, true);
    t.expect_fault(GP, Some(0), at);
}

#[test]
fn mov_ds_system_descriptor_is_gp() {
    let (mut t, at) = seg_load(SEL_LDT, false);
    t.expect_fault(GP, Some(SEL_LDT as u32), at);
    assert_eq!(t.cpu.s.seg[DS].selector, SEL_DATA);
}

#[test]
fn mov_ds_beyond_gdt_limit_is_gp() {
    let (mut t, at) = seg_load(0x80, false);
    t.expect_fault(GP, Some(0x80), at);
}

#[test]
fn mov_ds_execute_only_code_is_gp() {
    let (mut t, at) = seg_load(SEL_EXEC_ONLY, false);
    t.expect_fault(GP, Some(SEL_EXEC_ONLY as u32), at);
}

#[test]
fn mov_ds_not_present_is_np() {
    let (mut t, at) = seg_load(SEL_NOT_PRESENT, false);
    t.expect_fault(NP, Some(SEL_NOT_PRESENT as u32), at);
}

#[test]
fn null_ds_loads_but_use_faults() {
    let pre = |a: &mut Asm| {
        a.xor(eax, eax)?;
        a.mov(ds, ax)
    };
    let at = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        a.mov(ebx, dword_ptr(DATA as i32))?;
        a.hlt()
    });
    t.expect_fault(GP, Some(0), at);
}

#[test]
fn limit_violation_is_gp0() {
    // DS base 0x20000 limit 0xfff: a dword at 0xffe crosses the limit.
    let pre = |a: &mut Asm| {
        a.mov(eax, SEL_DATA_20000 as u32)?;
        a.mov(ds, ax)
    };
    let at = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        a.mov(dword_ptr(0xffe), ebx)?;
        a.hlt()
    });
    t.expect_fault(GP, Some(0), at);
    assert_eq!(t.rd(0x20ffe, 2), 0, "no partial write");
}

// ---- paging ----

const PD: u64 = 0x10000;
const PTAB: u64 = 0x11000;
/// Not present.
const NP_PAGE: u64 = 0x50000;
/// Present, read-only.
const RO_PAGE: u64 = 0x51000;

/// Identity-map the first MiB with 4 KiB pages, except NP_PAGE (absent)
/// and RO_PAGE (read-only); the test code enables paging with CR0.WP.
fn paged(f: impl FnOnce(&mut Asm) -> AsmResult) -> (T, u64) {
    let pre = |a: &mut Asm| {
        a.mov(eax, PD as u32)?;
        a.mov(cr3, eax)?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8001_0000u32 as i32)?;
        a.mov(cr0, eax)
    };
    let at = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        f(a)?;
        a.hlt()
    });
    t.wr32(PD, PTAB as u32 | 3);
    for p in 0..256u64 {
        let a = p << 12;
        let pte = match a {
            NP_PAGE => 0,
            RO_PAGE => a | 1,
            _ => a | 3,
        };
        t.wr32(PTAB + 4 * p, pte as u32);
    }
    (t, at)
}

#[test]
fn page_fault_read_not_present() {
    let (mut t, at) = paged(|a| a.mov(ecx, dword_ptr(NP_PAGE as i32 + 0x123)));
    t.set(ECX, 0xdead);
    t.expect_fault(PF, Some(0), at);
    assert_eq!(t.cpu.s.cr2, NP_PAGE + 0x123);
    assert_eq!(t.r(ECX), 0xdead);
}

#[test]
fn page_fault_write_not_present() {
    let (mut t, at) = paged(|a| a.mov(dword_ptr(NP_PAGE as i32 + 8), ecx));
    t.expect_fault(PF, Some(2), at);
    assert_eq!(t.cpu.s.cr2, NP_PAGE + 8);
}

#[test]
fn page_fault_write_read_only_with_wp() {
    let (mut t, at) = paged(|a| a.mov(dword_ptr(RO_PAGE as i32 + 0xffc), 1));
    t.expect_fault(PF, Some(3), at);
    assert_eq!(t.cpu.s.cr2, RO_PAGE + 0xffc);
    assert_eq!(t.rd32(RO_PAGE + 0xffc), 0);
}

#[test]
fn page_fault_split_write_touches_neither_page() {
    // A dword at 0x4fffe straddles a writable page and the absent one: CR2 is
    // the first byte of the absent page and nothing is written.
    let (mut t, at) = paged(|a| a.mov(dword_ptr(NP_PAGE as i32 - 2), ecx));
    t.set(ECX, 0xffff_ffff);
    t.expect_fault(PF, Some(2), at);
    assert_eq!(t.cpu.s.cr2, NP_PAGE);
    assert_eq!(t.rd(NP_PAGE - 2, 2), 0);
}

#[test]
fn page_fault_on_fetch() {
    let (mut t, _) = paged(|a| a.jmp(NP_PAGE));
    let v = t.run_fault();
    assert_eq!(v, PF);
    let err = t.stack32(0);
    // P=0, W/R=0, U/S=0 (I/D is reported only with NX/SMEP enabled).
    assert_eq!(err & !0x10, 0);
    assert_eq!(t.stack32(1) as u64, NP_PAGE, "faulting EIP is the target");
    assert_eq!(t.cpu.s.cr2, NP_PAGE);
}

#[test]
fn paging_sets_accessed_and_dirty() {
    let (mut t, _) = paged(|a| {
        a.mov(eax, dword_ptr(0x60000))?;
        a.mov(dword_ptr(0x61000), eax)
    });
    t.run();
    assert_eq!(t.rd32(PTAB + 4 * 0x60) & 0x60, 0x20, "read: A only");
    assert_eq!(t.rd32(PTAB + 4 * 0x61) & 0x60, 0x60, "write: A and D");
    assert_eq!(t.rd32(PD) & 0x20, 0x20, "PDE accessed");
}

#[test]
fn pse_large_page_alias() {
    // CR4.PSE with a 4 MiB PDE mapping linear 4 MiB onto physical 0.
    let (mut t, _) = paged(|a| {
        a.mov(eax, cr4)?;
        a.or(eax, CR4_PSE as i32)?;
        a.mov(cr4, eax)?;
        a.mov(ebx, dword_ptr(0x40_0000 + DATA as i32))
    });
    t.wr32(PD + 4, 0x83).wr32(DATA, 0x5a5a_1234).run();
    assert_eq!(t.r(EBX), 0x5a5a_1234);
}

// ---- CPUID / MSR / #UD ----

fn cpuid(leaf: u32) -> [u32; 4] {
    let mut t = T::pm32(|a| {
        a.cpuid()?;
        a.hlt()
    });
    t.set(EAX, leaf).set(ECX, 0).run();
    [t.r(EAX), t.r(EBX), t.r(ECX), t.r(EDX)]
}

#[test]
fn cpuid_leaf0_vendor() {
    let r = cpuid(0);
    assert!(r[0] >= 1, "max basic leaf");
    let mut v = Vec::new();
    for reg in [r[1], r[3], r[2]] {
        v.extend_from_slice(&reg.to_le_bytes());
    }
    assert_eq!(&v, b"GenuineIntel");
}

#[test]
fn cpuid_leaf1_reports_only_implemented_features() {
    let r = cpuid(1);
    // FPU DE PSE TSC MSR PAE CX8 SEP PGE CMOV PAT PSE36 CLFSH MMX FXSR SSE SSE2
    let implemented = [
        0u32, 2, 3, 4, 5, 6, 8, 11, 13, 15, 16, 17, 19, 23, 24, 25, 26,
    ]
    .iter()
    .fold(0, |m, b| m | 1 << b);
    assert_eq!(r[3], implemented, "EDX feature bits");
    // SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT; no MONITOR, AVX, XSAVE or OSXSAVE.
    let ecx_bits: u32 = [0u32, 9, 13, 19, 20, 23].iter().fold(0, |m, b| m | 1 << b);
    assert_eq!(r[2], ecx_bits, "ECX feature bits");
    assert_eq!(r[1] >> 8 & 0xff, 8, "CLFLUSH line size 64 bytes");
    // Family 6.
    assert_eq!(r[0] >> 8 & 0xf, 6);
}

#[test]
fn cpuid_reported_features_work() {
    // TSC, MSR, PAT, DE/PSE/PGE/PAE in CR4: none may fault.
    let mut t = T::pm32(|a| {
        a.rdtsc()?;
        a.mov(esi, eax)?;
        a.nop()?;
        a.rdtsc()?;
        a.mov(edi, eax)?;
        a.mov(ecx, 0x10)?;
        a.rdmsr()?;
        a.mov(ecx, 0x277)?;
        a.rdmsr()?;
        a.mov(dword_ptr(DATA as i32), eax)?;
        a.mov(dword_ptr(DATA as i32 + 4), edx)?;
        a.mov(eax, (CR4_DE | CR4_PSE | CR4_PGE | CR4_PAE) as u32)?;
        a.mov(cr4, eax)?;
        a.hlt()
    });
    t.run();
    assert!(t.r(EDI).wrapping_sub(t.r(ESI)) as i32 > 0, "TSC advances");
    // IA32_PAT power-up value (SDM Vol. 3A, 13.12.4).
    assert_eq!(t.rd(DATA, 8), 0x0007_0406_0007_0406);
    assert_eq!(
        t.cpu.s.cr4 & (CR4_DE | CR4_PSE | CR4_PGE | CR4_PAE),
        CR4_DE | CR4_PSE | CR4_PGE | CR4_PAE
    );
}

#[test]
fn rdmsr_unknown_is_gp0() {
    let pre = |a: &mut Asm| a.mov(ecx, 0x1234_5678);
    let at = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        a.rdmsr()?;
        a.hlt()
    });
    t.set(EAX, 0x1111).set(EDX, 0x2222);
    t.expect_fault(GP, Some(0), at);
    assert_eq!((t.r(EAX), t.r(EDX)), (0x1111, 0x2222));
}

#[test]
fn wrmsr_unknown_is_gp0() {
    let pre = |a: &mut Asm| a.mov(ecx, 0x1234_5678);
    let at = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        pre(a)?;
        a.wrmsr()?;
        a.hlt()
    });
    t.expect_fault(GP, Some(0), at);
}

#[test]
fn ud2_is_invalid_opcode() {
    let mut t = T::pm32(|a| {
        a.nop()?;
        a.ud2()?;
        a.hlt()
    });
    t.expect_fault(UD, None, CODE + 1);
}

#[test]
fn mov_to_cs_is_invalid_opcode() {
    let mut t = T::pm32(|a| {
        a.db(&[0x8e, 0xc8])?; // mov cs, ax
        a.hlt()
    });
    t.expect_fault(UD, None, CODE);
    assert_eq!(t.cpu.s.seg[CS].selector, SEL_CODE);
}

#[test]
fn lock_prefix_on_non_lockable_is_invalid_opcode() {
    // SDM Vol. 2A "LOCK": #UD if LOCK is used with an instruction not in the
    // lockable list or with a register destination.
    for bytes in [&[0xf0u8, 0x90][..], &[0xf0, 0x01, 0xd8]] {
        let mut t = T::pm32(|a| {
            a.db(bytes)?;
            a.hlt()
        });
        t.set(EAX, 1).set(EBX, 2);
        t.expect_fault(UD, None, CODE);
        assert_eq!(t.r(EAX), 1, "{bytes:x?}");
    }
}

#[test]
fn lock_prefix_on_memory_add_is_fine() {
    let mut t = T::pm32(|a| {
        a.lock().add(dword_ptr(DATA as i32), ebx)?;
        a.hlt()
    });
    t.set(EBX, 5).wr32(DATA, 6).run();
    assert_eq!(t.rd32(DATA), 11);
}

// ---- self-modifying code ----

#[test]
fn store_patches_next_instruction() {
    // mov byte [CODE+8], 0x42 (7 bytes) ; mov al, 0x11 (B0 11) ; hlt
    let mut t = T::pm32(|a| {
        a.mov(byte_ptr(CODE as i32 + 8), 0x42)?;
        a.mov(al, 0x11)?;
        a.hlt()
    });
    assert_eq!(t.rd(CODE + 7, 1), 0xb0);
    t.run();
    assert_eq!(t.r(EAX) & 0xff, 0x42);
}

#[test]
fn store_patches_already_executed_code() {
    // The block holding `mov al, imm` ran once before being patched.
    let mut t = T::pm32(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 2)?;
        a.set_label(&mut top)?;
        a.mov(al, 0x11)?;
        a.add(bl, al)?;
        a.mov(byte_ptr(CODE as i32 + 6), 0x22)?;
        a.loop_(top)?;
        a.hlt()
    });
    assert_eq!(t.rd(CODE + 5, 1), 0xb0);
    t.run();
    assert_eq!(t.r(EBX) & 0xff, 0x33);
}

#[test]
fn rep_stos_overwrites_following_code() {
    // REP STOSB overwrites the following 5-byte `mov ebx, 1` with NOPs.
    // (MOV r32, imm32 has a fixed length, so the prefix length is known.)
    let pre = |a: &mut Asm| {
        a.mov(edi, 0)?;
        a.mov(ecx, 5)?;
        a.mov(al, 0x90)?;
        a.rep().stosb()
    };
    let target = CODE + len32(pre);
    let mut t = T::pm32(|a| {
        a.mov(edi, target as u32)?;
        a.mov(ecx, 5)?;
        a.mov(al, 0x90)?;
        a.rep().stosb()?;
        a.mov(ebx, 1)?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.r(EBX), 0);
}

// ---- interrupt shadow ----
//
// SDM Vol. 3A 6.8.3: after MOV SS (or STI with IF=0) maskable interrupts
// are inhibited until the next instruction has completed.

/// `first; inc ebx; inc ebx; inc ebx; hlt` with EAX = a data selector.
/// Returns the test and the address of the first INC.
fn shadow_case(first: impl Fn(&mut Asm) -> AsmResult) -> (T, u64) {
    let at = CODE + len32(&first);
    let mut t = T::pm32(|a| {
        first(a)?;
        a.inc(ebx)?;
        a.inc(ebx)?;
        a.inc(ebx)?;
        a.hlt()
    });
    t.set(EAX, SEL_DATA as u32);
    (t, at)
}

fn irq(vector: u8) -> IrqBus {
    IrqBus {
        pending: true,
        vector,
    }
}

/// The interrupt was taken at an instruction boundary at or after `min`
/// INCs: EBX and the pushed EIP must agree (HLT ends the code at +3).
fn check_taken_after(t: &T, first_inc: u64, min: u32) {
    assert_eq!(t.vector_taken(), Some(0x30));
    let n = t.r(EBX);
    assert!(
        n >= min,
        "interrupt taken after {n} instructions, want >= {min}"
    );
    let eip = t.stack32(0) as u64;
    let ok = eip == first_inc + n as u64 || (n == 3 && eip == first_inc + 4);
    assert!(ok, "pushed EIP {eip:#x} does not match EBX={n}");
}

#[test]
fn mov_ss_blocks_interrupt_for_next_instruction() {
    let (mut t, first_inc) = shadow_case(|a| a.mov(ss, ax));
    t.set_flags(FLAG_IF);
    let mut bus = irq(0x30);
    // Execute MOV SS alone (step does not poll for interrupts), then run
    // with the interrupt pending.
    assert_eq!(t.cpu.step(&mut bus), None);
    assert_eq!(t.cpu.s.rip, first_inc);
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    check_taken_after(&t, first_inc, 1);
}

#[test]
fn mov_ds_has_no_shadow() {
    let (mut t, first_inc) = shadow_case(|a| a.mov(ds, ax));
    t.set_flags(FLAG_IF);
    let mut bus = irq(0x30);
    t.cpu.step(&mut bus);
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    assert_eq!(t.vector_taken(), Some(0x30));
    assert_eq!(t.r(EBX), 0);
    assert_eq!(t.stack32(0) as u64, first_inc);
}

#[test]
fn sti_blocks_interrupt_for_next_instruction() {
    let (mut t, first_inc) = shadow_case(|a| a.sti());
    let mut bus = irq(0x30);
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    check_taken_after(&t, first_inc, 1);
}

/// `first; nop; cli; inc ebx; hlt`: the window between the shadowed NOP
/// and CLI is the only place the pending interrupt can be taken.
fn window_case(first: impl Fn(&mut Asm) -> AsmResult, if_on: bool) {
    let at = CODE
        + len32(|a| {
            first(a)?;
            a.nop()
        });
    let mut t = T::pm32(|a| {
        first(a)?;
        a.nop()?;
        a.cli()?;
        a.inc(ebx)?;
        a.hlt()
    });
    t.set(EAX, SEL_DATA as u32);
    if if_on {
        t.set_flags(FLAG_IF);
    }
    let mut bus = irq(0x30);
    if if_on {
        t.cpu.step(&mut bus);
    }
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    assert_eq!(
        t.vector_taken(),
        Some(0x30),
        "pending interrupt never taken in the one-instruction window"
    );
    assert_eq!(t.stack32(0) as u64, at, "taken right before CLI");
    assert_eq!(t.r(EBX), 0);
}

#[test]
fn mov_ss_shadow_ends_after_one_instruction() {
    window_case(|a| a.mov(ss, ax), true);
}

#[test]
fn sti_shadow_ends_after_one_instruction() {
    window_case(|a| a.sti(), false);
}

#[test]
fn page_fault_mid_rep_movs_is_restartable() {
    // Two dwords land before the absent page; the third faults with ECX,
    // ESI and EDI describing the remaining work and EIP at the REP MOVSD.
    let pre_at = |a: &mut Asm| {
        a.mov(esi, DATA as u32)?;
        a.mov(edi, NP_PAGE as u32 - 8)?;
        a.mov(ecx, 4)
    };
    let rel = len32(pre_at);
    let (mut t, at) = paged(|a| {
        pre_at(a)?;
        a.rep().movsd()
    });
    for k in 0..4 {
        t.wr32(DATA + 4 * k, 0x100 + k as u32);
    }
    t.expect_fault(PF, Some(2), at + rel);
    assert_eq!(t.cpu.s.cr2, NP_PAGE);
    assert_eq!(t.r(ECX), 2);
    assert_eq!(t.r(ESI), DATA as u32 + 8);
    assert_eq!(t.r(EDI), NP_PAGE as u32);
    assert_eq!(t.rd32(NP_PAGE - 8), 0x100);
    assert_eq!(t.rd32(NP_PAGE - 4), 0x101);
}

/// A chipset stand-in: port 0x92 bit 1 drives A20; the clock runs 10 ns per
/// instruction plus a skip; MSR 0x6e0 belongs to the board.
struct ChipsetBus {
    a20: bool,
    synced: Vec<u64>,
    msr_6e0: u64,
}

impl Bus for ChipsetBus {
    fn io_write(&mut self, port: u16, _size: u8, value: u32) {
        if port == 0x92 {
            self.a20 = value & 2 != 0;
        }
    }
    fn sync_time(&mut self, icount: u64) {
        self.synced.push(icount);
    }
    fn clock_ns(&mut self, icount: u64) -> u64 {
        icount * 10 + 1000
    }
    fn a20_enabled(&self) -> bool {
        self.a20
    }
    fn rdmsr(&mut self, msr: u32) -> Option<u64> {
        (msr == 0x6e0).then_some(self.msr_6e0)
    }
    fn wrmsr(&mut self, msr: u32, value: u64) -> bool {
        if msr == 0x6e0 {
            self.msr_6e0 = value;
        }
        msr == 0x6e0
    }
}

#[test]
fn a20_gate_wraps_bit_20_and_devices_see_instruction_time() {
    let mut t = T::pm32(|a| {
        a.mov(dword_ptr(0x1000f0), 0x1111_1111u32)?; // A20 on: real 1 MiB + 0xf0
        a.mov(al, 0)?;
        a.out(0x92, al)?; // A20 off
        a.mov(eax, dword_ptr(0x1000f0))?; // wraps to 0xf0
        a.mov(esi, eax)?;
        a.mov(al, 2)?;
        a.out(0x92, al)?; // A20 on again
        a.mov(edi, dword_ptr(0x1000f0))?;
        a.rdtsc()?;
        a.mov(ebx, eax)?;
        a.mov(ecx, 0x6e0)?;
        a.mov(eax, 0x1234)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.xor(eax, eax)?;
        a.rdmsr()?;
        a.hlt()
    });
    t.cpu = {
        let mut c = std::mem::replace(&mut t.cpu, Cpu::new(1 << 20));
        c.mem = {
            let mut m = crate::phys::PhysMem::new(2 << 20);
            for a in (0..1 << 20).step_by(4) {
                m.write_ram(a, 4, c.mem.read_ram(a, 4));
            }
            m
        };
        c
    };
    t.wr32(0xf0, 0x2222_2222);
    let mut bus = ChipsetBus {
        a20: true,
        synced: vec![],
        msr_6e0: 0,
    };
    assert_eq!(t.cpu.run(&mut bus, 1000), Exit::Halted);
    assert_eq!(t.r(ESI), 0x2222_2222, "A20 off: 0x1000f0 aliases 0xf0");
    assert_eq!(t.r(EDI), 0x1111_1111, "A20 on: distinct megabyte");
    // Each OUT synced the clock with the instructions retired before it.
    assert_eq!(&bus.synced[..2], &[2, 6]);
    // RDTSC reads the board's clock at its own instruction (index 8).
    assert_eq!(t.r(EBX), 8 * 10 + 1000);
    assert_eq!(bus.msr_6e0, 0x1234);
    assert_eq!(t.r(EAX), 0x1234);
}

/// `Cpu::seg_flat` follows every way a segment's base, limit, type or
/// SS's size changes (the JIT's flat-segment blocks trust it).
#[test]
fn seg_flat_tracks_segment_changes() {
    use crate::cpu::SEG_FLAT_BIG_SS;
    let flat_data = 1 << ES | 1 << SS | 1 << DS | 1 << FS | 1 << GS;
    // A load of a based, 4 KiB data segment into DS.
    let mut t = T::pm32(|a| {
        a.mov(ax, SEL_DATA_20000 as u32)?;
        a.mov(ds, ax)?;
        a.hlt()
    });
    assert_eq!(
        t.cpu.seg_flat,
        flat_data | SEG_FLAT_BIG_SS,
        "flat 32-bit start"
    );
    t.run_any();
    assert_eq!(t.cpu.seg_flat & (1 << DS), 0, "DS with base 0x20000");
    assert_ne!(t.cpu.seg_flat & (1 << ES), 0);
    // WRMSR to FS base (allowed outside long mode too).
    let mut t = T::pm32(|a| {
        a.mov(ecx, 0xc000_0100u32)?;
        a.mov(eax, 0x1000u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.hlt()
    });
    t.run_any();
    assert_eq!(t.cpu.s.seg[FS].base, 0x1000);
    assert_eq!(t.cpu.seg_flat & (1 << FS), 0, "FS base set by WRMSR");
    // A 16-bit SS clears the size bit; real mode has no flat segment.
    let mut t = T::pm32(|a| a.hlt());
    t.cpu.s.seg[SS].attr &= !ATTR_DB;
    t.cpu.update_seg_ok(SS);
    assert_eq!(t.cpu.seg_flat & SEG_FLAT_BIG_SS, 0);
    assert_ne!(t.cpu.seg_flat & (1 << SS), 0);
    let t = T::real(|a| a.hlt());
    assert_eq!(t.cpu.seg_flat & 0x3f, 0, "real mode: 64 KiB limits");
}

/// A real-mode far jump moves CS's base: its flat bit (set while CS had
/// base 0 and a 4 GiB limit, as unreal-mode code can leave it) must drop.
#[test]
fn real_mode_far_jump_updates_cs_flat_bit() {
    let mut t = T::real(|a| {
        a.jmp_far(0x0100, 0x0005)?;
        a.hlt()
    });
    t.cpu.s.seg[CS].limit = 0xffff_ffff;
    t.cpu.s.seg[CS].base = 0;
    t.cpu.update_seg_ok(CS);
    assert_ne!(t.cpu.seg_flat & (1 << CS), 0, "unreal CS starts flat");
    t.cpu.mem.write_ram(0x1005, 1, 0xf4);
    t.run_any();
    assert_eq!(t.cpu.s.seg[CS].base, 0x1000);
    assert_eq!(t.cpu.seg_flat & (1 << CS), 0);
}
