"""Command line: ``python -m cds dump|stdlib|info|verify|stats``; ``python -m cds -h`` lists them."""

import argparse
import json
import os
import subprocess
import sys


class Progress:
    """One self-overwriting stderr line per module while a dump compiles, on
    a terminal only: piped or redirected output gets none."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.width = 0

    def __call__(self, done, total, name):
        line = f"cds: compiling {done + 1}/{total} {name}" if name is not None else f"cds: writing {total} modules"
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def close(self):
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _progress(quiet):
    return Progress() if not quiet and sys.stderr.isatty() else None


def _report_dump(result, path, quiet):
    for name, why in result.skipped:
        print(f"cds: skipped {name}: {why}", file=sys.stderr)
    if not quiet:
        size = os.path.getsize(path)
        over = (f"; {len(result.left_to_default)} more from the default archive {result.layered_on}"
                if result.layered_on else "")
        print(f"cds: wrote {path}: {len(result.archived)} modules, {size / 1024:.0f} KiB{over}")


def _dump(write, path, quiet):
    """Runs ``write(progress)``, reporting the result or the one-line error."""
    progress = _progress(quiet)
    try:
        result = write(progress)
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"cds: cannot write {path}: {e}", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.close()
    _report_dump(result, path, quiet)
    return 0


def _report(path, check):
    """The JSON report of the core (``_cds.info``), parsed."""
    import _cds

    return json.loads(_cds.info(path, check))


def _print_info(info):
    regions = info["regions"]
    print(f"archive:      {info['path']}")
    print(f"format:       {info['format_version']}")
    print(f"CPython:      {info['python']} (build id {info['build_id']})")
    usable = "yes" if info["usable_here"] else f"no: {info['not_usable_because']}"
    print(f"usable here:  {usable}")
    optimize = {0: "none", 1: "-O", 2: "-OO"}.get(info["optimize"], info["optimize"])
    print(f"compiled:     optimisation {optimize}, debug ranges {'on' if info['debug_ranges'] else 'off'}")
    print(f"written:      {info['written']}")
    print(f"size:         {info['size']} bytes; " + ", ".join(f"{k} {v}" for k, v in regions.items()))
    print(f"layer:        {info['layer']}")
    print(f"start-up names: {info['startup_names']} bytes of the name pool (interned before the interpreter's own)")
    print(f"modules:      {len(info['modules'])}")
    print("objects:      " + ", ".join(f"{n} {kind}" for kind, n in info["objects"].items() if n))
    missing = info.get("without_patches", [])
    print(f"interpreter:  {'stock, with the _cds extension' if missing else 'patched'}")
    for patch, what in missing:
        print(f"  without {patch}: {what}")
    print()
    print(f"{'module':40} {'hot':>9} {'cold':>9} {'relocs':>8}  origin")
    for m in info["modules"]:
        if "error" in m:
            print(f"{'#' + str(m['index']):40} {m['error']}")
            continue
        print(f"{m['name']:40} {m['hot']:>9} {m['cold']:>9} {m['relocations']:>8}  {m['origin']}")


def _written(path):
    import time

    mtime = os.stat(path).st_mtime
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cds", description="code data sharing for CPython")
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="write an archive from a module list (as -X cds_trace writes it)")
    dump.add_argument("list", help="module list: 'name<TAB>path' or 'name' per line")
    dump.add_argument("archive", help="archive file to write (replaced atomically)")
    dump.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    dump.add_argument("--whole", action="store_true",
                      help="archive every listed module, also those the default archive serves "
                      "(by default the archive is layered on it and holds only what it lacks)")
    stdlib = sub.add_parser("stdlib", help="write this interpreter's default archive: start-up modules and the stdlib")
    stdlib.add_argument("-o", "--output", help="write it here instead of the default location")
    stdlib.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    sub.add_parser("where", help="print where this interpreter looks for its default archive")
    info = sub.add_parser("info", help="describe an archive: header, regions, modules")
    info.add_argument("archive")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    verify = sub.add_parser(
        "verify",
        help="check every module of an archive against its source (fresh, stale, missing) and, "
        "when all are intact, (re)write its stamp so processes need not check again",
    )
    verify.add_argument("archive", help="archive file to check")
    verify.add_argument("--json", action="store_true", help="print the per-module result as JSON")
    verify.add_argument("--check", choices=("stat", "hash"), default="stat",
                        help="compare sources by size and mtime (default) or by content hash")
    sub.add_parser("stats", help="print what cds did in this process (archive, served, rejected)")
    args = parser.parse_args(argv)

    if args.command == "dump":
        from cds.dump import run_dump

        layered = False if args.whole else None
        return _dump(lambda progress: run_dump(args.list, args.archive, progress=progress, layered=layered),
                     args.archive, args.quiet)
    if args.command == "stdlib":
        import _cds
        from cds.stdlib import write_stdlib_archive

        path = args.output or _cds.default_archive() or "(no default location)"
        return _dump(lambda progress: write_stdlib_archive(args.output, progress=progress), path, args.quiet)
    if args.command == "where":
        import _cds

        print(_cds.default_archive() or "cds: this interpreter has no default archive location")
        return 0
    if args.command in ("info", "verify"):
        return _inspect(args)
    if args.command == "stats":
        import cds

        for key, value in cds.stats().items():
            print(f"{key}: {value}")
        return 0
    return 2


def _inspect(args):
    import _cds

    check = args.check if args.command == "verify" else None
    try:
        info = _report(args.archive, check)
        info["written"] = _written(args.archive)
        from cds._unpatched import without_patches

        # What this interpreter cannot do without the patches (docs/STOCK.md).
        info["without_patches"] = [list(item) for item in without_patches()]
    except (OSError, ValueError) as e:
        print(f"cds: cannot read archive {e}", file=sys.stderr)
        return 1
    if args.command == "info":
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            _print_info(info)
        return 0
    modules = info["modules"]
    counts = {}
    for m in modules:
        if "source" in m:
            counts[m["source"]] = counts.get(m["source"], 0) + 1
    info["sources"] = counts
    errors = [f"{args.archive}: module {m.get('name', '#' + str(m.get('index')))}: "
              + m.get("error", "checksum mismatch (corrupt archive)")
              for m in modules if "error" in m or not m["intact"]]
    info["stamped"] = None
    if not errors and info["usable_here"]:
        try:
            info["stamped"] = "no writes at load" if _cds.verify(args.archive) else "relocated at load"
        except (OSError, ValueError) as e:
            errors.append(str(e))
    info["errors"] = errors
    if args.json:
        print(json.dumps(info, indent=1))
    elif errors:
        for line in errors:
            print(f"cds: {line}", file=sys.stderr)
    else:
        for m in modules:
            if m["source"] in ("stale", "missing"):
                print(f"{m['source']:8} {m['name']}: {m.get('why', m['origin'])}")
        summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
        print(f"cds: {args.archive}: {len(modules)} modules ({summary})", end="")
        if info["stamped"]:
            print(f"; every module passes its checks; stamped ({info['stamped']} in this interpreter)")
        else:
            print(f"; not usable by this interpreter: {info['not_usable_because']}")
    stale = counts.get("stale", 0) + counts.get("missing", 0)
    return 0 if info["stamped"] and not stale else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # `python -m cds info IMG | head`: the reader has what it wanted.
        # Point stdout at devnull so that the flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
