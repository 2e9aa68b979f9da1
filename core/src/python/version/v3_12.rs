//! CPython 3.12 and 3.13: immortal objects (PEP 683), eager quickening at
//! creation, code versions (`co_version`), monitoring fields, str without
//! `wstr`, longs with a tagged digit count (`lv_tag`). What 3.13 changed is
//! marked `Py_3_13`:
//! - 3.13 numbers code objects from the interpreter's `func_state`; 3.12
//!   from a runtime-wide counter libpython does not export (a stock 3.12 is
//!   served through the `_cds` extension only: `reserve_code_versions`);
//! - 3.13 has tier-2 executors (`co_executors`);
//! - 3.13's marshal holds a reference to each set item it sorts, 3.12's
//!   borrows them;
//! - 3.12 makes every interned str immortal, and an immortal str interned
//!   stays so at finalisation (`SSTATE_INTERNED_IMMORTAL_STATIC`).
//!
//! (3.12 keeps deepfreeze: its frozen modules' code and names are static
//! objects of the image, `statically_allocated` as `_Py_ID`.)

use super::{compact_str_size, StrLayout};
use crate::python::objects::{self, get, put};
use crate::python::{ffi, sys};
use std::mem::{offset_of, size_of};
use std::ptr::null_mut;

type Code = sys::PyCodeObject;

/// `_Py_IMMORTAL_REFCNT` of Include/object.h (64-bit: UINT_MAX). INCREF and
/// DECREF see the low 32 bits as negative and never store: no refcount write
/// ever touches an archived page.
pub const ARCHIVED_REFCNT: sys::Py_ssize_t = u32::MAX as sys::Py_ssize_t;

/// Refcount of an archived str. 3.13 debug builds check that a str which is
/// not (yet) interned is mortal (`_PyUnicode_CheckConsistency`: only
/// interned or statically allocated strings may be immortal), and archived
/// strings are interned only at load, so there they are mortal; release
/// builds keep every archived str immortal. 3.12 always: a mortal str it
/// interns becomes immortal until finalisation, which makes it mortal again
/// and frees it (an immortal one it leaves alone).
///
/// The debug count must stay small: making an interned str immortal walks
/// its refcount once per reference (`immortalize_interned` under
/// Py_REF_DEBUG). It only has to cover the archive's own references (one per
/// slot, dropped when interning swaps a slot to another object); the
/// dealloc guard keeps a miscount from freeing the object.
pub const fn str_refcnt(_interned: bool) -> sys::Py_ssize_t {
    if !cfg!(Py_DEBUG) || !cfg!(Py_3_13) {
        ARCHIVED_REFCNT
    } else {
        1 << 12
    }
}

/// Offset of `ob_refcnt` (inside an anonymous union since 3.12).
pub const OB_REFCNT: usize = offset_of!(sys::PyObject, __bindgen_anon_1);

/// Makes the copy `bytes` of live code object `op` look freshly created.
/// 3.12+ quickens at creation (`_PyCode_Quicken` writes warm-up counters into
/// the inline caches), and the dumped code object was never executed, so its
/// `co_code_adaptive` is exactly what a new code object holds: it is kept.
/// Executors, monitoring data, cached attributes and the instrumentation
/// version start empty, so tier 2, `sys.monitoring` and `sys.settrace`
/// instrument archived code as they would a new code object.
///
/// `co_version` keys the function-version caches (specialised calls check
/// it), so it must be unique among the interpreter's code objects: it is
/// the code's archive serial (`serial()`), a version the interpreter never
/// hands out while the archive serves (`_PyCds_CodeVersionStart`, patch
/// `0007-codeobject-cds-reserved-versions`; a stock interpreter:
/// [`reserve_code_versions`]). So loading writes nothing.
///
/// # Safety
/// `op` is a live code object, `bytes` its copy; GIL held.
pub unsafe fn prepare_code_copy(
    _op: *mut sys::PyObject,
    bytes: &mut [u8],
    serial: impl FnOnce() -> Result<u32, String>,
) -> Result<(), String> {
    super::clear_code_padding(bytes);
    put(bytes, offset_of!(Code, co_weakreflist), null_mut::<sys::PyObject>());
    #[cfg(Py_3_13)]
    put(bytes, offset_of!(Code, co_executors), null_mut::<sys::_PyExecutorArray>());
    put(bytes, offset_of!(Code, _co_cached), null_mut::<sys::_PyCoCached>());
    put(bytes, offset_of!(Code, _co_instrumentation_version), 0usize);
    put(bytes, offset_of!(Code, _co_monitoring), null_mut::<sys::_PyCoMonitoringData>());
    put(bytes, offset_of!(Code, co_extra), null_mut::<std::ffi::c_void>());
    put(bytes, offset_of!(Code, co_version), serial()?);
    Ok(())
}

