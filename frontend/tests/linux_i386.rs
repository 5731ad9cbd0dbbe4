//! Debian 12's i386 kernel (from the netboot installer package, fetched with
//! apt by test-images/linux/fetch-debian-i386.sh) boots in Leap:
//! - with a small busybox initrd to a userland that reports and powers the
//!   machine off through ACPI (Leap's tables, PIIX4 PM1a_CNT S5), twice in
//!   parallel, with byte-identical output and the same instruction count
//!   (deterministic clock);
//! - with the installer's own initrd to its first dialog on the serial line.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;

use common::{leap, retired, text};

fn linux_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fetch("fetch-debian-i386.sh", "linux-i386"))
}

#[test]
fn linux_boots_to_userland_deterministically() {
    let dir = linux_dir();
    let kernel = dir.join("linux");
    let initrd = dir.join("test-initrd.gz");
    let args = [
        "-m",
        "256",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--append",
        "console=ttyS0",
        "--clock",
        "deterministic",
        "--timeout",
        "1500",
        "--stats",
    ];
    // The same boot in the interpreter and with the JIT compiling hot
    // blocks in the background, side by side (CI has two cores).
    let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let first = std::thread::spawn(move || {
        let mut a: Vec<&str> = owned.iter().map(|s| s.as_str()).collect();
        a.extend(["--jit", "off"]);
        leap(&a).output().expect("run leap")
    });
    let second: Output = leap(&[&args[..], &["--jit", "on"]].concat())
        .output()
        .expect("run leap");
    let first: Output = first.join().unwrap();

    let out = text(&first.stdout);
    let err = text(&first.stderr);
    assert_eq!(
        first.status.code(),
        Some(0),
        "stderr:\n{err}\nserial:\n{out}"
    );
    assert!(
        err.contains("leap: guest powered off (ACPI S5); stopping"),
        "{err}"
    );
    for want in [
        "Linux version 6.1",
        // Leap's ACPI tables were found, parsed and used.
        "ACPI: RSDP 0x00000000000F5000 000024 (v02 LEAP  )",
        "ACPI: FACP 0x",
        "ACPI: PM-Timer IO Port: 0x608",
        "ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)",
        "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)",
        "ACPI: Using ACPI (MADT) for SMP configuration information",
        "ACPI: Interpreter enabled",
        "ACPI: PM: (supports S0 S5)",
        "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])",
        "pci 0000:00:01.3: [8086:7113] type 00 class 0x068000",
        "clocksource: acpi_pm: mask: 0xffffff",
        "IO-APIC   9-fasteoi   acpi",
        "ACPI: PM: Preparing to enter system sleep state S5",
        "reboot: Power down",
        "Enabling APIC mode",
        "Serial: 8250/16550 driver",
        "ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
        "rtc_cmos rtc_cmos: setting system clock to 2024-01-01",
        "LEAP-MARKER: userland up",
        "Linux (none) 6.1",
        "LEAP-MARKER: done",
    ] {
        assert!(out.contains(want), "serial lacks {want:?}:\n{out}");
    }
    for bad in [
        "ACPI Error",
        "ACPI BIOS Error",
        "ACPI Warning",
        "ACPI BIOS Warning",
    ] {
        assert!(!out.contains(bad), "{bad:?} in the kernel log:\n{out}");
    }
    let cpuinfo_flags = out
        .lines()
        .find(|l| l.starts_with("flags"))
        .expect("cpuinfo flags");
    for f in [
        "fpu", "tsc", "apic", "cmov", "mmx", "fxsr", "pae", "nx", "sse", "sse2", "pni", "ssse3",
        "sse4_1", "sse4_2", "popcnt",
    ] {
        assert!(
            cpuinfo_flags.split_whitespace().any(|x| x == f),
            "{f} missing: {cpuinfo_flags}"
        );
    }
    // Timer and serial interrupts arrived through the I/O APIC.
    let irq_line = |name: &str| {
        out.lines()
            .find(|l| l.contains("IO-APIC") && l.trim_end().ends_with(name))
            .unwrap_or_else(|| panic!("no IO-APIC line for {name}:\n{out}"))
            .to_string()
    };
    for name in ["timer", "ttyS0"] {
        let count: u64 = irq_line(name)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(count > 0, "{name} never interrupted");
    }
    let local: u64 = out
        .lines()
        .find(|l| l.trim_start().starts_with("LOC:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("LOC line");
    assert!(local > 100, "local APIC timer interrupts: {local}");
    let md5 = std::fs::read_to_string(dir.join("known.md5")).unwrap();
    assert!(out.contains(md5.trim_end()), "md5sum line {md5:?} missing");
    let sum: u32 = (1..=100).map(|i| i * i).sum();
    assert!(out.contains(&format!("LEAP-ARITH: {sum}")));

    // Deterministic, whichever tier runs the code: the JIT run is
    // byte-for-byte the same.
    let jit_err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{jit_err}");
    assert!(
        jit_err
            .lines()
            .any(|l| l.starts_with("leap: jit:") && !l.contains(" 0 compiled")),
        "the JIT compiled nothing:\n{jit_err}"
    );
    assert_eq!(
        retired(&err),
        retired(&text(&second.stderr)),
        "instruction counts differ"
    );
    assert!(
        first.stdout == second.stdout,
        "serial output differs between --jit off and --jit on"
    );
}

#[test]
fn debian_installer_reaches_its_first_dialog() {
    let dir = linux_dir();
    let kernel = dir.join("linux");
    let initrd = dir.join("initrd.gz");
    let o = leap(&[
        "-m",
        "512",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--append",
        "console=ttyS0",
        "--timeout",
        "2400",
        "--expect-serial",
        "Choose the language to be used",
    ])
    .output()
    .expect("run leap");
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr:\n{err}\nserial tail:\n{}",
        {
            let s = text(&o.stdout);
            s[s.len().saturating_sub(3000)..].to_string()
        }
    );
    assert!(err.contains("expected text appeared on serial"), "{err}");
}
