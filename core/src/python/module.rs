//! The `_cds` built-in module: what importlib and the `cds` package call.
//! This file only converts arguments and results; the work is done in
//! [`super::state`] (serving, tracing) and [`super::dump`].
//!
//! - `tracing()`, `serving()`: whether `-X cds_trace` / `-X cds` are active.
//! - `start_tracing(path)`, `start_serving(path)`: turn them on late, for
//!   `cds.trace()` / `cds.share()` (which also point importlib at `_cds`).
//! - `find(name, path)`: `(origin, is_package)` or None, for importlib's
//!   `PathFinder`; given `FileFinder` and the default path hook's loaders
//!   too (the stock hook), None also unless the finders on the search path
//!   are ones cds answers for (`file_finders::default_finders_reach`).
//! - `get_code(name, source_path)`: the archived code object or None, for
//!   `SourceLoader.get_code` (also records the module when tracing).
//! - `get_frozen_code(name)`: the same for `FrozenImporter` (3.13+).
//! - `stats()`: archive path, served modules, rejected modules with reasons.
//! - `dump(entries, path, layered=False)`: writes an archive (laid out as an
//!   application layer when `layered`); returns the entries left out.
//! - `verify(path)`: checks a whole archive and writes its stamp (`super::stamp`).
//! - `build_id()`: the id archives made by this interpreter carry.

use super::build_id::expectations;
use super::convert::{new_bool, new_str, new_str_list, none, pair_list, raise, str_value};
use super::dump::{self, DumpFailure, ModuleEntry, Skipped};
use super::file_finders::{default_finders_reach, searched_entries, Cwd};
use super::interpreter::in_main_interpreter;
use super::serve::parse_for_this_interpreter;
use super::stamp;
use super::state::{self, StartRefused};
use super::verbose;
use super::{as_sys, ffi, sys, version};
use crate::format::Layer;
use crate::imports::freshness::Check;
use crate::imports::resolve::home;
use std::ffi::{c_int, CString};
use std::ptr::null_mut;

// ---- argument and result helpers -------------------------------------------------

/// Reads a positional str argument.
///
/// # Safety
/// GIL held; `args` is a call's argument tuple.
unsafe fn arg_str(args: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> Option<String> {
    // SAFETY: forwarded from the caller; items are borrowed.
    unsafe {
        if i >= ffi::PyTuple_Size(args) {
            return None;
        }
        str_value(ffi::PyTuple_GetItem(args, i))
    }
}

/// The code object importlib is to run for a served module, or None: a
/// private copy of the archived module body where the version runs bodies
/// from copies (`version::private_body_copy`: the body's pages then stay
/// clean), else a new reference to the archived object.
///
/// # Safety
/// GIL held; `code` is the address of a relocated archived module code object.
unsafe fn code_to_run(code: Option<usize>) -> *mut ffi::PyObject {
    let Some(addr) = code else {
        // SAFETY: GIL held (caller).
        return unsafe { none() };
    };
    // SAFETY: forwarded from the caller.
    if let Some(copy) = unsafe { version::private_body_copy(addr as *mut sys::PyObject) } {
        return copy.cast();
    }
    let op = addr as *mut ffi::PyObject;
    // SAFETY: GIL held (caller); archived objects are never freed.
    unsafe { ffi::Py_INCREF(op) };
    op
}

/// One entry of `dump(entries, path)`: a tuple (name, origin, is_package,
/// source_mtime_ns, source_size, code[, at_startup]). The code pointer is
/// borrowed from the tuple, which the caller keeps alive.
///
/// # Safety
/// GIL held; `entry` is a live object.
unsafe fn dump_entry(entry: *mut ffi::PyObject) -> Result<ModuleEntry, Skipped> {
    // SAFETY: forwarded from the caller; items are borrowed from the tuple.
    unsafe {
        let is_tuple = ffi::PyTuple_Check(entry) != 0;
        let item = |i| ffi::PyTuple_GetItem(entry, i);
        let refuse = |why: &str| {
            let name = if is_tuple && ffi::PyTuple_Size(entry) > 0 { str_value(item(0)) } else { None };
            (name.unwrap_or_default(), why.to_owned())
        };
        if !is_tuple || !matches!(ffi::PyTuple_Size(entry), 6 | 7) {
            return Err(refuse("entry must be (name, origin, is_package, mtime_ns, size, code[, at_startup])"));
        }
        let name = str_value(item(0)).ok_or_else(|| refuse("name must be a str"))?;
        let origin = str_value(item(1)).ok_or_else(|| refuse("origin must be a str"))?;
        let is_package = ffi::PyObject_IsTrue(item(2)) == 1;
        let source_mtime_ns = ffi::PyLong_AsLongLong(item(3));
        let source_size = ffi::PyLong_AsUnsignedLongLong(item(4));
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return Err(refuse("mtime_ns and size must be ints"));
        }
        let at_startup = ffi::PyTuple_Size(entry) == 7 && ffi::PyObject_IsTrue(item(6)) == 1;
        Ok(ModuleEntry { name, origin, is_package, source_mtime_ns, source_size, code: as_sys(item(5)), at_startup })
    }
}

