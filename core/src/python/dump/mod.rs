//! Writing an archive from live code objects (`_cds.dump`).
//!
//! - [`archive`]: the dump of a list of modules: source hashes, the layout
//!   for the preferred base and this process's runtime objects, the atomic
//!   write.
//! - [`writer`]: one module's code object graph laid out as archived objects.

mod archive;
mod writer;

pub use archive::{write_archive, DumpFailure, ModuleEntry, Skipped};
