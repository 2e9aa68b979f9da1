//! Is an archived module's source file still the one the dump recorded?
//! `-X cds_check` chooses how far that is checked.

use std::fs;

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
pub struct SourceStamp {
    pub size: u64,
    /// `st_mtime_ns` at the dump.
    pub mtime_ns: i64,
    /// [`content_hash`] of the file at the dump.
    pub hash: u64,
}

/// The hash `-X cds_check=hash` compares: the dump records it, the loader
/// recomputes it, both through this one function.
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Compares the source file at `origin` with what the dump recorded: size,
/// then mtime (`Check::Stat`) or content hash (`Check::Hash`). `Check::None`
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testdir::{set_mtime, TestDir};
    use super::*;

    const MTIME_S: u64 = 1_700_000_000;

    /// A source file `m.py` holding `text`, with a known mtime, and its stamp.
    fn source(dir: &TestDir, text: &str) -> (String, SourceStamp) {
        let path = dir.write("m.py", text);
        set_mtime(&path, MTIME_S);
        let stamp = SourceStamp {
            size: text.len() as u64,
            mtime_ns: MTIME_S as i64 * 1_000_000_000,
            hash: content_hash(text.as_bytes()),
        };
        (path, stamp)
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
