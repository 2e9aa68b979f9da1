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
use super::symbols;
use super::sys;
use super::version;
use crate::format::layout::align_up;
use crate::format::reloc::read_relocations;
use crate::format::{ModuleView, Reloc, RelocKind, OBJECT_ALIGN};
use std::collections::{HashMap, HashSet};
use std::mem::{offset_of, size_of};
use std::ops::Range;

/// What an archived object (or a runtime symbol) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Code,
    Tuple {
        len: usize,
    },
    Str,
    Bytes {
        len: usize,
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
    /// The runtime type named by symbol id (an object's `ob_type`).
    Type(u32),
    /// Any archived object or runtime singleton (a tuple item).
    Any,
    Tuple,
    /// A tuple whose items are all str (a code object's names).
    TupleOfStr,
    Str,
    Bytes,
    /// The file offset inside the object's own body (3.11 `wstr`).
    InteriorAt(usize),
}

/// A module whose objects passed [`check`]: the only thing
/// `serve::Preparation` relocates.
pub struct ShapeChecked {
    view: ModuleView,
}

impl ShapeChecked {
    pub fn view(&self) -> &ModuleView {
        &self.view
    }
}

/// The name pool's entries that passed their shape check in this process
/// (each is checked before its first use: interning writes into it, so it
/// would not pass again).
#[derive(Default)]
pub struct PoolShapes {
    checked: HashSet<usize>,
}

impl PoolShapes {
    /// `Some(Kind::Str)` when the pool holds a str at `at`, as the dump
    /// writes them: 16-aligned, wholly inside the pool, with no pointer into
    /// itself (its only pointer, `ob_type`, is written by `serve::Pool`).
    fn str_at(&mut self, bytes: &[u8], view: &ModuleView, at: usize) -> Option<Kind> {
        if self.checked.contains(&at) {
            return Some(Kind::Str);
        }
        let fits = at.is_multiple_of(OBJECT_ALIGN) && at + header_size(symbols::TYPE_STR)? <= view.names.end;
        let shape = version::archived_str_shape(bytes.get(at..view.names.end).filter(|_| fits)?).ok()?;
        if shape.interior.is_some() {
            return None;
        }
        self.checked.insert(at);
        Some(Kind::Str)
    }
}

/// One pointer field found by the walk and what it must hold.
struct Field {
    /// The object it belongs to, for messages.
    owner: usize,
    holds: Holds,
}

/// Walks the objects of `view` (whose checksum has been verified) in
/// `bytes`, the archive as mapped and not yet relocated.
pub fn check(
    bytes: &[u8],
    view: ModuleView,
    serials: &Range<u32>,
    pool: &mut PoolShapes,
) -> Result<ShapeChecked, String> {
    let relocs = read_relocations(bytes, &view).map_err(|e| e.to_string())?;
    let mut by_slot: HashMap<usize, Reloc> = HashMap::with_capacity(relocs.len());
    for r in relocs.iter().filter(|r| r.kind != RelocKind::CodeInit) {
        if by_slot.insert(r.slot as usize, *r).is_some() {
            return Err(format!("two relocations write the slot at {}", r.slot));
        }
    }
    let mut objects = HashMap::new();
    let mut fields: HashMap<usize, Field> = HashMap::new();
    for span in [view.hot.clone(), view.cold.clone()] {
        walk(bytes, span, &by_slot, serials, &mut objects, &mut fields)?;
    }
    if objects.get(&view.code) != Some(&Kind::Code) {
        return Err("the module's code offset is not a code object".into());
    }
    // What each written slot will point at.
    let mut slot_kinds: HashMap<usize, Kind> = HashMap::with_capacity(by_slot.len());
    for (&slot, r) in &by_slot {
        let pooled = r.kind == RelocKind::InternedStr && view.in_names(r.target as usize, 1);
        let kind = if pooled { pool.str_at(bytes, &view, r.target as usize) } else { target_kind(r, &objects) }
            .ok_or_else(|| format!("relocation at {slot} points at no object of the module or the name pool"))?;
        slot_kinds.insert(slot, kind);
    }
    for (&slot, r) in &by_slot {
        let Some(field) = fields.remove(&slot) else {
            return Err(format!("relocation at {slot} writes into no pointer field"));
        };
        if !field.holds.accepts(r, slot_kinds[&slot], &slot_kinds) {
            return Err(format!("object at {}: a field holds the wrong kind of object", field.owner));
        }
    }
    if let Some((slot, field)) = fields.iter().next() {
        return Err(format!("object at {}: pointer field at {slot} has no relocation", field.owner));
    }
    for (&at, _) in objects.iter().filter(|(_, k)| **k == Kind::Code) {
        locals_agree(bytes, at, &slot_kinds).map_err(|why| format!("code object at {at}: {why}"))?;
    }
    for r in relocs.iter().filter(|r| r.kind == RelocKind::CodeInit) {
        if objects.get(&(r.slot as usize)) != Some(&Kind::Code) {
            return Err(format!("code initialisation at {} is not a code object", r.slot));
        }
    }
    Ok(ShapeChecked { view })
}

