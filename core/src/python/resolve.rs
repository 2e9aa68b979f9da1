//! Would a normal import find the archived file? The path-based finder takes
//! the first hit along the search path (sys.path for top-level modules, the
//! parent's `__path__` for submodules): a new module earlier on the path, a
//! package or extension module next to the archived source, or the archived
//! directory leaving the path, all mean the archive must not answer.
//!
//! Directory listings are cached per process and revalidated by the
//! directory's mtime, as `FileFinder` does, so the check costs one `stat` per
//! directory searched before the archived one.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

struct Listing {
    mtime_ns: i128,
    names: HashSet<String>,
}

/// What is in a directory, and whether a name there would be imported first.
#[derive(Default)]
pub struct DirCache {
    listings: HashMap<String, Option<Listing>>,
    /// `_imp.extension_suffixes()`, e.g. `.cpython-313-x86_64-linux-gnu.so`.
    extension_suffixes: Vec<String>,
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

impl DirCache {
    pub fn new(extension_suffixes: Vec<String>) -> Self {
        Self { listings: HashMap::new(), extension_suffixes }
    }

    /// The names in `dir` (None when it is not a readable directory).
    fn names(&mut self, dir: &str) -> Option<&HashSet<String>> {
        let real = if dir.is_empty() { "." } else { dir };
        let meta = fs::metadata(real).ok().filter(|m| m.is_dir());
        let Some(meta) = meta else {
            self.listings.insert(dir.to_owned(), None);
            return None;
        };
        let stamp = mtime_ns(&meta);
        let fresh = matches!(self.listings.get(dir), Some(Some(l)) if l.mtime_ns == stamp);
        if !fresh {
            let names = fs::read_dir(real)
                .map(|it| it.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
                .unwrap_or_default();
            self.listings.insert(dir.to_owned(), Some(Listing { mtime_ns: stamp, names }));
        }
        self.listings.get(dir).and_then(|l| l.as_ref()).map(|l| &l.names)
    }

    /// Whether importing `tail` from `dir` finds a regular package.
    fn has_package(&mut self, dir: &str, tail: &str) -> bool {
        if !self.names(dir).is_some_and(|n| n.contains(tail)) {
            return false;
        }
        let pkg = Path::new(if dir.is_empty() { "." } else { dir }).join(tail);
        ["__init__.py", "__init__.pyc"]
            .iter()
            .map(|f| f.to_string())
            .chain(self.extension_suffixes.iter().map(|s| format!("__init__{s}")))
            .any(|f| pkg.join(f).is_file())
    }

    /// Whether `dir` holds an extension module `tail`, which beats a source file.
    fn has_extension(&mut self, dir: &str, tail: &str) -> bool {
        let candidates: Vec<String> = self.extension_suffixes.iter().map(|s| format!("{tail}{s}")).collect();
        self.names(dir).is_some_and(|n| candidates.iter().any(|c| n.contains(c)))
    }

    /// Whether a search of `dir` would return any module `tail`.
    fn provides(&mut self, dir: &str, tail: &str) -> bool {
        if self.has_package(dir, tail) || self.has_extension(dir, tail) {
            return true;
        }
        let (py, pyc) = (format!("{tail}.py"), format!("{tail}.pyc"));
        self.names(dir).is_some_and(|n| n.contains(&py) || n.contains(&pyc))
    }

    /// Checks that a search of `search_path` for `tail` ends at the archived
    /// file, which lives in `home` (the directory holding `tail.py`, or the
    /// package directory `tail/`'s parent). Returns the reason it would not.
    pub fn check(&mut self, search_path: &[String], home: &str, tail: &str, is_package: bool) -> Result<(), String> {
        let Some(at) = search_path.iter().position(|d| same_dir(d, home)) else {
            return Err(format!("{home} is no longer on the search path"));
        };
        for dir in &search_path[..at] {
            if Path::new(dir).is_file() {
                return Err(format!("search path entry {dir} is an archive cds cannot see into"));
            }
            if self.provides(dir, tail) {
                return Err(format!("shadowed by {tail} in {}", if dir.is_empty() { "the current directory" } else { dir }));
            }
        }
        if !is_package && (self.has_package(home, tail) || self.has_extension(home, tail)) {
            return Err(format!("shadowed by a package or extension module {tail} in {home}"));
        }
        Ok(())
    }
}

/// Search path entries name directories as given ('' is the current one).
fn same_dir(entry: &str, home: &str) -> bool {
    if entry == home {
        return true;
    }
    if entry.is_empty() || entry == "." {
        return std::env::current_dir().is_ok_and(|cwd| cwd.as_os_str() == home);
    }
    false
}
