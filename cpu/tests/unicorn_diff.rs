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
//! The `*_under_the_jit` tests run the same streams as whole blocks in the
//! interpreter and with every block compiled by the JIT (`--jit always`),
//! and require identical final states.

use leap_cpu::state::{Segment, CS};
use leap_cpu::tier::TierHook;
use leap_cpu::{Cpu, NullBus};
use leap_jit::Tier;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const REGS: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
/// CF PF AF ZF SF TF IF DF OF.
const FLAG_MASK: u64 = 0xfd5;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn num(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

fn generate(out: &Path, steps: u64, seed: u64, fpu: bool) -> bool {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(repo.join("tools/difftest/gen_cases.py"))
        .args(["--seed", &seed.to_string(), "--count", &steps.to_string()])
        .args(["--mode", "both", "--quiet", "--out"])
        .arg(out);
    if fpu {
        cmd.arg("--fpu");
    }
    let st = cmd.status();
    matches!(st, Ok(s) if s.success())
}

/// A CPU in the case's initial state.
fn setup(case: &Value) -> Cpu {
    let mode = num(&case["mode"]);
    let mut need = 1u64 << 20;
    let code_addr = num(&case["code_addr"]);
    let code = hex(case["code"].as_str().unwrap());
    need = need.max(code_addr + code.len() as u64);
    let mems = case["mem"].as_array().unwrap();
    for m in mems {
        need = need.max(num(&m["addr"]) + m["data"].as_str().unwrap().len() as u64 / 2);
    }
    let mut cpu = Cpu::new(((need + 0xfffff) & !0xfffff) as usize);
    let init = &case["init"];
    if mode == 32 {
        cpu.set_flat32();
    } else {
        for (i, s) in ["es", "cs", "ss", "ds", "fs", "gs"].iter().enumerate() {
            let sel = init.get(*s).map(num).unwrap_or(0) as u16;
            cpu.s.seg[i] = Segment::real_mode(sel);
        }
        cpu.update_mode();
    }
    assert_eq!(cpu.s.seg[CS].base, 0);
    for (i, r) in REGS.iter().enumerate() {
        cpu.s.gpr[i] = num(&init[*r]);
    }
    cpu.s.rip = num(&init["eip"]);
    cpu.s.flags.set_raw(num(&init["eflags"]));
    cpu.mem.load(code_addr, &code);
    for m in mems {
        cpu.mem
            .load(num(&m["addr"]), &hex(m["data"].as_str().unwrap()));
    }
    cpu
}

thread_local! {
    static JIT_TIER: std::cell::RefCell<Option<TierHook>> = const { std::cell::RefCell::new(None) };
}

/// Run the case's instructions as blocks, once in the interpreter and once
/// with every block compiled first (`--jit always`); the two must end in
/// exactly the same state. (The interpreter is held to Unicorn step by
/// step in `replay`.)
fn replay_jit(case: &Value) -> Result<usize, String> {
    let steps = case["steps"].as_array().unwrap().len() as u64;
    let mut interp = setup(case);
    let mut jit = setup(case);
    // One tier for all cases: building a code generator per case would
    // dominate the test's time.
    let hook = JIT_TIER.with(|t| t.borrow_mut().take());
    let hook = match hook {
        Some(h) => h,
        None => TierHook {
            tier: Box::new(Tier::inline().map_err(|e| e.to_string())?),
            threshold: 1,
            always: true,
        },
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
    if format!("{:?}", interp.s) != format!("{:?}", jit.s) {
        return Err("CpuState differs".into());
    }
    if interp.mem.ram != jit.mem.ram {
        return Err("RAM differs".into());
    }
    Ok(interp.icount as usize)
}

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
        if !diffs.is_empty() {
            return Err(format!("step {k} `{asm}`: {}", diffs.join(", ")));
        }
        // Take Unicorn's value for the undefined flags so later steps agree.
        let synced = (got_fl & !(undef & FLAG_MASK)) | (want_fl & undef & FLAG_MASK);
        cpu.s.flags.set_raw(synced);
    }
    for m in case["final_mem"].as_array().unwrap() {
        let addr = num(&m["addr"]);
        let want = hex(m["data"].as_str().unwrap());
        let got = &cpu.mem.ram[addr as usize..addr as usize + want.len()];
        if let Some(off) = (0..want.len()).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "memory at {:#x}: {:#04x} want {:#04x}",
                addr + off as u64,
                got[off],
                want[off]
            ));
        }
    }
    Ok(steps.len())
}

/// FSW bits Unicorn (QEMU 5.0) computes as the SDM does: C0, C2, C3, TOP.
/// It raises no exception flags (so no ES/B) and never sets C1.
const FSW_CMP: u64 = 0x4000 | 0x3800 | 0x0400 | 0x0100;

