//! Atomic file writing that nobody else can subvert: readers see the old
//! archive or the new one, never a mix, even when many processes dump to the
//! same path at once, and a file or symlink planted in the directory (a
//! world-writable one such as /tmp, by another user) is never written
//! through.
//!
//! The temporary file is created with `O_CREAT|O_EXCL|O_NOFOLLOW` under a
//! name drawn from the kernel's random source, in the target's directory (so
//! the rename stays on one file system). A name that already exists, whatever
//! it is, is skipped for a fresh one: the file written is always one this
//! call created. Its mode is `0o644 & ~umask`: the umask decides, as for
//! CPython's `.pyc` writer, except that the group and others never get write
//! permission, because a reader refuses an archive anybody but its owner may
//! write (`crate::archive_file`). A replaced archive does not keep its old mode:
//! the new file is a new inode of whoever dumps.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The widest mode an archive is created with (the umask narrows it).
pub const ARCHIVE_MODE: u32 = 0o644;

/// How many taken names are skipped before giving up: with 64 random bits a
/// second collision only happens when someone plants the names we draw.
const NAME_ATTEMPTS: usize = 8;

/// Writes `bytes` to `path` through a new temporary file in the same
/// directory: written, flushed to disk, renamed over the target, and the
/// directory flushed so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, random_suffix)
}

/// [`write_atomic`], with the temporary names' suffixes drawn from `suffix`.
fn write_atomic_with(path: &Path, bytes: &[u8], mut suffix: impl FnMut() -> io::Result<u64>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let (mut file, tmp) = create_new_temporary(dir, &name.to_string_lossy(), &mut suffix)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The new archive is in place; a directory that cannot be flushed (some
    // file systems refuse fsync on directories) does not undo that.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates a file that did not exist, `dir/.NAME.SUFFIX.tmp`, skipping names
/// that are taken (by anything: file, symlink, directory).
fn create_new_temporary(
    dir: &Path,
    name: &str,
    suffix: &mut impl FnMut() -> io::Result<u64>,
) -> io::Result<(File, PathBuf)> {
    for _ in 0..NAME_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", suffix()?));
        // create_new is O_CREAT|O_EXCL, which never follows a symlink at the
        // last component; O_NOFOLLOW says so to any reader of this code.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(ARCHIVE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{NAME_ATTEMPTS} temporary names in {} were taken (planted files?)", dir.display()),
    ))
}

/// 64 bits from the kernel's random source: names nobody can predict, so
/// nobody can plant them ahead.
fn random_suffix() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Kernels before 3.17 (or a seccomp filter) lack getrandom.
        File::open("/dev/urandom")?.read_exact(&mut buf)?;
    }
    Ok(u64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("cds-write-test.{}.{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Self(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Suffixes 1, 2, 3, ...: the first names are known in advance.
    fn counting() -> impl FnMut() -> io::Result<u64> {
        let mut n = 0;
        move || {
            n += 1;
            Ok(n)
        }
    }

    fn tmp_name(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!(".a.img.{n:016x}.tmp"))
    }

    #[test]
    fn writes_and_leaves_no_temporary() {
        let d = Dir::new("plain");
        let target = d.0.join("a.img");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);
    }

    #[test]
    fn planted_symlink_is_skipped_not_followed() {
        let d = Dir::new("symlink");
        let victim = d.0.join("victim");
        fs::write(&victim, b"precious").unwrap();
        symlink(&victim, tmp_name(&d.0, 1)).unwrap();
        let target = d.0.join("a.img");
        write_atomic_with(&target, b"archive", counting()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&target).unwrap(), b"archive");
        assert!(fs::symlink_metadata(tmp_name(&d.0, 1)).unwrap().file_type().is_symlink());
    }

    #[test]
    fn planted_regular_file_is_skipped_not_reused() {
        let d = Dir::new("file");
        let planted = tmp_name(&d.0, 1);
        fs::write(&planted, b"planted").unwrap();
        let target = d.0.join("a.img");
        write_atomic_with(&target, b"archive", counting()).unwrap();
        assert_eq!(fs::read(&planted).unwrap(), b"planted");
        assert_ne!(fs::metadata(&planted).unwrap().ino(), fs::metadata(&target).unwrap().ino());
    }

    #[test]
    fn gives_up_when_every_name_is_taken() {
        let d = Dir::new("taken");
        for n in 1..=NAME_ATTEMPTS as u64 {
            fs::write(tmp_name(&d.0, n), b"x").unwrap();
        }
        let err = write_atomic_with(&d.0.join("a.img"), b"archive", counting()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(!d.0.join("a.img").exists());
    }

    #[test]
    fn random_names_differ() {
        assert_ne!(random_suffix().unwrap(), random_suffix().unwrap());
    }

    #[test]
    fn mode_is_never_group_or_other_writable() {
        let d = Dir::new("mode");
        let target = d.0.join("a.img");
        write_atomic(&target, b"x").unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "{mode:o}");
        assert_eq!(mode & !ARCHIVE_MODE, 0, "{mode:o}");
    }
}
