//! `cds-reseal ARCHIVE`: recomputes every checksum and the recorded size of
//! an archive file in place, after a test edited it. It forges what anyone
//! who can write the file can forge (checksums are not authenticity), so the
//! interpreter tests can reach the checks behind them (tests/test_forged.py).

use cds_testkit::{reseal, Reseal};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        eprintln!("usage: cds-reseal ARCHIVE");
        std::process::exit(2);
    };
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cds-reseal: {path}: {e}");
        std::process::exit(1)
    });
    reseal(&mut bytes, Reseal::ALL);
    if let Err(e) = std::fs::write(path, &bytes) {
        eprintln!("cds-reseal: {path}: {e}");
        std::process::exit(1);
    }
}
