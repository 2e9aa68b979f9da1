//! This runtime's cds state: the serving archives and the trace list,
//! behind one mutex.
//!
//! Two archives may serve at once, in lookup order: the one named with
//! `-X cds` (or `cds.share()`), then the build's default archive it is
//! layered on (docs/DESIGN.md, "Layers"). Each validates, checks and fixes
//! up its own modules; a module one layer lacks or rejects is looked up in
//! the next.
//!
//! Created by the first `PyInit__cds` (the main interpreter's, during
//! start-up) and shared by subinterpreters; dropped by `Py_FinalizeEx`
//! ([`forget_runtime`]), so that an embedder's next `Py_Initialize` reads
//! the options and maps the archive afresh.
//!
//! The lock is never held across a call into the interpreter. Anything that
//! can allocate an object or call a function can run Python (a collection's
//! `gc.callbacks`, finalizers, weakref callbacks, audit hooks, a replaced
//! `__import__`), and that Python may import, i.e. call `_cds` again: on this
//! thread (the std mutex is not re-entrant: deadlock), or on another thread
//! the GIL switched to (which would wait for the lock holding the GIL, while
//! the holder waits for the GIL). So what the interpreter supplies is read
//! before locking, and what calls into it (a module's first fix-up, opening
//! an archive, building results) runs unlocked; [`with_state`] closures touch
//! plain Rust data only. A nested call sees a module being prepared as
//! "import normally" (`serve::Answer`), and serves the ones already prepared.

use super::build_id::expectations;
use super::config::{Config, Mode};
use super::file_finders::{self, Cwd};
use super::interpreter::{extension_suffixes, path_hooks, searched_sys_path};
use super::serve::{self, Answer, Preparation, Served};
use super::{ffi, verbose};
use crate::imports::freshness::Check;
use crate::imports::trace::{ListFormat, Tracer};
use std::collections::HashSet;
use std::sync::Mutex;

pub struct State {
    /// The archive named by `-X cds`, `PYTHONCDS`, `PYCDSARCHIVE` or `cds.share()`.
    named: Option<Served>,
    /// The build's default archive (`python -m cds stdlib`), under the named one.
    default: Option<Served>,
    tracer: Option<Tracer>,
    /// `-X cds_auto`: the archive to rewrite at exit, and what this run loaded.
    auto: Option<AutoArchive>,
    /// `sys.path_hooks` as it was at the first lookup (identities): the
    /// archive stands for what FileFinder would find, so once a program
    /// installs its own path hooks, imports go through them instead.
    path_hooks: Option<Vec<usize>>,
    /// The start-up options that also govern `cds.share()`.
    mode: Mode,
    check: Check,
}

/// What `-X cds_auto` needs at exit.
struct AutoArchive {
    /// The named archive, made absolute at start-up (the program may chdir).
    path: String,
    /// Why it could not be used at start-up, when it could not.
    unusable: Option<String>,
    /// Every module whose code this run loaded, served or not.
    loaded: Tracer,
}

/// What to write at exit under `-X cds_auto` ([`take_auto_rewrite`]).
pub struct AutoRewrite {
    pub path: String,
    /// Why the archive is rewritten, for `-X cds_verbose`.
    pub reason: String,
    /// `(name, source path)` of every module the run loaded, in load
    /// order, but those the default archive served.
    pub loaded: Vec<(String, String)>,
    /// The default archive serves: lay the archive out over it.
    pub layered: bool,
}

impl State {
    /// The serving archives in lookup order.
    fn layers(&self) -> impl Iterator<Item = &Served> {
        self.named.iter().chain(self.default.iter())
    }

    fn layers_mut(&mut self) -> impl Iterator<Item = &mut Served> {
        self.named.iter_mut().chain(self.default.iter_mut())
    }

    /// The trace list and `-X cds_auto`'s record: where a loaded module is noted.
    fn recorders(&mut self) -> impl Iterator<Item = &mut Tracer> {
        self.tracer.iter_mut().chain(self.auto.as_mut().map(|a| &mut a.loaded))
    }

