"""Module and class bodies run from private copies (3.13, docs/DESIGN.md):
they run once per import, and 3.13 writes into the bytecode it runs, so a
body run from the archive would dirty its pages in every process. The
functions' code objects stay the archive's, shared. Observed from inside
real processes: where the running code object lives, and what a program
sees (output, monitoring events, code watchers)."""

import pytest

from conftest import MAPPINGS, STATS, VERSION, stats_of, without_stats

pytestmark = pytest.mark.skipif(
    VERSION < (3, 12), reason="3.11 writes every object it INCREFs: bodies run from the archive (DESIGN.md)"
)

MODULE = """\
import sys
BODY = id(sys._getframe().f_code)
class Point:
    BODY = id(sys._getframe().f_code)
    class Inner:
        BODY = id(sys._getframe().f_code)
    def norm(self):
        return 5
def work(n):
    return sum(range(n))
"""

WHERE = MAPPINGS + """
import sys, bodies_mod
m = bodies_mod
where = lambda address: archived(address, 'mod.img')
print('WHERE', where(m.BODY), where(m.Point.BODY), where(m.Point.Inner.BODY),
      where(id(m.work.__code__)), where(id(m.Point.norm.__code__)), m.work(5), m.Point().norm())
"""


@pytest.fixture
def served(ws):
    """A workspace whose archive holds bodies_mod."""
    ws.write("bodies_mod.py", MODULE)
    ws.archive("-c", "import bodies_mod")
    return ws


def both(ws, prog):
    """`prog`'s output with the archive (which served bodies_mod, silently)
    and without it."""
    cds = ws.replay("-c", prog + "\n" + STATS)
    assert "bodies_mod" in stats_of(cds)["served"] and cds.stderr == "", cds.stderr
    return without_stats(cds.stdout), ws.plain("-c", prog).stdout.strip()


def where(out):
    line = next(l for l in out.splitlines() if l.startswith("WHERE "))
    return line.split()[1:]


def test_bodies_run_from_private_copies_and_functions_from_the_archive(served):
    cds, plain = both(served, WHERE)
    # Module body, class body, nested class body: private; functions: shared.
    assert where(cds) == ["False", "False", "False", "True", "True", "10", "5"]
    assert where(plain) == ["False"] * 5 + ["10", "5"]


def test_a_reimported_module_runs_a_fresh_copy(served):
    prog = (
        "import sys, bodies_mod\n"
        "first = bodies_mod.Point\n"
        "del sys.modules['bodies_mod']\n"
        "import bodies_mod\n"
        "print(first is not bodies_mod.Point, first().norm() == bodies_mod.Point().norm(),"
        " bodies_mod.work.__code__ is sys.modules['bodies_mod'].work.__code__)\n"
    )
    assert both(served, prog) == ("True True True", "True True True")


def test_monitoring_during_the_import_sees_the_bodies_as_without_cds(served):
    prog = (
        "import sys\n"
        "mon = sys.monitoring; TOOL = 3; seen = []\n"
        "mon.use_tool_id(TOOL, 'test')\n"
        "mon.register_callback(TOOL, mon.events.LINE,"
        " lambda code, line: seen.append((code.co_name, line)) if 'bodies_mod' in code.co_filename else None)\n"
        "mon.set_events(TOOL, mon.events.LINE)\n"
        "import bodies_mod\n"
        "mon.set_events(TOOL, 0)\n"
        "print(seen)\n"
    )
    cds, plain = both(served, prog)
    assert cds == plain and "('<module>', 2)" in plain and "('Point', 4)" in plain


def test_with_a_code_watcher_the_bodies_run_from_the_archive(served):
    """A code watcher would see a copy destroyed that it never saw created:
    while one is active, the archived body runs, as before."""
    cds, _ = both(served, "import _testcapi\n_testcapi.add_code_watcher(0)\n" + WHERE)
    assert where(cds) == ["True", "True", "True", "True", "True", "10", "5"]
