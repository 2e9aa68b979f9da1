//! The verified stamp's file: what it names and its text.
//!
//! A stamp (`ARCHIVE.verified`, next to the archive's real path) says that a
//! whole archive passed every check a serving process makes, for the archive
//! file exactly as it was then (`python::stamp` writes and honours it). It
//! names that file by device, inode, size, mtime and **ctime**, and by its
//! header checksum: any write to the archive, a rename over it, a copy, a
//! `chmod` or `touch` changes one of them (ctime cannot be set back without
//! changing the system clock, i.e. without root), and the stamp no longer
//! applies. The text is a few `key value` lines in a fixed order; anything
//! else is not a stamp.

use std::fmt::Write as _;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// First line of every stamp; bumped when what a stamp vouches for changes.
const STAMP_MAGIC: &str = "cds-stamp 2";
/// A stamp is a few lines; anything longer is not one.
pub const STAMP_MAX: u64 = 4096;

/// The stamp's path for the archive whose real path is `archive` (so that a
/// symlink to the archive finds the stamp the dump wrote).
pub fn path_for(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".verified");
    PathBuf::from(name)
}

/// The archive file as a stamp names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub header_checksum: u64,
}

impl Identity {
    /// The identity of a file with metadata `meta` whose header (the
    /// archive's first bytes) is `header`; None when too short.
    pub fn of(meta: &Metadata, header: &[u8]) -> Option<Self> {
        let at = crate::format::header::HEADER_CHECKSUM;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            header_checksum: u64::from_le_bytes(header.get(at..at + 8)?.try_into().ok()?),
        })
    }
}

/// What a stamp says: the file it vouches for, the address of the
/// stamping interpreter's anchor symbol when every slot that needs no
/// per-process work already held its final value there (None: not so),
/// and whether at least the slots pointing into the archive itself did
/// (`internal`: all but those naming the interpreter's image, which moves
/// with ASLR in a PIE or shared-libpython build).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub identity: Identity,
    pub anchor: Option<u64>,
    pub internal: bool,
}

impl Stamp {
    pub fn render(&self) -> String {
        let id = &self.identity;
        let mut s = String::new();
        let _ = writeln!(s, "{STAMP_MAGIC}");
        let _ = writeln!(s, "dev {}\nino {}\nsize {}", id.dev, id.ino, id.size);
        let _ = writeln!(s, "mtime_ns {}\nctime_ns {}", id.mtime_ns, id.ctime_ns);
        let _ = writeln!(s, "header_checksum {:016x}", id.header_checksum);
        let _ = match self.anchor {
            Some(a) => writeln!(s, "anchor {a:#x}"),
            None => writeln!(s, "anchor none"),
        };
        let _ = writeln!(s, "internal {}", if self.internal { "yes" } else { "no" });
        s
    }

    /// Parses a stamp: exactly what [`Stamp::render`] writes, or None.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != STAMP_MAGIC {
            return None;
        }
        let mut field = |key: &str| lines.next()?.strip_prefix(key)?.strip_prefix(' ').map(str::to_owned);
        let identity = Identity {
            dev: field("dev")?.parse().ok()?,
            ino: field("ino")?.parse().ok()?,
            size: field("size")?.parse().ok()?,
            mtime_ns: field("mtime_ns")?.parse().ok()?,
            ctime_ns: field("ctime_ns")?.parse().ok()?,
            header_checksum: u64::from_str_radix(&field("header_checksum")?, 16).ok()?,
        };
        let anchor = match field("anchor")?.as_str() {
            "none" => None,
            a => Some(u64::from_str_radix(a.strip_prefix("0x")?, 16).ok()?),
        };
        let internal = match field("internal")?.as_str() {
            "yes" => true,
            "no" => false,
            _ => return None,
        };
        let stamp = Self { identity, anchor, internal };
        // Only the one spelling render writes ("+77", "FE", a trailing line: not a stamp).
        (stamp.render() == text).then_some(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(anchor: Option<u64>) -> Stamp {
        let identity = Identity {
            dev: 2049,
            ino: 77,
            size: 4096,
            mtime_ns: -5,
            ctime_ns: 1_764_657_600_123_456_789,
            header_checksum: 0xfe,
        };
        Stamp { identity, anchor, internal: anchor.is_some() }
    }

    #[test]
    fn a_stamp_reads_back_as_written() {
        for anchor in [None, Some(0x4a_5b60)] {
            assert_eq!(Stamp::parse(&stamp(anchor).render()), Some(stamp(anchor)));
        }
        let moved = Stamp { internal: true, ..stamp(None) };
        assert_eq!(Stamp::parse(&moved.render()), Some(moved));
    }

    #[test]
    fn anything_else_is_not_a_stamp() {
        let good = stamp(Some(0x10)).render();
        assert!(good.contains("header_checksum 00000000000000fe\n"), "{good}");
        let edits = [
            good.replace("cds-stamp 2", "cds-stamp 1"),
            good.replace("internal yes", "internal true"),
            good.replace("internal yes\n", ""),
            good.replace("ino 77", "ino  77"),
            good.replace("ino 77", "ino +77"),
            good.replace("ino 77", "inode 77"),
            good.replace("anchor 0x10", "anchor 16"),
            good.replace("anchor 0x10", "anchor 0X10"),
            good.replace("00000000000000fe", "00000000000000FE"),
            good.replace("00000000000000fe", "fe"),
            good.trim_end().to_owned(),
            format!("{good}extra\n"),
            good.lines().filter(|l| !l.starts_with("size")).map(|l| format!("{l}\n")).collect(),
            String::new(),
        ];
        for text in edits {
            assert_eq!(Stamp::parse(&text), None, "{text:?}");
        }
    }

    #[test]
    fn the_stamp_sits_beside_the_archive() {
        assert_eq!(path_for(Path::new("/usr/lib/cds/stdlib.cds")), Path::new("/usr/lib/cds/stdlib.cds.verified"));
    }

    #[test]
    fn a_touched_file_is_another_identity() {
        let path = std::env::temp_dir().join(format!("cds-identity-test.{}", std::process::id()));
        let header = [7u8; crate::format::HEADER_SIZE];
        std::fs::write(&path, b"x").unwrap();
        let before = Identity::of(&std::fs::metadata(&path).unwrap(), &header).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Same bytes, same mtime set back: only ctime tells.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        let after = Identity::of(&std::fs::metadata(&path).unwrap(), &header).unwrap();
        assert_eq!((before.mtime_ns, before.size, before.ino), (after.mtime_ns, after.size, after.ino));
        assert_ne!(before, after);
        assert!(Identity::of(&std::fs::metadata(&path).unwrap(), &header[..50]).is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
