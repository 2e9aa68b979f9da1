//! Would a normal import find the archived file? The path-based finder takes
//! the first hit along the search path (sys.path for top-level modules, the
//! parent's `__path__` for submodules): a new module earlier on the path, a
//! package or extension module next to the archived source, or the archived
//! directory leaving the path, all mean the archive must not answer.
//!
//! Directory listings are cached per process and revalidated by the
//! directory's mtime, as `FileFinder` does, so the check costs one `stat`
//! per directory searched up to the archived one (however many questions
//! it asks of that directory), and reads a listing again only when that
//! directory changed. A directory importlib's `FileFinder` has listed
//! already is not read again: its names are adopted ([`DirCache::adopt`]),
//! when its mtime is still the one that finder read them at (what the
//! finder itself checks before it uses them).

use super::{mtime_ns, st_mtime};
use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// A directory's file names, sorted: the names starting with a module's
/// name are one run, found by one binary search (a name a directory's
/// files chose cannot make the search slower, as colliding hashes could).
struct Listing {
    mtime_ns: i128,
    names: Vec<String>,
}

impl Listing {
    fn read(dir: &str, mtime_ns: i128) -> Self {
        let names = fs::read_dir(dir)
            .map(|it| it.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        Self::of(names, mtime_ns)
    }

    fn of(names: Vec<String>, mtime_ns: i128) -> Self {
        // Sorted by their first eight bytes as a number, then in full: the
        // same order as by bytes (a file name holds no NUL), with most
        // comparisons of integers.
        let mut keyed: Vec<(u64, String)> = names.into_iter().map(|n| (head(&n), n)).collect();
        keyed.sort_unstable();
        Self { mtime_ns, names: keyed.into_iter().map(|(_, name)| name).collect() }
    }

    /// What follows `tail` in each name that starts with it ("" for `tail`
    /// itself, ".py" for `tail.py`, ...).
    fn suffixes_of<'a>(&'a self, tail: &'a str) -> impl Iterator<Item = &'a str> {
        let first = self.names.partition_point(|n| n.as_str() < tail);
        self.names[first..].iter().map_while(move |n| n.strip_prefix(tail))
    }

    fn contains(&self, name: &str) -> bool {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }
}

/// The first eight bytes of `name`, zero-padded, as a big-endian number.
fn head(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let len = name.len().min(8);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    u64::from_be_bytes(bytes)
}

/// What a search path entry was when last stat'ed.
struct Entry {
    /// The check (`DirCache::round`) that stat'ed it: within one check an
    /// entry is not stat'ed again.
    round: u64,
    /// Its names when it is a directory.
    listing: Option<Listing>,
    /// A regular file (a zip archive on the path).
    is_file: bool,
}

/// What is in a directory, and whether a name there would be imported first.
#[derive(Default)]
pub struct DirCache {
    entries: HashMap<String, Entry>,
    /// Names of directories not listed here yet that another reader listed
    /// (importlib's `FileFinder`), with the directory's mtime then, as
    /// `os.stat().st_mtime` gives it; None where it had none to offer.
    adopted: HashMap<String, Option<(f64, Vec<String>)>>,
    /// Counts [`DirCache::check_module`] calls.
    round: u64,
    /// `_imp.extension_suffixes()`, e.g. `.cpython-313-x86_64-linux-gnu.so`.
    extension_suffixes: Vec<String>,
}

/// What a search of one directory finds for a module name.
#[derive(Clone, Copy, Default)]
struct Found {
    /// A regular package (a directory with an `__init__`).
    package: bool,
    /// An extension module, which beats a source file.
    extension: bool,
    /// A `.py` or `.pyc` module.
    source: bool,
}

impl DirCache {
    pub fn new(extension_suffixes: Vec<String>) -> Self {
        Self { entries: HashMap::new(), adopted: HashMap::new(), round: 0, extension_suffixes }
    }

    /// Sets the suffixes once they can be asked for (an archive opened
    /// before `_imp` exists), before the first lookup.
    pub fn set_extension_suffixes(&mut self, extension_suffixes: Vec<String>) {
        self.extension_suffixes = extension_suffixes;
    }

