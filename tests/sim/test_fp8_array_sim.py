"""Systolic array FP8 mode and run-time INT8/FP8 switching on both simulators."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_systolic_array_fp8(sim, sim_run):
    """All four format pairs, NaN/inf/subnormal/max/cancellation, stalls, mode switching."""
    assert_passed(sim_run("systolic_array", "tiny", sim, "tb.systolic.test_systolic_fp8"))
