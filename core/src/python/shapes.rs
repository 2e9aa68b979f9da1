//! The shape check: what a module's archived bytes must look like before
//! the interpreter may follow a pointer into them.
//!
//! The checksum catches accidents, not edits: anyone who can write the file
//! can recompute it (docs/DESIGN.md, trust model). So before relocation,
//! every object of a module is walked as CPython will read it, and the
//! module is refused unless
//! - its spans hold nothing but objects of the archivable kinds, back to
//!   back (tuples behind a zeroed GC header), each wholly inside its span:
//!   a str, bytes, tuple, int or code object whose length field claims more
//!   than the span holds is refused, so `len()` never lies and nothing reads
//!   past the object;
//! - every pointer field of every object has a relocation record, and every
//!   record writes a pointer field (no record rewrites a length or a flag);
//!   pointer fields the archive leaves empty (caches, weakref lists) are NULL;
//! - every record points at an object start of the module of the kind the
//!   field requires (a code object's `co_consts` is a tuple, its names are
//!   tuples of str, ...), or names a runtime symbol of that kind;
//! - counts CPython trusts without checking agree (a code object's
//!   `co_nlocalsplus` is the length of its local names and kinds).
//!
//! Bytecode and the other integer fields of code objects (stack size, flags)
//! are trusted, as CPython trusts them in a `.pyc`: marshal does not verify
//! bytecode either, so a crafted archive can do what a crafted `.pyc` can.

use super::objects::{bytes_size, get, tuple_item_offset, tuple_size, GC_HEAD, OB_TYPE};
use super::stamp::Vouched;
use super::symbols;
use super::sys;
use super::version;
use crate::format::layout::align_up;
use crate::format::reloc::read_relocations;
use crate::format::{ModuleView, Reloc, RelocKind, Relocations, OBJECT_ALIGN};
use std::mem::{offset_of, size_of};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an archived object (or a runtime symbol) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Code,
    Tuple {
        len: u32,
    },
    Str,
    Bytes {
        len: u32,
    },
    Int,
    Float,
    Complex,
    /// A frozenset rebuilt at load, or a runtime singleton such as `None`.
    Other,
}

/// What a pointer field must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Any archived object or runtime singleton (a tuple item).
    Any,
    Tuple,
    /// A tuple whose items are all str (a code object's names).
    TupleOfStr,
    Str,
    Bytes,
    /// The file offset inside the object's own body (3.11 `wstr`).
    InteriorAt(u32),
}

/// A module's list of pool entries, read in place of its pooled-name
/// records (their slots pre-written, `stamp::Vouched`).
pub struct ListedNames {
    pub entries: Vec<u32>,
    /// Whether a slot may hold the static str equal to its entry (pre-written
    /// for this interpreter image, which the stamp checked) rather than the
    /// entry itself.
    pub statics_prewritten: bool,
}

/// A module whose objects passed [`check`] in this process, or in the one
/// that wrote the archive's stamp ([`ShapeChecked::vouched`]): the only
/// thing `serve::Preparation` relocates.
pub struct ShapeChecked {
    view: ModuleView,
    relocs: Relocations,
    /// The pool entries its pooled-name records name, when `relocs` leaves
    /// those records out.
    listed_names: Option<ListedNames>,
    /// Whether its image stream (the Symbol records naming the
    /// interpreter's image) is applied too, read at relocation
    /// (`format::read_image_symbols_at`): `relocs` is then its first
    /// stream alone.
    image_symbols: bool,
}

impl ShapeChecked {
    /// A module of an archive whose stamp names the mapped file
    /// (`stamp::Vouched`): its whole archive passed [`check`] when stamped.
    /// `relocs`: the records to apply (all, or those that need work here,
    /// with `listed_names` the module's list of pool entries, and the
    /// image's statics when `image_symbols`).
    pub fn vouched(
        view: ModuleView,
        relocs: Relocations,
        listed_names: Option<ListedNames>,
        image_symbols: bool,
        _stamp: &Vouched,
    ) -> Self {
        Self { view, relocs, listed_names, image_symbols }
    }

