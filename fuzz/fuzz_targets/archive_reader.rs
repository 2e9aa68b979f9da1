//! The input is an archive. It is parsed with the expectations its own
//! header claims (so the version and build-id checks do not stop it), then
//! every module goes through `module`, `verify`, `apply_relocations` (with
//! fake fix-ups that never dereference) and `find`. The same bytes then go
//! through again with every checksum and the file size recomputed, since a
//! fuzzer cannot forge xxh3 and would otherwise never get past the header.
//! See `cds_fuzz::run_archive_reader` and docs/RELIABILITY.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cds_fuzz::run_archive_reader(data);
});
