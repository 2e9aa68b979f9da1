//! The test kit of the archive reader (`cds_core::format`): what
//! `core/tests/` and the cargo-fuzz targets in `fuzz/` share, held once.
//!
//! - [`samples`]: the interpreter a sample archive claims to come from,
//!   module metadata, and a sample archive using every relocation kind;
//! - [`fixups`]: a fake [`Fixups`](cds_core::format::Fixups) that never
//!   dereferences the addresses it is given;
//! - [`fields`]: little-endian field access and the lists of header and
//!   table-entry fields that mutations aim at;
//! - [`reseal`]: recomputing checksums and the file size after a mutation;
//! - [`records`]: reading and replacing a module's relocation records;
//! - [`mutate`]: structure-aware mutations, driven by any [`Choices`];
//! - [`contract`]: the reader's contract, asserted on any bytes.

pub mod contract;
pub mod fields;
pub mod fixups;
pub mod mutate;
pub mod records;
pub mod reseal;
pub mod samples;

pub use contract::{check_archive, claimed_expectations, CheckOptions, Outcome};
pub use fixups::{fake_frozenset, fake_symbol, FakeFixups, SYMBOL_LIMIT};
pub use mutate::{mutate, Choices};
pub use reseal::{reseal, Reseal};
pub use samples::{meta, sample_archive, EXPECT, HEX, ID};
