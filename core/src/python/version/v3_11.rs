//! CPython 3.11: no immortal objects, lazy quickening (`co_warmup`), str with
//! `wstr` and `ready`, longs with a signed `ob_size` digit count.

use super::{compact_str_size, StrLayout};
use crate::python::objects::{get, put};
use crate::python::{ffi, sys};
use std::mem::{offset_of, size_of};
use std::ptr::null_mut;

type Code = sys::PyCodeObject;

/// 3.11 has no immortal objects: the count is biased far above anything a
/// program can reach, so decrements never bring it to zero (`_Py_Dealloc`'s
/// guard is only a last defence). Every INCREF/DECREF still writes it.
pub const ARCHIVED_REFCNT: sys::Py_ssize_t = 1 << 40;

/// Refcount of an archived str: the same bias as every object.
pub const fn str_refcnt(_interned: bool) -> sys::Py_ssize_t {
    ARCHIVED_REFCNT
}

/// Offset of `ob_refcnt`.
pub const OB_REFCNT: usize = offset_of!(sys::PyObject, ob_refcnt);

/// Makes the copy `bytes` of live code object `op` look freshly created:
/// deoptimised bytecode (quickening starts over after `co_warmup` calls) and
/// no per-process caches.
///
/// # Safety
/// `op` is a live code object, `bytes` its copy; GIL held.
pub unsafe fn prepare_code_copy(
    op: *mut sys::PyObject,
    bytes: &mut [u8],
    _serial: impl FnOnce() -> Result<u32, String>,
) -> Result<(), String> {
    super::clear_code_padding(bytes);
    // SAFETY: forwarded from the caller; co_code is a new bytes reference we release.
    let plain = unsafe {
        let co_code = ffi::PyObject_GetAttrString(op.cast(), c"co_code".as_ptr());
        if co_code.is_null() {
            ffi::PyErr_Clear();
            return Err("cannot read co_code".into());
        }
        let data = std::slice::from_raw_parts(
            ffi::PyBytes_AsString(co_code).cast::<u8>(),
            ffi::PyBytes_Size(co_code) as usize,
        )
        .to_vec();
        ffi::Py_DECREF(co_code);
        data
    };
    let start = offset_of!(Code, co_code_adaptive);
    if start + plain.len() != bytes.len() {
        return Err("co_code does not match the code object's size".into());
    }
    bytes[start..].copy_from_slice(&plain);
    put(bytes, offset_of!(Code, co_weakreflist), null_mut::<sys::PyObject>());
    put(bytes, offset_of!(Code, _co_code), null_mut::<sys::PyObject>());
    put(bytes, offset_of!(Code, _co_linearray), null_mut::<std::ffi::c_char>());
    put(bytes, offset_of!(Code, co_extra), null_mut::<std::ffi::c_void>());
    put(bytes, offset_of!(Code, co_warmup), sys::QUICKENING_INITIAL_WARMUP_VALUE as std::ffi::c_short);
    Ok(())
}

/// 3.11 code objects have no version: nothing to check.
pub fn check_code(_bytes: &[u8], _serials: &std::ops::Range<u32>) -> Result<(), &'static str> {
    Ok(())
}

/// 3.11 hands out no code versions.
///
/// # Safety
/// None (GIL held, as for 3.13).
pub unsafe fn code_serials_unused(_serials: &std::ops::Range<u32>) -> bool {
    true
}

/// 3.11 keeps its interned dict private (`interned` in unicodeobject.c)
/// and has no start-up hook (patch 0008 is 3.13's): null, no start-up names.
///
/// # Safety
/// None.
pub unsafe fn interned_dict() -> *mut sys::PyObject {
    std::ptr::null_mut()
}

/// # Safety
/// `op` is a live exact str.
pub unsafe fn str_layout(op: *mut sys::PyObject) -> Option<StrLayout> {
    // SAFETY: op is a live str (caller), whose header is a PyASCIIObject.
    let s = unsafe { &*op.cast::<sys::PyASCIIObject>() };
    if s.state.compact() == 0 || s.state.ready() == 0 {
        return None;
    }
    let ascii = s.state.ascii() != 0;
    let size = compact_str_size(s.length as usize, ascii, s.state.kind() as usize);
    Some(StrLayout { size, ascii, interned: s.state.interned() != 0 })
}

