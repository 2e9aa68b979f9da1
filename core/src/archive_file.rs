//! What the archive file's metadata says: whether this process may trust
//! it, and whether it changed after it was opened.
//!
//! The archive holds code this process will run, so it deserves the trust
//! an executable does: refused when anybody but its owner may write it, or
//! when its owner is neither this process's effective user nor root (the
//! habit ssh and sudo have with their configuration files).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// Why an archive with this metadata must not be used by effective user
/// `euid`, if it must not.
pub fn untrusted(meta: &Metadata, euid: u32) -> Option<String> {
    untrusted_owner_or_mode(meta.uid(), meta.mode(), euid)
}

fn untrusted_owner_or_mode(owner: u32, mode: u32, euid: u32) -> Option<String> {
    if mode & 0o022 != 0 {
        return Some(format!(
            "archive is writable by group or others (mode {:04o}); only its owner may write it",
            mode & 0o7777
        ));
    }
    if owner != euid && owner != 0 {
        return Some(format!("archive is owned by uid {owner}, neither this user (uid {euid}) nor root"));
    }
    None
}

/// What identifies the archive file and its contents, as `stat` gives it.
/// The file is watched through its path (no descriptor is kept open: a
/// program may close or reuse descriptors it did not open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        }
    }

    /// Whether `now` (the path's stat today) says the mapped file was
    /// written in place or truncated: the same inode with another size or
    /// mtime. Another inode at the path is a new archive renamed over the
    /// old one, which leaves the mapped inode intact (ctime is not compared:
    /// a rename or a new hard link changes it, not the contents).
    pub fn changed_in_place(&self, now: &FileStamp) -> bool {
        (self.dev, self.ino) == (now.dev, now.ino) && (self.size, self.mtime_ns) != (now.size, now.mtime_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
    use std::io::Write;

    #[test]
    fn own_and_root_owned_archives_are_trusted() {
        assert_eq!(untrusted_owner_or_mode(1000, 0o100644, 1000), None);
        assert_eq!(untrusted_owner_or_mode(0, 0o100644, 1000), None);
        assert_eq!(untrusted_owner_or_mode(0, 0o100600, 0), None);
    }

    #[test]
    fn group_or_other_writable_is_refused() {
        for mode in [0o100664, 0o100646, 0o100666, 0o102664] {
            let why = untrusted_owner_or_mode(1000, mode, 1000).unwrap();
            assert!(why.contains("writable by group or others"), "{why}");
            assert!(why.contains(&format!("{:04o}", mode & 0o7777)), "{why}");
        }
    }

    #[test]
    fn another_users_archive_is_refused() {
        let why = untrusted_owner_or_mode(65534, 0o100644, 1000).unwrap();
        assert_eq!(why, "archive is owned by uid 65534, neither this user (uid 1000) nor root");
        // Root is not exempt from the rule: it too refuses other users' archives.
        assert!(untrusted_owner_or_mode(65534, 0o100644, 0).is_some());
    }

    #[test]
    fn in_place_writes_are_changes_renames_are_not() {
        let path = std::env::temp_dir().join(format!("cds-stamp-test.{}", std::process::id()));
        fs::write(&path, b"one").unwrap();
        let stamp = || FileStamp::of(&fs::metadata(&path).unwrap());
        let before = stamp();
        assert!(!before.changed_in_place(&stamp()));
        // Same size, same inode, other bytes and mtime (as `cp` over it writes them).
        let mut w = fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        w.write_all(b"two").unwrap();
        drop(w);
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        File::options().write(true).open(&path).unwrap().set_modified(t).unwrap();
        assert!(before.changed_in_place(&stamp()));
        // A new file renamed over the path: the mapped inode is untouched.
        let other = path.with_extension("new");
        fs::write(&other, b"three!").unwrap();
        fs::rename(&other, &path).unwrap();
        assert!(!before.changed_in_place(&stamp()));
        fs::remove_file(&path).unwrap();
    }
}
