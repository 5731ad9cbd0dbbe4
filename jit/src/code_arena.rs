//! Executable memory for one code generation: one reservation, filled
//! from the bottom, never freed piecemeal.
//!
//! Cranelift-jit's own providers give every finalized function at least a
//! page of its own (and the system one a mapping of its own), because they
//! flip each finished page from writable to executable. Leap finalizes
//! after every block, so blocks of a few hundred bytes each took a page: an
//! mmap and an mprotect per compile, tens of thousands of mappings over a
//! boot, and chained blocks that each sit on a different page (an iTLB
//! miss per transition). Here the whole reservation is mapped readable,
//! writable and executable once (as QEMU's TCG buffer is by default) and
//! blocks are packed one after another.
//!
//! Safety of writing next to running code: a block's bytes are written
//! before its address is published (over the compile channel), and bytes
//! already published are never written again; x86 keeps instruction
//! fetch coherent with such stores. Hosts that need an explicit
//! instruction-cache flush use cranelift-jit's own provider instead (see
//! [`CodeArena::new`]).

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;
use std::io;

pub struct CodeArena {
    base: *mut u8,
    size: usize,
    used: usize,
}

// SAFETY: the arena is a plain address range; the `Jit` that owns it (on
// the compile thread) is the only writer.
unsafe impl Send for CodeArena {}

impl CodeArena {
    /// Reserve `size` bytes of address space. Pages cost memory only once
    /// code is written to them. None where the host is not x86-64 Linux or
    /// the mapping is refused (W^X policies): the caller then uses
    /// cranelift-jit's default provider.
    pub fn new(size: usize) -> Option<CodeArena> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            // SAFETY: a fresh anonymous mapping; no existing memory is
            // touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return None;
            }
            Some(CodeArena {
                base: p as *mut u8,
                size,
                used: 0,
            })
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            let _ = size;
            None
        }
    }
}

impl JITMemoryProvider for CodeArena {
    fn allocate(&mut self, size: usize, align: u64, _kind: JITMemoryKind) -> io::Result<*mut u8> {
        let align = (align as usize).max(1);
        let start = self.used.next_multiple_of(align);
        if self.base.is_null() || start + size > self.size {
            return Err(io::Error::other("code arena full"));
        }
        self.used = start + size;
        // SAFETY: within the reservation (checked above).
        Ok(unsafe { self.base.add(start) })
    }

    unsafe fn free_memory(&mut self) {
        if self.base.is_null() {
            return;
        }
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        // SAFETY: the mapping made in `new`; the caller guarantees no code
        // in it runs any more.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.size);
        }
        self.base = std::ptr::null_mut();
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        // Already executable; x86 needs no cache maintenance.
        Ok(())
    }
}

impl Drop for CodeArena {
    fn drop(&mut self) {
        // SAFETY: the module (and with it this provider) is dropped only by
        // `CodeOwner`, once no block of the generation can run; see there.
        unsafe { self.free_memory() }
    }
}
