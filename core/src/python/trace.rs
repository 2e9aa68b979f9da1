//! `-X cds_trace=PATH`: records every module whose code is loaded.
//!
//! One line per module, `name<TAB>source path`, appended with a single
//! `write` on an `O_APPEND` descriptor, so many processes can trace into one
//! list at once without interleaving lines (each line is far below PIPE_BUF
//! and regular-file appends are atomic on Linux).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;

pub struct Tracer {
    file: File,
    seen: HashSet<String>,
}

impl Tracer {
    pub fn open(path: &str) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file, seen: HashSet::new() })
    }

    /// Appends `name` once per process.
    pub fn record(&mut self, name: &str, source_path: &str) {
        if name.contains(['\t', '\n']) || source_path.contains(['\t', '\n']) || !self.seen.insert(name.to_owned()) {
            return;
        }
        let line = format!("{name}\t{source_path}\n");
        // A failed append only loses a trace line; the program itself must not notice.
        let _ = self.file.write_all(line.as_bytes());
    }
}
