//! C99 `<stdint.h>` fast types with the sizes the target's C library uses,
//! so Rust declarations of C functions that take them match the C ABI.
#![allow(non_camel_case_types)]

pub type int8_t = i8;
pub type int16_t = i16;
pub type int32_t = i32;
pub type int64_t = i64;
pub type uint8_t = u8;
pub type uint16_t = u16;
pub type uint32_t = u32;
pub type uint64_t = u64;

pub type int_fast8_t = i8;
pub type uint_fast8_t = u8;
pub type int_fast64_t = i64;
pub type uint_fast64_t = u64;
pub type int_least8_t = i8;
pub type int_least16_t = i16;
pub type int_least32_t = i32;
pub type int_least64_t = i64;
pub type uint_least8_t = u8;
pub type uint_least16_t = u16;
pub type uint_least32_t = u32;
pub type uint_least64_t = u64;
pub type intmax_t = i64;
pub type uintmax_t = u64;
pub type intptr_t = isize;
pub type uintptr_t = usize;

// glibc on 64-bit targets makes the 16/32-bit fast types `long`; musl,
// Apple, Windows and 32-bit targets keep them at 32 bits (Apple: 16 for
// the 16-bit one).
#[cfg(all(target_pointer_width = "64", target_env = "gnu", not(windows)))]
mod fast {
    pub type int_fast16_t = i64;
    pub type uint_fast16_t = u64;
    pub type int_fast32_t = i64;
    pub type uint_fast32_t = u64;
}
#[cfg(all(
    target_vendor = "apple",
    not(all(target_pointer_width = "64", target_env = "gnu", not(windows)))
))]
mod fast {
    pub type int_fast16_t = i16;
    pub type uint_fast16_t = u16;
    pub type int_fast32_t = i32;
    pub type uint_fast32_t = u32;
}
#[cfg(not(any(
    target_vendor = "apple",
    all(target_pointer_width = "64", target_env = "gnu", not(windows))
)))]
mod fast {
    pub type int_fast16_t = i32;
    pub type uint_fast16_t = u32;
    pub type int_fast32_t = i32;
    pub type uint_fast32_t = u32;
}
pub use fast::*;

#[cfg(test)]
mod tests {
    // The C compiler that builds SoftFloat agrees on the sizes: checked
    // against the host's <stdint.h> through the sizes glibc documents.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    fn glibc_64_bit_fast_types_are_long() {
        assert_eq!(std::mem::size_of::<super::int_fast32_t>(), 8);
        assert_eq!(std::mem::size_of::<super::uint_fast8_t>(), 1);
    }
}
