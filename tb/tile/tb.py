"""Testbench of :class:`rtl.soc.tile.ComputeTile` (block ``compute_tile``).

:class:`ComputeTileTB` is the tensor core's testbench (:class:`tb.tensor.tb.TensorCoreTB`:
commands, host port, sleeping agent loop, golden ``TensorCoreModel``) plus the DMA
side of :mod:`tb.dma`: a descriptor source on ``i_desc``, a completion sink on
``o_done``, a cocotbext-axi ``AxiRam`` as HBM on ``m_axi`` (random stalls with
:func:`tb.hbm.tb.set_pause`) and the AXI protocol checker. The golden model is
:class:`models.tile.TileModel` over the same ``TensorCoreModel``: descriptors and tensor
commands run in the order the test sends them (a test keeps its DMA and commands
free of hazards, as the command processor's tokens would).
"""
from __future__ import annotations

import logging

import numpy as np
from cocotbext.axi import AxiBus, AxiRam

from models.dma import DmaError
from models.tile import TileModel, tile_descriptor
from rtl.formats import dma_desc_layout, dma_done_layout
from rtl.soc.tile import dma_perf_layout
from tb.common.packing import packer
from tb.common.stream import StreamSink, StreamSource, signal_int
from tb.dma.axi_check import AxiProtocolChecker
from tb.dma.tb import AXI_PREFIX
from tb.hbm.tb import set_pause
from tb.tensor.tb import TensorCoreTB

__all__ = ["ComputeTileTB"]


class ComputeTileTB(TensorCoreTB):
    """Tensor core TB + DMA agents + AxiRam HBM + :class:`models.tile.TileModel`.

    Parameters
    ----------
    dut : cocotb handle of ``compute_tile``
    hbm_bytes : int
        Size of the AxiRam (and of the model's HBM image).

    Attributes
    ----------
    tile : TileModel
        Golden tile; ``tile.core`` is ``model`` (the tensor core TB's mirror).
    hbm : np.ndarray
        The model's HBM image (uint8).
    """

    def __init__(self, dut, *, hbm_bytes: int = 64 * 1024, **kw):
        super().__init__(dut, **kw)
        self.W = self.config.hbm.data_bytes
        self.desc_src = self.add(StreamSource(dut, "i_desc", dma_desc_layout()))
        self.done_sink = self.add(StreamSink(dut, "o_done", dma_done_layout(),
                                             on_item=self._on_done))
        self._sources = (*self._sources, self.desc_src)
        self.ram = AxiRam(AxiBus.from_prefix(dut, AXI_PREFIX), dut.clk, dut.rst, size=hbm_bytes)
        logging.getLogger(f"cocotb.{dut._name}.{AXI_PREFIX}").setLevel(logging.WARNING)
        self.check = self.add(AxiProtocolChecker(dut, "m_axi", self.W,
                                                 self.config.dma.max_burst_beats))
        self.hbm = np.zeros(hbm_bytes, np.uint8)
        self.tile = TileModel(self.config, self.hbm)
        self.tile.core = self.model
        dut.i_win_base.value = 0
        dut.i_win_limit.value = hbm_bytes
        self.done: list[tuple[dict, int]] = []
        self.expect: list[tuple[int, DmaError]] = []
        self._perf_dma = packer(dma_perf_layout())[1]

    # --- HBM (AxiRam) ------------------------------------------------------------------------
    def set_axi_stalls(self, stall: float, burst: int = 1) -> None:
        """Random pauses on every AXI channel of the AxiRam (0: none)."""
        wi, ri = self.ram.write_if, self.ram.read_if
        set_pause((wi.aw_channel, wi.w_channel, wi.b_channel, ri.ar_channel, ri.r_channel),
                  self.rng, stall, burst)

    def hbm_write(self, addr: int, data) -> None:
        """Backdoor write of HBM (AxiRam and model)."""
        data = bytes(np.asarray(data, np.uint8).tobytes() if not isinstance(data, bytes) else data)
        self.ram.write(addr, data)
        self.hbm[addr:addr + len(data)] = np.frombuffer(data, np.uint8)

    def check_hbm(self, what: str = "HBM image") -> None:
        """The AxiRam image equals the model's, every byte."""
        got = np.frombuffer(bytes(self.ram.read(0, len(self.hbm))), np.uint8)
        if not np.array_equal(got, self.hbm):
            bad = np.flatnonzero(got != self.hbm)
            raise AssertionError(f"{what}: {len(bad)} bytes differ, first at {bad[0]:#x}: got "
                                 f"{got[bad[0]]:#x} expected {self.hbm[bad[0]]:#x} "
                                 f"(seed {self.seed})")

    # --- DMA --------------------------------------------------------------------------------
    def _on_done(self, item, cycle) -> None:
        self.done.append((item, cycle))

    def _sleepy(self) -> bool:
        if not self.desc_src.idle or len(self.done) < len(self.expect) or \
                signal_int(self.dut.o_dma_busy):
            return False
        return super()._sleepy()

    def dma(self, sram: int, desc) -> None:
        """Queue ISA DMA command ``(sram, desc)`` (as a tile descriptor); the model runs it
        now. Does not wait: see :meth:`wait_dma`."""
        self.dma_raw(tile_descriptor(self.config, sram, desc))

    def dma_raw(self, desc) -> None:
        """Queue a tile descriptor as it is (e.g. one that reaches unmapped bytes)."""
        code = self.tile.dma(desc)
        self.check.expect(desc if code == DmaError.OK else None, self.tile.dma_cfg, self.tile.win)
        self.expect.append((desc.tag, code))
        self.desc_src.send(desc.to_payload())
        self._wake.set()

    async def wait_dma(self, timeout: int = 200_000) -> None:
        """Wait for every queued descriptor's completion; check tags and codes in order."""
        await self._until(lambda: len(self.done) >= len(self.expect), timeout=timeout,
                          what=f"{len(self.expect)} DMA completions")
        for i, ((tag, code), (item, cyc)) in enumerate(zip(self.expect, self.done)):
            got = (int(item["tag"]), DmaError(int(item["err"])))
            assert got == (tag, code), (f"DMA completion {i} at cycle {cyc}: got {got}, "
                                        f"expected {(tag, code)} (seed {self.seed})")

    def dma_perf(self) -> dict:
        """``o_dma_perf``: wr, rd, wait, overlap."""
        return {k: int(v) for k, v in self._perf_dma(signal_int(self.dut.o_dma_perf)).items()}

    def finish(self) -> None:
        super().finish()
        assert not self.check.errors, self.check.errors[:5]
