//! The directory listings importlib's `FileFinder`s already hold, so that
//! the search-path check (`imports::resolve`) does not read a directory a
//! second time: at start-up the standard library's directories have been
//! listed by the finders that imported the first modules. And which search
//! path entries importlib has found no finder for, which a search skips.

use super::convert::{str_list_map, str_value};
use super::ffi;
use std::cell::OnceCell;

/// The current directory's name, asked of the system at most once per
/// `_cds.find`: importlib asks for it at every '' entry of every search,
/// and `getcwd` is a system call.
#[derive(Default)]
pub struct Cwd(OnceCell<Option<String>>);

impl Cwd {
    /// None when it has none (removed), or one that is not UTF-8.
    pub fn get(&self) -> Option<&str> {
        self.0.get_or_init(|| std::env::current_dir().ok()?.into_os_string().into_string().ok()).as_deref()
    }
}

/// The str entries of search path `op` (sys.path, or a package's
/// `__path__`) that a path-based search looks into, '' as the current
/// directory's name (as `PathFinder` caches its finder; none when there is
/// no current directory, and the search skips it). An entry
/// `sys.path_importer_cache` holds None for is left out, as `PathFinder`
/// skips it without a look (the missing `python311.zip` on every sys.path),
/// so the search-path check does not stat it either. None for None.
///
/// # Safety
/// GIL held, no cds lock; `op` is a live object.
pub unsafe fn searched_entries(op: *mut ffi::PyObject, cwd: &Cwd) -> Option<Vec<String>> {
    // SAFETY: forwarded from the caller; the cache is borrowed from sys and
    // only read while the items are alive.
    unsafe {
        let cache = ffi::PySys_GetObject(c"path_importer_cache".as_ptr());
        let cache = if !cache.is_null() && ffi::PyDict_CheckExact(cache) != 0 { cache } else { std::ptr::null_mut() };
        str_list_map(op, |entry, text| {
            if text.is_empty() {
                return cwd.get().map(str::to_owned);
            }
            (cache.is_null() || !cached_as_without_finder(cache, entry)).then_some(text)
        })
    }
}

/// Whether `cache` (sys.path_importer_cache, an exact dict) holds None for
/// search path entry `entry` (a str other than '').
///
/// # Safety
/// GIL held, no cds lock (a key's `__eq__` may run); both live.
unsafe fn cached_as_without_finder(cache: *mut ffi::PyObject, entry: *mut ffi::PyObject) -> bool {
    // SAFETY: forwarded from the caller; the item is borrowed from the dict.
    unsafe {
        let finder = ffi::PyDict_GetItemWithError(cache, entry);
        if finder.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        finder == ffi::Py_None()
    }
}

