"""The chip top (rtl/soc/top.py) on both simulators, tiny preset: INT8 GEMMs from HBM,
doorbell to interrupt, HBM image vs models.chip and C vs int64 numpy; the host's AXI4
port into HBM (tb/soc/test_soc_host.py)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_soc_gemm(sim, sim_run):
    """8x8x8 and 6x10x5 INT8 GEMMs compiled by models.compiler, ring in HBM, registers
    over AXI4-Lite, interrupt; whole HBM image == models.chip, C == int64 numpy."""
    assert_passed(sim_run("soc", "tiny", sim, "tb.soc.test_soc"))


@pytest.mark.smoke
def test_soc_host(sim, sim_run):
    """The host's AXI4 port into HBM (s_axi_host) with random stalls on both host ports:
    random traffic vs a model and the backdoor, a GEMM loaded and read back only through
    it, DECERR / SLVERR without hangs, reset during traffic."""
    assert_passed(sim_run("soc", "tiny", sim, "tb.soc.test_soc_host"))
