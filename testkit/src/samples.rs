//! Sample inputs: the interpreter a sample archive claims to be made by,
//! the table metadata of a sample module, and a small valid archive that
//! uses every relocation kind.

use cds_core::format::*;

/// The Python version the samples claim (3.11.2 final).
pub const HEX: u32 = 0x030b_02f0;
/// The build id the samples claim.
pub const ID: [u8; 16] = *b"0123456789abcdef";
/// What a reader must expect to accept the samples.
pub const EXPECT: Expectations = Expectations { python_hexversion: HEX, build_id: ID };

/// Metadata of module `name` (`pkg` is a package), with source at `/lib/NAME.py`.
pub fn meta(name: &str) -> ModuleMeta {
    ModuleMeta {
        name: name.into(),
        origin: format!("/lib/{name}.py"),
        is_package: name == "pkg",
        source_mtime_ns: 1_700_000_000_123_456_789,
        source_size: 4321,
        source_hash: 0x1234_5678_9abc_def0,
        source_dev: 0x801,
        source_ino: 4242,
        source_realpath: format!("/real/lib/{name}.py"),
    }
}

/// Three modules (`zeta`, `alpha`, `pkg`: given out of order, so the table
/// is sorted by the builder) using every relocation kind. Each has a code
/// object in the hot region pointing at a str-like and a tuple-like object
/// in the cold one, and at one name of the pool (the same for all three).
pub fn sample_archive() -> Vec<u8> {
    let mut b = ArchiveBuilder::new();
    for name in ["zeta", "alpha", "pkg"] {
        let mut m = b.module(meta(name)).unwrap();
        let s = m.alloc(Region::Cold, 16);
        m.bytes_mut(s, 16).copy_from_slice(&[7u8; 16]);
        let tuple = m.alloc(Region::Cold, 32);
        m.reloc(tuple, Target::Symbol(17));
        m.reloc(tuple.add(24), Target::Object(s));
        let code = m.alloc(Region::Hot, 64);
        m.reloc(code.add(8), Target::Symbol(16));
        m.reloc(code.add(16), Target::Object(s));
        m.reloc(code.add(24), Target::InternedStr(s));
        m.reloc(code.add(32), Target::FrozenSet(tuple));
        m.reloc(code.add(40), Target::Symbol(1024 + b'x' as u32));
        m.reloc(code, Target::CodeInit);
        m.reloc(code.add(48), Target::Interior(s.add(4)));
        let name = m.pooled(&[9u8; 32], 8, 18, false, 9);
        m.reloc(code.add(56), Target::InternedStr(name));
        m.finish(code);
    }
    b.finish(HEX, ID).unwrap()
}
