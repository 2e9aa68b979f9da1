//! What differs between the CPython versions cds supports, in one place.
//!
//! Each `vX_Y` module exports the same items; the glue never tests versions
//! itself. Adding a version means adding a module here (see docs/PORTING.md).
//!
//! - `ARCHIVED_REFCNT`: the refcount archived objects carry; `str_refcnt`
//!   for strings, which debug builds may require to be mortal.
//! - `CODE_OBJECT_FIELDS` (shared below): a code object's object pointers;
//!   `CODE_NULL_FIELDS`: its pointers the archive leaves NULL (caches).
//! - `archived_str_shape(bytes)`, `archived_long_size(bytes)`: the size an
//!   archived str or int claims, checked against its span (`shapes`).
//! - `prepare_code_copy(op, bytes, serial)`: turns a copied code object into the state
//!   of a fresh one (bytecode, caches, per-process fields cleared).
//! - `check_code(bytes, serials)`, `code_serials_unused(serials)`,
//!   `reserve_code_versions(end)`: the code serials an archive gives its code
//!   objects (3.13 `co_version`), which the interpreter must not hand out.
//! - `str_layout(op)` / `reset_str_runtime_fields(bytes, ascii)` (which names
//!   any pointer into the str's own body to relocate).
//! - `reset_bytes_runtime_fields(bytes)`, `long_size(op)`.
//! - `static_str_address(op)`: where interning a name will point (a static
//!   str of the interpreter's image).
//! - `BODIES_RUN_FROM_COPIES`, `private_body_copy(op)`: module and class
//!   bodies run from private copies where that keeps pages clean (3.13).
//! - `MAKING_A_FUNCTION_WRITES_ITS_DOC`, `RUNNING_A_BODY_WRITES_ITS_CONSTANTS`:
//!   whether defining a function writes its docstring and running a body its
//!   constants (3.11's refcounts), so the dump lays them out with the written
//!   objects.
//! - `interned_dict()`: the interpreter's interned strs, in interning order
//!   (3.13; null where it is private).
//! - `marshal_sort_key(item)`: the bytes marshal sorts a set's item by.

#[cfg(not(Py_3_12))]
mod v3_11;
#[cfg(not(Py_3_12))]
pub use v3_11::*;

// 3.12 and 3.13 (3.12 only as a stock interpreter, through the extension).
#[cfg(all(Py_3_12, not(Py_3_14)))]
mod v3_12;
#[cfg(all(Py_3_12, not(Py_3_14)))]
pub use v3_12::*;

#[cfg(Py_3_14)]
compile_error!("cds core: this CPython version has no version module yet (see docs/PORTING.md)");

use super::shapes::Holds;
use super::{objects, sys};
use std::mem::{offset_of, size_of};

/// A pointer field of a code object and what it must hold.
pub struct CodeField {
    pub offset: usize,
    pub holds: Holds,
}

/// Object pointers of a code object (the same fields in 3.11 and 3.13; a
/// version that differs defines its own list in its module). The writer
/// archives each; the shape check requires each, of the kind named here.
pub const CODE_OBJECT_FIELDS: &[CodeField] = {
    type Code = sys::PyCodeObject;
    const fn field(offset: usize, holds: Holds) -> CodeField {
        CodeField { offset, holds }
    }
    &[
        field(offset_of!(Code, co_consts), Holds::Tuple),
        field(offset_of!(Code, co_names), Holds::TupleOfStr),
        field(offset_of!(Code, co_exceptiontable), Holds::Bytes),
        field(offset_of!(Code, co_localsplusnames), Holds::TupleOfStr),
        field(offset_of!(Code, co_localspluskinds), Holds::Bytes),
        field(offset_of!(Code, co_filename), Holds::Str),
        field(offset_of!(Code, co_name), Holds::Str),
        field(offset_of!(Code, co_qualname), Holds::Str),
        field(offset_of!(Code, co_linetable), Holds::Bytes),
    ]
};

// The shape check meets a code object's pointer fields in this order and
// matches them to records sorted by slot: they must ascend.
const _: () = {
    let fields = CODE_OBJECT_FIELDS;
    let mut i = 1;
    while i < fields.len() {
        assert!(fields[i - 1].offset < fields[i].offset, "CODE_OBJECT_FIELDS must ascend");
        i += 1;
    }
};

