//! The options that turn cds on, read when `_cds` is first imported (once
//! per runtime initialisation).
//!
//! Precedence: `-X` options, then `PYTHONCDS*` variables, then the seed's
//! `PYCDS*` variables (`PYCDSMODE=TRACE|SHARE|MANUALLY` with `PYCDSLIST` /
//! `PYCDSARCHIVE`, `PYCDSVERBOSE`). As CPython treats its own `PYTHON*`
//! variables (`config_get_env`): all of them are ignored under `-E`/`-I`, an
//! empty value counts as unset, and a value outside the accepted ones stops
//! start-up with exit status 1 and one line naming it.

use super::convert::str_value;
use super::{ffi, sys};
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

/// What the options are read from: the `-X` options, whether the
/// environment counts, and where the stdlib is (for the default archive).
/// Taken from `sys` once it exists ([`Settings::from_sys`]), or, earlier in
/// start-up, from the interpreter's `PyConfig`, which `sys` is made from
/// ([`Settings::from_startup_config`]).
struct Settings {
    /// `-X` options in the order given: `(name, None)` for `-X name` alone.
    xoptions: Vec<(String, Option<String>)>,
    use_env: bool,
    stdlib_dir: Option<String>,
    cache_tag: Option<String>,
}

impl Settings {
    /// From `sys._xoptions`, `sys.flags.ignore_environment`,
    /// `sys._stdlib_dir` and `sys.implementation.cache_tag`. GIL held.
    fn from_sys() -> Self {
        Self {
            xoptions: sys_xoptions(),
            use_env: !ignore_environment(),
            stdlib_dir: stdlib_dir(),
            cache_tag: cache_tag(),
        }
    }

    /// From the running interpreter's `PyConfig`, before `sys` exists: its
    /// `xoptions` (`name=value` or `name`) and `use_environment`, the cache
    /// tag CPython builds from its version, and the stdlib directory as
    /// [`guess_stdlib_dir`] guesses it (CPython's getpath has not run yet).
    /// None when a value is not Unicode (`state` then reads `sys` later).
    ///
    /// # Safety
    /// GIL held, the interpreter's config initialised.
    unsafe fn from_startup_config() -> Option<Self> {
        // SAFETY: GIL held (caller): there is a current interpreter whose
        // config lives as long as it does; its wide strings are NUL-terminated.
        unsafe {
            let config = super::interpreter::interpreter_config();
            let list = &config.xoptions;
            let mut xoptions = Vec::with_capacity(list.length as usize);
            for i in 0..list.length.max(0) as usize {
                let option = wide_string(*list.items.add(i))?;
                xoptions.push(match option.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (option, None),
                });
            }
            let use_env = config.use_environment != 0;
            let home = match config.home.is_null() {
                true => None,
                false => Some(wide_string(config.home)?),
            };
            let home = home.or_else(|| use_env.then(|| std::env::var("PYTHONHOME").ok()).flatten());
            let hex = sys::PY_VERSION_HEX;
            let (major, minor) = (hex >> 24, (hex >> 16) & 0xff);
            let stdlib_dir = guess_stdlib_dir(home.as_deref(), &format!("python{major}.{minor}"));
            Some(Self { xoptions, use_env, stdlib_dir, cache_tag: Some(format!("cpython-{major}{minor}")) })
        }
    }

    /// The last `-X name` given (as `sys._xoptions` keeps it): None when
    /// absent, Some(None) for `-X name` alone, else its value.
    fn xoption(&self, name: &str) -> Option<Option<&str>> {
        self.xoptions.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }
}

/// Reads option values: `-X` first, then the variables (unless `-E`/`-I`).
struct Reader {
    settings: Settings,
}

