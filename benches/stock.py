"""The `_cds` extension on stock CPython 3.11, 3.12 and 3.13 (pyenv's
builds, `pip install .` into a venv), switched on through the original's
variables (PYCDSMODE=TRACE / run_dump / PYCDSMODE=SHARE), against the same
venv with no variable set, and on 3.11 against the original project (PyPI
code-data-share 0.1.0, "pycds") on the same interpreter, side by side in the
same interleaved rounds: whole process, import phase, PSS of 16 processes;
and what the .pth hook costs a start with no variable set (the venv with
the wheel against one without). Called by run.py (`--only stock`)."""

import os
import re
import shutil
import statistics
import subprocess

from run import (CACHE, INPROC, MEMORY, MEMPROC, PEER_WORKLOADS, ROOT, interleaved_processes, log, original_archive,
                 original_share, pss_of, pyenv_root, stats)

PROCS = 16
MEMORY_SET = next(names for label, names, third in MEMORY if label == "asyncio+email+http")


def interpreters():
    """{minor: pyenv python} for each `pyenv:` interpreter ext/versions.txt names."""
    found = {}
    with open(os.path.join(ROOT, "ext", "versions.txt")) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            minor, *specs = line.split()
            for spec in specs:
                if spec.startswith("pyenv:"):
                    python = os.path.join(pyenv_root(), "versions", spec[6:], "bin", "python" + minor)
                    if os.access(python, os.X_OK):
                        found.setdefault(minor, python)
    return found


