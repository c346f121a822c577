"""DMA regression: the engine against AxiRam, and the engine driving the HBM stub."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_dma_engine(sim, sim_run):
    """Directed 1D/2D/3D, random descriptors, bad input, reset, self-check (AxiRam)."""
    assert_passed(sim_run("dma_engine", "tiny", sim, "tb.dma.test_dma"))


@pytest.mark.smoke
def test_dma_hbm(sim, sim_run):
    """Engine + HBM stub: round trips, injected SLVERR/poison/DECERR, stalls."""
    assert_passed(sim_run("dma_hbm", "tiny", sim, "tb.dma.test_dma_hbm"))


@pytest.mark.smoke
def test_dma_hbm_reset(sim, sim_run):
    """Engine + HBM stub: reset at random cut points in a LOAD and a STORE (own module:
    tb.dma.test_dma_hbm also runs on dma_noc_hbm)."""
    assert_passed(sim_run("dma_hbm", "tiny", sim, "tb.dma.test_dma_hbm_reset"))


@pytest.mark.smoke
def test_dma_engine_uvm(sim, sim_run):
    """pyuvm: directed error codes + 4 KiB cases, coverage-driven random descriptors,
    injected SLVERR/DECERR, scoreboard vs models.dma, heavy-stall factory override."""
    assert_passed(sim_run("dma_engine", "tiny", sim, "tb.dma.uvm"))


#: tb.dma.test_dma_index cases per system (the stub's error injection on dma_hbm)
_INDEX_ENGINE = ["test_indexed_random", "test_indexed_back_to_back", "test_indexed_bad_input",
                 "test_indexed_reset"]


@pytest.mark.smoke
def test_dma_index(sim, sim_run):
    """Indexed descriptors on AxiRam: random gathers / scatters (repeats, planes outside
    the window) under stalls, mixed back-to-back batches, bad input, reset mid-copy."""
    assert_passed(sim_run("dma_engine", "tiny", sim, "tb.dma.test_dma_index",
                          testcase=_INDEX_ENGINE))


def test_dma_index_hbm(sim, sim_run):
    """Indexed descriptors on the HBM stub: SLVERR / poison on an index read."""
    assert_passed(sim_run("dma_hbm", "tiny", sim, "tb.dma.test_dma_index",
                          testcase="test_indexed_injected_errors"))


@pytest.mark.nightly
def test_dma_index_cost(sim, sim_run):
    """Per-plane cost of gathers vs plain 3D copies on the HBM stub (docs/dma.md)."""
    assert_passed(sim_run("dma_hbm", "tiny", sim, "tb.dma.test_dma_index",
                          testcase="test_indexed_plane_cost"))
