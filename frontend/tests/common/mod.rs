//! What the integration tests share: paths, running the `leap` binary and
//! reading its report, and fetching Debian's packages once per test binary.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run `test-images/linux/SCRIPT OUT` (the fetch scripts are idempotent and
/// cache in OUT), where OUT is `SUBDIR` of the test target directory.
pub fn fetch(script: &str, subdir: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(subdir);
    let path = repo().join("test-images/linux").join(script);
    let st = Command::new("bash")
        .arg(&path)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(st.success(), "{} failed", path.display());
    out
}

/// The `leap` binary with `args`, stdin closed (a console guest must not
/// wait for the test's terminal).
pub fn leap(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leap"));
    c.args(args);
    c.stdin(std::process::Stdio::null());
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The count from leap's "N guest instructions retired" line.
pub fn retired(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("leap: ")?
                .strip_suffix(" guest instructions retired")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in stderr:\n{stderr}"))
}
