//! Long mode: entering it through CR0, 64-bit interrupt frames and IST
//! stacks, IRETQ, SYSCALL/SYSRET, SWAPGS, canonical checks, CMPXCHG16B.
//! Expected values follow the SDM Vol. 3A chapters 5.8.8, 6.14 and the
//! SYSCALL/SYSRET/IRET pseudocode in Vol. 2.

use super::*;
use crate::exception::{GP, PF, UD};

const PML4: u64 = 0x20000;
const PDPT: u64 = 0x21000;
const PD: u64 = 0x22000;
const IDT64: u64 = 0x4000;
const TSS64: u64 = 0x6000;
const IST1_TOP: u64 = 0x7008;
const RSP0_TOP: u64 = 0x7800;

const SEL_CODE64: u16 = 0x10;
const SEL_DATA64: u16 = 0x18;
const SEL_CODE32: u16 = 0x20;
/// SYSRET's STAR[63:48] base: SS = base + 8, 64-bit CS = base + 16.
const SEL_USER_BASE: u16 = 0x20;
const SEL_USER_DATA: u16 = 0x2b;
const SEL_USER_CODE64: u16 = 0x33;
const SEL_TSS64: u16 = 0x38;

/// Identity-map the first 2 MiB with one large page, writable, user.
fn write_page_tables(cpu: &mut Cpu) {
    cpu.mem.write_ram(PML4, 8, PDPT | 7);
    cpu.mem.write_ram(PDPT, 8, PD | 7);
    cpu.mem.write_ram(PD, 8, 0x87);
}

fn write_gdt(cpu: &mut Cpu) {
    // Flags nibble: G=8, D/B=4, L=2.
    let gdt = [
        0,
        0,
        descriptor(0, 0xfffff, 0x9a, 0xa),
        descriptor(0, 0xfffff, 0x92, 0xc),
        descriptor(0, 0xfffff, 0x9a, 0xc),
        descriptor(0, 0xfffff, 0xf2, 0xc),
        descriptor(0, 0xfffff, 0xfa, 0xa),
        descriptor(TSS64 as u32, 0x67, 0x89, 0),
        0, // upper half of the TSS descriptor: base 63:32 = 0
    ];
    for (k, d) in gdt.iter().enumerate() {
        cpu.mem.write_ram(GDT + 8 * k as u64, 8, *d);
    }
    cpu.s.gdtr = DescTable {
        base: GDT,
        limit: 8 * gdt.len() as u32 - 1,
    };
}

/// 64-bit interrupt gate for `v` to its HLT stub, with `ist` and `dpl`.
fn set_gate(cpu: &mut Cpu, v: u64, ist: u64, dpl: u64) {
    let off = STUBS + 16 * v;
    let lo = (SEL_CODE64 as u64) << 16 | (off & 0xffff) | (0x8e00 | dpl << 13 | ist) << 32;
    cpu.mem
        .write_ram(IDT64 + 16 * v, 8, lo | (off & 0xffff_0000) << 32);
    cpu.mem.write_ram(IDT64 + 16 * v + 8, 8, off >> 32);
}

impl T {
    /// 64-bit mode at CPL 0: 4-level paging identity-maps 2 MiB, EFER has
    /// LME/LMA/SCE/NXE, a 64-bit TSS (RSP0 = 0x7800, IST1 = 0x7008) is
    /// loaded and every vector has a 64-bit interrupt gate to its stub.
    pub fn long64(f: impl FnOnce(&mut Asm) -> AsmResult) -> T {
        let code = assemble(64, CODE, f);
        let mut cpu = Cpu::new(1 << 20);
        write_page_tables(&mut cpu);
        write_gdt(&mut cpu);
        for v in 0..256u64 {
            set_gate(&mut cpu, v, 0, 0);
            cpu.mem.write_ram(STUBS + 16 * v, 1, 0xf4);
        }
        cpu.s.idtr = DescTable {
            base: IDT64,
            limit: 0xfff,
        };
        cpu.mem.write_ram(TSS64 + 4, 8, RSP0_TOP);
        cpu.mem.write_ram(TSS64 + 0x24, 8, IST1_TOP);
        cpu.s.tr = Segment {
            base: TSS64,
            limit: 0x67,
            selector: SEL_TSS64,
            attr: ATTR_P | 0xb,
        };
        cpu.s.cr3 = PML4;
        cpu.s.cr4 = CR4_PAE;
        cpu.s.efer = EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE;
        cpu.s.cr0 = CR0_PE | CR0_PG | CR0_ET;
        let data = Segment::from_descriptor(SEL_DATA64, 0xffff, 0x00cf_9300);
        for i in 0..6 {
            cpu.s.seg[i] = data;
        }
        cpu.s.seg[CS] = Segment::from_descriptor(SEL_CODE64, 0xffff, 0x00af_9b00);
        cpu.s.cpl = 0;
        cpu.update_mode();
        cpu.tlb.flush_all();
        assert!(cpu.mode64);
        assert!(cpu.mem.load(CODE, &code));
        cpu.s.rip = CODE;
        cpu.s.gpr = [0; 16];
        cpu.s.gpr[ESP] = STACK;
        cpu.s.flags.set_raw(2);
        T { cpu }
    }

