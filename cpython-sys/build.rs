//! Generates bindings against the headers of one configured CPython tree.
//!
//! Header discovery, in order:
//! 1. `CDS_PYTHON_SRC`: a CPython source tree on which `./configure` has run
//!    (it must hold `Include/` and `pyconfig.h`). The harness sets it.
//! 2. otherwise the build fails with a message saying what to set.
//!
//! The tree's version (`Include/patchlevel.h`) must be one of the supported
//! versions, the first column of `harness/versions.txt`, the one list of
//! them; `CDS_ALLOW_UNSUPPORTED=1` lets a port in progress build
//! (docs/PORTING.md).
//!
//! Emits cumulative version cfgs (`Py_3_11`, `Py_3_12`, `Py_3_13`, … meaning
//! "this version or newer"), and `Py_DEBUG` for `--with-pydebug` trees (from
//! `pyconfig.h`). cds-core's build script gets them through the `links`
//! metadata: `version_minor`, `known_minors` (every minor a cfg is named
//! for) and `py_debug`.
use std::env;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The list of supported versions, relative to this crate.
const VERSIONS_FILE: &str = "../harness/versions.txt";

fn main() {
    println!("cargo:rerun-if-env-changed=CDS_PYTHON_SRC");
    println!("cargo:rerun-if-env-changed=CDS_ALLOW_UNSUPPORTED");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo::rustc-check-cfg=cfg(Py_DEBUG)");
    let supported = supported_minors();
    let src = match env::var_os("CDS_PYTHON_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "cpython-sys: set CDS_PYTHON_SRC to a configured CPython source tree \
             (the harness does this: `make python-3.11-cds`)"
        ),
    };
    let include = src.join("Include");
    if !src.join("pyconfig.h").is_file() || !include.join("Python.h").is_file() {
        panic!(
            "cpython-sys: {} is not a configured CPython tree (needs Include/Python.h and pyconfig.h; run ./configure)",
            src.display()
        );
    }
    println!("cargo:rerun-if-changed={}", src.join("pyconfig.h").display());

    let (major, minor) = read_version(&include.join("patchlevel.h"));
    assert_eq!(major, 3, "cpython-sys: only CPython 3 is supported");
    if !supported.contains(&minor) && env::var("CDS_ALLOW_UNSUPPORTED").as_deref() != Ok("1") {
        let list: Vec<String> = supported.iter().map(|m| format!("3.{m}")).collect();
        panic!(
            "cpython-sys: CPython 3.{minor} ({}) is not supported; supported: {} (harness/versions.txt; \
             CDS_ALLOW_UNSUPPORTED=1 builds a port in progress, see docs/PORTING.md)",
            src.display(),
            list.join(", ")
        );
    }
    let known = cfg_minors(&supported, minor);
    for m in known.clone() {
        println!("cargo::rustc-check-cfg=cfg(Py_3_{m})");
    }
    for m in known.clone().filter(|m| *m <= minor) {
        println!("cargo:rustc-cfg=Py_3_{m}");
    }
    let known: Vec<String> = known.map(|m| m.to_string()).collect();
    println!("cargo:known_minors={}", known.join(","));
    println!("cargo:version_minor={minor}");
    // --with-pydebug builds check invariants the core must respect there.
    let pyconfig = fs::read_to_string(src.join("pyconfig.h")).unwrap_or_default();
    let debug = pyconfig.lines().any(|l| l.trim() == "#define Py_DEBUG 1");
    if debug {
        println!("cargo:rustc-cfg=Py_DEBUG");
    }
    println!("cargo:py_debug={}", debug as u8);

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(format!("-I{}", src.display()))
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("-I{}", include.join("internal").display()))
        .clang_arg("-std=c11")
        .allowlist_function("_?Py.*")
        .allowlist_var("_?Py.*")
        .allowlist_type("_?Py.*")
        .allowlist_type("_object|_typeobject|_longobject")
        .allowlist_var("SSTATE_.*|CO_.*|QUICKENING_.*|PY_VERSION_HEX|PyUnicode_.*_KIND")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("cpython-sys: bindgen failed on the CPython headers");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("cpython-sys: cannot write bindings");
}

/// The supported minor versions of CPython 3: the first column (`3.Y`) of
/// every line of harness/versions.txt that is not blank or a `#` comment.
fn supported_minors() -> Vec<u32> {
    let path = Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap()).join(VERSIONS_FILE);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cpython-sys: cannot read {}: {e}", path.display()));
    let minors: Vec<u32> =
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let version = l.split_whitespace().next().unwrap_or_default();
                version.strip_prefix("3.").and_then(|m| m.parse().ok()).unwrap_or_else(|| {
                    panic!("cpython-sys: {}: {version:?} is not a CPython 3.Y version", path.display())
                })
            })
            .collect();
    assert!(!minors.is_empty(), "cpython-sys: {} lists no version", path.display());
    minors
}

/// The minors cfgs are named for: from the oldest supported to one past the
/// newest, so that version gates can say "up to the newest supported"
/// (`not(Py_3_14)`), and on to `minor` for an unsupported newer tree.
fn cfg_minors(supported: &[u32], minor: u32) -> RangeInclusive<u32> {
    let oldest = *supported.iter().min().unwrap();
    let newest = *supported.iter().max().unwrap();
    oldest..=minor.max(newest + 1)
}

/// Reads PY_MAJOR_VERSION / PY_MINOR_VERSION from patchlevel.h.
fn read_version(patchlevel: &Path) -> (u32, u32) {
    let text = fs::read_to_string(patchlevel).expect("cpython-sys: cannot read patchlevel.h");
    let field = |name: &str| -> u32 {
        text.lines()
            .filter_map(|l| l.strip_prefix("#define"))
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("cpython-sys: {name} not found in patchlevel.h"))
    };
    (field("PY_MAJOR_VERSION"), field("PY_MINOR_VERSION"))
}