    /// Asks each layer in turn until one answers: `ask(layer, is_last)`
    /// (the last one's miss is worth a verbose line).
    fn first_answer<T>(&mut self, mut ask: impl FnMut(&mut Served, bool) -> Answer<T>) -> Answer<T> {
        let count = self.layers().count();
        for (i, served) in self.layers_mut().enumerate() {
            match ask(served, i + 1 == count) {
                Answer::Now(None) => continue,
                answer => return answer,
            }
        }
        Answer::Now(None)
    }

    /// Points the guards at the layers; `added` new ones at the front.
    fn publish(&self, added: usize) {
        serve::publish(&self.layers().collect::<Vec<_>>(), added);
    }
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Runs `f` on the state with the lock held; None before `_cds` is first
/// imported. `f` must not call into the interpreter (see the module doc).
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    // A panic aborts the process (panic = "abort"), so the lock cannot be poisoned in practice.
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f)
}

/// What start-up opens from the options: the trace list, `-X cds_auto`'s
/// record, the archives. Made by [`intern_startup_names`] before `_cds`
/// exists (3.13), or by [`init`].
struct Opened {
    config: Config,
    tracer: Option<Tracer>,
    auto: Option<AutoArchive>,
    named: Option<Served>,
    default: Option<Served>,
}

impl Opened {
    /// Opens what `config` names. Exits the process on an unusable archive
    /// under `-X cds_mode=on`. GIL held, state not locked.
    fn open(config: Config) -> Self {
        verbose::set_level(config.verbose, config.importtime);
        let tracer = config.trace.as_ref().and_then(|(path, format)| open_tracer(path, *format).ok());
        let mut auto = auto_archive(&config);
        let named = match &config.archive {
            Some(path) if auto.is_some() => match Served::open(path, &expectations(), config.check) {
                Ok(served) => Some(served),
                Err(why) => {
                    verbose::auto_rewrites(path, &why);
                    auto.as_mut().expect("checked above").unusable = Some(why);
                    None
                }
            },
            Some(path) => match open_archive(path, config.mode(), config.check) {
                Ok(served) => served,
                Err(why) => {
                    eprintln!("{why}");
                    std::process::exit(1);
                }
            },
            None => None,
        };
        let default = open_default(&config, named.as_ref());
        Self { config, tracer, auto, named, default }
    }

    /// Leaves the archives mapped, unused: their names may be interned.
    fn abandon(self) {
        self.named.into_iter().chain(self.default).for_each(Served::leak);
    }

    /// What start-up opened, as `sys` now says the options are (`config`):
    /// kept when the two readings agree; when only the default archive's
    /// path differs (start-up guessed the stdlib directory), that one is
    /// opened again; otherwise everything is. Mappings not kept stay mapped,
    /// unused (their names may be interned).
    fn reconciled(mut self, config: Config) -> Self {
        if self.config == config {
            return self;
        }
        let same_but_default = Config { default_archive: config.default_archive.clone(), ..self.config.clone() };
        if same_but_default != config {
            self.abandon();
            return Self::open(config);
        }
        if let Some(default) = self.default.take() {
            default.leak();
        }
        self.default = open_default(&config, self.named.as_ref());
        self.config = config;
        self
    }
}

/// The default archive `config` names, unless it is the named one or
/// cannot serve beside `named`.
fn open_default(config: &Config, named: Option<&Served>) -> Option<Served> {
    let default = match &config.default_archive {
        Some(path) if config.archive.as_deref() != Some(path.as_str()) => {
            open_default_archive(path, config.mode(), config.check)
        }
        _ => None,
    };
    // Never served yet: a default that cannot serve beside the named archive is just dropped.
    default.filter(|d| named.is_none_or(|n| layerable(n, d)))
}

/// What [`intern_startup_names`] opened, until [`init`] takes it.
static OPENED_AT_STARTUP: Mutex<Option<Opened>> = Mutex::new(None);

