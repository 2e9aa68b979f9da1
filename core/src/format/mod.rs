//! The archive file format, independent of any interpreter.
//!
//! Everything here works on plain bytes: laying an archive out
//! ([`builder`]), validating untrusted bytes ([`reader`]) and applying
//! relocations to a module's objects ([`reloc`]). The CPython glue decides what
//! the bytes of an object are; this module decides where they go and checks
//! every offset before anyone follows it. `docs/FORMAT.md` is the byte-level
//! description; keep the two in step.

pub mod builder;
pub mod compile;
pub mod layout;
pub mod names_index;
pub mod reader;
pub mod reloc;
pub mod reloc_codec;

pub use builder::{ArchiveBuilder, ModuleBuilder, ModuleMeta, Region, RegionRef, Target};
pub use compile::CompileSettings;
pub use layout::*;
pub use reader::{Archive, Expectations, FormatError, ModuleView};
pub use reloc::{
    apply_read_relocations_at, apply_relocations, apply_relocations_at, read_image_relocations, read_image_symbols_at,
    read_names, read_pooled_name_relocations, read_relocations, read_work_relocations, rewrite_pooled_names_at, Fixups,
    ImageSymbols, RelocError, Relocations,
};
