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
/// `links` metadata does (DEP_CPYTHON_CDS_VERSION_MINOR).
fn version_cfgs() {
    for minor in 11..=15 {
        println!("cargo::rustc-check-cfg=cfg(Py_3_{minor})");
    }
    println!("cargo::rustc-check-cfg=cfg(Py_DEBUG)");
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_PY_DEBUG");
    if std::env::var("DEP_CPYTHON_CDS_PY_DEBUG").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=Py_DEBUG");
    }
    println!("cargo:rerun-if-env-changed=DEP_CPYTHON_CDS_VERSION_MINOR");
    if let Some(target) = std::env::var("DEP_CPYTHON_CDS_VERSION_MINOR").ok().and_then(|v| v.parse::<u32>().ok()) {
        for minor in (11..=15).filter(|m| *m <= target) {
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
