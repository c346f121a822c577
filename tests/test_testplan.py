"""The test plans (tb/**/testplan.yml) follow the schema and name only tests that exist."""
import json

import pytest

from tb.common import testplan as tp
from tb.common.discover import ROOT

PLANS = tp.load_all()


def test_every_block_with_a_testbench_has_a_plan():
    assert PLANS, "no tb/**/testplan.yml found"
    blocks = [p.block for p in PLANS]
    assert len(blocks) == len(set(blocks)), f"a block has two plans: {blocks}"


@pytest.mark.parametrize("plan", PLANS, ids=[p.block for p in PLANS])
def test_plan_names_only_existing_tests(plan):
    missing = tp.missing_references(plan)
    assert not missing, "\n".join(missing)


def test_a_missing_test_is_reported(tmp_path):
    bad = tmp_path / "testplan.yml"
    bad.write_text("block: x\ndoc: docs/testplan.md\ntestpoints:\n"
                   "  - {name: a, stage: V1, desc: d, tests: [tb.systolic.test_systolic::nope,"
                   " tests/test_testplan.py::test_nope, tests/test_testplan.py::"
                   "test_a_missing_test_is_reported]}\n")
    missing = tp.missing_references(tp.load(bad))
    assert len(missing) == 2 and "nope" in missing[0] and "test_nope" in missing[1], missing


@pytest.mark.parametrize("text, msg", [
    ("block: x\ndoc: d\n", "missing field 'testpoints'"),
    ("block: x\ndoc: d\ntestpoints: [{name: a, stage: V9, desc: d, tests: [a::b]}]\n", "stage"),
    ("block: x\ndoc: d\ntestpoints: [{name: a, stage: V1, desc: d, tests: []}]\n", "non-empty"),
    ("block: x\ndoc: d\ntestpoints: [{name: a, stage: V1, desc: d, tests: [a::b]},"
     " {name: a, stage: V1, desc: d, tests: [a::b]}]\n", "repeated"),
    ("block: x\ndoc: d\nfoo: 1\ntestpoints: []\n", "unknown fields"),
])
def test_schema_errors_name_the_field(tmp_path, text, msg):
    f = tmp_path / "testplan.yml"
    f.write_text(text)
    with pytest.raises(tp.TestplanError, match=msg):
        tp.load(f)


def test_status_from_results(tmp_path):
    (tmp_path / "sim_summary.json").write_text(json.dumps([
        dict(test="b::t1", module="tb.m", result="PASS"),
        dict(test="b::t1", module="tb.m", result="PASS"),
        dict(test="b::t2/x=1", module="tb.m", result="FAIL"),
    ]))
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.models.test_a" name="test_p[1]"/>'
        '<testcase classname="tests.models.test_a" name="test_s"><skipped/></testcase>'
        '</testsuite></testsuites>')
    res = tp.load_results(tmp_path)
    assert res == {"tb.m::t1": [True, True], "tb.m::t2": [False],
                   "tests/models/test_a.py::test_p": [True]}
    point = lambda *tests: tp.Testpoint("p", "V1", "d", tests)
    assert tp.status(point("tb.m::t1", "tests/models/test_a.py::test_p"), res) == "pass"
    assert tp.status(point("tb.m::t1", "tb.m::t2"), res) == "fail"
    assert tp.status(point("tb.m::t1", "tests/models/test_a.py::test_s"), res) == "partial"
    assert tp.status(point("tb.m::t3"), res) == "not run"


def test_plans_live_next_to_testbenches():
    for p in PLANS:
        assert p.path.startswith("tb/") and (ROOT / p.doc).is_file(), p.path
