//! What `python -m cds info` and `python -m cds verify` report about an
//! archive file, as JSON: its header, bytes per region, and per module
//! where its bytes are and whether its source is still what the dump read.
//!
//! The file is read through the reader's own checks ([`Archive::parse`],
//! [`Archive::module`]), against what the file claims to be (so an archive
//! of another build can still be inspected); whether this interpreter may
//! use it is the caller's question (`usable_here`).

use crate::format::reloc::read_relocations;
use crate::format::{
    header, Archive, Expectations, FormatError, Layer, ModuleView, RelocKind, HEADER_SIZE, OBJECT_TYPES,
};
use crate::imports::freshness::{source_unchanged, Check, SourceStamp};
use std::fmt::Write;

/// The header's claims about the interpreter that dumped `bytes`, used to
/// read an archive whatever build made it.
pub fn claimed_expectations(bytes: &[u8]) -> Option<Expectations> {
    let head = bytes.get(..HEADER_SIZE)?;
    let mut build_id = [0u8; 16];
    build_id.copy_from_slice(&head[header::BUILD_ID..header::BUILD_ID + 16]);
    let python_hexversion = u32::from_le_bytes(head[header::PYTHON_HEXVERSION..][..4].try_into().unwrap());
    Some(Expectations { python_hexversion, build_id })
}

/// What a module's source is now, compared with what the dump recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    Fresh,
    /// A frozen module: its code is the interpreter's own, tied by the build id.
    Frozen,
    Stale(String),
    Missing,
}

impl SourceStatus {
    fn of(bytes: &[u8], view: &ModuleView, check: Check) -> Self {
        if view.is_frozen(bytes) {
            return Self::Frozen;
        }
        let recorded = SourceStamp {
            size: view.source_size,
            mtime_ns: view.source_mtime_ns,
            hash: view.source_hash,
            dev: view.source_dev,
            ino: view.source_ino,
            realpath: view.source_realpath(bytes),
        };
        let origin = view.origin(bytes);
        if std::fs::metadata(origin).is_err() {
            return Self::Missing;
        }
        match source_unchanged(origin, &recorded, check) {
            Ok(()) => Self::Fresh,
            Err(why) => Self::Stale(why),
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Frozen => "frozen",
            Self::Stale(_) => "stale",
            Self::Missing => "missing",
        }
    }
}

/// The JSON report of the archive `bytes` at `path`. `usable_here`: None
/// when this interpreter can use it, else why not. `check`: how sources
/// are compared (`Some`, for `verify`), or None not to look at them.
pub fn report(
    path: &str,
    bytes: &[u8],
    usable_here: Option<&str>,
    check: Option<Check>,
) -> Result<String, FormatError> {
    let expect = claimed_expectations(bytes).ok_or(FormatError::NotAnArchive)?;
    let archive = Archive::parse(bytes, &expect)?;
    let field = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()));
    let wide = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let mut out = String::from("{");
    let _ = write!(out, "\"path\": {}", quote(path));
    let _ = write!(out, ", \"format_version\": {}", field(header::FORMAT_VERSION));
    let hex = expect.python_hexversion;
    let _ = write!(out, ", \"python\": \"{}.{}.{}\"", hex >> 24, (hex >> 16) & 0xff, (hex >> 8) & 0xff);
    let id: String = expect.build_id.iter().map(|b| format!("{b:02x}")).collect();
    let _ = write!(out, ", \"build_id\": \"{id}\"");
    let _ = write!(out, ", \"usable_here\": {}", usable_here.map_or("true".into(), |_| "false".to_string()));
    if let Some(why) = usable_here {
        let _ = write!(out, ", \"not_usable_because\": {}", quote(why));
    }
    let compile = archive.compile_settings();
    let _ = write!(out, ", \"optimize\": {}, \"debug_ranges\": {}", compile.optimize, compile.debug_ranges);
    let _ = write!(out, ", \"size\": {}", bytes.len());
    let _ = write!(out, ", \"preferred_base\": {}", wide(header::PREFERRED_BASE));
    let _ = write!(out, ", \"code_serials\": {}", field(header::CODE_SERIALS));
    let layer = match Layer::of_first_code_serial(field(header::CODE_SERIAL_START) as u32) {
        Some(Layer::Base) => "base",
        Some(Layer::Application) => "application",
        None => "other",
    };
    let _ = write!(out, ", \"layer\": \"{layer}\"");
    let _ = write!(out, ", \"startup_names\": {}", field(header::NAMES_STARTUP_SIZE));
    let _ = write!(
        out,
        ", \"regions\": {{\"table\": {}, \"names_index\": {}, \"names\": {}, \"hot\": {}, \"cold\": {}, \"relocations\": {}}}",
        field(header::STRINGS) + field(header::STRINGS_SIZE),
        field(header::NAMES_INDEX_SLOTS) * crate::format::names_index::SLOT_SIZE as u64,
        field(header::NAMES_SIZE),
        field(header::HOT_SIZE),
        field(header::COLD_SIZE),
        field(header::RELOCS_SIZE),
    );
    let mut modules = String::new();
    let mut total = [0usize; OBJECT_TYPES.len()];
    for index in 0..archive.module_count() {
        if index > 0 {
            modules.push_str(", ");
        }
        match archive.module(bytes, index) {
            Ok(view) => {
                let objects = objects_by_type(bytes, &view);
                total.iter_mut().zip(&objects).for_each(|(t, n)| *t += n);
                module_json(&mut modules, bytes, &view, &objects, check);
            }
            Err(e) => {
                let _ = write!(modules, "{{\"index\": {index}, \"error\": {}}}", quote(&e.to_string()));
            }
        }
    }
    let _ = write!(out, ", \"objects\": {}", objects_json(&total));
    let _ = write!(out, ", \"modules\": [{modules}]}}");
    Ok(out)
}

