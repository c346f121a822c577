"""Compute tile regression on both simulators (tiny preset)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_compute_tile(sim, sim_run):
    """DMA <-> SRAM map, double-buffered GEMMs loaded and stored by DMA, DMA writes
    during a running matmul (cycle count unchanged, overlap measured), AXI stalls."""
    assert_passed(sim_run("compute_tile", "tiny", sim, "tb.tile.test_compute_tile"))
