"""DMA engine wired to the HBM stub: the memory path of one tensor core (tests, bench)."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import ConfigError, JalapenoConfig
from rtl.dma.engine import DmaEngine, burst_chunk, desc_layout, done_layout
from rtl.mem.axi import AxiView, connect_axi
from rtl.mem.hbm import HbmStub

__all__ = ["DmaHbm"]


class DmaHbm(wiring.Component):
    """:class:`DmaEngine` whose AXI master drives :class:`HbmStub` directly.

    Members: the engine's descriptor/completion streams, window and SRAM port, and the
    stub's error-injection, backdoor and performance-counter ports (same names).

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
        self.sram_words = dcfg.sram_bytes // W
        super().__init__({
            "i_desc": In(stream.Signature(desc_layout())),
            "o_done": Out(stream.Signature(done_layout())),
            "i_win_base": In(32), "i_win_limit": In(32),
            "o_sram_addr": Out(range(self.sram_words)), "o_sram_we": Out(1),
            "o_sram_wstrb": Out(W), "o_sram_wdata": Out(8 * W),
            "o_sram_re": Out(1), "i_sram_rdata": In(8 * W), "o_busy": Out(1),
            "i_err_kind": In(2), "i_err_base": In(32), "i_err_limit": In(32),
            "i_bd_addr": In(32), "i_bd_wdata": In(8 * W), "i_bd_we": In(1),
            "o_bd_rdata": Out(8 * W),
            "o_perf_rd_bytes": Out(32), "o_perf_wr_bytes": Out(32), "o_perf_busy": Out(32),
            "o_perf_stall": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        h = self.cfg.hbm
        m.submodules.dma = dma = DmaEngine(self.cfg.dma, data_bytes=h.data_bytes,
                                           id_bits=h.id_bits)
        m.submodules.hbm = hbm = HbmStub(h)
        connect_axi(m, AxiView(dma, "m_axi"), AxiView(hbm, "s_axi"))
        wiring.connect(m, wiring.flipped(self.i_desc), dma.i_desc)
        wiring.connect(m, dma.o_done, wiring.flipped(self.o_done))
        for name in ("i_win_base", "i_win_limit", "i_sram_rdata"):
            m.d.comb += getattr(dma, name).eq(getattr(self, name))
        for name in ("o_sram_addr", "o_sram_we", "o_sram_wstrb", "o_sram_wdata", "o_sram_re",
                     "o_busy"):
            m.d.comb += getattr(self, name).eq(getattr(dma, name))
        for name in ("i_err_kind", "i_err_base", "i_err_limit", "i_bd_addr", "i_bd_wdata",
                     "i_bd_we"):
            m.d.comb += getattr(hbm, name).eq(getattr(self, name))
        for name in ("o_bd_rdata", "o_perf_rd_bytes", "o_perf_wr_bytes", "o_perf_busy",
                     "o_perf_stall"):
            m.d.comb += getattr(self, name).eq(getattr(hbm, name))
        return m
