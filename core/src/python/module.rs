//! The `_cds` built-in module: what importlib and the `cds` package call.
//!
//! - `tracing()`, `serving()`: whether `-X cds_trace` / `-X cds` are active.
//! - `find(name, path)`: `(origin, is_package)` or None, for `CdsFinder`.
//! - `get_code(name, source_path)`: the archived code object or None, for
//!   `SourceLoader.get_code` (also records the module when tracing).
//! - `get_frozen_code(name)`: the same for `FrozenImporter` (3.13+).
//! - `stats()`: archive path, served modules, rejected modules with reasons.
//! - `dump(entries, path)`: writes an archive; returns the entries left out.
//! - `build_id()`: the id archives made by this interpreter carry.

use super::config::{self, str_value, Config, Mode};
use super::dump::ObjectWriter;
use super::serve::Served;
use super::trace::Tracer;
use super::{as_sys, ffi};
use crate::format::{ArchiveBuilder, Expectations, ModuleMeta};
use std::ffi::{c_int, CString};
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard};

/// Process-wide state, created by the first `PyInit__cds` (the main
/// interpreter's, during start-up) and shared by subinterpreters.
struct State {
    served: Option<Served>,
    tracer: Option<Tracer>,
    /// `sys.path_hooks` as it was at the first lookup (identities): the
    /// archive stands for what FileFinder would find, so once a program
    /// installs its own path hooks, imports go through them instead.
    path_hooks: Option<Vec<usize>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    // A panic aborts the process (panic = "abort"), so the lock cannot be poisoned in practice.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// What archives made by this interpreter build must carry.
pub fn expectations() -> Expectations {
    let mut id_source = config::interpreter_version();
    id_source.push('\0');
    id_source.push_str(env!("CDS_CORE_SOURCE_HASH"));
    id_source.push_str(&format!(
        "\0code={} str={} tuple={}",
        std::mem::size_of::<super::sys::PyCodeObject>(),
        std::mem::size_of::<super::sys::PyASCIIObject>(),
        std::mem::size_of::<super::sys::PyTupleObject>()
    ));
    Expectations {
        python_hexversion: super::sys::PY_VERSION_HEX,
        build_id: xxhash_rust::xxh3::xxh3_128(id_source.as_bytes()).to_le_bytes(),
    }
}

fn init_state() -> State {
    let config = match Config::read() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("cds: {why}");
            std::process::exit(2);
        }
    };
    let tracer = config.trace.as_deref().and_then(|path| match Tracer::open(path) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("cds: warning: cannot write trace list {path}: {e}; not tracing");
            None
        }
    });
    let served = match (&config.archive, config.mode()) {
        (Some(path), Mode::Auto | Mode::On) => match Served::open(path, &expectations(), config.check, extension_suffixes()) {
            Ok(s) => Some(s),
            Err(why) if config.mode() == Mode::On => {
                eprintln!("cds: error: cannot use archive {path}: {why} (-X cds_mode=on)");
                std::process::exit(1);
            }
            Err(why) => {
                eprintln!("cds: warning: cannot use archive {path}: {why}; importing normally");
                None
            }
        },
        _ => None,
    };
    State { served, tracer, path_hooks: None }
}

/// Identities of the objects in `sys.path_hooks`.
fn path_hooks() -> Vec<usize> {
    // SAFETY: GIL held; sys.path_hooks is borrowed, items are only compared.
    unsafe {
        let hooks = ffi::PySys_GetObject(c"path_hooks".as_ptr());
        if hooks.is_null() || ffi::PyList_Check(hooks) == 0 {
            return Vec::new();
        }
        (0..ffi::PyList_Size(hooks)).map(|i| ffi::PyList_GetItem(hooks, i) as usize).collect()
    }
}

