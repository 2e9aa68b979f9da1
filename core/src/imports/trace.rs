//! `-X cds_trace=PATH`: records every module whose code is loaded.
//!
//! One line per module, `name<TAB>source path` (or the bare name, the
//! original pycds's `PYCDSLIST` format, see [`ListFormat`]), handed to the kernel in one
//! `write` on an `O_APPEND` descriptor. Local Linux file systems perform each
//! such write whole, under the file's lock, so many processes can trace into
//! one list at once without interleaving lines.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// What a list line holds. The dump reads both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// `name<TAB>source path`: `-X cds_trace`, `PYTHONCDSTRACE`, `cds.trace()`.
    NameAndPath,
    /// `name`: the original pycds's list (`PYCDSMODE=TRACE PYCDSLIST=...`).
    Name,
}

/// Where recorded modules go.
enum Sink {
    /// Appended to a list file as they load.
    File(File),
    /// Kept for this process (`-X cds_auto` dumps them at exit).
    Memory(Vec<(String, String)>),
}

/// This process's trace list: where lines go, and the names already written.
pub struct Tracer {
    /// The list file; empty for [`Tracer::in_memory`].
    pub path: String,
    sink: Sink,
    format: ListFormat,
    seen: HashSet<String>,
}

impl Tracer {
    /// Opens the list at `path` for appending, creating it if needed.
    pub fn open(path: &str, format: ListFormat) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { path: path.to_owned(), sink: Sink::File(file), format, seen: HashSet::new() })
    }

    /// A tracer that writes nothing and keeps `(name, source path)` in
    /// load order ([`Tracer::recorded`]).
    pub fn in_memory() -> Self {
        Self {
            path: String::new(),
            sink: Sink::Memory(Vec::new()),
            format: ListFormat::NameAndPath,
            seen: HashSet::new(),
        }
    }

    /// What an in-memory tracer recorded; empty for a list file.
    pub fn recorded(&self) -> &[(String, String)] {
        match &self.sink {
            Sink::Memory(recorded) => recorded,
            Sink::File(_) => &[],
        }
    }

    /// Appends `name` once per tracer (a process opens one per runtime
    /// initialisation, see `python::state`). Names or paths holding a tab or a
    /// newline are not recorded: they cannot be written as one list line.
    pub fn record(&mut self, name: &str, source_path: &str) {
        if name.contains(['\t', '\n']) || source_path.contains(['\t', '\n']) || !self.seen.insert(name.to_owned()) {
            return;
        }
        let file = match &mut self.sink {
            Sink::Memory(recorded) => return recorded.push((name.to_owned(), source_path.to_owned())),
            Sink::File(file) => file,
        };
        let line = match self.format {
            ListFormat::NameAndPath => format!("{name}\t{source_path}\n"),
            ListFormat::Name => format!("{name}\n"),
        };
        // A failed append only loses a trace line; the program itself must not notice.
        let _ = file.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdir::TestDir;
    use super::*;

    fn read(path: &str) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// What a fresh list holds after one tracer recorded `records`.
    fn traced(format: ListFormat, records: &[(&str, &str)]) -> String {
        let t = TestDir::new();
        let list = t.join("mod.lst");
        let mut tracer = Tracer::open(&list, format).unwrap();
        for (name, path) in records {
            tracer.record(name, path);
        }
        read(&list)
    }

    #[test]
    fn records_each_module_once() {
        let records = [
            ("json", "/lib/json/__init__.py"),
            ("json.decoder", "/lib/json/decoder.py"),
            ("json", "/lib/json/__init__.py"),
            ("json", "/elsewhere/json.py"),
        ];
        let lines = "json\t/lib/json/__init__.py\njson.decoder\t/lib/json/decoder.py\n";
        assert_eq!(traced(ListFormat::NameAndPath, &records), lines);
    }

    #[test]
    fn skips_names_and_paths_that_break_the_line_format() {
        let records = [
            ("a\tb", "/lib/a.py"),
            ("a\nb", "/lib/a.py"),
            ("c", "/lib/c\t.py"),
            ("d", "/lib/d\n.py"),
            ("ok", "<frozen>"),
        ];
        assert_eq!(traced(ListFormat::NameAndPath, &records), "ok\t<frozen>\n");
    }

    #[test]
    fn writes_bare_names_in_the_original_format() {
        let records = [
            ("json", "/lib/json/__init__.py"),
            ("os", "<frozen>"),
            ("json", "/lib/json/__init__.py"),
            ("a\tb", "/lib/a.py"),
        ];
        assert_eq!(traced(ListFormat::Name, &records), "json\nos\n");
    }

    #[test]
    fn keeps_in_memory_what_a_list_would_hold() {
        let mut tracer = Tracer::in_memory();
        for (name, path) in
            [("json", "/lib/json/__init__.py"), ("a\tb", "/lib/a.py"), ("json", "/x.py"), ("os", "<frozen>")]
        {
            tracer.record(name, path);
        }
        let expected =
            [("json", "/lib/json/__init__.py"), ("os", "<frozen>")].map(|(n, p)| (n.to_owned(), p.to_owned()));
        assert_eq!(tracer.recorded(), expected);
    }

    #[test]
    fn appends_to_an_existing_list() {
        let t = TestDir::new();
        let list = t.write("mod.lst", "# kept\nos\t<frozen>\n");
        Tracer::open(&list, ListFormat::NameAndPath).unwrap().record("json", "/lib/json/__init__.py");
        // Another process (here: another tracer) appends after the first.
        Tracer::open(&list, ListFormat::NameAndPath).unwrap().record("re", "/lib/re/__init__.py");
        assert_eq!(read(&list), "# kept\nos\t<frozen>\njson\t/lib/json/__init__.py\nre\t/lib/re/__init__.py\n");
    }

    #[test]
    fn creates_a_missing_list_but_not_its_directory() {
        let t = TestDir::new();
        let list = t.join("new.lst");
        Tracer::open(&list, ListFormat::NameAndPath).unwrap();
        assert_eq!(read(&list), "");
        assert!(Tracer::open(&t.join("missing/new.lst"), ListFormat::NameAndPath).is_err());
    }
}