    /// Whether the image's statics are to be applied besides
    /// [`relocations`](Self::relocations).
    pub fn image_symbols(&self) -> bool {
        self.image_symbols
    }

    /// The pool entries to intern in place of the pooled-name records,
    /// when those were left out of [`relocations`](Self::relocations).
    pub fn listed_names(&self) -> Option<&ListedNames> {
        self.listed_names.as_ref()
    }

    pub fn view(&self) -> &ModuleView {
        &self.view
    }

    /// The module's records, as the check read them.
    pub fn relocations(&self) -> &Relocations {
        &self.relocs
    }
}

/// The name pool's entries that passed their shape check in this process
/// (each is checked before its first use: interning writes into it, so it
/// would not pass again). One bit per 16-byte pool position, shared by the
/// serving archive and the interning hook (`pooled_names::_PyCds_PooledName`),
/// which both run with the GIL held (atomics only to be shareable).
pub struct PoolShapes {
    checked: Vec<AtomicU64>,
}

impl PoolShapes {
    /// No entry checked yet, for a pool of `pool_len` bytes.
    pub fn for_pool(pool_len: usize) -> Self {
        Self { checked: lazily_zeroed(pool_len.div_ceil(OBJECT_ALIGN * 64)) }
    }

    /// `Some(Kind::Str)` when the pool holds a str at `at`, as the dump
    /// writes them (see [`PoolShapes::check_entry`]); an entry checked
    /// before is not read again (interning has written into it since).
    fn str_at(&self, bytes: &[u8], view: &ModuleView, at: usize) -> Option<Kind> {
        if self.checked_before(&view.names, at) {
            return Some(Kind::Str);
        }
        self.check_entry(bytes, &view.names, at).map(|_| Kind::Str)
    }

    /// The size of the str entry at `at` of the pool `names` once it passed
    /// its check, now ([`check_entry`](Self::check_entry)) or before.
    pub fn entry_size(&self, bytes: &[u8], names: &std::ops::Range<usize>, at: usize) -> Option<usize> {
        if !self.checked_before(names, at) {
            return self.check_entry(bytes, names, at);
        }
        // Read from the fields interning never writes (length, kind, ASCII bit).
        version::str_name_key(&bytes[at..names.end]).map(|(tag, data)| {
            let (kind, ascii) = (usize::from(tag & 7), tag & 8 != 0);
            version::compact_str_size(data.len() / kind, ascii, kind)
        })
    }

    /// The size of the str entry at `at` of the pool `names` (a range of
    /// `bytes`) when it is one as the dump writes them, checked before its
    /// first interning: 16-aligned, wholly inside the pool, not interned,
    /// with no pointer into itself (its only pointer, `ob_type`, is written
    /// by `pool::Pool`). Records it as checked.
    pub fn check_entry(&self, bytes: &[u8], names: &std::ops::Range<usize>, at: usize) -> Option<usize> {
        let bit = Self::bit(names, at)?;
        let shape = version::archived_str_shape(&bytes[at..names.end]).ok()?;
        if shape.interior.is_some() {
            return None;
        }
        self.checked.get(bit / 64)?.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        Some(shape.size)
    }