/// Called by the interpreter (patch `0008-pylifecycle-cds-startup-names`,
/// 3.13, main interpreter) right after it interned its static strings and
/// before anything else is interned: reads the options from its config,
/// opens the archives as `_cds` would, and interns each archive's start-up
/// names (the default archive's first: every program on the system shares
/// it), so that the interpreter's own interning of those names adopts the
/// archive's strs and no archived slot naming one is rewritten
/// (docs/DESIGN.md, "Start-up names"). Options it cannot read or that are
/// invalid leave everything to `init`, which reports them.
#[no_mangle]
pub extern "C" fn _PyCds_InternStartupNames() {
    // SAFETY: called by the interpreter with the GIL held, its config set.
    let Some(config) = (unsafe { Config::read_at_startup() }) else { return };
    let mut opened = Opened::open(config);
    for served in opened.default.iter_mut().chain(opened.named.iter_mut()) {
        served.intern_startup_names();
    }
    let mut slot = OPENED_AT_STARTUP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(earlier) = slot.replace(opened) {
        earlier.abandon();
    }
}

/// Creates the state unless this runtime already has it. GIL held. Exits
/// the process on a bad option (status 1, as CPython for its own), or on an
/// unusable archive under `-X cds_mode=on`.
pub fn init() {
    if with_state(|_| ()).is_some() {
        return;
    }
    let config = match Config::read() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("cds: {why}");
            std::process::exit(1);
        }
    };
    let at_startup = OPENED_AT_STARTUP.lock().unwrap_or_else(|e| e.into_inner()).take();
    // Start-up read what `sys` is made from; `sys` is the truth.
    let mut opened = match at_startup {
        Some(opened) => opened.reconciled(config),
        None => Opened::open(config),
    };
    super::startup_names::note_interned_at_init();
    let suffixes = extension_suffixes();
    for served in opened.named.iter_mut().chain(opened.default.iter_mut()) {
        served.set_extension_suffixes(suffixes.clone());
    }
    let Opened { config, tracer, auto, named, default } = opened;
    let wants_exit_hook = auto.is_some();
    let state =
        State { named: None, default: None, tracer, auto, path_hooks: None, mode: config.mode(), check: config.check };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_some() {
        // Another thread initialised meanwhile (opening ran unlocked): keep
        // its state; ours never served, its mappings are left unused.
        named.into_iter().chain(default).for_each(Served::leak);
        return;
    }
    let added = named.iter().count() + default.iter().count();
    let st = guard.insert(state);
    (st.named, st.default) = (named, default);
    st.publish(added);
    drop(guard);
    if wants_exit_hook {
        super::module::register_auto_exit();
    }
    // SAFETY: GIL held (module init); the callback is a plain function.
    unsafe { ffi::Py_AtExit(Some(forget_runtime)) };
}

/// Called by `Py_FinalizeEx` (after the interpreter is gone): drops the
/// state of the finished runtime. Its fix-ups pointed at objects of that
/// runtime (such as interned strings), so the next one starts over. The old
/// mapping is deliberately leaked, never unmapped: static data of the old
/// runtime may still point into it.
extern "C" fn forget_runtime() {
    let old = STATE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(old) = old {
        old.named.into_iter().chain(old.default).for_each(Served::leak);
    }
}

/// The `-X cds_auto` state the options ask for: None unless an archive is
/// named and `-X cds_mode` is not `off` (without a named archive there is
/// nothing to keep up to date: one warning line).
fn auto_archive(config: &Config) -> Option<AutoArchive> {
    if !config.auto || config.mode() == Mode::Off {
        return None;
    }
    let Some(path) = &config.archive else {
        eprintln!("cds: warning: -X cds_auto needs -X cds=PATH, the archive to keep up to date; ignored");
        return None;
    };
    let path = std::path::absolute(path).ok()?.into_os_string().into_string().ok()?;
    Some(AutoArchive { path, unusable: None, loaded: Tracer::in_memory() })
}

