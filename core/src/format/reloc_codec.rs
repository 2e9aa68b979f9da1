//! The byte encoding of a module's relocation records (format 4) and of its
//! grouped streams (its names region and image stream, by target, format
//! 10): the one place that writes ([`encode`], [`encode_names_region`],
//! [`encode_image_stream`], used by the builder) and reads ([`Decoder`],
//! [`GroupsDecoder`], used by `reloc`) them.
//!
//! A record is a LEB128 head, `(slot − previous slot) / 8 << 3 | kind`, then
//! a payload by kind: Symbol its id, CodeInit nothing, the others the
//! zigzag of `target − slot`. Slots ascend, so deltas are small, and
//! targets are mostly near their slots (a module's objects are laid out in
//! the order the object graph is walked): most records take 2–3 bytes
//! instead of format 3's 12. The slot values the dump pre-wrote are never
//! read to find a target: the records alone say what relocation writes.

use super::layout::{Reloc, RelocKind};
use std::collections::BTreeMap;

/// Bits of the head that hold the kind.
const KIND_BITS: u32 = 3;

/// Why a record could not be decoded (the reader maps it to a `RelocError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream ends inside a record, or a number does not fit.
    Malformed,
    /// The head's kind bits name no kind.
    BadKind,
    /// The slot does not come after the previous record's.
    Unsorted,
}

/// The records' bytes. Records must be sorted by slot, each slot once,
/// slots 8-aligned (what the reader checks).
pub fn encode(records: &[Reloc]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 3);
    let mut previous = 0u32;
    for r in records {
        debug_assert!(r.slot > previous && r.slot % 8 == 0, "records out of order or misaligned");
        let delta_words = u64::from((r.slot - previous) / 8);
        put_varint(&mut out, delta_words << KIND_BITS | u64::from(r.kind as u32));
        match r.kind {
            RelocKind::Symbol => put_varint(&mut out, u64::from(r.target)),
            RelocKind::CodeInit => {}
            _ => put_varint(&mut out, zigzag(i64::from(r.target) - i64::from(r.slot))),
        }
        previous = r.slot;
    }
    out
}

/// Reads records one by one from untrusted bytes: every number is checked
/// to fit, so a record it yields has a slot above the previous one and
/// 8-aligned, and a kind that exists; bounds are the caller's to check.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
    previous: u32,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0, previous: 0 }
    }

    /// The next record, `Ok(None)` at the end of the stream.
    #[inline(always)]
    pub fn next_record(&mut self) -> Result<Option<Reloc>, DecodeError> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let head = self.varint()?;
        let kind = RelocKind::from_u32((head & ((1 << KIND_BITS) - 1)) as u32).ok_or(DecodeError::BadKind)?;
        // A slot delta of 0 repeats a slot; one past 4 GiB fails the u32
        // conversion below, as does any head above 2^35 (no overflow here).
        let delta = head >> KIND_BITS << 3;
        if delta == 0 {
            return Err(DecodeError::Unsorted);
        }
        if head >> 35 != 0 {
            return Err(DecodeError::Malformed);
        }
        let slot = u32::try_from(u64::from(self.previous) + delta).map_err(|_| DecodeError::Malformed)?;
        let target = match kind {
            RelocKind::Symbol => u32::try_from(self.varint()?).map_err(|_| DecodeError::Malformed)?,
            RelocKind::CodeInit => 0,
            _ => {
                let target = i64::from(slot) + unzigzag(self.varint()?);
                u32::try_from(target).map_err(|_| DecodeError::Malformed)?
            }
        };
        self.previous = slot;
        Ok(Some(Reloc { slot, target, kind }))
    }

    /// One LEB128 number of at most 64 bits.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Most numbers are one byte (slot deltas, nearby targets): the
        // common case without the loop. A serving process decodes every
        // record of each module it imports.
        if let Some(&byte) = self.bytes.get(self.at) {
            if byte & 0x80 == 0 {
                self.at += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_long()
    }

    /// A number of two bytes or more (targets in the name pool, far
    /// slots), at most ten bytes; the position moves only past a whole one.
    fn varint_long(&mut self) -> Result<u64, DecodeError> {
        let mut at = self.at;
        let mut value = 0u64;
        let mut shift = 0;
        while shift < 64 {
            let byte = *self.bytes.get(at).ok_or(DecodeError::Malformed)?;
            at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                // The tenth byte holds bit 63 alone.
                if shift == 63 && byte > 1 {
                    return Err(DecodeError::Malformed);
                }
                self.at = at;
                return Ok(value);
            }
            shift += 7;
        }
        Err(DecodeError::Malformed)
    }
}

