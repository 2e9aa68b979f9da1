"""cds: code data sharing for CPython.

Trace which modules a program imports, dump their code objects into one
archive, and serve them from a shared memory mapping in later runs::

    ./python -X cds_trace=mod.lst -c 'import json'
    ./python -m cds dump mod.lst mod.img
    ./python -X cds=mod.img -c 'import json'
"""

try:
    import _cds
except ImportError:  # an interpreter built without the cds patches
    _cds = None

__all__ = ["stats"]


def stats():
    """What cds did in this process.

    Returns a dict with ``archive`` (the archive path, or None when no archive
    is in use), ``served`` (names of modules imported from the archive, in
    import order), ``rejected`` (name -> reason, for archived modules that were
    imported normally instead), ``modules`` (modules in the archive),
    ``tracing`` (whether -X cds_trace is recording) and
    ``mapped_at_preferred_base`` (whether the archive is mapped where the dump
    laid it out, so that relocation writes nothing).
    """
    if _cds is None:
        return {"archive": None, "served": [], "rejected": {}, "modules": 0, "tracing": False,
                "mapped_at_preferred_base": False}
    return _cds.stats()