class Stock:
    def __init__(self, minor, python, quick, env):
        self.minor, self.python, self.quick = minor, python, quick
        self.env = {k: v for k, v in env.items() if not k.startswith(("PYCDS", "PYTHONCDS"))}
        self.work = os.path.join(CACHE, f"bench-stock-{minor}")
        self.cwd = os.path.join(self.work, "cwd")
        self.ext = os.path.join(self.work, "ext-venv", "bin", "python")
        self.plain = os.path.join(self.work, "plain-venv", "bin", "python")

    def setup(self):
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.cwd)
        for venv in ("ext-venv", "plain-venv"):
            subprocess.run([self.python, "-m", "venv", os.path.join(self.work, venv)], check=True)
        log(f"[stock {self.minor}] pip install {ROOT} into {os.path.dirname(os.path.dirname(self.ext))}")
        target = os.path.join(ROOT, "target", "stock", "bench-" + self.minor)
        subprocess.run([self.ext, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ROOT],
                       env={**self.env, "CARGO_TARGET_DIR": target}, check=True)
        for py in (self.ext, self.plain):
            subprocess.run([py, "-m", "compileall", "-q", "-j0", os.path.dirname(os.__file__)], env=self.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def archive(self, python, label, code):
        """(list, archive) of `code`, traced and dumped by `python` through the original's interface."""
        return original_archive(python, code, os.path.join(self.work, label), self.env, self.cwd)

    def share(self, img):
        return original_share(self.env, img)

    def interleaved(self, variants, runs):
        """variants: {label: (exe, argv, env)}: whole processes; stats (ms) per label."""
        return interleaved_processes(variants, runs, self.cwd)[0]

    def import_phase(self, variants, name, lst, runs):
        """variants: {label: (exe, env, inproc mode)}: `import name` timed inside the process (INPROC)."""
        out = {k: [] for k in variants}
        keys = list(variants)
        for r in range(runs + 1):
            for k in keys if r % 2 == 0 else keys[::-1]:
                exe, env, mode = variants[k]
                p = subprocess.run([exe, "-c", INPROC, mode, name, lst], env=env, cwd=self.cwd, check=True,
                                   text=True, capture_output=True)
                if r:  # round 0 warms the page cache
                    out[k].append(int(p.stdout.split()[0]) / 1e6)
        return {k: stats(v) for k, v in out.items()}

    def instructions(self, exe):
        """Instructions `exe -c pass` executes (callgrind, one run: they do
        not vary as wall time does), or None without valgrind."""
        if not shutil.which("valgrind"):
            return None
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe, "-c", "pass"],
                           env={**self.env, "PYTHONHASHSEED": "0"}, cwd=self.cwd, text=True, capture_output=True)
        found = re.search(r"Collected : (\d+)", p.stderr)
        return int(found.group(1)) if p.returncode == 0 and found else None

    def pss(self, exe, env):
        return pss_of([[exe, "-c", MEMPROC, ",".join(MEMORY_SET)]] * PROCS, env, self.cwd)

    def run(self, peer):
        """peer: pycds's venv python on this interpreter (3.11), or None."""
        runs = 10 if self.quick else 30
        res = {"python": subprocess.run([self.ext, "-c", "import sys; print(sys.version.split()[0])"],
                                        capture_output=True, text=True).stdout.strip(), "workloads": {}}
        for name in PEER_WORKLOADS:
            lst, img = self.archive(self.ext, "ext-" + name, f"import {name}")
            whole = {"off": (self.ext, ["-c", f"import {name}"], self.env),
                     "ext": (self.ext, ["-c", f"import {name}"], self.share(img))}
            phase = {"off": (self.ext, self.env, "off"), "ext": (self.ext, self.share(img), "cds")}
            if peer:
                _, pimg = self.archive(peer, "pycds-" + name, f"import {name}")
                whole["pycds-off"] = (peer, ["-c", f"import {name}"], self.env)
                whole["pycds"] = (peer, ["-c", f"import {name}"], self.share(pimg))
                phase["pycds-off"] = (peer, self.env, "off")
                phase["pycds"] = (peer, self.share(pimg), "pycds")
            w = self.interleaved(whole, runs)
            p = self.import_phase(phase, name, lst, runs)
            res["workloads"][name] = {"whole_ms": w, "import_ms": p}
            ratio = lambda st, a, b: st[a]["median"] / st[b]["median"]
            line = (f"[stock {self.minor}] {name}: whole ext {ratio(w, 'off', 'ext'):.2f}x, "
                    f"import ext {ratio(p, 'off', 'ext'):.2f}x")
            if peer:
                line += (f"; pycds whole {ratio(w, 'pycds-off', 'pycds'):.2f}x, "
                         f"import {ratio(p, 'pycds-off', 'pycds'):.2f}x")
            log(line)
        code = "; ".join(f"import {n}" for n in MEMORY_SET)
        _, img = self.archive(self.ext, "ext-memory", code)
        mem = {"off": self.pss(self.ext, self.env), "ext": self.pss(self.ext, self.share(img))}
        if peer:
            _, pimg = self.archive(peer, "pycds-memory", code)
            mem["pycds-off"] = self.pss(peer, self.env)
            mem["pycds"] = self.pss(peer, self.share(pimg))
        res["pss_kb"] = mem
        log(f"[stock {self.minor}] PSS of {PROCS} x {'+'.join(MEMORY_SET)}: " +
            ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in mem.items()))
        # The hook's cost with no variable set: the same interpreter's venv
        # with the wheel (cds-hook.pth) against one without, many rounds;
        # then again with another package's .pth in both (most environments
        # have one: setuptools' distutils-precedence.pth): site's own cost
        # of reading a first .pth (3.12+ imports encodings.utf_8_sig to
        # decode it) is then paid either way.
        for label in ("alone", "beside another .pth"):
            if label != "alone":
                for py in (self.plain, self.ext):
                    site = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"],
                                          capture_output=True, text=True, check=True).stdout.strip()
                    with open(os.path.join(site, "another.pth"), "w") as f:
                        f.write("# another package's path configuration file\n")
            hook = self.interleaved({"without": (self.plain, ["-c", "pass"], self.env),
                                     "with": (self.ext, ["-c", "pass"], self.env)}, 4 * runs)
            res.setdefault("hook", {})[label] = {**hook, "ms": hook["with"]["median"] - hook["without"]["median"],
                                                 "instructions": {"without": self.instructions(self.plain),
                                                                  "with": self.instructions(self.ext)}}
            log(f"[stock {self.minor}] -c pass with the hook installed, no variable, {label}: "
                f"{res['hook'][label]['ms'] * 1000:+.0f} us (medians {hook['without']['median']:.2f} -> "
                f"{hook['with']['median']:.2f} ms)")
        return res


def bench(quick, env, peer_venv):
    """{minor: results} for each stock interpreter; peer_venv(python) gives
    pycds's venv python on that 3.11 interpreter (or None)."""
    res = {}
    for minor, python in interpreters().items():
        s = Stock(minor, python, quick, env)
        s.setup()
        res[minor] = s.run(peer_venv(python) if minor == "3.11" else None)
    return res