/// Records grouped by what they point at: per group, keys ascending, the
/// LEB128 delta of `key + 1` from the previous group's (0 before the
/// first), the byte length of its slot list (at least 1), then its slots,
/// ascending, as LEB128 deltas in 8-byte words from the previous slot (0
/// before the first). A reader resolves each key once, and may skip a
/// group's list whole.
fn encode_groups(groups: BTreeMap<u32, Vec<u32>>, records: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(records * 2 + groups.len() * 3);
    let mut previous_units = 0u64;
    let mut list = Vec::new();
    for (key, mut slots) in groups {
        let units = u64::from(key) + 1;
        put_varint(&mut out, units - previous_units);
        previous_units = units;
        slots.sort_unstable();
        list.clear();
        let mut previous_slot = 0;
        for slot in slots {
            debug_assert!(slot > previous_slot && slot.is_multiple_of(8), "a slot twice, or misaligned");
            put_varint(&mut list, u64::from((slot - previous_slot) / 8));
            previous_slot = slot;
        }
        put_varint(&mut out, list.len() as u64);
        out.extend(&list);
    }
    out
}

/// A module's names region (`entry::RELOC_NAMES_SIZE`): its pooled-name
/// records (`InternedStr` records into the name pool, whose `target`s lie
/// at or after `pool_start`), grouped by the entry they name: the key is
/// the entry's offset in the pool / 16. A process that found another str
/// for a few names reads those names' slots and skips the others' lists.
pub fn encode_names_region(pooled: &[Reloc], pool_start: u32) -> Vec<u8> {
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for r in pooled {
        debug_assert!(
            r.kind == RelocKind::InternedStr && r.target >= pool_start && (r.target - pool_start).is_multiple_of(16)
        );
        groups.entry((r.target - pool_start) / 16).or_default().push(r.slot);
    }
    encode_groups(groups, pooled.len())
}

/// A module's image stream (`entry::RELOC_IMAGE_SIZE`): its Symbol records
/// naming statics of the interpreter's image, grouped by symbol id (the
/// key): each type or singleton resolved once, then written into its slots.
pub fn encode_image_stream(symbols: &[Reloc]) -> Vec<u8> {
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for r in symbols {
        debug_assert!(r.kind == RelocKind::Symbol);
        groups.entry(r.target).or_default().push(r.slot);
    }
    encode_groups(groups, symbols.len())
}

/// One group of a grouped stream: its key, and the bytes of its slot list
/// ([`Group::decode_slots`] reads them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group<'a> {
    pub key: u32,
    pub slots: &'a [u8],
}

impl Group<'_> {
    /// Appends the slots of the list to `out`, ascending; a slot that does
    /// not come after the one before, or past 4 GiB, is refused (those
    /// before it are appended).
    pub fn decode_slots(&self, out: &mut Vec<u32>) -> Result<(), DecodeError> {
        let mut decoder = Decoder::new(self.slots);
        let mut slot = 0u64;
        while decoder.at < self.slots.len() {
            let words = decoder.varint()?;
            if words == 0 {
                return Err(DecodeError::Unsorted);
            }
            // Below 2^32 words, the sum cannot overflow; past 4 GiB is refused.
            slot += words.min(1 << 32) * 8;
            out.push(u32::try_from(slot).map_err(|_| DecodeError::Malformed)?);
        }
        Ok(())
    }
}

