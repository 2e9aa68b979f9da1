//! Lays live code objects out as archived objects.
//!
//! One `emit_*` per object kind, dispatched on the exact type; anything else
//! is refused (the module is then left out of the archive, not half-written).
//! Children are emitted before the slots that point at them; objects shared
//! inside a module (by identity, as marshal shares them) are emitted once;
//! runtime singletons are referenced by symbol, never copied.

use crate::format::{names_index, ModuleBuilder, Region, RegionRef, Target};
use crate::python::objects::{self, put, GC_HEAD, OB_TYPE};
use crate::python::symbols::{self, symbol_of};
use crate::python::version::{self, OB_REFCNT};
use crate::python::{ffi, image, sys};
use std::collections::{HashMap, HashSet};
use std::mem::offset_of;
use std::ptr::addr_of_mut;

/// Why an object graph could not be archived.
#[derive(Debug)]
pub struct DumpError(pub String);

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Emits the graph under one module's code object.
pub struct ObjectWriter<'m, 'a> {
    module: &'m mut ModuleBuilder<'a>,
    /// Live object address → where it went, so shared objects stay shared.
    seen: HashMap<usize, Target>,
    /// Temporaries (frozensets turned into tuples) kept alive so their
    /// addresses are not reused while `seen` refers to them.
    temporaries: Vec<*mut ffi::PyObject>,
    /// The strs the interpreter interned at start-up (`startup_names`).
    startup: &'m HashSet<usize>,
    /// Emitting the constants of a body whose running writes them
    /// (`RUNNING_A_BODY_WRITES_ITS_CONSTANTS`): what would go to the cold
    /// region goes with the written objects.
    body_constants: bool,
}

impl Drop for ObjectWriter<'_, '_> {
    fn drop(&mut self) {
        for op in self.temporaries.drain(..) {
            // SAFETY: each temporary is an owned reference taken in emit_frozenset; GIL held.
            unsafe { ffi::Py_DECREF(op) };
        }
    }
}

impl<'m, 'a> ObjectWriter<'m, 'a> {
    pub fn new(module: &'m mut ModuleBuilder<'a>, startup: &'m HashSet<usize>) -> Self {
        Self { module, seen: HashMap::new(), temporaries: Vec::new(), startup, body_constants: false }
    }

    /// Emits a module's code object; returns where it starts.
    ///
    /// # Safety
    /// `code` is a live object and the GIL is held.
    pub unsafe fn emit_module_code(&mut self, code: *mut sys::PyObject) -> Result<RegionRef, DumpError> {
        // SAFETY: forwarded from the caller.
        if unsafe { (*code).ob_type } != addr_of_mut!(sys::PyCode_Type) {
            return Err(DumpError("the module's code is not a code object".into()));
        }
        // SAFETY: forwarded from the caller.
        match unsafe { self.emit(code) }? {
            Target::Object(at) => Ok(at),
            _ => Err(DumpError("the module's code object could not be archived".into())),
        }
    }

    /// # Safety
    /// `op` is a live object and the GIL is held.
    unsafe fn emit(&mut self, op: *mut sys::PyObject) -> Result<Target, DumpError> {
        if let Some(t) = self.seen.get(&(op as usize)) {
            return Ok(*t);
        }
        // SAFETY: op is live (caller) for every read below.
        let target = unsafe {
            if let Some(id) = symbol_of(op) {
                Target::Symbol(id)
            } else {
                let ty = (*op).ob_type;
                if ty == addr_of_mut!(sys::PyCode_Type) {
                    Target::Object(self.emit_code(op)?)
                } else if ty == addr_of_mut!(sys::PyTuple_Type) {
                    Target::Object(self.emit_tuple(op, written_or(holds_written_items(op), Region::Cold))?)
                } else if ty == addr_of_mut!(sys::PyUnicode_Type) {
                    self.emit_str(op, false)?
                } else if ty == addr_of_mut!(sys::PyBytes_Type) {
                    let n = objects::var_size(op);
                    let at = self.copy(op, Region::Cold, objects::bytes_size(n), symbols::TYPE_BYTES, false);
                    version::reset_bytes_runtime_fields(self.module.bytes_mut(at, objects::bytes_size(n)));
                    Target::Object(at)
                } else if ty == addr_of_mut!(sys::PyLong_Type) {
                    let size = version::long_size(op);
                    Target::Object(self.copy(op, Region::Cold, size, symbols::TYPE_INT, false))
                } else if ty == addr_of_mut!(sys::PyFloat_Type) {
                    let size = std::mem::size_of::<sys::PyFloatObject>();
                    Target::Object(self.copy(op, Region::Cold, size, symbols::TYPE_FLOAT, false))
                } else if ty == addr_of_mut!(sys::PyComplex_Type) {
                    let size = std::mem::size_of::<sys::PyComplexObject>();
                    Target::Object(self.copy(op, Region::Cold, size, symbols::TYPE_COMPLEX, false))
                } else if ty == addr_of_mut!(sys::PyFrozenSet_Type) {
                    self.emit_frozenset(op)?
                } else {
                    let name = std::ffi::CStr::from_ptr((*ty).tp_name).to_string_lossy();
                    return Err(DumpError(format!("constant of type {name} cannot be archived")));
                }
            }
        };
        self.seen.insert(op as usize, target);
        Ok(target)
    }

