//! Throughput on the compute-bound guests under the interpreter, the JIT
//! (`--jit on`, default threshold) and the JIT compiling every block first
//! (`--jit always`): guest instructions retired, wall time and MIPS, median
//! of several runs; when QEMU is installed, the same images under QEMU TCG
//! in the same run, and the ratio.  The images: test-images/bench.c in its
//! normal layout (bench) and with its hot loop straddling a page
//! (bench_straddle), both 32-bit integer code run in qemu-system-i386, and
//! bench64 (test-images/bench64_64.c, 64-bit SSE floating-point and integer
//! code, BENCH64_ROUNDS rounds) run in qemu-system-x86_64.
//!
//!   cargo run --release -p leap-benches --bin mips [-- RUNS [IMAGE...]]

use leap_machine::{Boot, Config, JitMode, Machine, RunOutcome, Serial, DEFAULT_JIT_THRESHOLD};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// bench64's rounds: about 35 million instructions, a few seconds in
/// Leap's interpreter.  The image's own default is the test's small count.
const BENCH64_ROUNDS: &str = "1000";

/// The QEMU that runs an image (test-images/run-qemu.sh picks the same).
fn qemu_for(name: &str) -> &'static str {
    if name == "bench64" {
        "qemu-system-x86_64"
    } else {
        "qemu-system-i386"
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One Leap run in-process: (instructions, seconds).
fn leap_run(name: &str, image: &[u8], jit: JitMode) -> (u64, f64) {
    let mut cfg = Config::new(
        128 << 20,
        Boot::Multiboot {
            image: image.to_vec(),
            cmdline: String::new(),
        },
    );
    cfg.timeout = Some(Duration::from_secs(600));
    cfg.serial = Serial::None;
    cfg.jit = jit;
    let mut m = Machine::new(cfg, Box::new(std::io::sink())).expect("bench image loads");
    let t = Instant::now();
    let out = m.run();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out, RunOutcome::DebugExit(1), "{name} guest failed");
    let text = String::from_utf8_lossy(m.debug_output()).into_owned();
    assert!(
        text.lines().any(|l| l == format!("PASS {name}")),
        "{name} guest output: {text}"
    );
    (m.cpu.icount, secs)
}

fn qemu_run(dir: &Path, name: &str) -> Option<f64> {
    let t = Instant::now();
    let st = Command::new("bash")
        .arg(repo().join("test-images/run-qemu.sh"))
        .arg(dir)
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let secs = t.elapsed().as_secs_f64();
    (st.code() == Some(1)).then_some(secs)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut names: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if names.is_empty() {
        names = vec!["bench", "bench_straddle", "bench64"];
    }
    let dir = repo().join("target/bench-images");
    let st = Command::new("bash")
        .arg(repo().join("test-images/build.sh"))
        .arg(&dir)
        .args(&names)
        .env("BENCH64_ITERS", BENCH64_ROUNDS)
        .stdout(Stdio::null())
        .status()
        .expect("run test-images/build.sh");
    assert!(st.success(), "building the bench images failed");
    println!("runs per figure: {runs} (medians)");
    for name in names {
        let qemu = qemu_for(name);
        let have_qemu = Command::new(qemu)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let image = std::fs::read(dir.join(format!("{name}.elf"))).unwrap();
        let tiers = [
            ("interpreter", JitMode::Off),
            (
                "jit on",
                JitMode::On {
                    threshold: DEFAULT_JIT_THRESHOLD,
                },
            ),
            ("jit always", JitMode::Always),
        ];
        let mut insns = 0;
        let mut base = 0.0;
        let mut medians = Vec::new();
        for (label, mode) in tiers {
            let mut times = Vec::new();
            for _ in 0..runs {
                let (n, s) = leap_run(name, &image, mode);
                insns = n;
                times.push(s);
            }
            let t = median(times);
            medians.push((label, t));
            if mode == JitMode::Off {
                base = t;
            }
            let mips = insns as f64 / t / 1e6;
            println!(
                "{name}: leap {label}: {insns} instructions, {t:.3} s, {mips:.1} MIPS ({:.2}x the interpreter)",
                base / t
            );
        }
        if have_qemu {
            let q: Vec<f64> = (0..runs).filter_map(|_| qemu_run(&dir, name)).collect();
            if q.len() == runs {
                let qt = median(q);
                // Same guest, same instruction stream: QEMU's MIPS follows from
                // Leap's count (QEMU's time includes its start-up).
                let qmips = insns as f64 / qt / 1e6;
                let ratios: Vec<String> = medians
                    .iter()
                    .map(|(label, t)| format!("{label} {:.3}", qt / t))
                    .collect();
                println!(
                    "{name}: {qemu} TCG: {qt:.3} s, ~{qmips:.1} MIPS; leap/qemu speed ratio: {}",
                    ratios.join(", ")
                );
            } else {
                println!("{name}: {qemu} run failed; no ratio");
            }
        } else {
            println!("{name}: {qemu} not installed; no ratio");
        }
    }
}
