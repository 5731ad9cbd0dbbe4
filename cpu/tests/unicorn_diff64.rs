//! Differential test of 64-bit mode against Unicorn: random 64-bit integer
//! instruction streams (tools/difftest/gen_cases64.py) are replayed on Leap
//! one instruction at a time; the sixteen GPRs, RIP, the arithmetic flags
//! (less those the SDM leaves undefined for the instruction) and the data
//! and stack memory must match Unicorn's.
//!
//! LEAP_DIFF64_STEPS (default 20000) and LEAP_DIFF_SEED (default 1) scale it.

use leap_cpu::{Cpu, NullBus};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PML4: u64 = 0x2_0000;
/// Arithmetic flags, DF and bit 1.
const REPORT: u64 = 0xcd5 | 0x400 | 0x2;
const NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("decimal string"),
        _ => v.as_u64().expect("integer"),
    }
}

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

#[test]
fn unicorn_differential_64bit() {
    let steps: u64 = std::env::var("LEAP_DIFF64_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("LEAP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unicorn-64-{seed}-{steps}.jsonl"));
    if !out.exists() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let st = Command::new("python3")
            .arg(repo.join("tools/difftest/gen_cases64.py"))
            .args([
                "--seed",
                &seed.to_string(),
                "--count",
                &steps.to_string(),
                "--out",
            ])
            .arg(&out)
            .status();
        assert!(
            matches!(st, Ok(s) if s.success()),
            "tools/difftest/gen_cases64.py failed (is `pip install unicorn iced-x86` done? scripts/setup.sh does it)"
        );
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let (mut cases, mut total, mut failures) = (0, 0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        cases += 1;
        match replay(&case) {
            Ok(k) => total += k,
            Err(e) => failures.push(format!("case {n}: {e}")),
        }
    }
    eprintln!(
        "unicorn differential (64-bit): {cases} cases, {total} instructions matched, {} cases differ",
        failures.len()
    );
    for f in failures.iter().take(40) {
        eprintln!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ",
        failures.len()
    );
    assert!(
        total as u64 >= steps * 9 / 10,
        "only {total} instructions compared"
    );
}