    /// The search path entry `dir` as this check sees it: one `stat` per
    /// check, and a listing read again only when the directory's mtime moved.
    fn entry(&mut self, dir: &str) -> &Entry {
        let round = self.round;
        if self.entries.get(dir).is_some_and(|e| e.round == round) {
            return &self.entries[dir];
        }
        let real = if dir.is_empty() { "." } else { dir };
        let meta = fs::metadata(real).ok();
        let is_file = meta.as_ref().is_some_and(|m| m.is_file());
        let listing = match meta.filter(|m| m.is_dir()) {
            None => None,
            Some(meta) => {
                let stamp = mtime_ns(&meta);
                match (self.entries.remove(dir).and_then(|e| e.listing), self.adopted.remove(dir)) {
                    (Some(l), _) if l.mtime_ns == stamp => Some(l),
                    (_, Some(Some((mtime, names)))) if mtime == st_mtime(&meta) => Some(Listing::of(names, stamp)),
                    _ => Some(Listing::read(real, stamp)),
                }
            }
        };
        self.entries.insert(dir.to_owned(), Entry { round, listing, is_file });
        &self.entries[dir]
    }

    /// Which of `dirs` have never been listed here, nor offered: those whose
    /// names another reader may offer ([`adopt`](Self::adopt)).
    pub fn unlisted<'a>(&self, dirs: &'a [String]) -> Vec<&'a str> {
        let known = |d: &str| self.entries.get(d).is_some_and(|e| e.listing.is_some()) || self.adopted.contains_key(d);
        dirs.iter().map(String::as_str).filter(|d| !known(d)).collect()
    }

    /// The names of directory `dir` ('' is the current one) as another
    /// reader listed them, when its mtime was the first of `listing`
    /// (`os.stat().st_mtime`): used instead of reading it, if its mtime is
    /// still that when it is first searched. None: that reader had none
    /// (not asked again).
    pub fn adopt(&mut self, dir: &str, listing: Option<(f64, Vec<String>)>) {
        self.adopted.insert(dir.to_owned(), listing);
    }

    /// Whether the file at `path` is in its directory's listing (as of this
    /// check: no second `stat` of a directory the check already searched).
    pub fn lists(&mut self, path: &str) -> bool {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        self.entry(dir).listing.as_ref().is_some_and(|l| l.contains(file))
    }

    /// What a search of `dir` finds for module `tail`: one look at the
    /// names that start with it, and for a directory `tail`, whether it
    /// holds an `__init__` (a namespace portion does not stop the search).
    fn search(&mut self, dir: &str, tail: &str) -> Found {
        let mut found = Found::default();
        let mut listed_dir = false;
        // The entry is fetched before the suffixes are borrowed.
        self.entry(dir);
        let (entries, suffixes) = (&self.entries, &self.extension_suffixes);
        let Some(listing) = entries[dir].listing.as_ref() else {
            return found;
        };
        for rest in listing.suffixes_of(tail) {
            match rest {
                "" => listed_dir = true,
                ".py" | ".pyc" => found.source = true,
                _ if suffixes.iter().any(|s| s == rest) => found.extension = true,
                _ => {}
            }
        }
        if listed_dir {
            let pkg = Path::new(if dir.is_empty() { "." } else { dir }).join(tail);
            found.package = ["__init__.py", "__init__.pyc"]
                .iter()
                .map(|f| f.to_string())
                .chain(suffixes.iter().map(|s| format!("__init__{s}")))
                .any(|f| pkg.join(f).is_file());
        }
        found
    }

    /// Checks that a search of `search_path` for module `name` (dotted) ends
    /// at the archived file `origin` (`.../name.py`, or `.../name/__init__.py`
    /// for a package). Returns the reason it would not.
    pub fn check_module(
        &mut self,
        search_path: &[String],
        origin: &str,
        name: &str,
        is_package: bool,
    ) -> Result<(), String> {
        self.round += 1;
        let home = home(origin, is_package);
        let tail = name.rsplit('.').next().unwrap_or(name);
        self.check(search_path, home, tail, is_package)
    }

    /// Checks that a search of `search_path` for `tail` ends at the archived
    /// file, which lives in `home` (the directory holding `tail.py`, or the
    /// package directory `tail/`'s parent). Returns the reason it would not.
    fn check(&mut self, search_path: &[String], home: &str, tail: &str, is_package: bool) -> Result<(), String> {
        let Some(at) = search_path.iter().position(|d| same_dir(d, home)) else {
            return Err(format!("{home} is no longer on the search path"));
        };
        for dir in &search_path[..at] {
            if self.entry(dir).is_file {
                return Err(format!("search path entry {dir} is an archive cds cannot see into"));
            }
            let found = self.search(dir, tail);
            if found.package || found.extension || found.source {
                return Err(format!(
                    "shadowed by {tail} in {}",
                    if dir.is_empty() { "the current directory" } else { dir }
                ));
            }
        }
        if is_package {
            return Ok(());
        }
        let found = self.search(home, tail);
        if found.package || found.extension {
            return Err(format!("shadowed by a package or extension module {tail} in {home}"));
        }
        Ok(())
    }
}

