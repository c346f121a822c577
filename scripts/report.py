"""`make report`: the regression report of the last `make test` / `make sim` / nightly run.

    python scripts/report.py [--reports build/reports] [--title "..."]

Reads ``sim_summary.json`` (every cocotb test: simulator, preset, tier, seed, result,
cycles, wall time, reproduce command), pytest's ``junit.xml`` (counts, time), and when
present ``coverage.json`` (make coverage) and ``formal.json`` (make formal); computes the
test-plan status (``tb/**/testplan*.yml``). Writes ``regression.md`` (failures with their
reproduce commands first) and prints its path and the totals. ``make test`` runs it at the
end, whatever the result.
"""
from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tb.common import report, testplan
from tb.runner import BUILD


def _json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def pytest_counts(junit: Path) -> dict:
    """tests / failures (+ errors) / skipped / time of pytest's JUnit file."""
    if not junit.exists():
        return {}
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    get = lambda k: sum(float(s.get(k, 0)) for s in suites)
    return dict(tests=int(get("tests")), failures=int(get("failures") + get("errors")),
                skipped=int(get("skipped")), time=get("time"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=Path, default=BUILD / "reports")
    ap.add_argument("--junit", default="junit.xml", help="pytest's JUnit file in --reports")
    ap.add_argument("--title", default="Regression report")
    a = ap.parse_args(argv)
    rows = _json(a.reports / "sim_summary.json") or []
    points = testplan.records(testplan.load_all(), testplan.load_results(a.reports))
    text = report.markdown(rows, pytest_counts(a.reports / a.junit),
                           _json(a.reports / "coverage.json"), _json(a.reports / "formal.json"),
                           points, a.title)
    out = a.reports / "regression.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text.split("\n\n")[1])
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
