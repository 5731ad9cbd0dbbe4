//! Boot-to-marker wall time of Debian 12's 32-bit kernel with Leap's test
//! initrd (test-images/linux/): Leap with `--jit off` and `--jit on` against QEMU TCG
//! (`qemu-system-i386`) in the same run, median of several runs each, with
//! the ratio and the guest instructions Leap retired.
//!
//!   cargo run --release -p leap-benches --bin linux_boot [-- RUNS]
//!
//! Both emulators get the same kernel, initrd, command line and RAM; the
//! clock stops when "LEAP-MARKER: userland up" appears on the serial line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MARKER: &str = "LEAP-MARKER: userland up";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Run `cmd` until MARKER shows on its stdout; returns the seconds taken
/// and what it wrote to stderr. With `kill`, the process is ended there;
/// otherwise it is expected to stop by itself.
fn time_to_marker(mut cmd: Command, kill: bool) -> Option<(f64, String)> {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let found = loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break false,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&seen).contains(MARKER) {
                    break true;
                }
            }
        }
    };
    let secs = t.elapsed().as_secs_f64();
    if kill {
        let _ = child.kill();
    }
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    found.then_some((secs, err))
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = repo().join("target/linux-i386");
    let st = Command::new("bash")
        .arg(repo().join("test-images/linux/fetch-debian-i386.sh"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("run fetch-debian-i386.sh");
    assert!(st.success(), "fetching the Debian i386 images failed");
    let kernel = dir.join("linux");
    let initrd = dir.join("test-initrd.gz");
    let leap_bin = repo().join("target/release/leap");
    let st = Command::new("cargo")
        .args(["build", "--release", "-p", "leap"])
        .current_dir(repo())
        .status()
        .expect("cargo build");
    assert!(st.success());

    println!("runs per figure: {runs} (medians); RAM 256 MiB; append console=ttyS0");
    let mut figures = Vec::new();
    for jit in ["off", "on"] {
        let mut leap_times = Vec::new();
        let mut insns = 0u64;
        for _ in 0..runs {
            let mut c = Command::new(&leap_bin);
            c.args([
                "-m",
                "256",
                "--stats",
                "--jit",
                jit,
                "--expect-serial",
                MARKER,
                "--kernel",
            ])
            .arg(&kernel)
            .arg("--initrd")
            .arg(&initrd)
            .args(["--append", "console=ttyS0"]);
            // --expect-serial ends the run at the marker and --stats reports it.
            let (t, err) = time_to_marker(c, false).expect("Leap did not reach the marker");
            if let Some(n) = err.lines().find_map(|l| {
                l.strip_prefix("leap: ")?
                    .strip_suffix(" guest instructions retired")?
                    .parse()
                    .ok()
            }) {
                insns = n;
            }
            if let Some(j) = err.lines().find(|l| l.starts_with("leap: jit:")) {
                println!("  {j}");
            }
            leap_times.push(t);
        }
        let lt = median(leap_times);
        println!(
            "leap (--jit {jit}): {lt:.2} s to the marker, {insns} guest instructions, {:.1} MIPS",
            insns as f64 / lt / 1e6
        );
        figures.push((jit, lt));
    }
    let have_qemu = Command::new("qemu-system-i386")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_qemu {
        println!("qemu-system-i386 not installed; no ratio");
        return;
    }
    let mut q = Vec::new();
    for _ in 0..runs {
        let mut c = Command::new("qemu-system-i386");
        c.args(["-machine", "pc,accel=tcg", "-m", "256", "-display", "none"])
            .args([
                "-serial",
                "stdio",
                "-monitor",
                "none",
                "-no-reboot",
                "-kernel",
            ])
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0"]);
        if let Some((t, _)) = time_to_marker(c, true) {
            q.push(t);
        }
    }
    if q.len() != runs {
        println!("qemu-system-i386 did not reach the marker; no ratio");
        return;
    }
    let qt = median(q);
    println!("qemu-system-i386 TCG: {qt:.2} s to the marker");
    for (jit, lt) in figures {
        println!(
            "leap (--jit {jit})/qemu wall-time ratio {:.2} (target <= 0.8)",
            lt / qt
        );
    }
}
