//! `-X cds_verbose=1|2` (`PYTHONCDSVERBOSE`, `PYCDSVERBOSE`): one stderr line
//! per event, as the JDK's `-Xlog:cds`. Level 1: each module served, and each
//! archived module rejected with its reason; level 2 also each module
//! imported normally that the archive does not hold ("missed") and the
//! archive's opening.
//!
//! Under `-X importtime` (or `PYTHONPROFILEIMPORTTIME`) the served lines are
//! written at every level, so the import time profile shows which modules
//! came from the archive.
//!
//! Written with Rust's stderr, never `sys.stderr`: these are called with the
//! state locked, where nothing may run Python (`super::state`).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);
/// `-X importtime`: each served module gets its line at level 0 too, just
/// before the module's own `import time:` line, marking it as archived.
static MARK_SERVED: AtomicBool = AtomicBool::new(false);

/// Sets the level for this runtime (from the options, at `_cds` init).
pub fn set_level(level: u8, mark_served: bool) {
    LEVEL.store(level, Ordering::Relaxed);
    MARK_SERVED.store(mark_served, Ordering::Relaxed);
}

/// This runtime's level.
pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

fn at(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

pub fn served(name: &str, archive: &str) {
    if at(1) || MARK_SERVED.load(Ordering::Relaxed) {
        eprintln!("cds: served {name} from {archive}");
    }
}

pub fn rejected(name: &str, why: &str) {
    if at(1) {
        eprintln!("cds: rejected {name}: {why}");
    }
}

pub fn missed(name: &str, archive: &str) {
    if at(2) {
        eprintln!("cds: missed {name}: not in {archive}");
    }
}

/// `startup_names`: how many of its names were interned before the
/// interpreter's own (`state::_PyCds_InternStartupNames`).
pub fn opened(archive: &str, modules: usize, at_preferred_base: bool, stamped: bool, startup_names: usize) {
    if at(2) {
        let place = if at_preferred_base { "at its preferred base" } else { "relocated" };
        let checks = if stamped { "verified by its stamp" } else { "modules checked at first import" };
        eprintln!(
            "cds: opened {archive}: {modules} modules, mapped {place}, {checks}, {startup_names} start-up names interned first"
        );
    }
}

/// The named archive's modules fixed up as the stock hook started
/// (`state::prepare_named`).
pub fn prepared(archive: &str, modules: usize) {
    if at(2) {
        eprintln!("cds: fixed up {modules} modules of {archive} at start");
    }
}

pub fn stamp_ignored(archive: &str, why: &str) {
    if at(2) {
        eprintln!("cds: stamp of {archive} not used: {why}");
    }
}

pub fn no_default_archive(path: &str) {
    if at(2) {
        eprintln!("cds: no default archive {path}");
    }
}

pub fn default_archive_unusable(path: &str, why: &str) {
    if at(1) {
        eprintln!("cds: default archive {path} not used: {why}");
    }
}

pub fn auto_rewrites(archive: &str, why: &str) {
    if at(1) {
        eprintln!("cds: archive {archive} not used: {why}; rewriting it at exit (-X cds_auto)");
    }
}
