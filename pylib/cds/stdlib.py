"""The default archive of an interpreter's standard library.

``python -m cds stdlib`` writes it where the interpreter looks for one when
no ``-X cds`` names an archive: ``_cds.default_archive()``, that is
``<sys._stdlib_dir>/__pycache__/cds-stdlib.<cache tag>.img``, beside the
stdlib's own ``.pyc`` files. It holds the modules start-up imports (traced
from a child ``python -c pass`` with this interpreter's flags: frozen ones
too, where the build freezes them) and every importable ``.py`` module of
the stdlib directory but the test suites and demos. As ``py3compile`` for
``.pyc`` files, it is meant for a package's postinst or trigger: running it
again gives the same bytes (docs/PACKAGING.md), and the archive is replaced
atomically, so processes that already map the old one keep it.
"""

import os
import sys
import tempfile

__all__ = ["stdlib_modules", "write_stdlib_archive"]

# Packages a program does not import: the test suites, the IDE, demos.
SKIPPED_PACKAGES = {"test", "tests", "idle_test", "idlelib", "turtledemo", "__phello__", "site-packages"}


def stdlib_modules(stdlib_dir):
    """[(name, path)] of every ``.py`` module under ``stdlib_dir``: top-level
    modules and packages (directories with an ``__init__.py``), sorted."""
    found = []

    def walk(directory, prefix):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for entry in names:
            path = os.path.join(directory, entry)
            if entry.endswith(".py") and os.path.isfile(path):
                name = entry[:-3]
                if name.isidentifier() and name != "__init__":
                    found.append((prefix + name, path))
            elif entry.isidentifier() and entry not in SKIPPED_PACKAGES:
                init = os.path.join(path, "__init__.py")
                if os.path.isfile(init):
                    found.append((prefix + entry, init))
                    walk(path, prefix + entry + ".")

    walk(stdlib_dir, "")
    return found


def _startup_modules():
    """[(name, origin)] of what a bare start of this interpreter loads, as
    ``-X cds_trace`` lists it (``<frozen>`` for frozen modules)."""
    from cds.dump import traced_child

    child, started = traced_child("pass", "-X", "cds_mode=off")
    if child.returncode != 0:
        raise OSError(f"a bare start of {sys.executable} exited {child.returncode}: {child.stderr.strip()}")
    return started


def write_stdlib_archive(output=None, *, progress=None):
    """Writes the stdlib archive (to the default location unless ``output``)
    and returns the ``DumpResult``."""
    import _cds
    from cds.dump import run_dump

    output = output or _cds.default_archive()
    if output is None:
        raise OSError("this interpreter has no stdlib directory (sys._stdlib_dir) to write a default archive for")
    # Start-up modules first, in the order start-up imports them: the dump
    # lays objects out in list order and puts the start-up modules' names
    # first in the pool, so what every process touches shares the fewest
    # pages. The rest sorted (the stdlib walk).
    entries = dict(_startup_modules())
    startup = list(entries)
    for name, path in stdlib_modules(sys._stdlib_dir):
        entries.setdefault(name, path)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", prefix="cds-stdlib-", suffix=".lst") as f:
        f.writelines(f"{name}\t{origin}\n" for name, origin in entries.items())
        f.flush()
        return run_dump(f.name, output, progress=progress, layered=False, startup=startup)
