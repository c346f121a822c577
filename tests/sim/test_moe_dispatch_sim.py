"""MoE dispatch unit regression: the unit against AxiRam (models.moe_dispatch).

Budget: the unit's own Verilator build costs ~30 s, so `make test` runs this module on
Icarus (all but the 65k-cycle watchdog test) and Verilator runs the unit inside the chip
(tests/sim/test_soc_sim.py, DISPATCH programs); the whole module runs on both
simulators in the nightly tier (test_moe_dispatch_nightly).
"""
import pytest

from tests.conftest import assert_passed, cocotb_tests_except

pytestmark = pytest.mark.sim

MODULE = "tb.moe_dispatch.test_moe_dispatch"
#: cocotb tests that run only in the nightly entry
NIGHTLY = ("test_timeout",)


@pytest.mark.smoke
def test_moe_dispatch(sim, sim_run):
    """Random shapes and rankings, both policies, capacity edges, every check and
    BAD_RANK, reset mid-run; with AXI and stream stalls (Icarus)."""
    if sim != "icarus":
        pytest.skip("Verilator: the unit inside the chip (test_soc_sim) and nightly here")
    assert_passed(sim_run("moe_dispatch", "tiny", sim, MODULE,
                          testcase=cocotb_tests_except(MODULE, NIGHTLY)))


@pytest.mark.nightly
def test_moe_dispatch_nightly(sim, sim_run):
    """The whole module (AXI watchdog included) on both simulators."""
    assert_passed(sim_run("moe_dispatch", "tiny", sim, MODULE))