    /// Whether the entry at `at` passed its check in this process.
    fn checked_before(&self, names: &std::ops::Range<usize>, at: usize) -> bool {
        Self::bit(names, at)
            .and_then(|bit| {
                self.checked.get(bit / 64).map(|word| word.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
            })
            .unwrap_or(false)
    }

    /// The bit of pool position `at`, when a str header fits there.
    fn bit(names: &std::ops::Range<usize>, at: usize) -> Option<usize> {
        let header = header_size(symbols::TYPE_STR)?;
        let inside = at.is_multiple_of(OBJECT_ALIGN) && at >= names.start && at.saturating_add(header) <= names.end;
        inside.then(|| (at - names.start) / OBJECT_ALIGN)
    }
}

/// `len` atomics at zero, from zeroed memory the kernel maps lazily: only
/// the words used cost a page.
pub fn lazily_zeroed<A: ZeroIsValid>(len: usize) -> Vec<A> {
    const { assert!(size_of::<A>() == size_of::<u64>() && align_of::<A>() == align_of::<u64>()) };
    let zeroed = std::mem::ManuallyDrop::new(vec![0u64; len]);
    // SAFETY: A has the size and alignment of u64 (asserted above) and zero
    // is a valid A (`ZeroIsValid`); the Vec's buffer, length and capacity
    // are moved over unchanged (the original is never dropped). Built this
    // way, the buffer comes from `alloc_zeroed`.
    unsafe { Vec::from_raw_parts(zeroed.as_ptr() as *mut A, zeroed.len(), zeroed.capacity()) }
}

/// Atomics whose all-zero bytes are a valid value.
pub trait ZeroIsValid {}
impl ZeroIsValid for AtomicU64 {}
impl ZeroIsValid for std::sync::atomic::AtomicUsize {}

/// What the walk learns about a module, in tables it fills in one pass.
///
/// Relocation records are sorted by slot (the reader checks it), and the
/// walk meets pointer fields in file order, so each field is matched to the
/// next record as it is found: no lookup by slot is ever needed.
struct Layout<'r> {
    relocs: &'r [Reloc],
    /// The next record to match.
    cursor: usize,
    /// (record index, what its field must hold), to check once every
    /// object's kind is known.
    fields: Vec<(u32, Holds)>,
    /// Per 16-byte unit of the module's spans (hot, then cold), the object
    /// starting there: its kind (`Unit::kind`) and the index of its first
    /// record (its `ob_type`). `Unit::EMPTY`: no object.
    units: Vec<Unit>,
    /// The units of the code objects.
    codes: Vec<u32>,
    hot: Range<usize>,
    cold: Range<usize>,
}

#[derive(Clone, Copy)]
struct Unit {
    /// 0: no object; else 1 + the kind's tag (see `Unit::kind`).
    tag: u32,
    len: u32,
    first_record: u32,
}

impl Unit {
    /// No object starts in this unit.
    const EMPTY: Self = Self { tag: 0, len: 0, first_record: 0 };

    fn new(kind: Kind, first_record: usize) -> Self {
        let (tag, len) = match kind {
            Kind::Code => (1, 0),
            Kind::Tuple { len } => (2, len),
            Kind::Str => (3, 0),
            Kind::Bytes { len } => (4, len),
            Kind::Int => (5, 0),
            Kind::Float => (6, 0),
            Kind::Complex => (7, 0),
            Kind::Other => (8, 0),
        };
        Self { tag, len, first_record: first_record as u32 }
    }

    fn kind(self) -> Option<Kind> {
        Some(match self.tag {
            1 => Kind::Code,
            2 => Kind::Tuple { len: self.len },
            3 => Kind::Str,
            4 => Kind::Bytes { len: self.len },
            5 => Kind::Int,
            6 => Kind::Float,
            7 => Kind::Complex,
            8 => Kind::Other,
            _ => return None,
        })
    }
}

impl<'r> Layout<'r> {
    fn unit_index(&self, at: usize) -> Option<usize> {
        if !at.is_multiple_of(OBJECT_ALIGN) {
            None
        } else if self.hot.contains(&at) {
            Some((at - self.hot.start) / OBJECT_ALIGN)
        } else if self.cold.contains(&at) {
            Some(self.hot.len().div_ceil(OBJECT_ALIGN) + (at - self.cold.start) / OBJECT_ALIGN)
        } else {
            None
        }
    }

    fn unit(&self, at: usize) -> Option<Unit> {
        self.units.get(self.unit_index(at)?).copied().filter(|u| u.tag != 0)
    }

    fn object_at(&self, at: usize) -> Option<Kind> {
        self.unit(at)?.kind()
    }

