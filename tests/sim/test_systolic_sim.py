"""Systolic array regression: cocotb + pyuvm testbenches on both simulators and presets."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim
#: tiny_int8: the same tiny chip without the FP8 datapath (INT8-only PEs, NO_FP8 errors)
PRESETS = [pytest.param("tiny", marks=pytest.mark.smoke), pytest.param("tiny_int8"),
           pytest.param("default", marks=pytest.mark.full)]


@pytest.mark.parametrize("preset", PRESETS)
def test_systolic_array(sim, preset, sim_run):
    """Directed corners, constrained random, cycle model, reset, scoreboard self-check."""
    assert_passed(sim_run("systolic_array", preset, sim, "tb.systolic.test_systolic"))


@pytest.mark.parametrize("preset", PRESETS)
def test_systolic_array_uvm(sim, preset, sim_run):
    """pyuvm environment: random sequences, scoreboard, functional coverage closure."""
    assert_passed(sim_run("systolic_array", preset, sim, "tb.systolic.uvm"))


@pytest.mark.smoke
def test_systolic_array_faulty_pe_is_caught(sim, sim_run):
    """A deliberately broken PE must make the scoreboard report mismatches."""
    from tb.systolic.faulty import faulty_systolic_array
    assert_passed(sim_run("systolic_array", "tiny", sim, "tb.systolic.test_faulty",
                          factory=faulty_systolic_array, variant="faulty"))