/// Under `-X cds_auto`, at exit: what to write, once, when the archive
/// could not be used or any of its modules was rejected (stale, shadowed,
/// damaged); None when it served as it should, or was already taken.
pub fn take_auto_rewrite() -> Option<AutoRewrite> {
    with_state(|st| {
        let auto = st.auto.take()?;
        let rejected = st.named.as_ref().map(|s| s.rejected()).unwrap_or_default();
        let reason = match (auto.unusable, rejected.first()) {
            (Some(why), _) => why,
            (None, Some((name, why))) => match rejected.len() {
                1 => format!("module {name} rejected: {why}"),
                n => format!("{n} modules rejected, first {name}: {why}"),
            },
            (None, None) => return None,
        };
        // What the default archive served is not the application's to hold.
        let from_default: HashSet<&String> = st.default.iter().flat_map(|d| d.served()).collect();
        let loaded = auto.loaded.recorded().iter().filter(|(name, _)| !from_default.contains(name)).cloned().collect();
        Some(AutoRewrite { path: auto.path, reason, loaded, layered: st.default.is_some() })
    })
    .flatten()
}

/// Opens the trace list, or warns and traces nothing.
fn open_tracer(path: &str, format: ListFormat) -> Result<Tracer, String> {
    Tracer::open(path, format).map_err(|e| {
        let why = format!("cds: warning: cannot write trace list {path}: {e}; not tracing");
        eprintln!("{why}");
        why
    })
}

/// Maps the archive at `path` as `mode` says: Ok(None) when it is not to be
/// used (`off`, or unusable under `auto`, after one warning line); Err with
/// the line to print when it is unusable under `on`. Calls into the
/// interpreter: the state must not be locked.
fn open_archive(path: &str, mode: Mode, check: Check) -> Result<Option<Served>, String> {
    if mode == Mode::Off {
        return Ok(None);
    }
    match Served::open(path, &expectations(), check) {
        Ok(s) => Ok(Some(s)),
        Err(why) if mode == Mode::On => Err(format!("cds: error: cannot use archive {path}: {why} (-X cds_mode=on)")),
        Err(why) => {
            eprintln!("cds: warning: cannot use archive {path}: {why}; importing normally");
            Ok(None)
        }
    }
}

/// Maps the build's default archive unless `-X cds_mode=off`. Nobody named
/// it, so nothing about it is worth a line unless `-X cds_verbose` asks: a
/// missing one is the normal case, and an unusable one (another build, a
/// damaged file) is skipped as any other, and the program imports normally.
fn open_default_archive(path: &str, mode: Mode, check: Check) -> Option<Served> {
    if mode == Mode::Off {
        return None;
    }
    match Served::open_if_present(path, &expectations(), check) {
        Ok(None) => {
            verbose::no_default_archive(path);
            None
        }
        Ok(Some(served)) => Some(served),
        Err(why) => {
            verbose::default_archive_unusable(path, &why);
            None
        }
    }
}

/// Whether `default` can serve under `named` (see [`Served::can_layer_with`]);
/// says why not under `-X cds_verbose`.
fn layerable(named: &Served, default: &Served) -> bool {
    let ok = named.can_layer_with(default);
    if !ok {
        verbose::default_archive_unusable(
            &default.path,
            &format!(
                "its code serials overlap those of {} (dump that with python -m cds dump to layer it)",
                named.path
            ),
        );
    }
    ok
}

/// Makes `served` the named archive this runtime serves from, in front of
/// the default one if that serves: Ok(true) when installed, Ok(false) when
/// another named archive already serves (`served` is then left unused),
/// Err when it cannot serve beside the default archive.
fn install_named(served: Served) -> Result<bool, String> {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(st) = guard.as_mut().filter(|st| st.named.is_none()) else {
        served.leak();
        return Ok(false);
    };
    if let Some(default) = &st.default {
        if !served.can_layer_with(default) {
            return Err(format!(
                "its code serials overlap those of the default archive {} serving (dump it with python -m cds dump)",
                default.path
            ));
        }
    }
    st.named = Some(served);
    st.publish(1);
    Ok(true)
}

/// Whether loaded modules are recorded: into a trace list, or for
/// `-X cds_auto` (importlib then asks `_cds` about every module it loads).
pub fn tracing() -> bool {
    with_state(|st| st.tracer.is_some() || st.auto.is_some()).unwrap_or(false)
}

/// Whether an archive serves.
pub fn serving() -> bool {
    with_state(|st| st.layers().next().is_some()).unwrap_or(false)
}

/// Why `cds.trace()` / `cds.share()` cannot start (the `_cds` call raises).
pub enum StartRefused {
    /// Another list or archive is already in use (its path).
    AlreadyStarted(String),
    /// The archive is unusable under `-X cds_mode=on` (the message).
    Unusable(String),
}

