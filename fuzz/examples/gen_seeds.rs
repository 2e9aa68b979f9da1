//! Writes the seed corpus of `archive_reader` (valid archives from
//! `cds_fuzz::seed_archives`) into the directory given as the argument.
fn main() {
    let dir = std::env::args().nth(1).expect("usage: gen_seeds DIR");
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    for (i, seed) in cds_fuzz::seed_archives().iter().enumerate() {
        let path = std::path::Path::new(&dir).join(format!("seed-{i}"));
        std::fs::write(&path, seed).expect("write seed");
    }
}
