"""What the patched interpreter has and a stock one with the `_cds`
extension lacks: said by `python -m cds info`, listed in docs/STOCK.md (the
same table as `cds._unpatched.WITHOUT_PATCHES`), and a hook that does nothing
unasked."""

import re
from pathlib import Path

import pytest

from conftest import STATS, STOCK, VERSION, clean_env, run, stats_of, without_stats

STOCK_MD = Path(__file__).resolve().parent.parent / "docs" / "STOCK.md"


def test_the_docs_table_is_the_codes():
    from cds._unpatched import WITHOUT_PATCHES

    rows = [l for l in STOCK_MD.read_text().splitlines() if re.match(r"\| \d{4}-", l)]
    documented = [tuple(cell.strip() for cell in row.strip("|").split("|")) for row in rows]
    assert documented == [tuple(item) for item in WITHOUT_PATCHES]


def test_each_patch_named_is_in_a_series():
    from cds._unpatched import WITHOUT_PATCHES

    patches = Path(__file__).resolve().parent.parent / "patches"
    for patch, versions, _ in WITHOUT_PATCHES:
        for version in versions.split():
            assert (patches / version / f"{patch}.patch").is_file(), (patch, version)


def test_info_says_what_this_interpreter_lacks(ws):
    ws.write("alpha.py", "A = 1\n")
    img = ws.archive("-c", "import alpha")
    text = run("-m", "cds", "info", img).stdout
    if not STOCK:
        assert "interpreter:  patched\n" in text and "without 0" not in text
        return
    assert "interpreter:  stock, with the _cds extension\n" in text
    lacking = re.findall(r"^  without (\d{4})-", text, re.M)
    expected = {(3, 11): ["0002", "0003", "0004", "0006"], (3, 12): ["0002", "0003", "0007", "0008", "0009"],
                (3, 13): ["0002", "0003", "0005", "0007", "0008", "0009"]}[VERSION]
    assert lacking == expected


def test_unasked_the_hook_imports_nothing():
    # No cds variable or option: neither the package nor the extension loads
    # (cds-hook.pth on a stock interpreter; the patched one has _cds built in).
    program = "import sys; print('cds' in sys.modules, '_cds' in sys.modules and STOCK)"
    out = run("-c", program.replace("STOCK", str(STOCK)), env=clean_env()).stdout
    assert out == "False False\n"


@pytest.mark.skipif(not STOCK, reason="the extension of a stock interpreter (the patched one has _cds built in)")
def test_the_extension_carries_its_own_unwinder():
    # ext/build.rs links libgcc_eh into the extension: loading it maps no
    # second library (libgcc_s cost 0.18 ms of every start that uses cds).
    program = ("import cds._cds, os; maps = open('/proc/self/maps').read(); "
               "print(os.path.basename(cds._cds.__file__) in maps, 'libgcc_s' in maps)")
    assert run("-c", program, env=clean_env()).stdout == "True False\n"


def test_the_hook_fixes_the_start_up_archive_up_as_it_starts(ws):
    # docs/STOCK.md, "Fixed up at start": every module, imported or not;
    # still served only when its source is unchanged. The patched
    # interpreter fixes each module up at its first import.
    ws.write("alpha.py", "A = 1\n")
    ws.write("beta.py", "B = 2\n")
    img = ws.archive("-c", "import alpha, beta")
    ws.write("beta.py", "B = 30\n")
    env = clean_env(PYCDSMODE="SHARE", PYCDSARCHIVE=img, PYCDSVERBOSE="2")
    proc = run("-c", "import beta; print(beta.B)\n" + STATS, env=env, cwd=ws.path)
    stats = stats_of(proc)
    assert without_stats(proc.stdout) == "30"
    assert "beta" in stats["rejected"] and "alpha" not in stats["served"]
    fixed_up = [l for l in proc.stderr.splitlines() if l.startswith("cds: fixed up ")]
    assert fixed_up == ([f"cds: fixed up {stats['modules']} modules of {img} at start"] if STOCK else [])
