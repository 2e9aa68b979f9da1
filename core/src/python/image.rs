//! The interpreter's own loaded image (the executable, or libpython when
//! it is shared): where its static objects lie. A static's address is the
//! same in every process of a non-PIE build, so archives may point at it.

use std::ops::Range;
use std::sync::OnceLock;

use super::sys;

/// The address whose image is the interpreter's: its str type.
pub fn anchor() -> usize {
    std::ptr::addr_of!(sys::PyUnicode_Type) as usize
}

/// Whether `address` lies in one of the interpreter image's loaded segments.
pub fn holds(address: usize) -> bool {
    static SEGMENTS: OnceLock<Vec<Range<usize>>> = OnceLock::new();
    SEGMENTS.get_or_init(segments).iter().any(|s| s.contains(&address))
}

/// The loaded segments of the object holding [`anchor`], read once from the
/// dynamic linker.
fn segments() -> Vec<Range<usize>> {
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: libc::size_t, found: *mut libc::c_void) -> i32 {
        // SAFETY: the dynamic linker hands a valid `info` whose `dlpi_phdr`
        // holds `dlpi_phnum` headers; `found` is the Vec passed below.
        unsafe {
            let info = &*info;
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
            let loaded: Vec<Range<usize>> = headers
                .iter()
                .filter(|h| h.p_type == libc::PT_LOAD)
                .map(|h| {
                    let start = info.dlpi_addr as usize + h.p_vaddr as usize;
                    start..start + h.p_memsz as usize
                })
                .collect();
            if loaded.iter().any(|s| s.contains(&anchor())) {
                *found.cast::<Vec<Range<usize>>>() = loaded;
                return 1;
            }
            0
        }
    }
    let mut found: Vec<Range<usize>> = Vec::new();
    // SAFETY: `visit` matches the callback type and only writes `found`,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut found).cast()) };
    found
}
