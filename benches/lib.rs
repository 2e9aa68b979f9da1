//! Empty: `cds-benches` only holds `benches/format.rs` (criterion benches of
//! the archive format) and the end-to-end driver `run.py`. See
//! docs/PERFORMANCE.md.
