//! Unicorn instruction streams (tools/difftest/gen_cases.py): generation,
//! a CPU in a case's initial state, and the loop over a stream's cases.
//! Shared by leap-cpu's Unicorn differential test and leap-jit's run of
//! the same streams under the JIT (included there by path, so leap-cpu
//! needs no dependency on the JIT).

#![allow(dead_code)]

use leap_cpu::state::{Segment, CR4_OSFXSR, CR4_OSXMMEXCPT, CS};
use leap_cpu::Cpu;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub const REGS: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
/// CF PF AF ZF SF TF IF DF OF.
pub const FLAG_MASK: u64 = 0xfd5;

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A number, or a decimal string (the 64-bit stream writes values above
/// 2^53 as strings so JSON readers that use doubles keep them exact).
pub fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("decimal string"),
        _ => v.as_u64().expect("integer"),
    }
}

/// The case's `final_mem` blocks against Leap's RAM.
pub fn check_final_mem(cpu: &Cpu, case: &Value) -> Result<(), String> {
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
    Ok(())
}

/// `kind`: "int", "fpu" or "sse" (gen_cases.py's stream flag, 16- and
/// 32-bit code), or "64" and "sse64" (gen_cases64.py without and with
/// `--sse`, 64-bit code).
fn generate(out: &Path, steps: u64, seed: u64, kind: &str) -> bool {
    // Both users sit one level below the repository root.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let long = matches!(kind, "64" | "sse64");
    let script = if long {
        "gen_cases64.py"
    } else {
        "gen_cases.py"
    };
    let mut cmd = Command::new("python3");
    cmd.arg(repo.join("tools/difftest").join(script)).args([
        "--seed",
        &seed.to_string(),
        "--count",
        &steps.to_string(),
    ]);
    if !long {
        cmd.args(["--mode", "both", "--quiet"]);
    }
    cmd.arg("--out").arg(out);
    match kind {
        "int" | "64" => {}
        "sse64" => {
            cmd.args(["--sse", "--quiet"]);
        }
        _ => {
            cmd.arg(format!("--{kind}"));
        }
    }
    let st = cmd.status();
    matches!(st, Ok(s) if s.success())
}

/// A CPU in the case's initial state.
pub fn setup(case: &Value) -> Cpu {
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
    load_sse(&mut cpu, init);
    cpu.s.flags.set_raw(num(&init["eflags"]));
    cpu.mem.load(code_addr, &code);
    for m in mems {
        cpu.mem
            .load(num(&m["addr"]), &hex(m["data"].as_str().unwrap()));
    }
    cpu
}

/// FSW bits Unicorn (QEMU 5.0) computes as the SDM does: C0, C2, C3, TOP.
/// It raises no exception flags (so no ES/B) and never sets C1.
pub const FSW_CMP: u64 = 0x4000 | 0x3800 | 0x0400 | 0x0100;

/// SSE streams: the XMM registers and MXCSR of `init` (when it has
/// them), with the OS support bits set.
fn load_sse(cpu: &mut Cpu, init: &Value) {
    if let Some(x) = init.get("xmm").and_then(|v| v.as_array()) {
        for (k, v) in x.iter().enumerate() {
            cpu.s
                .set_xmm(k, u128::from_str_radix(v.as_str().unwrap(), 16).unwrap());
        }
        cpu.s.fpu.mxcsr = num(&init["mxcsr"]) as u32;
        cpu.s.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    }
}

/// The XMM registers a step records, exactly; MXCSR less the six sticky
/// exception flags, which Unicorn does not raise
/// (tools/difftest/unicorn_deviations.md).
pub fn compare_sse(cpu: &Cpu, sw: &Value, diffs: &mut Vec<String>) {
    for (k, v) in sw["xmm"].as_array().unwrap().iter().enumerate() {
        let want = u128::from_str_radix(v.as_str().unwrap(), 16).unwrap();
        let got = cpu.s.xmm(k);
        if got != want {
            diffs.push(format!("xmm{k}={got:032x} want {want:032x}"));
        }
    }
    let want = num(&sw["mxcsr"]) as u32;
    let got = cpu.s.fpu.mxcsr;
    if (got ^ want) & !0x3f != 0 {
        diffs.push(format!(
            "mxcsr={got:#x} want {want:#x} (flags not compared)"
        ));
    }
}

/// Compare the FPU state; then take Unicorn's value of the condition-code
/// bits the SDM leaves undefined for this instruction (`fsw_undef`).
pub fn compare_fpu(cpu: &mut Cpu, fw: &Value, diffs: &mut Vec<String>) {
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

/// Where gen_cases64.py's cases keep their page tables (PML4, PDPT, PD).
const PML4: u64 = 0x2_0000;

/// A CPU in 64-bit mode at CPL 0 with the low 2 MiB identity-mapped, in
/// the initial state of a gen_cases64.py case (with `--sse`: XMM0-15 and
/// MXCSR too, with the OS support bits set).
pub fn setup64(case: &Value) -> Cpu {
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
    load_sse(&mut cpu, case);
    cpu.s.rip = 0x1000;
    cpu.s.flags.set_raw(num(&case["rflags"]));
    cpu.mem.load(0x1000, &hex(case["code"].as_str().unwrap()));
    for m in case["mem"].as_array().unwrap() {
        cpu.mem
            .load(num(&m["addr"]), &hex(m["data"].as_str().unwrap()));
    }
    cpu
}

pub fn run_diff_with(
    steps_var: &str,
    default_steps: u64,
    fpu: bool,
    replay: fn(&Value) -> Result<usize, String>,
    what: &str,
    limit: Option<u64>,
) {
    let kind = if fpu { "fpu" } else { "int" };
    run_diff_stream(steps_var, default_steps, kind, replay, what, limit);
}

/// Generate (once, cached in the target directory) and replay a stream of
/// kind "int", "fpu", "sse", "64" or "sse64".
pub fn run_diff_stream(
    steps_var: &str,
    default_steps: u64,
    kind: &str,
    replay: fn(&Value) -> Result<usize, String>,
    what: &str,
    limit: Option<u64>,
) {
    let steps: u64 = std::env::var(steps_var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_steps);
    let seed: u64 = std::env::var("LEAP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unicorn-{kind}-{seed}-{steps}.jsonl"));
    // Tests running in parallel may share a stream file: generate once.
    static GENERATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
    if !out.exists() && !generate(&out, steps, seed, kind) {
        if std::env::var("LEAP_SKIP_UNICORN").is_ok() {
            eprintln!("unicorn not available and LEAP_SKIP_UNICORN set: skipping");
            return;
        }
        panic!(
            "tools/difftest/gen_cases{}.py failed (is `pip install unicorn iced-x86` done? scripts/setup.sh does it)",
            if kind.ends_with("64") { "64" } else { "" }
        );
    }
    drop(guard);
    let limit = limit.map_or(steps, |l| l.min(steps));
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
            Err(e) => {
                let bits = case.get("mode").map_or(64, num);
                failures.push(format!("case {n} ({bits}-bit): {e}"))
            }
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
        "{} of {cases} cases differ ({what})",
        failures.len()
    );
    assert!(
        only.is_some() || total as u64 >= limit * 9 / 10,
        "only {total} instructions compared"
    );
}