/// `_imp.extension_suffixes()`: what makes a file an extension module.
fn extension_suffixes() -> Vec<String> {
    // SAFETY: GIL held (module init); new references are released.
    unsafe {
        let imp = ffi::PyImport_ImportModule(c"_imp".as_ptr());
        if imp.is_null() {
            ffi::PyErr_Clear();
            return Vec::new();
        }
        let list = ffi::PyObject_CallMethod(imp, c"extension_suffixes".as_ptr(), std::ptr::null());
        ffi::Py_DECREF(imp);
        if list.is_null() {
            ffi::PyErr_Clear();
            return Vec::new();
        }
        let out = str_list(list).unwrap_or_default();
        ffi::Py_DECREF(list);
        out
    }
}

/// The current `sys.path` as strings (non-str entries are skipped).
fn sys_path() -> Vec<String> {
    // SAFETY: GIL held; sys.path is borrowed.
    unsafe {
        let path = ffi::PySys_GetObject(c"path".as_ptr());
        if path.is_null() {
            return Vec::new();
        }
        str_list(path).unwrap_or_default()
    }
}

// ---- argument and result helpers -------------------------------------------------

/// Sets a Python exception and returns NULL.
unsafe fn raise(exc: *mut ffi::PyObject, msg: &str) -> *mut ffi::PyObject {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: GIL held (we are called from Python); msg is NUL-terminated.
    unsafe { ffi::PyErr_SetString(exc, msg.as_ptr()) };
    null_mut()
}

unsafe fn none() -> *mut ffi::PyObject {
    // SAFETY: GIL held; None is immortal for our purposes, we return a new reference.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

unsafe fn new_str(s: &str) -> *mut ffi::PyObject {
    // SAFETY: GIL held; s is valid UTF-8 of the given length.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t) }
}

/// A new reference to the served code object, or None.
unsafe fn new_ref_or_none(code: Option<*mut super::sys::PyObject>) -> *mut ffi::PyObject {
    match code {
        Some(op) => {
            let op: *mut ffi::PyObject = op.cast();
            // SAFETY: GIL held; op is an archived code object, never freed.
            unsafe { ffi::Py_INCREF(op) };
            op
        }
        // SAFETY: GIL held.
        None => unsafe { none() },
    }
}

/// Reads a positional str argument.
unsafe fn arg_str(args: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> Option<String> {
    // SAFETY: GIL held; args is the call's tuple, borrowed items.
    unsafe {
        if i >= ffi::PyTuple_Size(args) {
            return None;
        }
        str_value(ffi::PyTuple_GetItem(args, i))
    }
}

/// A list/tuple of str, or None.
unsafe fn str_list(op: *mut ffi::PyObject) -> Option<Vec<String>> {
    // SAFETY: GIL held; op is a live object; PySequence_Fast returns a new
    // reference we release, its items are borrowed.
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
            if let Some(s) = str_value(item) {
                out.push(s);
            }
            ffi::Py_DECREF(item);
        }
        ffi::Py_DECREF(seq);
        Some(out)
    }
}

// ---- module functions ---------------------------------------------------------------

/// cds works in the main interpreter only: archived code objects are shared
/// by every user, and specialisation rewrites them in place, which is only
/// safe under one GIL (the reason deepfreeze was main-interpreter only too).
fn in_main_interpreter() -> bool {
    // SAFETY: GIL held; both calls only read the runtime's interpreter list.
    unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() }
}

unsafe extern "C" fn cds_tracing(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let on = in_main_interpreter() && state().as_ref().is_some_and(|s| s.tracer.is_some());
    // SAFETY: GIL held.
    unsafe { ffi::PyBool_FromLong(on as _) }
}

unsafe extern "C" fn cds_serving(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let on = in_main_interpreter() && state().as_ref().is_some_and(|s| s.served.is_some());
    // SAFETY: GIL held.
    unsafe { ffi::PyBool_FromLong(on as _) }
}

