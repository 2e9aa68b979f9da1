//! The archive this process serves from, and what happened to each module.
//!
//! Opening maps the file and validates its header and table only; each module
//! is checked (source freshness, checksum, relocation records, the shape of
//! its objects: `super::shapes`) and fixed up at its first import, so opening
//! never touches the archived objects (the stock hook has its start-up
//! archive's modules all fixed up at once: [`Served::claim_all`]); the name
//! pool is checksummed once, before the first fix-up. The
//! mapping is private and writable (copy-on-write): the interpreter writes
//! into archived objects (refcounts, quickened bytecode, str hashes), and
//! those writes stay in this process. It is never unmapped: archived objects
//! may be referenced until the very end of the process.
//!
//! A module's first fix-up calls into the interpreter (interning, building
//! frozensets), which may run Python that imports, so it runs with the state
//! unlocked (`super::state`): [`Served::find`] and friends claim the module
//! (state `Preparing`) and hand back a [`Preparation`]; the caller unlocks,
//! relocates, locks again and [`Served::finish`]es it. A nested lookup of a
//! module being prepared answers "import normally".

use super::image;
use super::interpreter::compile_settings;
use super::mapping::{self, Mapping};
use super::marshal::References;
use super::pool::Pool;
use super::pooled_names;
use super::shapes::{self, ListedNames, ShapeChecked};
use super::stamp::{self, Vouched};
use super::symbols::SymbolTable;
use super::{ffi, verbose, version};
use crate::archive_file::{self, FileStamp};
use crate::format::{
    apply_read_relocations_at, read_image_symbols_at, read_names, read_relocations, read_work_relocations,
    rewrite_pooled_names_at, Archive, Expectations, Fixups, ModuleView, HEADER_SIZE, OBJECT_ALIGN,
};
use crate::imports::freshness::{source_unchanged, Check, SourceStamp};
use crate::imports::resolve::DirCache;
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

/// Address ranges of the serving mappings (the named archive, then the
/// default one it is layered on), read by the interpreter's dealloc guard
/// (`_PyCds_IsArchived` in Include/internal/pycore_cds.h). Zero until an
/// archive serves. Each [`publish`] sets them, so after an
/// embedder's re-initialisation (see `state::forget_runtime`) they name the
/// new runtime's mapping: the leaked mapping of the old runtime is no longer
/// covered by the guard, and its objects rely on their archived refcounts
/// alone (`version::ARCHIVED_REFCNT`, `version::str_refcnt`).
#[no_mangle]
pub static mut _PyCds_MapStart: usize = 0;
#[no_mangle]
pub static mut _PyCds_MapSize: usize = 0;
#[no_mangle]
pub static mut _PyCds_Map2Start: usize = 0;
#[no_mangle]
pub static mut _PyCds_Map2Size: usize = 0;
/// The code versions of the serving archives' code objects (from the lowest
/// start to the highest end), which 3.13's `init_code` skips
/// (`Objects/codeobject.c`, patch `0007-codeobject-cds-reserved-versions`);
/// empty until an archive serves.
#[no_mangle]
pub static mut _PyCds_CodeVersionStart: u32 = 0;
#[no_mangle]
pub static mut _PyCds_CodeVersionEnd: u32 = 0;

enum ModuleState {
    /// Claimed by a [`Preparation`] that has not finished (it runs Python
    /// meanwhile, which may ask for this module again).
    Preparing,
    /// Relocated; `code` is the address of its code object.
    Ready { code: usize },
    /// Corrupt: never retried from this mapping.
    Broken,
}

/// The archive's header and table, validated for this interpreter: its
/// build (`expect`) and the compile settings of this process (code compiled
/// with other settings is not what an import here would produce: asserts,
/// docstrings, column positions). What `python -m cds info` calls usable.
pub fn parse_for_this_interpreter(bytes: &[u8], expect: &Expectations) -> Result<Archive, String> {
    let archive = Archive::parse(bytes, expect).map_err(|e| e.to_string())?;
    match archive.compile_settings().mismatch(&compile_settings()) {
        Some(why) => Err(why),
        None => Ok(archive),
    }
}

