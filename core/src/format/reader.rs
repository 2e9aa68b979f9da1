//! Validation of untrusted archive bytes.
//!
//! [`Archive::parse`] checks the header and the module table as a whole;
//! [`Archive::module`] checks one table entry before handing out a
//! [`ModuleView`]; [`ModuleView::verify`] checks the module's checksum. Only
//! then are relocations applied (see `reloc.rs`, which checks each record).
//! Nothing here follows a pointer: every access is a bounds-checked slice.

use super::compile::CompileSettings;
use super::layout::*;
use super::names_index::{self, NamesIndex};
use std::fmt;
use std::ops::Range;

/// What the running interpreter requires of an archive.
#[derive(Clone, Copy, Debug)]
pub struct Expectations {
    pub python_hexversion: u32,
    pub build_id: [u8; 16],
}

/// Why bytes were refused. Each message fits in one line after "cds: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    Truncated { need: u64, have: u64 },
    NotAnArchive,
    FormatVersion { found: u32 },
    HeaderChecksum,
    ForeignPython { found: u32, expected: u32 },
    ForeignBuild,
    SizeMismatch { header: u64, file: u64 },
    BadLayout(&'static str),
    TableChecksum,
    NamesChecksum,
    BadEntry { index: usize, why: &'static str },
    ModuleChecksum { module: String },
}

fn hexversion(v: u32) -> String {
    format!("{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff)
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => write!(f, "file is truncated ({have} bytes, need {need})"),
            Self::NotAnArchive => write!(f, "not a cds archive (bad magic)"),
            Self::FormatVersion { found } => {
                write!(f, "archive format version {found}, this interpreter reads version {FORMAT_VERSION}")
            }
            Self::HeaderChecksum => write!(f, "header checksum mismatch (corrupt archive)"),
            Self::ForeignPython { found, expected } => {
                write!(f, "archive was made by Python {}, this is Python {}", hexversion(*found), hexversion(*expected))
            }
            Self::ForeignBuild => write!(f, "archive was made by another build of this interpreter"),
            Self::SizeMismatch { header, file } => {
                write!(f, "file size {file} differs from recorded size {header} (truncated or appended to)")
            }
            Self::BadLayout(why) => write!(f, "corrupt archive layout: {why}"),
            Self::TableChecksum => write!(f, "module table checksum mismatch (corrupt archive)"),
            Self::NamesChecksum => write!(f, "name pool checksum mismatch (corrupt archive)"),
            Self::BadEntry { index, why } => write!(f, "corrupt module table entry {index}: {why}"),
            Self::ModuleChecksum { module } => write!(f, "checksum mismatch in module {module} (corrupt archive)"),
        }
    }
}
impl std::error::Error for FormatError {}

/// The validated header of an archive.
#[derive(Clone, Debug)]
pub struct Archive {
    module_count: usize,
    table: usize,
    strings: Range<usize>,
    relocs: Range<usize>,
    hot: Range<usize>,
    cold: Range<usize>,
    names: Range<usize>,
    names_checksum: u64,
    /// The pool's leading entries: the names the interpreter interns at start-up.
    startup_names: Range<usize>,
    /// The pool's index (`names_index`): whole slots between the strings and the pool.
    names_index: Range<usize>,
    code_serials: Range<u32>,
    len: usize,
    compile: CompileSettings,
}

/// One validated module table entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleView {
    pub index: usize,
    name: Range<usize>,
    origin: Range<usize>,
    pub is_package: bool,
    /// File offset of the module's code object.
    pub code: usize,
    pub source_mtime_ns: i64,
    pub source_size: u64,
    pub source_hash: u64,
    pub source_dev: u64,
    pub source_ino: u64,
    source_realpath: Range<usize>,
    pub hot: Range<usize>,
    pub cold: Range<usize>,
    /// The archive's name pool, which `InternedStr` records may target.
    pub names: Range<usize>,
    /// Byte range of the module's relocation records: the records that
    /// need work in every process first (`relocs_work`), then its names
    /// region (`relocs_names`: the list of pool entries its pooled-name
    /// records name, then those records), then the records naming statics
    /// of the interpreter's image (`relocs_image`), then the records
    /// pointing into the archive (`relocs_internal`).
    pub relocs: Range<usize>,
    /// The first stream: a prefix of `relocs`.
    pub relocs_work: Range<usize>,
    /// The names region, right after the first stream.
    pub relocs_names: Range<usize>,
    /// The image stream, right after the names region; the rest of
    /// `relocs` is the last stream ([`ModuleView::relocs_internal`]).
    pub relocs_image: Range<usize>,
    checksum: u64,
}