/// Reads a grouped stream's groups one by one from untrusted bytes: each
/// key above the one before and below 2^32, each slot list inside the
/// stream and not empty; the slots are read only when asked for.
pub struct GroupsDecoder<'a> {
    decoder: Decoder<'a>,
    units: u64,
}

impl<'a> GroupsDecoder<'a> {
    pub fn new(stream: &'a [u8]) -> Self {
        Self { decoder: Decoder::new(stream), units: 0 }
    }

    /// The next group, `Ok(None)` at the end of the stream.
    pub fn next_group(&mut self) -> Result<Option<Group<'a>>, DecodeError> {
        let d = &mut self.decoder;
        if d.at == d.bytes.len() {
            return Ok(None);
        }
        let delta = d.varint()?;
        if delta == 0 {
            return Err(DecodeError::Unsorted);
        }
        self.units = self.units.checked_add(delta).ok_or(DecodeError::Malformed)?;
        let key = u32::try_from(self.units - 1).map_err(|_| DecodeError::Malformed)?;
        let len = usize::try_from(d.varint()?).map_err(|_| DecodeError::Malformed)?;
        let end = d.at.checked_add(len).filter(|&end| len > 0 && end <= d.bytes.len()).ok_or(DecodeError::Malformed)?;
        let slots = &d.bytes[d.at..end];
        d.at = end;
        Ok(Some(Group { key, slots }))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Reloc>, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut out = Vec::new();
        while let Some(r) = d.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_every_kind_and_extreme() {
        let records = [
            Reloc { slot: 8, target: 0, kind: RelocKind::Symbol },
            Reloc { slot: 16, target: u32::MAX, kind: RelocKind::Symbol },
            Reloc { slot: 4096, target: 0, kind: RelocKind::Object },
            Reloc { slot: 4104, target: u32::MAX - 15, kind: RelocKind::InternedStr },
            Reloc { slot: 1 << 30, target: 16, kind: RelocKind::FrozenSet },
            Reloc { slot: (1 << 30) + 16, target: 0, kind: RelocKind::CodeInit },
            Reloc { slot: u32::MAX - 7, target: (1 << 30) + 3, kind: RelocKind::Interior },
        ];
        assert_eq!(decode_all(&encode(&records)).unwrap(), records);
    }

    fn decode_region(region: &[u8]) -> Result<Vec<(u32, Vec<u32>)>, DecodeError> {
        let mut groups = GroupsDecoder::new(region);
        let mut out = Vec::new();
        while let Some(group) = groups.next_group()? {
            let mut slots = Vec::new();
            group.decode_slots(&mut slots)?;
            out.push((group.key, slots));
        }
        Ok(out)
    }

    #[test]
    fn a_names_region_groups_the_slots_by_entry() {
        let pooled = |slot, target| Reloc { slot, target, kind: RelocKind::InternedStr };
        let pool = 1 << 20;
        // Slots in slot order, as the builder has them: entries interleave.
        let records = [pooled(64, pool + 32), pooled(72, pool), pooled(4096, pool + 32), pooled(1 << 30, pool)];
        let region = encode_names_region(&records, pool);
        assert_eq!(decode_region(&region).unwrap(), vec![(0, vec![72, 1 << 30]), (2, vec![64, 4096])]);
        assert_eq!(decode_region(&[]).unwrap(), vec![]);
        // Entry 0: one byte of delta, one of length, one slot of 9 words.
        assert_eq!(encode_names_region(&[pooled(72, pool)], pool), vec![1, 1, 9]);
    }