/// Opens an archive file for reading; O_NONBLOCK: opening a FIFO must not
/// wait for a writer (`Served::open_file` refuses anything but a file).
fn open_archive_file(path: &str) -> std::io::Result<std::fs::File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// The archive this process serves from. It lives in `state::STATE` (a
/// static mutex, hence `Send`, which every field is: the one unsafe claim is
/// `Mapping`'s).
pub struct Served {
    pub path: String,
    map: Mapping,
    /// The archive's absolute path (the program may change directory), stat'ed
    /// to notice an in-place overwrite or a truncation ([`Served::file_changed`]).
    real_path: Option<String>,
    /// The file as it was when mapped.
    stamp: FileStamp,
    /// Set once the file changed: nothing more is served from it.
    changed: bool,
    archive: Archive,
    states: HashMap<usize, ModuleState>,
    /// Relocated source modules by name, with what the loader checks, copied
    /// out of the table: `get_code` answers them without reading the table
    /// (or stat'ing the archive) again.
    ready: HashMap<String, ReadyModule>,
    served: Vec<String>,
    served_names: HashSet<String>,
    rejected: Vec<(String, String)>,
    /// Shared with preparations running unlocked.
    symbols: Arc<SymbolTable>,
    pool: Arc<Pool>,
    /// The name pool's checksum outcome, checked before the first fix-up
    /// (or vouched for by the stamp).
    pool_verified: Option<Result<(), String>>,
    /// The archive's stamp, when it names the mapped file: modules are not
    /// checked again (`super::stamp`).
    vouched: Option<Vouched>,
    /// How many start-up names were interned from the pool before the
    /// interpreter's own ([`Served::intern_startup_names`]).
    startup_names: usize,
    check: Check,
    dirs: DirCache,
    /// For marshal's sharing test, built at its first question: module
    /// spans by start offset, and per module which archived containers
    /// point at each of its objects (`marshal::References`).
    spans: Vec<(std::ops::Range<usize>, usize)>,
    references: HashMap<usize, References>,
}

impl Served {
    /// Maps and validates the archive at `path`.
    pub fn open(path: &str, expect: &Expectations, check: Check) -> Result<Self, String> {
        let file = open_archive_file(path).map_err(|e| e.to_string())?;
        Self::open_file(path, file, expect, check)
    }