/// For the shape check: an archived code object's `co_version` must be one
/// of the archive's serials, which the interpreter does not hand out.
pub fn check_code(bytes: &[u8], serials: &std::ops::Range<u32>) -> Result<(), &'static str> {
    if !serials.contains(&get::<u32>(bytes, offset_of!(Code, co_version))) {
        return Err("a code object's version is not one of the archive's");
    }
    Ok(())
}

/// Whether this interpreter has not handed out any of `serials` as a code
/// version yet (its counter only grows, and skips them once published).
///
/// # Safety
/// GIL held.
#[cfg(Py_3_13)]
pub unsafe fn code_serials_unused(serials: &std::ops::Range<u32>) -> bool {
    // SAFETY: GIL held: the interpreter state is not being changed.
    let next = unsafe { (*sys::PyInterpreterState_Get()).func_state.next_version };
    serials.is_empty() || next < serials.start
}

/// Whether this interpreter has not handed out any of `serials` as a code
/// or function version yet. 3.12 has two counters, both only growing (until
/// they wrap to 0, "no version"): the runtime's for code objects, which
/// libpython does not export, read from the version a new code object gets
/// (one number consumed); and the interpreter's `func_state`, from which a
/// function whose code, defaults or closure changed is numbered again
/// (`_PyFunction_GetVersionForCurrentState`). Either ends up in
/// `func_version`, which specialised calls trust.
///
/// # Safety
/// GIL held.
#[cfg(not(Py_3_13))]
pub unsafe fn code_serials_unused(serials: &std::ops::Range<u32>) -> bool {
    if serials.is_empty() {
        return true;
    }
    let below = |next: u32| next == 0 || next < serials.start;
    // SAFETY: GIL held (caller); the code object made is ours until released.
    unsafe {
        let functions = (*sys::PyInterpreterState_Get()).func_state.next_version;
        let code = sys::PyCode_NewEmpty(c"<cds>".as_ptr(), c"<cds>".as_ptr(), 0);
        if code.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let version = (*code).co_version;
        ffi::Py_DECREF(code.cast());
        below(version) && below(functions)
    }
}

/// Keeps the interpreter from handing out code versions below `end`
/// (archives' serials are `[CODE_SERIAL_BASE, end)`) where no patch makes
/// it skip them (patch 0007; a stock interpreter, through the extension):
/// its `func_state` counter is moved past them once an archive serves (its
/// code objects below `CODE_SERIAL_BASE` keep theirs). On 3.12, which
/// numbers code objects from a counter it does not export, a code watcher
/// ([`guard_code_version`]) also gives "no version" (0) to a new code
/// object that got one of the archives' serials, as 3.12 does once its
/// counter runs out; it takes 2^31 code objects to get there.
///
/// # Safety
/// GIL held.
pub unsafe fn reserve_code_versions(end: u32) {
    if !cfg!(cds_stock) {
        return;
    }
    // SAFETY: GIL held: the interpreter numbers code objects under it.
    let state = unsafe { &mut (*sys::PyInterpreterState_Get()).func_state };
    // 0: the interpreter ran out of versions and numbers no more.
    if state.next_version != 0 && state.next_version < end {
        state.next_version = end;
    }
    #[cfg(not(Py_3_13))]
    // SAFETY: GIL held (caller).
    unsafe {
        watch_code_versions()
    };
}

/// The code watcher [`reserve_code_versions`] added (3.12), or -1.
#[cfg(not(Py_3_13))]
static GUARD_WATCHER: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Adds [`guard_code_version`] once. All 8 watcher slots taken: the serials
/// are still checked at open (`code_serials_unused`).
///
/// # Safety
/// GIL held.
#[cfg(not(Py_3_13))]
unsafe fn watch_code_versions() {
    use std::sync::atomic::Ordering;
    if GUARD_WATCHER.load(Ordering::Relaxed) >= 0 {
        return;
    }
    // SAFETY: GIL held (caller); the callback is a plain function.
    let id = unsafe { sys::PyCode_AddWatcher(Some(guard_code_version)) };
    if id < 0 {
        // SAFETY: GIL held.
        unsafe { ffi::PyErr_Clear() };
    } else {
        GUARD_WATCHER.store(id, Ordering::Relaxed);
    }
}