/// The search path directory a search for the archived file `origin` ends
/// in: the one holding `name.py`, or the package directory `name/`'s parent.
pub fn home(origin: &str, is_package: bool) -> &str {
    parent(if is_package { parent(origin) } else { origin })
}

/// The directory part of `path` ('' when there is none).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
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

#[cfg(test)]
mod tests {
    use super::super::testdir::{set_mtime, TestDir};
    use super::*;

    const EXT: &str = ".cpython-311-x86_64-linux-gnu.so";

    fn cache() -> DirCache {
        DirCache::new(vec![EXT.to_owned(), ".abi3.so".to_owned(), ".so".to_owned()])
    }

    #[test]
    fn first_directory_on_the_path_is_accepted() {
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        let path = [t.join("a"), t.join("b"), t.join("c")];
        t.write("c/m.py", "");
        assert_eq!(cache().check_module(&path, &origin, "m", false), Ok(()));
    }

    #[test]
    fn module_earlier_on_the_path_shadows() {
        for earlier in ["a/m.py", "a/m.pyc", "a/m/__init__.py", "a/m.so", &format!("a/m{EXT}")] {
            let t = TestDir::new();
            let origin = t.write("b/m.py", "");
            t.write(earlier, "");
            let path = [t.join("a"), t.join("b")];
            let why = cache().check_module(&path, &origin, "m", false).unwrap_err();
            assert_eq!(why, format!("shadowed by m in {}", t.join("a")), "{earlier}");
        }
    }

    #[test]
    fn names_that_only_begin_with_the_module_name_do_not_shadow() {
        // They sort around the module's own names; only tail + a suffix counts.
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        for other in ["a/m.pyi", "a/m.txt", "a/m_.py", "a/mm.py", "a/m.py~", "a/l.py", "a/n.py", "a/m.so.1"] {
            t.write(other, "");
        }
        let path = [t.join("a"), t.join("b")];
        assert_eq!(cache().check_module(&path, &origin, "m", false), Ok(()));
        t.write(&format!("a/m{EXT}"), "");
        assert!(cache().check_module(&path, &origin, "m", false).is_err());
    }

    #[test]
    fn namespace_directory_earlier_on_the_path_does_not_shadow() {
        // A directory without __init__ is a namespace portion: the path-based
        // finder keeps searching, and finds the archived regular module.
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        t.write("a/m/other.py", "");
        let path = [t.join("a"), t.join("b")];
        assert_eq!(cache().check_module(&path, &origin, "m", false), Ok(()));
    }

    #[test]
    fn package_or_extension_next_to_the_source_shadows_it() {
        for beside in ["m/__init__.py", &format!("m{EXT}")] {
            let t = TestDir::new();
            let origin = t.write("m.py", "");
            t.write(beside, "");
            let home = t.path().to_str().unwrap();
            let why = cache().check_module(&[home.to_owned()], &origin, "m", false).unwrap_err();
            assert_eq!(why, format!("shadowed by a package or extension module m in {home}"), "{beside}");
        }
    }

    #[test]
    fn archived_package_is_found_by_its_parent_directory() {
        let t = TestDir::new();
        let origin = t.write("b/pkg/__init__.py", "");
        let path = [t.join("a"), t.join("b")];
        assert_eq!(cache().check_module(&path, &origin, "pkg", true), Ok(()));
        t.write("a/pkg.py", "");
        let why = cache().check_module(&path, &origin, "pkg", true).unwrap_err();
        assert_eq!(why, format!("shadowed by pkg in {}", t.join("a")));
    }