    /// Matches the pointer field at `slot` to the next record.
    fn field(&mut self, slot: usize, holds: Holds) -> Result<&'r Reloc, String> {
        match self.relocs.get(self.cursor) {
            Some(r) if r.slot as usize == slot => {
                self.fields.push((self.cursor as u32, holds));
                self.cursor += 1;
                Ok(r)
            }
            Some(r) if (r.slot as usize) < slot => {
                Err(format!("relocation at {} writes into no pointer field", r.slot))
            }
            _ => Err(format!("the pointer field at {slot} has no relocation")),
        }
    }
}

/// Walks the objects of `view` (whose checksum has been verified) in
/// `bytes`, the archive as mapped and not yet relocated.
pub fn check(bytes: &[u8], view: ModuleView, serials: &Range<u32>, pool: &PoolShapes) -> Result<ShapeChecked, String> {
    let relocs = read_relocations(bytes, &view).map_err(|e| e.to_string())?;
    let units = (view.hot.len().div_ceil(OBJECT_ALIGN)) + view.cold.len().div_ceil(OBJECT_ALIGN);
    let mut layout = Layout {
        relocs: &relocs,
        cursor: 0,
        fields: Vec::with_capacity(relocs.len()),
        units: vec![Unit::EMPTY; units],
        codes: Vec::new(),
        hot: view.hot.clone(),
        cold: view.cold.clone(),
    };
    for span in [view.hot.clone(), view.cold.clone()] {
        walk(bytes, span, serials, &mut layout)?;
    }
    if let Some(r) = relocs.get(layout.cursor) {
        return Err(format!("relocation at {} writes into no pointer field", r.slot));
    }
    if layout.object_at(view.code) != Some(Kind::Code) {
        return Err("the module's code offset is not a code object".into());
    }
    let target_of = |r: &Reloc| -> Option<Kind> {
        if r.kind == RelocKind::InternedStr && view.in_names(r.target as usize, 1) {
            return pool.str_at(bytes, &view, r.target as usize);
        }
        target_kind(r, &layout)
    };
    for &(k, holds) in &layout.fields {
        let r = &relocs[k as usize];
        // The common case, a tuple item: any object start of the module or
        // symbol that is not a type will do.
        if holds == Holds::Any && r.kind == RelocKind::Object {
            if layout.unit(r.target as usize).is_none() {
                return Err(format!("relocation at {} points at no object of the module", r.slot));
            }
            continue;
        }
        let found = target_of(r)
            .ok_or_else(|| format!("relocation at {} points at no object of the module or the name pool", r.slot))?;
        let ok = match (holds, found) {
            // Each item of a tuple of names is a str: the tuple's item
            // records follow its `ob_type` record.
            (Holds::TupleOfStr, Kind::Tuple { len }) if r.kind == RelocKind::Object => {
                let first = layout.unit(r.target as usize).map_or(0, |u| u.first_record as usize) + 1;
                relocs[first..first + len as usize].iter().all(|item| target_of(item) == Some(Kind::Str))
            }
            _ => holds.accepts(r, found),
        };
        if !ok {
            return Err(format!("the field at {} holds the wrong kind of object", r.slot));
        }
    }
    for &code in &layout.codes {
        let unit = layout.units[code as usize];
        {
            let record = |field: usize| {
                let i = version::CODE_OBJECT_FIELDS.iter().position(|f| f.offset == field).expect("a code field");
                &relocs[unit.first_record as usize + 1 + i]
            };
            let at = relocs[unit.first_record as usize].slot as usize - OB_TYPE;
            let names = target_of(record(offset_of!(sys::PyCodeObject, co_localsplusnames)));
            let kinds = target_of(record(offset_of!(sys::PyCodeObject, co_localspluskinds)));
            locals_agree(bytes, at, names, kinds).map_err(|why| format!("code object at {at}: {why}"))?;
        }
    }
    Ok(ShapeChecked { view, relocs, listed_names: None, image_symbols: false })
}

