//! Generates bindings against the headers of one target CPython, of one of
//! two kinds:
//!
//! 1. `CDS_PYTHON_SRC`: a CPython source tree on which `./configure` has run
//!    (it must hold `Include/` and `pyconfig.h`): the patched interpreter
//!    the harness builds, which links cds-core in. The harness sets it.
//! 2. otherwise `CDS_PYTHON_INCLUDE`, or the include directory of the
//!    interpreter `PYO3_PYTHON` names (maturin sets it for the interpreter a
//!    wheel is built for): the headers an installed, stock CPython ships
//!    (`include/python3.Y` with its `internal/` directory and `pyconfig.h`),
//!    for the `_cds` extension module (ext/).
//!
//! Neither: the build fails with a message saying what to set.
//!
//! The version (`patchlevel.h`) must be one that kind supports: the first
//! column of `harness/versions.txt` for a source tree, of `ext/versions.txt`
//! for installed headers; `CDS_ALLOW_UNSUPPORTED=1` lets a port in progress
//! build (docs/PORTING.md).
//!
//! Emits cumulative version cfgs (`Py_3_11`, `Py_3_12`, `Py_3_13`, … meaning
//! "this version or newer"), `Py_DEBUG` for `--with-pydebug` builds (from
//! `pyconfig.h`), and `cds_stock` for installed headers (no patches: the
//! core then does without the hooks they add). cds-core's build script gets
//! them through the `links` metadata: `version_minor`, `known_minors` (every
//! minor a cfg is named for), `py_debug` and `stock`.
use std::env;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The versions each kind of target supports, relative to this crate.
const PATCHED_VERSIONS_FILE: &str = "../harness/versions.txt";
const STOCK_VERSIONS_FILE: &str = "../ext/versions.txt";

/// The headers bindings are generated from.
struct Target {
    /// `-I` directories, in order.
    includes: Vec<PathBuf>,
    /// The directory holding `patchlevel.h` (and `Python.h`).
    include: PathBuf,
    /// The `pyconfig.h` in use.
    pyconfig: PathBuf,
    /// Installed headers of a stock interpreter (not a patched source tree).
    stock: bool,
    /// What to call the target in messages.
    name: String,
}

impl Target {
    fn discover() -> Target {
        if let Some(dir) = env::var_os("CDS_PYTHON_SRC") {
            let src = PathBuf::from(dir);
            let include = src.join("Include");
            if !src.join("pyconfig.h").is_file() || !include.join("Python.h").is_file() {
                panic!(
                    "cpython-sys: {} is not a configured CPython tree (needs Include/Python.h and pyconfig.h; \
                     run ./configure)",
                    src.display()
                );
            }
            return Target {
                includes: vec![src.clone(), include.clone(), include.join("internal")],
                pyconfig: src.join("pyconfig.h"),
                include,
                stock: false,
                name: src.display().to_string(),
            };
        }
        let include = match (env::var_os("CDS_PYTHON_INCLUDE"), env::var_os("PYO3_PYTHON")) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(python)) => include_of(&PathBuf::from(python)),
            (None, None) => panic!(
                "cpython-sys: set CDS_PYTHON_SRC to a configured CPython source tree (the harness does this: \
                 `make python-3.13-cds`), or CDS_PYTHON_INCLUDE / PYO3_PYTHON to an installed CPython's \
                 include directory / interpreter (`pip install ./` does this)"
            ),
        };
        if !include.join("Python.h").is_file() || !include.join("internal").is_dir() {
            panic!(
                "cpython-sys: {} is not an installed CPython's include directory (needs Python.h and internal/; \
                 on Debian install python3.Y-dev)",
                include.display()
            );
        }
        Target {
            includes: vec![include.clone(), include.join("internal")],
            pyconfig: include.join("pyconfig.h"),
            name: include.display().to_string(),
            include,
            stock: true,
        }
    }
}

/// The include directory of the installed interpreter `python` (its
/// `sysconfig` INCLUDEPY).
fn include_of(python: &Path) -> PathBuf {
    let out = std::process::Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_config_var('INCLUDEPY'))"])
        .output()
        .unwrap_or_else(|e| panic!("cpython-sys: cannot run {}: {e}", python.display()));
    if !out.status.success() {
        panic!("cpython-sys: {} cannot say where its headers are", python.display());
    }
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CDS_PYTHON_SRC");
    println!("cargo:rerun-if-env-changed=CDS_PYTHON_INCLUDE");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=CDS_ALLOW_UNSUPPORTED");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo::rustc-check-cfg=cfg(Py_DEBUG)");
    println!("cargo::rustc-check-cfg=cfg(cds_stock)");
    let target = Target::discover();
    let (patched, stock) = (supported_minors(PATCHED_VERSIONS_FILE), supported_minors(STOCK_VERSIONS_FILE));
    let (supported, file) =
        if target.stock { (&stock, STOCK_VERSIONS_FILE) } else { (&patched, PATCHED_VERSIONS_FILE) };
    println!("cargo:rerun-if-changed={}", target.pyconfig.display());

    let (major, minor) = read_version(&target.include.join("patchlevel.h"));
    assert_eq!(major, 3, "cpython-sys: only CPython 3 is supported");
    if !supported.contains(&minor) && env::var("CDS_ALLOW_UNSUPPORTED").as_deref() != Ok("1") {
        let list: Vec<String> = supported.iter().map(|m| format!("3.{m}")).collect();
        panic!(
            "cpython-sys: CPython 3.{minor} ({}) is not supported; supported: {} ({}; \
             CDS_ALLOW_UNSUPPORTED=1 builds a port in progress, see docs/PORTING.md)",
            target.name,
            list.join(", "),
            file.trim_start_matches("../")
        );
    }
    let all: Vec<u32> = patched.iter().chain(&stock).copied().collect();
    let known = cfg_minors(&all, minor);
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
    let debug = defines_py_debug(&target.pyconfig);
    if debug {
        println!("cargo:rustc-cfg=Py_DEBUG");
    }
    println!("cargo:py_debug={}", debug as u8);
    if target.stock {
        println!("cargo:rustc-cfg=cds_stock");
    }
    println!("cargo:stock={}", target.stock as u8);

    let bindings = target
        .includes
        .iter()
        .fold(bindgen::Builder::default().header("wrapper.h"), |b, dir| b.clang_arg(format!("-I{}", dir.display())))
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

/// Whether `pyconfig` defines Py_DEBUG, following the one `#include` by
/// which Debian's multiarch `pyconfig.h` names the real one.
fn defines_py_debug(pyconfig: &Path) -> bool {
    let text = fs::read_to_string(pyconfig).unwrap_or_default();
    if text.lines().any(|l| l.trim() == "#define Py_DEBUG 1") {
        return true;
    }
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#include <"))
        .filter_map(|l| l.strip_suffix('>'))
        .filter(|l| l.ends_with("pyconfig.h"))
        .any(|real| defines_py_debug(&Path::new("/usr/include").join(real)))
}

/// The supported minor versions of CPython 3 in `file`: the first column
/// (`3.Y`) of every line that is not blank or a `#` comment.
fn supported_minors(file: &str) -> Vec<u32> {
    let path = Path::new(&env::var_os("CARGO_MANIFEST_DIR").unwrap()).join(file);
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
