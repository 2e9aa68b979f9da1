//! What differs between the CPython versions cds supports, in one place.
//!
//! Each `vX_Y` module exports the same items; the glue never tests versions
//! itself. Adding a version means adding a module here (see docs/PORTING.md).
//!
//! - `ARCHIVED_REFCNT`: the refcount archived objects carry.
//! - `CODE_OBJECT_FIELDS`: offsets of a code object's object pointers.
//! - `prepare_code_copy(op, bytes)`: turns a copied code object into the state
//!   of a fresh one (bytecode, caches, per-process fields cleared).
//! - `init_code(code)`: per-process state given to a code object at load.
//! - `str_layout(op)` / `reset_str_runtime_fields(bytes, ascii)`.
//! - `reset_bytes_runtime_fields(bytes)`, `long_size(op)`.

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

/// How a str is laid out: its size in bytes, whether it is ASCII-compact
/// and whether it was interned. Only compact strings are archivable.
pub struct StrLayout {
    pub size: usize,
    pub ascii: bool,
    pub interned: bool,
}
