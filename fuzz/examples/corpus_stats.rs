//! How deep a corpus gets into the reader: replays every file of a corpus
//! directory through a target's code (outside libFuzzer) and counts inputs
//! that parse, modules that pass their entry check, verify, and relocate.
//!
//!   cargo run --example corpus_stats -- archive_reader corpus/archive_reader
use cds_fuzz::Outcome;

fn main() {
    let mut args = std::env::args().skip(1);
    let (target, dir) = (args.next().expect("TARGET"), args.next().expect("DIR"));
    let mut totals: Vec<(&str, usize, Outcome)> = Vec::new();
    let mut add = |label: &'static str, o: Outcome| {
        let i = totals.iter().position(|t| t.0 == label).unwrap_or_else(|| {
            totals.push((label, 0, Outcome::default()));
            totals.len() - 1
        });
        let t = &mut totals[i];
        t.1 += o.parsed as usize;
        t.2.modules += o.modules;
        t.2.verified += o.verified;
        t.2.relocated += o.relocated;
    };
    let mut files = 0;
    for e in std::fs::read_dir(&dir).expect("corpus dir").flatten() {
        let data = std::fs::read(e.path()).expect("read");
        files += 1;
        match target.as_str() {
            "archive_reader" => {
                let [raw, sealed] = cds_fuzz::run_archive_reader(&data);
                add("as is", raw);
                add("resealed", sealed);
            }
            "mutated_archive" => add("mutated", cds_fuzz::run_mutated_archive(&data)),
            _ => panic!("unknown target {target}"),
        }
    }
    for (label, parsed, o) in totals {
        println!(
            "{target} ({label}): {files} inputs, {parsed} parsed, {} modules passed entry checks, {} verified, {} relocated",
            o.modules, o.verified, o.relocated
        );
    }
}