unsafe extern "C" fn cds_find(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held; args is the argument tuple.
    unsafe {
        let Some(name) = arg_str(args, 0) else {
            return raise(ffi::PyExc_TypeError, "find(name, path): name must be a str");
        };
        let path = if ffi::PyTuple_Size(args) > 1 { str_list(ffi::PyTuple_GetItem(args, 1)) } else { None };
        let found = {
            let mut guard = state();
            let Some(st) = guard.as_mut() else { return none() };
            let hooks = path_hooks();
            if *st.path_hooks.get_or_insert_with(|| hooks.clone()) != hooks {
                return none();
            }
            let Some(served) = st.served.as_mut() else { return none() };
            served.find(&name, path.as_deref(), sys_path)
        };
        match found {
            None => none(),
            Some((origin, is_package)) => {
                let origin = new_str(&origin);
                if origin.is_null() {
                    return null_mut();
                }
                let tuple = ffi::PyTuple_New(2);
                if tuple.is_null() {
                    ffi::Py_DECREF(origin);
                    return null_mut();
                }
                ffi::PyTuple_SetItem(tuple, 0, origin);
                ffi::PyTuple_SetItem(tuple, 1, ffi::PyBool_FromLong(is_package as _));
                tuple
            }
        }
    }
}

unsafe extern "C" fn cds_get_code(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held; args is the argument tuple.
    unsafe {
        let (Some(name), Some(source_path)) = (arg_str(args, 0), arg_str(args, 1)) else {
            return raise(ffi::PyExc_TypeError, "get_code(name, source_path): str arguments required");
        };
        let code = {
            let mut guard = state();
            let Some(st) = guard.as_mut() else { return none() };
            if let Some(t) = st.tracer.as_mut() {
                t.record(&name, &source_path);
            }
            st.served.as_mut().and_then(|s| s.get_code(&name, &source_path))
        };
        new_ref_or_none(code)
    }
}

unsafe extern "C" fn cds_get_frozen_code(_m: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held; name is the single argument (METH_O), borrowed.
    unsafe {
        let Some(name) = str_value(name) else {
            return raise(ffi::PyExc_TypeError, "get_frozen_code(name): name must be a str");
        };
        let code = {
            let mut guard = state();
            let Some(st) = guard.as_mut() else { return none() };
            if let Some(t) = st.tracer.as_mut() {
                t.record(&name, crate::format::FROZEN_ORIGIN);
            }
            st.served.as_mut().and_then(|s| s.get_frozen_code(&name))
        };
        new_ref_or_none(code)
    }
}

unsafe extern "C" fn cds_stats(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held; every new reference is either stored in the dict
    // (PyDict_SetItemString does not steal, so we release ours) or released.
    unsafe {
        let guard = state();
        let served = guard.as_ref().and_then(|s| s.served.as_ref());
        let dict = ffi::PyDict_New();
        if dict.is_null() {
            return null_mut();
        }
        let set = |key: &std::ffi::CStr, value: *mut ffi::PyObject| -> bool {
            if value.is_null() {
                return false;
            }
            let ok = ffi::PyDict_SetItemString(dict, key.as_ptr(), value) == 0;
            ffi::Py_DECREF(value);
            ok
        };
        let archive = served.map_or_else(|| none(), |s| new_str(&s.path));
        let names = ffi::PyList_New(0);
        let rejected = ffi::PyDict_New();
        let mut ok = set(c"archive", archive) && !names.is_null() && !rejected.is_null();
        if ok {
            for name in served.map_or(&[][..], |s| s.served()) {
                let s = new_str(name);
                ok &= !s.is_null() && ffi::PyList_Append(names, s) == 0;
                ffi::Py_XDECREF(s);
            }
            for (name, why) in served.map_or(&[][..], |s| s.rejected()) {
                let w = new_str(why);
                ok &= !w.is_null() && ffi::PyDict_SetItemString(rejected, CString::new(name.as_str()).unwrap_or_default().as_ptr(), w) == 0;
                ffi::Py_XDECREF(w);
            }
            let count = served.map_or(0, |s| s.module_count());
            ok = ok
                && set(c"served", names)
                && set(c"rejected", rejected)
                && set(c"modules", ffi::PyLong_FromSize_t(count))
                && set(c"mapped_at_preferred_base", ffi::PyBool_FromLong(served.is_some_and(|s| s.at_preferred_base()) as _))
                && set(c"tracing", ffi::PyBool_FromLong(guard.as_ref().is_some_and(|s| s.tracer.is_some()) as _));
        } else {
            ffi::Py_XDECREF(names);
            ffi::Py_XDECREF(rejected);
        }
        if !ok {
            ffi::Py_DECREF(dict);
            return null_mut();
        }
        dict
    }
}

