//! The input describes an archive (modules, objects, relocations: built with
//! `ArchiveBuilder`, which must produce an archive that passes every check),
//! then mutations of it (byte flips, boundary values in header, table and
//! relocation fields, truncation, extension, splices), then which checksums
//! to recompute so the mutation reaches the checks behind them. The result
//! goes through the same reader sequence as `archive_reader`.
//! See `cds_fuzz::run_mutated_archive` and docs/RELIABILITY.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cds_fuzz::run_mutated_archive(data);
});
