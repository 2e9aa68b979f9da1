//! Links the unwinder that Rust's standard library needs (`_Unwind_*`)
//! into the extension itself, from the C compiler's `libgcc_eh.a`, instead
//! of as a dependency on `libgcc_s.so.1`.
//!
//! Why: the extension is loaded at the start of every process that uses
//! cds, and on a stock interpreter nothing else has loaded `libgcc_s` by
//! then; `dlopen` of that second library cost 0.18 ms of a 0.29 ms load
//! (docs/PERFORMANCE.md, "Stock interpreters"). Nothing unwinds across the
//! extension's boundary (`panic = "abort"`, and every entry point is
//! `extern "C"`), so a private copy of the unwinder is never shared.
//!
//! How: rustc's standard library asks the linker for `-lgcc_s`; a
//! directory searched before the compiler's own that holds `libgcc_s.a`
//! (a copy of `libgcc_eh.a`) and no `libgcc_s.so` makes the linker take
//! the archive. Where the compiler has no `libgcc_eh.a` (another libc,
//! another compiler), the extension links `libgcc_s` as before.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.ends_with("-linux-gnu") {
        return;
    }
    let compiler = cc::Build::new().get_compiler();
    let found = Command::new(compiler.path()).arg("-print-file-name=libgcc_eh.a").output();
    let eh = match found {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        _ => PathBuf::new(),
    };
    // The compiler prints the bare name back when it has no such file.
    if !eh.is_absolute() || !eh.is_file() {
        println!("cargo:warning=no libgcc_eh.a from {}: the extension links libgcc_s.so.1", compiler.path().display());
        return;
    }
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwinder");
    copy_if_changed(&eh, &dir.join("libgcc_s.a"));
    println!("cargo:rerun-if-changed={}", eh.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
}

fn copy_if_changed(from: &Path, to: &Path) {
    let same = std::fs::read(to).ok() == std::fs::read(from).ok();
    if !same {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
}