    /// [`Served::open`], but Ok(None) when there is no file at `path`
    /// (one failed `open`, no `stat` first).
    pub fn open_if_present(path: &str, expect: &Expectations, check: Check) -> Result<Option<Self>, String> {
        match open_archive_file(path) {
            Ok(file) => Self::open_file(path, file, expect, check).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn open_file(path: &str, file: std::fs::File, expect: &Expectations, check: Check) -> Result<Self, String> {
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if meta.is_dir() {
            return Err("is a directory".into());
        }
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.len() == 0 {
            return Err("file is empty".into());
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if let Some(why) = archive_file::untrusted(&meta, unsafe { libc::geteuid() }) {
            return Err(why);
        }
        // The preferred base is read before validation: it is only where to
        // try mapping, and every slot is checked by relocation regardless.
        let mut head = [0u8; crate::format::HEADER_SIZE];
        let base = match std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0) {
            Ok(()) => Archive::peek_preferred_base(&head),
            Err(_) => 0,
        };
        let map = Mapping::map(&file, meta.len() as usize, base).map_err(|e| format!("cannot map: {e}"))?;
        let archive = parse_for_this_interpreter(&map, expect)?;
        // SAFETY: GIL held (opening runs from `_cds`).
        if !unsafe { version::code_serials_unused(&archive.code_serials()) } {
            return Err("this interpreter already handed out the code versions the archive uses".into());
        }
        let real_path = std::fs::canonicalize(path).ok().and_then(|p| p.into_os_string().into_string().ok());
        let vouched = match real_path.as_deref().map(|p| stamp::read(p.as_ref(), &meta, &map[..HEADER_SIZE])) {
            Some(Ok(vouched)) => vouched,
            Some(Err(why)) => {
                verbose::stamp_ignored(path, &why);
                None
            }
            None => None,
        };
        let stamp = FileStamp::of(&meta);
        let pool = (map.as_ptr() as usize + archive.names().start)..(map.as_ptr() as usize + archive.names().end);
        let mut served = Self {
            path: path.to_owned(),
            map,
            real_path,
            stamp,
            changed: false,
            archive,
            states: HashMap::new(),
            ready: HashMap::new(),
            served: Vec::new(),
            served_names: HashSet::new(),
            rejected: Vec::new(),
            symbols: Arc::new(SymbolTable::new()),
            pool: Arc::new(Pool::new(pool)),
            pool_verified: None,
            vouched,
            startup_names: 0,
            check,
            // Set before serving (`set_extension_suffixes`): the archive may
            // be opened before `_imp` exists.
            dirs: DirCache::new(Vec::new()),
            spans: Vec::new(),
            references: HashMap::new(),
        };
        if served.vouched.is_some() {
            served.pool_passed();
        }
        Ok(served)
    }

    /// `_imp.extension_suffixes()`, which the search-path check needs
    /// (a file with one shadows the archived module); before the first lookup.
    pub fn set_extension_suffixes(&mut self, suffixes: Vec<String>) {
        self.dirs.set_extension_suffixes(suffixes);
    }

    /// Interns the archive's start-up names (`Archive::startup_names`), in
    /// pool order, before the interpreter interns its own: each becomes the
    /// interpreter's interned str, so the slots the dump pre-wrote with its
    /// address stay as they are. Each entry is shape-checked first, after
    /// the pool's checksum (or the stamp); a failure stops here quietly, and
    /// the first module that names the pool reports it (`-X cds_verbose=2`
    /// says how many names were interned). GIL held.
    pub fn intern_startup_names(&mut self) {
        let startup = self.archive.startup_names();
        if startup.is_empty() {
            return;
        }
        if self.pool_verified.is_none() {
            // A bad pool is reported by the first module that names it.
            if self.archive.verify_names(&self.map).is_err() {
                return;
            }
            // Checked before interning writes into it (hashes, state).
            self.pool_passed();
        }
        let (base, names) = (self.map.as_ptr() as usize, self.archive.names());
        let mut at = startup.start;
        while at < startup.end {
            let Some(size) = self.pool.shapes().check_entry(&self.map, &names, at) else { break };
            // SAFETY: `at` is a str entry of this pool that just passed its
            // shape check (inside the pool, header and length consistent);
            // GIL held (caller).
            if unsafe { self.pool.intern(base + at) }.is_err() {
                break;
            }
            self.startup_names += 1;
            at += size.next_multiple_of(OBJECT_ALIGN);
        }
    }

    /// Whether this archive can serve beside `other` (one process, two
    /// layers): their code serials must not overlap, or two code objects
    /// would share a 3.13 `co_version` (which specialised calls trust).
    pub fn can_layer_with(&self, other: &Served) -> bool {
        let (mine, theirs) = (self.archive.code_serials(), other.archive.code_serials());
        mine.is_empty() || theirs.is_empty() || mine.end <= theirs.start || theirs.end <= mine.start
    }

    /// Whether `address` lies in this archive's mapping.
    pub fn contains(&self, address: usize) -> bool {
        address.wrapping_sub(self.map.as_ptr() as usize) < self.map.len()
    }

    /// Whether `preparation` was claimed from this archive.
    pub fn prepared(&self, preparation: &Preparation) -> bool {
        std::ptr::eq(preparation.base.cast_const(), self.map.as_ptr())
    }

    /// Says it serves (`-X cds_verbose=2`) and has the fault guard watch
    /// its mapping, beside the other layer's if `beside`.
    fn watch(&self, beside: bool) {
        let (start, len) = (self.map.as_ptr() as usize, self.map.len());
        crate::fault_guard::install(&self.path, self.real_path.as_deref(), self.stamp, start, len, beside);
        verbose::opened(
            &self.path,
            self.module_count(),
            self.at_preferred_base(),
            self.vouched.is_some(),
            self.startup_names,
        );
    }

    pub fn module_count(&self) -> usize {
        self.archive.module_count()
    }

    /// Whether the archive's stamp names the mapped file.
    pub fn stamped(&self) -> bool {
        self.vouched.is_some()
    }

    /// Whether the archive is mapped where the dump laid it out.
    pub fn at_preferred_base(&self) -> bool {
        self.map.at_preferred_base()
    }

    fn reject(&mut self, name: &str, why: String) {
        verbose::rejected(name, &why);
        self.rejected.retain(|(n, _)| n != name);
        self.rejected.push((name.to_owned(), why));
    }

    /// Whether the archive file was overwritten in place or truncated since
    /// it was mapped (one `stat`). The first time, says so on stderr: from
    /// then on every module is imported normally. (Objects already served
    /// may read the new bytes, or fault; see `fault_guard`.)
    fn file_changed(&mut self) -> bool {
        let now = || std::fs::metadata(self.real_path.as_deref()?).ok().map(|m| FileStamp::of(&m));
        if !self.changed && now().is_some_and(|now| self.stamp.changed_in_place(&now)) {
            eprintln!(
                "cds: warning: archive {} was changed in place while in use; importing normally from now on",
                self.path
            );
            self.changed = true;
        }
        self.changed
    }

    /// The archived module `name`; `report_missing`: a miss is worth a
    /// verbose line (the finders' lookups, not the loader's second one).
    fn lookup(&mut self, name: &str, report_missing: bool) -> Option<ModuleView> {
        // The table itself may be what changed: check before reading it.
        if self.file_changed() || self.pool_verified.as_ref().is_some_and(|v| v.is_err()) {
            return None;
        }
        let Some(index) = self.archive.find(&self.map, name) else {
            if report_missing {
                verbose::missed(name, &self.path);
            }
            return None;
        };
        match self.archive.module(&self.map, index) {
            Ok(view) => Some(view),
            Err(e) => {
                self.broken(index, name, e.to_string());
                None
            }
        }
    }

    fn broken(&mut self, index: usize, name: &str, why: String) {
        eprintln!("cds: warning: {}: module {name} not used: {why}", self.path);
        self.states.insert(index, ModuleState::Broken);
        self.reject(name, why);
    }

    /// Which search path entries of `dirs` the search-path check has never
    /// listed (none when it does not check).
    pub fn unlisted_dirs<'a>(&self, dirs: &'a [String]) -> Vec<&'a str> {
        if self.check == Check::None {
            return Vec::new();
        }
        self.dirs.unlisted(dirs)
    }

