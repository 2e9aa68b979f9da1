//! The options that turn cds on, read when `_cds` is first imported (once
//! per runtime initialisation).
//!
//! Precedence: `-X` options, then `PYTHONCDS*` variables, then the seed's
//! `PYCDS*` variables (`PYCDSMODE=TRACE|SHARE|MANUALLY` with `PYCDSLIST` /
//! `PYCDSARCHIVE`, `PYCDSVERBOSE`). As CPython treats its own `PYTHON*`
//! variables (`config_get_env`): all of them are ignored under `-E`/`-I`, an
//! empty value counts as unset, and a value outside the accepted ones stops
//! start-up with exit status 1 and one line naming it.

use super::convert::{new_str, str_value};
use super::ffi;
use crate::imports::freshness::Check;
use crate::imports::trace::ListFormat;

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
    /// Where this build's default archive would be ([`default_archive`]):
    /// it serves alone, or under the named archive.
    pub default_archive: Option<String>,
    /// The list to trace into (`-X cds_trace`) and its line format.
    pub trace: Option<(String, ListFormat)>,
    /// `-X cds_mode`, if given; see [`Config::mode`].
    pub mode: Option<Mode>,
    pub check: Check,
    /// `-X cds_verbose`: 0 silent, 1 served and rejected modules, 2 also
    /// missed modules and the archive's opening.
    pub verbose: u8,
    /// `-X importtime` is on: served modules are marked in its output.
    pub importtime: bool,
    /// `-X cds_auto`: rewrite the named archive at exit when it could not
    /// be used or any of its modules was rejected (`state::take_auto_rewrite`).
    pub auto: bool,
}

/// An option a user gave: its `-X` name and its environment variables, in
/// order of precedence.
struct Source {
    xoption: &'static str,
    vars: &'static [&'static str],
}

const ARCHIVE: Source = Source { xoption: "cds", vars: &["PYTHONCDS"] };
const TRACE: Source = Source { xoption: "cds_trace", vars: &["PYTHONCDSTRACE"] };
const MODE: Source = Source { xoption: "cds_mode", vars: &["PYTHONCDSMODE"] };
const CHECK: Source = Source { xoption: "cds_check", vars: &["PYTHONCDSCHECK"] };
const VERBOSE: Source = Source { xoption: "cds_verbose", vars: &["PYTHONCDSVERBOSE", "PYCDSVERBOSE"] };
const AUTO: Source = Source { xoption: "cds_auto", vars: &["PYTHONCDSAUTO"] };
/// CPython's own, read only to mark served modules in its output.
const IMPORTTIME: Source = Source { xoption: "importtime", vars: &["PYTHONPROFILEIMPORTTIME"] };
const SEED_MODE: Source = Source { xoption: "", vars: &["PYCDSMODE"] };
const SEED_ARCHIVE: Source = Source { xoption: "", vars: &["PYCDSARCHIVE"] };
const SEED_LIST: Source = Source { xoption: "", vars: &["PYCDSLIST"] };