/// `cds.trace(path)`: starts recording loaded modules into `path` (the
/// `-X cds_trace` format). True once tracing into `path`; false after a
/// warning when it cannot be written.
pub fn start_tracing(path: &str) -> Result<bool, StartRefused> {
    if let Some(current) = with_state(|st| st.tracer.as_ref().map(|t| t.path.clone())).flatten() {
        return if current == path { Ok(true) } else { Err(StartRefused::AlreadyStarted(current)) };
    }
    let Ok(tracer) = open_tracer(path, ListFormat::NameAndPath) else { return Ok(false) };
    with_state(|st| match &st.tracer {
        None => {
            st.tracer = Some(tracer);
            Ok(true)
        }
        Some(t) if t.path == path => Ok(true),
        Some(t) => Err(StartRefused::AlreadyStarted(t.path.clone())),
    })
    .unwrap_or(Ok(false))
}

/// `cds.share(path)`: starts serving from the archive at `path`, as
/// `-X cds=PATH` would at start-up under the start-up `-X cds_mode`. True
/// once serving from `path`; false when the archive is not used (`off`, or
/// unusable under `auto`, after one warning line).
pub fn start_serving(path: &str) -> Result<bool, StartRefused> {
    let Some((current, mode, check)) = with_state(|st| (st.named.as_ref().map(|s| s.path.clone()), st.mode, st.check))
    else {
        return Ok(false);
    };
    if let Some(current) = current {
        return if current == path { Ok(true) } else { Err(StartRefused::AlreadyStarted(current)) };
    }
    match open_archive(path, mode, check) {
        Ok(Some(mut served)) => {
            served.set_extension_suffixes(extension_suffixes());
            match install_named(served) {
                Ok(true) => return Ok(true),
                Err(why) if mode == Mode::On => {
                    return Err(StartRefused::Unusable(format!("cds: error: cannot use archive {path}: {why}")))
                }
                Err(why) => {
                    eprintln!("cds: warning: cannot use archive {path}: {why}; importing normally");
                    return Ok(false);
                }
                Ok(false) => {}
            }
            // Another call installed an archive while this one was opening.
            match with_state(|st| st.named.as_ref().map(|s| s.path.clone())).flatten() {
                Some(current) if current == path => Ok(true),
                Some(current) => Err(StartRefused::AlreadyStarted(current)),
                None => Ok(false),
            }
        }
        Ok(None) => Ok(false),
        Err(why) => Err(StartRefused::Unusable(why)),
    }
}

/// Completes a lookup: fixes the module up when the answer waits for that,
/// with the state unlocked, then records the outcome.
fn complete<T>(answer: Option<Answer<T>>) -> Option<T> {
    match answer? {
        Answer::Now(found) => found,
        Answer::AfterPreparing(preparation, found) => fix_up(*preparation).map(|_| found),
    }
}

/// Relocates a claimed module with the state unlocked, then hands the
/// outcome to the layer that claimed it: the module's code when it is ready.
fn fix_up(preparation: Preparation) -> Option<usize> {
    let relocated = preparation.relocate();
    with_state(|st| st.layers_mut().find(|s| s.prepared(&preparation))?.finish(preparation, relocated)).flatten()
}

/// Fixes up every module of the named archive now (`Served::claim_all`),
/// as the stock hook starts: each relocated unlocked, as a lookup's is.
pub fn prepare_named() {
    let Some((path, claimed)) =
        with_state(|st| st.named.as_mut().map(|served| (served.path.clone(), served.claim_all()))).flatten()
    else {
        return;
    };
    if claimed.is_empty() {
        return; // fixed up already: site runs a venv's .pth files twice (`site.venv`, then `site.main`)
    }
    let ready = claimed.into_iter().filter_map(fix_up).count();
    verbose::prepared(&path, ready);
}

