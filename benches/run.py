#!/usr/bin/env python3
"""End-to-end benches of cds (run by the host python3; spawns the cds interpreters).

    python3 benches/run.py [--versions 3.11 3.13 (default: harness/versions.txt)] [--quick] [--out bench]

For every version: import phase (cds vs off vs the ideal code cache, timed
inside the process), whole-process wall time (`-c 'import X'`, `-c pass`),
memory of 16 concurrent processes (PSS, archive pages written/clean per
region), a pre-fork server (one parent, 16 forked workers),
whole-stdlib dump (time, size vs .pyc). Then the criterion benches of the
format (cargo bench -p cds-benches). Writes OUT/results.md, OUT/results.json
and PNG plots. docs/PERFORMANCE.md explains the method and the numbers.
"""

import argparse
import glob
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("CDS_CACHE", os.path.expanduser("~/.cache/cds"))
HOST = sys.executable


def supported_versions():
    """The pinned versions of harness/versions.txt, the one list."""
    with open(os.path.join(ROOT, "harness", "versions.txt")) as f:
        return [line.split()[0] for line in f if line.strip() and not line.lstrip().startswith("#")]

STDLIB = ["json", "argparse", "typing", "asyncio", "email.message", "http.client",
          "unittest", "decimal", "logging", "dataclasses"]
THIRD_PARTY = ["requests", "rich", "jinja2", "click", "pygments", "sympy"]
PIP_SPECS = ["requests", "rich", "jinja2", "click", "pygments", "sympy"]
# Workloads of the memory bench: (label, modules to import, third party?)
MEMORY = [("sympy", ["sympy"], True), ("asyncio+email+http", ["asyncio", "email.message", "http.client"], False),
          ("7 stdlib", ["asyncio", "email.message", "http.client", "unittest", "json", "argparse", "decimal"], False)]
# The peer: the original project (PyPI code-data-share 0.1.0,
# "pycds") on pyenv's stock CPython 3.11, against a plain venv of the same
# interpreter, side by side with cds 3.11 in the same run.
PEER_SPEC = "code-data-share==0.1.0"
PEER_WORKLOADS = ["json", "asyncio", "unittest", "email.message"]
# The import-phase workloads the issue's targets name, also counted in
# instructions (callgrind): a measure the VM's noise and cache state do
# not move.
INSTR_WORKLOADS = ["json", "argparse", "asyncio", "email.message", "http.client", "unittest"]

# The pre-fork workload (one parent imports, forks workers that use the
# modules): the set and the number of workers.
PREFORK = ("7 stdlib", ["asyncio", "email.message", "http.client", "unittest", "json", "argparse", "decimal"])
PREFORK_WORKERS = 16
# Layers: four programs, four processes each, on one machine. Each with a
# whole archive of its own (the stdlib modules it imports copied into
# each), or with an application archive layered on the default stdlib
# archive (the stdlib pages are one file for all programs).
LAYER_PROGRAMS = [["json", "argparse"], ["asyncio"], ["email.message", "http.client"], ["unittest", "decimal"]]
LAYER_PROCS_EACH = 4
PROC_COUNTS = [1, 2, 4, 8, 16]

# Runs inside the measured interpreter (as -c, so sys.path[0] is the cwd as
# for `-c 'import X'`). Prelude imports builtins only. Modes: off, cds (the
# process was started with -X cds=IMG), ideal (the code objects of every
# traced module are unmarshalled up front and served by a trivial finder).
INPROC = r'''
import sys, gc, marshal
from time import perf_counter_ns
mode, names, lst = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
served = 0
if mode == "ideal":
    import _io, _frozen_importlib_external as ext
    codes = {}
    with _io.open(lst, encoding="utf-8") as f:
        for line in f:
            n, _, path = line.rstrip("\n").partition("\t")
            if n in sys.modules or n in codes or not path.endswith(".py"):
                continue
            try:
                with _io.open(ext.cache_from_source(path), "rb") as p:
                    code = marshal.loads(memoryview(p.read())[16:])
            except OSError:
                with _io.open(path, "rb") as p:
                    code = compile(p.read(), path, "exec", dont_inherit=True)
            codes[n] = (code, path)

    class Loader(ext.SourceFileLoader):
        # exec_module (from _LoaderBasics) calls get_code and execs it, as
        # for a normal import and for cds (whose get_code hook returns the
        # mapped code object).
        def get_code(self, name):
            global served
            served += 1
            return codes[name][0]

    class Finder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            e = codes.get(name)
            if e is None:
                return None
            origin = e[1]
            pkg = origin.endswith("__init__.py")
            return ext.spec_from_file_location(name, origin, loader=Loader(name, origin),
                submodule_search_locations=[origin.rpartition("/")[0]] if pkg else None)

    sys.meta_path.insert(0, Finder)
gc.collect()
t0 = perf_counter_ns()
for n in names:
    __import__(n)
t1 = perf_counter_ns()
rejected = 0
if mode.startswith("cds"):
    import cds
    st = cds.stats()
    served, rejected = len(st["served"]), len(st["rejected"])
sys.stdout.write("%d %d %d\n" % (t1 - t0, served, rejected))
'''

MEMPROC = r'''
import sys
for n in sys.argv[1].split(","):
    __import__(n)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
'''

# The pre-fork parent: imports the set, forks N workers that each use it
# (look at every function of every module, as a worker serving requests
# reaches the code), prints the workers' pids, and waits for stdin; each
# worker waits on a pipe the parent closes at the end.
PREFORKPROC = r'''
import os, sys
names, n = sys.argv[1].split(","), int(sys.argv[2])
for name in names:
    __import__(name)
r, w = os.pipe()
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        for name in names:
            for value in list(vars(sys.modules[name]).values()):
                getattr(value, "__code__", None)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
sys.stdout.write(" ".join(map(str, kids)) + "\n"); sys.stdout.flush()
sys.stdin.read()
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
'''


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def stats(xs):
    xs = sorted(xs)
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = xs[-1] - xs[0]
    return {"median": statistics.median(xs), "iqr": iqr, "n": len(xs), "min": xs[0]}


