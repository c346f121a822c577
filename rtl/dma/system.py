"""DMA engine wired to the HBM stub: the memory path of one tensor core (tests, bench)."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring

from models.config import ConfigError, JalapenoConfig
from models.dma import burst_chunk
from rtl.dma.engine import DmaEngine
from rtl.mem.hbm import HbmStub

__all__ = ["DmaHbm"]


class DmaHbm(wiring.Component):
    """:class:`DmaEngine` whose AXI manager port drives :class:`HbmStub` directly.

    Members
    -------
    Every member of the engine except ``m_axi`` (descriptor and completion streams,
    window, SRAM ports, busy) and every member of the stub except ``s_axi`` (error
    injection, backdoor, performance counters), with the same names and shapes: the
    signature is built from theirs.

    Raises
    ------
    ConfigError
        If a DMA burst could cross an HBM interleave granule
        (``burst_chunk > hbm.interleave_bytes``): the stub would answer DECERR.
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config
        h, dcfg = config.hbm, config.dma
        W = h.data_bytes
        if burst_chunk(dcfg, W) > h.interleave_bytes:
            raise ConfigError(f"DmaConfig.max_burst_beats * hbm.data_bytes = "
                              f"{burst_chunk(dcfg, W)} exceeds hbm.interleave_bytes "
                              f"{h.interleave_bytes}")
        self._dma = DmaEngine(dcfg, data_bytes=W, id_bits=h.id_bits)
        self._hbm = HbmStub(h)
        outer = {**self._dma.signature.members, **self._hbm.signature.members}
        del outer["m_axi"], outer["s_axi"]
        super().__init__(outer)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma = dma = self._dma
        m.submodules.hbm = hbm = self._hbm
        wiring.connect(m, dma.m_axi, hbm.s_axi)
        wiring.connect(m, wiring.flipped(self.i_desc), dma.i_desc)
        wiring.connect(m, dma.o_done, wiring.flipped(self.o_done))
        wiring.connect(m, wiring.flipped(self.m_sram_rd), dma.m_sram_rd)
        wiring.connect(m, wiring.flipped(self.m_sram_wr), dma.m_sram_wr)
        # single signals (no interface to connect)
        m.d.comb += [
            dma.i_win_base.eq(self.i_win_base), dma.i_win_limit.eq(self.i_win_limit),
            self.o_busy.eq(dma.o_busy),
            hbm.i_err_kind.eq(self.i_err_kind), hbm.i_err_base.eq(self.i_err_base),
            hbm.i_err_limit.eq(self.i_err_limit),
            hbm.i_bd_addr.eq(self.i_bd_addr), hbm.i_bd_wdata.eq(self.i_bd_wdata),
            hbm.i_bd_we.eq(self.i_bd_we), self.o_bd_rdata.eq(hbm.o_bd_rdata),
            self.o_perf_rd_bytes.eq(hbm.o_perf_rd_bytes),
            self.o_perf_wr_bytes.eq(hbm.o_perf_wr_bytes),
            self.o_perf_busy.eq(hbm.o_perf_busy), self.o_perf_stall.eq(hbm.o_perf_stall),
        ]
        return m