/// Hands the layers the listings importlib's `FileFinder`s hold for the
/// search path entries `dirs` they have not listed yet, read unlocked
/// (reading them runs the interpreter): a directory is not read twice.
fn adopt_file_finder_listings(dirs: &[String]) {
    let mut unlisted = with_state(|st| {
        let mut unlisted: Vec<String> = Vec::new();
        for served in st.layers() {
            unlisted.extend(served.unlisted_dirs(dirs).into_iter().map(str::to_owned));
        }
        unlisted
    })
    .unwrap_or_default();
    unlisted.sort_unstable();
    unlisted.dedup();
    if unlisted.is_empty() {
        return;
    }
    let found: Vec<_> = unlisted.into_iter().map(|dir| (file_finders::listing(&dir), dir)).collect();
    with_state(|st| {
        for served in st.layers_mut() {
            for (listing, dir) in &found {
                served.adopt_listing(dir, listing.clone());
            }
        }
    });
}

/// For `_cds.find`: `(origin, is_package)` of archived module `name` when it
/// can be served (see [`Served::find`]); None also once the program has
/// changed `sys.path_hooks`. `search_path` as [`file_finders::searched_entries`]
/// gives it; `cwd` asks for the current directory once for the call.
pub fn find(name: &str, search_path: Option<&[String]>, cwd: &Cwd) -> Option<(String, bool)> {
    if !serving() {
        return None;
    }
    let hooks = path_hooks();
    let top_level_path = if search_path.is_none() { searched_sys_path(cwd) } else { Vec::new() };
    adopt_file_finder_listings(search_path.unwrap_or(&top_level_path));
    let answer = with_state(|st| {
        if *st.path_hooks.get_or_insert_with(|| hooks.clone()) != hooks {
            return Answer::Now(None);
        }
        st.first_answer(|served, last| served.find(name, search_path, &top_level_path, last))
    });
    complete(answer)
}

/// For `_cds.get_code`: records `name` when tracing, then the address of the
/// archived code for `source_path`, if served.
pub fn get_code(name: &str, source_path: &str) -> Option<usize> {
    complete(with_state(|st| {
        st.recorders().for_each(|t| t.record(name, source_path));
        st.first_answer(|served, _| served.get_code(name, source_path))
    }))
}

/// For `_cds.get_frozen_code`: the same for a frozen module.
pub fn get_frozen_code(name: &str) -> Option<usize> {
    complete(with_state(|st| {
        st.recorders().for_each(|t| t.record(name, crate::format::FROZEN_ORIGIN));
        st.first_answer(|served, last| served.get_frozen_code(name, last))
    }))
}

/// For marshal (`_PyCds_ArchivedRefIsShared`): see [`Served::shared_for_marshal`].
pub fn archived_ref_is_shared(address: usize) -> bool {
    with_state(|st| st.layers_mut().find(|s| s.contains(address)).is_none_or(|s| s.shared_for_marshal(address)))
        .unwrap_or(true)
}

/// What `cds.stats()` reports, copied out so the dict is built unlocked.
#[derive(Default)]
pub struct Stats {
    /// The first layer's path.
    pub archive: Option<String>,
    /// Every layer's, in lookup order.
    pub archives: Vec<String>,
    pub served: Vec<String>,
    pub rejected: Vec<(String, String)>,
    pub modules: usize,
    pub mapped_at_preferred_base: bool,
    /// The archive's stamp names it: modules are not checked again.
    pub stamped: bool,
    pub tracing: bool,
}

pub fn stats() -> Stats {
    with_state(|st| {
        let mut stats = Stats { tracing: st.tracer.is_some(), ..Stats::default() };
        let layers: Vec<&Served> = st.layers().collect();
        stats.archive = layers.first().map(|s| s.path.clone());
        stats.archives = layers.iter().map(|s| s.path.clone()).collect();
        stats.served = layers.iter().flat_map(|s| s.served()).cloned().collect();
        stats.rejected = layers.iter().flat_map(|s| s.rejected()).cloned().collect();
        stats.modules = layers.iter().map(|s| s.module_count()).sum();
        stats.mapped_at_preferred_base = !layers.is_empty() && layers.iter().all(|s| s.at_preferred_base());
        stats.stamped = !layers.is_empty() && layers.iter().all(|s| s.stamped());
        stats
    })
    .unwrap_or_default()
}
