//! Byte layout of the archive: one table of constants and field offsets.
//!
//! All integers are little-endian. Offsets are file offsets (u32: an archive
//! is limited to 4 GiB). See docs/FORMAT.md.

use std::ops::Range;

/// First bytes of every archive. The `\r\n` and NUL catch text-mode mangling,
/// as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"PyCDS\0\r\n";
/// Bumped whenever any layout below changes; readers accept exactly this.
pub const FORMAT_VERSION: u32 = 10;

/// Objects start on this boundary (pymalloc's alignment; tuples' GC header is 16 bytes).
pub const OBJECT_ALIGN: usize = 16;
/// Object regions start on page boundaries, so the objects the interpreter
/// writes (hot) and those it mostly reads (cold) never share a page.
pub const PAGE: usize = 4096;

/// Size of the fixed header.
pub const HEADER_SIZE: usize = 160;
pub mod header {
    //! Field offsets inside the header.
    pub const MAGIC: usize = 0; // [u8; 8]
    pub const FORMAT_VERSION: usize = 8; // u32
    pub const HEADER_SIZE: usize = 12; // u32
    pub const PYTHON_HEXVERSION: usize = 16; // u32
    pub const FLAGS: usize = 20; // u32, zero in version 1
    pub const BUILD_ID: usize = 24; // [u8; 16]
    pub const FILE_SIZE: usize = 40; // u64
    pub const TABLE_CHECKSUM: usize = 48; // u64, xxh3 of module table + strings
    pub const MODULE_COUNT: usize = 56; // u32
    pub const MODULE_TABLE: usize = 60; // u32 offset
    pub const STRINGS: usize = 64; // u32 offset
    pub const STRINGS_SIZE: usize = 68; // u32
    pub const RELOCS: usize = 72; // u32 offset
    pub const RELOCS_SIZE: usize = 76; // u32 bytes of encoded records (`reloc_codec`)
    pub const HOT: usize = 80; // u32 offset
    pub const HOT_SIZE: usize = 84; // u32
    pub const COLD: usize = 88; // u32 offset
    pub const COLD_SIZE: usize = 92; // u32
    pub const HEADER_CHECKSUM: usize = 96; // u64, see `header_checksum`
    /// u64: the address the dump laid pointers out for (0: none).
    pub const PREFERRED_BASE: usize = 104;
    /// u32: `sys.flags.optimize` of the dumping interpreter.
    pub const OPTIMIZE: usize = 112;
    /// u32: other compile settings, `COMPILE_*` bits.
    pub const COMPILE_FLAGS: usize = 116;
    /// u32 offset of the name pool (page-aligned; see `Region::Names`).
    pub const NAMES: usize = 120;
    /// u32
    pub const NAMES_SIZE: usize = 124;
    /// u64, xxh3 of the name pool, checked once per process before its first use.
    pub const NAMES_CHECKSUM: usize = 128;
    /// u32: how many code serials the archive hands out, from `CODE_SERIAL_BASE`.
    pub const CODE_SERIALS: usize = 136;
    /// u32: the first code serial (its layer's `Layer::first_code_serial`).
    pub const CODE_SERIAL_START: usize = 140;
    /// u32: the pool's first bytes that hold the names the interpreter
    /// interns during its own start-up, which a process interns first
    /// (entry-aligned, at most `NAMES_SIZE`; docs/DESIGN.md, "Start-up names").
    pub const NAMES_STARTUP_SIZE: usize = 144;
    /// u32 offset of the name pool's index (`names_index`): after the
    /// strings, before the pool, 8-aligned.
    pub const NAMES_INDEX: usize = 148;
    /// u32: the index's slot count (`names_index::SLOT_SIZE` bytes each).
    pub const NAMES_INDEX_SLOTS: usize = 152;
    /// u32, zero.
    pub const RESERVED: usize = 156;
}

/// The lowest code serial: each archived code object may carry one, unique
/// in the archive ([`header::CODE_SERIALS`] of them from
/// [`header::CODE_SERIAL_START`]). CPython 3.13 stores it as the code
/// object's `co_version`; its interpreter never hands out versions in
/// `[CODE_SERIAL_BASE, end of the last serving archive's)` (patch
/// `0007-codeobject-cds-reserved-versions`).
pub const CODE_SERIAL_BASE: u32 = 0x8000_0000;
/// At most this many serials per archive: each layer's range fits below the next's.
pub const MAX_CODE_SERIALS: u32 = 0x4000_0000;