/// Compare the FPU state; then take Unicorn's value of the condition-code
/// bits the SDM leaves undefined for this instruction (`fsw_undef`).
fn compare_fpu(cpu: &mut Cpu, fw: &Value, diffs: &mut Vec<String>) {
    let undef = fw["fsw_undef"].as_u64().unwrap_or(0);
    let fsw = num(&fw["fsw"]);
    let f = &mut cpu.s.fpu;
    f.fsw = ((f.fsw as u64 & !undef) | (fsw & undef)) as u16;
    if (f.fsw as u64 ^ fsw) & FSW_CMP != 0 {
        diffs.push(format!(
            "fsw={:#06x} want {fsw:#06x} (compared bits {FSW_CMP:#x})",
            f.fsw
        ));
    }
    let fcw = num(&fw["fcw"]);
    if f.fcw as u64 != fcw {
        diffs.push(format!("fcw={:#06x} want {fcw:#06x}", f.fcw));
    }
    let ftw = num(&fw["ftw"]);
    let want_empty = (0..8).fold(0u8, |m, p| m | (((ftw >> (2 * p)) & 3 == 3) as u8) << p);
    if f.empty != want_empty {
        diffs.push(format!(
            "empty regs={:#04x} want {want_empty:#04x} (ftw {ftw:#06x})",
            f.empty
        ));
    }
    let mmx = fw["mmx"].as_u64() == Some(1);
    for (p, w) in fw["regs"].as_array().unwrap().iter().enumerate() {
        if f.empty & (1 << p) != 0 {
            continue;
        }
        let (mant, se) = (num(&w[0]), num(&w[1]));
        let r = f.regs[p];
        // MMX writes set the exponent to all ones; Unicorn leaves it alone.
        let se_ok = r.se as u64 == se || (mmx && r.se == 0xffff);
        if r.mant != mant || !se_ok {
            diffs.push(format!(
                "R{p}={:04x}:{:016x} want {se:04x}:{mant:016x}",
                r.se, r.mant
            ));
        }
    }
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
fn unicorn_streams_under_the_jit() {
    run_diff_with("LEAP_DIFF_STEPS", 100_000, false, replay_jit, "int, JIT");
}

#[test]
fn unicorn_fpu_streams_under_the_jit() {
    run_diff_with("LEAP_DIFF_FPU_STEPS", 30_000, true, replay_jit, "fpu, JIT");
}

fn run_diff(steps_var: &str, default_steps: u64, fpu: bool) {
    let kind = if fpu { "fpu" } else { "int" };
    run_diff_with(steps_var, default_steps, fpu, replay, kind);
}

fn run_diff_with(
    steps_var: &str,
    default_steps: u64,
    fpu: bool,
    replay: fn(&Value) -> Result<usize, String>,
    what: &str,
) {
    let steps: u64 = std::env::var(steps_var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_steps);
    let seed: u64 = std::env::var("LEAP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let kind = if fpu { "fpu" } else { "int" };
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unicorn-{kind}-{seed}-{steps}.jsonl"));
    // The interpreter and JIT variants share a stream file: generate once.
    static GENERATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
    if !out.exists() && !generate(&out, steps, seed, fpu) {
        if std::env::var("LEAP_SKIP_UNICORN").is_ok() {
            eprintln!("unicorn not available and LEAP_SKIP_UNICORN set: skipping");
            return;
        }
        panic!("tools/difftest/gen_cases.py failed (is `pip install unicorn iced-x86` done? scripts/setup.sh does it)");
    }
    drop(guard);
    // Compiling every block costs far more than interpreting it: the JIT
    // variants take the first LEAP_DIFF_JIT_STEPS instructions' worth of
    // cases (default 20000) of the same stream.
    let limit: u64 = if what.contains("JIT") {
        std::env::var("LEAP_DIFF_JIT_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000)
            .min(steps)
    } else {
        steps
    };
    let text = std::fs::read_to_string(&out).unwrap();
    let mut total = 0;
    let mut cases = 0;
    let mut failures = Vec::new();
    let only: Option<usize> = std::env::var("LEAP_DIFF_CASE")
        .ok()
        .and_then(|s| s.parse().ok());
    for (n, line) in text.lines().enumerate() {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        if total as u64 >= limit {
            break;
        }
        let case: Value = serde_json::from_str(line).unwrap();
        cases += 1;
        match replay(&case) {
            Ok(k) => total += k,
            Err(e) => failures.push(format!("case {n} ({}-bit): {e}", case["mode"])),
        }
    }
    eprintln!(
        "unicorn differential ({what}): {cases} cases, {total} instructions matched, {} cases differ",
        failures.len()
    );
    for f in failures.iter().take(40) {
        eprintln!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from Unicorn",
        failures.len()
    );
    assert!(
        only.is_some() || total as u64 >= limit * 9 / 10,
        "only {total} instructions compared"
    );
}
