//! Property tests of the reader on corrupt bytes: the stable-Rust, always-run
//! companion of the cargo-fuzz targets in fuzz/ (docs/RELIABILITY.md), with
//! the same contract, mutations and resealing (the `cds-testkit` crate).
//!
//! A small deterministic PRNG drives truncations and multi-byte mutations
//! of the sample archive, with and without recomputing the checksums (so
//! mutations also reach the checks behind them). Single flipped bits are
//! tested in format.rs.

use cds_core::format::*;
use cds_testkit::{check_archive, mutate, reseal, sample_archive, CheckOptions, Choices, Outcome, Reseal, EXPECT};

/// SplitMix64: tiny, deterministic, good enough to pick offsets.
struct Rng(u64);

impl Choices for Rng {
    fn u8(&mut self) -> u8 {
        self.u32() as u8
    }
    fn u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }
}

/// The reader over `b`, relocating modules whose checksum fails too.
fn check_all(b: &[u8]) -> Outcome {
    check_archive(
        b,
        &["", "a", "pkg", "zz", "\u{10ffff}"],
        CheckOptions { relocate_unverified: true, ..Default::default() },
    )
}

#[test]
fn sample_passes_every_check() {
    let out = check_all(&sample_archive());
    assert!(out.parsed);
    assert_eq!((out.modules, out.verified, out.relocated), (3, 3, 3));
}

#[test]
fn every_truncation_is_refused() {
    let b = sample_archive();
    for len in 0..b.len() {
        assert!(Archive::parse(&b[..len], &EXPECT).is_err(), "truncated to {len}");
    }
    // Even with the recorded size and every checksum recomputed to match, a
    // truncated archive is refused: its last region now ends past the file.
    for len in 0..b.len() {
        let mut c = b[..len].to_vec();
        reseal(&mut c, Reseal::ALL);
        assert!(!check_all(&c).parsed, "resealed truncation to {len} accepted");
    }
}

#[test]
fn random_mutations_are_refused_or_harmless() {
    let b = sample_archive();
    let mut rng = Rng(0x00c0_ffee);
    let (mut parsed, mut relocated, mut refused_later) = (0, 0, 0);
    for iter in 0..20_000 {
        let mut c = b.clone();
        mutate(&mut rng, &mut c);
        // A quarter as is, the rest resealed in part or in full.
        let bits = if iter % 4 == 0 { 0 } else { rng.u8() | if iter % 2 == 1 { 0b1111 } else { 0 } };
        reseal(&mut c, Reseal::from_bits(bits));
        let opts = CheckOptions { relocate_unverified: iter % 3 == 0, fail_intern_at: (iter % 5 == 0).then_some(1) };
        let out = check_archive(&c, &[], opts);
        parsed += out.parsed as usize;
        relocated += out.relocated;
        refused_later += out.modules - out.relocated.min(out.modules);
    }
    // The mutations must reach the deep checks, or this test proves little.
    assert!(parsed > 2_000, "only {parsed} mutants parsed");
    assert!(relocated > 2_000, "only {relocated} modules relocated");
    assert!(refused_later > 500, "only {refused_later} modules refused by verify or relocation");
    eprintln!(
        "{parsed} mutants parsed, {relocated} modules relocated, {refused_later} refused by verify or relocation"
    );
}