    /// Copies `size` bytes of `op` (plus a zeroed GC header when `gc`) into
    /// `region`, with the archived refcount and a type relocation.
    ///
    /// # Safety
    /// `op` is live and at least `size` bytes long.
    unsafe fn copy(
        &mut self,
        op: *mut sys::PyObject,
        region: Region,
        size: usize,
        type_id: u32,
        gc: bool,
    ) -> RegionRef {
        let region = if self.body_constants && region == Region::Cold { Region::HotEnd } else { region };
        let head = if gc { GC_HEAD } else { 0 };
        let at = self.module.alloc(region, head + size).add(head);
        let bytes = self.module.bytes_mut(at, size);
        // SAFETY: op points to at least `size` readable bytes (caller).
        bytes.copy_from_slice(unsafe { std::slice::from_raw_parts(op.cast::<u8>(), size) });
        put(bytes, OB_REFCNT, version::ARCHIVED_REFCNT);
        put(bytes, OB_TYPE, 0usize);
        self.module.reloc(at.add(OB_TYPE), Target::Symbol(type_id));
        at
    }

    /// Emits `child` and points the slot at `at + offset` to it.
    ///
    /// # Safety
    /// `child` is live; GIL held.
    unsafe fn link(&mut self, at: RegionRef, offset: usize, child: *mut sys::PyObject) -> Result<(), DumpError> {
        // SAFETY: forwarded from the caller.
        let target = unsafe { self.emit(child) }?;
        // A name that interns to a static str (3.13 `_Py_ID`, 3.11's
        // deep-frozen names) ends up pointing at it in every process of this
        // build, where the image does not move with ASLR: write it now.
        // SAFETY: child is live (caller).
        match (target, unsafe { version::static_str_address(child) }.filter(|_| image::fixed())) {
            (Target::InternedStr(_), Some(address)) => self.module.reloc_prewritten(at.add(offset), target, address),
            _ => self.module.reloc(at.add(offset), target),
        }
        Ok(())
    }

    unsafe fn emit_tuple(&mut self, op: *mut sys::PyObject, region: Region) -> Result<RegionRef, DumpError> {
        // SAFETY: op is a live tuple (caller); items are read within its size.
        unsafe {
            let n = objects::var_size(op);
            let items: Vec<_> =
                (0..n).map(|i| (*op.cast::<sys::PyTupleObject>()).ob_item.as_ptr().add(i).read()).collect();
            let at = self.copy(op, region, objects::tuple_size(n), symbols::TYPE_TUPLE, true);
            for (i, item) in items.into_iter().enumerate() {
                put(self.module.bytes_mut(at, objects::tuple_size(n)), objects::tuple_item_offset(i), 0usize);
                self.link(at, objects::tuple_item_offset(i), item)?;
            }
            Ok(at)
        }
    }