unsafe extern "C" fn cds_build_id(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let id = expectations().build_id;
    // SAFETY: GIL held; id is 16 readable bytes.
    unsafe { ffi::PyBytes_FromStringAndSize(id.as_ptr().cast(), id.len() as _) }
}

/// One module to dump: (name, origin, is_package, source_mtime_ns, source_size, code).
unsafe fn dump_entry(builder: &mut ArchiveBuilder, entry: *mut ffi::PyObject) -> Result<(), String> {
    // SAFETY: GIL held; entry is a live object; items are borrowed from the tuple.
    unsafe {
        if ffi::PyTuple_Check(entry) == 0 || ffi::PyTuple_Size(entry) != 6 {
            return Err("entry must be (name, origin, is_package, mtime_ns, size, code)".into());
        }
        let item = |i| ffi::PyTuple_GetItem(entry, i);
        let name = str_value(item(0)).ok_or("name must be a str")?;
        let origin = str_value(item(1)).ok_or("origin must be a str")?;
        let is_package = ffi::PyObject_IsTrue(item(2)) == 1;
        let mtime = ffi::PyLong_AsLongLong(item(3));
        let size = ffi::PyLong_AsUnsignedLongLong(item(4));
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return Err("mtime_ns and size must be ints".into());
        }
        // The content hash serves `-X cds_check=hash`; frozen modules have no file.
        let source_hash = if origin == crate::format::FROZEN_ORIGIN {
            0
        } else {
            std::fs::read(&origin).map(|b| xxhash_rust::xxh3::xxh3_64(&b)).map_err(|e| format!("cannot read {origin}: {e}"))?
        };
        let meta = ModuleMeta { name, origin, is_package, source_mtime_ns: mtime, source_size: size, source_hash };
        let mut module = builder.module(meta).map_err(|e| e.to_string())?;
        let code = {
            let mut writer = ObjectWriter::new(&mut module);
            writer.emit_module_code(as_sys(item(5))).map_err(|e| e.to_string())?
        };
        module.finish(code);
        Ok(())
    }
}

unsafe extern "C" fn cds_dump(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held; args is the argument tuple, items borrowed.
    unsafe {
        let Some(path) = arg_str(args, 1) else {
            return raise(ffi::PyExc_TypeError, "dump(entries, path): path must be a str");
        };
        let entries = ffi::PySequence_Fast(ffi::PyTuple_GetItem(args, 0), c"entries must be a sequence".as_ptr());
        if entries.is_null() {
            return null_mut();
        }
        let mut builder = ArchiveBuilder::new();
        let skipped = ffi::PyList_New(0);
        let n = ffi::PySequence_Size(entries);
        for i in 0..n {
            let entry = ffi::PySequence_GetItem(entries, i);
            if entry.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            if let Err(why) = dump_entry(&mut builder, entry) {
                let name = if ffi::PyTuple_Check(entry) != 0 && ffi::PyTuple_Size(entry) > 0 {
                    str_value(ffi::PyTuple_GetItem(entry, 0)).unwrap_or_default()
                } else {
                    String::new()
                };
                let pair = ffi::PyTuple_New(2);
                ffi::PyTuple_SetItem(pair, 0, new_str(&name));
                ffi::PyTuple_SetItem(pair, 1, new_str(&why));
                ffi::PyList_Append(skipped, pair);
                ffi::Py_DECREF(pair);
            }
            ffi::Py_DECREF(entry);
        }
        ffi::Py_DECREF(entries);
        let expect = expectations();
        // Lay pointers out for the preferred base and this process's runtime
        // objects, so that a process mapping the archive there writes nothing.
        let mut symbols = super::symbols::SymbolTable::new();
        let symbol = |id| symbols.resolve(id).unwrap_or(0) as u64;
        let symbol_values: Vec<u64> = (0..super::symbols::SYMBOL_COUNT).map(symbol).collect();
        let finished = builder.finish_at(expect.python_hexversion, expect.build_id, super::mapping::PREFERRED_BASE, |id| {
            symbol_values.get(id as usize).copied().unwrap_or(0)
        });
        let bytes = match finished {
            Ok(b) => b,
            Err(e) => {
                ffi::Py_DECREF(skipped);
                return raise(ffi::PyExc_ValueError, &e.to_string());
            }
        };
        if let Err(e) = crate::write::write_atomic(std::path::Path::new(&path), &bytes) {
            ffi::Py_DECREF(skipped);
            return raise(ffi::PyExc_OSError, &format!("cannot write {path}: {e}"));
        }
        skipped
    }
}