/// Runs when a code object is made, after it is numbered: a version among
/// the serving archives' serials (`_PyCds_CodeVersionStart..End`, published
/// before [`reserve_code_versions`] runs) becomes 0, CPython's "no version".
#[cfg(not(Py_3_13))]
unsafe extern "C" fn guard_code_version(event: sys::PyCodeEvent, code: *mut sys::PyCodeObject) -> std::ffi::c_int {
    if event != sys::PyCodeEvent_PY_CODE_EVENT_CREATE {
        return 0;
    }
    use crate::python::serve::{_PyCds_CodeVersionEnd, _PyCds_CodeVersionStart};
    // SAFETY: the interpreter calls watchers with the GIL held and a live,
    // just-made code object; the range is written only with the GIL held.
    unsafe {
        if (*code).co_version.wrapping_sub(_PyCds_CodeVersionStart) < _PyCds_CodeVersionEnd - _PyCds_CodeVersionStart {
            (*code).co_version = 0;
        }
    }
    0
}

/// The watchers cds itself added (3.12's [`guard_code_version`]), as bits
/// of `active_code_watchers`.
fn own_code_watchers() -> u8 {
    #[cfg(not(Py_3_13))]
    if let id @ 0..=7 = GUARD_WATCHER.load(std::sync::atomic::Ordering::Relaxed) {
        return 1 << id;
    }
    0
}

/// The interpreter's dict of interned strs (its static ones live apart,
/// in the runtime's table): insertion-ordered, so its first entries are
/// the names interned first (`startup_names`).
///
/// # Safety
/// GIL held.
pub unsafe fn interned_dict() -> *mut sys::PyObject {
    // SAFETY: GIL held: the interpreter state is not being changed.
    unsafe { (*sys::PyInterpreterState_Get()).cached_objects.interned_strings }
}

/// # Safety
/// `op` is a live exact str.
pub unsafe fn str_layout(op: *mut sys::PyObject) -> Option<StrLayout> {
    // SAFETY: op is a live str (caller), whose header is a PyASCIIObject.
    let s = unsafe { &*op.cast::<sys::PyASCIIObject>() };
    if s.state.compact() == 0 {
        return None;
    }
    let ascii = s.state.ascii() != 0;
    let size = compact_str_size(s.length as usize, ascii, s.state.kind() as usize);
    // Statically allocated strings (`_Py_ID`, `_Py_STR`) are interned
    // immortal-static: the archived copy is interned at load, which swaps in
    // this process's static object.
    Some(StrLayout { size, ascii, interned: s.state.interned() != 0 })
}

/// The address of a statically allocated str (`_Py_ID`, `_Py_STR`): in a
/// non-PIE interpreter the same in every process, and what interning an
/// equal str returns.
///
/// # Safety
/// `op` is a live object.
pub unsafe fn static_str_address(op: *mut sys::PyObject) -> Option<u64> {
    // SAFETY: op is live (caller); the state is read only for exact strs.
    unsafe {
        if (*op).ob_type != std::ptr::addr_of_mut!(sys::PyUnicode_Type) {
            return None;
        }
        let s = &*op.cast::<sys::PyASCIIObject>();
        (s.state.statically_allocated() != 0).then_some(op as u64)
    }
}

/// Clears what a str caches per process: hash, interned state, UTF-8 buffer.
/// No str points into itself on 3.13 (`wstr` is gone): returns None.
pub fn reset_str_runtime_fields(bytes: &mut [u8], ascii: bool) -> Option<(usize, usize)> {
    type Ascii = sys::PyASCIIObject;
    type Compact = sys::PyCompactUnicodeObject;
    put(bytes, offset_of!(Ascii, hash), -1 as sys::Py_hash_t);
    let mut state: sys::PyASCIIObject__bindgen_ty_1 = get(bytes, offset_of!(Ascii, state));
    state.set_interned(sys::SSTATE_NOT_INTERNED);
    // A copy of a static string is an ordinary (immortal) heap-like string.
    state.set_statically_allocated(0);
    put(bytes, offset_of!(Ascii, state), state);
    super::clear_str_state_padding(bytes, size_of::<Ascii>());
    if !ascii {
        put(bytes, offset_of!(Compact, utf8_length), 0 as sys::Py_ssize_t);
        put(bytes, offset_of!(Compact, utf8), null_mut::<std::ffi::c_char>());
    }
    None
}

/// Clears a bytes object's cached hash (deprecated field, still present).
pub fn reset_bytes_runtime_fields(bytes: &mut [u8]) {
    put(bytes, offset_of!(sys::PyBytesObject, ob_shash), -1 as sys::Py_hash_t);
}

