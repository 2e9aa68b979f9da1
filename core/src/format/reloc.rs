//! Applying a module's relocations: the per-process fix-up of its objects.
//!
//! Archived pointer slots hold nothing usable; each relocation says what its
//! slot must point to in this process (an archived object at the mapping's
//! address, or a runtime object such as a type or `None`). Every record is
//! validated before the first write, so a bad record leaves the module
//! untouched and it falls back to a normal import.

use super::layout::*;
use super::reader::ModuleView;
use super::reloc_codec::{DecodeError, Decoder, Group, GroupsDecoder};
use std::fmt;
use std::ops::Range;

/// Smallest object that a relocation may point at (refcount + type).
const MIN_OBJECT: usize = 16;

/// What the running interpreter supplies during relocation.
pub trait Fixups {
    /// Address of runtime object `id`, or `None` for an unknown id.
    fn symbol(&mut self, id: u32) -> Option<usize>;
    /// Interns the archived str at `string` (the reference its slot holds)
    /// and returns what the slot must hold: `string`, or the equal str that
    /// was interned before, to which the reference then moves.
    ///
    /// # Safety
    /// `string` is the address of an archived object of the module, whose
    /// own slots are relocated.
    unsafe fn intern(&mut self, string: usize) -> Result<usize, String>;
    /// Builds a frozenset from the relocated archived tuple at `tuple`.
    ///
    /// # Safety
    /// `tuple` is the address of a fully relocated archived tuple.
    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String>;
    /// Gives the relocated code object at `code` its per-process state.
    ///
    /// # Safety
    /// `code` is the address of a fully relocated archived code object.
    unsafe fn init_code(&mut self, _code: usize) {}
}

/// Why a module's records were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelocError {
    Malformed { index: usize },
    BadKind { index: usize },
    Unsorted { index: usize },
    SlotOutOfBounds { index: usize },
    TargetOutOfBounds { index: usize },
    UnknownSymbol { id: u32 },
    Runtime(String),
}

impl fmt::Display for RelocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { index } => write!(f, "relocation {index} is malformed"),
            Self::BadKind { index } => write!(f, "relocation {index} has an unknown kind"),
            Self::Unsorted { index } => write!(f, "relocation {index} is out of slot order"),
            Self::SlotOutOfBounds { index } => write!(f, "relocation {index} writes outside its module"),
            Self::TargetOutOfBounds { index } => write!(f, "relocation {index} points outside its module"),
            Self::UnknownSymbol { id } => write!(f, "unknown runtime symbol {id}"),
            Self::Runtime(why) => write!(f, "{why}"),
        }
    }
}
impl std::error::Error for RelocError {}

/// A module's relocation records, validated (kinds known, slots and
/// targets in bounds and aligned, slots ascending): only
/// [`read_relocations`] and [`read_work_relocations`] (a validated subset)
/// make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocations {
    /// The byte range of the records they were read from (which module).
    from: std::ops::Range<usize>,
    records: Vec<Reloc>,
}

impl std::ops::Deref for Relocations {
    type Target = [Reloc];
    fn deref(&self) -> &[Reloc] {
        &self.records
    }
}

/// Reads and validates the module's relocation records: all three streams,
/// merged into one list sorted by slot.
pub fn read_relocations(bytes: &[u8], module: &ModuleView) -> Result<Relocations, RelocError> {
    let records = read_all_streams(&bytes[module.relocs.clone()], module)?;
    Ok(Relocations { from: module.relocs.clone(), records })
}

/// The module's first record stream alone, validated as
/// [`read_relocations`] validates every record: the records that need work
/// in every process ([`RelocKind::needs_work`]). Enough for a module whose
/// other slots an earlier check of the whole archive found already right
/// for this process, and its streams split as they should
/// (`python::stamp`); the others are not read.
pub fn read_work_relocations(bytes: &[u8], module: &ModuleView) -> Result<Relocations, RelocError> {
    let records = read_stream(&bytes[module.relocs_work.clone()], module, 0)?;
    Ok(Relocations { from: module.relocs.clone(), records })
}