class Version:
    def __init__(self, v, out, quick):
        self.v = v
        self.tag = "cpython-" + v.replace(".", "")
        self.py = os.path.join(ROOT, "build", f"python-{v}-cds", "python")
        self.lib = os.path.join(os.path.dirname(self.py), "Lib")
        # Lists and archives (hundreds of MB) stay out of the results dir.
        self.work = os.path.join(CACHE, f"bench-work-{v}")
        self.cwd = os.path.join(self.work, "cwd")  # empty: '' on sys.path scans nothing
        self.site = os.path.join(CACHE, f"bench-site-{v}")
        self.quick = quick
        self.env = {k: val for k, val in os.environ.items()
                    if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
                    and not k.startswith(("PYTHONCDS", "PYCDS"))}

    def envfor(self, third_party):
        env = dict(self.env)
        if third_party:
            env["PYTHONPATH"] = self.site
        return env

    def run(self, args, third_party=False, **kw):
        return subprocess.run([self.py, *args], env=self.envfor(third_party), cwd=self.cwd,
                              check=True, text=True, capture_output=True, **kw)

    # -- setup ---------------------------------------------------------
    def setup(self):
        if not os.access(self.py, os.X_OK):
            raise SystemExit(f"{self.py} is not built (make python-{self.v}-cds)")
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.cwd)
        log(f"[{self.v}] compileall stdlib")
        subprocess.run([self.py, "-m", "compileall", "-q", "-j0", self.lib], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.path.exists(os.path.join(self.site, ".installed")):
            log(f"[{self.v}] pip install {' '.join(PIP_SPECS)} -> {self.site}")
            shutil.rmtree(self.site, ignore_errors=True)
            # Pure Python: charset_normalizer from its sdist (no mypyc), and
            # markupsafe's optional C speedups removed (pure fallback).
            subprocess.run([HOST, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--root-user-action=ignore", "--no-compile", "--target", self.site,
                            "--no-binary", "charset-normalizer", *PIP_SPECS], check=True)
            for d, _, files in os.walk(self.site):
                for f in files:
                    if f.endswith(".so"):
                        log(f"  removing C extension {f} (pure-Python fallback)")
                        os.unlink(os.path.join(d, f))
            open(os.path.join(self.site, ".installed"), "w").close()
        log(f"[{self.v}] compileall {self.site}")
        subprocess.run([self.py, "-m", "compileall", "-q", "-j0", self.site], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def trace_dump(self, label, args, third_party=False):
        lst = os.path.join(self.work, label + ".lst")
        img = os.path.join(self.work, label + ".img")
        if os.path.exists(lst):
            os.unlink(lst)
        self.run(["-X", f"cds_trace={lst}", *args], third_party)
        dump_flags = ["-X", "frozen_modules=on"] if "frozen_modules=on" in args else []
        self.run([*dump_flags, "-m", "cds", "dump", "-q", lst, img], third_party)
        return lst, img

    # -- timing --------------------------------------------------------
    def interleaved(self, variants, runs, env, exe=None):
        """variants: {label: argv}, each run by `exe` (this interpreter) in
        `env`; returns ({label: stats (ms)}, {label: times})."""
        exe = exe or self.py
        return interleaved_processes({k: (exe, argv, env) for k, argv in variants.items()}, runs, self.cwd)

    def inproc(self, names, lst, img, runs, third_party):
        env = self.envfor(third_party)
        # cds-nocheck (-X cds_check=none: no source stat, no search-path
        # check) splits cds's gap to the ideal into checks and fix-ups.
        variants = {"off": [], "cds": ["-X", f"cds={img}"], "ideal": [],
                    "cds-nocheck": ["-X", f"cds={img}", "-X", "cds_check=none"]}
        keys = list(variants)
        out = {k: [] for k in keys}
        info = {}
        for r in range(runs + 1):
            order = keys if r % 2 == 0 else keys[::-1]
            for k in order:
                p = subprocess.run([self.py, *variants[k], "-c", INPROC, k, ",".join(names), lst],
                                   env=env, cwd=self.cwd, check=True, text=True, capture_output=True)
                ns, served, rejected = map(int, p.stdout.split())
                if r:  # round 0 warms the page cache
                    out[k].append(ns / 1e6)
                info[k] = {"served": served, "rejected": rejected}
        return {k: stats(v) for k, v in out.items()}, info

    def import_instructions(self, name, lst, img):
        """Instructions executed inside `__import__` (callgrind, collection
        toggled on builtin___import__) for off, cds and ideal; None without
        valgrind."""
        if not shutil.which("valgrind"):
            return None
        counts = {}
        for mode, flags in (("off", []), ("cds", ["-X", f"cds={img}"]), ("ideal", [])):
            out = os.path.join(self.work, f"callgrind.{name}.{mode}")
            p = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                                "--toggle-collect=builtin___import__", f"--callgrind-out-file={out}",
                                self.py, *flags, "-c", INPROC, mode, name, lst],
                               env=self.envfor(False), cwd=self.cwd, text=True, capture_output=True)
            found = re.search(r"Collected : (\d+)", p.stderr)
            if p.returncode != 0 or not found:
                raise RuntimeError(f"callgrind {mode} {name} failed: {p.stderr[-400:]}")
            counts[mode] = int(found.group(1))
            os.unlink(out)
        return counts

    # -- benches -------------------------------------------------------
    def bench_imports(self):
        res = {}
        inruns = 7 if self.quick else 21
        wruns = 10 if self.quick else 30
        for name in STDLIB + THIRD_PARTY:
            res[name] = retry(self, name, lambda: self.bench_import(name, inruns, wruns))
        return res

    def bench_import(self, name, inruns, wruns):
        if True:
            tp = name in THIRD_PARTY
            lst, img = self.trace_dump(name, ["-c", f"import {name}"], tp)
            listed = sum(1 for _ in open(lst))
            ip, info = self.inproc([name], lst, img, inruns, tp)
            if info["cds"]["served"] == 0 or info["cds"]["rejected"]:
                # The interpreter was rebuilt under us (another build id): redo once.
                log(f"[{self.v}] {name}: archive not served ({info['cds']}); dumping again")
                lst, img = self.trace_dump(name, ["-c", f"import {name}"], tp)
                ip, info = self.inproc([name], lst, img, inruns, tp)
            wp, _ = self.interleaved({"off": ["-c", f"import {name}"],
                                      "cds": ["-X", f"cds={img}", "-c", f"import {name}"]},
                                     wruns, self.envfor(tp))
            check = self.run(["-X", f"cds={img}", "-c", f"import {name}, cds; print(len(cds.stats()['served']))"], tp)
            if check.stderr or int(check.stdout) == 0:
                raise RuntimeError(f"archive no longer served after the whole-process runs: {check.stderr.strip()}")
            res = {"inproc": ip, "info": info, "whole": wp, "listed": listed,
                   "img_bytes": os.path.getsize(img),
                   "instructions": self.import_instructions(name, lst, img) if name in INSTR_WORKLOADS else None}
            r = ip["cds"]["median"] / ip["ideal"]["median"]
            log(f"[{self.v}] {name:14s} import off {ip['off']['median']:7.2f} cds {ip['cds']['median']:7.2f} "
                f"ideal {ip['ideal']['median']:7.2f} ms (cds/ideal {r:.3f}); whole off "
                f"{wp['off']['median']:7.2f} cds {wp['cds']['median']:7.2f} ms "
                f"served {info['cds']['served']}/{listed} rejected {info['cds']['rejected']}")
        return res

    def bench_startup(self):
        runs = 10 if self.quick else 40
        res = {}
        for label, flags in (("default", []), ("frozen_modules=on", ["-X", "frozen_modules=on"])):
            lst, img = self.trace_dump("startup-" + label.replace("=", "-"), [*flags, "-c", "pass"])
            st, _ = self.interleaved({"off": [*flags, "-c", "pass"],
                                      "cds": [*flags, "-X", f"cds={img}", "-c", "pass"]}, runs, self.env)
            served = self.run([*flags, "-X", f"cds={img}", "-c",
                               "import cds; s = cds.stats(); print(len(s['served']), len(s['rejected']))"]).stdout.split()
            st["listed"] = sum(1 for _ in open(lst))
            st["served"] = int(served[0])
            res[label] = st
            log(f"[{self.v}] -c pass ({label}): off {st['off']['median']:.2f} cds {st['cds']['median']:.2f} ms "
                f"(listed {st['listed']})")
        # The default archive `python -m cds stdlib` writes (start-up modules and
        # the whole stdlib), named here with -X cds so the build tree stays clean.
        img = os.path.join(self.work, "stdlib-default.img")
        self.run(["-m", "cds", "stdlib", "-q", "-o", img])
        st, _ = self.interleaved({"off": ["-X", "cds_mode=off", "-c", "pass"],
                                  "cds": ["-X", f"cds={img}", "-c", "pass"]}, runs, self.env)
        served = self.run(["-X", f"cds={img}", "-c", "import cds; print(len(cds.stats()['served']))"]).stdout
        st["served"] = int(served)
        st["listed"] = len(json.loads(self.run(["-m", "cds", "info", "--json", img]).stdout)["modules"])
        res["stdlib archive"] = st
        log(f"[{self.v}] -c pass (stdlib archive): off {st['off']['median']:.2f} cds {st['cds']['median']:.2f} ms")
        res["installed, default archive"] = self.startup_installed(runs)
        return res

    def startup_installed(self, runs):
        """`-c pass` of a staged install (`make install-X.Y DESTDIR=...`, as a
        packager builds it) with the default archive `python -m cds stdlib`
        wrote into it, against `-X cds_mode=off`."""
        stage = os.path.join(self.work, "stage")
        shutil.rmtree(stage, ignore_errors=True)
        log(f"[{self.v}] make install-{self.v} DESTDIR={stage}")
        subprocess.run(["make", "-s", f"install-{self.v}", f"DESTDIR={stage}"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        exe = os.path.join(stage, "usr", "local", "bin", "python" + self.v)
        staged = lambda *args: subprocess.run([exe, *args], env=self.env, cwd=self.cwd, check=True,
                                              text=True, capture_output=True).stdout
        staged("-m", "cds", "stdlib", "-q")
        st, _ = self.interleaved({"off": ["-X", "cds_mode=off", "-c", "pass"], "cds": ["-c", "pass"]},
                                 runs, self.env, exe)
        st["served"] = int(staged("-c", "import cds; print(len(cds.stats()['served']))"))
        st["listed"] = len(json.loads(staged("-m", "cds", "info", "--json", staged("-m", "cds", "where").strip()))["modules"])
        log(f"[{self.v}] -c pass (installed, default archive): off {st['off']['median']:.2f} "
            f"cds {st['cds']['median']:.2f} ms")
        shutil.rmtree(stage, ignore_errors=True)
        return st

    def mem_group(self, names, img, n, tp):
        argv = [self.py, *(["-X", f"cds={img}"] if img else []), "-c", MEMPROC, ",".join(names)]
        procs = [subprocess.Popen(argv, env=self.envfor(tp), cwd=self.cwd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(n)]
        try:
            for p in procs:
                assert p.stdout.readline() == "ready\n"
            rollup = [read_kv(f"/proc/{p.pid}/smaps_rollup") for p in procs]
            mapping = archive_mapping(procs[0].pid, img) if img else None
            regions = region_pages(procs[0].pid, img) if img else None
        finally:
            for p in procs:
                p.stdin.close()
            for p in procs:
                p.wait()
        return {"pss_kb": sum(r["Pss"] for r in rollup), "rss_kb": [r["Rss"] for r in rollup],
                "mapping": mapping, "regions": regions}

    def bench_peer(self):
        """Whole-process `-c 'import X'`: cds (this interpreter, its own
        baseline) and pycds (stock 3.11 + the original project, its own venv
        baseline), interleaved in the same rounds; speed-ups off/on."""
        if self.v != "3.11":
            return None
        found = sorted(glob.glob(os.path.join(pyenv_root(), "versions", "3.11.*", "bin", "python3.11")))
        if not found:
            log(f"[{self.v}] peer: no pyenv CPython 3.11, skipped")
            return None
        peer = pycds_venv(found[-1])
        if peer is None:
            return None
        env = {k: v for k, v in self.env.items() if not k.startswith("PYCDS")}
        runs = 10 if self.quick else 30
        res = {}
        for name in PEER_WORKLOADS:
            lst, img = self.trace_dump("peer-" + name, ["-c", f"import {name}"])
            _, pimg = original_archive(peer, f"import {name}", os.path.join(self.work, f"pycds-{name}"), env,
                                       self.cwd)
            variants = {"cds-off": (self.py, ["-c", f"import {name}"], env),
                        "cds": (self.py, ["-X", f"cds={img}", "-c", f"import {name}"], env),
                        "pycds-off": (peer, ["-c", f"import {name}"], env),
                        "pycds": (peer, ["-c", f"import {name}"], original_share(env, pimg))}
            st, _ = interleaved_processes(variants, runs, self.cwd)
            res[name] = {"ms": st, "cds_speedup": st["cds-off"]["median"] / st["cds"]["median"],
                         "pycds_speedup": st["pycds-off"]["median"] / st["pycds"]["median"],
                         "instructions": self.whole_instructions(variants)}
            log(f"[{self.v}] peer {name}: cds {res[name]['cds_speedup']:.2f}x, pycds {res[name]['pycds_speedup']:.2f}x")
        return res

    @staticmethod
    def whole_instructions(variants):
        """Instructions of each whole-process variant (callgrind, one run
        each): the peer comparison without timing noise. None without valgrind."""
        if not shutil.which("valgrind"):
            return None
        counts = {}
        for k, (exe, argv, e) in variants.items():
            p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe, *argv],
                               env=e, text=True, capture_output=True)
            found = re.search(r"Collected : (\d+)", p.stderr)
            if p.returncode != 0 or not found:
                raise RuntimeError(f"callgrind {k} failed: {p.stderr[-400:]}")
            counts[k] = int(found.group(1))
        return counts

    def bench_prefork(self):
        label, names = PREFORK
        code = "; ".join(f"import {n}" for n in names)
        _, img = self.trace_dump("prefork", ["-c", code], False)
        res = {}
        for mode in ("off", "cds"):
            argv = [self.py, *(["-X", f"cds={img}"] if mode == "cds" else []), "-c", PREFORKPROC,
                    ",".join(names), str(PREFORK_WORKERS)]
            p = subprocess.Popen(argv, env=self.envfor(False), cwd=self.cwd, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                kids = [int(x) for x in p.stdout.readline().split()]
                time.sleep(0.2)  # the workers finish touching the modules
                pss = sum(read_kv(f"/proc/{pid}/smaps_rollup")["Pss"] for pid in [p.pid, *kids])
                regions = region_pages(kids[0], img) if mode == "cds" else None
            finally:
                p.stdin.close()
                p.wait()
            res[mode] = {"pss_kb": pss, "regions": regions}
        a, b = res["off"]["pss_kb"], res["cds"]["pss_kb"]
        log(f"[{self.v}] pre-fork {label}, {PREFORK_WORKERS} workers: PSS off {a/1024:.1f} MiB cds {b/1024:.1f} MiB "
            f"({(1 - b / a) * 100:.1f}% less)")
        return {"label": label, "workers": PREFORK_WORKERS, **res}

    def stdlib_home(self):
        """A PYTHONHOME whose lib/pythonX.Y links to the build's stdlib (but
        its __pycache__), so a default archive can live there without
        touching the build tree."""
        home = os.path.join(self.work, "home")
        lib = os.path.join(home, "lib", "python" + self.v)
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(lib)
        for entry in os.listdir(self.lib):
            if entry != "__pycache__":
                os.symlink(os.path.join(self.lib, entry), os.path.join(lib, entry))
        return home

    def pss_of(self, argvs, env):
        return pss_of(argvs, env, self.cwd)

    def bench_layers(self):
        env = dict(self.env, PYTHONHOME=self.stdlib_home())
        run = lambda *args: subprocess.run([self.py, *args], env=env, cwd=self.cwd, check=True,
                                           capture_output=True, text=True)
        run("-m", "cds", "stdlib", "-q")
        default = run("-m", "cds", "where").stdout.strip()
        archives = {"whole": [], "layered": []}
        sizes = {"whole": 0, "layered": 0}
        for i, names in enumerate(LAYER_PROGRAMS):
            lst = os.path.join(self.work, f"layer-{i}.lst")
            run("-X", "cds_mode=off", "-X", f"cds_trace={lst}", "-c", "; ".join(f"import {n}" for n in names))
            for kind, flags in (("whole", ["--whole"]), ("layered", [])):
                img = os.path.join(self.work, f"layer-{i}-{kind}.img")
                run("-m", "cds", "dump", "-q", *flags, lst, img)
                archives[kind].append(img)
                sizes[kind] += os.path.getsize(img)
        res = {"programs": [",".join(n) for n in LAYER_PROGRAMS], "procs_each": LAYER_PROCS_EACH,
               "default_archive_bytes": os.path.getsize(default), "archive_bytes": sizes}
        for mode in ("off", "whole", "layered"):
            argvs = []
            for i, names in enumerate(LAYER_PROGRAMS):
                opt = ["-X", "cds_mode=off"] if mode == "off" else ["-X", f"cds={archives[mode][i]}"]
                argvs += [[self.py, *opt, "-c", MEMPROC, ",".join(names)]] * LAYER_PROCS_EACH
            res[mode] = {"pss_kb": self.pss_of(argvs, env)}
        off = res["off"]["pss_kb"]
        log(f"[{self.v}] layers, {len(LAYER_PROGRAMS)} programs x {LAYER_PROCS_EACH}: PSS off {off / 1024:.1f} MiB, "
            + ", ".join(f"{m} {res[m]['pss_kb'] / 1024:.1f} MiB ({(1 - res[m]['pss_kb'] / off) * 100:.1f}% less)"
                        for m in ("whole", "layered")))
        return res

    def bench_piplist(self):
        """`pip list` in a venv of the interpreter (pip from ensurepip's bundled
        wheel, byte-compiled), archive traced from that command: wall time and
        peak RSS (ru_maxrss from wait4), interleaved."""
        venv = os.path.join(self.work, "venv")
        if not os.path.exists(os.path.join(venv, "bin", "python")):
            subprocess.run([self.py, "-m", "venv", venv], env=self.env, check=True, capture_output=True)
        vpy = os.path.join(venv, "bin", "python")
        subprocess.run([vpy, "-m", "compileall", "-q", "-j0", venv], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {**self.env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
        lst, img = (os.path.join(self.work, "piplist" + ext) for ext in (".lst", ".img"))
        if os.path.exists(lst):
            os.unlink(lst)
        argv = ["-m", "pip", "list"]
        subprocess.run([vpy, "-X", f"cds_trace={lst}", *argv], env=env, cwd=self.cwd, check=True, capture_output=True)
        subprocess.run([vpy, "-m", "cds", "dump", "-q", lst, img], env=env, cwd=self.cwd, check=True, capture_output=True)
        served = subprocess.run([vpy, "-X", f"cds={img}", "-c", "import runpy, sys, cds, io, contextlib\n"
                                 "sys.argv = ['pip', 'list']\n"
                                 "try:\n"
                                 "    with contextlib.redirect_stdout(io.StringIO()): runpy.run_module('pip', run_name='__main__')\n"
                                 "except SystemExit:\n"
                                 "    pass\n"
                                 "print(len(cds.stats()['served']))"],
                                env=env, cwd=self.cwd, check=True, capture_output=True, text=True).stdout.split()[-1]
        variants = {"off": argv, "cds": ["-X", f"cds={img}", *argv]}
        runs = 10 if self.quick else 30
        times = {k: [] for k in variants}
        peak = {k: [] for k in variants}
        devnull = os.open(os.devnull, os.O_RDWR)
        fa = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        for r in range(runs + 1):
            for k in (variants if r % 2 == 0 else list(variants)[::-1]):
                t0 = time.perf_counter_ns()
                pid = os.posix_spawn(vpy, [vpy, *variants[k]], env, file_actions=fa)
                _, status, usage = os.wait4(pid, 0)
                t1 = time.perf_counter_ns()
                if os.waitstatus_to_exitcode(status) != 0:
                    raise RuntimeError(f"pip list ({k}) failed")
                if r:  # round 0 warms the page cache
                    times[k].append((t1 - t0) / 1e6)
                    peak[k].append(usage.ru_maxrss)
        os.close(devnull)
        res = {k: {"wall": stats(times[k]), "peak_rss_kb": statistics.median(peak[k])} for k in variants}
        res["listed"] = sum(1 for _ in open(lst))
        res["served"] = int(served)
        log(f"[{self.v}] pip list: off {res['off']['wall']['median']:.1f} ms cds {res['cds']['wall']['median']:.1f} ms; "
            f"peak RSS off {res['off']['peak_rss_kb'] / 1024:.1f} MiB cds {res['cds']['peak_rss_kb'] / 1024:.1f} MiB")
        return res

    def bench_memory(self):
        res = {}
        for label, names, tp in MEMORY:
            code = "; ".join(f"import {n}" for n in names)
            _, img = self.trace_dump("mem-" + label.replace("+", "-"), ["-c", code], tp)
            rows = {}
            for n in PROC_COUNTS:
                rows[n] = {"off": self.mem_group(names, None, n, tp), "cds": self.mem_group(names, img, n, tp)}
            res[label] = rows
            a, b = rows[16]["off"]["pss_kb"], rows[16]["cds"]["pss_kb"]
            log(f"[{self.v}] memory {label}: 16 procs PSS off {a/1024:.1f} MiB cds {b/1024:.1f} MiB "
                f"({(1 - b / a) * 100:.1f}% less); mapping {rows[16]['cds']['mapping']}")
        return res

    def bench_dump(self):
        lst = os.path.join(self.work, "stdlib.lst")
        img = os.path.join(self.work, "stdlib.img")
        entries = stdlib_modules(self.lib)
        with open(lst, "w") as f:
            for name, path in entries:
                f.write(f"{name}\t{path}\n")
        times = []
        for _ in range(1 if self.quick else 3):
            t0 = time.perf_counter()
            p = self.run(["-m", "cds", "dump", lst, img])
            times.append(time.perf_counter() - t0)
        skipped = {}
        for line in p.stderr.splitlines():
            if line.startswith("cds: skipped "):
                name, _, why = line[len("cds: skipped "):].partition(": ")
                skipped[name] = why
        pyc = 0
        missing = 0
        for name, path in entries:
            if name in skipped:
                continue
            d, base = os.path.split(path)
            c = os.path.join(d, "__pycache__", base[:-3] + f".{self.tag}.pyc")
            if os.path.exists(c):
                pyc += os.path.getsize(c)
            else:
                missing += 1
        size = os.path.getsize(img)
        hdr = open(img, "rb").read(128)
        relocs_size = int.from_bytes(hdr[76:80], "little")
        hot_size = int.from_bytes(hdr[84:88], "little")
        cold_size = int.from_bytes(hdr[92:96], "little")
        res = {"modules": len(entries) - len(skipped), "listed": len(entries), "skipped": skipped,
               "seconds": stats(times), "img_bytes": size, "pyc_bytes": pyc, "pyc_missing": missing,
               "relocs_bytes": relocs_size, "hot": hot_size, "cold": cold_size}
        log(f"[{self.v}] dump stdlib: {res['modules']} modules in {res['seconds']['median']:.2f} s, "
            f"{size/2**20:.1f} MiB vs .pyc {pyc/2**20:.1f} MiB ({size/pyc:.2f}x), {len(skipped)} skipped")
        return res


def retry(ver, what, fn, attempts=4):
    """Other jobs may rebuild the interpreter under us (the binary vanishes
    for a moment, or gets a new build id so the archive no longer serves):
    wait for it and redo the step, trace and dump included."""
    for i in range(attempts):
        try:
            return fn()
        except (OSError, subprocess.CalledProcessError, RuntimeError, ValueError) as e:
            if i == attempts - 1:
                raise
            log(f"[{ver.v}] {what}: {type(e).__name__}: {e}; interpreter rebuilt? retrying in 20 s")
            time.sleep(20)
            while not os.access(ver.py, os.X_OK):
                time.sleep(5)


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0])
    return out


def archive_mapping(pid, img):
    """Sums the smaps fields of every VMA mapping `img` in process `pid`."""
    fields = ("Size", "Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")
    tot = dict.fromkeys(fields, 0)
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                inside = line.rstrip().endswith(img)
            elif inside and head[0].rstrip(":") in fields:
                tot[head[0].rstrip(":")] += int(head[1])
    return tot


def pyenv_root():
    try:
        return subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def region_pages(pid, img):
    """Per archive region (docs/FORMAT.md header fields), how many pages of
    process `pid`'s mapping of `img` are written (private copies: anonymous
    in /proc/PID/pagemap), clean (the file's page: shared) or not resident."""
    import struct
    with open(img, "rb") as f:
        head = f.read(160)
    field = lambda at: struct.unpack_from("<I", head, at)[0]
    regions = {"names": (field(120), field(124)), "hot": (field(80), field(84)), "cold": (field(88), field(92)),
               "tables": (0, field(148)), "names index": (field(148), field(152) * 8),
               "relocations": (field(72), field(76))}
    start = None
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.rstrip().endswith(img) and line.split()[2] == "00000000":
                start = int(line.split("-")[0], 16)
    out = {}
    if start is None:
        return out
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for name, (off, size) in regions.items():
            counts = {"written": 0, "clean": 0, "absent": 0}
            for page in range(off // 4096, (off + size + 4095) // 4096):
                pm.seek((start // 4096 + page) * 8)
                entry = struct.unpack("<Q", pm.read(8))[0]
                present, file_page = entry >> 63 & 1, entry >> 61 & 1
                counts["absent" if not present else "clean" if file_page else "written"] += 1
            out[name] = counts
    return out


def spawn_time(exe, argv, env):
    """Wall time (ns) of one process `exe argv` in `env`, output discarded."""
    devnull = os.open(os.devnull, os.O_RDWR)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(exe, [exe, *argv], env, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{exe} {argv} failed")
    return t1 - t0


def interleaved_processes(variants, runs, cwd):
    """variants: {label: (exe, argv, env)}, run in `cwd`: one warming run
    each, then ABBA-alternating rounds; returns ({label: stats (ms)},
    {label: times (ms)})."""
    os.chdir(cwd)
    times = {k: [] for k in variants}
    keys = list(variants)
    for k in keys:  # warm the page cache
        spawn_time(*variants[k])
    for r in range(runs):
        for k in keys if r % 2 == 0 else keys[::-1]:
            times[k].append(spawn_time(*variants[k]) / 1e6)
    return {k: stats(v) for k, v in times.items()}, times


def original_archive(python, code, stem, env, cwd):
    """Traces `code` and dumps it through the original project's interface
    (PYCDSMODE=TRACE, `cds.dump.run_dump`): pycds, or the `_cds` extension
    on a stock interpreter. Returns (list, archive) = `stem`.lst, .img."""
    lst, img = stem + ".lst", stem + ".img"
    for f in (lst, img):
        if os.path.exists(f):
            os.unlink(f)
    subprocess.run([python, "-c", code], env={**env, "PYCDSMODE": "TRACE", "PYCDSLIST": lst}, cwd=cwd,
                   check=True, capture_output=True)
    subprocess.run([python, "-c", f"import cds.dump; cds.dump.run_dump({lst!r}, {img!r})"], env=env, cwd=cwd,
                   check=True, capture_output=True)
    return lst, img


def original_share(env, img):
    """`env` with the original's variables that serve from `img`."""
    return {**env, "PYCDSMODE": "SHARE", "PYCDSARCHIVE": img}


def pss_of(argvs, env, cwd):
    """Total PSS (KiB) of processes started with `argvs` (MEMPROC) once all are ready."""
    procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for argv in argvs]
    try:
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        return sum(read_kv(f"/proc/{p.pid}/smaps_rollup")["Pss"] for p in procs)
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()


def pycds_venv(python):
    """The python of a venv of `python` with the original project installed
    (made once, under CACHE), or None if it cannot be installed."""
    venv = os.path.join(CACHE, "bench-pycds-venv-" + os.path.basename(os.path.dirname(os.path.dirname(python))))
    peer = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".installed")):
        log(f"peer: venv of {python} + {PEER_SPEC}")
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([python, "-m", "venv", venv], check=True)
            subprocess.run([peer, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_SPEC],
                           check=True)
        except subprocess.CalledProcessError as e:
            log(f"peer: cannot install {PEER_SPEC} ({e}); skipped")
            return None
        open(os.path.join(venv, ".installed"), "w").close()
    return peer


SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages",
             "__pycache__", "__phello__"}


def stdlib_modules(lib):
    out = []
    for d, dirs, files in os.walk(lib):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and x.isidentifier()
                         and os.path.exists(os.path.join(d, x, "__init__.py")))
        rel = os.path.relpath(d, lib)
        pkg = [] if rel == "." else rel.split(os.sep)
        for f in sorted(files):
            if not f.endswith(".py") or not f[:-3].isidentifier():
                continue
            parts = pkg if f == "__init__.py" else pkg + [f[:-3]]
            if not parts:
                continue
            out.append((".".join(parts), os.path.join(d, f)))
    return out


def criterion(out, quick):
    args = ["cargo", "bench", "-p", "cds-benches", "--bench", "format", "--",
            "--warm-up-time", "0.3" if quick else "1", "--measurement-time", "1" if quick else "3",
            "--noplot"]
    env = dict(os.environ)
    if quick:
        env["CDS_BENCH_SIZES_MB"] = "1,100"
    log("criterion: " + " ".join(args))
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    base = os.path.join(ROOT, "target", "criterion")
    res = {}
    for group in ("open", "lookup", "fixup", "dump"):
        gdir = os.path.join(base, group)
        if not os.path.isdir(gdir):
            continue
        for fn in sorted(os.listdir(gdir)):
            fdir = os.path.join(gdir, fn)
            for param in sorted(os.listdir(fdir)):
                est = os.path.join(fdir, param, "new", "estimates.json")
                bm = os.path.join(fdir, param, "new", "benchmark.json")
                if not param.isdigit() or not os.path.exists(est):
                    continue
                e = json.load(open(est))
                b = json.load(open(bm))
                res.setdefault(f"{group}/{fn}", {})[int(param)] = {
                    "ns": e["median"]["point_estimate"],
                    "ci": [e["median"]["confidence_interval"]["lower_bound"],
                           e["median"]["confidence_interval"]["upper_bound"]],
                    "throughput": b.get("throughput")}
    return res


# -- report ------------------------------------------------------------

def fmt_ms(s):
    return f"{s['median']:.2f} ± {s['iqr']:.2f}"


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = read_kv("/proc/meminfo").get("MemTotal", 0) // 1024
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {mem} MiB RAM, Linux {platform.release()}"


def report(all_res, crit, out):
    L = []
    L.append("# cds bench results\n")
    L.append(f"Generated by `make bench` (`benches/run.py`) on {all_res.get('generated') or time.strftime('%Y-%m-%d %H:%M')}; "
             f"machine: {machine()}; load average at start: {all_res['loadavg']}. "
             "Times are medians ± IQR (interquartile range) in ms; ratios are of medians. "
             "Method: docs/PERFORMANCE.md.\n")
    for v, r in all_res["versions"].items():
        L.append(f"## CPython {v}\n")
        L.append(f"### Import phase (time of `import X` inside the process, {next(iter(r['imports'].values()))['inproc']['off']['n']} runs per mode, interleaved)\n")
        L.append("| workload | off ms | cds ms | ideal ms | cds/ideal | ≤1.10 | cds/off | cds check=none ms | served/listed |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for name, w in r["imports"].items():
            ip = w["inproc"]
            ci = ip["cds"]["median"] / ip["ideal"]["median"]
            co = ip["cds"]["median"] / ip["off"]["median"]
            L.append(f"| {name} | {fmt_ms(ip['off'])} | {fmt_ms(ip['cds'])} | {fmt_ms(ip['ideal'])} | "
                     f"{ci:.3f} | {'yes' if ci <= 1.10 else '**no**'} | {co:.3f} | {fmt_ms(ip['cds-nocheck'])} | "
                     f"{w['info']['cds']['served']}/{w['listed']} |")
        L.append("")
        counted = {name: w["instructions"] for name, w in r["imports"].items() if w.get("instructions")}
        if counted:
            L.append("### Import phase in instructions (callgrind, inside `__import__`; one run each)\n")
            L.append("Deterministic: what each mode executes, without the VM's timing noise, page-fault "
                     "costs or cache state (the ideal's code objects were just unmarshalled, so they "
                     "are cache-warm).\n")
            L.append("| workload | off Minstr | cds Minstr | ideal Minstr | cds/ideal | cds/off |")
            L.append("|---|---|---|---|---|---|")
            for name, c in counted.items():
                L.append(f"| {name} | {c['off'] / 1e6:.1f} | {c['cds'] / 1e6:.1f} | {c['ideal'] / 1e6:.1f} | "
                         f"{c['cds'] / c['ideal']:.3f} | {c['cds'] / c['off']:.3f} |")
            L.append("")
        n = next(iter(r["imports"].values()))["whole"]["off"]["n"]
        L.append(f"### Whole process (`./python [-X cds=X.img] -c 'import X'` wall time, {n} runs each, interleaved)\n")
        L.append("| workload | off ms | cds ms | cds/off | archive KiB |")
        L.append("|---|---|---|---|---|")
        for name, w in r["imports"].items():
            wp = w["whole"]
            L.append(f"| {name} | {fmt_ms(wp['off'])} | {fmt_ms(wp['cds'])} | "
                     f"{wp['cds']['median'] / wp['off']['median']:.3f} | {w['img_bytes'] // 1024} |")
        L.append("")
        L.append("### Bare startup (`-c pass`): archives of the traced start-up modules, the stdlib archive, a staged install with its default archive\n")
        L.append("| setting | off ms | cds ms | cds/off | modules served/listed | faster? |")
        L.append("|---|---|---|---|---|---|")
        for label, s in r["startup"].items():
            ratio = s["cds"]["median"] / s["off"]["median"]
            L.append(f"| {label} | {fmt_ms(s['off'])} | {fmt_ms(s['cds'])} | {ratio:.3f} | "
                     f"{s['served']}/{s['listed']} | {'yes' if ratio < 1 else '**no**'} |")
        L.append("")
        L.append("### Memory (processes alive at once, each after the imports; PSS from /proc/PID/smaps_rollup)\n")
        for label, rows in r["memory"].items():
            L.append(f"**{label}**\n")
            L.append("| processes | total PSS off MiB | total PSS cds MiB | saving | RSS/process off MiB | RSS/process cds MiB |")
            L.append("|---|---|---|---|---|---|")
            for n, row in rows.items():
                a, b = row["off"]["pss_kb"], row["cds"]["pss_kb"]
                L.append(f"| {n} | {a / 1024:.1f} | {b / 1024:.1f} | {(1 - b / a) * 100:.1f}% | "
                         f"{statistics.median(row['off']['rss_kb']) / 1024:.1f} | "
                         f"{statistics.median(row['cds']['rss_kb']) / 1024:.1f} |")
            m = rows[max(rows)]["cds"]["mapping"]
            L.append("")
            L.append(f"Archive mapping in one of {max(rows)} processes (kB): " +
                     ", ".join(f"{k} {v}" for k, v in m.items()) + "\n")
            L.extend(region_table(rows[max(rows)]["cds"].get("regions")))
        peer = r.get("peer")
        if peer:
            L.append("### Peer: cds vs the original pycds (whole process `-c 'import X'`, each against its own baseline)\n")
            L.append("| workload | cds speed-up | pycds speed-up | cds ahead by |")
            L.append("|---|---|---|---|")
            for name, row in peer.items():
                L.append(f"| {name} | {row['cds_speedup']:.2f}x | {row['pycds_speedup']:.2f}x | "
                         f"{row['cds_speedup'] - row['pycds_speedup']:+.2f} |")
            L.append("")
            counted = {name: row["instructions"] for name, row in peer.items() if row.get("instructions")}
            if counted:
                L.append("The same in instructions (callgrind, one run each). *Ideal bound*: the cds "
                         "interpreter's own baseline minus what a perfect code cache saves in its import "
                         "phase (off − ideal, table above): the speed-up no code cache can exceed.\n")
                L.append("| workload | cds-off Minstr | cds | pycds-off | pycds | cds speed-up | pycds speed-up "
                         "| ideal bound |")
                L.append("|---|---|---|---|---|---|---|---|")
                for name, c in counted.items():
                    ip = r["imports"].get(name, {}).get("instructions")
                    bound = (f"{c['cds-off'] / (c['cds-off'] - (ip['off'] - ip['ideal'])):.2f}x" if ip else "")
                    L.append(f"| {name} | {c['cds-off'] / 1e6:.1f} | {c['cds'] / 1e6:.1f} | "
                             f"{c['pycds-off'] / 1e6:.1f} | {c['pycds'] / 1e6:.1f} | {c['cds-off'] / c['cds']:.3f}x | "
                             f"{c['pycds-off'] / c['pycds']:.3f}x | {bound} |")
                L.append("")
        pl = r.get("piplist")
        if pl:
            L.append("### `pip list` in a venv (archive traced from it; wall time and peak RSS, interleaved)\n")
            L.append("| off ms | cds ms | speed-up | peak RSS off MiB | peak RSS cds MiB | served/listed |")
            L.append("|---|---|---|---|---|---|")
            L.append(f"| {fmt_ms(pl['off']['wall'])} | {fmt_ms(pl['cds']['wall'])} | "
                     f"{pl['off']['wall']['median'] / pl['cds']['wall']['median']:.2f}x | "
                     f"{pl['off']['peak_rss_kb'] / 1024:.1f} | {pl['cds']['peak_rss_kb'] / 1024:.1f} | "
                     f"{pl['served']}/{pl['listed']} |\n")
        pf = r.get("prefork")
        if pf:
            a, b = pf["off"]["pss_kb"], pf["cds"]["pss_kb"]
            L.append(f"### Pre-fork: one parent imports {pf['label']}, forks {pf['workers']} workers that use it\n")
            L.append("| total PSS off MiB | total PSS cds MiB | saving |")
            L.append("|---|---|---|")
            L.append(f"| {a / 1024:.1f} | {b / 1024:.1f} | {(1 - b / a) * 100:.1f}% |\n")
            L.extend(region_table(pf["cds"].get("regions"), "one worker"))
        ly = r.get("layers")
        if ly:
            off = ly["off"]["pss_kb"]
            L.append(f"### Layers: {len(ly['programs'])} programs ({'; '.join(ly['programs'])}), "
                     f"{ly['procs_each']} processes each\n")
            L.append("Each program with a whole archive of its own, or with an application archive "
                     f"layered on the default stdlib archive ({ly['default_archive_bytes'] / 2**20:.1f} MiB).\n")
            L.append("| | total PSS MiB | saving | archives MiB |")
            L.append("|---|---|---|---|")
            L.append(f"| off | {off / 1024:.1f} | | |")
            for m in ("whole", "layered"):
                p = ly[m]["pss_kb"]
                L.append(f"| {m} | {p / 1024:.1f} | {(1 - p / off) * 100:.1f}% | {ly['archive_bytes'][m] / 2**20:.1f} |")
            L.append("")
        d = r["dump"]
        L.append("### Dump of the whole stdlib\n")
        L.append("| modules | skipped | dump s (median) | archive MiB | .pyc MiB | archive/.pyc | relocations MiB | hot MiB | cold MiB |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        L.append(f"| {d['modules']} | {len(d['skipped'])} | {d['seconds']['median']:.2f} | "
                 f"{d['img_bytes'] / 2**20:.2f} | {d['pyc_bytes'] / 2**20:.2f} | "
                 f"{d['img_bytes'] / d['pyc_bytes']:.2f} | {d.get('relocs_bytes', 0) / 2**20:.2f} | "
                 f"{d['hot'] / 2**20:.2f} | {d['cold'] / 2**20:.2f} |")
        if d["skipped"]:
            L.append("\nSkipped: " + "; ".join(f"`{k}`: {v}" for k, v in sorted(d["skipped"].items())))
        L.append("")
    if crit:
        L.append("## Archive format (criterion, `cargo bench -p cds-benches`; synthetic archives)\n")
        sizes = sorted({s for v in crit.values() for s in v})
        L.append("| bench | " + " | ".join(f"{s} MiB" for s in sizes) + " |")
        L.append("|---|" + "---|" * len(sizes))
        for key, per in crit.items():
            cells = []
            for s in sizes:
                e = per.get(s)
                if e is None:
                    cells.append("")
                    continue
                cell = fmt_ns(e["ns"])
                t = e.get("throughput") or {}
                if "Bytes" in t:
                    cell += f" ({t['Bytes'] / e['ns'] * 1e9 / 2**20:.0f} MiB/s)"
                if "Elements" in t:
                    cell += f" ({e['ns'] / t['Elements']:.0f} ns each)"
                cells.append(cell)
            L.append(f"| {key} | " + " | ".join(cells) + " |")
        L.append("")
    if all_res.get("stock"):
        import stock

        L.extend(stock.report(all_res["stock"]))
    L.append("Plots: " + ", ".join(f"`{p}`" for p in sorted(os.listdir(out)) if p.endswith(".png")) + "\n")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L))


