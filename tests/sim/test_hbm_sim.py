"""HBM stub regression: AxiMaster-driven cocotb tests on both simulators."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_hbm_stub(sim, sim_run):
    """Backdoor, random traffic with stalls, outstanding, latency/rows, errors, reset."""
    assert_passed(sim_run("hbm_stub", "tiny", sim, "tb.hbm.test_hbm"))
