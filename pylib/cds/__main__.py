"""Command line: ``python -m cds dump LIST IMG``, ``python -m cds verify IMG`` and ``python -m cds stats``."""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cds", description="code data sharing for CPython")
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="write an archive from a module list (as -X cds_trace writes it)")
    dump.add_argument("list", help="module list: 'name<TAB>path' or 'name' per line")
    dump.add_argument("archive", help="archive file to write (replaced atomically)")
    dump.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    verify = sub.add_parser(
        "verify", help="check every module of an archive and (re)write its stamp, so processes need not check again"
    )
    verify.add_argument("archive", help="archive file to check")
    sub.add_parser("stats", help="print what cds did in this process (archive, served, rejected)")
    args = parser.parse_args(argv)

    if args.command == "dump":
        from cds.dump import run_dump

        try:
            result = run_dump(args.list, args.archive)
        except OSError as e:
            print(f"cds: {e}", file=sys.stderr)
            return 1
        for name, why in result.skipped:
            print(f"cds: skipped {name}: {why}", file=sys.stderr)
        if not args.quiet:
            size = os.path.getsize(args.archive)
            print(f"cds: wrote {args.archive}: {len(result.archived)} modules, {size / 1024:.0f} KiB")
        return 0
    if args.command == "verify":
        import _cds

        try:
            prewritten = _cds.verify(args.archive)
        except (OSError, ValueError) as e:
            print(f"cds: {e}", file=sys.stderr)
            return 1
        how = "no writes at load" if prewritten else "relocated at load"
        print(f"cds: {args.archive}: every module passes its checks; stamped ({how} in this interpreter)")
        return 0
    if args.command == "stats":
        import cds

        for key, value in cds.stats().items():
            print(f"{key}: {value}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
