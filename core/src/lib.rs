//! cds core: code data sharing for CPython.
//!
//! - [`format`]: the archive layout, validation and relocation, on plain bytes.
//! - [`imports`]: what a normal import would see on the file system (search
//!   path resolution, source freshness) and the trace list; std only.
//! - [`write`]: atomic archive writing.
//! - `python` (feature `python`): the glue linked into the patched interpreter:
//!   the `_cds` built-in module, dumping live code objects, serving them.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod format;
pub mod imports;
pub mod write;

#[cfg(feature = "python")]
mod python;
