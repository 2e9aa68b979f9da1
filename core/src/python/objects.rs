//! Bytes of archived objects: sizes of the kinds cds copies, and unaligned
//! field writes into the archive buffers (which have no alignment guarantee
//! while being built).

use super::sys;
use std::mem::{offset_of, size_of};

/// Writes `value` at `offset` of `bytes`.
pub fn put<T: Copy>(bytes: &mut [u8], offset: usize, value: T) {
    let end = offset + size_of::<T>();
    assert!(end <= bytes.len(), "field write past the object");
    // SAFETY: offset..end is inside `bytes` (checked above); write_unaligned
    // has no alignment requirement and T is Copy (plain data).
    unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().add(offset).cast::<T>(), value) }
}

/// Reads a `T` at `offset` of `bytes`.
pub fn get<T: Copy>(bytes: &[u8], offset: usize) -> T {
    let end = offset + size_of::<T>();
    assert!(end <= bytes.len(), "field read past the object");
    // SAFETY: as in `put`; every T used here is valid for any bit pattern.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(offset).cast::<T>()) }
}

/// Offset of the type pointer in every object.
pub const OB_TYPE: usize = offset_of!(sys::PyObject, ob_type);
/// Size of the GC header that precedes GC-tracked objects (tuples).
pub const GC_HEAD: usize = size_of::<sys::PyGC_Head>();

/// `Py_SIZE` of a variable-size object.
///
/// # Safety
/// `op` is a live variable-size object.
pub unsafe fn var_size(op: *mut sys::PyObject) -> usize {
    // SAFETY: op is a live PyVarObject (caller).
    unsafe { (*op.cast::<sys::PyVarObject>()).ob_size.unsigned_abs() }
}

/// Size of a variable-size object as its type allocates it:
/// `tp_basicsize` plus `Py_SIZE` items (bindgen's structs with a flexible
/// array, such as `PyCodeObject`, count one item and its padding).
///
/// # Safety
/// `op` is a live variable-size object.
pub unsafe fn var_object_size(op: *mut sys::PyObject) -> usize {
    // SAFETY: op is live (caller); its type outlives it.
    unsafe {
        let ty = &*(*op).ob_type;
        ty.tp_basicsize as usize + var_size(op) * ty.tp_itemsize as usize
    }
}

/// Whether code object `op` is a body, a module's or a class's (no
/// `CO_OPTIMIZED`): it runs once per import or class statement.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn is_body(op: *mut sys::PyObject) -> bool {
    // SAFETY: op is live (caller); its code fields are read only when it is a code object.
    unsafe {
        (*op).ob_type == std::ptr::addr_of_mut!(sys::PyCode_Type)
            && (*op.cast::<sys::PyCodeObject>()).co_flags & sys::CO_OPTIMIZED as std::ffi::c_int == 0
    }
}

pub fn tuple_size(n: usize) -> usize {
    offset_of!(sys::PyTupleObject, ob_item) + n * size_of::<*mut sys::PyObject>()
}

pub fn tuple_item_offset(i: usize) -> usize {
    offset_of!(sys::PyTupleObject, ob_item) + i * size_of::<*mut sys::PyObject>()
}

pub fn bytes_size(n: usize) -> usize {
    offset_of!(sys::PyBytesObject, ob_sval) + n + 1
}