// ---- module functions ---------------------------------------------------------------

unsafe extern "C" fn cds_tracing(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let on = in_main_interpreter() && state::tracing();
    // SAFETY: GIL held (called from Python).
    unsafe { new_bool(on) }
}

unsafe extern "C" fn cds_serving(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let on = in_main_interpreter() && state::serving();
    // SAFETY: GIL held (called from Python).
    unsafe { new_bool(on) }
}

unsafe extern "C" fn cds_prepare_named(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if in_main_interpreter() {
        state::prepare_named();
    }
    // SAFETY: GIL held (called from Python).
    unsafe { none() }
}

unsafe extern "C" fn cds_find(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); args is the argument tuple.
    unsafe {
        let Some(name) = arg_str(args, 0) else {
            return raise(ffi::PyExc_TypeError, "find(name, path): name must be a str");
        };
        let arg = |i| if ffi::PyTuple_Size(args) > i { ffi::PyTuple_GetItem(args, i) } else { null_mut() };
        let (path, file_finder, default_loaders) = (arg(1), arg(2), arg(3));
        let cwd = Cwd::default();
        let searched = if path.is_null() { None } else { searched_entries(path, &cwd) };
        let found = state::find(&name, searched.as_deref(), &cwd);
        let Some((origin, is_package)) = found else { return none() };
        if !file_finder.is_null() && !default_loaders.is_null() {
            // The stock hook: the finders on the path are asked about here too.
            let search_path = if path.is_null() { ffi::Py_None() } else { path };
            if !default_finders_reach(search_path, home(&origin, is_package), &cwd, file_finder, default_loaders) {
                return none();
            }
        }
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
        ffi::PyTuple_SetItem(tuple, 1, new_bool(is_package));
        tuple
    }
}

unsafe extern "C" fn cds_get_code(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); args is the argument tuple.
    unsafe {
        let (Some(name), Some(source_path)) = (arg_str(args, 0), arg_str(args, 1)) else {
            return raise(ffi::PyExc_TypeError, "get_code(name, source_path): str arguments required");
        };
        let code = state::get_code(&name, &source_path);
        code_to_run(code)
    }
}

unsafe extern "C" fn cds_get_frozen_code(_m: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); name is the single argument (METH_O), borrowed.
    unsafe {
        let Some(name) = str_value(name) else {
            return raise(ffi::PyExc_TypeError, "get_frozen_code(name): name must be a str");
        };
        let code = state::get_frozen_code(&name);
        code_to_run(code)
    }
}

