//! Boot time of Debian 12's Linux with Leap's test userland
//! (test-images/linux/): Leap with `--jit off` and `--jit on` against QEMU
//! TCG in the same run, median of several runs each, with the ratio and
//! the guest instructions Leap retired.
//!
//!   cargo run --release -p leap-benches --bin linux_boot [-- RUNS [i386|amd64]]
//!
//! i386 (the default): the netboot installer's kernel with a busybox
//! initrd, against `qemu-system-i386`. amd64: the stock linux-image-amd64
//! kernel with busybox-static running test64.sh, against
//! `qemu-system-x86_64`. Both emulators get the same kernel, initrd,
//! command line and RAM; two clocks are read: when "LEAP-MARKER: userland
//! up" appears on the serial line, and when the emulator exits after the
//! guest's `poweroff -f`.

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

/// Times of one whole run: seconds to MARKER (if it appeared), seconds
/// to exit, and what the emulator wrote to stderr.
struct Timed {
    marker: Option<f64>,
    exit: f64,
    stderr: String,
}

fn time_run(mut cmd: Command) -> Option<Timed> {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    // Drain stderr on a thread so a chatty emulator cannot block on it.
    let mut err_pipe = child.stderr.take()?;
    let err_thread = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = err_pipe.read_to_string(&mut e);
        e
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut marker = None;
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if marker.is_none() && String::from_utf8_lossy(&seen).contains(MARKER) {
                    marker = Some(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    let _ = child.wait();
    let exit = t.elapsed().as_secs_f64();
    let stderr = err_thread.join().unwrap_or_default();
    Some(Timed {
        marker,
        exit,
        stderr,
    })
}

struct Guest {
    dir: &'static str,
    fetch: &'static str,
    kernel: &'static str,
    initrd: &'static str,
    append: &'static str,
    qemu: &'static str,
}

const I386: Guest = Guest {
    dir: "target/linux-i386",
    fetch: "test-images/linux/fetch-debian-i386.sh",
    kernel: "linux",
    initrd: "test-initrd.gz",
    append: "console=ttyS0",
    qemu: "qemu-system-i386",
};

const AMD64: Guest = Guest {
    dir: "target/linux-amd64",
    fetch: "test-images/linux/fetch-debian-amd64.sh",
    kernel: "vmlinuz",
    initrd: "initramfs.gz",
    append: "console=ttyS0 leap.run=test",
    qemu: "qemu-system-x86_64",
};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let g = match args.next().as_deref() {
        None | Some("i386") => I386,
        Some("amd64") => AMD64,
        Some(other) => {
            eprintln!("linux_boot: '{other}' is not i386 or amd64");
            std::process::exit(2);
        }
    };
    let dir = repo().join(g.dir);
    let st = Command::new("bash")
        .arg(repo().join(g.fetch))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("run the fetch script");
    assert!(st.success(), "fetching the Debian images failed");
    let kernel = dir.join(g.kernel);
    let initrd = dir.join(g.initrd);
    let leap_bin = repo().join("target/release/leap");
    let st = Command::new("cargo")
        .args(["build", "--release", "-p", "leap"])
        .current_dir(repo())
        .status()
        .expect("cargo build");
    assert!(st.success());

    println!(
        "runs per figure: {runs} (medians); RAM 256 MiB; append {}",
        g.append
    );
    let mut figures = Vec::new();
    for jit in ["off", "on"] {
        let (mut to_marker, mut to_exit) = (Vec::new(), Vec::new());
        let mut insns = 0u64;
        for _ in 0..runs {
            let mut c = Command::new(&leap_bin);
            c.args(["-m", "256", "--stats", "--jit", jit, "--kernel"])
                .arg(&kernel)
                .arg("--initrd")
                .arg(&initrd)
                .args(["--append", g.append]);
            let r = time_run(c).expect("run leap");
            let Some(m) = r.marker else {
                panic!("Leap did not reach the marker:\n{}", r.stderr);
            };
            if let Some(n) = r.stderr.lines().find_map(|l| {
                l.strip_prefix("leap: ")?
                    .strip_suffix(" guest instructions retired")?
                    .parse()
                    .ok()
            }) {
                insns = n;
            }
            if let Some(j) = r.stderr.lines().find(|l| l.starts_with("leap: jit:")) {
                println!("  {j}");
            }
            to_marker.push(m);
            to_exit.push(r.exit);
        }
        let (m, e) = (median(to_marker), median(to_exit));
        println!(
            "leap (--jit {jit}): {m:.2} s to the marker, {e:.2} s to power-off, {insns} guest instructions, {:.1} MIPS",
            insns as f64 / e / 1e6
        );
        figures.push((jit, m, e));
    }
    let have_qemu = Command::new(g.qemu)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_qemu {
        println!("{} not installed; no ratio", g.qemu);
        return;
    }
    let (mut qm, mut qe) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut c = Command::new(g.qemu);
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
            .args(["-append", g.append]);
        if let Some(Timed {
            marker: Some(m),
            exit,
            ..
        }) = time_run(c)
        {
            qm.push(m);
            qe.push(exit);
        }
    }
    if qm.len() != runs {
        println!("{} did not reach the marker; no ratio", g.qemu);
        return;
    }
    let (qm, qe) = (median(qm), median(qe));
    println!(
        "{} TCG: {qm:.2} s to the marker, {qe:.2} s to power-off",
        g.qemu
    );
    for (jit, m, e) in figures {
        println!(
            "leap (--jit {jit})/qemu wall-time ratio: marker {:.2}, power-off {:.2} (target <= 0.8)",
            m / qm,
            e / qe
        );
    }
}