impl Archive {
    /// Validates the header and the module table of `bytes`.
    pub fn parse(bytes: &[u8], expect: &Expectations) -> Result<Self, FormatError> {
        let have = bytes.len() as u64;
        if bytes.len() < HEADER_SIZE {
            if bytes.len() < 8 || bytes[..8] != MAGIC {
                return Err(FormatError::NotAnArchive);
            }
            return Err(FormatError::Truncated { need: HEADER_SIZE as u64, have });
        }
        if bytes[header::MAGIC..header::MAGIC + 8] != MAGIC {
            return Err(FormatError::NotAnArchive);
        }
        let version = get_u32(bytes, header::FORMAT_VERSION);
        if version != FORMAT_VERSION {
            return Err(FormatError::FormatVersion { found: version });
        }
        if header_checksum(bytes) != get_u64(bytes, header::HEADER_CHECKSUM) {
            return Err(FormatError::HeaderChecksum);
        }
        if get_u32(bytes, header::HEADER_SIZE) as usize != HEADER_SIZE
            || get_u32(bytes, header::FLAGS) != 0
            || get_u32(bytes, header::RESERVED) != 0
        {
            return Err(FormatError::BadLayout("unknown header size or flags"));
        }
        let compile =
            CompileSettings::from_fields(get_u32(bytes, header::OPTIMIZE), get_u32(bytes, header::COMPILE_FLAGS))
                .ok_or(FormatError::BadLayout("unknown compile flags"))?;
        let found = get_u32(bytes, header::PYTHON_HEXVERSION);
        // The release level and serial do not change object layouts.
        if found & 0xffff_ff00 != expect.python_hexversion & 0xffff_ff00 {
            return Err(FormatError::ForeignPython { found, expected: expect.python_hexversion });
        }
        if bytes[header::BUILD_ID..header::BUILD_ID + 16] != expect.build_id {
            return Err(FormatError::ForeignBuild);
        }
        let code_serials = get_u32(bytes, header::CODE_SERIALS);
        if code_serials > MAX_CODE_SERIALS {
            return Err(FormatError::BadLayout("too many code serials"));
        }
        let code_serial_start = get_u32(bytes, header::CODE_SERIAL_START);
        if code_serial_start < CODE_SERIAL_BASE || code_serial_start.checked_add(code_serials).is_none() {
            return Err(FormatError::BadLayout("code serials outside their range"));
        }
        let file_size = get_u64(bytes, header::FILE_SIZE);
        if file_size > have {
            return Err(FormatError::Truncated { need: file_size, have });
        }
        if file_size != have {
            return Err(FormatError::SizeMismatch { header: file_size, file: have });
        }

        let field = |at| get_u32(bytes, at) as usize;
        let module_count = field(header::MODULE_COUNT);
        let table = field(header::MODULE_TABLE);
        let strings_start = field(header::STRINGS);
        let strings_end = strings_start + field(header::STRINGS_SIZE);
        let relocs = field(header::RELOCS)..field(header::RELOCS) + field(header::RELOCS_SIZE);
        let hot = field(header::HOT)..field(header::HOT) + field(header::HOT_SIZE);
        let cold = field(header::COLD)..field(header::COLD) + field(header::COLD_SIZE);
        let names = field(header::NAMES)..field(header::NAMES) + field(header::NAMES_SIZE);
        // Sections follow each other in this order; u32 fields summed in usize cannot overflow on 64-bit.
        let table_end = module_count
            .checked_mul(MODULE_ENTRY_SIZE)
            .and_then(|n| n.checked_add(table))
            .ok_or(FormatError::BadLayout("module table size overflows"))?;
        let ordered = table == HEADER_SIZE
            && strings_start == table_end
            && strings_end <= names.start
            && names.start % PAGE == 0
            && names.end <= hot.start
            && hot.start % PAGE == 0
            && hot.end <= cold.start
            && cold.start % PAGE == 0
            && cold.end == relocs.start
            && relocs.end == bytes.len();
        if !ordered {
            return Err(FormatError::BadLayout("sections out of bounds or out of order"));
        }
        let startup_names = field(header::NAMES_STARTUP_SIZE);
        if startup_names > names.len() || !startup_names.is_multiple_of(OBJECT_ALIGN) {
            return Err(FormatError::BadLayout("start-up names outside the name pool"));
        }
        let index_start = field(header::NAMES_INDEX);
        let names_index = field(header::NAMES_INDEX_SLOTS)
            .checked_mul(names_index::SLOT_SIZE)
            .map(|size| index_start..index_start + size)
            .filter(|index| {
                index.start >= strings_end && index.end <= names.start && index.start % names_index::SLOT_SIZE == 0
            })
            .ok_or(FormatError::BadLayout("name pool index outside its section"))?;
        if checksum(&[&bytes[table..strings_end]]) != get_u64(bytes, header::TABLE_CHECKSUM) {
            return Err(FormatError::TableChecksum);
        }
        Ok(Self {
            module_count,
            table,
            strings: strings_start..strings_end,
            relocs,
            hot,
            cold,
            startup_names: names.start..names.start + startup_names,
            names_index,
            names,
            names_checksum: get_u64(bytes, header::NAMES_CHECKSUM),
            code_serials: code_serial_start..code_serial_start + code_serials,
            len: bytes.len(),
            compile,
        })
    }