impl Reader {
    /// The first value given for `source`. `-X name` alone reads as "" (for
    /// options that take a choice) and empty variables as unset.
    fn given(&self, source: &Source) -> Option<Given> {
        if !source.xoption.is_empty() {
            if let Some(value) = self.settings.xoption(source.xoption) {
                let value = value.unwrap_or_default().to_owned();
                return Some(Given { value, origin: Origin::XOption(source.xoption) });
            }
        }
        if !self.settings.use_env {
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
        match self.settings.xoption(source.xoption) == Some(None) {
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
        Self::read_from(Reader { settings: Settings::from_sys() })
    }

    /// The same, read from the interpreter's `PyConfig` before `sys` exists
    /// (the start-up names hook); None when it cannot be read there or is
    /// not valid (`read` says why, later).
    ///
    /// # Safety
    /// GIL held, the interpreter's config initialised.
    pub unsafe fn read_at_startup() -> Option<Self> {
        // SAFETY: forwarded from the caller.
        let settings = unsafe { Settings::from_startup_config() }?;
        Self::read_from(Reader { settings }).ok()
    }

    fn read_from(read: Reader) -> Result<Self, String> {
        let seed = read.choice(
            &SEED_MODE,
            &[("TRACE", SeedMode::Trace), ("SHARE", SeedMode::Share), ("MANUALLY", SeedMode::Manually)],
        )?;
        let seed_var = |mode, source: &Source| if seed == Some(mode) { read.path(source) } else { None };
        let tag = read.settings.cache_tag.as_deref().unwrap_or_default();
        let archive =
            read.path(&ARCHIVE).or_else(|| seed_var(SeedMode::Share, &SEED_ARCHIVE)).map(|p| expand_path(p, tag));
        let trace = read
            .path(&TRACE)
            .map(|p| (expand_path(p, tag), ListFormat::NameAndPath))
            .or_else(|| seed_var(SeedMode::Trace, &SEED_LIST).map(|p| (p, ListFormat::Name)));
        let mode = read.choice(&MODE, &[("auto", Mode::Auto), ("on", Mode::On), ("off", Mode::Off)])?;
        let check = read.choice(&CHECK, &[("stat", Check::Stat), ("hash", Check::Hash), ("none", Check::None)])?;
        // `-X cds_verbose` alone means level 1, as `-X importtime` alone turns it on.
        let verbose = read.flag_or_choice(&VERBOSE, 1, &[("0", 0), ("1", 1), ("2", 2)])?;
        let auto = read.flag_or_choice(&AUTO, true, &[("1", true), ("0", false)])?;
        let default_archive = default_archive_in(&read.settings);
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
fn expand_path(path: String, cache_tag: &str) -> String {
    if !path.contains('%') {
        return path;
    }
    crate::option_path::expand(&path, cache_tag)
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
/// the interpreter knows no stdlib directory or cache tag. GIL held.
pub fn default_archive() -> Option<String> {
    default_archive_in(&Settings::from_sys())
}

fn default_archive_in(settings: &Settings) -> Option<String> {
    let (dir, tag) = (settings.stdlib_dir.as_deref()?, settings.cache_tag.as_deref()?);
    Some(format!("{dir}/__pycache__/cds-stdlib.{tag}.img"))
}

/// Where `sys._stdlib_dir` will be, before CPython's getpath computes it
/// (start-up names are interned before it runs): `<home>/lib/pythonX.Y`
/// when a home is set (`PYTHONHOME` or the embedder's), the build tree's
/// `Lib` beside an executable with `pybuilddir.txt` (getpath's landmark for
/// a build directory), else `<prefix>/lib/pythonX.Y` of the executable's
/// real path (`/proc/self/exe`, which a venv's symlinked `python` resolves
/// to its base interpreter, whose stdlib a venv uses). A guess: `state`
/// opens the default archive again when `sys` says otherwise.
fn guess_stdlib_dir(home: Option<&str>, lib_name: &str) -> Option<String> {
    use std::path::Path;
    if let Some(home) = home.filter(|h| !h.is_empty()) {
        let prefix = home.split(':').next().unwrap_or(home);
        return Some(format!("{prefix}/lib/{lib_name}"));
    }
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let bin = exe.parent()?;
    let dir = match bin.join("pybuilddir.txt").exists() {
        true => bin.join("Lib"),
        false => bin.parent().unwrap_or(Path::new("/")).join("lib").join(lib_name),
    };
    dir.into_os_string().into_string().ok()
}

/// `sys._stdlib_dir`, None when unset.
fn stdlib_dir() -> Option<String> {
    // SAFETY: GIL held; PySys_GetObject returns a borrowed object (or NULL).
    let dir = unsafe { ffi::PySys_GetObject(c"_stdlib_dir".as_ptr()) };
    if dir.is_null() {
        return None;
    }
    // SAFETY: GIL held; dir is a live borrowed object.
    unsafe { str_value(dir) }
}

/// A NUL-terminated wide string of the interpreter's config (UTF-32 on the
/// platforms cds supports); None when it is not Unicode (an undecodable
/// byte of a path or argument, kept by CPython as a lone surrogate).
///
/// # Safety
/// `w` points at a NUL-terminated `wchar_t` string.
unsafe fn wide_string(w: *const sys::wchar_t) -> Option<String> {
    let mut out = String::new();
    for i in 0.. {
        // SAFETY: the string is NUL-terminated (caller): reading stops at its end.
        let c = unsafe { *w.add(i) };
        if c == 0 {
            break;
        }
        out.push(char::from_u32(u32::try_from(c).ok()?)?);
    }
    Some(out)
}

/// `sys._xoptions` as `(name, value)` pairs: None for `-X name` alone
/// (value True); options whose name or value is not a str are left out.
fn sys_xoptions() -> Vec<(String, Option<String>)> {
    // SAFETY: GIL held; PySys_GetXOptions returns a borrowed dict (or NULL),
    // PyDict_Next hands out borrowed keys and values.
    unsafe {
        let options = ffi::PySys_GetXOptions();
        if options.is_null() {
            ffi::PyErr_Clear();
            return Vec::new();
        }
        let (mut pos, mut key, mut value) = (0, std::ptr::null_mut(), std::ptr::null_mut());
        let mut out = Vec::new();
        while ffi::PyDict_Next(options, &mut pos, &mut key, &mut value) != 0 {
            let Some(name) = str_value(key) else { continue };
            if value == ffi::Py_True() {
                out.push((name, None));
            } else if let Some(v) = str_value(value) {
                out.push((name, Some(v)));
            }
        }
        out
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
