"""The DMA's memory path over the mesh (``dma_noc_hbm``: DMA -> AxiToNoc -> NocMemFabric
-> NocToAxi -> HBM channels): the dma_hbm system tests, unchanged, plus DECERR for
addresses no channel owns (docs/soc_memory.md)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


def _lower_tier(request) -> str:
    """One tier below the session's (smoke stays smoke): these tests already run at the
    session's tier on dma_hbm; on the NoC path fewer random trials keep ``make test``
    within budget."""
    return {"full": "smoke", "nightly": "full"}.get(request.config.getoption("--tier"), "smoke")


#: On Verilator the 3x3 mesh's routers, compiled at -O0 like the whole regression, run
#: ~800 cycles/s: test_back_to_back (30k cycles) runs on Icarus only.
_VERILATOR_CASES = ["test_first_burst_after_power_up", "test_round_trips",
                    "test_injected_errors"]


def test_soc_mem_dma_hbm_tests(sim, sim_run, request):
    """tb.dma.test_dma_hbm on the NoC path: first burst after power-up, round trips,
    injected SLVERR/poison/DECERR, back-to-back descriptors (Icarus)."""
    kw = {"testcase": _VERILATOR_CASES} if sim == "verilator" else {}
    assert_passed(sim_run("dma_noc_hbm", "tiny", sim, "tb.dma.test_dma_hbm",
                          tier=_lower_tier(request), **kw))


def test_soc_mem_unmapped(sim, sim_run):
    """Unmapped addresses: DECERR from the initiator bridge, nothing sent, nothing written."""
    assert_passed(sim_run("dma_noc_hbm", "tiny", sim, "tb.soc_mem.test_soc_mem"))
