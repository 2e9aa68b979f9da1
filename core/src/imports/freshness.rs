//! Is an archived module's source file still the one the dump recorded?
//! `-X cds_check` chooses how far that is checked.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How archived modules are checked against their sources (`-X cds_check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Check {
    /// Size and mtime of the source, and that a normal import would find the
    /// same file (nothing shadows it on the search path). The default.
    #[default]
    Stat,
    /// As `Stat`, but the source's content hash instead of its mtime, for
    /// trees whose mtimes are not kept (checkouts, copies).
    Hash,
    /// No check at all: for immutable deployments (containers, read-only
    /// images), like unchecked hash-based pycs (PEP 552).
    None,
}

/// What the dump recorded about a module's source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceStamp<'a> {
    pub size: u64,
    /// `st_mtime_ns` at the dump.
    pub mtime_ns: i64,
    /// [`content_hash`] of the file at the dump.
    pub hash: u64,
    /// Which file the origin resolved to ([`ResolvedFile`]); `dev`, `ino`
    /// 0 and `realpath` "" when not recorded.
    pub dev: u64,
    pub ino: u64,
    pub realpath: &'a str,
}

/// The file a source path resolves to, as the dump records it: its device
/// and inode, and the path with every symlink resolved. A release directory
/// switched behind a symlink (`current -> r1` to `r2`) is another file even
/// when size and mtime are equal; a tree copied with its mtimes (docker
/// COPY, `cp -a`, rsync -t) has new inodes but the same real paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedFile {
    pub size: u64,
    pub mtime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub realpath: String,
}

impl ResolvedFile {
    /// Stats and resolves `origin`.
    pub fn of(origin: &str) -> std::io::Result<Self> {
        let meta = fs::metadata(origin)?;
        let realpath = fs::canonicalize(origin)?
            .into_os_string()
            .into_string()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "real path is not UTF-8"))?;
        Ok(Self {
            size: meta.len(),
            mtime_ns: super::mtime_ns(&meta) as i64,
            dev: meta.dev(),
            ino: meta.ino(),
            realpath,
        })
    }
}

/// Whether `origin` (stat'ed as `meta`) is the file the dump recorded: the
/// same device and inode, or else the same real path (the tree was copied).
fn same_file(origin: &str, meta: &Metadata, recorded: &SourceStamp) -> Result<(), String> {
    let recorded_any = recorded.dev != 0 || recorded.ino != 0 || !recorded.realpath.is_empty();
    if !recorded_any || (meta.dev(), meta.ino()) == (recorded.dev, recorded.ino) {
        return Ok(());
    }
    match fs::canonicalize(origin) {
        Ok(real) if real == Path::new(recorded.realpath) => Ok(()),
        Ok(real) => Err(format!(
            "source path now resolves to another file ({}, dumped from {})",
            real.display(),
            recorded.realpath
        )),
        Err(e) => Err(format!("cannot resolve source path: {e}")),
    }
}

/// The hash `-X cds_check=hash` compares: the dump records it, the loader
/// recomputes it, both through this one function.
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Compares the source file at `origin` with what the dump recorded: size,
/// then mtime and file identity (`Check::Stat`) or content hash
/// (`Check::Hash`, which needs no identity: it sees the content). `Check::None`
/// accepts without looking at the file. Returns the reason it changed.
pub fn source_unchanged(origin: &str, recorded: &SourceStamp, check: Check) -> Result<(), String> {
    if check == Check::None {
        return Ok(());
    }
    let meta = fs::metadata(origin).map_err(|_| "source file is missing".to_string())?;
    if meta.len() != recorded.size {
        return Err("source file changed since the dump (size)".into());
    }
    if check == Check::Hash {
        let bytes = fs::read(origin).map_err(|e| format!("cannot read source: {e}"))?;
        if content_hash(&bytes) != recorded.hash {
            return Err("source file changed since the dump (content)".into());
        }
        return Ok(());
    }
    if super::mtime_ns(&meta) != recorded.mtime_ns as i128 {
        return Err("source file changed since the dump (mtime)".into());
    }
    same_file(origin, &meta, recorded)
}

#[cfg(test)]
mod tests {
    use super::super::testdir::{set_mtime, TestDir};
    use super::*;

    const MTIME_S: u64 = 1_700_000_000;

    /// A source file `m.py` holding `text`, with a known mtime, and its
    /// stamp (without file identity).
    fn source(dir: &TestDir, text: &str) -> (String, SourceStamp<'static>) {
        let path = dir.write("m.py", text);
        set_mtime(&path, MTIME_S);
        let stamp = SourceStamp {
            size: text.len() as u64,
            mtime_ns: MTIME_S as i64 * 1_000_000_000,
            hash: content_hash(text.as_bytes()),
            dev: 0,
            ino: 0,
            realpath: "",
        };
        (path, stamp)
    }