/// Size of a live int: the digit count is `lv_tag >> _PyLong_NON_SIZE_BITS`.
///
/// # Safety
/// `op` is a live exact int.
pub unsafe fn long_size(op: *mut sys::PyObject) -> usize {
    // SAFETY: op is a live int (caller).
    let tag = unsafe { (*op.cast::<sys::_longobject>()).long_value.lv_tag };
    let digits = tag >> sys::_PyLong_NON_SIZE_BITS;
    offset_of!(sys::_longobject, long_value)
        + offset_of!(sys::_PyLongValue, ob_digit)
        + digits.max(1) * size_of::<sys::digit>()
}

/// Code object pointers the archive leaves NULL: per-process caches and
/// tier-2/monitoring state (`prepare_code_copy`), which CPython follows when set.
pub const CODE_NULL_FIELDS: &[usize] = &[
    offset_of!(Code, co_weakreflist),
    #[cfg(Py_3_13)]
    offset_of!(Code, co_executors),
    offset_of!(Code, _co_cached),
    offset_of!(Code, _co_monitoring),
    offset_of!(Code, co_extra),
];

/// The size archived str `bytes` (from its start to its span's end) claims,
/// if its header is one `reset_str_runtime_fields` leaves: compact, a valid
/// kind, not interned or static (interning happens at load), no cached hash
/// or UTF-8 buffer, and a terminating NUL inside the span.
pub fn archived_str_shape(bytes: &[u8]) -> Result<super::StrShape, &'static str> {
    type Ascii = sys::PyASCIIObject;
    let state: sys::PyASCIIObject__bindgen_ty_1 = get(bytes, offset_of!(Ascii, state));
    let (kind, ascii) = (state.kind() as usize, state.ascii() != 0);
    super::check_compact_str_header(bytes, kind, ascii)?;
    if state.compact() == 0 {
        return Err("a str that is not compact");
    }
    if state.interned() != sys::SSTATE_NOT_INTERNED || state.statically_allocated() != 0 {
        return Err("a str archived as interned or static");
    }
    let size = super::str_size_within(bytes, ascii, kind)?;
    Ok(super::StrShape { size, interior: None })
}

/// The size archived int `bytes` claims: a valid sign tag, its digit count
/// within the span (checked by the caller) and each digit below `PyLong_BASE`.
pub fn archived_long_size(bytes: &[u8]) -> Result<usize, &'static str> {
    let value = offset_of!(sys::_longobject, long_value);
    let tag: usize = get(bytes, value + offset_of!(sys::_PyLongValue, lv_tag));
    if tag & 3 == 3 {
        return Err("an int with an invalid sign");
    }
    let digits = tag >> sys::_PyLong_NON_SIZE_BITS;
    let first = value + offset_of!(sys::_PyLongValue, ob_digit);
    super::int_size_within(bytes, first, digits)
}

/// marshal sorts a set by the bytes of each item dumped as it iterates the
/// set: 3.13 with new references (`_PySet_NextEntryRef`), so that every
/// item is written with the FLAG_REF bit, which holding one reference
/// reproduces; 3.12 with borrowed ones (`_PySet_NextEntry`), as 3.11.
/// Returns a new bytes reference or NULL.
///
/// # Safety
/// `item` is a live object the caller holds no reference of its own to; GIL held.
pub unsafe fn marshal_sort_key(item: *mut sys::PyObject) -> *mut sys::PyObject {
    let held = cfg!(Py_3_13);
    // SAFETY: forwarded from the caller; a reference taken is released.
    unsafe {
        if held {
            sys::Py_IncRef(item);
        }
        let dump = sys::PyMarshal_WriteObjectToString(item, sys::Py_MARSHAL_VERSION as std::ffi::c_int);
        if held {
            sys::Py_DecRef(item);
        }
        dump
    }
}

/// Module and class bodies run from private copies: they run once per
/// import, and 3.12+ writes into the bytecode it runs (specialisation and
/// counters in `co_code_adaptive`), which would dirty the archive's pages
/// in every process. The dump lays them out with the objects that stay
/// clean (`dump::writer`).
pub const BODIES_RUN_FROM_COPIES: bool = true;

/// Making a function INCREFs its docstring, but archived objects are
/// immortal: nothing is written.
pub const MAKING_A_FUNCTION_WRITES_ITS_DOC: bool = false;

/// Bodies run from private copies, and archived constants are immortal:
/// running a body writes none of them.
pub const RUNNING_A_BODY_WRITES_ITS_CONSTANTS: bool = false;