/// Which of the two archives a process may serve from at once an archive is
/// laid out as (docs/DESIGN.md, "Layers"): both can sit at their preferred
/// base and carry their code serials side by side, since the two never
/// share an address or a serial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layer {
    /// The default stdlib archive, or an archive meant to serve alone.
    #[default]
    Base,
    /// An application archive dumped over the default one: it holds only
    /// what the default lacks, and is looked up first.
    Application,
}

impl Layer {
    /// Where a dump lays the archive's pointers out. 32 TiB, far below where
    /// Linux puts PIE binaries (0x55…) and mmap/stack (0x7f…) on x86-64 and
    /// aarch64 (48-bit); an application layer 8 TiB above.
    pub const fn preferred_base(self) -> u64 {
        match self {
            Layer::Base => 0x2000_0000_0000,
            Layer::Application => 0x2800_0000_0000,
        }
    }

    /// The archive's first code serial.
    pub const fn first_code_serial(self) -> u32 {
        match self {
            Layer::Base => CODE_SERIAL_BASE,
            Layer::Application => CODE_SERIAL_BASE + MAX_CODE_SERIALS,
        }
    }

    /// The layer an archive whose serials start at `first` was dumped as.
    pub fn of_first_code_serial(first: u32) -> Option<Layer> {
        [Layer::Base, Layer::Application].into_iter().find(|l| l.first_code_serial() == first)
    }
}

/// The symbol ids of the types archived objects have: the target of the
/// `Symbol` record at each object's `ob_type` slot, with the type's name
/// (`python -m cds info` counts objects by them). Part of the format: never
/// renumber, only add.
pub const OBJECT_TYPES: [(u32, &str); 7] =
    [(16, "code"), (17, "tuple"), (18, "str"), (19, "bytes"), (20, "int"), (21, "float"), (22, "complex")];

/// Header `compile_flags` bit: dumped under `-X no_debug_ranges`.
pub const COMPILE_NO_DEBUG_RANGES: u32 = 1;

/// Size of one module table entry.
pub const MODULE_ENTRY_SIZE: usize = 120;
pub mod entry {
    //! Field offsets inside a module table entry.
    pub const NAME: usize = 0; // u32 offset into strings
    pub const NAME_LEN: usize = 4; // u32
    pub const ORIGIN: usize = 8; // u32 offset into strings
    pub const ORIGIN_LEN: usize = 12; // u32
    pub const FLAGS: usize = 16; // u32, MODULE_IS_PACKAGE
    pub const CODE: usize = 20; // u32 file offset of the module's code object
    pub const SOURCE_MTIME_NS: usize = 24; // i64
    pub const SOURCE_SIZE: usize = 32; // u64
    pub const HOT_START: usize = 40; // u32
    pub const HOT_END: usize = 44; // u32
    pub const COLD_START: usize = 48; // u32
    pub const COLD_END: usize = 52; // u32
    pub const RELOC_START: usize = 56; // u32 byte offset of its records inside the reloc table
    pub const RELOC_SIZE: usize = 60; // u32 bytes of its records
    pub const CHECKSUM: usize = 64; // u64 over hot range, cold range, relocs
    pub const SOURCE_HASH: usize = 72; // u64 xxh3 of the source bytes (0 for frozen)
    pub const SOURCE_DEV: usize = 80; // u64 st_dev of the source at dump time
    pub const SOURCE_INO: usize = 88; // u64 st_ino of the source at dump time
    pub const SOURCE_REALPATH: usize = 96; // u32 offset into strings: the origin with symlinks resolved
    pub const SOURCE_REALPATH_LEN: usize = 100; // u32
    /// u32: bytes of its records, from `RELOC_START`, that form the first
    /// of its record streams: the records that need work in every
    /// process ([`RelocKind::needs_work`](super::RelocKind::needs_work)).
    pub const RELOC_WORK_SIZE: usize = 104;
    /// u32: bytes after the first stream that form its names region: its
    /// pooled-name records grouped by the name pool entry they name
    /// (`reloc_codec::encode_names_region`).
    pub const RELOC_NAMES_SIZE: usize = 108;
    /// u32: bytes after the names region that form its image stream: the
    /// Symbol records naming statics of the interpreter's image, grouped by
    /// symbol id (`reloc_codec::encode_image_stream`), which a process
    /// writes wherever that image lies elsewhere than the dump's.
    /// The rest of `RELOC_SIZE` is its last stream: the records pointing
    /// into the archive.
    pub const RELOC_IMAGE_SIZE: usize = 112;
    /// u32, zero.
    pub const RESERVED: usize = 116;
}
pub const MODULE_IS_PACKAGE: u32 = 1;
/// Origin of modules whose code comes from the interpreter's frozen modules
/// (3.13+ unmarshals them at every start). They have no source to check: the
/// build id already ties the archive to the binary that holds them.
pub const FROZEN_ORIGIN: &str = "<frozen>";