def report(res):
    """Markdown lines for results.md."""
    if not res:
        return []
    minors = sorted(res)
    L = ["## Stock CPython with the `_cds` extension (docs/STOCK.md)\n",
         "Each interpreter's venv with the wheel (`pip install .`), archives traced and dumped through the "
         "original's variables; `off` is the same venv with no variable set; pycds 0.1.0 on the same stock 3.11, "
         "in the same interleaved rounds. Speed-up = off / on (medians).\n",
         "| workload | measure | " + " | ".join(f"{m} ext" for m in minors) +
         (" | 3.11 pycds |" if "3.11" in res else " |"),
         "|---|---|" + "---|" * (len(minors) + ("3.11" in res))]
    for name in PEER_WORKLOADS:
        for measure, key in (("whole process", "whole_ms"), ("import phase", "import_ms")):
            cells = []
            for m in minors:
                st = res[m]["workloads"][name][key]
                cells.append(f"{st['off']['median'] / st['ext']['median']:.2f}x")
            if "3.11" in res:
                st = res["3.11"]["workloads"][name][key]
                cells.append(f"{st['pycds-off']['median'] / st['pycds']['median']:.2f}x" if "pycds" in st else "–")
            L.append(f"| {name} | {measure} | " + " | ".join(cells) + " |")
    L.append("")
    if "3.11" in res and "pycds" in res["3.11"]["workloads"][PEER_WORKLOADS[0]]["whole_ms"]:
        # The ratios above each divide by their own venv's `off`; pycds's
        # `.pth` imports its package at every start, variable or not, so its
        # `off` is the slower one. Side by side on the same interpreter:
        L.append("The same rounds on 3.11 as medians (ms): which finishes first. pycds's `off` is its venv with "
                 "no variable, which still imports its package at every start.\n")
        L.append("| workload | measure | off | ext | pycds-off | pycds | pycds / ext |")
        L.append("|---|---|---|---|---|---|---|")
        for name in PEER_WORKLOADS:
            for measure, key in (("whole process", "whole_ms"), ("import phase", "import_ms")):
                st = {k: v["median"] for k, v in res["3.11"]["workloads"][name][key].items()}
                L.append(f"| {name} | {measure} | {st['off']:.2f} | {st['ext']:.2f} | {st['pycds-off']:.2f} | "
                         f"{st['pycds']:.2f} | {st['pycds'] / st['ext']:.3f} |")
        L.append("")
    L.append(f"PSS of {PROCS} processes importing {'+'.join(MEMORY_SET)} (MiB, off → on):\n")
    L.append("| interpreter | off | ext | change | pycds-off | pycds | change |")
    L.append("|---|---|---|---|---|---|---|")
    for m in minors:
        mem = res[m]["pss_kb"]
        row = f"| {res[m]['python']} | {mem['off'] / 1024:.1f} | {mem['ext'] / 1024:.1f} | " \
              f"{(mem['ext'] / mem['off'] - 1) * 100:+.1f}% |"
        if "pycds" in mem:
            row += f" {mem['pycds-off'] / 1024:.1f} | {mem['pycds'] / 1024:.1f} | " \
                   f"{(mem['pycds'] / mem['pycds-off'] - 1) * 100:+.1f}% |"
        else:
            row += " – | – | – |"
        L.append(row)
    L.append("")
    L.append("The hook (`cds-hook.pth`) with no variable set, `-c pass`, the venv with the wheel against one "
             "without (target < 0.3 ms; IQR of the two runs' medians in brackets; then the instructions it adds, "
             "callgrind, which do not vary from run to run as wall time does):\n")
    L.append("| interpreter | the only .pth | beside another .pth | instructions added (only .pth) |")
    L.append("|---|---|---|---|")
    for m in minors:
        cells = []
        for label in ("alone", "beside another .pth"):
            h = res[m]["hook"][label]
            iqr = statistics.mean([h["with"]["iqr"], h["without"]["iqr"]])
            cells.append(f"{h['ms'] * 1000:+.0f} µs (±{iqr * 1000:.0f})")
        n = res[m]["hook"]["alone"].get("instructions") or {}
        cells.append(f"+{(n['with'] - n['without']) / 1e6:.2f} M of {n['without'] / 1e6:.1f} M"
                     if n.get("with") and n.get("without") else "–")
        L.append(f"| {res[m]['python']} | " + " | ".join(cells) + " |")
    L.append("")
    return L
