//! The interning hook: a name interned by code that is not archived (a C
//! extension module as it loads, a module imported without the archive)
//! becomes the archive's pooled str when a pool holds an equal one
//! (docs/DESIGN.md, "Pooled names").
//!
//! Without it, that code's str would be the interpreter's interned one, and
//! every archived slot naming it would be rewritten in every process (633
//! slots on 165 otherwise clean pages for seven stdlib modules). The
//! interpreter asks [`_PyCds_PooledName`] before it adds a str to its
//! interned dict (patch `0009-unicodeobject-cds-pooled-names`, 3.13, main
//! interpreter); the pool's index (`format::names_index`) offers entries,
//! each shape-checked and compared in full before it is handed out.
//!
//! An archive offers its pool once the pool passed its checksum (or the
//! stamp vouched for it) and until it is dropped or left unused.

use super::{ffi, pool::Pool, version};
use crate::format::{names_index, Archive};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One archive's verified pool, as the hook reads it.
struct Offered {
    /// The mapping: its start address and length.
    base: usize,
    len: usize,
    archive: Archive,
    pool: Arc<Pool>,
}

/// The pools offered, in the order they were (the default archive's
/// first). Locked only by the hook and by offer/withdraw, none of which
/// calls into the interpreter while holding it.
static OFFERED: Mutex<Vec<Offered>> = Mutex::new(Vec::new());
/// Whether any pool is offered: the hook's only cost otherwise.
static ANY_OFFERED: AtomicBool = AtomicBool::new(false);

fn offered() -> std::sync::MutexGuard<'static, Vec<Offered>> {
    OFFERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Offers the pool of `archive`, mapped at `map` (whose pool passed its
/// checksum), to the hook until [`withdraw`] is called with `map`'s start.
pub fn offer(map: &[u8], archive: &Archive, pool: &Arc<Pool>) {
    let base = map.as_ptr() as usize;
    let mut all = offered();
    if !all.iter().any(|o| o.base == base) {
        all.push(Offered { base, len: map.len(), archive: archive.clone(), pool: Arc::clone(pool) });
        ANY_OFFERED.store(true, Ordering::Relaxed);
    }
}

/// Withdraws the pool of the mapping that starts at `base`, before it is
/// unmapped or left unused.
pub fn withdraw(base: usize) {
    let mut all = offered();
    all.retain(|o| o.base != base);
    ANY_OFFERED.store(!all.is_empty(), Ordering::Relaxed);
}

/// Called by the interpreter's interning (`intern_common`, patch
/// `0009-unicodeobject-cds-pooled-names`) with a str it is about to add to
/// its interned dict: an archived str equal to it that is not interned yet
/// (immortal, its type set), which the interpreter then interns instead;
/// or NULL. Never fails and never calls into the interpreter.
///
/// # Safety
/// `s` is a live exact str that is not interned; the GIL is held.
#[no_mangle]
pub unsafe extern "C" fn _PyCds_PooledName(s: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if !ANY_OFFERED.load(Ordering::Relaxed) {
        return std::ptr::null_mut();
    }
    // SAFETY: s is a live exact str (caller).
    let Some(name) = (unsafe { version::live_str_name_key(s.cast()) }) else { return std::ptr::null_mut() };
    let hash = names_index::hash(name.0, name.1);
    for o in offered().iter() {
        // SAFETY: an offered mapping stays mapped until withdrawn (a
        // `Served` withdraws before its mapping is dropped or leaked), and
        // the list is locked; the GIL serialises writers of these bytes.
        let bytes = unsafe { std::slice::from_raw_parts(o.base as *const u8, o.len) };
        let names = o.archive.names();
        for at in o.archive.names_index(bytes).candidates(hash) {
            let at = names.start + at;
            let Some(size) = o.pool.shapes().entry_size(bytes, &names, at) else { continue };
            let entry = &bytes[at..at + size];
            if version::str_name_key(entry) != Some(name) {
                continue;
            }
            if version::str_is_interned(entry) {
                // The interpreter's dict holds it: interning finds it there.
                return std::ptr::null_mut();
            }
            // SAFETY: a str entry of this pool that passed its shape check;
            // GIL held (caller).
            return unsafe { o.pool.typed_entry(o.base + at) };
        }
    }
    std::ptr::null_mut()
}