    /// Directory `dir`'s names as importlib's `FileFinder` read them, and
    /// the mtime it read them at, if it has (`imports::resolve::DirCache::adopt`).
    pub fn adopt_listing(&mut self, dir: &str, listing: Option<(f64, Vec<String>)>) {
        self.dirs.adopt(dir, listing);
    }

    /// For the meta path finder: `(origin, is_package)` when `name` can be
    /// served, after checking that a normal import would find the same file
    /// (`search_path` is the parent's `__path__`, or None for top-level
    /// modules, which search `sys_path`; both without the entries importlib
    /// found no finder for), checking its source and fixing its objects up.
    pub fn find(
        &mut self,
        name: &str,
        search_path: Option<&[String]>,
        sys_path: &[String],
        report_missing: bool,
    ) -> Answer<(String, bool)> {
        let Some(view) = self.lookup(name, report_missing) else { return Answer::Now(None) };
        if view.is_frozen(&self.map) {
            return Answer::Now(None); // served through FrozenImporter, which keeps its own spec
        }
        let origin = view.origin(&self.map).to_owned();
        if self.check != Check::None {
            let resolved = match search_path {
                Some(dirs) => self.dirs.check_module(dirs, &origin, name, view.is_package),
                None => self.dirs.check_module(sys_path, &origin, name, view.is_package),
            };
            if let Err(why) = resolved {
                self.reject(name, why);
                return Answer::Now(None);
            }
        }
        let is_package = view.is_package;
        // Whether the source is the one archived is the loader's question
        // (`get_code`, one stat); the finder only needs it to exist, as a
        // normal search needs it: it is in its directory's listing (for a
        // module, the directory the search-path check just revalidated).
        if self.check != Check::None && !self.dirs.lists(&origin) {
            self.reject(name, "source file is missing".into());
            return Answer::Now(None);
        }
        self.prepare(view, name, false, Check::None).map(|_| (origin, is_package))
    }

    /// For `SourceLoader.get_code`: the archived code of `name` if the archive
    /// holds it for exactly `source_path` and the source is unchanged.
    pub fn get_code(&mut self, name: &str, source_path: &str) -> Answer<usize> {
        if let Some(ready) = self.ready.get(name) {
            // `changed`: the finder's lookup noticed the file changed in place.
            if self.changed || ready.origin != source_path {
                return Answer::Now(None);
            }
            if let Err(why) = source_unchanged(&ready.origin, &ready.source.stamp(), self.check) {
                self.reject(name, why);
                return Answer::Now(None);
            }
            let code = ready.code;
            self.note_served(name);
            return Answer::Now(Some(code));
        }
        let Some(view) = self.lookup(name, false) else {
            return Answer::Now(None);
        };
        if view.origin(&self.map) != source_path {
            return Answer::Now(None);
        }
        self.prepare(view, name, true, self.check)
    }

    /// For `FrozenImporter.exec_module` (3.13+): the archived code of frozen
    /// module `name`, instead of unmarshalling the frozen bytes.
    pub fn get_frozen_code(&mut self, name: &str, report_missing: bool) -> Answer<usize> {
        let Some(view) = self.lookup(name, report_missing) else { return Answer::Now(None) };
        if !view.is_frozen(&self.map) {
            return Answer::Now(None);
        }
        self.prepare(view, name, true, Check::None)
    }

    fn note_served(&mut self, name: &str) {
        if self.served_names.insert(name.to_owned()) {
            verbose::served(name, &self.path);
            self.served.push(name.to_owned());
        }
        self.rejected.retain(|(n, _)| n != name);
    }