def region_table(regions, who="one process"):
    """Markdown lines: pages of each archive region written / clean / not resident."""
    if not regions:
        return []
    L = [f"Archive pages per region in {who} (written: a private copy; clean: shared with the file):\n",
         "| region | pages | written | clean | not resident | clean or untouched |", "|---|---|---|---|---|---|"]
    for name, c in regions.items():
        total = sum(c.values())
        kept = c["clean"] + c["absent"]
        L.append(f"| {name} | {total} | {c['written']} | {c['clean']} | {c['absent']} | "
                 f"{kept / total * 100 if total else 0:.0f}% |")
    L.append("")
    return L


def fmt_ns(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def pages_plot(plt, v, r, out):
    """Archive pages per region in one process of the largest memory run of
    each workload: written (private), clean (shared with the file), not
    resident."""
    runs = {label: rows[max(rows, key=int)]["cds"].get("regions") for label, rows in r.get("memory", {}).items()}
    runs = {label: regions for label, regions in runs.items() if regions}
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs) + 1, 4), squeeze=False)
    for ax, (label, regions) in zip(axes[0], runs.items()):
        names = list(regions)
        bottom = [0] * len(names)
        for state, color in (("written", "#d62728"), ("clean", "#2ca02c"), ("absent", "#cccccc")):
            ys = [regions[n][state] for n in names]
            ax.bar(names, ys, bottom=bottom, label=state, color=color)
            bottom = [b + y for b, y in zip(bottom, ys)]
        ax.set_ylabel("pages")
        ax.set_title(f"{v}: {label}")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"pages-{v}.png"), dpi=110)
    plt.close(fig)


