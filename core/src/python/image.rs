//! The interpreter's own loaded image (the executable, or libpython when
//! it is shared): where its static objects lie. A static's address is the
//! same in every process of a non-PIE build, so archives may point at it;
//! a PIE executable or a shared libpython moves with ASLR.

use std::ops::Range;
use std::sync::OnceLock;

use super::sys;

/// The address whose image is the interpreter's: its str type.
pub fn anchor() -> usize {
    std::ptr::addr_of!(sys::PyUnicode_Type) as usize
}

/// The image's loaded segments and its load bias, read once.
struct Image {
    segments: Vec<Range<usize>>,
    bias: usize,
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let (segments, bias) = segments();
        Image { segments, bias }
    })
}

/// Whether `address` lies in one of the interpreter image's loaded segments.
pub fn holds(address: usize) -> bool {
    image().segments.iter().any(|s| s.contains(&address))
}

/// Whether the image lies where its link put it (a non-PIE executable: no
/// load bias), so that its statics have these addresses in every process.
pub fn fixed() -> bool {
    image().bias == 0
}

/// The loaded segments and load bias of the object holding [`anchor`],
/// from the dynamic linker.
fn segments() -> (Vec<Range<usize>>, usize) {
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: libc::size_t, found: *mut libc::c_void) -> i32 {
        // SAFETY: the dynamic linker hands a valid `info` whose `dlpi_phdr`
        // holds `dlpi_phnum` headers; `found` is the (segments, bias) pair
        // passed below.
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
                *found.cast::<(Vec<Range<usize>>, usize)>() = (loaded, info.dlpi_addr as usize);
                return 1;
            }
            0
        }
    }
    let mut found: (Vec<Range<usize>>, usize) = (Vec::new(), usize::MAX);
    // SAFETY: `visit` matches the callback type and only writes `found`,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut found).cast()) };
    found
}