    /// Checks the source (as `check_source` says); the first time also the
    /// module's bytes, and claims the module for its fix-up. The answer is
    /// the code object's address; `serves`: the caller hands the code out
    /// (recorded as served).
    fn prepare(&mut self, view: ModuleView, name: &str, serves: bool, check_source: Check) -> Answer<usize> {
        if !view.is_frozen(&self.map) && check_source != Check::None {
            let recorded = OwnedStamp::of(&view, &self.map);
            if let Err(why) = source_unchanged(view.origin(&self.map), &recorded.stamp(), check_source) {
                self.reject(name, why);
                return Answer::Now(None);
            }
        }
        match self.states.get(&view.index) {
            Some(ModuleState::Ready { code }) => {
                let code = *code;
                if serves {
                    self.note_served(name);
                }
                return Answer::Now(Some(code));
            }
            Some(ModuleState::Broken | ModuleState::Preparing) => return Answer::Now(None),
            None => {}
        }
        let index = view.index;
        if !self.pool_intact(name) {
            return Answer::Now(None);
        }
        match self.claim(view, name, serves) {
            Ok(preparation) => {
                let code = self.map.as_ptr() as usize + preparation.module.view().code;
                Answer::AfterPreparing(Box::new(preparation), code)
            }
            Err(why) => {
                self.broken(index, name, why);
                Answer::Now(None)
            }
        }
    }

    /// Checks module `view`'s bytes and claims it for its fix-up (state
    /// `Preparing`).
    fn claim(&mut self, view: ModuleView, name: &str, serves: bool) -> Result<Preparation, String> {
        let module = match &self.vouched {
            Some(vouched) => self.vouched_module(view, vouched),
            None => self.check_module(view),
        }?;
        self.states.insert(module.view().index, ModuleState::Preparing);
        Ok(Preparation {
            base: self.map.base_ptr(),
            len: self.map.len(),
            symbols: Arc::clone(&self.symbols),
            pool: Arc::clone(&self.pool),
            name: name.to_owned(),
            serves,
            module,
            populated: false,
        })
    }

    /// Claims every module no lookup has claimed yet, to be fixed up
    /// together now rather than each at its first import: meant for a
    /// program's own archive (traced from it, so nearly all of it is
    /// imported). Where the interpreter's image moved, relocation writes
    /// nearly every page anyway, so the pages are copied in three calls
    /// instead of two per module; and the imports that follow find their
    /// modules ready. Checks are as at a lookup; a module that fails them,
    /// or a pool that fails its checksum, is left to its lookup, which
    /// reports it as before. The source is checked when the module is
    /// served, as always.
    pub fn claim_all(&mut self) -> Vec<Preparation> {
        if self.file_changed() {
            return Vec::new();
        }
        if self.pool_verified.is_none() && self.archive.verify_names(&self.map).is_ok() {
            self.pool_passed();
        }
        if !self.pool_verified.as_ref().is_some_and(|v| v.is_ok()) {
            return Vec::new();
        }
        let mut claimed = Vec::new();
        for index in 0..self.archive.module_count() {
            if self.states.contains_key(&index) {
                continue;
            }
            let Ok(view) = self.archive.module(&self.map, index) else { continue };
            if view.is_frozen(&self.map) {
                continue;
            }
            let name = view.name(&self.map).to_owned();
            if let Ok(preparation) = self.claim(view, &name, false) {
                claimed.push(preparation);
            }
        }
        if !image::fixed() {
            // Relocation writes every claimed object's type slot and interns
            // the names (the archive's own pages, so copied for writing).
            let views = || claimed.iter().map(|p| p.module.view());
            let base = self.map.as_ptr() as usize;
            for span in
                [covering(views().map(|v| &v.hot)), covering(views().map(|v| &v.cold)), Some(self.archive.names())]
                    .into_iter()
                    .flatten()
            {
                mapping::populate_for_writing(base + span.start..base + span.end);
            }
            claimed.iter_mut().for_each(|p| p.populated = true);
        }
        claimed
    }

    /// A module of a stamped archive: only its records are read, and only
    /// those that need work here when the stamp says the others' slots are
    /// right for this process.
    fn vouched_module(&self, view: ModuleView, vouched: &Vouched) -> Result<ShapeChecked, String> {
        let at_base = self.at_preferred_base();
        let listed = |statics_prewritten| {
            let entries = read_names(&self.map, &view).map_err(|e| format!("its names: {e}"))?;
            Ok::<_, String>(Some(ListedNames { entries, statics_prewritten }))
        };
        let (relocs, listed, image_symbols) = if vouched.slots_prewritten(at_base) {
            (read_work_relocations(&self.map, &view), listed(true)?, false)
        } else if vouched.internal_slots_prewritten(at_base) {
            // The interpreter's image lies elsewhere (PIE, a shared
            // libpython, another executable): its statics' slots are
            // written too (read when relocating), the archive's own
            // pointers are right.
            (read_work_relocations(&self.map, &view), listed(false)?, true)
        } else {
            (read_relocations(&self.map, &view), None, false)
        };
        Ok(ShapeChecked::vouched(view, relocs.map_err(|e| e.to_string())?, listed, image_symbols, vouched))
    }

