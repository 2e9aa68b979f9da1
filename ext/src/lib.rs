//! The `_cds` extension module for a stock CPython: cds-core built against
//! the installed interpreter's headers (cpython-sys, `cds_stock`). The
//! module's entry point is the core's own `PyInit__cds`, the same as the
//! patched interpreter's built-in; this crate only makes it a shared
//! library. What a stock interpreter cannot give without the patches is
//! listed in docs/STOCK.md.

pub use cds_core::PyInit__cds;
