"""cds: code data sharing for CPython.

Trace which modules a program imports, dump their code objects into one
archive, and serve them from a shared memory mapping in later runs::

    ./python -X cds_trace=mod.lst -c 'import json'
    ./python -m cds dump mod.lst mod.img
    ./python -X cds=mod.img -c 'import json'

or, started by the program itself (``PYCDSMODE=MANUALLY`` starts nothing by
itself, as in the original pycds)::

    import cds
    cds.trace("mod.lst")     # or, in a later run: cds.share("mod.img")

On a stock interpreter the import hook lives here too (the second half of
this module): every start with a cds variable imports this package, and a
module of its own would cost each of those starts one more import (60 µs).
"""

import sys

import _frozen_importlib_external as _external

try:
    if "_cds" in sys.builtin_module_names:
        import _cds  # the patched interpreter's built-in module
    else:
        from cds import _cds  # the extension module on a stock interpreter (ext/)

        # One name for both: this package's modules import `_cds`.
        sys.modules.setdefault("_cds", _cds)
except ImportError as e:  # neither, or a subinterpreter that refuses it
    _cds = None
    _why_no_cds = str(e)

__all__ = ["share", "stats", "trace"]


def _activate():
    if _is_stock():
        # A stock interpreter with the _cds extension: the patched
        # importlib's hooks, added at run time.
        _install()
    else:
        # The patched interpreter's importlib hooks (PathFinder,
        # SourceLoader.get_code and, on 3.13, FrozenImporter) ask cds only
        # when this global is set; start-up sets it when -X cds / -X
        # cds_trace asked.
        _external._cds = _cds


def trace(list_path):
    """Record every module whose code is loaded from now on into list_path.

    As ``-X cds_trace=list_path`` (lines ``name<TAB>path``, appended; the
    dump reads them), but only for imports after this call: modules imported
    before it are not listed. Returns True once tracing into list_path, False
    when cds is not built in or the list cannot be written (one warning line
    on stderr). Calling it again with the same path does nothing; with
    another path while tracing, RuntimeError.
    """
    if _cds is None or not _cds.start_tracing(list_path):
        return False
    _activate()
    return True


def share(archive_path):
    """Serve modules from the archive at archive_path from now on.

    As ``-X cds=archive_path`` under the start-up ``-X cds_mode``: an
    unusable archive (missing, corrupt, made by another build) prints one
    warning line on stderr and returns False, and imports go on normally
    (``auto``, the default); ``-X cds_mode=on`` raises RuntimeError instead
    of exiting; ``off`` ignores the archive and returns False. Returns True
    once serving from archive_path, layered on the default archive if that
    serves (it is looked up first). Calling it again with the same path does
    nothing; with another path while serving, RuntimeError (one named
    archive per process).

    Sharing turned on late serves only what is imported after the call:
    modules already imported (sys.modules) stay as they were loaded, and the
    interpreter's start-up modules (on 3.13 the frozen ones such as os, site
    and codecs, which -X cds serves at start-up) are past. Modules imported
    later are checked exactly as at start-up, so a changed or shadowed
    source is still imported normally.
    """
    if _cds is None or not _cds.start_serving(archive_path):
        return False
    _activate()
    return True


def stats():
    """What cds did in this process.

    Returns a dict with ``archive`` (the first serving archive's path, or
    None when no archive is in use), ``archives`` (every serving archive in
    lookup order: the one named with -X cds, then the default archive it is
    layered on), ``served`` (names of modules imported from them, in import
    order), ``rejected`` (name -> reason, for archived modules that were
    imported normally instead, or from the next archive), ``modules``
    (modules in the archives), ``tracing`` (whether -X cds_trace is
    recording), ``mapped_at_preferred_base`` (whether every archive is
    mapped where the dump laid it out, so that relocation writes nothing)
    and ``stamped`` (whether each archive's stamp, ``ARCHIVE.verified``,
    names the mapped file, so that modules are not checked again:
    ``python -m cds verify``).
    """
    if _cds is None:
        return {"archive": None, "archives": [], "served": [], "rejected": {}, "modules": 0, "tracing": False,
                "mapped_at_preferred_base": False, "stamped": False}
    return _cds.stats()


