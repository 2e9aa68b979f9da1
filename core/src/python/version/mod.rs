//! What differs between the CPython versions cds supports, in one place.
//!
//! Each `vX_Y` module exports the same items; the glue never tests versions
//! itself. Adding a version means adding a module here (see docs/PORTING.md).
//!
//! - `ARCHIVED_REFCNT`: the refcount archived objects carry; `str_refcnt`
//!   for strings, which debug builds may require to be mortal.
//! - `CODE_OBJECT_FIELDS` (shared below): offsets of a code object's object pointers.
//! - `prepare_code_copy(op, bytes)`: turns a copied code object into the state
//!   of a fresh one (bytecode, caches, per-process fields cleared).
//! - `init_code(code)`: per-process state given to a code object at load.
//! - `str_layout(op)` / `reset_str_runtime_fields(bytes, ascii)` (which names
//!   any pointer into the str's own body to relocate).
//! - `reset_bytes_runtime_fields(bytes)`, `long_size(op)`.
//! - `static_str_address(op)`: where interning a name will point (3.13).

#[cfg(not(Py_3_12))]
mod v3_11;
#[cfg(not(Py_3_12))]
pub use v3_11::*;

#[cfg(all(Py_3_13, not(Py_3_14)))]
mod v3_13;
#[cfg(all(Py_3_13, not(Py_3_14)))]
pub use v3_13::*;

#[cfg(any(all(Py_3_12, not(Py_3_13)), Py_3_14))]
compile_error!("cds core: this CPython version has no version module yet (see docs/PORTING.md)");

use super::sys;
use std::mem::{offset_of, size_of};

/// Object pointers of a code object (the same fields in 3.11 and 3.13; a
/// version that differs defines its own list in its module).
pub const CODE_OBJECT_FIELDS: &[usize] = {
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

/// Bytes of a compact str of `len` code points: the header, then the
/// characters and a terminating NUL of `kind` bytes each (1 for ASCII).
pub fn compact_str_size(len: usize, ascii: bool, kind: usize) -> usize {
    if ascii {
        size_of::<sys::PyASCIIObject>() + len + 1
    } else {
        size_of::<sys::PyCompactUnicodeObject>() + (len + 1) * kind
    }
}

/// How a str is laid out: its size in bytes, whether it is ASCII-compact
/// and whether it was interned. Only compact strings are archivable.
pub struct StrLayout {
    pub size: usize,
    pub ascii: bool,
    pub interned: bool,
}