    /// `written`: the str is written when its module is imported (a
    /// docstring, `MAKING_A_FUNCTION_WRITES_ITS_DOC`), so it goes with the
    /// written objects whatever its length.
    unsafe fn emit_str(&mut self, op: *mut sys::PyObject, written: bool) -> Result<Target, DumpError> {
        // SAFETY: op is a live exact str (caller).
        let layout =
            unsafe { version::str_layout(op) }.ok_or_else(|| DumpError("a str is not in compact form".into()))?;
        // SAFETY: the layout's size is the str's allocation size.
        let mut bytes = unsafe { std::slice::from_raw_parts(op.cast::<u8>(), layout.size) }.to_vec();
        put(&mut bytes, OB_REFCNT, version::str_refcnt(layout.interned));
        put(&mut bytes, OB_TYPE, 0usize);
        let interior = version::reset_str_runtime_fields(&mut bytes, layout.ascii);
        // Names go to the archive's pool, once per archive: every module's
        // slots point at the one copy, which interning at load makes the
        // interpreter's own (so the slots, pre-written with its address,
        // need no write), and interning and hashing write only pool pages.
        // A str that points into itself (3.11 `wstr`) needs relocation
        // records of its own, so it stays with its module.
        if layout.interned && interior.is_none() {
            let startup = self.startup.contains(&(op as usize));
            let (tag, data) =
                version::str_name_key(&bytes).ok_or_else(|| DumpError("a name is not in compact form".into()))?;
            let hash = names_index::hash(tag, data);
            return Ok(Target::InternedStr(self.module.pooled(&bytes, OB_TYPE, symbols::TYPE_STR, startup, hash)));
        }
        // SAFETY: op is a live str (caller).
        let short = unsafe { ffi::PyUnicode_GetLength(op.cast()) } as usize <= SHORT_STR;
        let region = if layout.interned { Region::Hot } else { written_or(short || written, Region::Cold) };
        // SAFETY: the layout's size is the str's allocation size.
        let at = unsafe { self.copy(op, region, layout.size, symbols::TYPE_STR, false) };
        self.module.bytes_mut(at, layout.size).copy_from_slice(&bytes);
        if let Some((slot, target)) = interior {
            self.module.reloc(at.add(slot), Target::Interior(at.add(target)));
        }
        Ok(if layout.interned { Target::InternedStr(at) } else { Target::Object(at) })
    }

    /// Lays out the docstring of code `op` (its first constant, when a
    /// str) with the written objects, before its constants are emitted.
    ///
    /// # Safety
    /// `op` is a live code object and the GIL is held.
    unsafe fn emit_doc(&mut self, op: *mut sys::PyObject) -> Result<(), DumpError> {
        // SAFETY: op is a live code object (caller), whose co_consts is a
        // live tuple; its items are live.
        let doc = unsafe {
            let consts = (*op.cast::<sys::PyCodeObject>()).co_consts;
            if objects::var_size(consts) == 0 {
                return Ok(());
            }
            (*consts.cast::<sys::PyTupleObject>()).ob_item.as_ptr().read()
        };
        // SAFETY: doc is live (above). A runtime object (a one-character
        // str, say) stays a symbol: `emit` handles it.
        let is_str = unsafe { (*doc).ob_type == addr_of_mut!(sys::PyUnicode_Type) && symbol_of(doc).is_none() };
        if !is_str || self.seen.contains_key(&(doc as usize)) {
            return Ok(());
        }
        // SAFETY: doc is a live exact str; GIL held (caller).
        let target = unsafe { self.emit_str(doc, true) }?;
        self.seen.insert(doc as usize, target);
        Ok(())
    }

    unsafe fn emit_frozenset(&mut self, op: *mut sys::PyObject) -> Result<Target, DumpError> {
        // The set's table depends on this process's hash secret: archive its
        // items as a tuple and rebuild the set at load.
        // SAFETY: op is a live frozenset; GIL held.
        let items = unsafe { insertion_order(op.cast()) }
            .ok_or_else(|| DumpError("cannot read a frozenset constant".into()))?;
        self.temporaries.push(items);
        // SAFETY: items is a live tuple we own.
        match unsafe { self.emit(items.cast()) }? {
            Target::Object(at) => Ok(Target::FrozenSet(at)),
            _ => Err(DumpError("unexpected frozenset layout".into())),
        }
    }

