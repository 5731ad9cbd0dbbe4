//! CPUID: reports only what this CPU implements.

/// Leaf 1 EDX feature bits.
pub const FEAT_FPU: u32 = 1 << 0;
pub const FEAT_DE: u32 = 1 << 2;
pub const FEAT_PSE: u32 = 1 << 3;
pub const FEAT_TSC: u32 = 1 << 4;
pub const FEAT_MSR: u32 = 1 << 5;
pub const FEAT_PAE: u32 = 1 << 6;
pub const FEAT_CX8: u32 = 1 << 8;
/// Reported only when the board has a local APIC and it is enabled.
pub const FEAT_APIC: u32 = 1 << 9;
/// SYSENTER/SYSEXIT.
pub const FEAT_SEP: u32 = 1 << 11;
pub const FEAT_PGE: u32 = 1 << 13;
pub const FEAT_CMOV: u32 = 1 << 15;
pub const FEAT_PAT: u32 = 1 << 16;
pub const FEAT_PSE36: u32 = 1 << 17;
pub const FEAT_CLFSH: u32 = 1 << 19;
pub const FEAT_MMX: u32 = 1 << 23;
pub const FEAT_FXSR: u32 = 1 << 24;
pub const FEAT_SSE: u32 = 1 << 25;
pub const FEAT_SSE2: u32 = 1 << 26;
/// Leaf 1 ECX feature bits.
pub const FEAT_SSE3: u32 = 1 << 0;
pub const FEAT_SSSE3: u32 = 1 << 9;
/// CMPXCHG16B (implemented with long mode; software such as 64-bit Linux
/// checks this bit rather than trying the instruction).
pub const FEAT2_CX16: u32 = 1 << 13;
pub const FEAT_SSE41: u32 = 1 << 19;
pub const FEAT_SSE42: u32 = 1 << 20;
pub const FEAT_POPCNT: u32 = 1 << 23;
/// Extended leaf 0x80000001 EDX.
pub const EXT_SYSCALL: u32 = 1 << 11;
pub const EXT_NX: u32 = 1 << 20;
/// 1 GiB pages in 4-level paging.
pub const EXT_PDPE1GB: u32 = 1 << 26;
pub const EXT_RDTSCP: u32 = 1 << 27;
pub const EXT_LM: u32 = 1 << 29;
/// Extended leaf 0x80000001 ECX: LAHF/SAHF in 64-bit mode.
pub const EXT_LAHF_LM: u32 = 1 << 0;

/// Physical-address width reported in leaf 0x80000008 and enforced on
/// CR3 and page-table entries.
pub const PHYS_ADDR_BITS: u32 = 40;
/// Linear-address width (4-level paging).
pub const LIN_ADDR_BITS: u32 = 48;

const VENDOR: &[u8; 12] = b"GenuineIntel";
const BRAND: &[u8; 48] =
    b"Leap x86 emulated CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn dword(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// (EAX, EBX, ECX, EDX) for a leaf.
pub fn cpuid(leaf: u32, _sub: u32) -> [u32; 4] {
    match leaf {
        0 => [
            1,
            dword(&VENDOR[0..4]),
            dword(&VENDOR[8..12]),
            dword(&VENDOR[4..8]),
        ],
        1 => {
            // Family 6, model 3, stepping 3: a P6-class core with x87, MMX,
            // FXSR and SSE through SSE4.2 (cpu/src/ops/sse.rs, ssefp.rs).
            let edx = FEAT_FPU
                | FEAT_DE
                | FEAT_PSE
                | FEAT_TSC
                | FEAT_MSR
                | FEAT_PAE
                | FEAT_CX8
                | FEAT_SEP
                | FEAT_PGE
                | FEAT_CMOV
                | FEAT_PAT
                | FEAT_PSE36
                | FEAT_CLFSH
                | FEAT_MMX
                | FEAT_FXSR
                | FEAT_SSE
                | FEAT_SSE2;
            let ecx = FEAT_SSE3 | FEAT_SSSE3 | FEAT2_CX16 | FEAT_SSE41 | FEAT_SSE42 | FEAT_POPCNT;
            // EBX[15:8]: CLFLUSH line size in quadwords (64 bytes).
            [0x0000_0633, 8 << 8, ecx, edx]
        }
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        0x8000_0001 => [
            0,
            0,
            EXT_LAHF_LM,
            EXT_SYSCALL | EXT_NX | EXT_PDPE1GB | EXT_RDTSCP | EXT_LM,
        ],
        0x8000_0002..=0x8000_0004 => {
            let k = (leaf - 0x8000_0002) as usize * 16;
            [
                dword(&BRAND[k..]),
                dword(&BRAND[k + 4..]),
                dword(&BRAND[k + 8..]),
                dword(&BRAND[k + 12..]),
            ]
        }
        0x8000_0008 => [PHYS_ADDR_BITS | (LIN_ADDR_BITS << 8), 0, 0, 0],
        // Leaves above the maximum return the highest basic leaf's data on
        // Intel parts; zeros are the simpler honest answer.
        _ => [0, 0, 0, 0],
    }
}