/// A private, mortal copy of the archived body (a code object without
/// `CO_OPTIMIZED`: a module's or a class's) at `op`, for the interpreter to
/// run instead of the archived object, with the class bodies among its
/// constants copied the same way (the functions' code objects are shared
/// as they are). What a fresh code object of the same code holds: the
/// bytecode as quickened at creation (the archived body never runs), no
/// executors, monitoring data, cached attributes, extra data or weak
/// references, and `co_version` 0, CPython's own "no version" (its
/// functions are never specialised on; a class body runs once). None when
/// the archived object is not as the dump left it (something instrumented
/// it), when code watchers other than cds's own are active (they would see
/// a copy destroyed that they never saw created), or on an allocation
/// failure: the caller
/// then runs the archived object, as before.
///
/// # Safety
/// `op` is a relocated archived code object; GIL held.
pub unsafe fn private_body_copy(op: *mut sys::PyObject) -> Option<*mut sys::PyObject> {
    // SAFETY: GIL held (caller): the interpreter state is not being changed.
    if unsafe { (*sys::PyInterpreterState_Get()).active_code_watchers } & !own_code_watchers() != 0 {
        return None;
    }
    // SAFETY: forwarded from the caller.
    unsafe { copy_code(op) }
}

/// # Safety
/// As [`private_body_copy`].
unsafe fn copy_code(op: *mut sys::PyObject) -> Option<*mut sys::PyObject> {
    // SAFETY: `op` is a live code object (caller); the copy is a new object
    // of the same type and item count, so the same size, filled before use.
    unsafe {
        let code = &*op.cast::<Code>();
        let untouched = code._co_instrumentation_version == 0
            && CODE_NULL_FIELDS.iter().all(|&at| op.cast::<u8>().add(at).cast::<*mut u8>().read().is_null());
        if (*op).ob_type != std::ptr::addr_of_mut!(sys::PyCode_Type) || !untouched {
            return None;
        }
        let items = objects::var_size(op);
        let copy = sys::_PyObject_NewVar(std::ptr::addr_of_mut!(sys::PyCode_Type), items as sys::Py_ssize_t);
        if copy.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let header = size_of::<sys::PyVarObject>();
        let size = objects::var_object_size(op);
        std::ptr::copy_nonoverlapping(op.cast::<u8>().add(header), copy.cast::<u8>().add(header), size - header);
        let c = &mut *copy.cast::<Code>();
        c.co_version = 0;
        // Every object pointer is a reference the copy owns (archived
        // objects are immortal: taking one writes nothing).
        for field in super::CODE_OBJECT_FIELDS {
            ffi::Py_XINCREF(copy.cast::<u8>().add(field.offset).cast::<*mut ffi::PyObject>().read());
        }
        let copy = copy.cast::<sys::PyObject>();
        match copy_class_bodies(c.co_consts) {
            Ok(None) => Some(copy),
            Ok(Some(consts)) => {
                let archived = std::mem::replace(&mut c.co_consts, consts);
                ffi::Py_DECREF(archived.cast());
                Some(copy)
            }
            Err(()) => {
                ffi::Py_DECREF(copy.cast());
                None
            }
        }
    }
}

/// `consts` with each class body replaced by its private copy: a new tuple,
/// or None when it holds no class body.
///
/// # Safety
/// `consts` is an archived tuple of a relocated code object; GIL held.
unsafe fn copy_class_bodies(consts: *mut sys::PyObject) -> Result<Option<*mut sys::PyObject>, ()> {
    // SAFETY: GIL held; `consts` is a live tuple (caller), whose items are
    // live; the new tuple is filled with owned references before use.
    unsafe {
        let n = ffi::PyTuple_Size(consts.cast());
        let item = |i| ffi::PyTuple_GetItem(consts.cast(), i).cast::<sys::PyObject>();
        if !(0..n).any(|i| objects::is_body(item(i))) {
            return Ok(None);
        }
        let copied = ffi::PyTuple_New(n);
        if copied.is_null() {
            ffi::PyErr_Clear();
            return Err(());
        }
        for i in 0..n {
            let original = item(i);
            let new = match objects::is_body(original) {
                true => copy_code(original),
                false => {
                    ffi::Py_INCREF(original.cast());
                    Some(original)
                }
            };
            let Some(new) = new else {
                ffi::Py_DECREF(copied);
                return Err(());
            };
            ffi::PyTuple_SetItem(copied, i, new.cast());
        }
        Ok(Some(copied.cast()))
    }
}