/// The names importlib's `FileFinder` for search path entry `dir` (the
/// current directory by name, as [`searched_entries`] gives '') holds
/// (`_path_cache`), with the directory mtime
/// it read them at (`_path_mtime`, as `os.stat().st_mtime`), if it has read
/// them: what a normal search of `dir` consults while that mtime holds.
/// Only an exact `FileFinder` (a subclass may list otherwise). GIL held and
/// no cds lock: reading them may run the interpreter.
pub fn listing(dir: &str) -> Option<(f64, Vec<String>)> {
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
        let finder = cached_finder(dir);
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

/// Whether `PathFinder`, searching `search_path` (a package's `__path__`, or
/// None for sys.path), reaches `home`, the directory holding the archived
/// file, through finders cds answers for: each entry up to `home` has an
/// exact `FileFinder` with `default_loaders` (the default path hook's
/// `(suffix, loader)` pairs), or no finder yet (the default hook would make
/// one: `_cds.find` refuses once sys.path_hooks changed), or None (skipped,
/// as `PathFinder` skips it). `_cds_find_spec` of patch 0003 asks the same
/// in Python, line for line; the stock hook asks here, where it costs no
/// Python frames. False on any error (the import then goes on normally).
///
/// # Safety
/// GIL held, no cds lock (comparing `_loaders` may run Python code); all live.
pub unsafe fn default_finders_reach(
    search_path: *mut ffi::PyObject,
    home: &str,
    cwd: &Cwd,
    file_finder: *mut ffi::PyObject,
    default_loaders: *mut ffi::PyObject,
) -> bool {
    // SAFETY: forwarded from the caller. sys.path and the cache are held
    // (new references) for the walk, each entry while it is looked at; the
    // finder is borrowed from the held cache and used before anything runs
    // that could change it.
    unsafe {
        let entries = if search_path == ffi::Py_None() { ffi::PySys_GetObject(c"path".as_ptr()) } else { search_path };
        let cache = ffi::PySys_GetObject(c"path_importer_cache".as_ptr());
        if entries.is_null() || cache.is_null() || ffi::PyDict_Check(cache) == 0 {
            return false;
        }
        let seq = ffi::PySequence_Fast(entries, c"path must be a sequence".as_ptr());
        if seq.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        ffi::Py_INCREF(cache);
        let mut reached = false;
        for i in 0..ffi::PySequence_Size(seq) {
            let entry = ffi::PySequence_GetItem(seq, i);
            if entry.is_null() {
                ffi::PyErr_Clear();
                break;
            }
            let step = walk_entry(entry, home, cwd, cache, file_finder, default_loaders);
            ffi::Py_DECREF(entry);
            match step {
                Step::Next => continue,
                Step::Reached => reached = true,
                Step::Refused => {}
            }
            break;
        }
        ffi::Py_DECREF(cache);
        ffi::Py_DECREF(seq);
        reached
    }
}

/// What one search path entry means for [`default_finders_reach`].
enum Step {
    /// Not `home`, and searched by a finder cds answers for (or skipped).
    Next,
    /// `home`, searched by a finder cds answers for.
    Reached,
    /// A finder cds does not answer for, or an error.
    Refused,
}

/// # Safety
/// As [`default_finders_reach`]; `entry` and `cache` held.
unsafe fn walk_entry(
    entry: *mut ffi::PyObject,
    home: &str,
    cwd: &Cwd,
    cache: *mut ffi::PyObject,
    file_finder: *mut ffi::PyObject,
    default_loaders: *mut ffi::PyObject,
) -> Step {
    // SAFETY: forwarded from the caller; new references are released.
    unsafe {
        let Some(text) = str_value(entry) else { return Step::Next }; // PathFinder skips non-str entries too
        let empty = text.is_empty();
        let place = if empty || text == "." {
            match cwd.get() {
                Some(cwd) => cwd.to_owned(),
                None => return Step::Refused,
            }
        } else {
            text
        };
        // As `PathFinder._path_importer_cache`, '' is cached under the cwd.
        let key = if empty {
            let key = ffi::PyUnicode_FromStringAndSize(place.as_ptr().cast(), place.len() as ffi::Py_ssize_t);
            if key.is_null() {
                ffi::PyErr_Clear();
                return Step::Refused;
            }
            key
        } else {
            ffi::Py_INCREF(entry);
            entry
        };
        let finder = ffi::PyDict_GetItemWithError(cache, key);
        ffi::Py_DECREF(key);
        if finder.is_null() && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return Step::Refused;
        }
        let at_home = place == home;
        if !finder.is_null() {
            if finder == ffi::Py_None() && !at_home {
                return Step::Next;
            }
            if !is_default_finder(finder, file_finder, default_loaders) {
                return Step::Refused;
            }
        }
        if at_home {
            Step::Reached
        } else {
            Step::Next
        }
    }
}

/// `type(finder) is FileFinder and finder._loaders == default_loaders`.
///
/// # Safety
/// GIL held, no cds lock; all live.
unsafe fn is_default_finder(
    finder: *mut ffi::PyObject,
    file_finder: *mut ffi::PyObject,
    default_loaders: *mut ffi::PyObject,
) -> bool {
    // SAFETY: forwarded from the caller; the attribute is a new reference, released.
    unsafe {
        if ffi::Py_TYPE(finder).cast::<ffi::PyObject>() != file_finder {
            return false;
        }
        let loaders = ffi::PyObject_GetAttrString(finder, c"_loaders".as_ptr());
        if loaders.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let same = ffi::PyObject_RichCompareBool(loaders, default_loaders, ffi::Py_EQ);
        ffi::Py_DECREF(loaders);
        if same < 0 {
            ffi::PyErr_Clear();
        }
        same == 1
    }
}
