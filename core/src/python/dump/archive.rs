//! Dumps a list of modules into an archive file.
//!
//! Each module is laid out on its own: one that cannot be archived (an
//! unsupported constant, an unreadable source) is left out with a reason and
//! the rest are still written. The file is written atomically
//! ([`crate::write::write_atomic`]).

use super::writer::ObjectWriter;
use crate::format::{ArchiveBuilder, Layer, ModuleMeta, FROZEN_ORIGIN};
use crate::imports::freshness::{content_hash, ResolvedFile};
use crate::python::interpreter::compile_settings;
use crate::python::symbols::{SymbolTable, SYMBOL_COUNT};
use crate::python::{build_id, image, sys};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// One module to archive, as `cds.dump` describes it.
pub struct ModuleEntry {
    pub name: String,
    /// The source file, or [`FROZEN_ORIGIN`] for a frozen module.
    pub origin: String,
    pub is_package: bool,
    /// `st_mtime_ns` and `st_size` of the source when its code was read.
    pub source_mtime_ns: i64,
    pub source_size: u64,
    /// The module's code object; the caller holds a reference to it.
    pub code: *mut sys::PyObject,
    /// Every process imports it while starting (`ModuleBuilder::imported_at_startup`).
    pub at_startup: bool,
}

/// A module left out of the archive: (name, reason).
pub type Skipped = (String, String);

/// Why no archive was written.
#[derive(Debug)]
pub enum DumpFailure {
    /// The modules do not fit the format (e.g. the archive would exceed 4 GiB).
    Layout(String),
    /// The file could not be written.
    Write { path: String, error: std::io::Error },
}

impl fmt::Display for DumpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Layout(why) => f.write_str(why),
            Self::Write { path, error } => write!(f, "cannot write {path}: {error}"),
        }
    }
}

/// Writes the archive `path` for `entries`, in order, laid out as `layer`. An entry the caller
/// already refused (`Err`) is passed through to the result as it is, so the
/// skipped list keeps the order of the entries. Returns the modules left out.
///
/// # Safety
/// The GIL is held and every entry's `code` is a live object.
pub unsafe fn write_archive(
    entries: impl IntoIterator<Item = Result<ModuleEntry, Skipped>>,
    path: &str,
    layer: Layer,
) -> Result<Vec<Skipped>, DumpFailure> {
    // The code objects were compiled (or unmarshalled) by this process.
    let mut builder = ArchiveBuilder::with_compile_settings(compile_settings());
    builder.set_layer(layer);
    let mut skipped = Vec::new();
    // SAFETY: GIL held (caller).
    let startup = unsafe { crate::python::startup_names::interned_at_init() };
    for entry in entries {
        let added = entry.and_then(|entry| {
            let name = entry.name.clone();
            // SAFETY: forwarded from the caller.
            unsafe { add_module(&mut builder, entry, &startup) }.map_err(|why| (name, why))
        });
        if let Err(left_out) = added {
            skipped.push(left_out);
        }
    }
    let bytes = lay_out(builder, layer)?;
    crate::write::write_atomic(Path::new(path), &bytes)
        .map_err(|error| DumpFailure::Write { path: path.to_owned(), error })?;
    // Checked once here, so that serving processes need not check again.
    if let Err(why) = crate::python::stamp::write(Path::new(path)) {
        report_unstamped(path, &why);
    }
    Ok(skipped)
}

/// Says why the archive just written at `path` has no stamp (it is served
/// all the same, each module checked at its first import). Silent when
/// another dump replaced the file meanwhile: that dump stamps its own.
fn report_unstamped(path: &str, why: &str) {
    if why != crate::python::stamp::CHANGED_WHILE_CHECKED {
        eprintln!("cds: warning: archive {path} written but not stamped: {why}");
    }
}

/// Adds one module to `builder`, or says why it cannot be archived.
///
/// # Safety
/// The GIL is held and `entry.code` is a live object.
unsafe fn add_module(builder: &mut ArchiveBuilder, entry: ModuleEntry, startup: &HashSet<usize>) -> Result<(), String> {
    // The content hash serves `-X cds_check=hash`, the file's identity the
    // stat check; frozen modules have no file.
    let (source_hash, file) = if entry.origin == FROZEN_ORIGIN {
        (0, None)
    } else {
        let file = ResolvedFile::of(&entry.origin).map_err(|e| format!("cannot stat {}: {e}", entry.origin))?;
        let bytes = std::fs::read(&entry.origin).map_err(|e| format!("cannot read {}: {e}", entry.origin))?;
        // The code was read from the file the caller stat'ed: a file
        // replaced since is not the one the code came from.
        if (file.size, file.mtime_ns) != (entry.source_size, entry.source_mtime_ns) || file.size != bytes.len() as u64 {
            return Err("source changed while it was being read".into());
        }
        (content_hash(&bytes), Some(file))
    };
    let file = file.unwrap_or(ResolvedFile { size: 0, mtime_ns: 0, dev: 0, ino: 0, realpath: String::new() });
    let meta = ModuleMeta {
        name: entry.name,
        origin: entry.origin,
        is_package: entry.is_package,
        source_mtime_ns: entry.source_mtime_ns,
        source_size: entry.source_size,
        source_hash,
        source_dev: file.dev,
        source_ino: file.ino,
        source_realpath: file.realpath,
    };
    let mut module = builder.module(meta).map_err(|e| e.to_string())?;
    if entry.at_startup {
        module.imported_at_startup();
    }
    let code = {
        let mut writer = ObjectWriter::new(&mut module, startup);
        // SAFETY: forwarded from the caller.
        unsafe { writer.emit_module_code(entry.code) }.map_err(|e| e.to_string())?
    };
    module.finish(code);
    Ok(())
}

/// The archive bytes, with every pointer laid out for the preferred base and
/// this process's runtime objects: a process that maps the archive there,
/// with its runtime objects at the same addresses (a non-PIE interpreter of
/// this build), finds every slot already right and writes nothing. Where
/// the interpreter's image moves with ASLR (PIE, or a shared libpython),
/// its objects' slots are left 0, as every process writes them anyway:
/// the same bytes from every dumping process.
fn lay_out(builder: ArchiveBuilder, layer: Layer) -> Result<Vec<u8>, DumpFailure> {
    let expect = build_id::expectations();
    let symbols = SymbolTable::new();
    // Resolved up front: `finish_at` takes a plain `Fn`. An id this process
    // cannot resolve is laid out as 0: the loader writes its own address
    // there (or refuses the module).
    let symbol_values: Vec<u64> =
        (0..SYMBOL_COUNT).map(|id| symbols.resolve(id).filter(|_| image::fixed()).unwrap_or(0) as u64).collect();
    builder
        .finish_at(
            expect.python_hexversion,
            expect.build_id,
            layer.preferred_base(),
            |id| symbol_values.get(id as usize).copied().unwrap_or(0),
            crate::python::symbols::is_static,
        )
        .map_err(|e| DumpFailure::Layout(e.to_string()))
}
