"""The chip top (rtl/soc/top.py) on both simulators, tiny preset: INT8 GEMMs from HBM,
doorbell to interrupt, HBM image vs models.chip and C vs int64 numpy; the host's AXI4
port into HBM (tb/soc/test_soc_host.py).

Icarus budget: the chip top runs at ~700-800 cycles/s on Icarus (~10x slower than
Verilator), so `make test` runs the long host-port tests on Verilator only and Icarus
runs them in the nightly tier (:data:`ICARUS_NIGHTLY`); see docs/testplan.md.
"""
import pytest

from tests.conftest import assert_passed, cocotb_tests_except

pytestmark = pytest.mark.sim

HOST_MODULE = "tb.soc.test_soc_host"
#: cocotb tests of HOST_MODULE that Icarus runs only in the nightly tier (~60 % of its
#: Icarus time: random traffic with and without stalls, resets during traffic)
ICARUS_NIGHTLY = ("test_host_random", "test_reset_during_host_traffic")
GEMM_MODULE = "tb.soc.test_soc"
#: cocotb tests of GEMM_MODULE that Icarus runs only in the nightly tier (the DISPATCH
#: programs: ~13k cycles each, mostly whole-image backdoor reads; make test runs the
#: dispatch unit itself on Icarus in tests/sim/test_moe_dispatch_sim.py)
GEMM_ICARUS_NIGHTLY = ("test_dispatch_program", "test_dispatch_error")


@pytest.mark.smoke
def test_soc_gemm(sim, sim_run):
    """8x8x8 and 6x10x5 INT8 GEMMs compiled by models.compiler, ring in HBM, registers
    over AXI4-Lite, interrupt; whole HBM image == models.chip, C == int64 numpy; DISPATCH
    programs (MoE dispatch unit) vs models.chip (on Icarus: nightly)."""
    cases = cocotb_tests_except(GEMM_MODULE, GEMM_ICARUS_NIGHTLY) if sim == "icarus" else None
    assert_passed(sim_run("soc", "tiny", sim, GEMM_MODULE, testcase=cases))


@pytest.mark.smoke
def test_soc_host(sim, sim_run):
    """The host's AXI4 port into HBM (s_axi_host) with random stalls on both host ports:
    random traffic vs a model and the backdoor, a GEMM loaded and read back only through
    it, DECERR / SLVERR without hangs, reset during traffic (on Icarus: the GEMM and the
    error responses; the rest nightly)."""
    cases = cocotb_tests_except(HOST_MODULE, ICARUS_NIGHTLY) if sim == "icarus" else None
    assert_passed(sim_run("soc", "tiny", sim, HOST_MODULE, testcase=cases))


@pytest.mark.nightly
def test_soc_host_icarus_long(sim, sim_run):
    """Nightly, Icarus: the host-port tests `make test` runs on Verilator only."""
    if sim != "icarus":
        pytest.skip("Verilator runs these in every tier (test_soc_host)")
    assert_passed(sim_run("soc", "tiny", sim, HOST_MODULE, testcase=list(ICARUS_NIGHTLY)))


@pytest.mark.nightly
def test_soc_dispatch_icarus_long(sim, sim_run):
    """Nightly, Icarus: the DISPATCH programs `make test` runs on Verilator only."""
    if sim != "icarus":
        pytest.skip("Verilator runs these in every tier (test_soc_gemm)")
    assert_passed(sim_run("soc", "tiny", sim, GEMM_MODULE, testcase=list(GEMM_ICARUS_NIGHTLY)))
