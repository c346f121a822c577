# amaranth: UnusedElaboratable=no
"""DMA engine -> AxiToNoc -> NocMemFabric -> NocToAxi per channel -> HBM channels: the
memory path of a tile over the mesh, with the ports of :class:`rtl.dma.system.DmaHbm`.

(The pragma: an :class:`HbmStub` is built only for its signature.)
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from models import axi_noc as bridge_model
from models.config import ConfigError, JalapenoConfig
from models.dma import burst_chunk
from rtl.dma.engine import DmaEngine
from rtl.mem.hbm import HbmStub, channel_backdoor
from rtl.noc.fabric import NocMemFabric
from rtl.soc.axi_noc import AxiToNoc, attach_hbm_channels, attach_initiator

__all__ = ["DmaNocHbm"]


class DmaNocHbm(wiring.Component):
    """:class:`DmaEngine` at ``soc.tile_nodes[0]`` reaching every HBM channel (one
    :class:`HbmChannel` at each ``soc.hbm_nodes[i]``) over :class:`NocMemFabric`.

    Members
    -------
    The members of :class:`rtl.dma.system.DmaHbm` (engine: descriptors, completions,
    window, SRAM ports, busy; HBM: error injection, backdoor on global addresses,
    performance counters summed over channels), plus ``o_noc_dropped`` (the fabric's
    count of packets to nodes outside the mesh: stays 0, the initiator bridge never sends
    them).

    Raises
    ------
    ConfigError
        As :class:`DmaHbm` (a DMA burst must not cross an interleave granule), or if the
        DMA's bursts are longer than the bridge carries (:func:`models.axi_noc.max_beats`)
        or its node is outside the mesh.
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config
        h, dcfg, soc = config.hbm, config.dma, config.soc
        W = h.data_bytes
        if burst_chunk(dcfg, W) > h.interleave_bytes:
            raise ConfigError(f"DmaConfig.max_burst_beats * hbm.data_bytes = "
                              f"{burst_chunk(dcfg, W)} exceeds hbm.interleave_bytes "
                              f"{h.interleave_bytes}")
        if dcfg.max_burst_beats > bridge_model.max_beats(config):
            raise ConfigError(f"dma.max_burst_beats ({dcfg.max_burst_beats}) exceeds the "
                              f"bridge's burst limit {bridge_model.max_beats(config)} "
                              f"(2**noc.len_bits)")
        if 8 * W != config.noc.data_bits:
            raise ConfigError(f"noc.data_bits ({config.noc.data_bits}) must equal 8 * "
                              f"hbm.data_bytes ({8 * W}): one flit carries one beat")
        self.node = soc.tile_nodes[0]
        if self.node >= config.noc.nodes:
            raise ConfigError(f"soc.tile_nodes[0] = {self.node} is outside the "
                              f"{config.noc.cols}x{config.noc.rows} mesh")
        self._dma = DmaEngine(dcfg, data_bytes=W, id_bits=h.id_bits)
        stub_sig = HbmStub(h).signature.members
        outer = {**self._dma.signature.members, **stub_sig}
        del outer["m_axi"], outer["s_axi"]
        outer["o_noc_dropped"] = Out(32)
        super().__init__(outer)

    def elaborate(self, platform):
        m = Module()
        cfg, h = self.cfg, self.cfg.hbm
        m.submodules.dma = dma = self._dma
        m.submodules.ini = ini = AxiToNoc(cfg)
        m.submodules.fabric = fab = NocMemFabric(cfg.noc, shared=True)   # one router module
        wiring.connect(m, dma.m_axi, ini.s_axi)
        attach_initiator(m, fab, self.node, ini)
        chans, targets = attach_hbm_channels(m, cfg, fab)
        for tb in filter(None, targets):
            m.d.comb += [tb.i_err_kind.eq(self.i_err_kind), tb.i_err_base.eq(self.i_err_base),
                         tb.i_err_limit.eq(self.i_err_limit)]
        wiring.connect(m, wiring.flipped(self.i_desc), dma.i_desc)
        wiring.connect(m, dma.o_done, wiring.flipped(self.o_done))
        wiring.connect(m, wiring.flipped(self.m_sram_rd), dma.m_sram_rd)
        wiring.connect(m, wiring.flipped(self.m_sram_wr), dma.m_sram_wr)
        m.d.comb += [dma.i_win_base.eq(self.i_win_base), dma.i_win_limit.eq(self.i_win_limit),
                     self.o_busy.eq(dma.o_busy), self.o_noc_dropped.eq(fab.o_dropped)]
        # backdoor on global addresses (models.hbm.route), 1-cycle read latency
        channel_backdoor(m, h, self, chans)
        return m
