"""Writing an archive from a list of module names.

Two list formats are read:

- what ``-X cds_trace`` / ``PYTHONCDSTRACE`` write, ``name<TAB>source path``
  per line: the dump runs no module code; each listed module is compiled from
  its source, as a normal import without a ``.pyc`` would;
- the original pycds format, one bare module name per line, as
  ``PYCDSMODE=TRACE`` writes or a user writes by hand: as the original's
  ``run_dump`` does, each listed name is imported (its top-level code runs,
  in a child interpreter started with this one's flags), and every module
  those imports load is archived, as ``-X cds_trace`` would list them.

Every archived module's code is compiled here from the bytes whose size,
mtime and hash the archive records, never taken from a ``.pyc`` that may be
stale in a way its header cannot show. A module whose compilation warns
(``SyntaxWarning``, ``DeprecationWarning``: e.g. an invalid escape ``"\\d"``)
is left out: a normal import compiling it would show the warning, or raise
under ``-W error``. The code is compiled at the dumping interpreter's
optimisation level (``-O``), which the archive records.

When this interpreter has a usable default archive (``python -m cds
stdlib``), the archive is an application layer over it: the listed modules
the default archive holds fresh, for the same file, are left to it, and the
archive is laid out to serve beside it (``-X cds=IMG`` looks modules up in
IMG first, then in the default archive). ``layered=False`` (``python -m cds
dump --whole``) writes an archive that holds every listed module.

``python -m cds.dump LIST IMG`` is ``python -m cds dump LIST IMG``.
"""

import marshal
import os
import sys
import warnings
from importlib.machinery import PathFinder, SourceFileLoader

__all__ = ["run_dump", "read_list", "DumpResult", "auto_rewrite"]

FROZEN = "<frozen>"


class DumpResult:
    """What a dump wrote: ``archived`` names and ``skipped`` (name, reason) pairs."""

    def __init__(self, path, archived, skipped, layered_on=None, left_to_default=()):
        self.path = path
        self.archived = archived
        self.skipped = skipped
        #: The default archive this one is layered on, or None.
        self.layered_on = layered_on
        #: Listed modules not archived because the default archive serves them.
        self.left_to_default = list(left_to_default)

    def __repr__(self):
        return f"DumpResult({self.path!r}, archived={len(self.archived)}, skipped={len(self.skipped)})"


