//! The seed corpus of `archive_reader`: a few valid archives covering every
//! relocation kind, packages, an empty cold region and a longer table.

use cds_core::format::*;
use cds_testkit::{meta, sample_archive, HEX, ID};

pub fn seed_archives() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();

    // One module, one code object, no relocations, empty cold region.
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("solo")).unwrap();
    let code = m.alloc(Region::Hot, 48);
    m.finish(code);
    seeds.push(b.finish(HEX, ID).unwrap());

    // Three modules with every relocation kind.
    seeds.push(sample_archive());

    // Many small modules (a longer table to search).
    let mut b = ArchiveBuilder::new();
    for k in 0..24 {
        let name = format!("mod{k:02}.sub");
        let mut m = b.module(ModuleMeta { is_package: k % 5 == 0, ..meta(&name) }).unwrap();
        let code = m.alloc(Region::Hot, 32);
        let c = m.alloc(Region::Cold, 16);
        m.reloc(code, Target::Symbol(16));
        m.reloc(code.add(8), Target::Object(c));
        m.reloc(c.add(8), Target::Symbol(k));
        m.finish(code);
    }
    seeds.push(b.finish(HEX, ID).unwrap());
    seeds
}
