//! What a normal import would see on the file system, and the trace list:
//! std only, so it builds and is tested without a CPython tree. The glue in
//! `python` (feature `python`) calls these with what it reads from the
//! interpreter.
//!
//! - [`resolve`]: would the path-based finder find the archived file?
//! - [`freshness`]: is the source file still the one the dump recorded?
//! - [`trace`]: the list of loaded modules written under `-X cds_trace`.

pub mod freshness;
pub mod resolve;
pub mod trace;

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// A file's mtime in nanoseconds, as `os.stat().st_mtime_ns` gives it.
fn mtime_ns(meta: &Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

/// A file's mtime as `os.stat().st_mtime` gives it (seconds, a double),
/// what importlib's `FileFinder` keeps with its listing.
fn st_mtime(meta: &Metadata) -> f64 {
    meta.mtime() as f64 + meta.mtime_nsec() as f64 * 1e-9
}

/// Scratch directories for the tests of this module (std only, no crate).
#[cfg(test)]
mod testdir {
    use std::fs::{self, File};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new() -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("cds-core-test.{}.{n}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            // Canonical, so it compares equal to what getcwd() returns.
            Self(dir.canonicalize().unwrap())
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        /// `self/rel` as a string, the form search paths and origins take.
        pub fn join(&self, rel: &str) -> String {
            self.0.join(rel).to_str().unwrap().to_owned()
        }

        /// Creates `self/rel` (and its parent directories) holding `text`.
        pub fn write(&self, rel: &str, text: &str) -> String {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Sets the mtime of `path` (a file or a directory) to `at` seconds after
    /// the epoch: tests must not depend on the clock ticking between writes.
    pub fn set_mtime(path: impl AsRef<Path>, at: u64) {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        File::open(path).unwrap().set_modified(time).unwrap();
    }
}