unsafe extern "C" fn cds_stats(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // Copied out first: building the dict allocates, which may run Python
    // that calls `_cds` (state.rs).
    let stats = state::stats();
    // SAFETY: GIL held (called from Python); every new reference is either stored in the dict
    // (PyDict_SetItemString does not steal, so we release ours) or released.
    unsafe {
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
        let archive = stats.archive.as_deref().map_or_else(|| none(), |path| new_str(path));
        let names = new_str_list(&stats.served);
        let rejected = ffi::PyDict_New();
        let mut ok = set(c"archive", archive) && !names.is_null() && !rejected.is_null();
        if ok {
            for (name, why) in &stats.rejected {
                let w = new_str(why);
                ok &= !w.is_null()
                    && ffi::PyDict_SetItemString(rejected, CString::new(name.as_str()).unwrap_or_default().as_ptr(), w)
                        == 0;
                ffi::Py_XDECREF(w);
            }
            ok = ok
                && set(c"archives", new_str_list(&stats.archives))
                && set(c"served", names)
                && set(c"rejected", rejected)
                && set(c"modules", ffi::PyLong_FromSize_t(stats.modules))
                && set(c"mapped_at_preferred_base", new_bool(stats.mapped_at_preferred_base))
                && set(c"stamped", new_bool(stats.stamped))
                && set(c"tracing", new_bool(stats.tracing));
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

/// The result of `start_tracing` / `start_serving`: a bool, or RuntimeError.
///
/// # Safety
/// GIL held.
unsafe fn started(result: Result<bool, StartRefused>, what: &str) -> *mut ffi::PyObject {
    // SAFETY: GIL held (caller).
    unsafe {
        match result {
            Ok(on) => new_bool(on),
            Err(StartRefused::AlreadyStarted(current)) => {
                raise(ffi::PyExc_RuntimeError, &format!("cds is already {what} {current}"))
            }
            Err(StartRefused::Unusable(why)) => raise(ffi::PyExc_RuntimeError, &why),
        }
    }
}

/// The single str argument of a METH_O start function, or TypeError; and
/// RuntimeError outside the main interpreter, where cds never runs.
///
/// # Safety
/// GIL held; `arg` is a borrowed object.
unsafe fn start_arg(arg: *mut ffi::PyObject, call: &str) -> Result<String, *mut ffi::PyObject> {
    // SAFETY: GIL held (caller); arg is borrowed.
    unsafe {
        let Some(path) = str_value(arg) else {
            return Err(raise(ffi::PyExc_TypeError, &format!("{call}: path must be a str")));
        };
        if !in_main_interpreter() {
            return Err(raise(ffi::PyExc_RuntimeError, "cds runs in the main interpreter only"));
        }
        Ok(path)
    }
}

unsafe extern "C" fn cds_start_tracing(_m: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); arg is the single argument (METH_O), borrowed.
    unsafe {
        match start_arg(arg, "start_tracing(path)") {
            Ok(path) => started(state::start_tracing(&path), "tracing into"),
            Err(raised) => raised,
        }
    }
}

unsafe extern "C" fn cds_start_serving(_m: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); arg is the single argument (METH_O), borrowed.
    unsafe {
        match start_arg(arg, "start_serving(path)") {
            Ok(path) => started(state::start_serving(&path), "serving from"),
            Err(raised) => raised,
        }
    }
}

unsafe extern "C" fn cds_build_id(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let id = expectations().build_id;
    // SAFETY: GIL held (called from Python); id is 16 readable bytes.
    unsafe { ffi::PyBytes_FromStringAndSize(id.as_ptr().cast(), id.len() as _) }
}

unsafe extern "C" fn cds_info(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); args is the argument tuple, items borrowed.
    unsafe {
        let (Some(path), check) = (arg_str(args, 0), arg_str(args, 1)) else {
            return raise(ffi::PyExc_TypeError, "info(path, check): path must be a str");
        };
        let check = match check.as_deref() {
            None => None,
            Some("stat") => Some(Check::Stat),
            Some("hash") => Some(Check::Hash),
            Some(other) => return raise(ffi::PyExc_ValueError, &format!("unknown check {other:?}")),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return raise(ffi::PyExc_OSError, &format!("{path}: {e}")),
        };
        let usable = parse_for_this_interpreter(&bytes, &expectations()).err();
        match crate::inspect::report(&path, &bytes, usable.as_deref(), check) {
            Ok(json) => new_str(&json),
            Err(e) => raise(ffi::PyExc_ValueError, &format!("{path}: {e}")),
        }
    }
}

unsafe extern "C" fn cds_default_archive(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python).
    unsafe {
        match super::config::default_archive() {
            Some(path) => new_str(&path),
            None => none(),
        }
    }
}

