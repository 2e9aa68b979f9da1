//! `cds-reseal ARCHIVE`: recomputes every checksum and the recorded size of
//! an archive file in place, after a test edited it. It forges what anyone
//! who can write the file can forge (checksums are not authenticity), so the
//! interpreter tests can reach the checks behind them (tests/test_forged.py).
//!
//! `cds-reseal ARCHIVE --relocs MODULE` prints the module's relocation
//! records, one `slot target kind` line each (kind as in docs/FORMAT.md);
//! `cds-reseal ARCHIVE --set-relocs MODULE` replaces them with the lines on
//! standard input, then reseals.

use cds_core::format::{Reloc, RelocKind};
use cds_testkit::records::{relocations_of, replace_relocations};
use cds_testkit::{reseal, Reseal};
use std::io::Read;

fn fail(path: &str, why: impl std::fmt::Display) -> ! {
    eprintln!("cds-reseal: {path}: {why}");
    std::process::exit(1)
}

fn parse_records(text: &str) -> Result<Vec<Reloc>, String> {
    text.lines()
        .map(|line| {
            let n: Vec<u32> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{line:?}: {e}"))?;
            let [slot, target, kind] = n[..] else { return Err(format!("{line:?}: want `slot target kind`")) };
            let kind = RelocKind::from_u32(kind).ok_or(format!("{line:?}: unknown kind"))?;
            Ok(Reloc { slot, target, kind })
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, action) = match args.as_slice() {
        [_, path] => (path, None),
        [_, path, flag, module] if flag == "--relocs" || flag == "--set-relocs" => (path, Some((flag, module))),
        _ => {
            eprintln!("usage: cds-reseal ARCHIVE [--relocs MODULE | --set-relocs MODULE]");
            std::process::exit(2);
        }
    };
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| fail(path, e));
    match action {
        None => reseal(&mut bytes, Reseal::ALL),
        Some((flag, module)) if flag == "--relocs" => {
            for r in relocations_of(&bytes, module).unwrap_or_else(|e| fail(path, e)) {
                println!("{} {} {}", r.slot, r.target, r.kind as u32);
            }
            return;
        }
        Some((_, module)) => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).unwrap_or_else(|e| fail(path, e));
            let records = parse_records(&text).unwrap_or_else(|e| fail(path, e));
            replace_relocations(&mut bytes, module, records).unwrap_or_else(|e| fail(path, e));
        }
    }
    std::fs::write(path, &bytes).unwrap_or_else(|e| fail(path, e));
}