    #[test]
    fn an_image_stream_groups_the_slots_by_symbol() {
        let symbol = |slot, target| Reloc { slot, target, kind: RelocKind::Symbol };
        let records = [symbol(16, 18), symbol(40, 0), symbol(56, 18), symbol(1 << 20, 1700)];
        let stream = encode_image_stream(&records);
        assert_eq!(decode_region(&stream).unwrap(), vec![(0, vec![40]), (18, vec![16, 56]), (1700, vec![1 << 20])]);
    }

    #[test]
    fn bad_grouped_streams_are_refused() {
        assert_eq!(decode_region(&[1, 1, 9, 0, 1, 9]), Err(DecodeError::Unsorted)); // the same entry twice
        assert_eq!(decode_region(&[1, 0]), Err(DecodeError::Malformed)); // a name without slots
        assert_eq!(decode_region(&[1, 2, 9]), Err(DecodeError::Malformed)); // a list past the region
        assert_eq!(decode_region(&[1, 2, 9, 0]), Err(DecodeError::Unsorted)); // a slot named twice
        assert_eq!(decode_region(&[0x80]), Err(DecodeError::Malformed));
        let mut far = Vec::new();
        put_varint(&mut far, (1 << 32) + 1); // a key of 2^32
        far.extend([1, 1]);
        assert_eq!(decode_region(&far), Err(DecodeError::Malformed));
        let mut far_slot = vec![1, 5];
        put_varint(&mut far_slot, 1 << 29); // a slot at 4 GiB
        assert_eq!(decode_region(&far_slot), Err(DecodeError::Malformed));
    }

    #[test]
    fn numbers_read_the_same_however_many_bytes_follow() {
        // Every length of number, at every distance from the end of the
        // stream (a number never reads past itself).
        for bits in 0..64 {
            let value = (1u64 << bits) | ((bits as u64 * 0x0101_0101_0101_0101) & ((1 << bits) - 1));
            let mut number = Vec::new();
            put_varint(&mut number, value);
            for trailing in 0..10 {
                let mut bytes = number.clone();
                bytes.extend(std::iter::repeat_n(0x80, trailing));
                let mut decoder = Decoder::new(&bytes);
                assert_eq!(decoder.varint(), Ok(value), "{value:#x} with {trailing} bytes after");
                assert_eq!(decoder.at, number.len());
            }
        }
    }

    #[test]
    fn near_records_are_small() {
        let records = [
            Reloc { slot: 1 << 20, target: 5, kind: RelocKind::Symbol },
            Reloc { slot: (1 << 20) + 8, target: (1 << 20) + 64, kind: RelocKind::Object },
        ];
        // A 3-byte head for the first slot (2^17 words from 0), a 1-byte id;
        // then a 1-byte head and a 1-byte target (56 bytes ahead).
        assert_eq!(encode(&records).len(), 3 + 1 + 1 + 1);
    }

    #[test]
    fn refuses_bad_streams() {
        assert_eq!(decode_all(&[0x80]), Err(DecodeError::Malformed)); // ends inside a number
        assert_eq!(decode_all(&[(1 << 3) | 3]), Err(DecodeError::Malformed)); // Symbol without id
        assert_eq!(decode_all(&[(1 << 3) | 7, 0]), Err(DecodeError::BadKind));
        assert_eq!(decode_all(&[0, 0]), Err(DecodeError::BadKind));
        assert_eq!(decode_all(&[1, 0]), Err(DecodeError::Unsorted)); // slot delta 0
        assert_eq!(decode_all(&[0xff; 11]), Err(DecodeError::Malformed)); // too long
                                                                          // A slot beyond 4 GiB.
        let mut far = Vec::new();
        put_varint(&mut far, (1u64 << 29) << 3 | 5);
        assert_eq!(decode_all(&far), Err(DecodeError::Malformed));
        // A target below 0.
        let mut below = Vec::new();
        put_varint(&mut below, 1 << 3 | 1);
        put_varint(&mut below, zigzag(-9));
        assert_eq!(decode_all(&below), Err(DecodeError::Malformed));
    }
}