/// 3.11 code objects carry no version (function versions come from a
/// counter of their own): nothing to reserve.
///
/// # Safety
/// GIL held.
pub unsafe fn reserve_code_versions(_end: u32) {}

/// The address of `op` if it is a str of the interpreter's own image: the
/// deep-frozen modules' names, which start-up interns before anything else
/// (`_PyStaticCode_InternStrings`), so that interning a name gives the same
/// static str in every process of this image.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn static_str_address(op: *mut sys::PyObject) -> Option<u64> {
    // SAFETY: op is live (caller).
    let is_str = unsafe { (*op).ob_type == std::ptr::addr_of_mut!(sys::PyUnicode_Type) };
    (is_str && crate::python::image::holds(op as usize)).then_some(op as u64)
}

/// Clears what a str caches per process: its hash (randomised per process),
/// its interned state (interning happens again at load), derived buffers.
/// Returns `(slot, target)` offsets of a pointer into the str's own body
/// that must be relocated: a 4-byte-kind str's `wstr` is its data (the
/// layout `PyUnicode_New` makes and debug builds check).
pub fn reset_str_runtime_fields(bytes: &mut [u8], ascii: bool) -> Option<(usize, usize)> {
    type Ascii = sys::PyASCIIObject;
    type Compact = sys::PyCompactUnicodeObject;
    put(bytes, offset_of!(Ascii, hash), -1 as sys::Py_hash_t);
    let mut state: sys::PyASCIIObject__bindgen_ty_1 = get(bytes, offset_of!(Ascii, state));
    state.set_interned(sys::SSTATE_NOT_INTERNED);
    put(bytes, offset_of!(Ascii, state), state);
    super::clear_str_state_padding(bytes, offset_of!(Ascii, wstr));
    put(bytes, offset_of!(Ascii, wstr), null_mut::<sys::wchar_t>());
    if ascii {
        return None;
    }
    put(bytes, offset_of!(Compact, utf8_length), 0 as sys::Py_ssize_t);
    put(bytes, offset_of!(Compact, utf8), null_mut::<std::ffi::c_char>());
    put(bytes, offset_of!(Compact, wstr_length), 0 as sys::Py_ssize_t);
    if state.kind() as usize == size_of::<sys::wchar_t>() {
        let length: sys::Py_ssize_t = get(bytes, offset_of!(Ascii, length));
        put(bytes, offset_of!(Compact, wstr_length), length);
        put(bytes, offset_of!(Ascii, wstr), 0usize); // relocated to the data
        return Some((offset_of!(Ascii, wstr), size_of::<Compact>()));
    }
    None
}

/// Clears a bytes object's cached hash.
pub fn reset_bytes_runtime_fields(bytes: &mut [u8]) {
    put(bytes, offset_of!(sys::PyBytesObject, ob_shash), -1 as sys::Py_hash_t);
}

/// Size of a live int: `ob_size` is the signed digit count.
///
/// # Safety
/// `op` is a live exact int.
pub unsafe fn long_size(op: *mut sys::PyObject) -> usize {
    // SAFETY: op is a live int (caller), a PyVarObject in 3.11.
    let digits = unsafe { (*op.cast::<sys::PyVarObject>()).ob_size.unsigned_abs() };
    offset_of!(sys::_longobject, ob_digit) + digits.max(1) * size_of::<sys::digit>()
}

/// Code object pointers the archive leaves NULL: per-process caches
/// (`prepare_code_copy`), which CPython follows when set.
pub const CODE_NULL_FIELDS: &[usize] = &[
    offset_of!(Code, co_weakreflist),
    offset_of!(Code, _co_code),
    offset_of!(Code, _co_linearray),
    offset_of!(Code, co_extra),
];

