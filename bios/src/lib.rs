//! leap-bios: firmware and direct-boot loaders: multiboot (v1) ELF kernels,
//! Linux bzImages (32-bit boot protocol) and raw BIOS ROM images.

pub mod acpi;
pub mod e820;
pub mod linux;
pub mod mptable;
pub mod multiboot;
pub mod rom;

use std::fmt;

/// A boot image that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}