def plots(all_res, crit, out):
    mpl = os.path.join(CACHE, "bench-mpl")
    if not os.path.isdir(mpl):
        subprocess.run([HOST, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--root-user-action=ignore", "--target", mpl, "matplotlib"], check=False)
    sys.path.insert(0, mpl)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log(f"no plots: {e}")
        return
    for v, r in all_res["versions"].items():
        # Ratios on a linear axis: cds against off and against the ideal
        # code cache, with the issue's target for cds/ideal.
        names = list(r["imports"])
        fig, ax = plt.subplots(figsize=(12, 4.5))
        w = 0.4
        for i, (other, color) in enumerate((("off", "#999999"), ("ideal", "#2ca02c"))):
            ys = [r["imports"][n]["inproc"]["cds"]["median"] / r["imports"][n]["inproc"][other]["median"]
                  for n in names]
            ax.bar([x + (i - 0.5) * w for x in range(len(names))], ys, w, label=f"cds / {other}", color=color)
        ax.axhline(1.0, color="black", linewidth=0.8)
        target = 1.25 if v == "3.11" else 1.10  # issue 11: 3.11 writes refcounts
        ax.axhline(target, color="#d62728", linewidth=0.8, linestyle="--", label=f"target cds / ideal ({target:.2f})")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_ylabel("ratio of medians (import phase, wall)")
        ax.set_title(f"CPython {v}: import phase, cds against off and against the ideal code cache")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"import-{v}.png"), dpi=110)
        plt.close(fig)
        pages_plot(plt, v, r, out)
        fig, axes = plt.subplots(1, len(r["memory"]), figsize=(11, 4))
        for ax, (label, rows) in zip(axes, r["memory"].items()):
            ns = list(rows)
            for mode, color in (("off", "#999999"), ("cds", "#1f77b4")):
                ax.plot(ns, [rows[n][mode]["pss_kb"] / 1024 for n in ns], "o-", label=mode, color=color)
            ax.set_xlabel("concurrent processes")
            ax.set_ylabel("total PSS, MiB")
            ax.set_title(f"{v}: {label}")
            ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"pss-{v}.png"), dpi=110)
        plt.close(fig)
    if crit:
        keys = [k for k in crit if not k.startswith("dump")]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for k in keys:
            ss = sorted(crit[k])
            ax.plot(ss, [crit[k][s]["ns"] / 1e3 for s in ss], "o-", label=k)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("archive size, MiB")
        ax.set_ylabel("µs (median)")
        ax.set_title("archive format: open, lookup (64 names), per-module fix-up")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "format.png"), dpi=110)
        plt.close(fig)


