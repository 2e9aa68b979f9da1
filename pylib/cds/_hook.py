"""The import hook on a stock CPython (the `_cds` extension module).

The patched interpreter asks `_cds` from inside importlib (patch
`0003-importlib-cds-finder`); a stock one cannot be patched, so this module
makes the same two changes at run time, to the same classes:

- `PathFinder.find_spec` first asks `_cds.find` where the archive holds the
  module, and answers with the spec a normal search would end at (a plain
  `SourceFileLoader` for the archived file), only when every search path
  entry before it is served by the default `FileFinder` (or by none yet);
- `SourceLoader.get_code`, for a plain `SourceFileLoader`, asks
  `_cds.get_code` for the archived code object (or records the module while
  tracing) before reading the `.pyc`.

A module served this way has the spec, loader and code a normal import
gives. `cds-hook.pth`, which the wheel installs into site-packages, calls
`start()` when a cds variable (`PYTHONCDS*`, `PYCDS*`) or `-X cds...`
option is set; `cds.trace()` and `cds.share()` call `install()`.
"""

import sys

import _frozen_importlib_external as _external


def is_stock():
    """Whether this interpreter is a stock one (no cds patches)."""
    return not hasattr(_external, "_cds_find_spec")


_cds = None
# The (suffix, loader) pairs of the default FileFinder path hook, the only
# path entry finder cds answers for (as FileFinder.__init__ lays them out).
_default_loaders = None


def start():
    """Loads `_cds` (which reads the options and opens the archives) and
    installs the hook if it traces or serves. A `_cds` that cannot load is
    one line on stderr; imports go on normally. Nothing on the patched
    interpreter (the wheel installed into it too): its importlib asks
    `_cds` itself."""
    if not is_stock():
        return
    try:
        import _cds as cds
    except ImportError as e:
        print(f"cds: the _cds extension cannot be loaded ({e}); imports go on normally", file=sys.stderr)
        return
    if cds.tracing() or cds.serving():
        install(cds)


def install(cds):
    """Makes PathFinder and SourceLoader ask `cds` (once per process)."""
    global _cds, _default_loaders
    if _default_loaders is None:
        _default_loaders = [(suffix, loader) for loader, suffixes in _external._get_supported_file_loaders()
                            for suffix in suffixes]
        _wrap(_external.PathFinder, "find_spec", _find_spec_hook, classmethod)
        _wrap(_external.SourceLoader, "get_code", _get_code_hook, None)
    _cds = cds


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
        if _cds is not None and cls is _external.PathFinder:
            spec = _archived_spec(fullname, path)
            if spec is not None:
                return spec
        return find_spec(cls, fullname, path, target)
    return hook


def _get_code_hook(get_code):
    def hook(self, fullname):
        if _cds is not None and type(self) is _external.SourceFileLoader:
            code = _cds.get_code(fullname, self.get_filename(fullname))
            if code is not None:
                return code
        return get_code(self, fullname)
    return hook


def _is_default_finder(finder):
    return type(finder) is _external.FileFinder and finder._loaders == _default_loaders


def _archived_spec(fullname, path):
    """The spec PathFinder would return for an archived module, or None
    (`_cds_find_spec` of patch 0003, line for line)."""
    found = _cds.find(fullname, path)
    if found is None:
        return None
    origin, is_package = found
    home = _external._path_split(origin)[0]
    if is_package:
        home = _external._path_split(home)[0]
    cache = sys.path_importer_cache
    for entry in sys.path if path is None else path:
        if not isinstance(entry, str):
            continue
        if entry in ("", "."):
            try:
                where = _external._os.getcwd()
            except FileNotFoundError:
                return None
            # As _path_importer_cache: '' is cached under the cwd.
            key = where if entry == "" else entry
        else:
            where = key = entry
        if key in cache:
            finder = cache[key]
            if finder is None and where != home:
                continue  # no finder for this entry: PathFinder skips it too
            if not _is_default_finder(finder):
                return None
        if where == home:
            break
    else:
        return None
    loader = _external.SourceFileLoader(fullname, origin)
    if is_package:
        # As FileFinder: the package directory is the search location.
        return _external.spec_from_file_location(fullname, origin, loader=loader,
                                                 submodule_search_locations=[_external._path_split(origin)[0]])
    return _external.spec_from_file_location(fullname, origin, loader=loader, submodule_search_locations=None)