/// The module's image stream alone, validated as [`read_relocations`]
/// validates every record: what a check of the whole archive holds against
/// the records it should hold (`python::stamp`).
pub fn read_image_relocations(bytes: &[u8], module: &ModuleView) -> Result<Relocations, RelocError> {
    Ok(Relocations {
        from: module.relocs.clone(),
        records: image_symbols_in(&bytes[module.relocs_image.clone()], module)?,
    })
}

/// A module's image stream (its Symbol records naming statics of the
/// interpreter's image, grouped by id), each slot validated as
/// [`read_relocations`] validates every record and each id resolved to the
/// address its slots must hold: what makes the module right for this
/// process once its first stream is applied, when its archive-internal
/// slots already are (an earlier check of the whole archive found them
/// right, `python::stamp`) but the interpreter's image lies elsewhere than
/// the dump's. Only [`read_image_symbols_at`] makes one.
pub struct ImageSymbols {
    /// The byte range of the records they were read from (which module).
    from: Range<usize>,
    /// The slots, by id.
    slots: GroupedSlots,
    /// Per group, in order, the address its slots must hold.
    values: Vec<u64>,
}

/// The module's [`ImageSymbols`], each id resolved once by `symbol`.
///
/// # Safety
/// `base..base + len` is readable; the module's record bytes are not
/// written meanwhile.
pub unsafe fn read_image_symbols_at(
    base: *const u8,
    len: usize,
    module: &ModuleView,
    mut symbol: impl FnMut(u32) -> Option<usize>,
) -> Result<ImageSymbols, RelocError> {
    assert!(module.relocs.end <= len);
    // SAFETY: in bounds (asserted); the caller keeps the records unwritten.
    let stream = unsafe { records_at(base, &module.relocs_image) };
    let mut slots = GroupedSlots::default();
    each_group(stream, |id, group| slots.read(id, &group, module))?;
    // Ids resolved once the slots are read: resolving may allocate, and so
    // run Python, which may relocate another module of the mapping.
    let mut values = Vec::with_capacity(slots.groups.len());
    for &(id, _) in &slots.groups {
        values.push(symbol(id).ok_or(RelocError::UnknownSymbol { id })? as u64);
    }
    Ok(ImageSymbols { from: module.relocs.clone(), slots, values })
}

impl ImageSymbols {
    /// Writes each slot that does not hold its value yet.
    ///
    /// # Safety
    /// As [`apply_relocations_at`], for the module these were read from.
    pub unsafe fn write_at(&self, base: *mut u8, len: usize, module: &ModuleView) {
        assert_eq!(self.from, module.relocs, "image symbols of another module");
        assert!(module.hot.end <= len && module.cold.end <= len);
        let mut values = self.values.iter();
        // SAFETY: the slots were checked 8-aligned and inside the module
        // (read_image_symbols_at), which the caller gives us exclusively.
        unsafe { self.slots.write_at(base, |_, _| *values.next().expect("a value per group")) };
    }
}

/// Slots of a grouped stream read group by group, each checked: per group
/// its key and how many of the slots, in order, are its.
#[derive(Default)]
struct GroupedSlots {
    slots: Vec<u32>,
    groups: Vec<(u32, usize)>,
}

impl GroupedSlots {
    /// Reads and checks the slots of `group`, whose key is `key`.
    fn read(&mut self, key: u32, group: &Group, module: &ModuleView) -> Result<(), RelocError> {
        let before = self.slots.len();
        each_slot_of(group, module, before, &mut self.slots)?;
        self.groups.push((key, self.slots.len() - before));
        Ok(())
    }

    /// Writes into each group's slots what `value(key, slots)` gives for it.
    ///
    /// # Safety
    /// The slots were read for the module at `base`, whose bytes the caller
    /// may write exclusively.
    unsafe fn write_at(&self, base: *mut u8, mut value: impl FnMut(u32, usize) -> u64) {
        let mut slots = self.slots.iter();
        for &(key, count) in &self.groups {
            let value = value(key, count);
            for &slot in slots.by_ref().take(count) {
                // SAFETY: each_slot_of found the slot 8-aligned and inside
                // the module, which the caller gives us exclusively.
                unsafe { store_slot(base, slot, value) };
            }
        }
    }
}

