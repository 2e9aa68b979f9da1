//! Runtime objects an archive refers to by id instead of copying them.
//!
//! Types and singletons move with ASLR, and identity matters for them
//! (`x is None`, small ints, the empty tuple, 1-character strings), so the
//! dumper stores an id and the loader writes this process's address.
//! The ids are part of the archive format: never renumber, only add.

use super::shapes::Kind;
use super::{as_sys, ffi, sys};
use crate::format::OBJECT_TYPES;
use std::ptr::addr_of_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const NONE: u32 = 0;
pub const TRUE: u32 = 1;
pub const FALSE: u32 = 2;
pub const ELLIPSIS: u32 = 3;
pub const EMPTY_TUPLE: u32 = 4;
pub const EMPTY_BYTES: u32 = 5;
pub const EMPTY_STR: u32 = 6;
/// Not a singleton in CPython: one object per [`SymbolTable`] (see `lookup`).
pub const EMPTY_FROZENSET: u32 = 7;

// The type ids are the format's table (`OBJECT_TYPES`, in this order).
pub const TYPE_CODE: u32 = OBJECT_TYPES[0].0;
pub const TYPE_TUPLE: u32 = OBJECT_TYPES[1].0;
pub const TYPE_STR: u32 = OBJECT_TYPES[2].0;
pub const TYPE_BYTES: u32 = OBJECT_TYPES[3].0;
pub const TYPE_INT: u32 = OBJECT_TYPES[4].0;
pub const TYPE_FLOAT: u32 = OBJECT_TYPES[5].0;
pub const TYPE_COMPLEX: u32 = OBJECT_TYPES[6].0;

/// Small ints -5..=256 (CPython's cached range): id = SMALL_INT + value + 5.
pub const SMALL_INT: u32 = 256;
pub const SMALL_INT_MIN: i64 = -5;
pub const SMALL_INT_MAX: i64 = 256;
/// 1-character latin-1 strings: id = LATIN1_CHAR + code point.
pub const LATIN1_CHAR: u32 = 1024;
/// 1-byte bytes objects: id = BYTE_CHAR + byte. Read, no longer written
/// (see `symbol_of`).
pub const BYTE_CHAR: u32 = 1280;
/// 1-character latin-1 strings that were interned: the same object as
/// `LATIN1_CHAR`, interned at load as unmarshalling a name interns it (3.11
/// does not intern these singletons at start-up; 3.13 does).
pub const LATIN1_CHAR_INTERNED: u32 = 1536;
/// One past the last id.
pub const SYMBOL_COUNT: u32 = 1792;

/// Whether symbol `id` names a type (what an object's `ob_type` holds).
pub fn is_type(id: u32) -> bool {
    OBJECT_TYPES.iter().any(|(type_id, _)| *type_id == id)
}

/// Whether symbol `id` is a static object of the interpreter's image, the
/// same object at the same address in every process that loads the image
/// at the same address (`stamp`); the others are made per process (the
/// empty frozenset) or need a call at load (interning a 1-character name).
/// `stamp::write` checks the claim for each slot before relying on it.
pub fn is_static(id: u32) -> bool {
    id != EMPTY_FROZENSET && !(LATIN1_CHAR_INTERNED..SYMBOL_COUNT).contains(&id)
}

/// What runtime object `id` is, for the shape check (None: no such id).
pub fn kind_of(id: u32) -> Option<Kind> {
    Some(match id {
        EMPTY_TUPLE => Kind::Tuple { len: 0 },
        EMPTY_BYTES => Kind::Bytes { len: 0 },
        EMPTY_STR => Kind::Str,
        id if (SMALL_INT..SMALL_INT + 262).contains(&id) => Kind::Int,
        id if (LATIN1_CHAR..LATIN1_CHAR + 256).contains(&id) => Kind::Str,
        id if (LATIN1_CHAR_INTERNED..LATIN1_CHAR_INTERNED + 256).contains(&id) => Kind::Str,
        id if (BYTE_CHAR..BYTE_CHAR + 256).contains(&id) => Kind::Bytes { len: 1 },
        NONE | TRUE | FALSE | ELLIPSIS | EMPTY_FROZENSET => Kind::Other,
        id if is_type(id) => Kind::Other,
        _ => return None,
    })
}

/// Resolved addresses, filled in on first use (0 = not yet resolved).
///
/// Shared, not locked: resolving may allocate (the empty frozenset), and an
/// allocation may run Python that relocates another module meanwhile, so no
/// borrow or lock is held across [`lookup`]. When such a nested call
/// resolved the same id first, its address is kept and ours is dropped
/// unused (a leaked reference to an empty object), so every user of the
/// table sees one address per id.
pub struct SymbolTable {
    cache: Vec<AtomicUsize>,
}

impl SymbolTable {
    pub fn new() -> Self {
        Self { cache: (0..SYMBOL_COUNT).map(|_| AtomicUsize::new(0)).collect() }
    }

    /// The address of runtime object `id` in this process.
    pub fn resolve(&self, id: u32) -> Option<usize> {
        let slot = self.cache.get(id as usize)?;
        let known = slot.load(Ordering::Acquire);
        if known != 0 {
            return Some(known);
        }
        let found = lookup(id)? as usize;
        match slot.compare_exchange(0, found, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(found),
            Err(first) => Some(first),
        }
    }
}

