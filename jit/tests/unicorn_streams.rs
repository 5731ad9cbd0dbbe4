//! The Unicorn differential streams (see cpu/tests/unicorn_diff.rs) run as
//! whole blocks, once in the interpreter and once with every block compiled
//! first (`--jit always`); the two must end in exactly the same state. The
//! interpreter itself is held to Unicorn step by step in leap-cpu's test.
//!
//! Compiling every block costs far more than interpreting it: these take
//! the first LEAP_DIFF_JIT_STEPS instructions' worth of cases (default
//! 20000, 5000 for the SSE streams) of the same streams. The 64-bit SSE
//! stream (`gen_cases64.py --sse`) runs here too.

mod common;
#[path = "../../cpu/tests/unicorn_cases/mod.rs"]
mod unicorn_cases;

use leap_cpu::tier::TierHook;
use leap_cpu::NullBus;
use leap_jit::Tier;
use serde_json::Value;
use unicorn_cases::*;

thread_local! {
    static JIT_TIER: std::cell::RefCell<Option<TierHook>> = const { std::cell::RefCell::new(None) };
}

/// Run the case's instructions as blocks in both tiers; compare the end
/// states.
fn replay_jit(case: &Value) -> Result<usize, String> {
    let steps = case["steps"].as_array().unwrap().len() as u64;
    // gen_cases.py's cases name their mode; gen_cases64.py's are 64-bit.
    let setup = if case.get("mode").is_some() {
        setup
    } else {
        setup64
    };
    let mut interp = setup(case);
    let mut jit = setup(case);
    // One tier for all cases: building a code generator per case would
    // dominate the test's time.
    let hook = JIT_TIER.with(|t| t.borrow_mut().take());
    let hook = match hook {
        Some(h) => h,
        None => TierHook::new(Box::new(Tier::inline().map_err(|e| e.to_string())?), 1),
    };
    let compiled_before = hook
        .tier
        .as_any()
        .downcast_ref::<Tier>()
        .unwrap()
        .stats
        .installed;
    jit.set_tier(Some(hook));
    let a = interp.run(&mut NullBus, steps);
    let b = jit.run(&mut NullBus, steps);
    let compiled = jit.tier_as::<Tier>().unwrap().stats.installed - compiled_before;
    JIT_TIER.with(|t| *t.borrow_mut() = jit.tier.take());
    if a != b {
        return Err(format!("exits differ: interpreter {a:?}, JIT {b:?}"));
    }
    if compiled == 0 {
        return Err("nothing compiled".into());
    }
    for i in 0..16 {
        if interp.s.gpr[i] != jit.s.gpr[i] {
            return Err(format!(
                "gpr[{i}]: interpreter {:#x}, JIT {:#x}",
                interp.s.gpr[i], jit.s.gpr[i]
            ));
        }
    }
    let (fa, fb) = (interp.s.flags.get(), jit.s.flags.get());
    if (interp.s.rip, fa, interp.icount) != (jit.s.rip, fb, jit.icount) {
        return Err(format!(
            "rip/flags/icount: interpreter {:#x}/{fa:#x}/{}, JIT {:#x}/{fb:#x}/{}",
            interp.s.rip, interp.icount, jit.s.rip, jit.icount
        ));
    }
    if common::state_text(&interp.s) != common::state_text(&jit.s) {
        return Err("CpuState differs".into());
    }
    if interp.mem.ram != jit.mem.ram {
        return Err("RAM differs".into());
    }
    Ok(interp.icount as usize)
}

fn jit_limit() -> Option<u64> {
    jit_limit_or(20_000)
}

fn jit_limit_or(default: u64) -> Option<u64> {
    Some(
        std::env::var("LEAP_DIFF_JIT_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

#[test]
fn unicorn_streams_under_the_jit() {
    run_diff_with(
        "LEAP_DIFF_STEPS",
        100_000,
        false,
        replay_jit,
        "int, JIT",
        jit_limit(),
    );
}

#[test]
fn unicorn_fpu_streams_under_the_jit() {
    run_diff_with(
        "LEAP_DIFF_FPU_STEPS",
        30_000,
        true,
        replay_jit,
        "fpu, JIT",
        jit_limit(),
    );
}

#[test]
fn unicorn_sse_streams_under_the_jit() {
    run_diff_stream(
        "LEAP_DIFF_SSE_STEPS",
        30_000,
        "sse",
        replay_jit,
        "sse, JIT",
        // SSE blocks are short and each one is compiled: fewer cases keep
        // this near the others' time.
        jit_limit_or(5_000),
    );
}

#[test]
fn unicorn_sse64_streams_under_the_jit() {
    run_diff_stream(
        "LEAP_DIFF64_SSE_STEPS",
        30_000,
        "sse64",
        replay_jit,
        "sse 64-bit, JIT",
        jit_limit_or(5_000),
    );
}