/// The pool entries the module's pooled-name records name (the names of
/// its names region, `entry::RELOC_NAMES_SIZE`), as file offsets, each
/// checked to be a 16-aligned position inside the name pool; their slot
/// lists are skipped. What interning them in this process makes of them
/// decides whether their slots, pre-written with the entries' addresses,
/// need any work (`python::serve`).
pub fn read_names(bytes: &[u8], module: &ModuleView) -> Result<Vec<u32>, RelocError> {
    let mut entries = Vec::new();
    each_name(&bytes[module.relocs_names.clone()], module, |entry, _| {
        entries.push(entry);
        Ok(())
    })?;
    Ok(entries)
}

/// Rewrites the module's pooled-name slots whose entry stands for another
/// str in this process: the slots of each name whose entry (a file offset)
/// `moved` selects (asked once per name, entries ascending), all made to
/// hold what `rewritten(entry, slots)` gives for that entry and its number
/// of slots. Every slot of those names is
/// decoded and checked first, as [`apply_relocations_at`] checks its
/// records, so a bad one writes nothing; the other names' slot lists are
/// skipped unread (their slots hold their entries, pre-written, which the
/// stamp checked).
///
/// # Safety
/// As [`apply_relocations_at`]; neither closure touches the module's bytes.
pub unsafe fn rewrite_pooled_names_at(
    base: *mut u8,
    len: usize,
    module: &ModuleView,
    mut moved: impl FnMut(u32) -> bool,
    rewritten: impl FnMut(u32, usize) -> u64,
) -> Result<(), RelocError> {
    assert!(module.relocs.end <= len && module.hot.end <= len && module.cold.end <= len);
    // SAFETY: in bounds (asserted); the caller keeps the records unwritten.
    let region = unsafe { records_at(base, &module.relocs_names) };
    let mut slots = GroupedSlots::default();
    each_name(region, module, |entry, name| if moved(entry) { slots.read(entry, &name, module) } else { Ok(()) })?;
    // SAFETY: the slots were read for this module, which the caller gives
    // us exclusively.
    unsafe { slots.write_at(base, rewritten) };
    Ok(())
}

/// The module's pooled-name records (`InternedStr` records into the name
/// pool: each slot of each name of its names region), in slot order,
/// validated as every record is; a slot named twice is refused.
pub fn read_pooled_name_relocations(bytes: &[u8], module: &ModuleView) -> Result<Relocations, RelocError> {
    Ok(Relocations {
        from: module.relocs.clone(),
        records: pooled_names_in(&bytes[module.relocs_names.clone()], module)?,
    })
}

fn pooled_names_in(region: &[u8], module: &ModuleView) -> Result<Vec<Reloc>, RelocError> {
    grouped_records(RelocKind::InternedStr, |each| each_name(region, module, each), module)
}

/// The image stream's records (Symbol records, target the group's id), in
/// slot order; a slot in two groups is refused.
fn image_symbols_in(stream: &[u8], module: &ModuleView) -> Result<Vec<Reloc>, RelocError> {
    grouped_records(RelocKind::Symbol, |each| each_group(stream, each), module)
}