    /// A module of an archive without a stamp: its checksum, its records and
    /// its objects' shapes.
    fn check_module(&mut self, view: ModuleView) -> Result<ShapeChecked, String> {
        view.verify(&self.map).map_err(|e| e.to_string())?;
        shapes::check(&self.map, view, &self.archive.code_serials(), self.pool.shapes())
    }

    /// Whether the name pool passed its checksum, checked at the first
    /// fix-up. When it fails, says so once: every module names the pool,
    /// so nothing more is served.
    fn pool_intact(&mut self, name: &str) -> bool {
        if self.pool_verified.is_none() {
            match self.archive.verify_names(&self.map) {
                Ok(()) => self.pool_passed(),
                Err(e) => {
                    let why = e.to_string();
                    eprintln!("cds: warning: {}: {why}; importing normally from now on", self.path);
                    self.reject(name, why.clone());
                    self.pool_verified = Some(Err(why));
                }
            }
        }
        self.pool_verified.as_ref().is_some_and(|v| v.is_ok())
    }

    /// Records that the name pool passed its checksum (or the stamp vouched
    /// for it) and offers it to the interpreter's interning
    /// (`pooled_names`), so that names other code interns are the
    /// archive's: one place, so no verified pool goes unoffered.
    fn pool_passed(&mut self) {
        self.pool_verified = Some(Ok(()));
        pooled_names::offer(&self.map, &self.archive, &self.pool);
    }

    /// Leaves the archive mapped but unused for good: its names may be
    /// interned (the interpreter points at them), so it is never unmapped,
    /// and its pool is offered no more.
    pub fn leak(self) {
        pooled_names::withdraw(self.map.as_ptr() as usize);
        std::mem::forget(self);
    }

    /// Records the outcome of `preparation` (see [`Preparation::relocate`]);
    /// the code object's address when it succeeded.
    pub fn finish(&mut self, preparation: Preparation, relocated: Result<(), String>) -> Option<usize> {
        let Preparation { module, name, serves, .. } = preparation;
        let view = module.view();
        if let Err(why) = relocated {
            self.broken(view.index, &name, why);
            return None;
        }
        let code = self.map.as_ptr() as usize + view.code;
        self.states.insert(view.index, ModuleState::Ready { code });
        if !view.is_frozen(&self.map) {
            let ready = ReadyModule {
                code,
                origin: view.origin(&self.map).to_owned(),
                source: OwnedStamp::of(view, &self.map),
            };
            self.ready.insert(name.clone(), ready);
        }
        if serves {
            self.note_served(&name);
        }
        Some(code)
    }

    /// Whether marshal should treat archived object `address` as shared
    /// (write it with FLAG_REF), as it treats an object whose refcount is
    /// not 1: see [`References`]. When nothing is known, it is.
    pub fn shared_for_marshal(&mut self, address: usize) -> bool {
        let base = self.map.as_ptr() as usize;
        let Some(offset) = address.checked_sub(base) else { return true };
        if self.spans.is_empty() {
            for index in 0..self.archive.module_count() {
                if let Ok(view) = self.archive.module(&self.map, index) {
                    self.spans.push((view.hot.clone(), index));
                    self.spans.push((view.cold.clone(), index));
                }
            }
            self.spans.sort_by_key(|(span, _)| span.start);
        }
        let after = self.spans.partition_point(|(span, _)| span.start <= offset);
        let Some(&(_, index)) = after.checked_sub(1).map(|i| &self.spans[i]).filter(|(s, _)| s.contains(&offset))
        else {
            return true;
        };
        if !matches!(self.states.get(&index), Some(ModuleState::Ready { .. })) {
            return true;
        }
        if !self.references.contains_key(&index) {
            let Ok(view) = self.archive.module(&self.map, index) else { return true };
            let Some(references) = References::of(&self.map, &view) else { return true };
            self.references.insert(index, references);
        }
        // SAFETY: the module is Ready (relocated from validated, shape-checked
        // records) in the serving mapping at `base`; marshal, our caller, holds the GIL.
        unsafe { self.references[&index].is_shared(base, offset) }
    }

    pub fn served(&self) -> &[String] {
        &self.served
    }

    pub fn rejected(&self) -> &[(String, String)] {
        &self.rejected
    }
}