    #[test]
    fn submodule_is_searched_by_its_last_name_only() {
        let t = TestDir::new();
        let origin = t.write("pkg/sub.py", "");
        let parent_path = [t.join("elsewhere"), t.join("pkg")];
        assert_eq!(cache().check_module(&parent_path, &origin, "pkg.sub", false), Ok(()));
        t.write("elsewhere/sub.py", "");
        assert!(cache().check_module(&parent_path, &origin, "pkg.sub", false).is_err());
    }

    #[test]
    fn directory_gone_from_the_path_is_refused() {
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        let why = cache().check_module(&[t.join("a")], &origin, "m", false).unwrap_err();
        assert_eq!(why, format!("{} is no longer on the search path", t.join("b")));
    }

    #[test]
    fn file_earlier_on_the_path_is_refused() {
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        let zip = t.write("lib.zip", "");
        let why = cache().check_module(&[zip.clone(), t.join("b")], &origin, "m", false).unwrap_err();
        assert_eq!(why, format!("search path entry {zip} is an archive cds cannot see into"));
    }

    #[test]
    fn empty_entry_means_the_current_directory() {
        // The only test that changes the working directory; every other test
        // of the crate uses absolute paths.
        let t = TestDir::new();
        let origin = t.write("m.py", "");
        let other = t.write("b/m.py", "");
        let before = std::env::current_dir().unwrap();
        std::env::set_current_dir(t.path()).unwrap();
        let home_is_cwd = cache().check_module(&["".to_owned()], &origin, "m", false);
        let cwd_shadows = cache().check_module(&["".to_owned(), t.join("b")], &other, "m", false);
        let dot_is_cwd = cache().check_module(&[".".to_owned()], &origin, "m", false);
        std::env::set_current_dir(before).unwrap();
        assert_eq!(home_is_cwd, Ok(()));
        assert_eq!(cwd_shadows.unwrap_err(), "shadowed by m in the current directory");
        assert_eq!(dot_is_cwd, Ok(()));
    }

    /// An archived `b/m.py`, and an empty directory `a` before it on the
    /// search path, its mtime 1,000 s: (the test dir, the origin, `a`, the path).
    fn empty_dir_before_the_archived() -> (TestDir, String, String, [String; 2]) {
        let t = TestDir::new();
        let origin = t.write("b/m.py", "");
        let a = t.join("a");
        std::fs::create_dir(&a).unwrap();
        set_mtime(&a, 1_000);
        let path = [a.clone(), t.join("b")];
        (t, origin, a, path)
    }

    #[test]
    fn an_adopted_listing_stands_for_the_directory_while_its_mtime_holds() {
        let (_t, origin, a, path) = empty_dir_before_the_archived();
        let mut dirs = cache();
        assert_eq!(dirs.unlisted(&path), vec![a.as_str(), path[1].as_str()]);
        // Another reader listed `a` holding m.py at this mtime: that is what
        // the search sees, not the (empty) directory.
        dirs.adopt(&a, Some((1_000.0, vec!["m.py".into()])));
        assert_eq!(dirs.unlisted(&path), vec![path[1].as_str()]);
        assert_eq!(dirs.check_module(&path, &origin, "m", false).unwrap_err(), format!("shadowed by m in {a}"));
        // At another mtime, the directory is read instead.
        let mut dirs = cache();
        dirs.adopt(&a, Some((999.5, vec!["m.py".into()])));
        assert_eq!(dirs.check_module(&path, &origin, "m", false), Ok(()));
    }

    #[test]
    fn listing_is_cached_until_the_directory_mtime_changes() {
        let (t, origin, a, path) = empty_dir_before_the_archived();
        let mut dirs = cache();
        assert_eq!(dirs.check_module(&path, &origin, "m", false), Ok(()));
        // A new file behind an unchanged mtime is not seen (as FileFinder)...
        t.write("a/m.py", "");
        set_mtime(&a, 1_000);
        assert_eq!(dirs.check_module(&path, &origin, "m", false), Ok(()));
        // ...and is once the directory's mtime moves.
        set_mtime(&a, 1_001);
        assert_eq!(dirs.check_module(&path, &origin, "m", false).unwrap_err(), format!("shadowed by m in {a}"));
    }
}
