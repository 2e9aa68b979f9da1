//! Hashes the core's own sources into `CDS_CORE_SOURCE_HASH`: part of the
//! build id, so an archive written by one build of the core is refused by a
//! differently built one even when the interpreter's version string matches.
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::Path;

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, files);
        } else {
            files.push(p);
        }
    }
}

/// Re-emits cpython-sys's cumulative version cfgs (`Py_3_11`, `Py_3_12`, …)
/// for this crate: build-script cfgs do not cross crate boundaries, but
/// `links` metadata does. cpython-sys derives the minors from
/// harness/versions.txt (DEP_CPYTHON_CDS_KNOWN_MINORS) and reads the tree's
/// (DEP_CPYTHON_CDS_VERSION_MINOR); without the `python` feature there is no
/// cpython-sys, and no code that tests a version.
fn version_cfgs() {
    println!("cargo::rustc-check-cfg=cfg(Py_DEBUG)");
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_PY_DEBUG");
    if std::env::var("DEP_CPYTHON_CDS_PY_DEBUG").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=Py_DEBUG");
    }
    // A stock interpreter's installed headers (the `_cds` extension): no
    // patches, so no hooks into the interpreter.
    println!("cargo::rustc-check-cfg=cfg(cds_stock)");
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_STOCK");
    if std::env::var("DEP_CPYTHON_CDS_STOCK").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=cds_stock");
    }
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_KNOWN_MINORS");
    let known: Vec<u32> = std::env::var("DEP_CPYTHON_CDS_KNOWN_MINORS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|m| m.parse().ok())
        .collect();
    for minor in &known {
        println!("cargo::rustc-check-cfg=cfg(Py_3_{minor})");
    }
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_VERSION_MINOR");
    if let Some(target) = std::env::var("DEP_CPYTHON_CDS_VERSION_MINOR").ok().and_then(|v| v.parse::<u32>().ok()) {
        for minor in known.iter().filter(|m| **m <= target) {
            println!("cargo:rustc-cfg=Py_3_{minor}");
        }
    }
}

fn main() {
    version_cfgs();
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    walk(Path::new("src"), &mut files);
    files.sort();
    // DefaultHasher::new() uses fixed keys: the same sources give the same hash.
    let mut h = DefaultHasher::new();
    for f in &files {
        h.write(f.to_string_lossy().as_bytes());
        h.write(&std::fs::read(f).unwrap_or_default());
    }
    println!("cargo:rustc-env=CDS_CORE_SOURCE_HASH={:016x}", h.finish());
}