// ---- module definition ----------------------------------------------------------------

const fn method(
    name: &'static std::ffi::CStr,
    f: unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject,
    flags: c_int,
    doc: &'static std::ffi::CStr,
) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: f },
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }
}

static mut METHODS: [ffi::PyMethodDef; 9] = [
    method(c"tracing", cds_tracing, ffi::METH_NOARGS, c"True when -X cds_trace records loaded modules."),
    method(c"serving", cds_serving, ffi::METH_NOARGS, c"True when a valid archive is mapped."),
    method(c"find", cds_find, ffi::METH_VARARGS, c"find(name, path) -> (origin, is_package) or None"),
    method(c"get_code", cds_get_code, ffi::METH_VARARGS, c"get_code(name, source_path) -> code or None"),
    method(c"get_frozen_code", cds_get_frozen_code, ffi::METH_O, c"get_frozen_code(name) -> code or None (3.13+ frozen modules)"),
    method(c"stats", cds_stats, ffi::METH_NOARGS, c"stats() -> dict: archive, served, rejected, modules, tracing"),
    method(c"dump", cds_dump, ffi::METH_VARARGS, c"dump(entries, path) -> list of (name, reason) left out"),
    method(c"build_id", cds_build_id, ffi::METH_NOARGS, c"The interpreter build id archives must carry."),
    ffi::PyMethodDef::zeroed(),
];

static mut MODULE_DEF: ffi::PyModuleDef = ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"_cds".as_ptr(),
    m_doc: c"Code data sharing: serves code objects from a mapped archive.".as_ptr(),
    m_size: -1,
    m_methods: null_mut(),
    m_slots: null_mut(),
    m_traverse: None,
    m_clear: None,
    m_free: None,
};

/// Called by `Py_FinalizeEx` (after the interpreter is gone): drops the
/// state of the finished runtime, so that an embedder's next `Py_Initialize`
/// starts cds afresh (its fix-ups pointed at objects of the old runtime,
/// such as interned strings). The old mapping is deliberately leaked, never
/// unmapped: static data of the old runtime may still point into it.
extern "C" fn forget_runtime() {
    if let Some(old) = state().take() {
        std::mem::forget(old.served);
    }
}

/// Entry point of the `_cds` built-in (registered in Modules/config.c).
///
/// # Safety
/// Called by the import system with the GIL held.
#[no_mangle]
pub unsafe extern "C" fn PyInit__cds() -> *mut ffi::PyObject {
    {
        let mut guard = state();
        if guard.is_none() {
            *guard = Some(init_state());
            // SAFETY: GIL held during module init; the callback is a plain function.
            unsafe { ffi::Py_AtExit(Some(forget_runtime)) };
        }
    }
    // SAFETY: GIL held; the statics are only touched here, before the module
    // object exists, and CPython treats them as read-only afterwards.
    unsafe {
        let def = std::ptr::addr_of_mut!(MODULE_DEF);
        (*def).m_methods = std::ptr::addr_of_mut!(METHODS).cast();
        ffi::PyModule_Create(def)
    }
}

