//! The glue between the archive format and the running interpreter.
//!
//! - [`module`]: the `_cds` built-in module: argument and result conversion only.
//! - [`state`]: this runtime's served archive and trace list, behind one mutex
//!   never held across a call into the interpreter.
//! - [`config`]: the `-X cds...` options and their environment equivalents.
//! - [`build_id`]: the identity of this interpreter build, which archives carry.
//! - [`image`]: the interpreter's loaded image, where its static objects lie.
//! - [`interpreter`]: what cds reads from the interpreter (`sys.path`, path hooks, ...).
//! - [`convert`]: Python objects to Rust values and back.
//! - [`serve`]: the mapped archive of this process and its per-module state.
//! - [`verbose`]: `-X cds_verbose` event lines.
//! - [`shapes`]: the walk over a module's archived objects that makes
//!   forged lengths and unrelocated pointers impossible before relocation.
//! - [`stamp`]: the verified stamp: a whole archive checked once, not per process.
//! - [`pool`]: the archive's name pool, interned once per name per process.
//! - [`pooled_names`]: the interning hook that makes names other code interns the pool's.
//! - [`startup_names`]: the names the interpreter interns at start-up, which
//!   archives lay out first and processes intern before the interpreter's own.
//! - [`marshal`]: marshal's sharing test for archived objects.
//! - [`mapping`]: the archive's memory mapping, at the preferred base when free.
//! - [`dump`]: writes an archive from live code objects.
//! - [`objects`]: reading and writing the bytes of archived objects.
//! - [`symbols`]: runtime objects (types, singletons) named by id in archives.
//! - [`version`]: everything that differs between CPython versions (object
//!   layouts cds rewrites, refcount encoding). The one place with version cfgs.
//!
//! Search-path resolution, source freshness and the trace list need no
//! interpreter and live in [`crate::imports`].

mod build_id;
mod config;
mod convert;
mod dump;
mod file_finders;
mod image;
mod interpreter;
mod mapping;
mod marshal;
mod module;
pub use module::PyInit__cds;
mod objects;
mod pool;
mod pooled_names;
mod serve;
mod shapes;
mod stamp;
mod startup_names;
mod state;
mod symbols;
mod verbose;
mod version;

pub use cpython_sys as sys;
pub use pyo3_ffi as ffi;

/// Converts pyo3-ffi's `PyObject` to cpython-sys's (same C type, two Rust names).
#[inline]
pub(crate) fn as_sys(op: *mut ffi::PyObject) -> *mut sys::PyObject {
    op.cast()
}
