"""The cocotb JUnit file and the regression report (tb/common/report.py)."""
import xml.etree.ElementTree as ET

from tb.common import report

ROWS = [
    dict(test="dma_engine::test_a", module="tb.dma.test_dma", sim="icarus", preset="tiny",
         tier="full", seed=7, result="PASS", cycles=100, wall_s=1.5, reproduce=""),
    dict(test="dma_engine::test_b", module="tb.dma.test_dma", sim="icarus", preset="tiny",
         tier="full", seed=7, result="FAIL", cycles=5, wall_s=0.5,
         reproduce="make sim SIM=icarus SEED=7 TEST=test_b"),
    dict(test="dma_engine::test_c", module="tb.dma.test_dma", sim="verilator", preset="tiny",
         tier="full", seed=8, result="SKIP", cycles=0, wall_s=0.0, reproduce=""),
]


def test_cocotb_junit_one_case_per_run_with_seed_and_reproduce():
    root = ET.fromstring(report.cocotb_junit(ROWS))
    cases = list(root.iter("testcase"))
    assert len(cases) == 3 and len(list(root.iter("testsuite"))) == 2
    props = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert props["seed"] == "7" and props["reproduce"].endswith("TEST=test_b")
    assert cases[1].find("failure") is not None and cases[0].find("failure") is None
    assert cases[2].find("skipped") is not None and "seed 8" in cases[2].get("name")


def test_markdown_lists_failures_with_their_command_first():
    text = report.markdown(ROWS, {"tests": 3, "failures": 0}, [dict(block="dma_engine", line=0.9,
                           toggle=0.5, functional=None)], None, None, "t")
    assert "1 failed" in text and "1 skipped" in text
    fail = text.index("## Failures")
    assert fail < text.index("## Per block") and "TEST=test_b`" in text[fail:]
    assert "| dma_engine | 90.0% | 50.0% | - |" in text
