//! Differential test against Unicorn (a QEMU-derived CPU engine): random
//! instruction streams generated and run under Unicorn by
//! tools/difftest/gen_cases.py are replayed on Leap one instruction at a
//! time; registers, EIP, EFLAGS (less the bits the manuals call undefined
//! for that instruction) and memory must match.
//!
//! LEAP_DIFF_STEPS (default 100000) and LEAP_DIFF_SEED (default 1) scale it.
//! `unicorn_fpu_differential` does the same for x87/MMX streams
//! (`gen_cases.py --fpu`, LEAP_DIFF_FPU_STEPS, default 30000) and also
//! compares the FPU registers, control word, tag word (empty or not) and
//! the status-word bits Unicorn models (TOP, C0, C2, C3); see
//! tools/difftest/unicorn_deviations.md.
//!
//! `unicorn_sse_differential` replays SSE..SSE4.2 streams (`gen_cases.py
//! --sse`, LEAP_DIFF_SSE_STEPS, default 30000) and also compares XMM0-7 and
//! MXCSR without the exception flags, which Unicorn does not raise.
//!
//! jit/tests/unicorn_streams.rs runs the int and fpu streams under the JIT.

mod unicorn_cases;

use leap_cpu::NullBus;
use serde_json::Value;
use unicorn_cases::*;

/// Replay one case; returns a description of the first mismatch.
fn replay(case: &Value) -> Result<usize, String> {
    let mut cpu = setup(case);
    cpu.trace = std::env::var("LEAP_DIFF_TRACE").is_ok();
    let mut bus = NullBus;
    let steps = case["steps"].as_array().unwrap();
    for (k, st) in steps.iter().enumerate() {
        let asm = st["asm"].as_str().unwrap_or("?");
        if let Some(exit) = cpu.step(&mut bus) {
            return Err(format!("step {k} `{asm}`: CPU stopped: {exit:?}"));
        }
        let undef = num(&st["undef"]);
        let undef_regs: Vec<&str> = st["undef_regs"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let regs = &st["regs"];
        let mut diffs = Vec::new();
        for (i, r) in REGS.iter().enumerate() {
            let want = num(&regs[*r]);
            if undef_regs.contains(r) {
                cpu.s.gpr[i] = want;
                continue;
            }
            if cpu.s.gpr[i] & 0xffff_ffff != want {
                diffs.push(format!("{r}={:#x} want {want:#x}", cpu.s.gpr[i]));
            }
        }
        let want_eip = num(&regs["eip"]);
        if cpu.s.rip != want_eip {
            diffs.push(format!("eip={:#x} want {want_eip:#x}", cpu.s.rip));
        }
        let want_fl = num(&st["eflags"]);
        let got_fl = cpu.s.flags.get();
        let cmp = FLAG_MASK & !undef;
        if (got_fl ^ want_fl) & cmp != 0 {
            diffs.push(format!(
                "eflags={got_fl:#x} want {want_fl:#x} (differing bits {:#x})",
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
        // Take Unicorn's value for the undefined flags so later steps agree.
        let synced = (got_fl & !(undef & FLAG_MASK)) | (want_fl & undef & FLAG_MASK);
        cpu.s.flags.set_raw(synced);
    }
    check_final_mem(&cpu, case)?;
    Ok(steps.len())
}

#[test]
fn unicorn_differential() {
    run_diff("LEAP_DIFF_STEPS", 100_000, false);
}

#[test]
fn unicorn_fpu_differential() {
    run_diff("LEAP_DIFF_FPU_STEPS", 30_000, true);
}

#[test]
fn unicorn_sse_differential() {
    run_diff_stream("LEAP_DIFF_SSE_STEPS", 30_000, "sse", replay, "sse", None);
}

fn run_diff(steps_var: &str, default_steps: u64, fpu: bool) {
    let kind = if fpu { "fpu" } else { "int" };
    run_diff_with(steps_var, default_steps, fpu, replay, kind, None);
}
