//! The identity of this interpreter build, which archives carry: an archive
//! is only read by an interpreter with the same version string (which names
//! its build date and compiler), the same core sources, the same kind (the
//! patched interpreter, or the extension on a stock one) and the same sizes
//! of the code, str and tuple structs as the one that wrote it.

use super::{ffi, sys};
use crate::format::Expectations;
use std::ffi::CStr;
use std::mem::size_of;

/// What archives made by this interpreter build must carry.
pub fn expectations() -> Expectations {
    Expectations { python_hexversion: sys::PY_VERSION_HEX, build_id: build_id() }
}

/// xxh3-128 of the interpreter's version string, the hash of the core's
/// sources (`CDS_CORE_SOURCE_HASH`, from build.rs) and the sizes of the
/// objects cds lays out.
fn build_id() -> [u8; 16] {
    let mut id_source = interpreter_version();
    id_source.push('\0');
    id_source.push_str(env!("CDS_CORE_SOURCE_HASH"));
    // The extension on a stock interpreter keeps code versions apart in its
    // own way (`version::reserve_code_versions`): its archives are its own.
    if cfg!(cds_stock) {
        id_source.push_str("\0stock");
    }
    id_source.push_str(&format!(
        "\0code={} str={} tuple={}",
        size_of::<sys::PyCodeObject>(),
        size_of::<sys::PyASCIIObject>(),
        size_of::<sys::PyTupleObject>()
    ));
    xxhash_rust::xxh3::xxh3_128(id_source.as_bytes()).to_le_bytes()
}

/// `Py_GetVersion()`: version, build date and compiler of this interpreter.
fn interpreter_version() -> String {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }.to_string_lossy().into_owned()
}
