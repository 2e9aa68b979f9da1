//! The byte encoding of a module's relocation records (format 4) and of its
//! list of name pool entries (format 8): the one place that writes
//! ([`encode`], [`encode_names`], used by the builder) and reads
//! ([`Decoder`], [`decode_names`], used by `reloc`) them.
//!
//! A record is a LEB128 head, `(slot − previous slot) / 8 << 3 | kind`, then
//! a payload by kind: Symbol its id, CodeInit nothing, the others the
//! zigzag of `target − slot`. Slots ascend, so deltas are small, and
//! targets are mostly near their slots (a module's objects are laid out in
//! the order the object graph is walked): most records take 2–3 bytes
//! instead of format 3's 12. The slot values the dump pre-wrote are never
//! read to find a target: the records alone say what relocation writes.

use super::layout::{Reloc, RelocKind};

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

/// A module's list of name pool entries (`entry::RELOC_NAMES_SIZE`): the
/// distinct offsets inside the pool its pooled-name records target,
/// ascending, each 16-aligned, as LEB128 deltas of `offset / 16 + 1` from
/// the previous one's (0 before the first): every delta is at least 1.
pub fn encode_names(offsets: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 2);
    let mut previous = 0u64;
    for &offset in offsets {
        let units = u64::from(offset / 16) + 1;
        debug_assert!(units > previous && offset % 16 == 0, "names out of order or misaligned");
        put_varint(&mut out, units - previous);
        previous = units;
    }
    out
}

/// The offsets [`encode_names`] wrote, from untrusted bytes: each above the
/// one before (a zero delta is refused) and within 4 GiB; bounds are the
/// caller's to check.
pub fn decode_names(bytes: &[u8]) -> Result<Vec<u32>, DecodeError> {
    let mut decoder = Decoder::new(bytes);
    let mut out = Vec::with_capacity(bytes.len());
    let mut units = 0u64;
    while decoder.at < bytes.len() {
        let delta = decoder.varint()?;
        if delta == 0 {
            return Err(DecodeError::Unsorted);
        }
        units = units.checked_add(delta).ok_or(DecodeError::Malformed)?;
        let offset = (units - 1).checked_mul(16).and_then(|o| u32::try_from(o).ok());
        out.push(offset.ok_or(DecodeError::Malformed)?);
    }
    Ok(out)
}

/// A module's names region (`entry::RELOC_NAMES_SIZE`): the byte length
/// of its list of names, the list ([`encode_names`]), then its pooled-name
/// records as a record stream ([`encode`]).
pub fn encode_names_region(offsets: &[u32], pooled: &[Reloc]) -> Vec<u8> {
    let list = encode_names(offsets);
    let mut out = Vec::with_capacity(list.len() + pooled.len() * 3 + 3);
    put_varint(&mut out, list.len() as u64);
    out.extend(list);
    out.extend(encode(pooled));
    out
}

/// The list and the pooled-name record stream of a names region, from
/// untrusted bytes (the list's length must fit in the region).
pub fn split_names_region(region: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    if region.is_empty() {
        return Ok((&[], &[]));
    }
    let mut decoder = Decoder::new(region);
    let len = usize::try_from(decoder.varint()?).map_err(|_| DecodeError::Malformed)?;
    let end = decoder.at.checked_add(len).filter(|&end| end <= region.len()).ok_or(DecodeError::Malformed)?;
    Ok((&region[decoder.at..end], &region[end..]))
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

    #[test]
    fn names_round_trip_and_bad_lists_are_refused() {
        let names = [0, 16, 32, 4096, 1 << 30, u32::MAX - 15];
        assert_eq!(decode_names(&encode_names(&names)).unwrap(), names);
        assert_eq!(decode_names(&[]).unwrap(), Vec::<u32>::new());
        assert_eq!(decode_names(&[1, 0]), Err(DecodeError::Unsorted)); // the same entry twice
        assert_eq!(decode_names(&[0x80]), Err(DecodeError::Malformed));
        let mut far = Vec::new();
        put_varint(&mut far, (1 << 28) + 1); // 4 GiB
        assert_eq!(decode_names(&far), Err(DecodeError::Malformed));
    }

    #[test]
    fn a_names_region_splits_into_its_list_and_its_records() {
        let pooled = [Reloc { slot: 64, target: 4096, kind: RelocKind::InternedStr }];
        let region = encode_names_region(&[0, 32], &pooled);
        let (list, records) = split_names_region(&region).unwrap();
        assert_eq!(decode_names(list).unwrap(), vec![0, 32]);
        assert_eq!(decode_all(records).unwrap(), pooled);
        assert_eq!(split_names_region(&[]).unwrap(), (&[][..], &[][..]));
        assert_eq!(split_names_region(&[5, 1]), Err(DecodeError::Malformed)); // a list longer than the region
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