/// Points the dealloc guard, the code version reservation and the fault
/// guard at `layers` (lookup order, at most two: the patch's two ranges),
/// before any of their objects is handed out; `added`: how many at the
/// front are new (the others were published before).
pub fn publish(layers: &[&Served], added: usize) {
    assert!(layers.len() <= 2, "the dealloc guard covers two mappings");
    let range = |i: usize| layers.get(i).map_or((0, 0), |s| (s.map.as_ptr() as usize, s.map.len()));
    let serials = layers.iter().map(|s| s.archive.code_serials()).filter(|r| !r.is_empty());
    let start = serials.clone().map(|r| r.start).min().unwrap_or(0);
    let end = serials.map(|r| r.end).max().unwrap_or(0);
    // SAFETY: the GIL is held (a `_cds` call), and the dealloc guard and
    // init_code, the only other users of these statics, read them with the
    // GIL held too.
    unsafe {
        (_PyCds_MapStart, _PyCds_MapSize) = range(0);
        (_PyCds_Map2Start, _PyCds_Map2Size) = range(1);
        (_PyCds_CodeVersionStart, _PyCds_CodeVersionEnd) = (start, end);
        // Where no patch reads the statics above (a stock interpreter).
        version::reserve_code_versions(end);
    }
    for (i, served) in layers.iter().enumerate().take(added).rev() {
        served.watch(i + 1 < layers.len());
    }
}

/// A relocated source module, as `Served::get_code` checks it.
struct ReadyModule {
    code: usize,
    origin: String,
    source: OwnedStamp,
}

/// A module's [`SourceStamp`], copied out of the mapping.
struct OwnedStamp {
    size: u64,
    mtime_ns: i64,
    hash: u64,
    dev: u64,
    ino: u64,
    realpath: String,
}

impl OwnedStamp {
    fn of(view: &ModuleView, bytes: &[u8]) -> Self {
        let (size, mtime_ns, hash) = (view.source_size, view.source_mtime_ns, view.source_hash);
        let (dev, ino, realpath) = (view.source_dev, view.source_ino, view.source_realpath(bytes).to_owned());
        Self { size, mtime_ns, hash, dev, ino, realpath }
    }

    fn stamp(&self) -> SourceStamp<'_> {
        let (size, mtime_ns, hash, dev, ino) = (self.size, self.mtime_ns, self.hash, self.dev, self.ino);
        SourceStamp { size, mtime_ns, hash, dev, ino, realpath: &self.realpath }
    }
}

/// The smallest range covering all of `ranges` (None for none).
fn covering<'a>(ranges: impl Iterator<Item = &'a Range<usize>>) -> Option<Range<usize>> {
    ranges.fold(None, |all, r| Some(all.map_or(r.clone(), |a: Range<usize>| a.start.min(r.start)..a.end.max(r.end))))
}

/// A lookup's answer: known now, or once the caller has fixed the module up
/// with the state unlocked ([`Preparation::relocate`]) and handed the
/// outcome to [`Served::finish`]; `T` is then the answer if that succeeds.
pub enum Answer<T> {
    Now(Option<T>),
    /// Boxed: a preparation carries the module's whole view.
    AfterPreparing(Box<Preparation>, T),
}

impl<T> Answer<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Now(v) => Answer::Now(v.map(f)),
            Answer::AfterPreparing(p, v) => Answer::AfterPreparing(p, f(v)),
        }
    }
}

/// A module claimed for its first fix-up (state `Preparing` until
/// [`Served::finish`]), with what relocating it needs without the state.
pub struct Preparation {
    /// The mapping (never unmapped once it serves, see the module doc).
    base: *mut u8,
    len: usize,
    symbols: Arc<SymbolTable>,
    pool: Arc<Pool>,
    name: String,
    serves: bool,
    module: ShapeChecked,
    /// Its pages were already copied for writing ([`Served::claim_all`]).
    populated: bool,
}

impl Preparation {
    /// Relocates the module. Call with the state unlocked and the GIL held:
    /// the fix-ups allocate, which may run Python.
    pub fn relocate(&self) -> Result<(), String> {
        let mut fixups = RuntimeFixups { symbols: &self.symbols, pool: &self.pool, sets: HashMap::new() };
        let view = self.module.view();
        if !image::fixed() && !self.populated {
            // Every object's type slot names a type of the moved image.
            for objects in [&view.hot, &view.cold] {
                mapping::populate_for_writing(self.base as usize + objects.start..self.base as usize + objects.end);
            }
        }
        // Listed pool entries first: frozenset building and code set-up
        // (among the records below) read strs whose slots name them, and
        // interning gives an entry its type where the image moved.
        if let Some(listed) = self.module.listed_names() {
            self.intern_listed(listed)?;
        }
        if self.module.image_symbols() {
            // SAFETY: as below; resolving a symbol reads no archive byte.
            unsafe {
                let statics = read_image_symbols_at(self.base, self.len, view, |id| self.symbols.resolve(id))
                    .map_err(|e| e.to_string())?;
                statics.write_at(self.base, self.len, view);
            }
        }
        // SAFETY: base..base+len is the serving mapping, never unmapped
        // (Served is leaked, not dropped, once it serves); the module is
        // `Preparing` from its claim to `finish`, so no other caller reads
        // or writes its bytes meanwhile, and it passed `verify` and the shape
        // check (a `ShapeChecked`): every slot written is a pointer field.
        unsafe { apply_read_relocations_at(self.base, self.len, view, self.module.relocations(), &mut fixups) }
            .map_err(|e| e.to_string())
    }