/// Where a value came from, as the error names it.
enum Origin {
    XOption(&'static str),
    Var(&'static str),
}

/// The value of one option, with where it came from.
struct Given {
    value: String,
    origin: Origin,
}

/// Reads option values: `-X` first, then the variables (unless `-E`/`-I`).
struct Reader {
    use_env: bool,
}

impl Reader {
    /// The first value given for `source`. `-X name` alone reads as "" (for
    /// options that take a choice) and empty variables as unset.
    fn given(&self, source: &Source) -> Option<Given> {
        if !source.xoption.is_empty() {
            if let Some(value) = xoption(source.xoption) {
                return Some(Given { value, origin: Origin::XOption(source.xoption) });
            }
        }
        if !self.use_env {
            return None;
        }
        source.vars.iter().find_map(|&var| {
            let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
            Some(Given { value, origin: Origin::Var(var) })
        })
    }

    /// A path option: `-X name` alone or empty counts as unset.
    fn path(&self, source: &Source) -> Option<String> {
        self.given(source).map(|g| g.value).filter(|v| !v.is_empty())
    }

    /// `flag` for `-X name` alone, else [`Reader::choice`].
    fn flag_or_choice<T: Copy>(&self, source: &Source, flag: T, accepted: &[(&str, T)]) -> Result<Option<T>, String> {
        match xoption_flag(source.xoption) {
            true => Ok(Some(flag)),
            false => self.choice(source, accepted),
        }
    }

    /// A choice among `accepted` (exact spellings), or the one-line error.
    fn choice<T: Copy>(&self, source: &Source, accepted: &[(&str, T)]) -> Result<Option<T>, String> {
        let Some(given) = self.given(source) else { return Ok(None) };
        if let Some((_, v)) = accepted.iter().find(|(name, _)| *name == given.value) {
            return Ok(Some(*v));
        }
        let names: Vec<&str> = accepted.iter().map(|(name, _)| *name).collect();
        let what = match given.origin {
            Origin::XOption(name) => format!("-X {name}"),
            Origin::Var(name) => name.to_owned(),
        };
        let (last, rest) = names.split_last().expect("every choice accepts some value");
        Err(format!("invalid {what} value '{}': expected {} or {last}", given.value, rest.join(", ")))
    }
}

/// What `PYCDSMODE` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SeedMode {
    Trace,
    Share,
    /// Nothing starts by itself: the program calls `cds.trace()` / `cds.share()`.
    Manually,
}

impl Config {
    /// Reads the options of the running interpreter, or the one-line reason
    /// start-up must fail. GIL held.
    pub fn read() -> Result<Self, String> {
        let read = Reader { use_env: !ignore_environment() };
        let seed = read.choice(
            &SEED_MODE,
            &[("TRACE", SeedMode::Trace), ("SHARE", SeedMode::Share), ("MANUALLY", SeedMode::Manually)],
        )?;
        let seed_var = |mode, source: &Source| if seed == Some(mode) { read.path(source) } else { None };
        let archive = read.path(&ARCHIVE).or_else(|| seed_var(SeedMode::Share, &SEED_ARCHIVE)).map(expand_path);
        let trace = read
            .path(&TRACE)
            .map(|p| (expand_path(p), ListFormat::NameAndPath))
            .or_else(|| seed_var(SeedMode::Trace, &SEED_LIST).map(|p| (p, ListFormat::Name)));
        let mode = read.choice(&MODE, &[("auto", Mode::Auto), ("on", Mode::On), ("off", Mode::Off)])?;
        let check = read.choice(&CHECK, &[("stat", Check::Stat), ("hash", Check::Hash), ("none", Check::None)])?;
        // `-X cds_verbose` alone means level 1, as `-X importtime` alone turns it on.
        let verbose = read.flag_or_choice(&VERBOSE, 1, &[("0", 0), ("1", 1), ("2", 2)])?;
        let auto = read.flag_or_choice(&AUTO, true, &[("1", true), ("0", false)])?;
        let default_archive = default_archive();
        Ok(Self {
            archive,
            default_archive,
            trace,
            mode,
            check: check.unwrap_or(Check::Stat),
            verbose: verbose.unwrap_or(0),
            importtime: read.given(&IMPORTTIME).is_some(),
            auto: auto.unwrap_or(false),
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::Auto)
    }
}

/// `path` with `%v` replaced by this interpreter's cache tag (`cpython-313`:
/// one archive per version when several share a path) and `%%` by `%`;
/// any other `%` is kept as written.
fn expand_path(path: String) -> String {
    if !path.contains('%') {
        return path;
    }
    crate::option_path::expand(&path, &cache_tag().unwrap_or_default())
}

/// `sys.implementation.cache_tag`, None when unset.
fn cache_tag() -> Option<String> {
    // SAFETY: GIL held; PySys_GetObject returns a borrowed object (or NULL),
    // the attribute is owned and released.
    unsafe {
        let implementation = ffi::PySys_GetObject(c"implementation".as_ptr());
        if implementation.is_null() {
            return None;
        }
        let tag = ffi::PyObject_GetAttrString(implementation, c"cache_tag".as_ptr());
        if tag.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let value = str_value(tag);
        ffi::Py_DECREF(tag);
        value
    }
}

/// The default archive of this interpreter's standard library,
/// `<sys._stdlib_dir>/__pycache__/cds-stdlib.<cache tag>.img`, beside the
/// stdlib's own `.pyc` files (`python -m cds stdlib` writes it); None when
/// the interpreter knows no stdlib directory or cache tag.
pub fn default_archive() -> Option<String> {
    // SAFETY: GIL held; PySys_GetObject returns a borrowed object (or NULL).
    let dir = unsafe { ffi::PySys_GetObject(c"_stdlib_dir".as_ptr()) };
    if dir.is_null() {
        return None;
    }
    // SAFETY: GIL held; dir is a live borrowed object.
    let dir = unsafe { str_value(dir) }?;
    Some(format!("{dir}/__pycache__/cds-stdlib.{}.img", cache_tag()?))
}

/// `sys._xoptions[name]` as a string; `-X name` alone (value True) reads as "".
fn xoption(name: &str) -> Option<String> {
    xoption_value(name).map(|v| v.unwrap_or_default())
}

/// Whether `-X name` was given alone (no `=value`).
fn xoption_flag(name: &str) -> bool {
    matches!(xoption_value(name), Some(None))
}

/// `sys._xoptions[name]`: None when absent, Some(None) for `-X name` alone
/// (value True), else its str value.
fn xoption_value(name: &str) -> Option<Option<String>> {
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
        Some(str_value(value))
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
