"""Nothing can hang: a DUT that never answers (tb/hang) must make its tests fail, in time.

- cycle-bounded waits (``ClockedTB.wait_until``, ``tb.common.clocked.bounded``) fail
  naming what they waited for;
- a wait without a bound is ended by the runner's wall-clock watchdog within its limit,
  naming the cocotb test that was running;
- every failure carries the one command that re-runs exactly it.
"""
import re
import subprocess
import sys

import pytest

from tb.common.discover import TestLookupError, find_test, qualified_name
from tb.runner import ROOT, cocotb_test_filter

pytestmark = pytest.mark.sim
MODULE = "tb.hang.test_hang"
WATCHDOG_LIMIT_S = 20


def _hang_run(sim_run, sim, **kw):
    from tb.hang.dut import hang_dut
    return sim_run("hang_dut", "tiny", sim, MODULE, factory=hang_dut, record=False, **kw)


def _check_reproduce(res, name, sim, request):
    """The failure's command: make sim with simulator, preset, tier, seed and the test."""
    cmd = res.reproduce.get(name, "")
    for part in ("make sim ", f"SIM={sim} ", "CONFIG=tiny ", f"TIER={request.config.getoption('--tier')} ",
                 f"SEED={res.seed} ", "TESTS=", f"TEST={name}"):
        assert part in cmd, (part, cmd)
    assert f"reproduce: {cmd}" in res.summary(), res.summary()


@pytest.mark.smoke
def test_hang_bounded_waits_fail_naming_what(sim, sim_run, request):
    """Both bounded waits fail (not pass, not hang) and say what they waited for."""
    want = {"test_bounded_wait_until": "timeout after 200 cycles waiting for i_cmd to accept a command",
            "test_bounded_trigger": "timeout after 300 cycles waiting for o_idle to rise"}
    res = _hang_run(sim_run, sim, testcase=list(want))
    assert not res.ok and not res.error, res.summary()
    if not request.config.getoption("--test"):      # make sim TEST= runs one of them
        assert {c.name for c in res.cases} == set(want), res.summary()
    assert res.cases and all(not c.passed and not c.timed_out for c in res.cases), res.summary()
    for c in res.cases:
        assert want[c.name] in c.message, res.summary()
        _check_reproduce(res, c.name, sim, request)


def test_hang_unbounded_wait_is_killed_by_the_wall_clock_limit(sim, sim_run, request):
    """An unbounded wait is killed at the wall-clock limit; the run fails naming the
    test, within the limit (plus the kill's grace period)."""
    res = _hang_run(sim_run, sim, testcase="test_unbounded_wait", wall_limit_s=WATCHDOG_LIMIT_S)
    assert not res.ok, res.summary()
    assert f"wall-clock limit of {WATCHDOG_LIMIT_S} s exceeded while running test_unbounded_wait" \
        in res.error, res.summary()
    assert WATCHDOG_LIMIT_S <= res.test_wall_s < WATCHDOG_LIMIT_S + 10, res.test_wall_s
    hung = [c for c in res.cases if c.timed_out]
    assert [c.name for c in hung] == ["test_unbounded_wait"], res.summary()
    _check_reproduce(res, "test_unbounded_wait", sim, request)


@pytest.mark.smoke
def test_find_test_names_and_errors():
    """TEST= resolution: exact names, <module>::<name>, clear errors with close matches."""
    assert find_test("test_unbounded_wait") == (MODULE, "test_unbounded_wait")
    assert find_test("test_hang::test_bounded_trigger") == (MODULE, "test_bounded_trigger")
    assert find_test("hang.test_hang::test_bounded_trigger") == (MODULE, "test_bounded_trigger")
    with pytest.raises(TestLookupError, match="close matches: .*test_bounded_trigger"):
        find_test("test_bounded_triger")
    with pytest.raises(TestLookupError, match="no cocotb test named 'test_bounded_trigger' "
                                              "in a module matching 'uvm'"):
        find_test("uvm::test_bounded_trigger")
    # a parametrized test: its bare name, or one parameter set by its cocotb name
    host = "tb.soc.test_soc_host"
    assert find_test("test_host_errors/stall=0.0") == (host, "test_host_errors/stall=0.0")
    assert qualified_name(host, "test_host_errors/stall=0.3") == "test_host_errors/stall=0.3"
    one = re.compile(cocotb_test_filter(host, ["test_host_errors/stall=0.0"]))
    every = re.compile(cocotb_test_filter(host, ["test_host_errors"]))
    names = [f"{host}.test_host_errors/stall=0.0", f"{host}.test_host_errors/stall=0.3",
             f"{host}.test_host_errors_more", f"{host}.test_host_random/stall=0.0"]
    assert [bool(one.search(n)) for n in names] == [True, False, False, False]
    assert [bool(every.search(n)) for n in names] == [True, True, False, False]


@pytest.mark.smoke
def test_make_sim_test_selects_only_the_entries_running_the_module():
    """``--test`` (make sim TEST=) keeps only the tests/sim entries that run the module;
    an unknown name exits non-zero listing close matches."""
    cmd = [sys.executable, "-m", "pytest", "tests/sim", "--collect-only", "-q", "-p", "no:xdist",
           "--sim", "icarus"]
    out = subprocess.run(cmd + ["--test", "test_bounded_trigger"], cwd=ROOT, text=True,
                         capture_output=True, timeout=120)
    items = [line for line in out.stdout.splitlines() if "::" in line]
    assert out.returncode == 0 and items and all(
        line.startswith("tests/sim/test_hang_sim.py::test_hang_") for line in items), out.stdout
    bad = subprocess.run(cmd + ["--test", "test_bounded_triger"], cwd=ROOT, text=True,
                         capture_output=True, timeout=120)
    assert bad.returncode != 0 and "close matches" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