    /// Pooled names: each entry interned once, not each slot. Slots were
    /// pre-written with their entry's address, or the static str equal to
    /// it (the stamp checked them): right wherever interning kept the entry
    /// or gave that static.
    fn intern_listed(&self, listed: &ListedNames) -> Result<(), String> {
        let base = self.base as usize;
        // (entry, the str it stands for) where that is another str, in
        // the list's order: ascending by entry.
        let mut others: Vec<(u32, usize)> = Vec::new();
        for &entry in &listed.entries {
            // SAFETY: a pool entry of a module the stamp vouched for (its
            // shape was checked when stamped); GIL held.
            let interned = unsafe { self.pool.intern(base + entry as usize) }?;
            // A static str (3.13 `_Py_ID`, 3.11's deep-frozen names) is
            // where the dump pre-wrote the slots, when the stamp checked
            // that for this image; else the slots hold the entry.
            // SAFETY: a live str the interpreter interned; GIL held.
            let prewritten_static =
                listed.statics_prewritten && unsafe { version::static_str_address(interned as *mut _) }.is_some();
            if interned != base + entry as usize && !prewritten_static {
                others.push((entry, interned));
            }
        }
        if others.is_empty() {
            return Ok(());
        }
        // Another str was interned first for some names: the slots naming
        // them are switched to it, each slot counting its reference, and
        // the list's own references are let go.
        // The rewrite asks of each listed entry in the list's order, which
        // is `others`'s: the next of `others` is the only one to look for.
        let mut pending = others.iter().map(|&(entry, _)| entry).peekable();
        let moved = |entry| pending.next_if_eq(&entry).is_some();
        // SAFETY: an entry interned above, so known: this only counts the
        // slots' references to the str it stands for; GIL held.
        let interned = |entry: u32, slots| unsafe { self.pool.interned_again(base + entry as usize, slots) } as u64;
        // SAFETY: as in `relocate`; the records are the module's own, read now.
        let fixed = unsafe { rewrite_pooled_names_at(self.base, self.len, self.module.view(), moved, interned) };
        for (_, interned) in others {
            // SAFETY: one reference `Pool::intern` handed out above; GIL held.
            unsafe { ffi::Py_DECREF(interned as *mut ffi::PyObject) };
        }
        fixed.map_err(|e| e.to_string())
    }
}

/// The interpreter side of relocation.
struct RuntimeFixups<'a> {
    symbols: &'a SymbolTable,
    pool: &'a Pool,
    /// Frozensets built during this module's fix-up, by tuple, so one
    /// archived constant stays one object.
    sets: HashMap<usize, usize>,
}

impl Fixups for RuntimeFixups<'_> {
    fn symbol(&mut self, id: u32) -> Option<usize> {
        self.symbols.resolve(id)
    }

    unsafe fn intern(&mut self, string: usize) -> Result<usize, String> {
        if self.pool.contains(string) {
            // SAFETY: a target in the pool passed the shape check as a str
            // entry (`shapes::PoolShapes`); GIL held.
            return unsafe { self.pool.intern(string) };
        }
        // SAFETY: `string` is a relocated archived object (trait contract),
        // checked to be a str; InternInPlace may swap our reference for one
        // to the already interned equal str. GIL held.
        unsafe {
            let mut s = string as *mut ffi::PyObject;
            if ffi::PyUnicode_CheckExact(s) == 0 {
                return Err("interned slot does not hold a str".into());
            }
            ffi::PyUnicode_InternInPlace(&mut s);
            Ok(s as usize)
        }
    }

    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String> {
        if let Some(set) = self.sets.get(&tuple) {
            return Ok(*set);
        }
        // SAFETY: `tuple` is a relocated archived object (trait contract); we
        // check it is a tuple before building from it. GIL held. The new set's
        // reference is owned by the archived slot from now on.
        unsafe {
            let op = tuple as *mut ffi::PyObject;
            if ffi::PyTuple_CheckExact(op) == 0 {
                return Err("frozenset relocation does not point at a tuple".into());
            }
            let set = ffi::PyFrozenSet_New(op);
            if set.is_null() {
                ffi::PyErr_Clear();
                return Err("cannot build a frozenset constant".into());
            }
            self.sets.insert(tuple, set as usize);
            Ok(set as usize)
        }
    }
}

impl Drop for Served {
    /// Unmapping follows (`Mapping`): the interning hook must not read it.
    fn drop(&mut self) {
        pooled_names::withdraw(self.map.as_ptr() as usize);
    }
}