    unsafe fn emit_code(&mut self, op: *mut sys::PyObject) -> Result<RegionRef, DumpError> {
        // SAFETY: op is a live code object (caller); its type gives its size.
        unsafe {
            let size = objects::var_object_size(op);
            let children: Vec<(usize, *mut sys::PyObject)> = version::CODE_OBJECT_FIELDS
                .iter()
                .map(|f| (f.offset, op.cast::<u8>().add(f.offset).cast::<*mut sys::PyObject>().read()))
                .collect();
            // Module and class bodies run at every import, so their
            // bytecode is written (specialised, counted): with the written
            // objects, unless the version runs them from private copies.
            // Functions' code is written only if they run.
            let body = objects::is_body(op);
            let written = body && !version::BODIES_RUN_FROM_COPIES;
            let at = self.copy(op, written_or(written, Region::Hot), size, symbols::TYPE_CODE, false);
            if version::MAKING_A_FUNCTION_WRITES_ITS_DOC {
                self.emit_doc(op)?;
            }
            let serial = self.module.code_serial();
            version::prepare_code_copy(op, self.module.bytes_mut(at, size), || serial.map_err(|e| e.to_string()))
                .map_err(DumpError)?;
            let constants_written = version::RUNNING_A_BODY_WRITES_ITS_CONSTANTS && body;
            let outer = self.body_constants;
            for (off, child) in children {
                put(self.module.bytes_mut(at, size), off, 0usize);
                if !child.is_null() {
                    self.body_constants = constants_written && off == offset_of!(sys::PyCodeObject, co_consts);
                    let linked = self.link(at, off, child);
                    self.body_constants = outer;
                    linked?;
                }
            }
            Ok(at)
        }
    }
}

/// Where an object goes that load or use may write (`written`), else
/// `region`. Written ones go to the end of the module's hot span, together:
/// tuples holding names (names the interpreter interned before the archive,
/// at its start-up or by unarchived modules, switch those slots to its own
/// str) or frozensets (built at load), short strs (dict keys, hashed on
/// first use), module and class bodies (they run; 3.13 runs private copies). The rest (docstrings,
/// numbers, line tables, functions' code) stays on pages that no process
/// writes unless the code runs.
fn written_or(written: bool, region: Region) -> Region {
    if written {
        Region::HotEnd
    } else {
        region
    }
}

/// A str this short is likely hashed (a key, an attribute name) and goes
/// with the written objects; longer ones (docstrings, messages) stay cold.
const SHORT_STR: usize = 64;

/// Whether tuple `op` holds an item whose slot load may rewrite: an
/// interned str or a frozenset (see [`written_or`]).
///
/// # Safety
/// `op` is a live tuple and the GIL is held.
unsafe fn holds_written_items(op: *mut sys::PyObject) -> bool {
    // SAFETY: op is a live tuple (caller); items of a live tuple are live.
    unsafe {
        (0..objects::var_size(op)).any(|i| {
            let item = (*op.cast::<sys::PyTupleObject>()).ob_item.as_ptr().add(i).read();
            let ty = (*item).ob_type;
            ty == addr_of_mut!(sys::PyFrozenSet_Type)
                || (ty == addr_of_mut!(sys::PyUnicode_Type) && version::str_layout(item).is_some_and(|l| l.interned))
        })
    }
}

