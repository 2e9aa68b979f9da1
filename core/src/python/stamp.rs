//! Honouring and writing the verified stamp (`crate::stamp_file`): a whole
//! archive checked once, so that each process need not check every module
//! again at its first import.
//!
//! Without a stamp, a module's first import in every process verifies its
//! checksum, reads and validates all its relocation records, walks its
//! objects (`super::shapes`) and compares every pointer slot with the value
//! relocation would write: more instructions than unmarshalling its `.pyc`
//! (docs/PERFORMANCE.md). The dump (and `cds verify`) runs all of those
//! checks over the whole file once and then writes the stamp; a process
//! that finds a stamp naming the file it mapped skips them and reads only
//! the records that need work in every process ([`needs_work`], a module's
//! first record stream, checked to hold exactly those) when the
//! stamp also says every other slot already holds its value here.
//!
//! A stamp is trusted as the archive is (`crate::archive_file::untrusted`:
//! only its owner may write it, and the owner is this user or root): whoever
//! could forge one could as well rewrite the archive, or the `.pyc` files it
//! stands for (docs/DESIGN.md, trust model). Any change to the archive file
//! invalidates it (`crate::stamp_file`). Bit rot on disk, which changes
//! neither, is no longer caught once stamped; it is not caught in a `.pyc`
//! either.

use super::shapes::{self, PoolShapes};
use super::symbols::{self, SymbolTable};
use super::{build_id, image, version};
use crate::archive_file;
use crate::format::layout::get_u64;
use crate::format::{
    read_image_relocations, read_names, read_pooled_name_relocations, read_work_relocations, Archive, Reloc, RelocKind,
    SlotValue, HEADER_SIZE,
};
use crate::stamp_file::{self, Identity, Stamp, STAMP_MAX};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A stamp that names the archive file this process mapped: only [`read`]
/// makes one, and `shapes::ShapeChecked::vouched` requires one.
pub struct Vouched {
    /// Every slot whose record needs no per-process work already holds its
    /// value for a process whose interpreter image lies where the stamping
    /// one's did (as this one's does) and that maps the archive at its
    /// preferred base.
    prewritten: bool,
    /// At least every such slot that points into the archive itself (all
    /// but the Symbol slots naming the interpreter's image) holds its value
    /// for a mapping at the preferred base, wherever the image lies.
    internal: bool,
}

impl Vouched {
    /// Whether only the records [`needs_work`] selects must be applied,
    /// for a mapping `at_preferred_base` or not.
    pub fn slots_prewritten(&self, at_preferred_base: bool) -> bool {
        self.prewritten && at_preferred_base
    }

    /// Whether those records and the Symbol records suffice (the
    /// archive's own pointers are right; the image moved).
    pub fn internal_slots_prewritten(&self, at_preferred_base: bool) -> bool {
        self.internal && at_preferred_base
    }
}

/// What [`check_whole`] found of the slots outside the first stream.
struct Prewritten {
    /// All of them hold their values here (`Vouched::prewritten`).
    all: bool,
    /// Those pointing into the archive do (`Vouched::internal`).
    internal: bool,
}

/// Whether a record of `kind` naming `target` needs work in every process,
/// wherever the archive is mapped: interning a str outside the name pool
/// `names`, frozenset building, runtime objects that are not statics of
/// the interpreter's image.
pub fn needs_work(kind: RelocKind, target: u32, names: &Range<usize>) -> bool {
    kind.needs_work(target, symbols::is_static, names)
}

