//! The archive's memory mapping: private and writable (copy-on-write), at the
//! address the dump laid pointers out for when that address is free.
//!
//! As the JDK maps its CDS archive at the requested base, mapping where the
//! dump assumed means relocation finds every slot already right (with a
//! non-PIE interpreter, whose types and singletons sit at fixed addresses)
//! and writes nothing: pages stay clean, shared between processes, and are
//! never copied. Anywhere else, relocation rewrites the slots and works the
//! same, only dearer.

use crate::format::PAGE;
use memmap2::{MmapMut, MmapOptions};
use std::fs::File;
use std::ops::{Deref, DerefMut, Range};
use std::os::fd::AsRawFd;

pub enum Mapping {
    /// At the archive's preferred base (a raw mapping: memmap2 takes no address).
    Fixed { ptr: *mut u8, len: usize },
    /// Wherever the kernel chose.
    Anywhere(MmapMut),
}

// SAFETY: `Fixed` owns its mapping as memmap2's `MmapMut` (which is Send)
// owns `Anywhere`'s: created by `map`, reached from Rust only through this
// value (Deref/DerefMut) and unmapped only by its Drop. A mapping belongs to
// the process, not to a thread, so the owner may move between threads. (The
// interpreter also reads and writes archived objects through raw pointers,
// always with the GIL held; Rust reaches a serving `Mapping` only through
// the STATE mutex, which is locked with the GIL held.)
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `file` (`len` bytes) privately, at `base` if that range is free.
    pub fn map(file: &File, len: usize, base: u64) -> std::io::Result<Self> {
        if base != 0 && base.is_multiple_of(4096) {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping
            // (unlike MAP_FIXED): it fails with EEXIST instead. Kernels before
            // 4.17 ignore the flag and treat the address as a hint, hence the
            // address check below.
            let ptr = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                if ptr as u64 == base {
                    return Ok(Self::Fixed { ptr: ptr.cast(), len });
                }
                // SAFETY: we just created this mapping of `len` bytes.
                unsafe { libc::munmap(ptr, len) };
            }
        }
        // SAFETY: a private mapping: our writes never reach the file. Archives
        // are replaced by rename (write_atomic), which leaves this inode intact;
        // truncating an archive in place while it is in use is unsupported
        // (SIGBUS), as for any mapped file.
        Ok(Self::Anywhere(unsafe { MmapOptions::new().len(len).map_copy(file) }?))
    }

    pub fn at_preferred_base(&self) -> bool {
        matches!(self, Self::Fixed { .. })
    }

    /// The mapping's first byte, for writers that must not borrow the whole
    /// mapping while they run (`format::apply_relocations_at`).
    pub fn base_ptr(&mut self) -> *mut u8 {
        match self {
            Self::Fixed { ptr, .. } => *ptr,
            Self::Anywhere(m) => m.as_mut_ptr(),
        }
    }
}

/// Has the kernel copy the mapping's pages under `range` for writing now,
/// in one call, where relocation is about to write into nearly every one
/// of them (each object's type slot, when the interpreter's image moved;
/// only the inner pages of a constant longer than a page are copied for
/// nothing): without it, each page's first write traps and is copied on
/// its own. Kernels before 5.14 lack `MADV_POPULATE_WRITE`; the pages are
/// then copied at their first write, as before.
pub fn populate_for_writing(range: Range<usize>) {
    let start = range.start & !(PAGE - 1);
    let end = range.end.next_multiple_of(PAGE);
    if start < end {
        // SAFETY: the caller's range lies inside a live private mapping
        // (rounded out to its pages, which the mapping spans whole);
        // populating changes no byte, it faults the pages in as a write would.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE) };
    }
}

impl Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: ptr..ptr+len is our live mapping (unmapped only in Drop).
            Self::Fixed { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Self::Anywhere(m) => m,
        }
    }
}

impl DerefMut for Mapping {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: as in deref; &mut self makes this the only view.
            Self::Fixed { ptr, len } => unsafe { std::slice::from_raw_parts_mut(*ptr, *len) },
            Self::Anywhere(m) => m,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Self::Fixed { ptr, len } = *self {
            // SAFETY: only reached for a mapping that never served objects
            // (a refused archive): a serving one is never dropped.
            unsafe { libc::munmap(ptr.cast(), len) };
        }
    }
}