# The import hook on a stock CPython (the `_cds` extension module).
#
# The patched interpreter asks `_cds` from inside importlib (patch
# `0003-importlib-cds-finder`); a stock one cannot be patched, so the code
# below makes the same two changes at run time, to the same classes:
#
# - `PathFinder.find_spec` first asks `_cds.find` where the archive holds
#   the module, and answers with the spec a normal search would end at (a
#   plain `SourceFileLoader` for the archived file), only when every search
#   path entry before it is served by the default `FileFinder` (or by none
#   yet);
# - `SourceLoader.get_code`, for a plain `SourceFileLoader`, asks
#   `_cds.get_code` for the archived code object (or records the module
#   while tracing) before reading the `.pyc`.
#
# A module served this way has the spec, loader and code a normal import
# gives. `cds-hook.pth`, which the wheel installs into site-packages, calls
# `_start()` when a cds variable (`PYTHONCDS*`, `PYCDS*`) or `-X cds...`
# option is set; `trace()` and `share()` call `_install()`.


def _is_stock():
    """Whether this interpreter is a stock one (no cds patches)."""
    return not hasattr(_external, "_cds_find_spec")


# The (suffix, loader) pairs of the default FileFinder path hook, the only
# path entry finder cds answers for (as FileFinder.__init__ lays them out).
_default_loaders = None
# Its type, which `_cds.find` compares finders with (a global: no attribute
# lookup per import).
_FileFinder = _external.FileFinder


def _start():
    """Installs the hook if `_cds` (which read the options and opened the
    archives as this package loaded it) traces or serves, and has the named
    archive's modules fixed up now: it is the program's own, nearly all of
    it imported (docs/STOCK.md, "Fixed up at start"). A `_cds` that
    cannot load is one line on stderr; imports go on normally. Nothing on
    the patched interpreter (the wheel installed into it too): its
    importlib asks `_cds` itself."""
    if not _is_stock():
        return
    if _cds is None:
        print(f"cds: the _cds extension cannot be loaded ({_why_no_cds}); imports go on normally", file=sys.stderr)
        return
    if _cds.tracing() or _cds.serving():
        _install()
        _cds.prepare_named()


def _install():
    """Makes PathFinder and SourceLoader ask `_cds`, which the callers
    found loaded (once per process)."""
    global _default_loaders
    if _default_loaders is None:
        _default_loaders = [(suffix, loader) for loader, suffixes in _external._get_supported_file_loaders()
                            for suffix in suffixes]
        _wrap(_external.PathFinder, "find_spec", _find_spec_hook, classmethod)
        _wrap(_external.SourceLoader, "get_code", _get_code_hook, None)


def _wrap(cls, name, make, kind):
    original = cls.__dict__[name]
    function = make(original.__func__ if kind is classmethod else original)
    # What a program inspecting the method sees stays importlib's.
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(function, attribute, getattr(original, attribute, None))
    function.__wrapped__ = original
    setattr(cls, name, kind(function) if kind is not None else function)


def _find_spec_hook(find_spec):
    def hook(cls, fullname, path=None, target=None):
        if cls is _external.PathFinder:
            spec = _archived_spec(fullname, path)
            if spec is not None:
                return spec
        return find_spec(cls, fullname, path, target)
    return hook


def _get_code_hook(get_code):
    def hook(self, fullname):
        # What get_filename(fullname) returns, without its name check's two
        # calls: a fullname that is not the loader's goes to importlib, which
        # raises as it would (None means the loader's own).
        if type(self) is _external.SourceFileLoader and (fullname is None or fullname == self.name):
            code = _cds.get_code(self.name, self.path)
            if code is not None:
                return code
        return get_code(self, fullname)
    return hook


def _archived_spec(fullname, path):
    """The spec PathFinder would return for an archived module, or None
    (`_cds_find_spec` of patch 0003; given FileFinder and the default
    loaders, `_cds.find` walks the finders on the path as that does)."""
    found = _cds.find(fullname, path, _FileFinder, _default_loaders)
    if found is None:
        return None
    origin, is_package = found
    loader = _external.SourceFileLoader(fullname, origin)
    if is_package:
        # As FileFinder: the package directory is the search location.
        return _external.spec_from_file_location(fullname, origin, loader=loader,
                                                 submodule_search_locations=[_external._path_split(origin)[0]])
    return _external.spec_from_file_location(fullname, origin, loader=loader, submodule_search_locations=None)
