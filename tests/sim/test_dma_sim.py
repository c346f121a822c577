"""DMA regression: the engine against AxiRam, and the engine driving the HBM stub."""
import numpy as np
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


def _soc_gather_job(cfg, rng, bad: bool):
    """Two tiles gather rows by index lists (repeats), tile 0 scatters its rows back by
    another list, tile 1 stores its rows plainly; ``bad``: tile 1's list points one plane
    past HBM (DMA_FAULT WINDOW after the earlier planes). The ring ends the image."""
    from models.chip import write_ring
    from models.dma import Descriptor, DmaDir
    from models.isa import Command, Sram
    from tb.dma.seq import index_bytes
    W, L, S = cfg.hbm.data_bytes, DmaDir.LOAD, DmaDir.STORE
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    hbm[:0x2000] = rng.integers(0, 256, 0x2000, dtype=np.uint8)
    row, n = 2 * W, 6
    g0, g1 = rng.integers(0, 0x2000 // row, (2, n))
    s0 = rng.permutation(0x1000 // row)[:n]
    if bad:
        g1[3] = cfg.hbm.total_bytes // row
    for at, lst in ((0x5000, g0), (0x5100, g1), (0x5200, s0)):
        hbm[at:at + 4 * n] = np.frombuffer(index_bytes(lst), np.uint8)
    gather = dict(row_bytes=row, rows=1, planes=n, src_zstride=row, dst_zstride=row, index=1)
    cmds = [Command.load(0, Sram.ACT, Descriptor(L, 0, 0, **gather, index_addr=0x5000)),
            Command.load(1, Sram.ACT, Descriptor(L, 0, 0, **gather, index_addr=0x5100)),
            Command.fence(),
            Command.store(0, Sram.ACT, Descriptor(S, 0, 0x2000, row, 1, n, 0, 0, row, row,
                                                  index=1, index_addr=0x5200)),
            Command.store(1, Sram.ACT, Descriptor(S, 0, 0x3000, row * n)),
            Command.halt()]
    ring = 0x6000
    return hbm, ring, write_ring(hbm, ring, cmds) + 1, cmds   # + 1: the ring's empty slot


@pytest.mark.nightly
@pytest.mark.parametrize("bad", [False, True], ids=["ok", "window_stop"])
def test_dma_index_soc(sim, bad):
    """Indexed DMA commands through the whole chip (command processor check and decode,
    tile, engine, NoC, HBM): HBM and completion / error equal models.chip.ChipModel.
    Nightly: ~50 s per case on Icarus (image load and read-back on the SoC)."""
    from models.chip import ChipModel
    from models.config import get_preset
    from models.rtl_backend import RtlJob, run_rtl
    cfg = get_preset("tiny")
    rng = np.random.default_rng(15)
    hbm, ring, n, cmds = _soc_gather_job(cfg, rng, bad)
    model = ChipModel(cfg, hbm).run(cmds)
    assert model.ok != bad and (not bad or int(model.error.detail) == 3), model.error
    (r,) = run_rtl(cfg, [RtlJob(hbm, ring, n, 0x2000, 0x2000, 20_000)], sim=sim, seed=1,
                   verilator_opt="-O0")
    got = r.result
    assert (got.error.code, got.error.detail) == (model.error.code, model.error.detail)
    assert got.completed == model.completed
    assert np.array_equal(got.hbm[0x2000:0x4000], model.hbm[0x2000:0x4000])