/// A code object's `co_nlocalsplus` is the length of its local names and of
/// their kinds: frames are sized by the count and read both by index.
fn locals_agree(bytes: &[u8], at: usize, names: Option<Kind>, kinds: Option<Kind>) -> Result<(), &'static str> {
    let count = get::<std::ffi::c_int>(&bytes[at..], offset_of!(sys::PyCodeObject, co_nlocalsplus));
    match (names, kinds) {
        (Some(Kind::Tuple { len: n }), Some(Kind::Bytes { len: k })) if n == k && n as i64 == count as i64 => Ok(()),
        _ => Err("co_nlocalsplus differs from its local names or kinds"),
    }
}

/// What relocation record `r` makes its slot point at (an object of the module).
fn target_kind(r: &Reloc, layout: &Layout) -> Option<Kind> {
    let object = layout.object_at(r.target as usize);
    match r.kind {
        RelocKind::Object => object,
        RelocKind::InternedStr => object.filter(|k| *k == Kind::Str),
        RelocKind::FrozenSet => object.filter(|k| matches!(k, Kind::Tuple { .. })).map(|_| Kind::Other),
        RelocKind::Symbol => symbols::kind_of(r.target),
        // Only a 3.11 str's `wstr` is interior (its target checked by `InteriorAt`).
        RelocKind::Interior => Some(Kind::Other),
        RelocKind::CodeInit => None,
    }
}

impl Holds {
    /// Whether a slot holding `found` through `r` is what this field needs
    /// (a tuple of names is checked item by item by the caller).
    fn accepts(self, r: &Reloc, found: Kind) -> bool {
        let runtime_type = r.kind == RelocKind::Symbol && symbols::is_type(r.target);
        match self {
            Holds::Any => r.kind != RelocKind::Interior && !runtime_type,
            Holds::Tuple => matches!(found, Kind::Tuple { .. }),
            Holds::Str => found == Kind::Str,
            Holds::Bytes => matches!(found, Kind::Bytes { .. }),
            // Only the empty tuple reaches here (an archived one is checked by the caller).
            Holds::TupleOfStr => r.kind == RelocKind::Symbol && matches!(found, Kind::Tuple { .. }),
            Holds::InteriorAt(at) => r.kind == RelocKind::Interior && r.target == at,
        }
    }
}

// The GC header test reads it as two words.
const _: () = assert!(GC_HEAD == 16);

