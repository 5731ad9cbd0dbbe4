//! The `leap` command: builds a machine from the command line and runs it
//! headless. Exit status: the guest's isa-debug-exit status when it uses
//! port 0xF4; 0 when it halts for good, powers off, resets the machine or
//! is quit with Ctrl-A X; 2 for bad
//! input; 124 when a time or instruction limit ends the run; 125 when the
//! guest's CPU shuts down.

use clap::Parser;
use leap_machine::EntryChoice;
use leap_machine::{
    Boot, ClockMode, Config, JitMode, Machine, RunOutcome, Serial, DEFAULT_JIT_THRESHOLD,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "leap", version, about = "Leap: a full-system x86 PC emulator")]
struct Args {
    /// Guest RAM in MiB (a suffix M or G is accepted).
    #[arg(short = 'm', long = "memory", default_value = "128", value_parser = parse_mem)]
    memory: u64,
    /// Kernel to boot directly: a Linux bzImage or a multiboot ELF.
    #[arg(long, conflicts_with = "bios")]
    kernel: Option<PathBuf>,
    /// Initial ramdisk for a Linux kernel.
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, default_value = "", requires = "kernel")]
    append: String,
    /// Where COM1 goes: stdio, file:PATH or none.
    #[arg(long, default_value = "stdio", value_parser = parse_serial)]
    serial: Serial,
    /// Virtual clock: deterministic (time = instructions retired; identical
    /// runs) or realtime (host time).
    #[arg(long, default_value = "deterministic", value_parser = parse_clock)]
    clock: ClockMode,
    /// Print the POST codes the guest writes to port 0x80.
    #[arg(long)]
    trace_post: bool,
    /// Stop with status 0 as soon as TEXT appears on COM1; if the run ends
    /// any other way first, the status is 1 (limits keep 124).
    #[arg(long, value_name = "TEXT")]
    expect_serial: Option<String>,
    /// Raw BIOS ROM image (a multiple of 64 KiB) run from the reset vector.
    #[arg(long)]
    bios: Option<PathBuf>,
    /// End the run after this many seconds of host time.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// End the run after this many guest instructions.
    #[arg(long, value_name = "N")]
    max_insns: Option<u64>,
    /// Print every executed instruction (with registers) to stderr.
    #[arg(long)]
    trace: bool,
    /// Print the number of guest instructions retired (and JIT statistics)
    /// when the run ends.
    #[arg(long)]
    stats: bool,
    /// Compile hot guest code to host code: off (interpreter only), on
    /// (the default: blocks that ran --jit-threshold times, compiled in the
    /// background), always (every block before its first run).
    #[arg(long, default_value = "on", value_parser = parse_jit)]
    jit: JitChoice,
    /// Linux entry point: auto (64-bit when the bzImage has one), 32 or 64.
    #[arg(long, value_name = "auto|32|64", default_value = "auto", value_parser = parse_entry)]
    linux_entry: EntryChoice,
    /// Runs of a block before `--jit on` compiles it.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JIT_THRESHOLD,
          value_parser = clap::value_parser!(u32).range(1..))]
    jit_threshold: u32,
}

#[derive(Clone, Copy, Debug)]
enum JitChoice {
    Off,
    On,
    Always,
}

fn parse_jit(s: &str) -> Result<JitChoice, String> {
    match s {
        "off" => Ok(JitChoice::Off),
        "on" => Ok(JitChoice::On),
        "always" => Ok(JitChoice::Always),
        _ => Err(format!("'{s}' is not one of off, on, always")),
    }
}

fn parse_entry(s: &str) -> Result<EntryChoice, String> {
    match s {
        "auto" => Ok(EntryChoice::Auto),
        "32" => Ok(EntryChoice::Bits32),
        "64" => Ok(EntryChoice::Bits64),
        _ => Err(format!("'{s}' is not one of auto, 32, 64")),
    }
}

fn parse_mem(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1024),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("'{s}' is not a memory size in MiB"))
}

fn parse_serial(s: &str) -> Result<Serial, String> {
    match s {
        "stdio" => Ok(Serial::Stdio),
        "none" => Ok(Serial::None),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(Serial::File(PathBuf::from(p))),
            _ => Err(format!("'{s}' is not stdio, file:PATH or none")),
        },
    }
}

fn parse_clock(s: &str) -> Result<ClockMode, String> {
    match s {
        "deterministic" => Ok(ClockMode::Deterministic),
        "realtime" => Ok(ClockMode::Realtime),
        _ => Err(format!("'{s}' is not deterministic or realtime")),
    }
}