    /// The compile settings of the interpreter that dumped the archive.
    pub fn compile_settings(&self) -> CompileSettings {
        self.compile
    }

    pub fn module_count(&self) -> usize {
        self.module_count
    }

    /// The code serials the archive's code objects may carry.
    pub fn code_serials(&self) -> Range<u32> {
        self.code_serials.clone()
    }

    /// The name pool's byte range.
    pub fn names(&self) -> Range<usize> {
        self.names.clone()
    }

    /// The byte range of the pool's start-up names (`header::NAMES_STARTUP_SIZE`):
    /// entries back to back from the pool's start, to intern before the
    /// interpreter interns its own names.
    pub fn startup_names(&self) -> Range<usize> {
        self.startup_names.clone()
    }

    /// The pool's index, to ask which entry holds a name (its answers are
    /// hints: see `names_index`).
    pub fn names_index<'a>(&self, bytes: &'a [u8]) -> NamesIndex<'a> {
        NamesIndex::new(bytes, self.names_index.clone())
    }

    /// Checks the name pool against its checksum: once, before the first
    /// module whose records point into it is relocated.
    pub fn verify_names(&self, bytes: &[u8]) -> Result<(), FormatError> {
        if checksum(&[&bytes[self.names.clone()]]) != self.names_checksum {
            return Err(FormatError::NamesChecksum);
        }
        Ok(())
    }

    /// Reads the preferred base of unvalidated bytes, to choose where to map
    /// them before validation (a hint: any value is harmless).
    pub fn peek_preferred_base(bytes: &[u8]) -> u64 {
        if bytes.len() >= HEADER_SIZE {
            get_u64(bytes, header::PREFERRED_BASE)
        } else {
            0
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.module_count == 0
    }

    fn entry<'a>(&self, bytes: &'a [u8], index: usize) -> &'a [u8] {
        let at = self.table + index * MODULE_ENTRY_SIZE;
        &bytes[at..at + MODULE_ENTRY_SIZE]
    }

    fn string_range(&self, e: &[u8], off: usize, len: usize) -> Option<Range<usize>> {
        let (off, len) = (get_u32(e, off) as usize, get_u32(e, len) as usize);
        let start = self.strings.start + off;
        (off + len <= self.strings.len()).then_some(start..start + len)
    }

    /// Finds a module by name (the table is sorted by name bytes).
    pub fn find(&self, bytes: &[u8], name: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.module_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.entry(bytes, mid);
            let probe = &bytes[self.string_range(e, entry::NAME, entry::NAME_LEN)?];
            match probe.cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Validates table entry `index` (bounds of every offset it holds).
    pub fn module(&self, bytes: &[u8], index: usize) -> Result<ModuleView, FormatError> {
        if index >= self.module_count {
            return Err(FormatError::BadEntry { index, why: "no such entry" });
        }
        let bad = |why| FormatError::BadEntry { index, why };
        let e = self.entry(bytes, index);
        let name = self.string_range(e, entry::NAME, entry::NAME_LEN).ok_or(bad("name out of bounds"))?;
        let origin = self.string_range(e, entry::ORIGIN, entry::ORIGIN_LEN).ok_or(bad("origin out of bounds"))?;
        let realpath = self
            .string_range(e, entry::SOURCE_REALPATH, entry::SOURCE_REALPATH_LEN)
            .ok_or(bad("source realpath out of bounds"))?;
        if [&name, &origin, &realpath].iter().any(|r| std::str::from_utf8(&bytes[(*r).clone()]).is_err()) {
            return Err(bad("name, origin or realpath is not UTF-8"));
        }
        let flags = get_u32(e, entry::FLAGS);
        if flags & !MODULE_IS_PACKAGE != 0 {
            return Err(bad("unknown flags"));
        }
        let span = |s, t| get_u32(e, s) as usize..get_u32(e, t) as usize;
        let hot = span(entry::HOT_START, entry::HOT_END);
        let cold = span(entry::COLD_START, entry::COLD_END);
        let inside = |r: &Range<usize>, region: &Range<usize>| {
            r.start <= r.end && region.start <= r.start && r.end <= region.end && r.start.is_multiple_of(OBJECT_ALIGN)
        };
        if !inside(&hot, &self.hot) || !inside(&cold, &self.cold) {
            return Err(bad("object span out of bounds"));
        }
        let code = get_u32(e, entry::CODE) as usize;
        if !hot.contains(&code) || !code.is_multiple_of(OBJECT_ALIGN) {
            return Err(bad("code object offset out of bounds"));
        }
        let first = get_u32(e, entry::RELOC_START) as usize;
        let size = get_u32(e, entry::RELOC_SIZE) as usize;
        let work = get_u32(e, entry::RELOC_WORK_SIZE) as usize;
        let listed = get_u32(e, entry::RELOC_NAMES_SIZE) as usize;
        let image = get_u32(e, entry::RELOC_IMAGE_SIZE) as usize;
        if first + size > self.relocs.len() || work + listed + image > size {
            return Err(bad("relocations out of bounds"));
        }
        if get_u32(e, entry::RESERVED) != 0 {
            return Err(bad("reserved field is not zero"));
        }
        let relocs = self.relocs.start + first..self.relocs.start + first + size;
        let relocs_work = relocs.start..relocs.start + work;
        let relocs_names = relocs_work.end..relocs_work.end + listed;
        let relocs_image = relocs_names.end..relocs_names.end + image;
        Ok(ModuleView {
            index,
            name,
            origin,
            is_package: flags & MODULE_IS_PACKAGE != 0,
            code,
            source_mtime_ns: get_u64(e, entry::SOURCE_MTIME_NS) as i64,
            source_size: get_u64(e, entry::SOURCE_SIZE),
            source_hash: get_u64(e, entry::SOURCE_HASH),
            source_dev: get_u64(e, entry::SOURCE_DEV),
            source_ino: get_u64(e, entry::SOURCE_INO),
            source_realpath: realpath,
            hot,
            cold,
            names: self.names.clone(),
            relocs,
            relocs_work,
            relocs_names,
            relocs_image,
            checksum: get_u64(e, entry::CHECKSUM),
        })
    }
}