/// The stamp of the archive at `real_path`, whose file as mapped has
/// metadata `meta` and header `header`, when there is one that names it.
/// `Err` says why a stamp that exists does not apply (for `-X
/// cds_verbose=2`); no stamp at all is `Ok(None)`.
pub fn read(real_path: &Path, meta: &Metadata, header: &[u8]) -> Result<Option<Vouched>, String> {
    let path = stamp_file::path_for(real_path);
    // O_NOFOLLOW: a symlink planted in the archive's directory is not a stamp.
    let file = match File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let stamp_meta = file.metadata().map_err(|e| e.to_string())?;
    if !stamp_meta.is_file() || stamp_meta.len() > STAMP_MAX {
        return Err(format!("{} is not a stamp", path.display()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if let Some(why) = archive_file::untrusted(&stamp_meta, unsafe { libc::geteuid() }) {
        return Err(format!("{}: {}", path.display(), why.replacen("archive", "stamp", 1)));
    }
    let mut text = String::new();
    file.take(STAMP_MAX).read_to_string(&mut text).map_err(|e| format!("{}: {e}", path.display()))?;
    let stamp = Stamp::parse(&text).ok_or_else(|| format!("{} is not a stamp", path.display()))?;
    if Some(stamp.identity) != Identity::of(meta, header) {
        return Err(format!("{} names another file or an earlier state of it", path.display()));
    }
    Ok(Some(Vouched { prewritten: stamp.anchor == Some(image::anchor() as u64), internal: stamp.internal }))
}

/// Why [`write`] wrote no stamp when another writer replaced the archive
/// meanwhile.
pub const CHANGED_WHILE_CHECKED: &str = "the archive changed while it was checked";

/// Checks the whole archive file at `path` as a serving process checks
/// each module, then writes its stamp; `Ok(prewritten)`: whether the stamp
/// also says its slots need no writes here (see [`Vouched`]). The GIL is
/// held (the check resolves runtime symbols).
pub fn write(path: &Path) -> Result<bool, String> {
    let real_path = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let mut file = File::open(&real_path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if let Some(why) = archive_file::untrusted(&meta, unsafe { libc::geteuid() }) {
        return Err(why);
    }
    wait_past(meta.ctime(), meta.ctime_nsec());
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let header = &bytes[..HEADER_SIZE.min(bytes.len())];
    let identity = Identity::of(&meta, header).ok_or("file is truncated")?;
    let prewritten = check_whole(&bytes)?;
    // What was checked must be what the stamp names: the descriptor's file,
    // unchanged since, and still the one at the path.
    let now = std::fs::metadata(&real_path).map_err(|e| e.to_string())?;
    if Identity::of(&file.metadata().map_err(|e| e.to_string())?, header) != Some(identity)
        || Identity::of(&now, header) != Some(identity)
    {
        return Err(CHANGED_WHILE_CHECKED.into());
    }
    let anchor = prewritten.all.then(|| image::anchor() as u64);
    let stamp = Stamp { identity, anchor, internal: prewritten.internal };
    crate::write::write_atomic(&stamp_file::path_for(&real_path), stamp.render().as_bytes())
        .map_err(|e| format!("cannot write its stamp: {e}"))?;
    Ok(prewritten.all)
}

/// Waits until the clock file times are taken from has passed the file's
/// ctime `(secs, nsecs)`. That clock advances in ticks (a few ms), so a
/// write in the tick of the dump's rename would leave ctime as it was;
/// after the wait, any write gives the file a later ctime, and the bytes
/// read after it are the bytes the stamp names.
fn wait_past(secs: i64, nsecs: i64) {
    let stamped = (secs, nsecs);
    for _ in 0..1000 {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes one timespec, which `now` is.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } != 0
            || (now.tv_sec, now.tv_nsec) > stamped
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Every check a serving process makes of `bytes` (header, table, name
/// pool, each module's checksum, records and shape); then which slots whose
/// record needs no per-process work ([`needs_work`]) already hold their
/// values with the archive at its preferred base: all of them for this
/// interpreter image, or at least those pointing into the archive.
fn check_whole(bytes: &[u8]) -> Result<Prewritten, String> {
    let archive = Archive::parse(bytes, &build_id::expectations()).map_err(|e| e.to_string())?;
    archive.verify_names(bytes).map_err(|e| e.to_string())?;
    let base = Archive::peek_preferred_base(bytes);
    let symbols = SymbolTable::new();
    let (names, pool) = (archive.names(), PoolShapes::for_pool(archive.names().len()));
    // Per pooled entry, what its slots hold at the preferred base.
    let mut statics: HashMap<u32, u64> = HashMap::new();
    let mut prewritten = Prewritten { all: base != 0, internal: base != 0 };
    for index in 0..archive.module_count() {
        let view = archive.module(bytes, index).map_err(|e| e.to_string())?;
        let name = view.name(bytes).to_owned();
        view.verify(bytes).map_err(|e| e.to_string())?;
        let work = read_work_relocations(bytes, &view).map_err(|e| format!("module {name}: {e}"))?;
        let listed = read_names(bytes, &view).map_err(|e| format!("module {name}: its names: {e}"))?;
        let pooled_records =
            read_pooled_name_relocations(bytes, &view).map_err(|e| format!("module {name}: its names: {e}"))?;
        let image = read_image_relocations(bytes, &view).map_err(|e| format!("module {name}: {e}"))?;
        let checked = shapes::check(bytes, view, &archive.code_serials(), &pool)
            .map_err(|why| format!("module {name}: {why}"))?;
        let all = checked.relocations();
        let works = |r: &&Reloc| needs_work(r.kind, r.target, &names);
        // The first stream must hold exactly the records that need work,
        // the names region exactly the pooled-name records (so its names,
        // the entries they name), and the image stream exactly the Symbol
        // records that need no work: a stamped process at the preferred
        // base reads the first stream and the names' entries, a name's
        // slots when interning found another str for it, and the image
        // stream where the image moved.
        let is_pooled = |r: &&Reloc| r.kind == RelocKind::InternedStr && !works(r);
        let is_image = |r: &&Reloc| r.kind == RelocKind::Symbol && !works(r);
        let mut pooled: Vec<u32> = all.iter().filter(is_pooled).map(|r| r.target).collect();
        pooled.sort_unstable();
        pooled.dedup();
        let split_right = work.iter().all(|r| works(&r))
            && work.len() == all.iter().filter(works).count()
            && listed == pooled
            && pooled_records.iter().all(|r| is_pooled(&r))
            && pooled_records.len() == all.iter().filter(is_pooled).count()
            && image.iter().all(|r| is_image(&r))
            && image.len() == all.iter().filter(is_image).count();
        prewritten.internal &= split_right;
        prewritten.all &= split_right;
        for r in all.iter().filter(|r| !works(r)) {
            let slot = get_u64(bytes, r.slot as usize);
            // Whether the slot holds its value here, and whether it points
            // into the archive (right wherever the image lies).
            let (right, internal) = match r.kind.slot_value(r.target, base) {
                SlotValue::Address(a) => (slot == a, slot == a),
                // A pooled name: where the image does not move, the static
                // str equal to it (3.13's `_Py_ID`, 3.11's deep-frozen
                // names), which interning gives in every process of this
                // image; else its entry (a process that interned another
                // str first finds out per entry at load).
                SlotValue::Interned(a) if image::fixed() => {
                    let expected = *statics.entry(r.target).or_insert_with(|| {
                        // SAFETY: GIL held (stamping runs from `_cds`); the
                        // entry passed its shape check as a str.
                        unsafe { version::static_str_equal_to(&bytes[r.target as usize..names.end]) }.unwrap_or(a)
                    });
                    (slot == expected, slot == a)
                }
                SlotValue::Interned(a) => (slot == a, slot == a),
                // A static of the interpreter's own image moves only with it.
                SlotValue::Symbol(id) => {
                    (symbols.resolve(id).filter(|&a| image::holds(a)).is_some_and(|a| a as u64 == slot), true)
                }
                // Work at load in every process (needs_work).
                SlotValue::FrozenSetOf(_) | SlotValue::CodeState => (false, false),
            };
            prewritten.all &= right;
            prewritten.internal &= internal;
            if !prewritten.internal && !prewritten.all {
                break;
            }
        }
    }
    Ok(prewritten)
}