/// The records of a grouped stream, of `kind`, each targeting what its
/// group stands for (`groups` hands each group with that target to its
/// argument), in slot order.
fn grouped_records<'a>(
    kind: RelocKind,
    groups: impl FnOnce(&mut dyn FnMut(u32, Group<'a>) -> Result<(), RelocError>) -> Result<(), RelocError>,
    module: &ModuleView,
) -> Result<Vec<Reloc>, RelocError> {
    let (mut records, mut slots) = (Vec::new(), Vec::new());
    groups(&mut |target, group| {
        slots.clear();
        each_slot_of(&group, module, records.len(), &mut slots)?;
        records.extend(slots.iter().map(|&slot| Reloc { slot, target, kind }));
        Ok(())
    })?;
    by_slot(records)
}

/// Records of a grouped stream, sorted by slot; a slot twice is refused.
fn by_slot(mut records: Vec<Reloc>) -> Result<Vec<Reloc>, RelocError> {
    records.sort_unstable_by_key(|r| r.slot);
    if let Some(index) = records.windows(2).position(|w| w[0].slot == w[1].slot) {
        return Err(RelocError::Unsorted { index: index + 1 });
    }
    Ok(records)
}

/// Decodes a names region, handing each name's entry (a file offset,
/// checked to be an object's place in the name pool) and slot list to
/// `each`.
fn each_name<'a>(
    region: &'a [u8],
    module: &ModuleView,
    mut each: impl FnMut(u32, Group<'a>) -> Result<(), RelocError>,
) -> Result<(), RelocError> {
    let mut index = 0;
    each_group(region, |key, name| {
        let entry = (key as usize).checked_mul(16).and_then(|offset| module.names.start.checked_add(offset));
        match entry {
            Some(entry) if entry.is_multiple_of(OBJECT_ALIGN) && module.in_names(entry, MIN_OBJECT) => {
                index += 1;
                each(entry as u32, name)
            }
            _ => Err(RelocError::TargetOutOfBounds { index }),
        }
    })
}

/// Decodes a grouped stream (`reloc_codec::encode_groups`: the names
/// region, the image stream), handing each group's key and slot list to
/// `each`.
fn each_group<'a>(
    stream: &'a [u8],
    mut each: impl FnMut(u32, Group<'a>) -> Result<(), RelocError>,
) -> Result<(), RelocError> {
    let mut groups = GroupsDecoder::new(stream);
    for index in 0.. {
        match groups.next_group().map_err(|e| decode_error(e, index))? {
            Some(group) => each(group.key, group)?,
            None => break,
        }
    }
    Ok(())
}

/// Appends the slots of one group to `slots`, each checked to be a pointer
/// slot of the module (8-aligned by the encoding; what it points at, the
/// group's key, is its reader's to check); `first_index` numbers them in
/// errors.
fn each_slot_of(
    group: &Group,
    module: &ModuleView,
    first_index: usize,
    slots: &mut Vec<u32>,
) -> Result<(), RelocError> {
    let before = slots.len();
    let decoded = group.decode_slots(slots);
    let read = &slots[before..];
    if let Some(at) = read.iter().position(|&slot| !module.owns(slot as usize, 8)) {
        return Err(RelocError::SlotOutOfBounds { index: first_index + at });
    }
    decoded.map_err(|e| decode_error(e, first_index + read.len()))
}

/// The module's four record streams (`records`, its whole byte range:
/// those that need work, the pooled-name records of its names region,
/// those naming the image, those pointing into the archive), merged by
/// slot; a slot in two is refused as out of order.
fn read_all_streams(records: &[u8], module: &ModuleView) -> Result<Vec<Reloc>, RelocError> {
    let at = |r: &Range<usize>| &records[r.start - module.relocs.start..r.end - module.relocs.start];
    let mut merged = read_stream(at(&module.relocs_work), module, 0)?;
    merged = merge_by_slot(merged, pooled_names_in(at(&module.relocs_names), module)?)?;
    merged = merge_by_slot(merged, image_symbols_in(at(&module.relocs_image), module)?)?;
    let internal = read_stream(at(&module.relocs_internal()), module, merged.len())?;
    merge_by_slot(merged, internal)
}

/// Two record lists sorted by slot, as one; a slot in both is refused.
fn merge_by_slot(a: Vec<Reloc>, b: Vec<Reloc>) -> Result<Vec<Reloc>, RelocError> {
    if a.is_empty() || b.is_empty() {
        return Ok(if a.is_empty() { b } else { a });
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if x.slot == y.slot {
            return Err(RelocError::Unsorted { index: merged.len() });
        }
        merged.push(if x.slot < y.slot { a.next() } else { b.next() }.expect("peeked"));
    }
    merged.extend(a.chain(b));
    Ok(merged)
}

/// One record stream, each record validated; `first_index` numbers its
/// records in errors after those of the stream before it.
fn read_stream(records: &[u8], module: &ModuleView, first_index: usize) -> Result<Vec<Reloc>, RelocError> {
    let mut out = Vec::with_capacity(records.len() / 2);
    // Sorted by slot, each slot once (what the shape check relies on),
    // 8-aligned, of a known kind: the decoder checks it.
    each_record(records, first_index, |r, index| {
        check_record(&r, module, index)?;
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// The bounds of one decoded record (record `index` of its module): its
/// slot inside the module's objects and aligned for what it writes, its
/// target an object of the module (or of the name pool, for an interned
/// str) or, for an interior pointer, a byte of the module. (The decoder
/// checked the rest.)
#[inline(always)]
fn check_record(&Reloc { slot, target, kind }: &Reloc, module: &ModuleView, index: usize) -> Result<(), RelocError> {
    let (align, len) = if kind == RelocKind::CodeInit { (OBJECT_ALIGN, MIN_OBJECT) } else { (8, 8) };
    if !(slot as usize).is_multiple_of(align) || !module.owns(slot as usize, len) {
        return Err(RelocError::SlotOutOfBounds { index });
    }
    let inside = |len| {
        module.owns(target as usize, len) || (kind == RelocKind::InternedStr && module.in_names(target as usize, len))
    };
    if kind.targets_object() && (!(target as usize).is_multiple_of(OBJECT_ALIGN) || !inside(MIN_OBJECT)) {
        return Err(RelocError::TargetOutOfBounds { index });
    }
    if kind == RelocKind::Interior && !module.owns(target as usize, 1) {
        return Err(RelocError::TargetOutOfBounds { index });
    }
    Ok(())
}

/// Decodes a record stream, handing each record and its number (from
/// `first_index`, for errors) to `each`; stops at the first error.
#[inline(always)]
fn each_record(
    records: &[u8],
    first_index: usize,
    mut each: impl FnMut(Reloc, usize) -> Result<(), RelocError>,
) -> Result<(), RelocError> {
    let mut decoder = Decoder::new(records);
    for index in first_index.. {
        match decoder.next_record() {
            Ok(Some(r)) => each(r, index)?,
            Ok(None) => break,
            Err(e) => return Err(decode_error(e, index)),
        }
    }
    Ok(())
}

fn decode_error(e: DecodeError, index: usize) -> RelocError {
    match e {
        DecodeError::Malformed => RelocError::Malformed { index },
        DecodeError::BadKind => RelocError::BadKind { index },
        DecodeError::Unsorted => RelocError::Unsorted { index },
    }
}

/// The record bytes at `range` of the mapping at `base`.
///
/// # Safety
/// `range` lies inside the readable mapping, and those bytes are not
/// written while the slice lives (relocation records never are).
unsafe fn records_at<'a>(base: *const u8, range: &Range<usize>) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(base.add(range.start), range.len()) }
}

/// Writes `value` into the pointer slot at file offset `slot` unless it
/// holds it already: a slot right as mapped (where the dump assumed, with
/// the same runtime addresses) is not written, so its page stays clean and
/// shared with other processes. Archives are little-endian, as the only
/// targets (x86-64, aarch64).
///
/// # Safety
/// `slot..slot + 8` lies inside a module whose bytes the caller may write
/// exclusively.
unsafe fn store_slot(base: *mut u8, slot: u32, value: u64) {
    // SAFETY: the caller's contract.
    unsafe {
        let at = base.add(slot as usize).cast::<u64>();
        if at.read_unaligned() != value.to_le() {
            at.write_unaligned(value.to_le());
        }
    }
}

/// Applies the module's relocations to `bytes`, the archive as mapped at
/// `bytes.as_ptr()`. The module must have passed [`ModuleView::verify`].
pub fn apply_relocations(bytes: &mut [u8], module: &ModuleView, fixups: &mut impl Fixups) -> Result<(), RelocError> {
    // SAFETY: `bytes` is an exclusive borrow of all `bytes.len()` bytes.
    unsafe { apply_relocations_at(bytes.as_mut_ptr(), bytes.len(), module, fixups) }
}

/// [`apply_relocations`] through a raw pointer: touches only the module's
/// own bytes (its relocation records, read; its slots, written; the name
/// pool is left to [`Fixups::intern`]) and keeps no
/// reference to the archive across a [`Fixups`] call. A fix-up may run code
/// that serves or relocates another module of the same mapping meanwhile
/// (the interpreter runs Python during allocation), which a `&mut [u8]` of
/// the whole archive held across the call would forbid.
///
/// # Safety
/// `base..base + len` is readable and writable for the whole call, and no
/// one else reads or writes this module's bytes during it.
pub unsafe fn apply_relocations_at(
    base: *mut u8,
    len: usize,
    module: &ModuleView,
    fixups: &mut impl Fixups,
) -> Result<(), RelocError> {
    assert!(module.relocs.end <= len && module.hot.end <= len && module.cold.end <= len && module.names.end <= len);
    // SAFETY: in bounds (asserted); the caller keeps the records unwritten.
    let records = unsafe { records_at(base, &module.relocs) };
    let relocs = Relocations { from: module.relocs.clone(), records: read_all_streams(records, module)? };
    // SAFETY: forwarded from the caller; `relocs` are the module's, just read.
    unsafe { apply_read_relocations_at(base, len, module, &relocs, fixups) }
}

/// [`apply_relocations_at`] with the module's records already read (by the
/// shape check, which needs them too).
///
/// # Safety
/// As [`apply_relocations_at`].
pub unsafe fn apply_read_relocations_at(
    base: *mut u8,
    len: usize,
    module: &ModuleView,
    relocs: &Relocations,
    fixups: &mut impl Fixups,
) -> Result<(), RelocError> {
    assert!(module.hot.end <= len && module.cold.end <= len && module.names.end <= len);
    assert_eq!(relocs.from, module.relocs, "relocations of another module");
    // SAFETY: slots are 8-aligned and inside the module (checked by
    // read_stream), hence in bounds; the caller gives us the module's bytes
    // exclusively.
    let store = |r: &Reloc, value: u64| unsafe { store_slot(base, r.slot, value) };
    let base_addr = base as u64;
    // Resolve every symbol before writing anything.
    let mut symbols = Vec::with_capacity(relocs.len());
    for r in relocs.iter() {
        symbols.push(match r.kind.slot_value(r.target, base_addr) {
            SlotValue::Symbol(id) => fixups.symbol(id).ok_or(RelocError::UnknownSymbol { id })? as u64,
            _ => 0,
        });
    }
    for (r, sym) in relocs.iter().zip(&symbols) {
        match r.kind.slot_value(r.target, base_addr) {
            SlotValue::Address(a) => store(r, a),
            SlotValue::Symbol(_) => store(r, *sym),
            // Filled in below, once the module is relocated.
            SlotValue::FrozenSetOf(_) => store(r, 0),
            SlotValue::Interned(_) | SlotValue::CodeState => {}
        }
    }
    // Interning and set building read the objects, so they come last,
    // in this order.
    for r in relocs.iter() {
        if let SlotValue::Interned(string) = r.kind.slot_value(r.target, base_addr) {
            // SAFETY: the target was bounds- and alignment-checked in
            // read_stream, and the module's other slots are relocated.
            let value = unsafe { fixups.intern(string as usize) }.map_err(RelocError::Runtime)?;
            store(r, value as u64);
        }
    }
    for r in relocs.iter() {
        if let SlotValue::FrozenSetOf(tuple) = r.kind.slot_value(r.target, base_addr) {
            // SAFETY: the target was bounds-checked and all of the module's slots,
            // including the tuple's items, are relocated by now.
            let set = unsafe { fixups.frozenset(tuple as usize) }.map_err(RelocError::Runtime)?;
            store(r, set as u64);
        }
    }
    for r in relocs.iter().filter(|r| r.kind.slot_value(r.target, base_addr) == SlotValue::CodeState) {
        // SAFETY: the slot is a 16-aligned object start inside the module
        // (checked above), and the module is fully relocated.
        unsafe { fixups.init_code(base_addr as usize + r.slot as usize) };
    }
    Ok(())
}
