//! Differential test of 64-bit mode against Unicorn: random 64-bit integer
//! instruction streams (tools/difftest/gen_cases64.py) are replayed on Leap
//! one instruction at a time; the sixteen GPRs, RIP, the arithmetic flags
//! (less those the SDM leaves undefined for the instruction) and the data
//! and stack memory must match Unicorn's.
//!
//! LEAP_DIFF64_STEPS (default 20000) and LEAP_DIFF_SEED (default 1) scale it.
//!
//! `unicorn_sse_differential_64bit` replays 64-bit SSE..SSE4.2 streams
//! (`gen_cases64.py --sse`, LEAP_DIFF64_SSE_STEPS, default 30000: XMM8-15,
//! REX.W forms, RIP-relative and REX-extended addressing, some MMX forms)
//! and also compares XMM0-15, MXCSR without the exception flags and, in
//! the cases with MMX forms, the x87 state as unicorn_diff.rs does.

mod unicorn_cases;

use leap_cpu::NullBus;
use serde_json::Value;
use unicorn_cases::{check_final_mem, compare_fpu, compare_sse, num, run_diff_stream, setup64};

/// Arithmetic flags, DF and bit 1.
const REPORT: u64 = 0xcd5 | 0x400 | 0x2;
const NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

fn replay(case: &Value) -> Result<usize, String> {
    let mut cpu = setup64(case);
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
        if let Some(fw) = st.get("fpu") {
            compare_fpu(&mut cpu, fw, &mut diffs);
        }
        if let Some(sw) = st.get("sse") {
            compare_sse(&cpu, sw, &mut diffs);
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

#[test]
fn unicorn_sse_differential_64bit() {
    run_diff_stream(
        "LEAP_DIFF64_SSE_STEPS",
        30_000,
        "sse64",
        replay,
        "sse, 64-bit",
        None,
    );
}
