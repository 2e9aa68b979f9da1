"""What a stock interpreter with the `_cds` extension lacks that the patch
series gives: `python -m cds info` shows it, docs/STOCK.md lists it (a test
keeps the two the same). Kept out of the `cds` package, which every start
with a cds variable loads, so that the table costs those starts nothing."""

import sys

from cds import _is_stock

# What a stock interpreter lacks that the patch series gives, for the
# versions whose series has the patch (docs/STOCK.md shows this table; a
# test keeps the two the same): (patch, versions, what is missing).
WITHOUT_PATCHES = (
    ("0002-options-cds-xoptions", "3.11 3.13",
     "-X cds options and PYTHONCDS variables are not listed by --help-xoptions and --help-env"),
    ("0003-importlib-cds-finder", "3.11 3.13",
     "start-up opens no archive unless a cds variable or -X option is set (the default archive is not used unasked); "
     "the hook is added by cds-hook.pth, after site, so the modules site imports are not served"),
    ("0004-object-cds-dealloc-guard", "3.11",
     "no last line of defence if an archived object's refcount (biased by 2**40) ever reached zero"),
    ("0005-importlib-cds-frozen-modules", "3.13",
     "the frozen start-up modules (os, site, codecs, ...) are unmarshalled, not served"),
    ("0006-marshal-cds-shared-refs", "3.11",
     "marshal.dumps() of archived code flags every object as shared: other bytes, equal objects when loaded"),
    ("0007-codeobject-cds-reserved-versions", "3.13",
     "code versions after the archives' serials, not below them (3.12: new code objects that would get one "
     "get none, as when CPython runs out)"),
    ("0008-pylifecycle-cds-startup-names", "3.13",
     "names interned during start-up are the interpreter's: slots naming them are rewritten in every process"),
    ("0009-unicodeobject-cds-pooled-names", "3.13",
     "names C extension modules intern first are theirs: slots naming them are rewritten in every process"),
)


def without_patches():
    """[(patch, what is missing)] for this interpreter: empty when patched."""
    if not _is_stock():
        return []
    version = "%d.%d" % sys.version_info[:2]
    # 3.12 has no series: it lacks what 3.13's gives, but 0005 (3.12 deep-freezes its start-up modules).
    series = "3.13" if version == "3.12" else version
    return [(patch, what) for patch, versions, what in WITHOUT_PATCHES
            if series in versions.split() and not (version == "3.12" and patch.startswith("0005"))]
