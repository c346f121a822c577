"""The vector unit (rtl/vector) and FP32Multiplier on both simulators (tb/vector)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_fp32_multiplier(sim, sim_run):
    """Weighted random binary32 products (specials, subnormals, overflow, ties); the
    check reports a corrupted expectation."""
    from tb.vector.harness import fp32_mul_harness
    assert_passed(sim_run("fp32_mul_harness", "tiny", sim, "tb.vector.test_fp32_mul",
                          factory=fp32_mul_harness))


@pytest.mark.smoke
def test_vector_unit(sim, sim_run):
    """Random commands of every op (STATE_STORE / STATE_MERGE, bscale) with and without
    gaps, directed softmax / online softmax / masked rows / NaN, block scale k clamps
    and NaN, STATE_STORE / STATE_MERGE round trip, latency, scoreboard self-check,
    reset mid-traffic, functional coverage closure (tiny preset)."""
    assert_passed(sim_run("vector_unit", "tiny", sim, "tb.vector.test_vector_unit"))
