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

use super::shapes::{lazily_zeroed, PoolShapes};
use super::{ffi, sys};
use crate::format::OBJECT_ALIGN;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Pool {
    /// Addresses of the pool in the mapping.
    range: Range<usize>,
    /// Which entries passed their shape check (by file offset).
    shapes: PoolShapes,
    /// Per 16-byte pool position, the interned str its entry stands for in
    /// this process (0: not yet). Not locked: interning may run Python that
    /// relocates another module meanwhile, and two internings of one entry
    /// give the same str. Zeroed memory the kernel maps lazily: only the
    /// positions of entries used cost a page.
    interned: Vec<AtomicUsize>,
}

impl Pool {
    pub fn new(range: Range<usize>) -> Self {
        let interned = lazily_zeroed(range.len() / OBJECT_ALIGN);
        Self { shapes: PoolShapes::for_pool(range.len()), range, interned }
    }

    /// Which entries passed their shape check in this process.
    pub fn shapes(&self) -> &PoolShapes {
        &self.shapes
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
        let slot = &self.interned[(entry - self.range.start) / OBJECT_ALIGN];
        let known = slot.load(Ordering::Acquire);
        if known != 0 {
            let interned = known;
            if interned != entry {
                // SAFETY: an interned str of this process (recorded below); GIL held.
                unsafe { ffi::Py_INCREF(interned as *mut ffi::PyObject) };
            }
            return Ok(interned);
        }
        // SAFETY: `entry` is a str checked in shape (caller), typed, then
        // interned as any archived name is.
        let interned = unsafe {
            let mut s = self.typed_entry(entry);
            ffi::PyUnicode_InternInPlace(&mut s);
            s as usize
        };
        // A nested call may have recorded it meanwhile: the same str.
        slot.store(interned, Ordering::Release);
        Ok(interned)
    }

    /// The str that entry `entry`, interned before, stands for, for `slots`
    /// more slots that hold a reference to it (counted when that str is not
    /// the entry).
    ///
    /// # Safety
    /// [`intern`](Self::intern) returned for `entry` in this process; GIL held.
    pub unsafe fn interned_again(&self, entry: usize, slots: usize) -> usize {
        let interned = self.interned[(entry - self.range.start) / OBJECT_ALIGN].load(Ordering::Acquire);
        debug_assert_ne!(interned, 0, "entry not interned before");
        if interned != entry {
            for _ in 0..slots {
                // SAFETY: an interned str of this process (recorded by `intern`); GIL held.
                unsafe { ffi::Py_INCREF(interned as *mut ffi::PyObject) };
            }
        }
        interned
    }

    /// Pool entry `entry` as a str object: its only pointer, its type,
    /// written as relocation would (compared first: at the preferred base
    /// of a non-PIE build it is right and the page stays clean).
    ///
    /// # Safety
    /// `entry` is a shape-checked str entry of this pool; GIL held.
    pub unsafe fn typed_entry(&self, entry: usize) -> *mut ffi::PyObject {
        let op = entry as *mut sys::PyObject;
        let str_type = std::ptr::addr_of_mut!(sys::PyUnicode_Type);
        // SAFETY: a str entry of the mapping (caller), whose header is a
        // PyObject; the GIL serialises this write.
        unsafe {
            if (*op).ob_type != str_type {
                (*op).ob_type = str_type;
            }
        }
        op.cast()
    }
}
