"""FP units (rtl/fp) on both simulators through test-only lane harnesses (tb/fp)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_fp8_multiplier(sim, sim_run):
    """Exhaustive FP8 x FP8 products for the four format pairs, format switching."""
    from tb.fp.harness import fp8_mul_harness
    assert_passed(sim_run("fp8_mul_harness", "tiny", sim, "tb.fp.test_fp8_mul",
                          factory=fp8_mul_harness))


@pytest.mark.smoke
def test_fp32_adder(sim, sim_run):
    """Weighted random binary32 additions (1M on Verilator, 100k on Icarus) + rules;
    the check reports a corrupted expectation."""
    from tb.fp.harness import fp32_add_harness
    assert_passed(sim_run("fp32_add_harness", "tiny", sim, "tb.fp.test_fp32_add",
                          factory=fp32_add_harness))
