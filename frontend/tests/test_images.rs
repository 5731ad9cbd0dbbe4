//! Boots every guest program in test-images/ (built from source with the
//! host's gcc/binutils) and checks its port 0xE9 report and exit status.
//! Where QEMU is installed (qemu-system-i386, and qemu-system-x86_64 for
//! long_mode and bench64), the same images run there too and both emulators
//! must print the same thing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;

use common::repo;

/// Build all images once per test binary.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-images");
        let st = Command::new("bash")
            .arg(repo().join("test-images/build.sh"))
            .arg(&out)
            .args(IMAGES)
            // expected/bench64.txt is for build.sh's default round count
            .env_remove("BENCH64_ITERS")
            .status()
            .expect("run test-images/build.sh");
        assert!(st.success(), "test-images/build.sh failed");
        out
    })
}

/// Every image the tests boot.
const IMAGES: &[&str] = &[
    "hello",
    "pm_exceptions",
    "pm_strict",
    "paging",
    "vm86",
    "task_switch",
    "smc",
    "pc_devices",
    "long_mode",
    "bench64",
    "realmode_rom",
];

struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn boot_args(name: &str) -> Vec<String> {
    let dir = images();
    if name == "realmode_rom" {
        vec![
            "--bios".into(),
            dir.join("realmode_rom.bin").display().to_string(),
        ]
    } else {
        vec![
            "--kernel".into(),
            dir.join(format!("{name}.elf")).display().to_string(),
        ]
    }
}

fn leap(name: &str) -> Run {
    leap_with(name, &[])
}

fn leap_with(name: &str, extra: &[&str]) -> Run {
    // `--jit on` waits for each compile it asks for: a short guest could
    // otherwise end before the worker's first reply, with nothing run
    // compiled and nothing compared.
    let out = Command::new(env!("CARGO_BIN_EXE_leap"))
        .env("LEAP_JIT_WAIT", "1")
        .args(boot_args(name))
        .args(extra)
        .args(["--timeout", "120"])
        .output()
        .expect("run leap");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

fn check_image(name: &str) {
    check_image_with(name, &[]);
}

/// The tiers must give the interpreter's output exactly.
fn check_image_jit(name: &str, jit: &[&str]) {
    let interp = leap_with(name, &["--jit", "off", "--stats"]);
    let r = check_image_with(name, jit);
    let jitted = leap_with(name, &[jit, &["--stats"]].concat());
    assert_eq!(jitted.stdout, interp.stdout, "{name} {jit:?}: output");
    let retired = |r: &Run| {
        r.stderr
            .lines()
            .find(|l| l.contains("guest instructions retired"))
            .map(String::from)
    };
    assert!(retired(&interp).is_some(), "{}", interp.stderr);
    assert_eq!(retired(&jitted), retired(&interp), "{name} {jit:?}: count");
    let compiled = jitted
        .stderr
        .lines()
        .find(|l| l.starts_with("leap: jit:"))
        .unwrap_or_else(|| panic!("{name} {jit:?}: no JIT statistics:\n{}", jitted.stderr));
    assert!(
        !compiled.contains(" 0 compiled"),
        "{name} {jit:?}: nothing was compiled: {compiled}"
    );
    drop(r);
}

fn check_image_with(name: &str, extra: &[&str]) -> Run {
    let r = leap_with(name, extra);
    let failures: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failures.is_empty(),
        "{name} reported failures:\n{}\nstderr:\n{}",
        failures.join("\n"),
        r.stderr
    );
    assert!(
        r.stdout.lines().any(|l| l == format!("PASS {name}")),
        "{name} did not report PASS; output:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        r.code,
        Some(1),
        "{name}: exit status (guest wrote 0 to port 0xF4)"
    );
    let expected = repo().join(format!("test-images/expected/{name}.txt"));
    if let Ok(want) = std::fs::read_to_string(&expected) {
        if name == "hello" {
            // hello prints the firmware's memory map, which was captured from
            // QEMU/SeaBIOS; compare its checks only.
            assert_eq!(checks(&r.stdout), checks(&want), "{name}: checks differ");
        } else {
            assert_eq!(
                r.stdout,
                want,
                "{name}: output differs from {}",
                expected.display()
            );
        }
    }
    r
}

/// The result lines of a guest report.
fn checks(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL") || l.starts_with("PASS"))
        .map(String::from)
        .collect()
}

/// The QEMU binary run-qemu.sh picks for an image.
fn qemu_for(name: &str) -> &'static str {
    if name == "long_mode" || name == "bench64" {
        "qemu-system-x86_64"
    } else {
        "qemu-system-i386"
    }
}

fn qemu_available(qemu: &str) -> bool {
    Command::new(qemu)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn check_against_qemu(name: &str) {
    let qemu = qemu_for(name);
    if !qemu_available(qemu) {
        eprintln!("{qemu} not installed: skipping the QEMU comparison for {name}");
        return;
    }
    let q = Command::new("bash")
        .arg(repo().join("test-images/run-qemu.sh"))
        .arg(images())
        .arg(name)
        .output()
        .expect("run QEMU");
    let qout = String::from_utf8_lossy(&q.stdout).into_owned();
    let l = leap(name);
    // Compare the checks, not informational lines (the memory map and sizes
    // a loader reports legitimately differ between the two).
    assert_eq!(
        checks(&l.stdout),
        checks(&qout),
        "{name}: Leap and QEMU print different results"
    );
    if name == "bench64" {
        // Its results are the checksum lines, which checks() leaves out.
        assert_eq!(
            l.stdout, qout,
            "{name}: Leap and QEMU print different checksums"
        );
    }
    assert_eq!(
        l.code,
        q.status.code(),
        "{name}: Leap and QEMU exit differently"
    );
}

macro_rules! image_tests {
    ($($name:ident),* $(,)?) => {
        mod leap_runs {
            $( #[test] fn $name() { super::check_image(stringify!($name)); } )*
        }
        mod jit_always {
            $( #[test] fn $name() {
                super::check_image_jit(stringify!($name), &["--jit", "always"]);
            } )*
        }
        mod jit_on {
            $( #[test] fn $name() {
                super::check_image_jit(stringify!($name), &["--jit", "on", "--jit-threshold", "2"]);
            } )*
        }
    };
}

