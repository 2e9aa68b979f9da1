//! Python objects to Rust values and back, for what `_cds` takes and returns.

use super::ffi;
use std::ptr::null_mut;

/// The UTF-8 contents of `op` if it is a str.
///
/// # Safety
/// GIL held; `op` is a live object.
pub unsafe fn str_value(op: *mut ffi::PyObject) -> Option<String> {
    // SAFETY: forwarded from the caller.
    unsafe {
        if ffi::PyUnicode_Check(op) == 0 {
            return None;
        }
        let mut len = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(op, &mut len);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
        // Always valid: the interpreter's own UTF-8 of the str.
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}

/// The str items of a sequence (other items are skipped; a non-sequence
/// gives an empty list), or None for None.
///
/// # Safety
/// GIL held; `op` is a live object.
pub unsafe fn str_list(op: *mut ffi::PyObject) -> Option<Vec<String>> {
    // SAFETY: forwarded from the caller.
    unsafe { str_list_map(op, |_, s| Some(s)) }
}

/// As [`str_list`], each str item passed through `map` (given the item,
/// borrowed, GIL held, and its contents), which may leave it out.
///
/// # Safety
/// GIL held; `op` is a live object.
pub unsafe fn str_list_map(
    op: *mut ffi::PyObject,
    map: impl Fn(*mut ffi::PyObject, String) -> Option<String>,
) -> Option<Vec<String>> {
    // SAFETY: forwarded from the caller; PySequence_Fast returns a new
    // reference we release, and so does PySequence_GetItem.
    unsafe {
        if op == ffi::Py_None() {
            return None;
        }
        let seq = ffi::PySequence_Fast(op, c"path must be a sequence".as_ptr());
        if seq.is_null() {
            ffi::PyErr_Clear();
            return Some(Vec::new());
        }
        let n = ffi::PySequence_Size(seq);
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n {
            let item = ffi::PySequence_GetItem(seq, i);
            if item.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            if let Some(s) = str_value(item).and_then(|s| map(item, s)) {
                out.push(s);
            }
            ffi::Py_DECREF(item);
        }
        ffi::Py_DECREF(seq);
        Some(out)
    }
}

/// A new str holding `s` (NULL with an exception set on failure).
///
/// # Safety
/// GIL held.
pub unsafe fn new_str(s: &str) -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller); s is valid UTF-8 of the given length.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t) }
}

/// A new reference to None.
///
/// # Safety
/// GIL held.
pub unsafe fn none() -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller); Py_None is always a valid object.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

/// A new bool.
///
/// # Safety
/// GIL held.
pub unsafe fn new_bool(value: bool) -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller).
    unsafe { ffi::PyBool_FromLong(value as _) }
}

/// Sets exception `exc` with message `msg` and returns NULL, for a function
/// to return.
///
/// # Safety
/// GIL held; `exc` is an exception type.
pub unsafe fn raise(exc: *mut ffi::PyObject, msg: &str) -> *mut ffi::PyObject {
    let msg = std::ffi::CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: GIL held (caller); msg is NUL-terminated.
    unsafe { ffi::PyErr_SetString(exc, msg.as_ptr()) };
    null_mut()
}

/// A new list of `(str, str)` tuples (NULL with an exception set on failure).
///
/// # Safety
/// GIL held.
pub unsafe fn pair_list(pairs: &[(String, String)]) -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller); every new reference is stolen by the tuple
    // (PyTuple_SetItem), stored by the list (PyList_Append, then released)
    // or released.
    unsafe {
        let list = ffi::PyList_New(0);
        if list.is_null() {
            return null_mut();
        }
        for (first, second) in pairs {
            let pair = ffi::PyTuple_New(2);
            if pair.is_null() {
                ffi::Py_DECREF(list);
                return null_mut();
            }
            ffi::PyTuple_SetItem(pair, 0, new_str(first));
            ffi::PyTuple_SetItem(pair, 1, new_str(second));
            ffi::PyList_Append(list, pair);
            ffi::Py_DECREF(pair);
        }
        list
    }
}

/// A new list of str (NULL with an exception set on failure).
///
/// # Safety
/// GIL held.
pub unsafe fn new_str_list(items: &[String]) -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller); each new str is stored by the list
    // (PyList_Append) and released.
    unsafe {
        let list = ffi::PyList_New(0);
        if list.is_null() {
            return null_mut();
        }
        for item in items {
            let s = new_str(item);
            let appended = !s.is_null() && ffi::PyList_Append(list, s) == 0;
            ffi::Py_XDECREF(s);
            if !appended {
                ffi::Py_DECREF(list);
                return null_mut();
            }
        }
        list
    }
}
