"""`make testplan`: every block's testpoints and their status from the last regression.

    python scripts/testplan.py [--block systolic_array] [--reports build/reports] [--check]

Reads the plans (``tb/**/testplan.yml``, schema in ``tb/common/testplan.py``) and the last
regression's results (``build/reports/sim_summary.json`` and ``junit*.xml``, written by
``make test`` / ``make sim``), prints one table per block (testpoint, stage, status, tests
run/named) and a total per stage, and writes ``build/reports/testplan.{json,md}``.
``--check`` exits non-zero when a plan names a test that does not exist or a testpoint
failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tb.common import report
from tb.common import testplan as tp
from tb.runner import BUILD


def markdown(records: list[dict]) -> str:
    lines = []
    for block in dict.fromkeys(r["block"] for r in records):
        lines += [f"## {block}", ""] + report.table(
            ["testpoint", "stage", "status", "tests run / named"],
            [[r["testpoint"], r["stage"], r["status"], f"{r['ran']}/{len(r['tests'])}"]
             for r in records if r["block"] == block])
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block", default=None, help="only this block's plan")
    ap.add_argument("--reports", type=Path, default=BUILD / "reports")
    ap.add_argument("--check", action="store_true", help="fail on missing tests or failures")
    a = ap.parse_args(argv)
    plans = [p for p in tp.load_all() if a.block in (None, p.block)]
    if not plans:
        print(f"testplan: no plan for block {a.block!r}", file=sys.stderr)
        return 2
    missing = [m for p in plans for m in tp.missing_references(p)]
    results = tp.load_results(a.reports)
    records = tp.records(plans, results)
    text = markdown(records)
    print(text)
    for stage in tp.STAGES:
        sel = [r for r in records if r["stage"] == stage]
        done = sum(r["status"] == "pass" for r in sel)
        print(f"{stage}: {done}/{len(sel)} testpoints pass")
    if not results:
        print(f"testplan: no results in {a.reports} (run make test or make sim first)")
    a.reports.mkdir(parents=True, exist_ok=True)
    (a.reports / "testplan.json").write_text(json.dumps(records, indent=1))
    (a.reports / "testplan.md").write_text("# Test plan status\n\n" + text)
    for m in missing:
        print(f"missing: {m}", file=sys.stderr)
    failed = [r for r in records if r["status"] == "fail"]
    return 1 if a.check and (missing or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
