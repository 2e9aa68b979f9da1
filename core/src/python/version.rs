//! What differs between the CPython versions cds supports, in one place.
//!
//! The rest of the glue asks this module how to make an object archivable
//! (refcount, runtime-only fields) and never tests versions itself.

use super::sys;

/// Refcount stored in archived objects. 3.11 has no immortal objects, so the
/// count is biased far above anything a program can reach: decrements never
/// bring it to zero, and `_Py_Dealloc`'s guard is only a last defence.
#[cfg(not(Py_3_12))]
pub const ARCHIVED_REFCNT: sys::Py_ssize_t = 1 << 40;

/// Resets the fields of a copied code object that only make sense in the
/// process that owned the original (caches, weakrefs, extra data), so the
/// archived copy looks like a freshly created code object.
#[cfg(not(Py_3_12))]
pub fn reset_code_runtime_fields(bytes: &mut [u8]) {
    use super::objects::put;
    use std::mem::offset_of;
    use std::ptr::null_mut;
    type Code = sys::PyCodeObject;
    put(bytes, offset_of!(Code, co_weakreflist), null_mut::<sys::PyObject>());
    put(bytes, offset_of!(Code, _co_code), null_mut::<sys::PyObject>());
    put(bytes, offset_of!(Code, _co_linearray), null_mut::<std::ffi::c_char>());
    put(bytes, offset_of!(Code, co_extra), null_mut::<std::ffi::c_void>());
    // Quickening starts over in every process (3.11: after co_warmup calls).
    put(bytes, offset_of!(Code, co_warmup), sys::QUICKENING_INITIAL_WARMUP_VALUE as std::ffi::c_short);
}

/// Pointer fields of a code object that refer to other objects, all archived.
#[cfg(not(Py_3_12))]
pub const CODE_OBJECT_FIELDS: &[usize] = {
    use std::mem::offset_of;
    type Code = sys::PyCodeObject;
    &[
        offset_of!(Code, co_consts),
        offset_of!(Code, co_names),
        offset_of!(Code, co_exceptiontable),
        offset_of!(Code, co_localsplusnames),
        offset_of!(Code, co_localspluskinds),
        offset_of!(Code, co_filename),
        offset_of!(Code, co_name),
        offset_of!(Code, co_qualname),
        offset_of!(Code, co_linetable),
    ]
};

#[cfg(Py_3_12)]
compile_error!("cds core: this CPython version has no version module yet (see docs/PORTING.md)");

/// How a str is laid out: its size in bytes and whether it was interned.
/// Only compact, ready strings (all that the compiler and marshal make) are archivable.
#[cfg(not(Py_3_12))]
pub struct StrLayout {
    pub size: usize,
    pub ascii: bool,
    pub interned: bool,
}

/// # Safety
/// `op` is a live exact str.
#[cfg(not(Py_3_12))]
pub unsafe fn str_layout(op: *mut sys::PyObject) -> Option<StrLayout> {
    use std::mem::size_of;
    // SAFETY: op is a live str (caller), whose header is a PyASCIIObject.
    let s = unsafe { &*op.cast::<sys::PyASCIIObject>() };
    if s.state.compact() == 0 || s.state.ready() == 0 {
        return None;
    }
    let len = s.length as usize;
    let ascii = s.state.ascii() != 0;
    let size = if ascii {
        size_of::<sys::PyASCIIObject>() + len + 1
    } else {
        size_of::<sys::PyCompactUnicodeObject>() + (len + 1) * s.state.kind() as usize
    };
    Some(StrLayout { size, ascii, interned: s.state.interned() != 0 })
}

/// Clears what a str caches per process: its hash (randomised per process),
/// its interned state (interning happens again at load), and derived buffers.
#[cfg(not(Py_3_12))]
pub fn reset_str_runtime_fields(bytes: &mut [u8], ascii: bool) {
    use super::objects::{get, put};
    use std::mem::offset_of;
    use std::ptr::null_mut;
    type Ascii = sys::PyASCIIObject;
    type Compact = sys::PyCompactUnicodeObject;
    put(bytes, offset_of!(Ascii, hash), -1 as sys::Py_hash_t);
    let mut state: sys::PyASCIIObject__bindgen_ty_1 = get(bytes, offset_of!(Ascii, state));
    state.set_interned(sys::SSTATE_NOT_INTERNED);
    put(bytes, offset_of!(Ascii, state), state);
    put(bytes, offset_of!(Ascii, wstr), null_mut::<sys::wchar_t>());
    if !ascii {
        put(bytes, offset_of!(Compact, utf8_length), 0 as sys::Py_ssize_t);
        put(bytes, offset_of!(Compact, utf8), null_mut::<std::ffi::c_char>());
        put(bytes, offset_of!(Compact, wstr_length), 0 as sys::Py_ssize_t);
    }
}

/// Clears a bytes object's cached hash.
#[cfg(not(Py_3_12))]
pub fn reset_bytes_runtime_fields(bytes: &mut [u8]) {
    super::objects::put(bytes, std::mem::offset_of!(sys::PyBytesObject, ob_shash), -1 as sys::Py_hash_t);
}