fn read_file(path: &PathBuf, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn build_config(a: &Args) -> Result<Config, String> {
    let boot = if let Some(k) = &a.kernel {
        let image = read_file(k, "--kernel")?;
        // Loader errors are prefixed with the file they concern.
        if leap_machine::is_bzimage(&image) {
            let initrd = match &a.initrd {
                Some(p) => Some(read_file(p, "--initrd")?),
                None => None,
            };
            Boot::Linux {
                image,
                initrd,
                cmdline: a.append.clone(),
                entry: a.linux_entry,
            }
        } else if a.initrd.is_some() {
            return Err(format!(
                "--initrd: {} is not a Linux bzImage; only Linux takes an initrd",
                k.display()
            ));
        } else {
            Boot::Multiboot {
                image,
                cmdline: a.append.clone(),
            }
        }
    } else if let Some(b) = &a.bios {
        Boot::Rom {
            image: read_file(b, "--bios")?,
        }
    } else {
        return Err("nothing to boot: give --kernel FILE or --bios FILE".into());
    };
    let timeout = match a.timeout {
        Some(t) if !(t > 0.0 && t.is_finite()) => {
            return Err(format!(
                "--timeout: '{t}' is not a positive number of seconds"
            ))
        }
        Some(t) => Some(Duration::from_secs_f64(t)),
        None => None,
    };
    let mut cfg = Config::new(a.memory << 20, boot);
    cfg.max_insns = a.max_insns;
    cfg.timeout = timeout;
    cfg.trace = a.trace;
    cfg.clock = a.clock;
    cfg.serial = a.serial.clone();
    cfg.trace_post = a.trace_post;
    cfg.jit = match a.jit {
        JitChoice::Off => JitMode::Off,
        JitChoice::On => JitMode::On {
            threshold: a.jit_threshold,
        },
        JitChoice::Always => JitMode::Always,
    };
    if let Some(t) = &a.expect_serial {
        if t.is_empty() {
            return Err("--expect-serial: the text must not be empty".into());
        }
        cfg.expect_serial = Some(t.clone());
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leap: {e}");
            return ExitCode::from(2);
        }
    };
    let image_name = args
        .kernel
        .as_ref()
        .or(args.bios.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut m = match Machine::new(cfg, Box::new(std::io::stdout())) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("leap: {image_name}: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = m.run();
    if args.stats {
        eprintln!("leap: {} guest instructions retired", m.cpu.icount);
        if let Some(r) = m.cpu.tier_report() {
            eprintln!("leap: {r}");
        }
    }
    let expecting = args.expect_serial.is_some();
    let code = match outcome {
        RunOutcome::ExpectedText => {
            eprintln!(
                "leap: expected text appeared on serial after {} instructions",
                m.cpu.icount
            );
            0
        }
        RunOutcome::DebugExit(st) => st as u8,
        RunOutcome::HaltedForever => {
            eprintln!("leap: guest halted with interrupts disabled; stopping");
            0
        }
        RunOutcome::Reset(why) => {
            eprintln!("leap: guest reset the machine ({why}); stopping");
            0
        }
        RunOutcome::Quit => {
            eprintln!("leap: quit from the console (Ctrl-A X)");
            0
        }
        RunOutcome::PowerOff => {
            eprintln!("leap: guest powered off (ACPI S5); stopping");
            0
        }
        RunOutcome::Shutdown(msg) => {
            eprintln!("leap: guest CPU shut down: {msg}");
            125
        }
        RunOutcome::InstructionLimit => {
            eprintln!(
                "leap: instruction limit reached after {} instructions at {:04x}:{:08x}",
                m.cpu.icount,
                m.cpu.s.seg[leap_machine::CS].selector,
                m.cpu.s.rip
            );
            124
        }
        RunOutcome::Timeout => {
            eprintln!(
                "leap: timeout after {} guest instructions at {:04x}:{:08x}",
                m.cpu.icount,
                m.cpu.s.seg[leap_machine::CS].selector,
                m.cpu.s.rip
            );
            124
        }
    };
    // A run that had to show a text and ended without it did not succeed.
    let code = if expecting && !m.board.expect_seen && code != 124 {
        eprintln!("leap: the run ended before the --expect-serial text appeared");
        code.max(1)
    } else {
        code
    };
    drop(m);
    ExitCode::from(code)
}
