//! Differential test of 64-bit mode against Unicorn: random 64-bit integer
//! instruction streams (tools/difftest/gen_cases64.py) are replayed on Leap
//! one instruction at a time; the sixteen GPRs, RIP, the arithmetic flags
//! (less those the SDM leaves undefined for the instruction) and the data
//! and stack memory must match Unicorn's.
//!
//! LEAP_DIFF64_STEPS (default 20000) and LEAP_DIFF_SEED (default 1) scale it.

mod unicorn_cases;

use leap_cpu::{Cpu, NullBus};
use serde_json::Value;
use unicorn_cases::{check_final_mem, hex, num, run_diff_stream};

const PML4: u64 = 0x2_0000;
/// Arithmetic flags, DF and bit 1.
const REPORT: u64 = 0xcd5 | 0x400 | 0x2;
const NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// A CPU in 64-bit mode at CPL 0 with the low 2 MiB identity-mapped.
fn setup(case: &Value) -> Cpu {
    let mut cpu = Cpu::new(1 << 20);
    cpu.mem.write_ram(PML4, 8, (PML4 + 0x1000) | 3);
    cpu.mem.write_ram(PML4 + 0x1000, 8, (PML4 + 0x2000) | 3);
    cpu.mem.write_ram(PML4 + 0x2000, 8, 0x83);
    cpu.enter_long_mode_flat(PML4, 0x10, 0x18);
    assert!(cpu.mode64);
    let regs = case["regs"].as_array().unwrap();
    for (i, v) in regs.iter().enumerate() {
        cpu.s.gpr[i] = num(v);
    }
    cpu.s.rip = 0x1000;
    cpu.s.flags.set_raw(num(&case["rflags"]));
    cpu.mem.load(0x1000, &hex(case["code"].as_str().unwrap()));
    for m in case["mem"].as_array().unwrap() {
        cpu.mem
            .load(num(&m["addr"]), &hex(m["data"].as_str().unwrap()));
    }
    cpu
}

fn replay(case: &Value) -> Result<usize, String> {
    let mut cpu = setup(case);
    let mut bus = NullBus;
    let steps = case["steps"].as_array().unwrap();
    for (k, st) in steps.iter().enumerate() {
        let asm = st["asm"].as_str().unwrap_or("?");
        if let Some(exit) = cpu.step(&mut bus) {
            return Err(format!("step {k} `{asm}`: CPU stopped: {exit:?}"));
        }
        let mut diffs = Vec::new();
        for (i, v) in st["regs"].as_array().unwrap().iter().enumerate() {
            let want = num(v);
            if cpu.s.gpr[i] != want {
                diffs.push(format!("{}={:#x} want {want:#x}", NAMES[i], cpu.s.gpr[i]));
            }
        }
        let want_rip = num(&st["rip"]);
        if cpu.s.rip != want_rip {
            diffs.push(format!("rip={:#x} want {want_rip:#x}", cpu.s.rip));
        }
        let undef = num(&st["undef"]);
        let want_fl = num(&st["rflags"]);
        let got_fl = cpu.s.flags.get();
        let cmp = REPORT & !undef;
        if (got_fl ^ want_fl) & cmp != 0 {
            diffs.push(format!(
                "rflags={got_fl:#x} want {want_fl:#x} (differing bits {:#x})",
                (got_fl ^ want_fl) & cmp
            ));
        }
        if !diffs.is_empty() {
            return Err(format!("step {k} `{asm}`: {}", diffs.join(", ")));
        }
        // Unicorn's values for the undefined flags, so later steps agree.
        cpu.s
            .flags
            .set_raw((got_fl & !(undef & REPORT)) | (want_fl & undef & REPORT));
    }
    check_final_mem(&cpu, case)?;
    Ok(steps.len())
}

#[test]
fn unicorn_differential_64bit() {
    run_diff_stream("LEAP_DIFF64_STEPS", 20_000, "64", replay, "64-bit", None);
}