    /// The stamp the dump records for `origin`.
    fn recorded(file: &ResolvedFile, hash: u64) -> SourceStamp<'static> {
        SourceStamp {
            size: file.size,
            mtime_ns: file.mtime_ns,
            hash,
            dev: file.dev,
            ino: file.ino,
            realpath: Box::leak(file.realpath.clone().into_boxed_str()),
        }
    }

    #[test]
    fn switched_release_symlink_is_another_file() {
        let dir = TestDir::new();
        for release in ["r1", "r2"] {
            dir.write(&format!("{release}/m.py"), "x = 1\n"); // same size
            set_mtime(dir.join(&format!("{release}/m.py")), MTIME_S); // same mtime
        }
        std::os::unix::fs::symlink("r1", dir.join("current")).unwrap();
        let origin = dir.join("current/m.py");
        let at_dump = ResolvedFile::of(&origin).unwrap();
        assert_eq!(at_dump.realpath, dir.join("r1/m.py"));
        let stamp = recorded(&at_dump, content_hash(b"x = 1\n"));
        assert_eq!(source_unchanged(&origin, &stamp, Check::Stat), Ok(()));
        // The deployment switches `current` to r2 (atomically, by rename).
        std::os::unix::fs::symlink("r2", dir.join("current.new")).unwrap();
        std::fs::rename(dir.join("current.new"), dir.join("current")).unwrap();
        let why = source_unchanged(&origin, &stamp, Check::Stat).unwrap_err();
        assert!(why.starts_with("source path now resolves to another file"), "{why}");
        assert!(why.contains("r2/m.py") && why.contains("r1/m.py"), "{why}");
    }

    #[test]
    fn copied_file_at_the_same_path_is_the_same_file() {
        let dir = TestDir::new();
        let origin = dir.write("app/m.py", "x = 1\n");
        set_mtime(&origin, MTIME_S);
        let stamp = recorded(&ResolvedFile::of(&origin).unwrap(), content_hash(b"x = 1\n"));
        // Replaced by a copy with its mtime kept (a new inode, as docker COPY makes).
        let copy = dir.write("copy.py", "x = 1\n");
        set_mtime(&copy, MTIME_S);
        std::fs::rename(&copy, &origin).unwrap();
        assert_ne!(ResolvedFile::of(&origin).unwrap().ino, stamp.ino);
        assert_eq!(source_unchanged(&origin, &stamp, Check::Stat), Ok(()));
    }

    #[test]
    fn unchanged_source_passes_every_mode() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        for check in [Check::Stat, Check::Hash, Check::None] {
            assert_eq!(source_unchanged(&path, &stamp, check), Ok(()), "{check:?}");
        }
    }

    #[test]
    fn size_change_is_refused() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        std::fs::write(&path, "x = 10\n").unwrap();
        set_mtime(&path, MTIME_S);
        let why = "source file changed since the dump (size)";
        assert_eq!(source_unchanged(&path, &stamp, Check::Stat).unwrap_err(), why);
        assert_eq!(source_unchanged(&path, &stamp, Check::Hash).unwrap_err(), why);
    }

    #[test]
    fn mtime_change_is_refused_under_stat() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        set_mtime(&path, MTIME_S + 1);
        assert_eq!(
            source_unchanged(&path, &stamp, Check::Stat).unwrap_err(),
            "source file changed since the dump (mtime)"
        );
    }

    #[test]
    fn hash_mode_ignores_mtime_and_compares_content() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        set_mtime(&path, MTIME_S + 1);
        assert_eq!(source_unchanged(&path, &stamp, Check::Hash), Ok(()));
        // Same size, same mtime, other bytes: only the hash sees it.
        std::fs::write(&path, "x = 2\n").unwrap();
        set_mtime(&path, MTIME_S);
        assert_eq!(source_unchanged(&path, &stamp, Check::Stat), Ok(()));
        assert_eq!(
            source_unchanged(&path, &stamp, Check::Hash).unwrap_err(),
            "source file changed since the dump (content)"
        );
    }

    #[test]
    fn none_mode_does_not_look_at_the_file() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source_unchanged(&path, &stamp, Check::None), Ok(()));
    }

    #[test]
    fn missing_source_is_refused() {
        let dir = TestDir::new();
        let (path, stamp) = source(&dir, "x = 1\n");
        std::fs::remove_file(&path).unwrap();
        for check in [Check::Stat, Check::Hash] {
            assert_eq!(source_unchanged(&path, &stamp, check).unwrap_err(), "source file is missing", "{check:?}");
        }
    }
}