/// A code object's `co_nlocalsplus` is the length of its local names and of
/// their kinds: frames are sized by the count and read both by index.
fn locals_agree(bytes: &[u8], at: usize, slot_kinds: &HashMap<usize, Kind>) -> Result<(), &'static str> {
    type Code = sys::PyCodeObject;
    let count = get::<std::ffi::c_int>(&bytes[at..], offset_of!(Code, co_nlocalsplus));
    let names = slot_kinds.get(&(at + offset_of!(Code, co_localsplusnames)));
    let kinds = slot_kinds.get(&(at + offset_of!(Code, co_localspluskinds)));
    match (names, kinds) {
        (Some(Kind::Tuple { len: n }), Some(Kind::Bytes { len: k })) if *n == *k && *n as i64 == count as i64 => Ok(()),
        _ => Err("co_nlocalsplus differs from its local names or kinds"),
    }
}

/// What relocation record `r` makes its slot point at.
fn target_kind(r: &Reloc, objects: &HashMap<usize, Kind>) -> Option<Kind> {
    let object = objects.get(&(r.target as usize)).copied();
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
    /// Whether a slot holding `found` through `r` is what this field needs;
    /// `slot_kinds`: what every written slot of the module points at.
    fn accepts(self, r: &Reloc, found: Kind, slot_kinds: &HashMap<usize, Kind>) -> bool {
        let runtime_type = r.kind == RelocKind::Symbol && symbols::is_type(r.target);
        match self {
            Holds::Type(id) => r.kind == RelocKind::Symbol && r.target == id,
            Holds::Any => r.kind != RelocKind::Interior && !runtime_type,
            Holds::Tuple => matches!(found, Kind::Tuple { .. }),
            Holds::Str => found == Kind::Str,
            Holds::Bytes => matches!(found, Kind::Bytes { .. }),
            Holds::TupleOfStr => match (r.kind, found) {
                (RelocKind::Symbol, Kind::Tuple { .. }) => true, // the empty tuple
                (RelocKind::Object, Kind::Tuple { len }) => (0..len).all(|i| {
                    let item = r.target as usize + tuple_item_offset(i);
                    slot_kinds.get(&item) == Some(&Kind::Str)
                }),
                _ => false,
            },
            Holds::InteriorAt(at) => r.kind == RelocKind::Interior && r.target as usize == at,
        }
    }
}

/// Walks one span: records each object's kind and the pointer fields it has.
fn walk(
    bytes: &[u8],
    span: Range<usize>,
    by_slot: &HashMap<usize, Reloc>,
    serials: &Range<u32>,
    objects: &mut HashMap<usize, Kind>,
    fields: &mut HashMap<usize, Field>,
) -> Result<(), String> {
    let mut at = span.start;
    while at < span.end {
        let gc_head = span.end - at >= GC_HEAD + 16 && bytes[at..at + GC_HEAD].iter().all(|b| *b == 0);
        let start = if gc_head { at + GC_HEAD } else { at };
        let object = &bytes[start..span.end];
        let bad = |why: &str| format!("object at {start}: {why}");
        let type_id = match by_slot.get(&(start + OB_TYPE)) {
            Some(r) if r.kind == RelocKind::Symbol => r.target,
            _ => return Err(bad("no type")),
        };
        let mut pointer = |offset: usize, holds: Holds| {
            fields.insert(start + offset, Field { owner: start, holds });
        };
        pointer(OB_TYPE, Holds::Type(type_id));
        let need = |size: usize| if size <= object.len() { Ok(size) } else { Err(bad("longer than its span")) };
        // Every field read below lies inside the type's fixed header.
        need(header_size(type_id).ok_or_else(|| bad("not an archivable type"))?)?;
        let (kind, size) = match type_id {
            symbols::TYPE_TUPLE => {
                let len = var_size(object).ok_or_else(|| bad("negative size"))?;
                let size = need(tuple_size(len))?;
                for i in 0..len {
                    pointer(tuple_item_offset(i), Holds::Any);
                }
                (Kind::Tuple { len }, size)
            }
            symbols::TYPE_STR => {
                let shape = version::archived_str_shape(object).map_err(bad)?;
                let size = need(shape.size)?;
                if let Some((slot, target)) = shape.interior {
                    pointer(slot, Holds::InteriorAt(start + target));
                }
                (Kind::Str, size)
            }
            symbols::TYPE_BYTES => {
                let len = var_size(object).ok_or_else(|| bad("negative size"))?;
                let size = need(bytes_size(len))?;
                if object[size - 1] != 0 {
                    return Err(bad("bytes without their terminating NUL"));
                }
                (Kind::Bytes { len }, size)
            }
            symbols::TYPE_INT => (Kind::Int, need(version::archived_long_size(object).map_err(bad)?)?),
            symbols::TYPE_FLOAT => (Kind::Float, need(size_of::<sys::PyFloatObject>())?),
            symbols::TYPE_COMPLEX => (Kind::Complex, need(size_of::<sys::PyComplexObject>())?),
            symbols::TYPE_CODE => {
                type Code = sys::PyCodeObject;
                let units = var_size(object).ok_or_else(|| bad("negative size"))?;
                let size = need(offset_of!(Code, co_code_adaptive) + units * size_of::<sys::_Py_CODEUNIT>())?;
                for field in version::CODE_OBJECT_FIELDS {
                    pointer(field.offset, field.holds);
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
        objects.insert(start, kind);
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
