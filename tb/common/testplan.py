"""Test plans as data (OpenTitan style): testpoints -> tests and covergroups, per block.

Each block's plan is ``tb/<dir>/testplan.yml`` (or ``testplan_<block>.yml``) next to its
testbench::

    block: systolic_array            # the name used in rtl/blocks.py and the summary table
    doc: docs/systolic.md            # where the testpoints are explained
    testpoints:
      - name: directed_corners       # unique within the plan
        stage: V1                    # V1 basic, V2 complete (random, errors, reset), V3 hardening
        desc: all -128, all 127, ... each without stalls, with random and bursty stalls
        tests:                       # each must exist (tests/test_testplan.py fails otherwise)
          - tb.systolic.test_systolic::test_directed        # a cocotb test: <module>::<name>
          - tests/models/test_systolic_model.py::test_gemm_int8_matches_python_ints  # pytest
    covergroups:
      - name: SystolicCoverage       # a name that appears in `file`
        file: tb/systolic/uvm.py
        desc: M class x stall cross, value classes, ragged K (must close)

A testpoint's status comes from the last regression's results (``make test`` / ``make sim``
write ``build/reports/sim_summary.json`` for cocotb tests and ``junit.xml`` for pytest ones):
``pass`` when every test it names ran and passed, ``fail`` when one failed, ``partial`` when
some did not run, ``not run`` when none did. Used by ``make testplan`` (scripts/testplan.py)
and checked by tests/test_testplan.py. Reads files only; imports no simulator.
"""
from __future__ import annotations

import ast
import functools
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from tb.common.discover import ROOT, base_name, cocotb_tests

__all__ = ["STAGES", "Testpoint", "Covergroup", "Testplan", "TestplanError", "load_all",
           "missing_references", "load_results", "status", "records"]

STAGES = ("V1", "V2", "V3")


class TestplanError(ValueError):
    """A plan file that does not follow the schema; the message names file and field."""

    __test__ = False


@dataclass(frozen=True)
class Testpoint:
    name: str
    stage: str
    desc: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Covergroup:
    name: str
    file: str
    desc: str


@dataclass(frozen=True)
class Testplan:
    block: str
    path: str
    doc: str
    testpoints: tuple[Testpoint, ...]
    covergroups: tuple[Covergroup, ...]


def _field(d: dict, key: str, where: str, kind=str):
    if key not in d:
        raise TestplanError(f"{where}: missing field {key!r}")
    if not isinstance(d[key], kind):
        raise TestplanError(f"{where}: field {key!r} must be {kind.__name__}, got {d[key]!r}")
    return d[key]


def _testpoint(d: dict, where: str) -> Testpoint:
    name = _field(d, "name", where)
    where = f"{where} testpoint {name!r}"
    stage = _field(d, "stage", where)
    if stage not in STAGES:
        raise TestplanError(f"{where}: stage {stage!r} is not one of {STAGES}")
    tests = _field(d, "tests", where, list)
    if not tests or not all(isinstance(t, str) for t in tests):
        raise TestplanError(f"{where}: tests must be a non-empty list of names")
    return Testpoint(name, stage, _field(d, "desc", where), tuple(tests))


def load(path: Path) -> Testplan:
    """One plan file, validated against the schema (not yet against the tree)."""
    where = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    d = yaml.safe_load(path.read_text())
    if not isinstance(d, dict):
        raise TestplanError(f"{where}: not a mapping")
    unknown = set(d) - {"block", "doc", "testpoints", "covergroups"}
    if unknown:
        raise TestplanError(f"{where}: unknown fields {sorted(unknown)}")
    points = tuple(_testpoint(p, where) for p in _field(d, "testpoints", where, list))
    names = [p.name for p in points]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TestplanError(f"{where}: testpoint names repeated: {dup}")
    groups = tuple(Covergroup(_field(g, "name", where), _field(g, "file", where),
                              _field(g, "desc", where)) for g in d.get("covergroups") or [])
    return Testplan(_field(d, "block", where), where, _field(d, "doc", where), points, groups)


def load_all(root: Path = ROOT) -> list[Testplan]:
    """Every ``tb/**/testplan*.yml`` (a folder testing several blocks has one file per
    block, ``testplan_<block>.yml``), sorted by block."""
    return sorted((load(p) for p in (root / "tb").rglob("testplan*.yml")), key=lambda t: t.block)


@functools.lru_cache(maxsize=None)
def _pytest_functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(), str(path))
    return frozenset(n.name for n in tree.body if isinstance(n, (ast.FunctionDef,
                                                                 ast.AsyncFunctionDef)))


def _exists(ref: str, root: Path) -> bool:
    left, sep, name = ref.rpartition("::")
    if not sep:
        return False
    if left.endswith(".py"):
        path = root / left
        return path.is_file() and base_name(name) in _pytest_functions(path)
    return base_name(name) in cocotb_tests(root).get(left, ())


def missing_references(plan: Testplan, root: Path = ROOT) -> list[str]:
    """Every test, covergroup or doc the plan names that the tree does not have."""
    bad = [f"{plan.path}: {p.name}: no test {t!r}" for p in plan.testpoints for t in p.tests
           if not _exists(t, root)]
    for g in plan.covergroups:
        f = root / g.file
        if not f.is_file() or g.name not in f.read_text():
            bad.append(f"{plan.path}: covergroup {g.name!r} not found in {g.file}")
    if not (root / plan.doc).is_file():
        bad.append(f"{plan.path}: doc {plan.doc} does not exist")
    return bad


def load_results(reports: Path) -> dict[str, list[bool]]:
    """``{test reference: [passed, ...]}`` from the last regression's reports: one entry
    per run (simulator, preset, parameter set)."""
    out: dict[str, list[bool]] = {}
    summary = reports / "sim_summary.json"
    if summary.exists():
        for r in json.loads(summary.read_text()):
            if "module" in r and r["result"] != "SKIP":      # a skip did not run
                name = base_name(r["test"].rpartition("::")[2])
                out.setdefault(f"{r['module']}::{name}", []).append(r["result"] == "PASS")
    for xml in sorted(reports.glob("junit*.xml")):
        for case in ET.parse(xml).getroot().iter("testcase"):
            if case.find("skipped") is not None:
                continue
            cls = case.get("classname", "")
            path = cls.replace(".", "/") + ".py"
            name = case.get("name", "").partition("[")[0]
            ok = case.find("failure") is None and case.find("error") is None
            out.setdefault(f"{path}::{name}", []).append(ok)
    return out


def status(point: Testpoint, results: dict[str, list[bool]]) -> str:
    """``pass``, ``fail``, ``partial`` or ``not run`` for ``point`` given ``results``."""
    runs = [results.get(t) for t in point.tests]
    if any(r and not all(r) for r in runs):
        return "fail"
    done = sum(bool(r) for r in runs)
    return "pass" if done == len(runs) else "partial" if done else "not run"


def records(plans: list[Testplan], results: dict[str, list[bool]]) -> list[dict]:
    """One record per testpoint: block, testpoint, stage, status, tests, ran (how many of
    its tests have results)."""
    return [dict(block=plan.block, testpoint=p.name, stage=p.stage, status=status(p, results),
                 tests=list(p.tests), ran=sum(t in results for t in p.tests))
            for plan in plans for p in plan.testpoints]