/// Finds symbol `id`. Objects obtained from constructors are the runtime's
/// cached singletons, except the empty frozenset: `PyFrozenSet_New` makes a
/// new one at each call (3.11 and 3.13), so one table's first call gives the
/// object that stands for every archived empty frozenset. The reference taken
/// here is deliberately kept, so that object lives as long as the process.
fn lookup(id: u32) -> Option<*mut sys::PyObject> {
    // SAFETY: called with the GIL held (relocation runs during import); the
    // statics are the interpreter's own objects and the constructors return
    // its cached singletons.
    let op = unsafe {
        match id {
            NONE => addr_of_mut!(sys::_Py_NoneStruct),
            TRUE => addr_of_mut!(sys::_Py_TrueStruct).cast(),
            FALSE => addr_of_mut!(sys::_Py_FalseStruct).cast(),
            ELLIPSIS => addr_of_mut!(sys::_Py_EllipsisObject),
            EMPTY_TUPLE => as_sys(ffi::PyTuple_New(0)),
            EMPTY_BYTES => as_sys(ffi::PyBytes_FromStringAndSize(std::ptr::null(), 0)),
            EMPTY_STR => as_sys(ffi::PyUnicode_FromStringAndSize(std::ptr::null(), 0)),
            EMPTY_FROZENSET => as_sys(ffi::PyFrozenSet_New(std::ptr::null_mut())),
            TYPE_CODE => addr_of_mut!(sys::PyCode_Type).cast(),
            TYPE_TUPLE => addr_of_mut!(sys::PyTuple_Type).cast(),
            TYPE_STR => addr_of_mut!(sys::PyUnicode_Type).cast(),
            TYPE_BYTES => addr_of_mut!(sys::PyBytes_Type).cast(),
            TYPE_INT => addr_of_mut!(sys::PyLong_Type).cast(),
            TYPE_FLOAT => addr_of_mut!(sys::PyFloat_Type).cast(),
            TYPE_COMPLEX => addr_of_mut!(sys::PyComplex_Type).cast(),
            id if (SMALL_INT..SMALL_INT + 262).contains(&id) => {
                as_sys(ffi::PyLong_FromLong((id - SMALL_INT) as std::ffi::c_long + SMALL_INT_MIN as std::ffi::c_long))
            }
            id if (LATIN1_CHAR..LATIN1_CHAR + 256).contains(&id) => {
                as_sys(ffi::PyUnicode_FromOrdinal((id - LATIN1_CHAR) as std::ffi::c_int))
            }
            id if (LATIN1_CHAR_INTERNED..LATIN1_CHAR_INTERNED + 256).contains(&id) => {
                let mut op = ffi::PyUnicode_FromOrdinal((id - LATIN1_CHAR_INTERNED) as std::ffi::c_int);
                if !op.is_null() {
                    ffi::PyUnicode_InternInPlace(&mut op);
                }
                as_sys(op)
            }
            id if (BYTE_CHAR..BYTE_CHAR + 256).contains(&id) => {
                let byte = (id - BYTE_CHAR) as u8;
                as_sys(ffi::PyBytes_FromStringAndSize((&byte as *const u8).cast(), 1))
            }
            _ => return None,
        }
    };
    if op.is_null() {
        // SAFETY: GIL held; a failed constructor left an exception we do not propagate here.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Some(op)
}

/// The symbol id of a runtime object that must not be copied, if it is one.
///
/// # Safety
/// `op` is a live object and the GIL is held.
pub unsafe fn symbol_of(op: *mut sys::PyObject) -> Option<u32> {
    // SAFETY: op is live (caller), so reading its type and contents is sound.
    unsafe {
        let ty = (*op).ob_type;
        if op == addr_of_mut!(sys::_Py_NoneStruct) {
            return Some(NONE);
        }
        if op == addr_of_mut!(sys::_Py_TrueStruct).cast() {
            return Some(TRUE);
        }
        if op == addr_of_mut!(sys::_Py_FalseStruct).cast() {
            return Some(FALSE);
        }
        if op == addr_of_mut!(sys::_Py_EllipsisObject) {
            return Some(ELLIPSIS);
        }
        if ty == addr_of_mut!(sys::PyLong_Type) {
            let mut overflow = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(op.cast(), &mut overflow);
            if overflow == 0 && (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&v) {
                return Some(SMALL_INT + (v - SMALL_INT_MIN) as u32);
            }
        } else if ty == addr_of_mut!(sys::PyTuple_Type) {
            if ffi::PyTuple_Size(op.cast()) == 0 {
                return Some(EMPTY_TUPLE);
            }
        } else if ty == addr_of_mut!(sys::PyBytes_Type) {
            // One-byte bytes are not `BYTE_CHAR` symbols: marshal gives each
            // its own object (it fills a new bytes in place), so a normal
            // import's constant is not the runtime's cached one (identity,
            // and marshal's sharing test, tell them apart).
            if ffi::PyBytes_Size(op.cast()) == 0 {
                return Some(EMPTY_BYTES);
            }
        } else if ty == addr_of_mut!(sys::PyUnicode_Type) {
            let n = ffi::PyUnicode_GetLength(op.cast());
            if n == 0 {
                return Some(EMPTY_STR);
            }
            if n == 1 {
                let ch = ffi::PyUnicode_ReadChar(op.cast(), 0);
                if ch < 256 {
                    let interned = super::version::str_layout(op).is_some_and(|l| l.interned);
                    return Some(if interned { LATIN1_CHAR_INTERNED } else { LATIN1_CHAR } + ch);
                }
            }
        } else if ty == addr_of_mut!(sys::PyFrozenSet_Type) && ffi::PySet_Size(op.cast()) == 0 {
            return Some(EMPTY_FROZENSET);
        }
        None
    }
}