/// How many objects of each type in `OBJECT_TYPES` the module holds: one
/// type-symbol record per object, at its `ob_type` (names in the pool, which
/// have no records, are not counted). Zeros when its records do not decode.
fn objects_by_type(bytes: &[u8], view: &ModuleView) -> [usize; OBJECT_TYPES.len()] {
    let mut counts = [0; OBJECT_TYPES.len()];
    if let Ok(relocs) = read_relocations(bytes, view) {
        for r in relocs.iter().filter(|r| r.kind == RelocKind::Symbol) {
            if let Some(i) = OBJECT_TYPES.iter().position(|(id, _)| *id == r.target) {
                counts[i] += 1;
            }
        }
    }
    counts
}

fn objects_json(counts: &[usize; OBJECT_TYPES.len()]) -> String {
    let fields: Vec<String> =
        OBJECT_TYPES.iter().zip(counts).map(|((_, name), n)| format!("\"{name}\": {n}")).collect();
    format!("{{{}}}", fields.join(", "))
}

fn module_json(
    out: &mut String,
    bytes: &[u8],
    view: &ModuleView,
    objects: &[usize; OBJECT_TYPES.len()],
    check: Option<Check>,
) {
    let _ = write!(
        out,
        "{{\"name\": {}, \"origin\": {}, \"package\": {}, \"hot\": {}, \"cold\": {}, \"relocations\": {}, \
         \"source_size\": {}, \"source_mtime_ns\": {}",
        quote(view.name(bytes)),
        quote(view.origin(bytes)),
        view.is_package,
        view.hot.len(),
        view.cold.len(),
        view.relocs.len(),
        view.source_size,
        view.source_mtime_ns,
    );
    let _ = write!(out, ", \"objects\": {}", objects_json(objects));
    if let Some(check) = check {
        let intact = view.verify(bytes).is_ok();
        let _ = write!(out, ", \"intact\": {intact}");
        let status = SourceStatus::of(bytes, view, check);
        let _ = write!(out, ", \"source\": \"{}\"", status.word());
        if let SourceStatus::Stale(why) = &status {
            let _ = write!(out, ", \"why\": {}", quote(why));
        }
    }
    out.push('}');
}

/// `s` as a JSON string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_json_must_escape() {
        assert_eq!(quote("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\u000ad\\u0001é\"");
    }

    #[test]
    fn reports_every_module_of_an_archive() {
        let bytes = cds_testkit::sample_archive();
        let json = report("s.img", &bytes, Some("another build"), Some(Check::Stat)).unwrap();
        let start = format!("{{\"path\": \"s.img\", \"format_version\": {}", crate::format::FORMAT_VERSION);
        assert!(json.starts_with(&start), "{json}");
        assert!(json.contains("\"layer\": \"base\""), "{json}");
        // The sample's objects, counted from their type records.
        assert!(json.contains("\"objects\": {\"code\": "), "{json}");
        assert!(json.contains("\"usable_here\": false, \"not_usable_because\": \"another build\""));
        let modules = json.matches("\"name\": ").count();
        assert!(modules >= 2 && json.matches("\"intact\": true").count() == modules, "{json}");
        // The sample's sources (/lib/...) do not exist here.
        assert_eq!(
            json.matches("\"source\": \"missing\"").count() + json.matches("\"source\": \"frozen\"").count(),
            modules
        );
    }

    #[test]
    fn refuses_what_is_not_an_archive() {
        assert_eq!(report("x", b"hello", None, None), Err(FormatError::NotAnArchive));
    }
}
