//! The options that turn cds on, read once when `_cds` is first imported.
//!
//! Precedence: `-X` options, then `PYTHONCDS*` variables, then the seed's
//! `PYCDSMODE=TRACE|SHARE` with `PYCDSLIST` / `PYCDSARCHIVE`. Variables are
//! ignored under `-E`/`-I`, like every `PYTHON*` variable.

use super::ffi;
use std::ffi::CStr;

/// What to do when the archive cannot be used (`-X cds_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Warn on stderr and import normally.
    Auto,
    /// Print the reason and exit with status 1 (as `java -Xshare:on`).
    On,
    /// Ignore the archive.
    Off,
}

/// How archived modules are checked against their sources (`-X cds_check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Check {
    /// Size and mtime of the source, and that a normal import would find the
    /// same file (nothing shadows it on the search path). The default.
    #[default]
    Stat,
    /// As `Stat`, but the source's content hash instead of its mtime, for
    /// trees whose mtimes are not kept (checkouts, copies).
    Hash,
    /// No check at all: for immutable deployments (containers, read-only
    /// images), like unchecked hash-based pycs (PEP 552).
    None,
}

#[derive(Debug, Default)]
pub struct Config {
    pub archive: Option<String>,
    pub trace: Option<String>,
    pub mode: Option<Mode>,
    pub check: Check,
}

impl Config {
    /// Reads the options of the running interpreter. GIL held.
    pub fn read() -> Result<Self, String> {
        let use_env = !ignore_environment();
        let env = |name: &str| if use_env { std::env::var(name).ok().filter(|v| !v.is_empty()) } else { None };
        let seed_mode = env("PYCDSMODE").map(|m| m.to_ascii_uppercase());
        let archive = xoption("cds")
            .or_else(|| env("PYTHONCDS"))
            .or_else(|| if seed_mode.as_deref() == Some("SHARE") { env("PYCDSARCHIVE") } else { None });
        let trace = xoption("cds_trace")
            .or_else(|| env("PYTHONCDSTRACE"))
            .or_else(|| if seed_mode.as_deref() == Some("TRACE") { env("PYCDSLIST") } else { None });
        let mode = match xoption("cds_mode").or_else(|| env("PYTHONCDSMODE")).as_deref() {
            None => None,
            Some("auto") => Some(Mode::Auto),
            Some("on") => Some(Mode::On),
            Some("off") => Some(Mode::Off),
            Some(other) => return Err(format!("-X cds_mode={other}: expected auto, on or off")),
        };
        let check = match xoption("cds_check").or_else(|| env("PYTHONCDSCHECK")).as_deref() {
            None | Some("stat") => Check::Stat,
            Some("hash") => Check::Hash,
            Some("none") => Check::None,
            Some(other) => return Err(format!("-X cds_check={other}: expected stat, hash or none")),
        };
        Ok(Self { archive, trace, mode, check })
    }

    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::Auto)
    }
}

/// `sys._xoptions[name]` as a string; `-X name` alone (value True) counts as unset.
fn xoption(name: &str) -> Option<String> {
    // SAFETY: GIL held; PySys_GetXOptions returns a borrowed dict (or NULL),
    // the key is a fresh str we release, items are borrowed.
    unsafe {
        let options = ffi::PySys_GetXOptions();
        if options.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let key = ffi::PyUnicode_FromStringAndSize(name.as_ptr().cast(), name.len() as ffi::Py_ssize_t);
        if key.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let value = ffi::PyDict_GetItemWithError(options, key);
        ffi::Py_DECREF(key);
        if value.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        str_value(value).filter(|v| !v.is_empty())
    }
}

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
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// `sys.flags.ignore_environment` (-E / -I).
fn ignore_environment() -> bool {
    // SAFETY: GIL held; borrowed sys.flags, owned attribute released.
    unsafe {
        let flags = ffi::PySys_GetObject(c"flags".as_ptr());
        if flags.is_null() {
            return false;
        }
        let v = ffi::PyObject_GetAttrString(flags, c"ignore_environment".as_ptr());
        if v.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let on = ffi::PyObject_IsTrue(v) == 1;
        ffi::Py_DECREF(v);
        on
    }
}

/// `Py_GetVersion()`: version, build date and compiler of this interpreter.
pub fn interpreter_version() -> String {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }.to_string_lossy().into_owned()
}