/// What the shape check learns from an archived str's header.
pub struct StrShape {
    /// Its size in bytes.
    pub size: usize,
    /// `(slot, target)` offsets of a pointer into its own body (3.11 `wstr`).
    pub interior: Option<(usize, usize)>,
}

/// Bytes of a compact str of `len` code points: the header, then the
/// characters and a terminating NUL of `kind` bytes each (1 for ASCII).
pub fn compact_str_size(len: usize, ascii: bool, kind: usize) -> usize {
    if ascii {
        size_of::<sys::PyASCIIObject>() + len + 1
    } else {
        size_of::<sys::PyCompactUnicodeObject>() + (len + 1) * kind
    }
}

/// What names a compact str for the pool's index (`format::names_index`):
/// a tag saying how its characters are stored (kind, ASCII bit) and their
/// bytes. Two strs are equal exactly when both are, as `unicode_eq`
/// compares them (the interpreter stores each str in its narrowest kind).
/// None when `bytes`, from the str's start, is not a compact str that
/// holds its characters.
pub fn str_name_key(bytes: &[u8]) -> Option<(u8, &[u8])> {
    type Ascii = sys::PyASCIIObject;
    if bytes.len() < size_of::<Ascii>() {
        return None;
    }
    let state: sys::PyASCIIObject__bindgen_ty_1 = objects::get(bytes, offset_of!(Ascii, state));
    let (kind, ascii) = (state.kind() as usize, state.ascii() != 0);
    if state.compact() == 0 || !matches!(kind, 1 | 2 | 4) || (ascii && kind != 1) {
        return None;
    }
    let length = usize::try_from(objects::get::<sys::Py_ssize_t>(bytes, offset_of!(Ascii, length))).ok()?;
    let start = if ascii { size_of::<Ascii>() } else { size_of::<sys::PyCompactUnicodeObject>() };
    let data = bytes.get(start..start.checked_add(length.checked_mul(kind)?)?)?;
    Some((kind as u8 | u8::from(ascii) << 3, data))
}

/// The statically allocated str (3.13 `_Py_ID`, 3.11's deep-frozen names)
/// that interning a str equal to archived str `entry` gives in this build,
/// if one: where the dump pre-wrote slots naming `entry` (`dump::writer`),
/// and the same in every process of the build whose image lies where this
/// one's does. Interns an
/// equal str to ask (what any process does to use the name). GIL held.
///
/// # Safety
/// GIL held.
pub unsafe fn static_str_equal_to(entry: &[u8]) -> Option<u64> {
    let (tag, data) = str_name_key(entry)?;
    let kind = usize::from(tag & 7);
    // SAFETY: `data` holds `data.len() / kind` characters of `kind` bytes;
    // the new str is ours until released below. GIL held (caller).
    unsafe {
        let mut s = super::ffi::PyUnicode_FromKindAndData(kind as _, data.as_ptr().cast(), (data.len() / kind) as _);
        if s.is_null() {
            super::ffi::PyErr_Clear();
            return None;
        }
        super::ffi::PyUnicode_InternInPlace(&mut s);
        let found = static_str_address(s.cast());
        super::ffi::Py_DECREF(s);
        found
    }
}

/// Whether compact str `bytes` (at least its header) says it is interned.
pub fn str_is_interned(bytes: &[u8]) -> bool {
    let state: sys::PyASCIIObject__bindgen_ty_1 = objects::get(bytes, offset_of!(sys::PyASCIIObject, state));
    state.interned() != 0
}

/// [`str_name_key`] of a live str.
///
/// # Safety
/// `op` is a live exact str.
pub unsafe fn live_str_name_key<'a>(op: *mut sys::PyObject) -> Option<(u8, &'a [u8])> {
    // SAFETY: op is a live exact str (caller).
    let layout = unsafe { str_layout(op) }?;
    // SAFETY: a live compact str is one allocation of this size (its
    // header, the characters, their NUL).
    str_name_key(unsafe { std::slice::from_raw_parts(op.cast::<u8>(), layout.size) })
}

