"""Regression reports from the summary rows of the cocotb runs (``sim_summary.json``).

:func:`cocotb_junit` is JUnit XML with one ``testcase`` per cocotb test run (simulator,
preset, seed in its name and properties, the reproduce command of a failure), next to
pytest's own JUnit (one entry per pytest item). :func:`markdown` is the regression report
``scripts/report.py`` writes (``make report``; ``make test`` runs it at the end).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

__all__ = ["cocotb_junit", "markdown", "table"]


def _case(r: dict) -> ET.Element:
    name = f"{r['test']} [{r['sim']}, {r['preset']}, seed {r['seed']}]"
    tc = ET.Element("testcase", classname=r.get("module", r["test"].partition("::")[0]),
                    name=name, time=f"{r['wall_s']:.3f}")
    props = ET.SubElement(tc, "properties")
    for key in ("sim", "preset", "tier", "seed", "cycles", "reproduce"):
        if r.get(key) not in (None, ""):
            ET.SubElement(props, "property", name=key, value=str(r[key]))
    if r["result"] == "SKIP":
        ET.SubElement(tc, "skipped")
    elif r["result"] != "PASS":
        fail = ET.SubElement(tc, "failure", message=r["result"])
        fail.text = f"{r['result']}; reproduce: {r.get('reproduce') or '(see the run log)'}"
    return tc


def cocotb_junit(rows: list[dict]) -> str:
    """JUnit XML text: one testsuite per (block, simulator, preset), one testcase per row."""
    suites = defaultdict(list)
    for r in rows:
        suites[(r["test"].partition("::")[0], r["sim"], r["preset"])].append(r)
    root = ET.Element("testsuites", name="cocotb")
    for (block, sim, preset), rs in sorted(suites.items()):
        s = ET.SubElement(root, "testsuite", name=f"{block}.{sim}.{preset}", tests=str(len(rs)),
                          failures=str(sum(r["result"] not in ("PASS", "SKIP") for r in rs)),
                          skipped=str(sum(r["result"] == "SKIP" for r in rs)),
                          time=f"{sum(r['wall_s'] for r in rs):.3f}")
        s.extend(_case(r) for r in rs)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table (lines, ending with a blank one)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def markdown(rows: list[dict], pytest_counts: dict, coverage: list[dict] | None,
             formal: list[dict] | None, testplan: list[dict] | None, title: str) -> str:
    """The regression report: totals, failures with reproduce commands, per-block results
    and wall times, every cocotb test with its seed, coverage, formal and test plan."""
    out = [f"# {title}", ""]
    bad = [r for r in rows if r["result"] not in ("PASS", "SKIP")]
    out += [f"cocotb tests: {len(rows)} runs, {sum(r['result'] == 'PASS' for r in rows)} passed, "
            f"{sum(r['result'] == 'SKIP' for r in rows)} skipped, {len(bad)} failed; "
            f"pytest items: {pytest_counts.get('tests', 0)} run, "
            f"{pytest_counts.get('failures', 0)} failed, {pytest_counts.get('skipped', 0)} skipped, "
            f"{pytest_counts.get('time', 0.0):.0f} s.", ""]
    if bad:
        out += ["## Failures", ""]
        out += table(["test", "sim", "preset", "seed", "result", "reproduce"],
                      [[r["test"], r["sim"], r["preset"], r["seed"], r["result"],
                        f"`{r.get('reproduce', '')}`"] for r in bad])
    blocks = defaultdict(lambda: [0, 0, 0.0])
    for r in rows:
        b = blocks[(r["test"].partition("::")[0], r["sim"])]
        b[0] += 1
        b[1] += r["result"] in ("PASS", "SKIP")
        b[2] += r["wall_s"]
    out += ["## Per block", ""]
    out += table(["block", "sim", "passed / runs", "wall s"],
                  [[b, s, f"{ok}/{n}", f"{w:.1f}"] for (b, s), (n, ok, w) in sorted(blocks.items())])
    if coverage:
        out += ["## Coverage", ""]
        out += table(["block", "line", "toggle", "functional"],
                      [[c["block"], *(("-" if c.get(k) is None else f"{c[k]:.1%}")
                                       for k in ("line", "toggle", "functional"))]
                       for c in coverage])
    if formal:
        out += ["## Formal", ""]
        out += table(["block", "property", "engine", "depth", "result"],
                      [[f["block"], f["property"], f["engine"], f["depth"], f["result"]]
                       for f in formal])
    if testplan:
        out += ["## Test plan", ""]
        by = defaultdict(lambda: defaultdict(int))
        for t in testplan:
            by[t["block"]][t["status"]] += 1
        states = ["pass", "fail", "partial", "not run"]
        out += table(["block", *states], [[b, *(c[s] for s in states)] for b, c in sorted(by.items())])
    out += ["## Every cocotb test", ""]
    out += table(["test", "sim", "preset", "tier", "seed", "result", "cycles", "wall s"],
                  [[r["test"], r["sim"], r["preset"], r["tier"], r["seed"], r["result"],
                    r["cycles"], r["wall_s"]] for r in rows])
    return "\n".join(out)