    fn q(&self, addr: u64) -> u64 {
        self.rd(addr, 8)
    }

    /// Check the five-qword frame (plus error code) of a 64-bit delivery.
    fn expect_frame64(
        &self,
        code: Option<u64>,
        at: u64,
        code_sel: u16,
        old_sp: u64,
        stack_sel: u16,
    ) {
        let top = self.cpu.s.gpr[ESP];
        assert_eq!(top & 0x7, 0, "frame not qword aligned");
        let mut n = 0;
        if let Some(c) = code {
            assert_eq!(self.q(top), c, "error code");
            n = 1;
        }
        assert_eq!(self.q(top + 8 * n), at, "pushed RIP");
        assert_eq!(self.q(top + 8 * (n + 1)), code_sel as u64, "pushed CS");
        assert_eq!(self.q(top + 8 * (n + 3)), old_sp, "pushed RSP");
        assert_eq!(self.q(top + 8 * (n + 4)), stack_sel as u64, "pushed SS");
    }
}

fn len64(f: impl FnOnce(&mut Asm) -> AsmResult) -> u64 {
    assemble(64, CODE, f).len() as u64
}

#[test]
fn cr0_pg_with_lme_activates_long_mode() {
    // 32-bit code enables PAE, EFER.LME and paging, then far-jumps to a
    // 64-bit code segment.
    const CODE64: u64 = 0x2000;
    let mut t = T::pm32(|a| {
        a.mov(eax, CR4_PAE as u32)?;
        a.mov(cr4, eax)?;
        a.mov(eax, PML4 as u32)?;
        a.mov(cr3, eax)?;
        a.mov(ecx, 0xc000_0080u32)?;
        a.mov(eax, EFER_LME as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8000_0000u32 as i32)?;
        a.mov(cr0, eax)?;
        // Still 32-bit (compatibility mode) until CS is reloaded.
        a.mov(ebx, 0x1234)?;
        a.jmp_far(SEL_CODE64, CODE64 as u32)
    });
    let code64 = assemble(64, CODE64, |a| {
        a.mov(rax, 0x1122_3344_5566_7788u64)?;
        a.mov(r9, rax)?;
        a.hlt()
    });
    assert!(t.cpu.mem.load(CODE64, &code64));
    write_page_tables(&mut t.cpu);
    write_gdt(&mut t.cpu);
    t.run();
    assert_ne!(t.cpu.s.efer & EFER_LMA, 0, "EFER.LMA set by CR0.PG");
    assert!(t.cpu.mode64);
    assert_eq!(t.r(EBX), 0x1234);
    assert_eq!(t.cpu.s.gpr[9], 0x1122_3344_5566_7788);
}

#[test]
fn paging_without_pae_in_long_mode_is_gp() {
    let mut t = T::pm32(|a| {
        a.mov(ecx, 0xc000_0080u32)?;
        a.mov(eax, EFER_LME as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8000_0000u32 as i32)?;
        a.mov(cr0, eax)?;
        a.hlt()
    });
    assert_eq!(t.run_fault(), GP);
    assert_eq!(t.cpu.s.efer & EFER_LMA, 0);
}