def numeric_keys(o):
    """JSON gives back every key as a str: process counts and sizes again as ints."""
    if isinstance(o, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): numeric_keys(v) for k, v in o.items()}
    if isinstance(o, list):
        return [numeric_keys(v) for v in o]
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", nargs="+", default=supported_versions())
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--only", nargs="*", default=["imports", "startup", "memory", "prefork", "layers", "piplist", "peer",
                                                  "stock",
                                                  "dump", "criterion"])
    ap.add_argument("--replot", action="store_true", help="redo plots and results.md from OUT/results.json")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    if a.replot:
        with open(os.path.join(out, "results.json")) as f:
            all_res = numeric_keys(json.load(f))
        plots(all_res, all_res.get("criterion", {}), out)
        report(all_res, all_res.get("criterion", {}), out)
        return
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    all_res = {"loadavg": " ".join(open("/proc/loadavg").read().split()[:3]), "versions": {},
               "generated": time.strftime("%Y-%m-%d %H:%M")}
    per_version = [p for p in ("startup", "imports", "memory", "prefork", "layers", "piplist", "peer", "dump")
                   if p in a.only]
    for v in a.versions if per_version else []:
        ver = Version(v, out, a.quick)
        ver.setup()
        r = all_res["versions"][v] = {"python": ver.run(["-c", "import sys; print(sys.version)"]).stdout.strip()}
        for part in per_version:
            r[part] = retry(ver, part, getattr(ver, "bench_" + part))
    if "stock" in a.only:
        import stock

        all_res["stock"] = stock.bench(a.quick, os.environ, pycds_venv)
    crit = criterion(out, a.quick) if "criterion" in a.only else {}
    all_res["criterion"] = crit
    all_res["seconds"] = time.time() - t0
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(all_res, f, indent=1, default=str)
    if {"imports", "startup", "memory", "dump"} <= set(a.only):
        plots(all_res, crit, out)
        report(all_res, crit, out)
        log(f"wrote {out}/results.md in {all_res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