/// What a relocation writes into its pointer-sized slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RelocKind {
    /// Address of an archived object: mapping base + target.
    Object = 1,
    /// As `Object`, then the slot is interned (the string was interned at
    /// dump). The target is a str of the module or of the archive's name pool.
    InternedStr = 2,
    /// A runtime object (type, singleton) named by symbol id `target`.
    Symbol = 3,
    /// A frozenset built at load from the archived tuple at `target`: set
    /// layout depends on the per-process hash secret, so it is never archived.
    FrozenSet = 4,
    /// Not a pointer: `slot` is the start of a code object that receives its
    /// per-process state (e.g. 3.13's `co_version`) once relocated.
    CodeInit = 5,
    /// A pointer into an archived object's own body (3.11: a 4-byte-kind
    /// str's `wstr` is its character data): mapping base + target, where
    /// target lies inside the module but need not be an object start.
    Interior = 6,
}

impl RelocKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Object,
            2 => Self::InternedStr,
            3 => Self::Symbol,
            4 => Self::FrozenSet,
            5 => Self::CodeInit,
            6 => Self::Interior,
            _ => return None,
        })
    }
    /// Whether `target` is a file offset of an archived object.
    pub fn targets_object(self) -> bool {
        matches!(self, Self::Object | Self::InternedStr | Self::FrozenSet)
    }

    /// Whether a record of this kind naming `target` needs work in every
    /// process, wherever the archive is mapped: interning a str outside
    /// the name pool `names`, a frozenset, a code object's state, and a
    /// runtime object that `is_static` does not place in the interpreter's
    /// image (which moves only with it). These records form a module's
    /// first record stream ([`entry::RELOC_WORK_SIZE`]). A pooled name is
    /// interned in every process too, but once per entry, not per slot: the
    /// module lists its entries ([`entry::RELOC_NAMES_SIZE`]), and its slots
    /// need rewriting only where interning found another str.
    pub fn needs_work(self, target: u32, is_static: impl Fn(u32) -> bool, names: &Range<usize>) -> bool {
        match self {
            Self::InternedStr => !names.contains(&(target as usize)),
            Self::FrozenSet | Self::CodeInit => true,
            Self::Symbol => !is_static(target),
            Self::Object | Self::Interior => false,
        }
    }
}

/// What relocation makes a record's slot hold, for the archive mapped at
/// `base`: the one table of what each kind writes, read by the builder (the
/// slots it pre-writes for the preferred base), the applier
/// (`reloc::apply_read_relocations_at`) and the fuzz oracle (testkit's
/// `contract`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotValue {
    /// This address.
    Address(u64),
    /// The address of runtime object `id` (a symbol) in the process.
    Symbol(u32),
    /// The interned str for the archived str at this address (that str,
    /// unless an equal one was interned first), once it is relocated.
    Interned(u64),
    /// A frozenset built from the relocated archived tuple at this address.
    FrozenSetOf(u64),
    /// Not a slot: the code object starting at the record's slot receives
    /// its per-process state.
    CodeState,
}

impl RelocKind {
    /// What a record of this kind with `target` makes its slot hold.
    pub fn slot_value(self, target: u32, base: u64) -> SlotValue {
        let at = base + u64::from(target);
        match self {
            Self::Object | Self::Interior => SlotValue::Address(at),
            Self::Symbol => SlotValue::Symbol(target),
            Self::InternedStr => SlotValue::Interned(at),
            Self::FrozenSet => SlotValue::FrozenSetOf(at),
            Self::CodeInit => SlotValue::CodeState,
        }
    }
}

/// One relocation record, as `reloc_codec` encodes and decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloc {
    pub slot: u32,
    pub target: u32,
    pub kind: RelocKind,
}

pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The header checksum: xxh3-64 of the header without its own field
/// (bytes [0, 96) and [104, 152)).
pub fn header_checksum(bytes: &[u8]) -> u64 {
    checksum(&[&bytes[..header::HEADER_CHECKSUM], &bytes[header::HEADER_CHECKSUM + 8..HEADER_SIZE]])
}

/// xxh3-64, the checksum of every checked span.
pub fn checksum(parts: &[&[u8]]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p);
    }
    h.digest()
}

pub(crate) fn align_up(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}
