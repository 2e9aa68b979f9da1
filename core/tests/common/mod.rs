//! What the format tests share: the interpreter a sample archive claims to
//! be made by, and the table metadata of a sample module.

use cds_core::format::*;

pub const HEX: u32 = 0x030b02f0;
pub const ID: [u8; 16] = *b"0123456789abcdef";
pub const EXPECT: Expectations = Expectations { python_hexversion: HEX, build_id: ID };

/// Metadata of module `name` (`pkg` is a package).
pub fn meta(name: &str) -> ModuleMeta {
    ModuleMeta {
        name: name.into(),
        origin: format!("/lib/{name}.py"),
        is_package: name == "pkg",
        source_mtime_ns: 1_700_000_000_123_456_789,
        source_size: 4321,
        source_hash: 0,
        source_dev: 0,
        source_ino: 0,
        source_realpath: String::new(),
    }
}