/// The items of frozenset `set` in an order that, inserted into a new set in
/// a process with the same hash secret, gives back the same iteration order.
/// That is what a normal import produces (unmarshalling inserts the items in
/// the order they were written). Tried first: the order marshal writes them
/// in ([`marshal_order`]), which reproduces the set whenever it was built
/// from marshalled code (the dump's code was) and makes the archive's bytes
/// independent of the dumper's hash secret; then iteration order, which
/// reproduces itself when no two items collided; then a search. Returns a
/// new tuple reference.
///
/// # Safety
/// `set` is a live frozenset; GIL held.
unsafe fn insertion_order(set: *mut ffi::PyObject) -> Option<*mut ffi::PyObject> {
    /// Beyond this many items, try only the iteration order (n! permutations).
    const MAX_SEARCH: usize = 7;
    // SAFETY: GIL held; every new reference is released or returned.
    unsafe {
        // Before anything of ours holds the items (their refcount shapes their dumps).
        let n = ffi::PySet_Size(set).max(0) as usize;
        let sorted = if n > 1 { marshal_order(set, n) } else { None };
        let target = ffi::PySequence_Tuple(set);
        if target.is_null() {
            ffi::PyErr_Clear();
            if let Some(sorted) = sorted {
                ffi::Py_DECREF(sorted);
            }
            return None;
        }
        let reproduces = |candidate: *mut ffi::PyObject| -> bool {
            let rebuilt = ffi::PyFrozenSet_New(candidate);
            if rebuilt.is_null() {
                ffi::PyErr_Clear();
                return false;
            }
            let order = ffi::PySequence_Tuple(rebuilt);
            ffi::Py_DECREF(rebuilt);
            if order.is_null() {
                ffi::PyErr_Clear();
                return false;
            }
            let same = (0..n).all(|i| ffi::PyTuple_GetItem(order, i as _) == ffi::PyTuple_GetItem(target, i as _));
            ffi::Py_DECREF(order);
            same
        };
        if n <= 1 {
            return Some(target);
        }
        if let Some(sorted) = sorted {
            if reproduces(sorted) {
                ffi::Py_DECREF(target);
                return Some(sorted);
            }
            ffi::Py_DECREF(sorted);
        }
        if n > MAX_SEARCH || reproduces(target) {
            return Some(target);
        }
        // Heap's algorithm over the item indices.
        let mut perm: Vec<usize> = (0..n).collect();
        let mut c = vec![0usize; n];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                perm.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
                let candidate = ffi::PyTuple_New(n as _);
                if candidate.is_null() {
                    ffi::PyErr_Clear();
                    break;
                }
                for (slot, &from) in perm.iter().enumerate() {
                    let item = ffi::PyTuple_GetItem(target, from as _);
                    ffi::Py_INCREF(item);
                    ffi::PyTuple_SetItem(candidate, slot as _, item);
                }
                if reproduces(candidate) {
                    ffi::Py_DECREF(target);
                    return Some(candidate);
                }
                ffi::Py_DECREF(candidate);
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        // No order reproduces it (cannot happen for sets built by insertion); keep iteration order.
        Some(target)
    }
}

/// The `n` items of frozenset `set` as marshal writes them: sorted by each
/// item's own marshalled bytes (bpo-37596), computed as marshal computes
/// them (`version::marshal_sort_key`: an item's bytes depend on its
/// refcount, so no reference of ours is held meanwhile). A new tuple, or
/// None when an item cannot be marshalled.
///
/// # Safety
/// `set` is a live frozenset of `n` items; GIL held.
unsafe fn marshal_order(set: *mut ffi::PyObject, n: usize) -> Option<*mut ffi::PyObject> {
    // SAFETY: GIL held; the set keeps its items alive, so the borrowed
    // pointers stay valid; every new reference is released or returned.
    unsafe {
        let iter = ffi::PyObject_GetIter(set);
        if iter.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let mut items = Vec::with_capacity(n);
        loop {
            let item = ffi::PyIter_Next(iter);
            if item.is_null() {
                break;
            }
            ffi::Py_DECREF(item);
            items.push(item);
        }
        ffi::Py_DECREF(iter);
        if !ffi::PyErr_Occurred().is_null() || items.len() != n {
            ffi::PyErr_Clear();
            return None;
        }
        let mut keyed = Vec::with_capacity(n);
        for item in items {
            let dump = version::marshal_sort_key(item.cast());
            if dump.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            let dump = dump.cast::<ffi::PyObject>();
            let key =
                std::slice::from_raw_parts(ffi::PyBytes_AsString(dump).cast::<u8>(), ffi::PyBytes_Size(dump) as usize)
                    .to_vec();
            ffi::Py_DECREF(dump);
            keyed.push((key, item));
        }
        // Dumps of distinct set members differ, so the items never decide.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let sorted = ffi::PyTuple_New(n as _);
        if sorted.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        for (slot, (_, item)) in keyed.into_iter().enumerate() {
            ffi::Py_INCREF(item);
            ffi::PyTuple_SetItem(sorted, slot as _, item);
        }
        Some(sorted)
    }
}
