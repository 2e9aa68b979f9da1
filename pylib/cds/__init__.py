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
"""

import sys

try:
    if "_cds" in sys.builtin_module_names:
        import _cds  # the patched interpreter's built-in module
    else:
        from cds import _cds  # the extension module on a stock interpreter (ext/)

        # One name for both: this package's modules import `_cds`.
        sys.modules.setdefault("_cds", _cds)
except ImportError:  # neither, or a subinterpreter that refuses it
    _cds = None

__all__ = ["share", "stats", "trace"]


def _activate():
    from cds import _hook

    if _hook.is_stock():
        # A stock interpreter with the _cds extension: the patched
        # importlib's hooks, added at run time.
        _hook.install(_cds)
    else:
        # The patched interpreter's importlib hooks (PathFinder,
        # SourceLoader.get_code and, on 3.13, FrozenImporter) ask cds only
        # when this global is set; start-up sets it when -X cds / -X
        # cds_trace asked.
        import _frozen_importlib_external

        _frozen_importlib_external._cds = _cds


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
