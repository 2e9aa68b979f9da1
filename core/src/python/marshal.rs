//! What the interpreter's marshal asks of cds (patch "marshal-cds-shared-refs").
//!
//! marshal writes an object with FLAG_REF unless its refcount is 1 (then it
//! cannot be met again). Archived objects are immortal, so for them
//! `Python/marshal.c` asks here instead; the answer models the refcount a
//! normally imported object would have (see `Served::shared_for_marshal`),
//! so that `marshal.dumps(f.__code__)` gives the bytes it gives without cds.

use super::objects::{get, tuple_item_offset, OB_TYPE};
use super::{state, symbols, sys};
use crate::format::reloc::read_relocations;
use crate::format::{ModuleView, RelocKind};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void};
use std::mem::offset_of;

/// 1 when archived object `op` counts as shared; `top`: it is the object
/// passed to marshal (whose caller holds a reference to it). Called with the
/// GIL held, only for addresses inside the archive mapping.
#[no_mangle]
pub extern "C" fn _PyCds_ArchivedRefIsShared(op: *const c_void, top: c_int) -> c_int {
    c_int::from(state::archived_ref_is_shared(op as usize, top != 0))
}

/// What a normal import's copy of each object of one module would have as
/// references once the module has run, as far as the archive can tell.
///
/// After a normal import, the module's code object is freed, and with it
/// every container only it (or a class body, which runs once) referred to.
/// What stays alive are the functions: a code object with `CO_OPTIMIZED`
/// directly under the module or a class body has a function object, which
/// holds its code and its docstring; everything their code refers to stays
/// alive with it. An object's count is the references from live archived
/// containers plus those of its function. References the program took
/// itself (a constant bound to a global, a closure it keeps) are not seen;
/// for the object passed to marshal, the caller's is added
/// ([`Served::shared_for_marshal`]).
///
/// [`Served::shared_for_marshal`]: super::serve::Served::shared_for_marshal
pub struct References {
    counts: HashMap<usize, u32>,
    functions: HashSet<usize>,
    /// For each code object, what a function made from it holds besides it.
    held: HashMap<usize, Vec<usize>>,
}

impl References {
    /// Counts the references of the (relocated, shape-checked) module `view`.
    pub fn of(bytes: &[u8], view: &ModuleView) -> Option<Self> {
        type Code = sys::PyCodeObject;
        let relocs = read_relocations(bytes, view).ok()?;
        // Object starts and types: the shape check made every object's
        // `ob_type` a type-symbol record, and no other record a type symbol.
        let mut starts: Vec<(usize, u32)> = relocs
            .iter()
            .filter(|r| r.kind == RelocKind::Symbol && symbols::is_type(r.target))
            .map(|r| (r.slot as usize - OB_TYPE, r.target))
            .collect();
        starts.sort_unstable();
        let owner = |slot: usize| Some(starts[starts.partition_point(|(s, _)| *s <= slot).checked_sub(1)?]);
        // (owner, target) of every slot that points at an archived object.
        let mut edges: Vec<(usize, usize)> = Vec::new();
        let mut target_of: HashMap<usize, usize> = HashMap::new();
        for r in relocs.iter().filter(|r| matches!(r.kind, RelocKind::Object | RelocKind::InternedStr)) {
            let (start, _) = owner(r.slot as usize)?;
            edges.push((start, r.target as usize));
            target_of.insert(r.slot as usize, r.target as usize);
        }
        let is_code =
            |at: usize| starts.binary_search_by_key(&at, |(s, _)| *s).is_ok_and(|i| starts[i].1 == symbols::TYPE_CODE);
        let optimized = |at: usize| {
            get::<std::ffi::c_int>(&bytes[at..], offset_of!(Code, co_flags)) & sys::CO_OPTIMIZED as std::ffi::c_int != 0
        };
        // A code object's parent: the code object whose co_consts holds it.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        for &(code, _) in starts.iter().filter(|(_, t)| *t == symbols::TYPE_CODE) {
            let Some(&consts) = target_of.get(&(code + offset_of!(Code, co_consts))) else { continue };
            for &(_, child) in edges.iter().filter(|(o, t)| *o == consts && is_code(*t)) {
                parent.insert(child, code);
            }
        }
        let function_exists = |code: usize| optimized(code) && parent.get(&code).is_some_and(|p| !optimized(*p));
        let functions: HashSet<usize> =
            starts.iter().filter(|(s, t)| *t == symbols::TYPE_CODE && function_exists(*s)).map(|(s, _)| *s).collect();
        // Live containers: reachable from a function's code.
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(owner, target) in &edges {
            children.entry(owner).or_default().push(target);
        }
        let mut live: HashSet<usize> = HashSet::new();
        let mut stack: Vec<usize> = functions.iter().copied().collect();
        while let Some(at) = stack.pop() {
            if live.insert(at) {
                stack.extend(children.get(&at).into_iter().flatten().copied());
            }
        }
        let mut counts: HashMap<usize, u32> = HashMap::new();
        for &(_, target) in edges.iter().filter(|(o, _)| live.contains(o)) {
            *counts.entry(target).or_default() += 1;
        }
        let held: HashMap<usize, Vec<usize>> = starts
            .iter()
            .filter(|(_, t)| *t == symbols::TYPE_CODE)
            .map(|&(code, _)| (code, held_by_function(code, &target_of, &starts)))
            .collect();
        for &code in &functions {
            *counts.entry(code).or_default() += 1;
            for &object in &held[&code] {
                *counts.entry(object).or_default() += 1;
            }
        }
        Some(Self { counts, functions, held })
    }

    /// References to the object at file offset `at` (see the type's doc).
    pub fn count(&self, at: usize) -> u32 {
        self.counts.get(&at).copied().unwrap_or(0)
    }

    /// What a function made from the code object at `at` holds (its
    /// docstring, name and qualified name), unless the import left one
    /// (then [`count`](Self::count) includes them): a code object passed to
    /// marshal came from a function the caller holds, such as a closure.
    pub fn held_by_function(&self, at: usize) -> &[usize] {
        match self.held.get(&at) {
            Some(held) if !self.functions.contains(&at) => held,
            _ => &[],
        }
    }
}

/// What `PyFunction_New` makes a function of the code object at `code`
/// hold: `co_consts[0]` when it is a str (`__doc__`), `co_name` and
/// `co_qualname` (as far as they are archived objects).
fn held_by_function(code: usize, target_of: &HashMap<usize, usize>, starts: &[(usize, u32)]) -> Vec<usize> {
    type Code = sys::PyCodeObject;
    let is_str =
        |at: usize| starts.binary_search_by_key(&at, |(s, _)| *s).is_ok_and(|i| starts[i].1 == symbols::TYPE_STR);
    let docstring = target_of
        .get(&(code + offset_of!(Code, co_consts)))
        .and_then(|consts| target_of.get(&(consts + tuple_item_offset(0))))
        .copied()
        .filter(|at| is_str(*at));
    let names = [offset_of!(Code, co_name), offset_of!(Code, co_qualname)].map(|f| target_of.get(&(code + f)).copied());
    docstring.into_iter().chain(names.into_iter().flatten()).collect()
}
