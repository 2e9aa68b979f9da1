//! This runtime's cds state: the served archive and the trace list, behind
//! one mutex.
//!
//! Created by the first `PyInit__cds` (the main interpreter's, during
//! start-up) and shared by subinterpreters; dropped by `Py_FinalizeEx`
//! ([`forget_runtime`]), so that an embedder's next `Py_Initialize` reads
//! the options and maps the archive afresh.

use super::build_id::expectations;
use super::config::{Config, Mode};
use super::interpreter::{extension_suffixes, path_hooks, sys_path};
use super::serve::Served;
use super::{ffi, sys};
use crate::imports::trace::Tracer;
use std::sync::{Mutex, MutexGuard};

pub struct State {
    pub served: Option<Served>,
    pub tracer: Option<Tracer>,
    /// `sys.path_hooks` as it was at the first lookup (identities): the
    /// archive stands for what FileFinder would find, so once a program
    /// installs its own path hooks, imports go through them instead.
    path_hooks: Option<Vec<usize>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The state, locked; None before `_cds` is first imported.
pub fn state() -> MutexGuard<'static, Option<State>> {
    // A panic aborts the process (panic = "abort"), so the lock cannot be poisoned in practice.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the state unless this runtime already has it. GIL held.
pub fn init() {
    let mut guard = state();
    if guard.is_none() {
        *guard = Some(State::open());
        // SAFETY: GIL held (module init); the callback is a plain function.
        unsafe { ffi::Py_AtExit(Some(forget_runtime)) };
    }
}

/// Called by `Py_FinalizeEx` (after the interpreter is gone): drops the
/// state of the finished runtime. Its fix-ups pointed at objects of that
/// runtime (such as interned strings), so the next one starts over. The old
/// mapping is deliberately leaked, never unmapped: static data of the old
/// runtime may still point into it.
extern "C" fn forget_runtime() {
    if let Some(old) = state().take() {
        std::mem::forget(old.served);
    }
}

impl State {
    /// Reads the options, opens the trace list and maps the archive, as the
    /// options say. Exits the process on a bad option, or on an unusable
    /// archive under `-X cds_mode=on`.
    fn open() -> Self {
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
            (Some(path), Mode::Auto | Mode::On) => {
                match Served::open(path, &expectations(), config.check, extension_suffixes()) {
                    Ok(s) => Some(s),
                    Err(why) if config.mode() == Mode::On => {
                        eprintln!("cds: error: cannot use archive {path}: {why} (-X cds_mode=on)");
                        std::process::exit(1);
                    }
                    Err(why) => {
                        eprintln!("cds: warning: cannot use archive {path}: {why}; importing normally");
                        None
                    }
                }
            }
            _ => None,
        };
        State { served, tracer, path_hooks: None }
    }

    /// For `_cds.find`: `(origin, is_package)` of archived module `name`
    /// when it can be served (see [`Served::find`]); None also once the
    /// program has changed `sys.path_hooks`.
    pub fn find(&mut self, name: &str, search_path: Option<&[String]>) -> Option<(String, bool)> {
        let hooks = path_hooks();
        if *self.path_hooks.get_or_insert_with(|| hooks.clone()) != hooks {
            return None;
        }
        self.served.as_mut()?.find(name, search_path, sys_path)
    }

    /// For `_cds.get_code`: records `name` when tracing, then the archived
    /// code for `source_path`, if served.
    pub fn get_code(&mut self, name: &str, source_path: &str) -> Option<*mut sys::PyObject> {
        if let Some(t) = self.tracer.as_mut() {
            t.record(name, source_path);
        }
        self.served.as_mut()?.get_code(name, source_path)
    }

    /// For `_cds.get_frozen_code`: the same for a frozen module.
    pub fn get_frozen_code(&mut self, name: &str) -> Option<*mut sys::PyObject> {
        if let Some(t) = self.tracer.as_mut() {
            t.record(name, crate::format::FROZEN_ORIGIN);
        }
        self.served.as_mut()?.get_frozen_code(name)
    }
}
