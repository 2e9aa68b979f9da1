//! The archive's name pool at run time: each pooled name is made the
//! interpreter's interned str once per process, however many modules point
//! at it.
//!
//! The dump pre-wrote every slot that names a pool entry with the entry's
//! address at the preferred base. When interning keeps the entry (no equal
//! str was interned before), those slots are already right and relocation
//! writes nothing; only the entry itself is written (interned state, hash).
//! When the interpreter had interned an equal str first (its static names,
//! a name of an unarchived module), every slot is switched to that one.

use super::{ffi, sys};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

pub struct Pool {
    /// Addresses of the pool in the mapping.
    range: Range<usize>,
    /// Entry address → the interned str it stands for in this process.
    /// Locked only to look up and to record, never across interning (which
    /// may run Python that relocates another module meanwhile); two
    /// concurrent internings of one entry give the same str.
    interned: Mutex<HashMap<usize, usize>>,
}

impl Pool {
    pub fn new(range: Range<usize>) -> Self {
        Self { range, interned: Mutex::new(HashMap::new()) }
    }

    pub fn contains(&self, address: usize) -> bool {
        self.range.contains(&address)
    }

    /// The interned str for pool entry `entry`, for one more slot that
    /// holds a reference to it (counted when that str is not the entry).
    ///
    /// # Safety
    /// `entry` is a shape-checked str entry of this pool; GIL held.
    pub unsafe fn intern(&self, entry: usize) -> Result<usize, String> {
        let known = self.interned.lock().unwrap_or_else(|e| e.into_inner()).get(&entry).copied();
        if let Some(interned) = known {
            if interned != entry {
                // SAFETY: an interned str of this process (recorded below); GIL held.
                unsafe { ffi::Py_INCREF(interned as *mut ffi::PyObject) };
            }
            return Ok(interned);
        }
        // SAFETY: `entry` is a str checked in shape (caller) whose only
        // pointer is its type, written here as relocation would (compare
        // first: at the preferred base of a non-PIE build it is right and
        // the page stays clean); then interned as any archived name is.
        let interned = unsafe {
            let op = entry as *mut sys::PyObject;
            let str_type = std::ptr::addr_of_mut!(sys::PyUnicode_Type);
            if (*op).ob_type != str_type {
                (*op).ob_type = str_type;
            }
            let mut s = op.cast::<ffi::PyObject>();
            ffi::PyUnicode_InternInPlace(&mut s);
            s as usize
        };
        // A nested call may have recorded it meanwhile: the same str.
        self.interned.lock().unwrap_or_else(|e| e.into_inner()).insert(entry, interned);
        Ok(interned)
    }
}