/// The size archived str `bytes` (from its start to its span's end) claims,
/// if its header is one `reset_str_runtime_fields` leaves: compact and
/// ready, a valid kind, not interned, no cached hash or UTF-8 buffer, `wstr`
/// empty except for a 4-byte kind (where it is the data: named as interior),
/// and a terminating NUL inside the span.
pub fn archived_str_shape(bytes: &[u8]) -> Result<super::StrShape, &'static str> {
    type Ascii = sys::PyASCIIObject;
    type Compact = sys::PyCompactUnicodeObject;
    let state: sys::PyASCIIObject__bindgen_ty_1 = get(bytes, offset_of!(Ascii, state));
    let (kind, ascii) = (state.kind() as usize, state.ascii() != 0);
    super::check_compact_str_header(bytes, kind, ascii)?;
    if state.compact() == 0 || state.ready() == 0 {
        return Err("a str that is not compact and ready");
    }
    if state.interned() != sys::SSTATE_NOT_INTERNED {
        return Err("a str archived as interned");
    }
    let mut interior = None;
    if ascii {
        if get::<usize>(bytes, offset_of!(Ascii, wstr)) != 0 {
            return Err("an ASCII str with a wstr buffer");
        }
    } else {
        let wstr_length: sys::Py_ssize_t = get(bytes, offset_of!(Compact, wstr_length));
        if kind == size_of::<sys::wchar_t>() {
            if wstr_length != get::<sys::Py_ssize_t>(bytes, offset_of!(Ascii, length)) {
                return Err("a str whose wstr length differs from its length");
            }
            interior = Some((offset_of!(Ascii, wstr), size_of::<Compact>()));
        } else if wstr_length != 0 || get::<usize>(bytes, offset_of!(Ascii, wstr)) != 0 {
            return Err("a str with a wstr buffer");
        }
    }
    let size = super::str_size_within(bytes, ascii, kind)?;
    Ok(super::StrShape { size, interior })
}

/// The size archived int `bytes` claims: its digit count (`|ob_size|`)
/// within the span and each digit below `PyLong_BASE`.
pub fn archived_long_size(bytes: &[u8]) -> Result<usize, &'static str> {
    let count: sys::Py_ssize_t = get(bytes, offset_of!(sys::PyVarObject, ob_size));
    let first = offset_of!(sys::_longobject, ob_digit);
    super::int_size_within(bytes, first, count.unsigned_abs())
}

/// marshal sorts a set by the bytes of each item dumped as it iterates the
/// set, with borrowed references (`_PySet_NextEntry`): an item only the set
/// holds is written without the FLAG_REF bit. Returns a new bytes reference
/// or NULL.
///
/// # Safety
/// `item` is a live object the caller holds no reference of its own to; GIL held.
pub unsafe fn marshal_sort_key(item: *mut sys::PyObject) -> *mut sys::PyObject {
    // SAFETY: forwarded from the caller.
    unsafe { sys::PyMarshal_WriteObjectToString(item, sys::Py_MARSHAL_VERSION as std::ffi::c_int) }
}

/// 3.11 writes every archived object it INCREFs, so copying bodies would
/// keep no page clean: they run from the archive.
pub const BODIES_RUN_FROM_COPIES: bool = false;

/// Making a function INCREFs the first constant of its code when that is a
/// str (`PyFunction_New`: the docstring, `func_doc`), and 3.11 writes every
/// refcount: every function a module defines writes its docstring's page
/// when the module is imported, whether the function runs or not.
pub const MAKING_A_FUNCTION_WRITES_ITS_DOC: bool = true;

/// A module or class body runs at every import, and each constant it loads
/// (`LOAD_CONST` INCREFs it) is written: 3.11 writes every refcount.
pub const RUNNING_A_BODY_WRITES_ITS_CONSTANTS: bool = true;

/// None: see [`BODIES_RUN_FROM_COPIES`].
///
/// # Safety
/// None.
pub unsafe fn private_body_copy(_op: *mut sys::PyObject) -> Option<*mut sys::PyObject> {
    None
}
