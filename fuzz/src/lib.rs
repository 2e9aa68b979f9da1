//! The fuzz targets' entry points. The reader's contract, the fake
//! fix-ups, mutations and resealing are the shared test kit's
//! (`cds-testkit`, also used by core/tests); what is fuzz-only is here:
//! reading the input as decisions ([`Input`]), archives whose shape the
//! input chooses ([`build_archive`]) and the seed corpus ([`seed_archives`]).

mod input;
mod seeds;
mod shapes;

pub use cds_testkit::Outcome;
pub use input::Input;
pub use seeds::seed_archives;
pub use shapes::{build_archive, check_built, Built};

use cds_testkit::{check_archive, mutate, reseal, CheckOptions, Choices, Reseal};

/// The `archive_reader` target: `data` as an archive, as is and resealed.
/// Returns how far each of the two got.
pub fn run_archive_reader(data: &[u8]) -> [Outcome; 2] {
    // A few names to look up besides each module's own: fixed ones, and the
    // input's last bytes (often a module name or origin in the strings).
    let tail = String::from_utf8_lossy(&data[data.len().saturating_sub(12)..]);
    let names = ["", "a", "pkg", "zeta", "\u{10ffff}", &tail];
    let opts = CheckOptions {
        // Relocation checks must hold whatever the checksum says.
        relocate_unverified: true,
        // Now and then, a fix-up that fails halfway.
        fail_intern_at: (data.len() % 7 == 3).then_some(1),
    };
    let raw = check_archive(data, &names, opts);
    let mut sealed = data.to_vec();
    reseal(&mut sealed, Reseal::ALL);
    let sealed = check_archive(&sealed, &names, CheckOptions { relocate_unverified: false, ..opts });
    [raw, sealed]
}

/// The `mutated_archive` target: build an archive as `data` describes,
/// check it, mutate it, maybe reseal it, check it again.
pub fn run_mutated_archive(data: &[u8]) -> Outcome {
    let mut input = Input::new(data);
    let built = build_archive(&mut input);
    check_built(&built);
    let mut bytes = built.bytes.clone();
    mutate(&mut input, &mut bytes);
    let bits = input.u8();
    reseal(&mut bytes, Reseal::from_bits(bits));
    let opts = CheckOptions { relocate_unverified: bits & 0x10 != 0, fail_intern_at: (bits & 0x20 != 0).then_some(1) };
    let names: Vec<&str> = built.names.iter().map(String::as_str).chain(["", "b", "zzz"]).collect();
    check_archive(&bytes, &names, opts)
}
