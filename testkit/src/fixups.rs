//! A fake [`Fixups`]: fixed fake addresses for symbols and frozensets, and
//! no read or write through any address it is given (it only checks that
//! the address lies inside the module being relocated). The real fix-ups
//! need a running interpreter; the reader's contract must hold without one.

use cds_core::format::*;
use std::ops::Range;

/// Symbol ids below this resolve. Ids at or above it are unknown, as ids
/// beyond the interpreter's symbol table are, and must be refused.
pub const SYMBOL_LIMIT: u32 = 1536;

/// The fake address of runtime object `id`: a value only, never followed.
pub fn fake_symbol(id: u32) -> u64 {
    0x7f00_0000_0000 + id as u64 * 16
}

/// The fake frozenset "built" from the tuple at address `tuple`.
pub fn fake_frozenset(tuple: usize) -> u64 {
    tuple as u64 ^ 0x5a5a_0000_0000_0000
}

/// Fix-ups for one module relocated in a buffer at `base`; records the
/// addresses each call was given, in call order.
pub struct FakeFixups {
    /// Address of the buffer being relocated.
    pub base: usize,
    /// The module's spans (file offsets).
    pub hot: Range<usize>,
    pub cold: Range<usize>,
    /// The archive's name pool, where interned strs may also be.
    pub names: Range<usize>,
    /// Make the n-th `intern` call (1-based) fail, to exercise the
    /// runtime-error path.
    pub fail_intern_at: Option<usize>,
    pub interned: Vec<usize>,
    pub frozensets: Vec<usize>,
    pub code_inits: Vec<usize>,
}

impl FakeFixups {
    pub fn new(base: usize, view: &ModuleView) -> Self {
        Self {
            base,
            hot: view.hot.clone(),
            cold: view.cold.clone(),
            names: view.names.clone(),
            fail_intern_at: None,
            interned: Vec::new(),
            frozensets: Vec::new(),
            code_inits: Vec::new(),
        }
    }

    fn owns(&self, addr: usize, len: usize) -> bool {
        let Some(off) = addr.checked_sub(self.base) else { return false };
        let end = off + len;
        (self.hot.start <= off && end <= self.hot.end) || (self.cold.start <= off && end <= self.cold.end)
    }
}

impl Fixups for FakeFixups {
    fn symbol(&mut self, id: u32) -> Option<usize> {
        (id < SYMBOL_LIMIT).then(|| fake_symbol(id) as usize)
    }

    unsafe fn intern(&mut self, string: usize) -> Result<usize, String> {
        let pooled =
            string.checked_sub(self.base).is_some_and(|off| self.names.start <= off && off + 16 <= self.names.end);
        assert!(self.owns(string, 16) || pooled, "interned str {string:#x} outside the module and the pool");
        self.interned.push(string);
        if self.fail_intern_at == Some(self.interned.len()) {
            return Err("fake intern failure".into());
        }
        Ok(string)
    }

    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String> {
        assert!(self.owns(tuple, 16), "frozenset tuple {tuple:#x} outside the module");
        self.frozensets.push(tuple);
        Ok(fake_frozenset(tuple) as usize)
    }

    unsafe fn init_code(&mut self, code: usize) {
        assert!(
            self.owns(code, 16) && (code - self.base).is_multiple_of(OBJECT_ALIGN),
            "code object {code:#x} misplaced"
        );
        self.code_inits.push(code);
    }
}
