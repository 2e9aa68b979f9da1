//! The names the interpreter interns during its own start-up, as the dump
//! learns them (docs/DESIGN.md, "Start-up names").
//!
//! By the time `_cds` starts (importlib's external bootstrap), a 3.13
//! interpreter has interned about a thousand names from C: builtins and
//! exception names, the method names of its builtin types, the names of
//! importlib's frozen modules. An archived slot naming one must hold *that*
//! str, so before format 6 every such slot was rewritten in every process
//! (9,417 slots for seven stdlib modules, 197 hot pages dirtied by nothing
//! else). The dump now marks these names in the pool, which lays them out
//! first (`header::NAMES_STARTUP_SIZE`); at run time the interpreter interns
//! them before its own (`state::_PyCds_InternStartupNames`) and adopts the
//! archive's strs.
//!
//! The interpreter's interned dict keeps insertion order, so counting its
//! entries when `_cds` starts ([`note_interned_at_init`], one read) is
//! enough to name them later ([`interned_at_init`]): its first entries.
//! (A name interned mortal and freed before `_cds` starts would let a later
//! one in; interning it early is harmless, as for every start-up name.)

use super::{ffi, version};
use std::collections::HashSet;
use std::sync::atomic::{AtomicIsize, Ordering};

/// How many strs the interned dict held when `_cds` started in this runtime.
static INTERNED_AT_INIT: AtomicIsize = AtomicIsize::new(0);

/// Counts the interpreter's interned strs now (`_cds` starting). GIL held.
pub fn note_interned_at_init() {
    // SAFETY: GIL held (caller); the dict is the interpreter's, alive while it is.
    let count = unsafe {
        let dict = version::interned_dict();
        if dict.is_null() {
            0
        } else {
            ffi::PyDict_Size(dict.cast())
        }
    };
    INTERNED_AT_INIT.store(count, Ordering::Relaxed);
}

/// The strs (by address) the interpreter had interned when `_cds` started:
/// the names every process of this build interns before any module is
/// imported. Empty where the interned dict is private (3.11).
///
/// # Safety
/// GIL held.
pub unsafe fn interned_at_init() -> HashSet<usize> {
    let wanted = INTERNED_AT_INIT.load(Ordering::Relaxed).max(0) as usize;
    let mut names = HashSet::with_capacity(wanted);
    // SAFETY: GIL held (caller); PyDict_Next hands out borrowed keys, only
    // their addresses are kept, and the dict is not changed meanwhile.
    unsafe {
        let dict = version::interned_dict().cast::<ffi::PyObject>();
        if dict.is_null() {
            return names;
        }
        let (mut pos, mut key, mut value) = (0, std::ptr::null_mut(), std::ptr::null_mut());
        while names.len() < wanted && ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) != 0 {
            names.insert(key as usize);
        }
    }
    names
}
