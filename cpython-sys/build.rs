//! Generates bindings against the headers of one configured CPython tree.
//!
//! Header discovery, in order:
//! 1. `CDS_PYTHON_SRC`: a CPython source tree on which `./configure` has run
//!    (it must hold `Include/` and `pyconfig.h`). The harness sets it.
//! 2. otherwise the build fails with a message saying what to set.
//!
//! Emits cumulative version cfgs (`Py_3_11`, `Py_3_12`, `Py_3_13`, … meaning
//! "this version or newer") read from `Include/patchlevel.h`, and `Py_DEBUG`
//! for `--with-pydebug` trees (from `pyconfig.h`).
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Versions this crate knows how to name in cfgs; a newer minor gets all of them.
const KNOWN_MINORS: std::ops::RangeInclusive<u32> = 11..=15;

fn main() {
    println!("cargo:rerun-if-env-changed=CDS_PYTHON_SRC");
    println!("cargo:rerun-if-changed=wrapper.h");
    for minor in KNOWN_MINORS {
        println!("cargo::rustc-check-cfg=cfg(Py_3_{minor})");
    }
    println!("cargo::rustc-check-cfg=cfg(Py_DEBUG)");
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
    for m in KNOWN_MINORS.filter(|m| *m <= minor) {
        println!("cargo:rustc-cfg=Py_3_{m}");
    }
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
