//! What cds reads from the running interpreter besides its options.

use super::convert::str_list;
use super::file_finders::{searched_entries, Cwd};
use super::{ffi, sys};
use crate::format::CompileSettings;

/// The settings this interpreter compiles and creates code objects with
/// (`sys.flags.optimize`, `-X no_debug_ranges`).
pub fn compile_settings() -> CompileSettings {
    // SAFETY: the GIL is held (every caller runs in a `_cds` call), so there
    // is a current interpreter; its config lives as long as it does.
    let config = unsafe { interpreter_config() };
    CompileSettings { optimize: config.optimization_level.max(0) as u32, debug_ranges: config.code_debug_ranges != 0 }
}

/// The current interpreter's `PyConfig`, read from the interpreter state as
/// `_PyInterpreterState_GetConfig` does: a stock 3.13 does not export that
/// function to extension modules.
///
/// # Safety
/// GIL held: there is a current interpreter, whose config lives as long as
/// it does.
pub unsafe fn interpreter_config<'a>() -> &'a sys::PyConfig {
    // SAFETY: the caller's promise.
    unsafe { &(*sys::PyInterpreterState_Get()).config }
}

/// The `sys.path` entries a search for a top-level module looks into, as
/// strings (non-str entries, and those importlib found no finder for, are
/// skipped; '' is `cwd`: [`searched_entries`]).
pub fn searched_sys_path(cwd: &Cwd) -> Vec<String> {
    // SAFETY: GIL held (every caller runs in a `_cds` call, no cds lock); sys.path is borrowed.
    unsafe {
        let path = ffi::PySys_GetObject(c"path".as_ptr());
        if path.is_null() {
            return Vec::new();
        }
        searched_entries(path, cwd).unwrap_or_default()
    }
}

/// Identities of the objects in `sys.path_hooks`.
pub fn path_hooks() -> Vec<usize> {
    // SAFETY: GIL held (every caller runs in a `_cds` call); sys.path_hooks
    // and its items are borrowed, and the items are only compared.
    unsafe {
        let hooks = ffi::PySys_GetObject(c"path_hooks".as_ptr());
        if hooks.is_null() || ffi::PyList_Check(hooks) == 0 {
            return Vec::new();
        }
        (0..ffi::PyList_Size(hooks)).map(|i| ffi::PyList_GetItem(hooks, i) as usize).collect()
    }
}

/// `_imp.extension_suffixes()`: what makes a file an extension module.
pub fn extension_suffixes() -> Vec<String> {
    // SAFETY: GIL held (called during `_cds`'s init); new references are released.
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

/// cds works in the main interpreter only: archived code objects are shared
/// by every user, and specialisation rewrites them in place, which is only
/// safe under one GIL (the reason deepfreeze was main-interpreter only too).
pub fn in_main_interpreter() -> bool {
    // SAFETY: GIL held (every caller runs in a `_cds` call); both calls only
    // read the runtime's interpreter list.
    unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() }
}
