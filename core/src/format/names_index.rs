//! The name pool's index: which pool entry holds a given name.
//!
//! A name that other code interns first (a C extension module loading, a
//! module imported without the archive) would otherwise become the
//! interpreter's interned str, and every archived slot naming it would be
//! rewritten in every process. With the index, the interpreter's interning
//! (patch `0009-unicodeobject-cds-pooled-names`, 3.13) asks whether a pool
//! holds an equal name and interns the archive's str instead, so those
//! slots stay as the dump wrote them (docs/DESIGN.md, "Pooled names").
//!
//! The table: `slots` slots of [`SLOT_SIZE`] bytes, each `(tag u32, entry
//! u32)`, where `entry` is 1 + the entry's pool offset / 16 (0: empty) and
//! `tag` the high half of the name's [`hash`]. Open addressing with linear
//! probing from slot `low half × slots >> 32`, at most half full.
//!
//! The reader takes the table as hints, never as facts: each entry it names
//! is shape-checked and compared with the name in full before it is used,
//! so a corrupt table costs a miss, never a wrong name, and a probe stops
//! after [`MAX_PROBE`] slots whatever the table holds.

use super::layout::{get_u32, put_u32, OBJECT_ALIGN};
use std::ops::Range;

/// Bytes per slot: tag, then entry.
pub const SLOT_SIZE: usize = 8;

/// The most slots one probe reads, whatever the table holds: a name
/// further from its first slot (rare at half full) is a miss, and a forged
/// table without empty slots costs a bounded probe per name.
pub const MAX_PROBE: usize = 64;

/// The hash of a name: its characters' bytes, seeded with `tag`, which says
/// how they are stored (the interpreter's kind and ASCII bits), so that two
/// names are equal only when tags and bytes both are.
pub fn hash(tag: u8, data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(data, u64::from(tag))
}

/// The slot count for `entries` names: at most half full, never zero, so
/// that a name the pool lacks (half of what a process interns) is known
/// absent after two or three slots on average.
pub fn slots_for(entries: usize) -> usize {
    (entries * 2).max(1)
}

fn first_slot(hash: u64, slots: usize) -> usize {
    (((hash & 0xffff_ffff) * slots as u64) >> 32) as usize
}

/// The table for pool entries `(pool offset, hash)`, in the given order.
pub fn build(entries: &[(usize, u64)]) -> Vec<u8> {
    let slots = slots_for(entries.len());
    let mut table = vec![0u8; slots * SLOT_SIZE];
    for &(offset, hash) in entries {
        let mut slot = first_slot(hash, slots);
        while get_u32(&table, slot * SLOT_SIZE + 4) != 0 {
            slot = (slot + 1) % slots;
        }
        put_u32(&mut table, slot * SLOT_SIZE, (hash >> 32) as u32);
        put_u32(&mut table, slot * SLOT_SIZE + 4, (offset / OBJECT_ALIGN + 1) as u32);
    }
    table
}

/// A table read from an archive (untrusted: see the module comment).
pub struct NamesIndex<'a> {
    table: &'a [u8],
}

impl<'a> NamesIndex<'a> {
    /// The table in `bytes[range]`, a validated range of whole slots.
    pub fn new(bytes: &'a [u8], range: Range<usize>) -> Self {
        Self { table: &bytes[range] }
    }

    /// The pool offsets the table offers for a name of `hash`, in probe
    /// order: entries whose tag matches, until an empty slot, a full lap or
    /// [`MAX_PROBE`] slots.
    pub fn candidates(&self, hash: u64) -> Candidates<'a> {
        let slots = self.table.len() / SLOT_SIZE;
        let next = if slots == 0 { 0 } else { first_slot(hash, slots) };
        Candidates { table: self.table, tag: (hash >> 32) as u32, next, left: slots.min(MAX_PROBE) }
    }
}

/// The probe of one name (see [`NamesIndex::candidates`]).
pub struct Candidates<'a> {
    table: &'a [u8],
    tag: u32,
    /// The next slot to read.
    next: usize,
    /// Slots the probe may still read.
    left: usize,
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.left > 0 {
            let at = self.next * SLOT_SIZE;
            let (tag, entry) = (get_u32(self.table, at), get_u32(self.table, at + 4));
            if entry == 0 {
                self.left = 0;
                return None;
            }
            self.left -= 1;
            self.next += 1;
            if self.next * SLOT_SIZE == self.table.len() {
                self.next = 0;
            }
            if tag == self.tag {
                return Some((entry as usize - 1) * OBJECT_ALIGN);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<(usize, u64, &'static [u8])> {
        let words: [&[u8]; 6] = [b"signal", b"default_factory", b"x", b"", b"__init__", b"unregister"];
        words.iter().enumerate().map(|(i, w)| (i * 48, hash(1 | 8, w), *w)).collect()
    }

    #[test]
    fn every_entry_is_found_first_among_its_tag() {
        let names = names();
        let pairs: Vec<(usize, u64)> = names.iter().map(|&(o, h, _)| (o, h)).collect();
        let bytes = build(&pairs);
        let index = NamesIndex::new(&bytes, 0..bytes.len());
        for (offset, h, _) in names {
            assert!(index.candidates(h).any(|c| c == offset));
        }
        assert_eq!(index.candidates(hash(1 | 8, b"absent")).count(), 0);
    }

    #[test]
    fn tag_and_bytes_both_decide() {
        assert_ne!(hash(1 | 8, b"ab"), hash(1, b"ab"));
        assert_ne!(hash(2, b"ab\0\0"), hash(2, b"ab\0\x01"));
    }

    #[test]
    fn a_full_or_garbage_table_ends_its_probe() {
        for slots in [3, MAX_PROBE + 100] {
            let full = vec![0xffu8; slots * SLOT_SIZE];
            let index = NamesIndex::new(&full, 0..full.len());
            assert_eq!(index.candidates(u64::MAX).count(), slots.min(MAX_PROBE));
        }
        let empty = NamesIndex::new(&[], 0..0);
        assert_eq!(empty.candidates(7).count(), 0);
    }

    #[test]
    fn the_table_is_half_full_at_most() {
        for n in [0, 1, 3, 4, 1000] {
            assert!(slots_for(n) >= n * 2 && slots_for(n) >= 1);
        }
    }
}