#[test]
fn leaving_long_mode_the_wrong_ways_is_gp() {
    // Clearing EFER.LME with paging on (SDM Vol. 3A 10.8.5), CR4.PAE in
    // IA-32e mode, or CR0.PG in 64-bit mode (MOV CR, 64-bit mode exceptions).
    let wrmsr_lme = T::long64(|a| {
        a.mov(ecx, 0xc000_0080u32)?;
        a.mov(eax, (EFER_SCE | EFER_NXE) as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.hlt()
    });
    let cr4_pae = T::long64(|a| {
        a.xor(eax, eax)?;
        a.mov(cr4, rax)?;
        a.hlt()
    });
    let cr0_pg = T::long64(|a| {
        a.mov(rax, cr0)?;
        a.btr(rax, 31)?;
        a.mov(cr0, rax)?;
        a.hlt()
    });
    for (what, mut t) in [
        ("EFER.LME", wrmsr_lme),
        ("CR4.PAE", cr4_pae),
        ("CR0.PG", cr0_pg),
    ] {
        assert_eq!(t.run_fault(), GP, "{what}");
        assert_eq!(t.q(t.cpu.s.gpr[ESP]), 0, "{what}: error code");
        assert!(t.cpu.mode64, "{what}: still in 64-bit mode");
        assert_ne!(t.cpu.s.efer & EFER_LME, 0, "{what}: LME");
        assert_ne!(t.cpu.s.cr4 & CR4_PAE, 0, "{what}: PAE");
        assert_ne!(t.cpu.s.cr0 & CR0_PG, 0, "{what}: PG");
    }
}

#[test]
fn ud_in_64bit_mode_pushes_a_five_qword_frame() {
    let mut t = T::long64(|a| {
        a.mov(rsp, 0x8008u64)?; // misaligned: delivery aligns to 16
        a.ud2()?;
        a.hlt()
    });
    let ud_at = CODE + len64(|a| a.mov(rsp, 0x8008u64));
    assert_eq!(t.run_fault(), UD);
    // RSP aligned down to 0x8000, then 5 pushes.
    assert_eq!(t.cpu.s.gpr[ESP], 0x8000 - 40);
    t.expect_frame64(None, ud_at, SEL_CODE64, 0x8008, SEL_DATA64);
    assert!(t.cpu.mode64, "handler runs in 64-bit mode");
}

#[test]
fn ist_stack_is_used_when_the_gate_names_one() {
    let mut t = T::long64(|a| {
        a.ud2()?;
        a.hlt()
    });
    set_gate(&mut t.cpu, UD as u64, 1, 0);
    assert_eq!(t.run_fault(), UD);
    // IST1 = 0x7008 is aligned down to 0x7000 before the frame.
    assert_eq!(t.cpu.s.gpr[ESP], 0x7000 - 40);
    t.expect_frame64(None, CODE, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn page_fault_in_long_mode_has_error_code_and_cr2() {
    // Unmap the 2 MiB page at 1 GiB (PDPT entry 1 absent) and read there.
    let mut t = T::long64(|a| {
        a.mov(rax, 0x4000_0010u64)?;
        a.mov(rbx, qword_ptr(rax))?;
        a.hlt()
    });
    let at = CODE + len64(|a| a.mov(rax, 0x4000_0010u64));
    assert_eq!(t.run_fault(), PF);
    assert_eq!(t.cpu.s.cr2, 0x4000_0010);
    t.expect_frame64(Some(0), at, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn nx_fetch_fault_sets_the_id_bit() {
    // A 4 KiB page at 0x100000 marked NX through its own page table.
    const PT: u64 = 0x23000;
    let mut t = T::long64(|a| {
        a.mov(rax, 0xe_0000u64)?;
        a.call(rax)?;
        a.hlt()
    });
    t.wr(PD, 8, PT | 7);
    for p in 0..512u64 {
        let nx = if p == 0xe0 { 1u64 << 63 } else { 0 };
        t.wr(PT + 8 * p, 8, (p << 12) | 7 | nx);
    }
    t.wr(0xe_0000, 1, 0x90);
    assert_eq!(t.run_fault(), PF);
    assert_eq!(t.cpu.s.cr2, 0xe_0000);
    // P=1 (present), I/D=1 (fetch).
    assert_eq!(t.q(t.cpu.s.gpr[ESP]), 0x11);
}

#[test]
fn noncanonical_data_address_is_gp0() {
    let mut t = T::long64(|a| {
        a.mov(rax, 0x0000_8000_0000_0000u64)?;
        a.mov(rbx, qword_ptr(rax))?;
        a.hlt()
    });
    let at = CODE + len64(|a| a.mov(rax, 0x0000_8000_0000_0000u64));
    assert_eq!(t.run_fault(), GP);
    t.expect_frame64(Some(0), at, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn access_whose_last_byte_is_noncanonical_is_gp0() {
    // The first byte is canonical and unmapped, the last is not
    // canonical: #GP(0) before any page walk (no #PF), as every byte of
    // an access must be canonical.
    let mut t = T::long64(|a| {
        a.mov(rax, 0x0000_7fff_ffff_fffcu64)?;
        a.mov(rbx, qword_ptr(rax))?;
        a.hlt()
    });
    let at = CODE + len64(|a| a.mov(rax, 0x0000_7fff_ffff_fffcu64));
    assert_eq!(t.run_fault(), GP);
    t.expect_frame64(Some(0), at, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn noncanonical_address_through_ss_is_ss0() {
    // RBP as the base implies SS: #SS(0), not #GP(0) (SDM Vol. 3A 6.15).
    let mut t = T::long64(|a| {
        a.mov(rbp, 0x1234_5678_0000_0000u64)?;
        a.mov(rbx, qword_ptr(rbp))?;
        a.hlt()
    });
    let at = CODE + len64(|a| a.mov(rbp, 0x1234_5678_0000_0000u64));
    assert_eq!(t.run_fault(), crate::exception::SS);
    t.expect_frame64(Some(0), at, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn jmp_to_noncanonical_address_faults_on_the_jmp() {
    // The #GP(0) is raised by the JMP itself: the frame has its RIP.
    let mut t = T::long64(|a| {
        a.mov(rax, 0x0000_8000_0000_0000u64)?;
        a.jmp(rax)?;
        a.hlt()
    });
    let at = CODE + len64(|a| a.mov(rax, 0x0000_8000_0000_0000u64));
    assert_eq!(t.run_fault(), GP);
    t.expect_frame64(Some(0), at, SEL_CODE64, STACK, SEL_DATA64);
}

#[test]
fn es_base_is_ignored_in_64bit_mode_and_gs_beats_a_later_es_prefix() {
    // SDM Vol. 3A 3.4.4: CS/DS/ES/SS bases count as 0 in 64-bit mode, and
    // their override prefixes do not displace an FS/GS one.
    let mut t = T::long64(|a| {
        a.mov(rbx, 0x9000u64)?;
        a.mov(rax, qword_ptr(rbx).es())?;
        a.db(&[0x65, 0x26, 0x48, 0x8b, 0x0b])?; // gs es mov rcx, [rbx]
        a.hlt()
    });
    t.cpu.s.seg[ES].base = 0x1000;
    t.cpu.s.seg[GS].base = 0x100;
    t.wr(0x9000, 8, 0x1111)
        .wr(0xa000, 8, 0x2222)
        .wr(0x9100, 8, 0x3333);
    t.run();
    assert_eq!(t.cpu.s.gpr[EAX], 0x1111, "ES base ignored");
    assert_eq!(t.cpu.s.gpr[ECX], 0x3333, "GS override kept");
}

#[test]
fn iretq_to_ring3_and_int_back_through_rsp0() {
    const USER: u64 = 0x2000;
    let mut t = T::long64(|a| {
        // Frame for IRETQ: SS, RSP, RFLAGS, CS, RIP.
        a.push(SEL_USER_DATA as i32)?;
        a.push(0x5000)?;
        a.push(0x202)?;
        a.push(SEL_USER_CODE64 as i32)?;
        a.push(USER as i32)?;
        a.iretq()
    });
    let user = assemble(64, USER, |a| {
        a.mov(r12, 0x77u64)?;
        a.int(0x80)
    });
    assert!(t.cpu.mem.load(USER, &user));
    set_gate(&mut t.cpu, 0x80, 0, 3);
    assert_eq!(t.run_fault(), 0x80);
    assert_eq!(t.cpu.s.gpr[12], 0x77, "user code ran");
    assert_eq!(t.cpu.s.cpl, 0);
    // Ring change: stack from TSS.RSP0, SS becomes the null selector.
    assert_eq!(t.cpu.s.gpr[ESP], RSP0_TOP - 40);
    assert_eq!(t.cpu.s.seg[SS].selector, 0);
    let int_end = USER + user.len() as u64;
    t.expect_frame64(None, int_end, SEL_USER_CODE64, 0x5000, SEL_USER_DATA);
    assert_eq!(
        t.q(t.cpu.s.gpr[ESP] + 16) & 0x200,
        0x200,
        "pushed RFLAGS.IF"
    );
    assert_eq!(t.cpu.s.flags.get() & FLAG_IF, 0, "interrupt gate clears IF");
}

#[test]
fn int_gate_dpl0_from_ring3_is_gp_with_idt_error_code() {
    const USER: u64 = 0x2000;
    let mut t = T::long64(|a| {
        a.push(SEL_USER_DATA as i32)?;
        a.push(0x5000)?;
        a.push(0x2)?;
        a.push(SEL_USER_CODE64 as i32)?;
        a.push(USER as i32)?;
        a.iretq()
    });
    let user = assemble(64, USER, |a| a.int(0x81));
    assert!(t.cpu.mem.load(USER, &user));
    assert_eq!(t.run_fault(), GP);
    // IDT selector error code: vector * 8 + 2 (IDT bit).
    t.expect_frame64(
        Some(0x81 * 8 + 2),
        USER,
        SEL_USER_CODE64,
        0x5000,
        SEL_USER_DATA,
    );
}

#[test]
fn syscall_and_sysret_round_trip() {
    const USER: u64 = 0x2000;
    const ENTRY: u64 = 0x2800;
    let star = (SEL_USER_BASE as u64) << 48 | (SEL_CODE64 as u64) << 32;
    let mut t = T::long64(|a| {
        a.mov(ecx, 0xc000_0081u32)?;
        a.mov(eax, star as u32)?;
        a.mov(edx, (star >> 32) as u32)?;
        a.wrmsr()?;
        a.mov(ecx, 0xc000_0082u32)?;
        a.mov(eax, ENTRY as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(ecx, 0xc000_0084u32)?;
        a.mov(eax, (FLAG_IF | FLAG_DF) as u32)?;
        a.wrmsr()?;
        // To ring 3 with SYSRET: RCX = RIP, R11 = RFLAGS.
        a.mov(rcx, USER)?;
        a.mov(r11, 0x602u64)?; // IF | DF
        a.sysretq()
    });
    let user = assemble(64, USER, |a| {
        a.mov(rbx, 0x55u64)?;
        a.syscall()?;
        a.hlt()
    });
    let entry = assemble(64, ENTRY, |a| a.hlt());
    assert!(t.cpu.mem.load(USER, &user));
    assert!(t.cpu.mem.load(ENTRY, &entry));
    t.run();
    let after_syscall = USER + user.len() as u64 - 1;
    assert_eq!(t.cpu.s.rip, ENTRY + 1, "stopped at the SYSCALL entry's HLT");
    assert_eq!(t.cpu.s.gpr[EBX], 0x55, "user code ran");
    assert_eq!(t.cpu.s.cpl, 0);
    assert_eq!(t.cpu.s.seg[CS].selector, SEL_CODE64);
    assert_eq!(t.cpu.s.seg[SS].selector, SEL_CODE64 + 8);
    assert_eq!(t.cpu.s.gpr[ECX], after_syscall, "RCX = return RIP");
    assert_eq!(t.cpu.s.gpr[11] & 0x600, 0x600, "R11 = user RFLAGS");
    assert_eq!(
        t.cpu.s.flags.get() & (FLAG_IF | FLAG_DF),
        0,
        "SFMASK applied"
    );
}

#[test]
fn sysret_stamps_ring3_selectors() {
    const USER: u64 = 0x2000;
    let star = (SEL_USER_BASE as u64) << 48 | (SEL_CODE64 as u64) << 32;
    let mut t = T::long64(|a| {
        a.mov(ecx, 0xc000_0081u32)?;
        a.mov(eax, star as u32)?;
        a.mov(edx, (star >> 32) as u32)?;
        a.wrmsr()?;
        a.mov(rcx, USER)?;
        a.mov(r11, 0x2u64)?;
        a.sysretq()
    });
    // Ring 3 HLT is a #GP: proves CPL 3.
    assert!(t.cpu.mem.load(USER, &[0xf4]));
    assert_eq!(t.run_fault(), GP);
    t.expect_frame64(Some(0), USER, SEL_USER_CODE64, STACK, SEL_USER_DATA);
}

#[test]
fn syscall_without_efer_sce_is_ud() {
    let mut t = T::long64(|a| {
        a.syscall()?;
        a.hlt()
    });
    t.cpu.s.efer &= !EFER_SCE;
    assert_eq!(t.run_fault(), UD);
}

#[test]
fn swapgs_exchanges_gs_base_with_kernel_gs_base() {
    let mut t = T::long64(|a| {
        // GS.base = 0x9000 (MSR C0000101), KERNEL_GS_BASE = 0x9100.
        a.mov(ecx, 0xc000_0101u32)?;
        a.mov(eax, 0x9000)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(ecx, 0xc000_0102u32)?;
        a.mov(eax, 0x9100)?;
        a.wrmsr()?;
        a.swapgs()?;
        a.mov(rax, qword_ptr(0x8).gs())?;
        a.swapgs()?;
        a.mov(rbx, qword_ptr(0x8).gs())?;
        a.hlt()
    });
    t.wr(0x9008, 8, 0xaaaa);
    t.wr(0x9108, 8, 0xbbbb);
    t.run();
    assert_eq!(t.cpu.s.gpr[EAX], 0xbbbb);
    assert_eq!(t.cpu.s.gpr[EBX], 0xaaaa);
}

#[test]
fn fs_base_msr_must_be_canonical() {
    let mut t = T::long64(|a| {
        a.mov(ecx, 0xc000_0100u32)?;
        a.xor(eax, eax)?;
        a.mov(edx, 0x8000)?; // base 0x0000_8000_0000_0000
        a.wrmsr()?;
        a.hlt()
    });
    assert_eq!(t.run_fault(), GP);
}

#[test]
fn iretq_same_ring_restores_rsp_and_ss() {
    const BACK: u64 = 0x2000;
    let mut t = T::long64(|a| {
        a.mov(rax, rsp)?;
        a.push(SEL_DATA64 as i32)?;
        a.push(0x6800)?;
        a.push(0x2 | FLAG_CF as i32)?;
        a.push(SEL_CODE64 as i32)?;
        a.push(BACK as i32)?;
        a.iretq()
    });
    assert!(t.cpu.mem.load(BACK, &[0xf4]));
    t.run();
    assert_eq!(t.cpu.s.gpr[ESP], 0x6800);
    assert_eq!(t.cpu.s.rip, BACK + 1);
    assert!(t.cpu.s.flags.cf());
}

#[test]
fn far_return_to_compatibility_mode_and_back() {
    // RETFQ to a 32-bit code segment, run 32-bit code (EAX wraps at 32
    // bits there), then JMP FAR back to 64-bit code.
    const COMPAT: u64 = 0x2000;
    const BACK: u64 = 0x2800;
    let mut t = T::long64(|a| {
        a.push(SEL_CODE32 as i32)?;
        a.push(COMPAT as i32)?;
        a.db(&[0x48, 0xcb]) // RETFQ
    });
    let compat = assemble(32, COMPAT, |a| {
        a.mov(eax, 0xffff_ffffu32)?;
        a.add(eax, 2)?;
        a.jmp_far(SEL_CODE64, BACK as u32)
    });
    let back = assemble(64, BACK, |a| {
        a.mov(rbx, 0x1_0000_0000u64)?;
        a.hlt()
    });
    assert!(t.cpu.mem.load(COMPAT, &compat));
    assert!(t.cpu.mem.load(BACK, &back));
    t.run();
    assert_eq!(t.cpu.s.gpr[EAX], 1);
    assert!(t.cpu.s.flags.cf());
    assert_eq!(t.cpu.s.gpr[EBX], 0x1_0000_0000);
    assert!(t.cpu.mode64);
}

#[test]
fn cmpxchg16b_swaps_on_match_and_loads_on_mismatch() {
    let mut t = T::long64(|a| {
        a.mov(rsi, DATA)?;
        a.mov(rax, 1u64)?;
        a.mov(rdx, 2u64)?;
        a.mov(rbx, 0x1111_2222_3333_4444u64)?;
        a.mov(rcx, 0x5555_6666_7777_8888u64)?;
        a.cmpxchg16b(xmmword_ptr(rsi))?;
        a.setz(r8b)?;
        // Second try: memory no longer matches RDX:RAX = 2:1.
        a.mov(rax, 1u64)?;
        a.mov(rdx, 2u64)?;
        a.cmpxchg16b(xmmword_ptr(rsi))?;
        a.setz(r9b)?;
        a.hlt()
    });
    t.wr(DATA, 8, 1).wr(DATA + 8, 8, 2);
    t.run();
    assert_eq!(t.cpu.s.gpr[8] & 0xff, 1);
    assert_eq!(t.cpu.s.gpr[9] & 0xff, 0);
    assert_eq!(t.q(DATA), 0x1111_2222_3333_4444);
    assert_eq!(t.q(DATA + 8), 0x5555_6666_7777_8888);
    assert_eq!(t.cpu.s.gpr[EAX], 0x1111_2222_3333_4444);
    assert_eq!(t.cpu.s.gpr[EDX], 0x5555_6666_7777_8888);
}

#[test]
fn rex_byte_registers_are_the_low_bytes() {
    let mut t = T::long64(|a| {
        a.mov(rsi, 0x1111u64)?;
        a.mov(r8, 0x2222u64)?;
        a.mov(sil, 0x33u32)?;
        a.mov(r8b, 0x44u32)?;
        a.mov(spl, bpl)?;
        a.hlt()
    });
    t.cpu.s.gpr[EBP] = 0x55;
    t.run();
    assert_eq!(t.cpu.s.gpr[ESI], 0x1133);
    assert_eq!(t.cpu.s.gpr[8], 0x2244);
    assert_eq!(t.cpu.s.gpr[ESP] & 0xff, 0x55);
}

#[test]
fn rip_relative_load() {
    let mut t = T::long64(|a| {
        let mut l = a.create_label();
        a.mov(rax, qword_ptr(l))?;
        a.hlt()?;
        a.set_label(&mut l)?;
        a.dq(&[0x0123_4567_89ab_cdef])
    });
    t.run();
    assert_eq!(t.cpu.s.gpr[EAX], 0x0123_4567_89ab_cdef);
}

#[test]
fn ltr_loads_a_16_byte_tss_descriptor() {
    let mut t = T::long64(|a| {
        a.mov(ax, SEL_TSS64 as u32)?;
        a.ltr(ax)?;
        a.hlt()
    });
    // Upper half: base bits 63:32 = 0x1.
    t.wr(GDT + SEL_TSS64 as u64 + 8, 8, 1);
    t.run();
    assert_eq!(t.cpu.s.tr.base, 0x1_0000_0000 | TSS64);
    // The descriptor is marked busy.
    assert_eq!(t.rd(GDT + SEL_TSS64 as u64 + 5, 1), 0x8b);
}

#[test]
fn cpuid_reports_long_mode_and_syscall() {
    let ext = crate::cpuid::cpuid(0x8000_0001, 0);
    assert_ne!(ext[3] & (1 << 29), 0, "LM");
    assert_ne!(ext[3] & (1 << 11), 0, "SYSCALL");
    assert_ne!(ext[2] & 1, 0, "LAHF/SAHF in 64-bit mode");
    // CMPXCHG16B is implemented, so leaf 1 must say so (ECX bit 13): 64-bit
    // guests test the bit, not the instruction.
    assert_ne!(crate::cpuid::cpuid(1, 0)[2] & (1 << 13), 0, "CX16");
    let widths = crate::cpuid::cpuid(0x8000_0008, 0)[0];
    assert_eq!(widths & 0xff, 40);
    assert_eq!((widths >> 8) & 0xff, 48);
}

/// Write MSR `msr` from guest code (ECX, EDX:EAX).
fn wrmsr(a: &mut Asm, msr: u32, v: u64) -> AsmResult {
    a.mov(ecx, msr)?;
    a.mov(eax, v as u32)?;
    a.mov(edx, (v >> 32) as u32)?;
    a.wrmsr()
}

#[test]
fn sysenter_and_sysexit_in_protected_mode() {
    const KERNEL: u64 = 0x2000;
    const USER: u64 = 0x2800;
    let mut t = T::pm32(|a| {
        wrmsr(a, 0x174, SEL_CODE as u64)?;
        wrmsr(a, 0x175, 0x7000)?;
        wrmsr(a, 0x176, KERNEL)?;
        a.sysenter()
    });
    let kernel = assemble(32, KERNEL, |a| {
        a.mov(ebx, esp)?;
        a.mov(edx, USER as u32)?;
        a.mov(ecx, 0x5000)?;
        a.sysexit()
    });
    // Ring 3: spin (HLT would fault) so the test can stop on a budget.
    let user = assemble(32, USER, |a| {
        a.mov(esi, 0x99)?;
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.jmp(l)
    });
    assert!(t.cpu.mem.load(KERNEL, &kernel));
    assert!(t.cpu.mem.load(USER, &user));
    t.cpu.s.flags.set_raw(0x202);
    t.cpu.run(&mut crate::NullBus, 200);
    assert_eq!(t.r(EBX), 0x7000, "SYSENTER loads ESP from the MSR");
    assert_eq!(t.r(ESI), 0x99, "SYSEXIT reached the user code");
    assert_eq!(t.cpu.s.cpl, 3);
    // CS = SYSENTER_CS + 16 | 3, SS = SYSENTER_CS + 24 | 3.
    assert_eq!(t.cpu.s.seg[CS].selector, SEL_CODE + 16 + 3);
    assert_eq!(t.cpu.s.seg[SS].selector, SEL_CODE + 24 + 3);
    assert_eq!(t.r(ESP), 0x5000);
    assert!(t.cpu.s.seg[CS].big(), "32-bit code");
}

#[test]
fn sysenter_clears_if_and_needs_a_selector() {
    let mut t = T::pm32(|a| a.sysenter());
    assert_eq!(t.run_fault(), GP, "SYSENTER_CS = 0 is #GP(0)");
    let mut t = T::pm32(|a| {
        wrmsr(a, 0x174, SEL_CODE as u64)?;
        wrmsr(a, 0x176, CODE + 0x100)?;
        wrmsr(a, 0x175, 0x7000)?;
        a.sysenter()
    });
    t.wr(CODE + 0x100, 1, 0xf4);
    t.cpu.s.flags.set_raw(0x202);
    t.run();
    assert_eq!(t.cpu.s.flags.get() & FLAG_IF, 0);
    assert_eq!(t.cpu.s.seg[SS].selector, SEL_CODE + 8);
}

#[test]
fn sysexitq_returns_to_64bit_ring3() {
    const USER: u64 = 0x2800;
    let mut t = T::long64(|a| {
        wrmsr(a, 0x174, 0x10)?;
        a.mov(rdx, USER)?;
        a.mov(rcx, 0x5000u64)?;
        a.sysexitq()
    });
    assert!(t.cpu.mem.load(USER, &[0xf4]));
    assert_eq!(t.run_fault(), GP, "HLT at CPL 3");
    // CS = SYSENTER_CS + 32 | 3 = 0x33, SS = + 40 | 3 = 0x3b.
    t.expect_frame64(Some(0), USER, 0x33, 0x5000, 0x3b);
}

#[test]
fn endbr64_and_endbr32_are_nops() {
    let mut t = T::long64(|a| {
        a.db(&[0xf3, 0x0f, 0x1e, 0xfa])?; // ENDBR64
        a.db(&[0xf3, 0x0f, 0x1e, 0xfb])?; // ENDBR32
        a.mov(rax, 7u64)?;
        a.hlt()
    });
    t.run();
    assert_eq!(t.cpu.s.gpr[EAX], 7);
}