impl ModuleView {
    /// The last record stream: the records pointing into the archive, the
    /// rest of `relocs` after the image stream.
    pub fn relocs_internal(&self) -> Range<usize> {
        self.relocs_image.end..self.relocs.end
    }

    pub fn name<'a>(&self, bytes: &'a [u8]) -> &'a str {
        // Checked to be UTF-8 in `Archive::module`.
        std::str::from_utf8(&bytes[self.name.clone()]).unwrap_or("")
    }

    pub fn origin<'a>(&self, bytes: &'a [u8]) -> &'a str {
        std::str::from_utf8(&bytes[self.origin.clone()]).unwrap_or("")
    }

    /// The origin with symlinks resolved, at the dump ("" when unknown).
    pub fn source_realpath<'a>(&self, bytes: &'a [u8]) -> &'a str {
        std::str::from_utf8(&bytes[self.source_realpath.clone()]).unwrap_or("")
    }

    /// Whether this is a frozen module's code (origin `<frozen>`).
    pub fn is_frozen(&self, bytes: &[u8]) -> bool {
        self.origin(bytes) == FROZEN_ORIGIN
    }

    /// Checks the module's objects and relocations against its checksum.
    /// Must run before the module is relocated (relocation rewrites the bytes).
    pub fn verify(&self, bytes: &[u8]) -> Result<(), FormatError> {
        let sum = checksum(&[&bytes[self.hot.clone()], &bytes[self.cold.clone()], &bytes[self.relocs.clone()]]);
        if sum != self.checksum {
            return Err(FormatError::ModuleChecksum { module: self.name(bytes).to_owned() });
        }
        Ok(())
    }

    /// Whether `[at, at + len)` lies inside the archive's name pool.
    pub fn in_names(&self, at: usize, len: usize) -> bool {
        self.names.start <= at && at.saturating_add(len) <= self.names.end
    }

    /// Whether `[at, at + len)` lies inside this module's objects.
    pub fn owns(&self, at: usize, len: usize) -> bool {
        let end = at.saturating_add(len);
        (self.hot.start <= at && end <= self.hot.end) || (self.cold.start <= at && end <= self.cold.end)
    }
}
