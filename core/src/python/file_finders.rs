//! The directory listings importlib's `FileFinder`s already hold, so that
//! the search-path check (`imports::resolve`) does not read a directory a
//! second time: at start-up the standard library's directories have been
//! listed by the finders that imported the first modules.

use super::convert::str_value;
use super::ffi;

/// The names importlib's `FileFinder` for search path entry `dir` ('' for
/// the current directory) holds (`_path_cache`), with the directory mtime
/// it read them at (`_path_mtime`, as `os.stat().st_mtime`), if it has read
/// them: what a normal search of `dir` consults while that mtime holds.
/// Only an exact `FileFinder` (a subclass may list otherwise). GIL held and
/// no cds lock: reading them may run the interpreter.
pub fn listing(dir: &str) -> Option<(f64, Vec<String>)> {
    // As `PathFinder._path_importer_cache`, '' is cached under the cwd.
    let key =
        if dir.is_empty() { std::env::current_dir().ok()?.into_os_string().into_string().ok()? } else { dir.into() };
    // SAFETY: GIL held (every caller runs in a `_cds` call). Borrowed
    // references (sys.path_importer_cache, the finder) are used before any
    // call that could drop them; new references are released.
    unsafe {
        let module = ffi::PyImport_ImportModule(c"_frozen_importlib_external".as_ptr());
        if module.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let file_finder = ffi::PyObject_GetAttrString(module, c"FileFinder".as_ptr());
        ffi::Py_DECREF(module);
        if file_finder.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let finder = cached_finder(&key);
        let exact = !finder.is_null() && ffi::Py_TYPE(finder).cast() == file_finder;
        ffi::Py_DECREF(file_finder);
        if !exact {
            ffi::Py_XDECREF(finder);
            return None;
        }
        let found = finder_listing(finder);
        ffi::Py_DECREF(finder);
        found
    }
}

/// `sys.path_importer_cache[key]`, a new reference, or null.
///
/// # Safety
/// GIL held.
unsafe fn cached_finder(key: &str) -> *mut ffi::PyObject {
    // SAFETY: the caller's GIL; the cache is borrowed from sys, the key is ours.
    unsafe {
        let cache = ffi::PySys_GetObject(c"path_importer_cache".as_ptr());
        if cache.is_null() || ffi::PyDict_Check(cache) == 0 {
            return std::ptr::null_mut();
        }
        let key = ffi::PyUnicode_FromStringAndSize(key.as_ptr().cast(), key.len() as ffi::Py_ssize_t);
        if key.is_null() {
            ffi::PyErr_Clear();
            return std::ptr::null_mut();
        }
        let finder = ffi::PyDict_GetItemWithError(cache, key);
        ffi::Py_DECREF(key);
        if finder.is_null() {
            ffi::PyErr_Clear();
        }
        ffi::Py_XINCREF(finder);
        finder
    }
}

/// A `FileFinder`'s `(_path_mtime, _path_cache)`, once it filled them.
///
/// # Safety
/// GIL held; `finder` is a live `FileFinder`.
unsafe fn finder_listing(finder: *mut ffi::PyObject) -> Option<(f64, Vec<String>)> {
    // SAFETY: the caller's promises; new references are released, and the
    // set is iterated through an iterator that holds it.
    unsafe {
        let mtime = ffi::PyObject_GetAttrString(finder, c"_path_mtime".as_ptr());
        if mtime.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let seconds = ffi::PyFloat_AsDouble(mtime);
        ffi::Py_DECREF(mtime);
        // -1: never filled (FileFinder.__init__).
        if seconds == -1.0 {
            ffi::PyErr_Clear();
            return None;
        }
        let names = ffi::PyObject_GetAttrString(finder, c"_path_cache".as_ptr());
        if names.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let iter =
            if ffi::PyAnySet_CheckExact(names) != 0 { ffi::PyObject_GetIter(names) } else { std::ptr::null_mut() };
        ffi::Py_DECREF(names);
        if iter.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let mut out = Vec::new();
        loop {
            let item = ffi::PyIter_Next(iter);
            if item.is_null() {
                break;
            }
            let name = str_value(item);
            ffi::Py_DECREF(item);
            out.push(name);
        }
        ffi::Py_DECREF(iter);
        // A set changed while read (an error), or a name that is not a str:
        // not a listing to trust.
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        out.into_iter().collect::<Option<Vec<String>>>().map(|names| (seconds, names))
    }
}
