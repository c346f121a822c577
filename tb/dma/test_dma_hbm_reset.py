"""Reset of ``dma_hbm`` (engine + HBM stub) in the middle of a LOAD and of a STORE.

A module of its own: ``tb.dma.test_dma_hbm`` also runs unchanged on ``dma_noc_hbm``,
whose reset behaviour is not part of this test. The subordinate-side AXI checker watches
the stub's port (``DmaTB``), so the aborted bursts' responses are checked up to the
reset and the next transfers' after it.
"""
import cocotb

from tb.common.clocked import trials
from tb.dma.tb import DmaTB
from tb.dma.test_dma import reset_cut_points


@cocotb.test()
async def test_reset_mid_transfer_on_stub(dut):
    """Random cut points (from the seed) in a LOAD and a STORE through the stub: no
    completion, engine idle, HBM outside the destination unchanged (the copy's
    neighbourhood), SRAM outside it unchanged, the next LOAD exact."""
    tb = DmaTB(dut)
    await tb.reset()
    rng = tb.rng
    n = min(tb.hbm_size, 8192)
    await tb.hbm_write(0, bytes(rng.getrandbits(8) for _ in range(n)))
    tb.sram.mem[:] = bytes(rng.getrandbits(8) for _ in range(len(tb.sram.mem)))
    size = 2048
    # read latency + one cycle per beat at least: cut inside the first half of the beats
    await reset_cut_points(tb, max(1, trials(1) // 4), size, size // tb.W // 2)
    tb.finish()
