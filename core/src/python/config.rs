//! The options that turn cds on, read when `_cds` is first imported (once
//! per runtime initialisation).
//!
//! Precedence: `-X` options, then `PYTHONCDS*` variables, then the seed's
//! `PYCDSMODE=TRACE|SHARE` with `PYCDSLIST` / `PYCDSARCHIVE`. Variables are
//! ignored under `-E`/`-I`, like every `PYTHON*` variable.

use super::convert::{new_str, str_value};
use super::ffi;
use crate::imports::freshness::Check;

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

/// The options of this process.
#[derive(Debug, Default)]
pub struct Config {
    /// The archive to serve from (`-X cds`).
    pub archive: Option<String>,
    /// The list to trace into (`-X cds_trace`).
    pub trace: Option<String>,
    /// `-X cds_mode`, if given; see [`Config::mode`].
    pub mode: Option<Mode>,
    pub check: Check,
}

impl Config {
    /// Reads the options of the running interpreter. GIL held.
    pub fn read() -> Result<Self, String> {
        let use_env = !ignore_environment();
        let env = |name: &str| if use_env { std::env::var(name).ok().filter(|v| !v.is_empty()) } else { None };
        let seed_mode = env("PYCDSMODE").map(|m| m.to_ascii_uppercase());
        let archive = xoption("cds").or_else(|| env("PYTHONCDS")).or_else(|| {
            if seed_mode.as_deref() == Some("SHARE") {
                env("PYCDSARCHIVE")
            } else {
                None
            }
        });
        let trace = xoption("cds_trace").or_else(|| env("PYTHONCDSTRACE")).or_else(|| {
            if seed_mode.as_deref() == Some("TRACE") {
                env("PYCDSLIST")
            } else {
                None
            }
        });
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
        let key = new_str(name);
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
