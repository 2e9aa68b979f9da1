//! The glue between the archive format and the running interpreter.
//!
//! - [`version`]: everything that differs between CPython versions (object
//!   layouts cds rewrites, refcount encoding). The one place with version cfgs.
//! - [`symbols`]: runtime objects (types, singletons) named by id in archives.
//! - [`objects`]: reading and writing the bytes of archived objects.
//! - [`dump`]: walks live code objects and lays them out in an archive.
//! - [`serve`]: the mapped archive of this process and its per-module state.
//! - [`config`]: the `-X cds...` options and their environment equivalents.
//! - [`trace`]: the list of loaded modules written under `-X cds_trace`.
//! - [`module`]: the `_cds` built-in module.

mod config;
mod dump;
mod mapping;
mod module;
mod objects;
mod resolve;
mod serve;
mod symbols;
mod trace;
mod version;

pub use cpython_sys as sys;
pub use pyo3_ffi as ffi;

/// Converts pyo3-ffi's `PyObject` to cpython-sys's (same C type, two Rust names).
#[inline]
pub(crate) fn as_sys(op: *mut ffi::PyObject) -> *mut sys::PyObject {
    op.cast()
}
