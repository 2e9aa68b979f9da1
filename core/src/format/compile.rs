//! The interpreter settings that change the code objects an import produces
//! (the compiler's output, and what creating a code object from a `.pyc`
//! keeps), which an archive records in its header and a reader must match.
//! docs/DESIGN.md ("Settings that change an import") says why these and no
//! others.

use super::layout::COMPILE_NO_DEBUG_RANGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileSettings {
    /// `sys.flags.optimize` (`-O`, `-OO`, `PYTHONOPTIMIZE`): asserts and
    /// `__debug__` blocks (1), docstrings (2) are compiled out.
    pub optimize: u32,
    /// False under `-X no_debug_ranges` / `PYTHONNODEBUGRANGES`: code
    /// objects are created without column positions (`co_positions`), even
    /// from a `.pyc` that has them.
    pub debug_ranges: bool,
}

impl Default for CompileSettings {
    /// The settings of a plain `python`.
    fn default() -> Self {
        Self { optimize: 0, debug_ranges: true }
    }
}

impl CompileSettings {
    /// The header's `compile_flags` field.
    pub fn flags(&self) -> u32 {
        if self.debug_ranges {
            0
        } else {
            COMPILE_NO_DEBUG_RANGES
        }
    }

    /// Settings from the header's fields, or None for unknown flag bits.
    pub fn from_fields(optimize: u32, flags: u32) -> Option<Self> {
        (flags & !COMPILE_NO_DEBUG_RANGES == 0)
            .then_some(Self { optimize, debug_ranges: flags & COMPILE_NO_DEBUG_RANGES == 0 })
    }

    /// Why an archive dumped with these settings must not serve a process
    /// running with `running`, naming both values.
    pub fn mismatch(&self, running: &Self) -> Option<String> {
        if self.optimize != running.optimize {
            return Some(format!(
                "archive dumped with -O level {}, this process runs with -O {}",
                self.optimize, running.optimize
            ));
        }
        if self.debug_ranges != running.debug_ranges {
            let (dumped, runs) = if self.debug_ranges { ("without", "with") } else { ("with", "without") };
            return Some(format!("archive dumped {dumped} -X no_debug_ranges, this process runs {runs} it"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_match() {
        let s = CompileSettings { optimize: 2, debug_ranges: false };
        assert_eq!(s.mismatch(&s), None);
        assert_eq!(CompileSettings::default().mismatch(&CompileSettings::default()), None);
    }

    #[test]
    fn optimisation_levels_are_named() {
        let dumped = CompileSettings::default();
        let running = CompileSettings { optimize: 1, ..dumped };
        assert_eq!(dumped.mismatch(&running).unwrap(), "archive dumped with -O level 0, this process runs with -O 1");
        assert_eq!(running.mismatch(&dumped).unwrap(), "archive dumped with -O level 1, this process runs with -O 0");
    }

    #[test]
    fn debug_ranges_are_named() {
        let plain = CompileSettings::default();
        let stripped = CompileSettings { debug_ranges: false, ..plain };
        assert_eq!(
            plain.mismatch(&stripped).unwrap(),
            "archive dumped without -X no_debug_ranges, this process runs with it"
        );
        assert_eq!(
            stripped.mismatch(&plain).unwrap(),
            "archive dumped with -X no_debug_ranges, this process runs without it"
        );
    }

    #[test]
    fn archives_carry_their_settings_and_unknown_bits_are_refused() {
        use crate::format::{header, header_checksum, put_u32, put_u64, Archive, ArchiveBuilder, Expectations};
        let settings = CompileSettings { optimize: 2, debug_ranges: false };
        let mut bytes = ArchiveBuilder::with_compile_settings(settings).finish(0x030b_02f0, [7; 16]).unwrap();
        let expect = Expectations { python_hexversion: 0x030b_02f0, build_id: [7; 16] };
        assert_eq!(Archive::parse(&bytes, &expect).unwrap().compile_settings(), settings);
        put_u32(&mut bytes, header::COMPILE_FLAGS, 3);
        let sum = header_checksum(&bytes);
        put_u64(&mut bytes, header::HEADER_CHECKSUM, sum);
        assert_eq!(
            Archive::parse(&bytes, &expect).unwrap_err(),
            crate::format::FormatError::BadLayout("unknown compile flags")
        );
    }

    #[test]
    fn flags_round_trip_and_unknown_bits_are_refused() {
        for s in [CompileSettings::default(), CompileSettings { optimize: 2, debug_ranges: false }] {
            assert_eq!(CompileSettings::from_fields(s.optimize, s.flags()), Some(s));
        }
        assert_eq!(CompileSettings::from_fields(0, 2), None);
    }
}