unsafe extern "C" fn cds_dump(_m: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); args is the argument tuple,
    // items borrowed. `entries` holds a reference to every entry, and so to
    // every code object, until the archive is written.
    unsafe {
        let Some(path) = arg_str(args, 1) else {
            return raise(ffi::PyExc_TypeError, "dump(entries, path, layered=False): path must be a str");
        };
        let layer = match ffi::PyTuple_Size(args) > 2 && ffi::PyObject_IsTrue(ffi::PyTuple_GetItem(args, 2)) == 1 {
            true => Layer::Application,
            false => Layer::Base,
        };
        let entries = ffi::PySequence_Fast(ffi::PyTuple_GetItem(args, 0), c"entries must be a sequence".as_ptr());
        if entries.is_null() {
            return null_mut();
        }
        let parsed = (0..ffi::PySequence_Size(entries)).filter_map(|i| {
            let entry = ffi::PySequence_GetItem(entries, i);
            if entry.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            let parsed = dump_entry(entry);
            ffi::Py_DECREF(entry);
            Some(parsed)
        });
        let written = dump::write_archive(parsed, &path, layer);
        ffi::Py_DECREF(entries);
        match written {
            Ok(skipped) => pair_list(&skipped),
            Err(e @ DumpFailure::Layout(_)) => raise(ffi::PyExc_ValueError, &e.to_string()),
            Err(e @ DumpFailure::Write { .. }) => raise(ffi::PyExc_OSError, &e.to_string()),
        }
    }
}

unsafe extern "C" fn cds_verify(_m: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (called from Python); arg is the single argument (METH_O), borrowed.
    unsafe {
        let Some(path) = str_value(arg) else {
            return raise(ffi::PyExc_TypeError, "verify(path): path must be a str");
        };
        match stamp::write(std::path::Path::new(&path)) {
            Ok(prewritten) => new_bool(prewritten),
            Err(why) => raise(ffi::PyExc_ValueError, &format!("{path}: {why}")),
        }
    }
}

// ---- -X cds_auto's exit hook ------------------------------------------------------

/// Registered with `atexit` when `-X cds_auto` is on; takes no arguments.
static mut AUTO_EXIT: ffi::PyMethodDef = method(
    c"_cds_auto_exit",
    cds_auto_exit,
    ffi::METH_NOARGS,
    c"-X cds_auto: rewrites the archive when this run could not use it whole.",
);

/// Registers the exit hook of `-X cds_auto` with `atexit`, so it runs
/// after the program's own exit handlers (registered later, run first),
/// while the interpreter still runs Python. A failure costs one warning
/// line: the archive is then just not rewritten. GIL held.
pub fn register_auto_exit() {
    // SAFETY: GIL held (module init). AUTO_EXIT is only read, by CPython,
    // with the GIL held; every new reference is released.
    unsafe {
        let hook = ffi::PyCFunction_NewEx(std::ptr::addr_of_mut!(AUTO_EXIT), null_mut(), null_mut());
        let atexit = ffi::PyImport_ImportModule(c"atexit".as_ptr());
        let register =
            if atexit.is_null() { null_mut() } else { ffi::PyObject_GetAttrString(atexit, c"register".as_ptr()) };
        let registered = if hook.is_null() || register.is_null() {
            null_mut()
        } else {
            ffi::PyObject_CallFunctionObjArgs(register, hook, null_mut::<ffi::PyObject>())
        };
        if registered.is_null() {
            ffi::PyErr_Clear();
            eprintln!("cds: warning: cannot register the -X cds_auto exit hook; the archive will not be rewritten");
        }
        ffi::Py_XDECREF(registered);
        ffi::Py_XDECREF(register);
        ffi::Py_XDECREF(atexit);
        ffi::Py_XDECREF(hook);
    }
}

