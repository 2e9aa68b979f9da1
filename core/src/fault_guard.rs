//! A clear last word when the archive file changes under the mapping.
//!
//! The mapping is private, but pages this process has not copied yet are
//! read from the file: truncating it makes every access beyond the new end a
//! SIGBUS (Linux drops even the copied pages of a truncated range), and an
//! in-place overwrite hands out the new bytes. The process cannot go on; it
//! should at least say why. [`install`] puts a SIGBUS/SIGSEGV handler in
//! front of whatever was there: a fault inside the mapping writes one line
//! (`cds: fatal: archive PATH was truncated or overwritten while in use
//! (fault at offset N)`) and re-raises the signal under the previous action
//! (faulthandler's traceback, or the default: death by the signal). A fault
//! elsewhere while the file was written in place (one `stat`, which is
//! async-signal-safe) gets the same line with the fault's address: after
//! an overwrite, archived pointers hold the new file's values and the fault
//! is where they point. Any other fault goes to the previous handler
//! untouched.
//!
//! faulthandler is set up after `_cds` at start-up (and `faulthandler.enable()`
//! may run any time), so it usually sits in front of this handler: it prints
//! its own "Fatal Python error: Bus error" and traceback, then re-raises to
//! this handler with the fault address lost, and the line is not printed.

use crate::archive_file::FileStamp;
use std::ffi::{c_int, CString};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

const SIGNALS: [c_int; 2] = [libc::SIGBUS, libc::SIGSEGV];

/// What the handler knows of the archive.
struct Watched {
    /// "cds: fatal: archive PATH was ... (fault at ".
    prefix: Box<[u8]>,
    /// The absolute path of the file, stat'ed on a fault outside the mapping.
    real_path: Option<CString>,
    stamp: FileStamp,
    start: usize,
    len: usize,
    /// The other layer's record when two archives serve, else null.
    beside: *const Watched,
}

/// Set once per opened archive: leaked, never freed (a handler may be
/// reading an older one), and swapped as one pointer; a chain of two when
/// an archive serves layered on another.
static WATCHED: AtomicPtr<Watched> = AtomicPtr::new(std::ptr::null_mut());
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The actions that were in place before ours, by index into `SIGNALS`.
/// Written once, before our handler is installed; only read afterwards.
static mut PREVIOUS: [MaybeUninit<libc::sigaction>; 2] = [MaybeUninit::uninit(), MaybeUninit::uninit()];

/// Names the mapping at `[start, start + len)` of archive `path` (shown in
/// the message; `real_path` is what is stat'ed, `stamp` what it was when
/// mapped) for the handler, beside the one already watched if `beside`
/// (layered archives), else instead of it (a later runtime's archive), and
/// installs the handler (once per process: the handler stays).
pub fn install(path: &str, real_path: Option<&str>, stamp: FileStamp, start: usize, len: usize, beside: bool) {
    let prefix = format!("cds: fatal: archive {path} was truncated or overwritten while in use (fault at ");
    let watched = Watched {
        prefix: prefix.into_bytes().into_boxed_slice(),
        real_path: real_path.and_then(|p| CString::new(p).ok()),
        stamp,
        start,
        len,
        beside: if beside { WATCHED.load(Ordering::SeqCst).cast_const() } else { std::ptr::null() },
    };
    WATCHED.store(Box::leak(Box::new(watched)), Ordering::SeqCst);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    for (i, &sig) in SIGNALS.iter().enumerate() {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; sigemptyset initialises the mask. PREVIOUS[i] is written by
        // sigaction before our handler (which reads it) is in place, and
        // only this first install writes it (INSTALLED).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = std::ptr::addr_of_mut!(PREVIOUS[i]).cast::<libc::sigaction>();
            if libc::sigaction(sig, std::ptr::null(), previous) != 0 {
                continue;
            }
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// The signal handler. Async-signal-safe: atomics, write(2), sigaction(2),
/// raise(3) and the previous handler only.
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(i) = SIGNALS.iter().position(|&s| s == sig) else { return };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler;
    // PREVIOUS[i] was written before this handler was installed.
    let (addr, code, previous) = unsafe { ((*info).si_addr() as usize, (*info).si_code, *PREVIOUS[i].as_ptr()) };
    // SAFETY: WATCHED and every `beside` are null or leaked, never freed records.
    let first = unsafe { WATCHED.load(Ordering::SeqCst).as_ref() };
    // SAFETY: as above.
    let watched = || std::iter::successors(first, |w| unsafe { w.beside.as_ref() });
    // si_code > 0: raised by the kernel for a fault, so si_addr is the address.
    let mut in_archive = false;
    if code > 0 {
        if let Some(w) = watched().find(|w| addr.wrapping_sub(w.start) < w.len) {
            in_archive = true;
            say_fault(w, b"offset ", addr - w.start, 10);
        } else if let Some(w) = watched().find(|w| file_changed(w)) {
            say_fault(w, b"address 0x", addr, 16);
        }
    }
    let handler = previous.sa_sigaction;
    if in_archive || handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: restoring an action the kernel gave us; raise is
        // async-signal-safe. The raised signal is blocked while we run and
        // is delivered under the restored action when we return.
        unsafe {
            libc::sigaction(sig, &previous, std::ptr::null_mut());
            libc::raise(sig);
        }
        return;
    }
    // SAFETY: `handler` is the previous handler's address, of the signature
    // its SA_SIGINFO flag says; called as the kernel would have.
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(handler);
            f(sig, info, context);
        } else {
            let f: extern "C" fn(c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

/// Whether the archive file was written in place since it was mapped
/// (`stat(2)` is async-signal-safe).
fn file_changed(w: &Watched) -> bool {
    let Some(path) = &w.real_path else { return false };
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: stat fills `st` when it returns 0; the path is NUL-terminated.
    let st = unsafe {
        if libc::stat(path.as_ptr(), st.as_mut_ptr()) != 0 {
            return false;
        }
        st.assume_init()
    };
    let now = FileStamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
    };
    w.stamp.changed_in_place(&now)
}

/// Writes the fatal line for a fault at `what` `n` to stderr.
fn say_fault(w: &Watched, what: &[u8], n: usize, radix: usize) {
    let mut digits = [0u8; 24];
    let tail = format_number(n, radix, &mut digits);
    // SAFETY: writing the bytes of live buffers.
    unsafe {
        libc::write(2, w.prefix.as_ptr().cast(), w.prefix.len());
        libc::write(2, what.as_ptr().cast(), what.len());
        libc::write(2, tail.as_ptr().cast(), tail.len());
    }
}

/// `"N)\n"` (`n` in base `radix`, at most 16) in `buf`, without allocating
/// (the handler must not).
fn format_number(mut n: usize, radix: usize, buf: &mut [u8; 24]) -> &[u8] {
    let mut at = buf.len() - 2;
    buf[at..].copy_from_slice(b")\n");
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n % radix];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::format_number;

    #[test]
    fn numbers_are_written_without_allocating() {
        let mut buf = [0u8; 24];
        assert_eq!(format_number(0, 10, &mut buf), b"0)\n");
        assert_eq!(format_number(40960, 10, &mut buf), b"40960)\n");
        assert_eq!(format_number(usize::MAX, 10, &mut buf), format!("{})\n", usize::MAX).as_bytes());
        assert_eq!(format_number(0x2000_0000_1234, 16, &mut buf), b"200000001234)\n");
        assert_eq!(format_number(usize::MAX, 16, &mut buf), format!("{:x})\n", usize::MAX).as_bytes());
    }
}
