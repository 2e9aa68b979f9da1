//! What the interpreter's marshal asks of cds (3.11 patch
//! `0006-marshal-cds-shared-refs`).
//!
//! marshal writes an object with FLAG_REF unless its refcount is 1: such an
//! object cannot be met twice in one dump. An archived object's refcount
//! carries the archive's bias (`version::ARCHIVED_REFCNT`), so marshal asks
//! here instead, and gets the refcount the object would have after a normal
//! import: the references taken at run time (the count above the bias:
//! INCREF and DECREF work as usual on 3.11) plus those of archived
//! containers that are alive. So `marshal.dumps(f.__code__)` gives the bytes
//! it gives without cds, and objects shared in the dumped graph stay shared.
//!
//! On 3.13 archived objects are immortal (no refcount is ever written, which
//! keeps their pages shared), so nothing tells how many references a program
//! holds: the patch is not applied, marshal flags every archived object, and
//! its bytes differ from a normal import's in those flags (docs/DESIGN.md).

use super::objects::OB_TYPE;
use super::version::{self, OB_REFCNT};
use super::{state, symbols, sys};
use crate::format::reloc::read_relocations;
use crate::format::{ModuleView, RelocKind};
use std::collections::HashMap;
use std::ffi::{c_int, c_void};

/// 1 when archived object `op` may be referenced more than once. Called by
/// marshal with the GIL held, only for addresses inside the archive mapping.
#[no_mangle]
pub extern "C" fn _PyCds_ArchivedRefIsShared(op: *const c_void) -> c_int {
    c_int::from(state::archived_ref_is_shared(op as usize))
}

/// The archived references between one module's objects, reversed: for
/// each object, the archived containers (tuples, code objects) whose slots
/// point at it. A container counts only while it is alive as it would be
/// after a normal import: referenced at run time (a function holds its
/// code, a global a constant tuple), or by an archived container that is.
/// The module's own code object and what only it holds are not (a normal
/// import frees them once the module ran).
pub struct References {
    referrers: HashMap<usize, Vec<usize>>,
}

impl References {
    /// The references of module `view`, relocated and shape-checked.
    pub fn of(bytes: &[u8], view: &ModuleView) -> Option<Self> {
        let relocs = read_relocations(bytes, view).ok()?;
        // Object starts: the shape check made every object's `ob_type` a
        // type-symbol record, and no other record a type symbol.
        let mut starts: Vec<usize> = relocs
            .iter()
            .filter(|r| r.kind == RelocKind::Symbol && symbols::is_type(r.target))
            .map(|r| r.slot as usize - OB_TYPE)
            .collect();
        starts.sort_unstable();
        let mut referrers: HashMap<usize, Vec<usize>> = HashMap::new();
        for r in relocs.iter().filter(|r| matches!(r.kind, RelocKind::Object | RelocKind::InternedStr)) {
            let owner = starts[starts.partition_point(|s| *s <= r.slot as usize).checked_sub(1)?];
            referrers.entry(r.target as usize).or_default().push(owner);
        }
        Some(Self { referrers })
    }

    /// Whether the object at file offset `at` of the mapping at `base` has
    /// more than one reference, as a normally imported one would.
    ///
    /// # Safety
    /// `base` is the serving mapping and this module is relocated; GIL held.
    pub unsafe fn is_shared(&self, base: usize, at: usize) -> bool {
        let mut alive = HashMap::new();
        // SAFETY: forwarded from the caller.
        let mut count = unsafe { runtime_references(base, at) };
        for &owner in self.referrers.get(&at).into_iter().flatten() {
            // SAFETY: forwarded from the caller.
            count += u64::from(unsafe { self.is_alive(base, owner, &mut alive) });
            if count >= 2 {
                return true;
            }
        }
        count >= 2
    }

    /// Whether archived container `at` is alive (see the type's doc);
    /// `known`: answers so far (false while being decided, which ends cycles).
    ///
    /// # Safety
    /// As [`is_shared`](Self::is_shared).
    unsafe fn is_alive(&self, base: usize, at: usize, known: &mut HashMap<usize, bool>) -> bool {
        if let Some(&answer) = known.get(&at) {
            return answer;
        }
        known.insert(at, false);
        // SAFETY: forwarded from the caller.
        let answer = unsafe { runtime_references(base, at) } > 0
            || self.referrers.get(&at).into_iter().flatten().any(|&owner| {
                // SAFETY: forwarded from the caller.
                unsafe { self.is_alive(base, owner, known) }
            });
        known.insert(at, answer);
        answer
    }
}

/// References to the archived object at `base + at` taken at run time: its
/// refcount above the archive's bias (0 if the program dropped one of the
/// archive's own references, as interning does when it swaps a slot).
///
/// # Safety
/// `base + at` is an object start of a relocated module of the serving
/// mapping (an offset from its validated relocation records); GIL held.
unsafe fn runtime_references(base: usize, at: usize) -> u64 {
    // SAFETY: the object lies inside the mapping (caller), and its refcount
    // is written by the interpreter only with the GIL held, which we hold.
    let refcnt = unsafe { ((base + at + OB_REFCNT) as *const sys::Py_ssize_t).read() };
    u64::try_from(refcnt - version::ARCHIVED_REFCNT).unwrap_or(0)
}