/// At exit under `-X cds_auto`: when the archive needs rewriting, hands
/// what this run loaded to `cds.dump.auto_rewrite`, which writes the
/// archive atomically or prints one warning line.
unsafe extern "C" fn cds_auto_exit(_m: *mut ffi::PyObject, _a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let Some(rewrite) = state::take_auto_rewrite() else {
        // SAFETY: GIL held (called by atexit).
        return unsafe { none() };
    };
    // SAFETY: GIL held (called by atexit); every new reference is released
    // and the argument tuple steals the items it is given.
    unsafe {
        let dump = ffi::PyImport_ImportModule(c"cds.dump".as_ptr());
        let args = ffi::PyTuple_New(5);
        let result = if dump.is_null() || args.is_null() {
            null_mut()
        } else {
            ffi::PyTuple_SetItem(args, 0, new_str(&rewrite.path));
            ffi::PyTuple_SetItem(args, 1, new_str(&rewrite.reason));
            ffi::PyTuple_SetItem(args, 2, pair_list(&rewrite.loaded));
            ffi::PyTuple_SetItem(args, 3, new_bool(rewrite.layered));
            ffi::PyTuple_SetItem(args, 4, new_bool(verbose::level() >= 1));
            let write = ffi::PyObject_GetAttrString(dump, c"auto_rewrite".as_ptr());
            let result = if write.is_null() { null_mut() } else { ffi::PyObject_Call(write, args, null_mut()) };
            ffi::Py_XDECREF(write);
            result
        };
        if result.is_null() {
            ffi::PyErr_Clear();
            eprintln!("cds: warning: cannot rewrite archive {} (-X cds_auto): the cds package failed", rewrite.path);
        }
        ffi::Py_XDECREF(result);
        ffi::Py_XDECREF(args);
        ffi::Py_XDECREF(dump);
        none()
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

static mut METHODS: [ffi::PyMethodDef; 15] = [
    method(c"tracing", cds_tracing, ffi::METH_NOARGS, c"True when -X cds_trace records loaded modules."),
    method(c"serving", cds_serving, ffi::METH_NOARGS, c"True when a valid archive is mapped."),
    method(c"prepare_named", cds_prepare_named, ffi::METH_NOARGS, c"prepare_named(): fix up every module of the named archive now (the stock hook, as it starts)"),
    method(
        c"start_tracing",
        cds_start_tracing,
        ffi::METH_O,
        c"start_tracing(path) -> bool: record loaded modules into path from now on",
    ),
    method(
        c"start_serving",
        cds_start_serving,
        ffi::METH_O,
        c"start_serving(path) -> bool: serve from the archive at path from now on",
    ),
    method(
        c"find",
        cds_find,
        ffi::METH_VARARGS,
        c"find(name, path[, FileFinder, default_loaders]) -> (origin, is_package) or None"
    ),
    method(c"get_code", cds_get_code, ffi::METH_VARARGS, c"get_code(name, source_path) -> code or None"),
    method(
        c"get_frozen_code",
        cds_get_frozen_code,
        ffi::METH_O,
        c"get_frozen_code(name) -> code or None (3.13+ frozen modules)",
    ),
    method(c"stats", cds_stats, ffi::METH_NOARGS, c"stats() -> dict: archive, served, rejected, modules, tracing"),
    method(c"dump", cds_dump, ffi::METH_VARARGS, c"dump(entries, path, layered=False) -> list of (name, reason) left out; layered: laid out to serve over the default archive"),
    method(
        c"verify",
        cds_verify,
        ffi::METH_O,
        c"verify(path) -> bool: check the whole archive and write its stamp; True when its slots need no writes here",
    ),
    method(c"build_id", cds_build_id, ffi::METH_NOARGS, c"The interpreter build id archives must carry."),
    method(
        c"info",
        cds_info,
        ffi::METH_VARARGS,
        c"info(path, check) -> str: the JSON report of python -m cds info (check None) or verify ('stat'/'hash')",
    ),
    method(
        c"default_archive",
        cds_default_archive,
        ffi::METH_NOARGS,
        c"default_archive() -> str or None: where this build's default stdlib archive is (python -m cds stdlib)",
    ),
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

/// Entry point of the `_cds` built-in (registered in Modules/config.c).
///
/// # Safety
/// Called by the import system with the GIL held.
#[no_mangle]
pub unsafe extern "C" fn PyInit__cds() -> *mut ffi::PyObject {
    state::init();
    // SAFETY: the GIL (held by our caller) serialises every access to the
    // two statics: this is the only Rust code touching them, and it stores
    // the same pointer each time; CPython reads METHODS and reads and updates
    // MODULE_DEF's m_base only with the GIL held. addr_of_mut! takes no
    // reference to either.
    unsafe {
        let def = std::ptr::addr_of_mut!(MODULE_DEF);
        (*def).m_methods = std::ptr::addr_of_mut!(METHODS).cast();
        ffi::PyModule_Create(def)
    }
}