/// How a str is laid out: its size in bytes, whether it is ASCII-compact
/// and whether it was interned. Only compact strings are archivable.
pub struct StrLayout {
    pub size: usize,
    pub ascii: bool,
    pub interned: bool,
}

/// The checks of an archived str header that every version shares, given
/// the `kind` and `ascii` bits of its state: a known kind (ASCII means 1),
/// a header inside `bytes`, no cached hash and, for a non-ASCII str, no
/// cached UTF-8 buffer. The version checks the rest of its state.
fn check_compact_str_header(bytes: &[u8], kind: usize, ascii: bool) -> Result<(), &'static str> {
    if !matches!(kind, 1 | 2 | 4) || (ascii && kind != 1) {
        return Err("a str with an unknown kind");
    }
    if !ascii && bytes.len() < size_of::<sys::PyCompactUnicodeObject>() + kind {
        return Err("a str whose header exceeds its span");
    }
    if objects::get::<sys::Py_hash_t>(bytes, offset_of!(sys::PyASCIIObject, hash)) != -1 {
        return Err("a str with a cached hash");
    }
    if !ascii && objects::get::<usize>(bytes, offset_of!(sys::PyCompactUnicodeObject, utf8)) != 0 {
        return Err("a str with a cached UTF-8 buffer");
    }
    Ok(())
}

/// The size of archived compact str `bytes` (from its start to its span's
/// end), of the length its header claims: the characters and their NUL
/// terminator must lie inside `bytes`.
fn str_size_within(bytes: &[u8], ascii: bool, kind: usize) -> Result<usize, &'static str> {
    let length = usize::try_from(objects::get::<sys::Py_ssize_t>(bytes, offset_of!(sys::PyASCIIObject, length)))
        .ok()
        .filter(|n| *n <= bytes.len())
        .ok_or("a str whose length exceeds its span")?;
    let size = compact_str_size(length, ascii, kind);
    if size > bytes.len() || bytes[size - kind..size].iter().any(|b| *b != 0) {
        return Err("a str whose length exceeds its span or that lacks its NUL");
    }
    Ok(size)
}

/// The size of archived int `bytes` whose `count` digits start at `first`:
/// they must lie inside `bytes`, each below `PyLong_BASE`.
fn int_size_within(bytes: &[u8], first: usize, count: usize) -> Result<usize, &'static str> {
    let size = count
        .max(1)
        .checked_mul(size_of::<sys::digit>())
        .and_then(|n| n.checked_add(first))
        .filter(|n| *n <= bytes.len())
        .ok_or("an int whose digits exceed its span")?;
    let base = 1 << sys::PyLong_SHIFT;
    if bytes[first..size].chunks_exact(size_of::<sys::digit>()).any(|d| objects::get::<sys::digit>(d, 0) >= base) {
        return Err("an int with an out-of-range digit");
    }
    Ok(size)
}

/// The bits of a str's `state` word that name fields (interned, kind,
/// compact, ascii, and ready or statically_allocated: 8 in 3.11 and 3.13).
const STR_STATE_NAMED_BITS: u32 = 0xff;

/// Zeroes what CPython never initialises in a str's header: the unnamed
/// bits of `state` and the padding after it, up to `next_field` (they hold
/// whatever the allocator returned), so that the same module dumps to the
/// same bytes (reproducible archives).
pub fn clear_str_state_padding(bytes: &mut [u8], next_field: usize) {
    let at = offset_of!(sys::PyASCIIObject, state);
    let word: u32 = objects::get(bytes, at);
    objects::put(bytes, at, word & STR_STATE_NAMED_BITS);
    bytes[at + size_of::<u32>()..next_field].fill(0);
}

/// Zeroes the padding inside a copied code object (after the int
/// `_co_firsttraceable`, before the pointer `co_extra`, in 3.11 and 3.13:
/// every other field is packed), which holds whatever the allocator
/// returned: the same module then dumps to the same bytes.
pub fn clear_code_padding(bytes: &mut [u8]) {
    type Code = sys::PyCodeObject;
    let end_of_int = offset_of!(Code, _co_firsttraceable) + size_of::<std::ffi::c_int>();
    bytes[end_of_int..offset_of!(Code, co_extra)].fill(0);
}
