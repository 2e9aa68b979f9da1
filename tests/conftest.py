"""Shared helpers: every test drives the real patched interpreter named by
CDS_PYTHON (the Makefile sets it to build/python-X.Y-cds/python) in
subprocesses, because cds is configured at interpreter start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON = os.environ.get("CDS_PYTHON") or sys.executable
DATA = Path(__file__).parent / "data"


def clean_env(**extra):
    """The environment minus anything that would change how Python starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYCDS"))}
    env["PYTHONHASHSEED"] = "0"  # set iteration order is compared across runs
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(*args, env=None, cwd=None, check=True, timeout=120):
    """Runs the patched interpreter; returns the CompletedProcess (text)."""
    proc = subprocess.run(
        [PYTHON, *map(str, args)],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args!r} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class Workspace:
    """A temporary directory with helpers for the trace -> dump -> replay cycle."""

    def __init__(self, path):
        self.path = path
        self.lst = path / "mod.lst"
        self.img = path / "mod.img"

    def write(self, relpath, text):
        p = self.path / relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def trace(self, *args, **kw):
        return run(f"-Xcds_trace={self.lst}", *args, cwd=self.path, **kw)

    def dump(self):
        return run("-m", "cds", "dump", self.lst, self.img, cwd=self.path)

    def replay(self, *args, img=None, **kw):
        return run(f"-Xcds={img or self.img}", *args, cwd=self.path, **kw)

    def plain(self, *args, **kw):
        return run(*args, cwd=self.path, **kw)

    def archive(self, *args):
        """Trace `args`, dump, and return the archive path."""
        self.trace(*args)
        self.dump()
        return self.img

    def traced_names(self):
        return [line.split("\t")[0] for line in self.lst.read_text().splitlines() if line]


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


STATS = "import cds, json as _j; print('STATS', _j.dumps(cds.stats()))"

# Program text: `mappings(suffix)` yields (start, end) of each mapping of a
# file whose path ends with `suffix`; `archived(address, suffix)` says
# whether an address lies in one (where an object lives: archive or heap).
MAPPINGS = """
def mappings(suffix):
    with open('/proc/self/maps') as maps:
        lines = maps.read().splitlines()
    for line in lines:
        fields = line.split()
        if fields[-1].endswith(suffix):
            lo, hi = (int(x, 16) for x in fields[0].split('-'))
            yield lo, hi
def archived(address, suffix):
    return any(lo <= address < hi for lo, hi in mappings(suffix))
"""


def stats_of(proc):
    """The cds.stats() dict a program printed with STATS."""
    import json

    for line in proc.stdout.splitlines():
        if line.startswith("STATS "):
            return json.loads(line[6:])
    raise AssertionError(f"no STATS line in:\n{proc.stdout}\n{proc.stderr}")


def without_stats(text):
    """The program's output minus the STATS line, without trailing newlines."""
    return "\n".join(l for l in text.splitlines() if not l.startswith("STATS ")).rstrip("\n")


def other_interpreters():
    """The other patched interpreters built in this checkout (build/python-X.Y-cds/python)."""
    root = Path(__file__).resolve().parent.parent / "build"
    mine = Path(PYTHON).resolve()
    found = []
    for p in sorted(root.glob("python-*-cds/python")):
        if p.resolve() != mine and p.exists():
            found.append(str(p))
    return found


def version_of(python):
    import subprocess

    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
    return tuple(map(int, out.stdout.split()))


VERSION = version_of(PYTHON)


def is_stock(python):
    """Whether `python` is a stock CPython with the `_cds` extension (pip
    install .) rather than the patched interpreter: its importlib has no cds
    hook of its own (patch 0003)."""
    import subprocess

    probe = "import cds; print(cds._is_stock())"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip() == "True"


STOCK = is_stock(PYTHON)


def needs_patch(what):
    """Skips a test on a stock interpreter, saying which patch (or part of
    the patched build) what it tests needs (docs/STOCK.md)."""
    return pytest.mark.skipif(STOCK, reason=f"a stock interpreter lacks {what}")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A PYTHONHOME of the test module's own, where the default archive
    (`<stdlib>/__pycache__/cds-stdlib.<tag>.img`) can be written without
    touching the build tree every other test runs from: lib/pythonX.Y is a
    real directory of links to the interpreter's stdlib entries (but its
    __pycache__)."""
    home = tmp_path_factory.mktemp("home")
    stdlib = run("-c", "import sys; print(sys._stdlib_dir)").stdout.strip()
    lib = home / "lib" / f"python{VERSION[0]}.{VERSION[1]}"
    lib.mkdir(parents=True)
    for entry in os.listdir(stdlib):
        if entry != "__pycache__":
            (lib / entry).symlink_to(os.path.join(stdlib, entry))
    return home


def in_home(home, *args, check=True, **env):
    """Runs the interpreter with PYTHONHOME=home (see `home`), from there."""
    return run(*args, env=clean_env(PYTHONHOME=home, **env), cwd=home, check=check, timeout=300)