def read_list(list_path):
    """Returns [(name, source path or None)] in file order, first entry per name."""
    entries = {}
    with open(list_path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, origin = line.partition("\t")
            name = name.strip()
            entries.setdefault(name, origin or None)
    return list(entries.items())


def _resolve(name):
    """Finds the source file of ``name`` on sys.path without executing packages."""
    search = None
    spec = None
    parts = name.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
        if i < len(parts) - 1 and search is None:
            return None
    return spec.origin if spec is not None and spec.has_location else None


def _frozen_entry(name):
    """The entry of a frozen module (3.13+ unmarshals these at every start).

    Its code is the interpreter's own frozen bytes; the archive's build id
    ties it to this binary, so there is no source to check."""
    import _imp

    try:
        code = _imp.get_frozen_object(name)
    except ImportError as e:
        raise ImportError(f"frozen module not available here ({e}); dump with -X frozen_modules=on") from None
    is_package = _imp.is_frozen_package(name)
    return (name, FROZEN, is_package, 0, 0, code)


def _compile(loader, data, origin):
    """The code a normal import compiles from ``data``; refuses code whose compilation warns."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = loader.source_to_code(data, origin)
    if caught:
        w = caught[0]
        raise ImportError(f"compiling it warns ({w.category.__name__}: {w.message}, line {w.lineno}); "
                          "a normal import would show the warning")
    # What a normal import executes is, but for its first run, this code
    # read back from its .pyc: marshal rebuilds frozenset constants by
    # insertion (their iteration order can change) and interns names.
    return marshal.loads(marshal.dumps(code))


def _entry(name, origin):
    """(name, origin, is_package, mtime_ns, size, code) for one source module."""
    if origin == FROZEN:
        return _frozen_entry(name)
    if origin is None:
        origin = _resolve(name)
        if origin is None:
            raise ImportError("not found on sys.path")
    if not origin.endswith(".py"):
        raise ImportError(f"{origin} is not a Python source file")
    loader = SourceFileLoader(name, origin)
    before = os.stat(origin)
    data = loader.get_data(origin)
    after = os.stat(origin)
    if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size) or len(data) != after.st_size:
        raise ImportError("source changed while it was being read")
    code = _compile(loader, data, origin)
    is_package = os.path.basename(origin) == "__init__.py"
    return (name, origin, is_package, after.st_mtime_ns, after.st_size, code)


def _imported_by(names):
    """[(name, origin)] of every module that importing ``names`` loads.

    The original pycds format: the names are imported, in order, by a child
    interpreter (this one, with the same -O/-X/-W flags and environment)
    tracing what it loads, so the dumping process's own imports neither hide
    nor add modules. A name that fails to import is reported; the others go on."""
    program = "import sys\n" + "".join(
        f"try:\n    import {name}\nexcept Exception as e:\n"
        f"    print({name!r}, type(e).__name__ + ': ' + str(e), sep='\\t', file=sys.stderr)\n"
        for name in names)
    child, imported = traced_child(program, cwd=os.getcwd())
    failed = []
    for line in child.stderr.splitlines():
        name, sep, why = line.partition("\t")
        if sep and name in names:
            failed.append((name, f"importing it failed: {why}"))
    if child.returncode != 0 and not failed:
        raise OSError(f"the child importing the listed modules exited {child.returncode}: {child.stderr.strip()}")
    return imported, failed


def traced_child(program, *options, cwd=None):
    """Runs ``program`` in a child of this interpreter (its -O/-X/-W flags,
    ``options`` after them, the environment without cds settings) under
    ``-X cds_trace``: (CompletedProcess with stderr text, [(name, origin)]
    of the modules it loaded)."""
    import subprocess
    import tempfile

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONCDS", "PYCDS"))}
    with tempfile.TemporaryDirectory(prefix="cds-trace-") as tmp:
        trace = os.path.join(tmp, "traced.lst")
        args = [sys.executable, *subprocess._args_from_interpreter_flags(), *options,
                "-X", f"cds_trace={trace}", "-c", program]
        child = subprocess.run(args, env=env, cwd=cwd or tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        return child, read_list(trace) if os.path.exists(trace) else []


def default_layer(archive_path):
    """(path, {name: origin}) of the default archive and the modules it
    would serve here (intact, fresh or frozen), or None when it would not
    serve: missing, of another build, not a base layer, or ``archive_path``
    itself."""
    import json
    import _cds

    default = _cds.default_archive()
    if default is None or not os.path.isfile(default):
        return None
    if os.path.realpath(default) == os.path.realpath(archive_path):
        return None
    try:
        info = json.loads(_cds.info(default, "stat"))
    except (OSError, ValueError):
        return None
    if not info["usable_here"] or info.get("layer") != "base":
        return None
    return default, {m["name"]: m["origin"] for m in info["modules"]
                     if m.get("intact") and m.get("source") in ("fresh", "frozen")}


def run_dump(list_path, archive_path, *, verbose=False, progress=None, layered=None, startup=()):
    """Writes the archive ``archive_path`` (atomically) for the modules in ``list_path``.

    ``startup``: names of listed modules every process imports while starting
    (the stdlib archive's): their names go first in the archive's name pool,
    so that a bare start touches the fewest pages.

    ``layered``: None lays it out over the default archive when that is
    usable (see the module doc), False never, True always (without leaving
    modules to a default archive that is not there).

    ``progress``, if given, is called as ``progress(done, total, name)``
    before each module is compiled and once more with ``name`` None before
    the archive is written."""
    listed = read_list(list_path)
    skipped = []
    if listed and all(origin is None for _, origin in listed):
        listed, skipped = _imported_by([name for name, _ in listed])
    layer = default_layer(archive_path) if layered is not False else None
    left = []
    if layer is not None:
        served_by_default = layer[1]
        left = [name for name, origin in listed if served_by_default.get(name) == origin]
        listed = [(name, origin) for name, origin in listed if served_by_default.get(name) != origin]
    result = _dump_listed(listed, skipped, archive_path, verbose=verbose, progress=progress,
                          layered=bool(layered) or layer is not None, startup=startup)
    if layer is not None:
        result.layered_on, result.left_to_default = layer[0], left
    return result


def _dump_listed(listed, skipped, archive_path, *, verbose=False, progress=None, layered=False, startup=()):
    """run_dump for ``listed`` [(name, source path or FROZEN)], with ``skipped`` already left out."""
    import _cds

    startup = set(startup)
    entries = []
    for done, (name, origin) in enumerate(listed):
        if progress is not None:
            progress(done, len(listed), name)
        try:
            entries.append((*_entry(name, origin), name in startup))
        except (ImportError, OSError, SyntaxError, ValueError) as e:
            skipped.append((name, str(e) or type(e).__name__))
    if progress is not None:
        progress(len(listed), len(listed), None)
    skipped.extend(_cds.dump(entries, os.fspath(archive_path), layered))
    left_out = {name for name, _ in skipped}
    archived = [e[0] for e in entries if e[0] not in left_out]
    if verbose:
        for name, why in skipped:
            print(f"cds: skipped {name}: {why}", file=sys.stderr)
    return DumpResult(os.fspath(archive_path), archived, skipped)


def auto_rewrite(archive_path, reason, loaded, layered, verbose):
    """``-X cds_auto`` at exit: rewrites ``archive_path`` (atomically) from
    ``loaded``, [(name, source path)] of every module the run loaded but
    those the default archive served (then ``layered``: laid out over it),
    because of ``reason`` (the archive could not be used, or a module was
    rejected).

    Called by the interpreter's exit hook, never raises: a failure (a
    read-only directory, say) is one warning line and the program's exit
    status stays its own."""
    try:
        result = _dump_listed(loaded, [], archive_path, verbose=verbose, layered=layered)
    except Exception as e:
        print(f"cds: warning: cannot rewrite archive {archive_path} (-X cds_auto): {e}", file=sys.stderr)
        return
    if verbose:
        print(f"cds: wrote {archive_path}: {len(result.archived)} modules ({reason}; -X cds_auto)", file=sys.stderr)


if __name__ == "__main__":
    from cds.__main__ import main

    sys.exit(main(["dump", *sys.argv[1:]]))