macro_rules! qemu_tests {
    ($($name:ident),* $(,)?) => {
        mod same_as_qemu {
            $( #[test] fn $name() { super::check_against_qemu(stringify!($name)); } )*
        }
    };
}

image_tests!(
    hello,
    pm_exceptions,
    pm_strict,
    paging,
    vm86,
    task_switch,
    smc,
    pc_devices,
    long_mode,
    bench64,
    realmode_rom
);
// pm_strict checks segment limits, #AC and LOCK rules that QEMU's TCG does
// not enforce, so it has no QEMU twin.
qemu_tests!(
    hello,
    pm_exceptions,
    paging,
    vm86,
    task_switch,
    smc,
    pc_devices,
    long_mode,
    bench64,
    realmode_rom
);

#[test]
fn bad_input_gives_a_one_line_error() {
    let bin = env!("CARGO_BIN_EXE_leap");
    let missing = Command::new(bin)
        .args(["--kernel", "/nonexistent/k.elf"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("/nonexistent/k.elf") && err.lines().count() == 1,
        "{err}"
    );

    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("not-an-elf.bin");
    std::fs::write(&tmp, b"this is not a kernel").unwrap();
    let r = Command::new(bin)
        .arg("--kernel")
        .arg(&tmp)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("not-an-elf.bin") && err.contains("multiboot"),
        "{err}"
    );

    let r = Command::new(bin).arg("--bogus-flag").output().unwrap();
    assert_eq!(r.status.code(), Some(2));

    let r = Command::new(bin).arg("--bios").arg(&tmp).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("64 KiB"));

    // A bzImage cut short, an initrd for a non-Linux kernel, bad option values.
    let mut bz = vec![0u8; 4096];
    bz[0x1f1] = 1;
    bz[0x1f4..0x1f8].copy_from_slice(&0x1000u32.to_le_bytes());
    bz[0x1fe] = 0x55;
    bz[0x1ff] = 0xaa;
    bz[0x201] = 0x66;
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    bz[0x211] = 1;
    let trunc = Path::new(env!("CARGO_TARGET_TMPDIR")).join("short.bzImage");
    std::fs::write(&trunc, &bz).unwrap();
    let r = Command::new(bin)
        .arg("--kernel")
        .arg(&trunc)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("short.bzImage") && err.contains("truncated bzImage"),
        "{err}"
    );
    let r = Command::new(bin)
        .arg("--kernel")
        .arg(&tmp)
        .arg("--initrd")
        .arg(&tmp)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a Linux bzImage"));
    for (flag, value) in [("--serial", "tty9"), ("--clock", "sundial")] {
        let r = Command::new(bin)
            .arg("--kernel")
            .arg(&tmp)
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(2), "{flag} {value}");
        assert!(String::from_utf8_lossy(&r.stderr).contains(value));
    }
}

#[test]
fn ctrl_a_x_on_the_console_quits() {
    use std::io::Write;
    let mut rom = vec![0xffu8; 0x10000];
    rom[0xfff0] = 0xeb;
    rom[0xfff1] = 0xfe;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spin-quit.rom");
    std::fs::write(&tmp, &rom).unwrap();
    let bin = env!("CARGO_BIN_EXE_leap");
    for (input, quits, timeout) in [
        (&b"ab\x01x"[..], true, "30"),
        (&b"\x01\x01x"[..], false, "2"),
    ] {
        let mut child = Command::new(bin)
            .arg("--bios")
            .arg(&tmp)
            .args(["--timeout", timeout])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        // Keep stdin open: end of input must not be what stops the run.
        let r = child.wait_with_output().unwrap();
        drop(stdin);
        let err = String::from_utf8_lossy(&r.stderr);
        if quits {
            assert_eq!(r.status.code(), Some(0), "{err}");
            assert!(err.contains("Ctrl-A X"), "{err}");
        } else {
            // Ctrl-A Ctrl-A is a literal Ctrl-A: the X is not a command.
            assert_eq!(r.status.code(), Some(124), "{err}");
        }
    }
}

#[test]
fn instruction_limit_and_timeout_end_a_spinning_guest() {
    // A ROM whose reset vector jumps to itself forever.
    let mut rom = vec![0xffu8; 0x10000];
    rom[0xfff0] = 0xeb;
    rom[0xfff1] = 0xfe;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spin.rom");
    std::fs::write(&tmp, &rom).unwrap();
    let bin = env!("CARGO_BIN_EXE_leap");
    let r = Command::new(bin)
        .arg("--bios")
        .arg(&tmp)
        .args(["--max-insns", "1000", "--stats"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&r.stderr).contains("1000 guest instructions"));
    let r = Command::new(bin)
        .arg("--bios")
        .arg(&tmp)
        .args(["--timeout", "0.5"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&r.stderr).contains("timeout"));
}