/// Walks one span: records each object's kind and matches its pointer
/// fields to the relocation records, in file order.
fn walk(bytes: &[u8], span: Range<usize>, serials: &Range<u32>, layout: &mut Layout) -> Result<(), String> {
    let mut at = span.start;
    while at < span.end {
        let gc_head = span.end - at >= GC_HEAD + 16 && get::<[u64; 2]>(bytes, at) == [0, 0];
        let start = if gc_head { at + GC_HEAD } else { at };
        let object = &bytes[start..span.end];
        let bad = |why: &str| format!("object at {start}: {why}");
        // A CodeInit record names a code object's start (checked below).
        let code_init =
            layout.relocs.get(layout.cursor).is_some_and(|r| r.kind == RelocKind::CodeInit && r.slot as usize == start);
        layout.cursor += usize::from(code_init);
        let first_record = layout.cursor;
        let type_id = match layout.relocs.get(layout.cursor) {
            Some(r) if r.kind == RelocKind::Symbol && r.slot as usize == start + OB_TYPE => r.target,
            // A record left behind by the object before (inside its data).
            Some(r) if (r.slot as usize) < start + OB_TYPE => {
                return Err(format!("relocation at {} writes into no pointer field", r.slot))
            }
            _ => return Err(bad("no type")),
        };
        // The type record is checked here and now (a type symbol the match
        // below knows); its field needs no later check.
        layout.cursor += 1;
        let need = |size: Option<usize>| match size {
            Some(size) if size <= object.len() => Ok(size),
            _ => Err(bad("longer than its span")),
        };
        // Every field read below lies inside the type's fixed header.
        need(Some(header_size(type_id).ok_or_else(|| bad("not an archivable type"))?))?;
        let count = |object: &[u8]| var_size(object).filter(|n| *n <= object.len()).ok_or_else(|| bad("bad size"));
        let (kind, size) = match type_id {
            symbols::TYPE_TUPLE => {
                let len = count(object)?;
                let size = need(Some(tuple_size(len)))?;
                for i in 0..len {
                    layout.field(start + tuple_item_offset(i), Holds::Any)?;
                }
                (Kind::Tuple { len: len as u32 }, size)
            }
            symbols::TYPE_STR => {
                let shape = version::archived_str_shape(object).map_err(bad)?;
                let size = need(Some(shape.size))?;
                if let Some((slot, target)) = shape.interior {
                    layout.field(start + slot, Holds::InteriorAt((start + target) as u32))?;
                }
                (Kind::Str, size)
            }
            symbols::TYPE_BYTES => {
                let len = count(object)?;
                let size = need(Some(bytes_size(len)))?;
                if object[size - 1] != 0 {
                    return Err(bad("bytes without their terminating NUL"));
                }
                (Kind::Bytes { len: len as u32 }, size)
            }
            symbols::TYPE_INT => (Kind::Int, need(Some(version::archived_long_size(object).map_err(bad)?))?),
            symbols::TYPE_FLOAT => (Kind::Float, need(Some(size_of::<sys::PyFloatObject>()))?),
            symbols::TYPE_COMPLEX => (Kind::Complex, need(Some(size_of::<sys::PyComplexObject>()))?),
            symbols::TYPE_CODE => {
                type Code = sys::PyCodeObject;
                let units = count(object)?;
                let size = need(
                    units.checked_mul(size_of::<sys::_Py_CODEUNIT>()).map(|n| n + offset_of!(Code, co_code_adaptive)),
                )?;
                for field in version::CODE_OBJECT_FIELDS {
                    layout.field(start + field.offset, field.holds)?;
                }
                if version::CODE_NULL_FIELDS.iter().any(|&off| get::<usize>(object, off) != 0) {
                    return Err(bad("a code object's cache or weakref field is set"));
                }
                version::check_code(object, serials).map_err(bad)?;
                (Kind::Code, size)
            }
            _ => return Err(bad("not an archivable type")),
        };
        if gc_head != matches!(kind, Kind::Tuple { .. }) {
            return Err(bad("GC header on an object that is not a tuple, or a tuple without one"));
        }
        if code_init && kind != Kind::Code {
            return Err(bad("code initialisation of an object that is not code"));
        }
        let unit = layout.unit_index(start).ok_or_else(|| bad("misaligned"))?;
        layout.units[unit] = Unit::new(kind, first_record);
        if kind == Kind::Code {
            layout.codes.push(unit as u32);
        }
        at = align_up(start + size, OBJECT_ALIGN);
    }
    Ok(())
}

/// The fixed part of an archived object of type `type_id`, which the walk
/// reads before it knows the object's size.
fn header_size(type_id: u32) -> Option<usize> {
    Some(match type_id {
        symbols::TYPE_TUPLE => tuple_size(0),
        symbols::TYPE_STR => size_of::<sys::PyASCIIObject>() + 1,
        symbols::TYPE_BYTES => bytes_size(0),
        symbols::TYPE_INT => size_of::<sys::PyVarObject>() + size_of::<sys::digit>(),
        symbols::TYPE_FLOAT => size_of::<sys::PyFloatObject>(),
        symbols::TYPE_COMPLEX => size_of::<sys::PyComplexObject>(),
        symbols::TYPE_CODE => offset_of!(sys::PyCodeObject, co_code_adaptive),
        _ => return None,
    })
}

/// `ob_size` of a variable-size object's bytes, when not negative.
fn var_size(object: &[u8]) -> Option<usize> {
    usize::try_from(get::<sys::Py_ssize_t>(object, offset_of!(sys::PyVarObject, ob_size))).ok()
}
