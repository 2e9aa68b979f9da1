//! cds core: code data sharing for CPython.
//!
//! - [`format`]: the archive layout, validation and relocation, on plain bytes.
//! - [`imports`]: what a normal import would see on the file system (search
//!   path resolution, source freshness) and the trace list; std only.
//! - [`inspect`]: the JSON report of `python -m cds info` / `verify`.
//! - [`write`]: atomic archive writing that planted files cannot subvert.
//! - [`archive_file`]: whether the archive file may be trusted, and whether
//!   it changed after it was opened.
//! - [`option_path`]: the `%v` substitution of path options.
//! - [`stamp_file`]: the verified stamp's text and the archive file it names.
//! - [`fault_guard`]: one clear line when the mapped file is truncated or
//!   overwritten under the process.
//! - `python` (feature `python`): the glue linked into the patched interpreter:
//!   the `_cds` built-in module, dumping live code objects, serving them.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod archive_file;
pub mod fault_guard;
pub mod format;
pub mod imports;
pub mod inspect;
pub mod option_path;
pub mod stamp_file;
pub mod write;

#[cfg(feature = "python")]
mod python;
/// The `_cds` module's entry point: the patched interpreter's built-in, or
/// the extension module (ext/) on a stock one.
#[cfg(feature = "python")]
pub use python::PyInit__cds;
