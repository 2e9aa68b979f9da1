"""The outcome of every test file of one `python -m test` run, for
harness/regrtest.sh: read from the run's --junit-xml report, which lists
every test case that ran, grouped in one <testsuite> per test file.

    regrtest_outcomes.py EXPECTED REPORT.xml LOG > OUTCOMES

EXPECTED lists the test files the run was given, one a line. OUTCOMES gets
one `OUTCOME<TAB>TEST` line per expected test file, OUTCOME being one of

    passed     every case passed (or was skipped), and at least one passed
    failed     a case failed, or succeeded unexpectedly
    error      a case raised an error, or the test file raised at import
    crashed    its worker died (no cases in the report)
    timed_out  its worker was stopped by --timeout (no cases in the report)
    skipped    every case was skipped, or the test file was skipped as a
               whole (before any case ran: a missing module or resource)
    no_tests   it ran no test case
    no_result  no cases in the report and no progress line in the log (the
               run was cut short)

plus `env_changed<TAB>TEST` for each test file that altered the execution
environment (a regrtest verdict the report does not carry). harness/
regrtest.sh counts failed, error, crashed, timed_out and no_result as failed.

A test file whose worker dies or hits the timeout leaves no cases in the
report (the worker sends them when the file is done), nor does one that is
skipped as a whole, raises at import, or fails only in setUpClass or
setUpModule (such an error has no <testcase>); only for those is the log
consulted: regrtest's progress line for the file ("[ 3/10] test_x crashed
(Exit code 1)", "test_x failed (1 error)") says which it was, and the
faulthandler dump printed under it ("Timeout (0:04:00)!") tells a timeout
from a crash. (3.11's regrtest calls a file whose only error is in
setUpClass one that "ran no tests"; so does this script, then.)
"""

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

# A dotted name inside a test case id, e.g. "test.test_json.test_decode.
# TestDecode.test_float", or "test.test_json.test_decode.TestDecode" in
# "setUpClass (test.test_json.test_decode.TestDecode)".
DOTTED = re.compile(r"(?<![\w.])[A-Za-z_][\w.]*")


def modules_of(expected):
    """{module: test file}: test file NAME is module test.NAME (NAME itself
    when dotted, as 3.13's split test packages are, or under --testdir)."""
    modules = {}
    for name in expected:
        modules[name] = name
        if not name.startswith("test."):
            modules[f"test.{name}"] = name
    return modules


def test_file_of(case_id, modules):
    """The test file a test case id belongs to: the one whose module is the
    longest prefix of a dotted name in the id."""
    best = None
    for dotted in DOTTED.findall(case_id):
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            name = modules.get(".".join(parts[:n]))
            if name is not None:
                if best is None or len(name) > len(best):
                    best = name
                break
    return best


def case_outcome(case):
    if case.find("error") is not None:
        return "error"
    if case.find("failure") is not None or (case.findtext("outcome") or "") == "UNEXPECTED_SUCCESS":
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def outcomes_from_report(path, expected):
    """{test file: outcome} for the test files with cases in the report, and
    the number of <testsuite> elements with errors or failures that no
    expected test file claims."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        return {}, 0  # 3.13 writes no report when no test file produced cases
    modules = modules_of(expected)
    cases = defaultdict(list)
    unclaimed = 0
    for suite in root.iter("testsuite"):
        owners = Counter(test_file_of(c.get("name", ""), modules) for c in suite.iter("testcase"))
        owners.pop(None, None)
        if not owners:
            unclaimed += suite.get("errors", "0") != "0" or suite.get("failures", "0") != "0"
            continue
        # One <testsuite> per test file: its cases go to the file most of them name.
        owner = owners.most_common(1)[0][0]
        cases[owner].extend(case_outcome(c) for c in suite.iter("testcase"))
    result = {}
    for name, outs in cases.items():
        for outcome in ("error", "failed"):
            if outcome in outs:
                result[name] = outcome
                break
        else:
            result[name] = "passed" if "passed" in outs else "skipped"
    return result, unclaimed


# What regrtest's progress line says after the test file's name (3.11 and
# 3.13), for a test file without cases in the report.
VERDICTS = [
    ("passed", "passed"),
    ("timed out", "timed_out"),
    ("crashed", "crashed"),
    ("worker non-zero exit code", "crashed"),
    ("worker bug", "crashed"),
    ("skipped", "skipped"),
    ("run no tests", "no_tests"),
    ("ran no tests", "no_tests"),
    ("failed (uncaught exception)", "error"),
    ("failed", "failed"),
]
# What a worker prints when --timeout stops it: faulthandler's traceback
# dump, then exit code 1 (3.11 and 3.13 report that as a crash).
TIMEOUT_DUMP = re.compile(r"^Timeout \(\d+:\d\d:\d\d\)!")


def progress_verdicts(log_path, expected):
    """{test file: (the text after its name on its progress line, whether
    the output printed under that line shows the --timeout dump)}."""
    names = "|".join(re.escape(n) for n in sorted(expected, key=len, reverse=True))
    progress = re.compile(rf"\[[\d /]+\] ({names}) (.*)$")
    found = {}
    current = None
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for text in log:
            text = text.rstrip("\n")
            m = progress.search(text)
            if m:
                current = m.group(1)
                found[current] = (m.group(2), False)
            elif current and TIMEOUT_DUMP.match(text):
                found[current] = (found[current][0], True)
    return found


def outcome_without_cases(verdict, timeout_dump):
    outcome = next((o for text, o in VERDICTS if verdict.startswith(text)), "no_result")
    if outcome == "crashed" and timeout_dump:
        return "timed_out"
    if outcome == "failed" and "error" in verdict:
        return "error"
    return outcome


def main(expected_path, report_path, log_path):
    with open(expected_path) as f:
        expected = [line.strip() for line in f if line.strip()]
    outcomes, unclaimed = outcomes_from_report(report_path, expected)
    verdicts = progress_verdicts(log_path, expected) if expected else {}
    for name in expected:
        verdict, timeout_dump = verdicts.get(name, ("", False))
        outcome = outcomes.get(name) or outcome_without_cases(verdict, timeout_dump)
        print(f"{outcome}\t{name}")
        if verdict.startswith("failed (env changed)"):
            print(f"env_changed\t{name}")
    if unclaimed:
        # E.g. a setUpClass error of a test file's only class: an error, but
        # no <testcase> to say whose (3.11's regrtest then says "ran no tests").
        print(f"regrtest_outcomes: {unclaimed} <testsuite> elements with errors name no test file", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
