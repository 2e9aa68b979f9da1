"""Writing an archive from a list of module names.

The list is what ``-X cds_trace`` writes (``name<TAB>source path`` per line)
or, as in the original pycds, one module name per line. Names without a path
are resolved on ``sys.path`` without importing anything: the dump never runs
module code, it only compiles (or reads the .pyc of) each module, exactly as
``SourceLoader.get_code`` does for a normal import.
"""

import os
import sys
from importlib.machinery import PathFinder, SourceFileLoader

__all__ = ["run_dump", "read_list", "DumpResult"]


class DumpResult:
    """What a dump wrote: ``archived`` names and ``skipped`` (name, reason) pairs."""

    def __init__(self, path, archived, skipped):
        self.path = path
        self.archived = archived
        self.skipped = skipped

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


FROZEN = "<frozen>"


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
    before = os.stat(origin)
    code = SourceFileLoader(name, origin).get_code(name)
    after = os.stat(origin)
    if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
        raise ImportError("source changed while it was being read")
    is_package = os.path.basename(origin) == "__init__.py"
    return (name, origin, is_package, after.st_mtime_ns, after.st_size, code)


def run_dump(list_path, archive_path, *, verbose=False):
    """Writes the archive ``archive_path`` (atomically) for the modules in ``list_path``."""
    import _cds

    entries, skipped = [], []
    for name, origin in read_list(list_path):
        try:
            entries.append(_entry(name, origin))
        except (ImportError, OSError, SyntaxError, ValueError) as e:
            skipped.append((name, str(e) or type(e).__name__))
    skipped.extend(_cds.dump(entries, os.fspath(archive_path)))
    left_out = {name for name, _ in skipped}
    archived = [e[0] for e in entries if e[0] not in left_out]
    if verbose:
        for name, why in skipped:
            print(f"cds: skipped {name}: {why}", file=sys.stderr)
    return DumpResult(os.fspath(archive_path), archived, skipped)
