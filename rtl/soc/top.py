# amaranth: UnusedElaboratable=no
"""The chip (``soc``): command processor, compute tiles and HBM channels on the mesh.

One :class:`rtl.noc.fabric.NocMemFabric` with the placement of ``config.soc``
(docs/chip.md): the :class:`rtl.soc.cmdproc.CommandProcessor` at ``soc.ctrl_node`` (its
ring fetch through an :class:`rtl.soc.axi_noc.AxiToNoc`), one
:class:`rtl.soc.tile.ComputeTile` at each ``soc.tile_nodes[t]`` (its DMA through its own
AxiToNoc), one :class:`rtl.mem.hbm.HbmChannel` behind a :class:`rtl.soc.axi_noc.NocToAxi`
at each ``soc.hbm_nodes[i]``, and the host's AXI4 port into HBM (``s_axi_host``) through
its own AxiToNoc at ``soc.host_node``, and the MoE dispatch unit
(:class:`rtl.soc.moe_dispatch.MoeDispatch`, the DISPATCH command) through its own
AxiToNoc at ``soc.dispatch_node``. Golden model: ``models.chip.ChipModel`` (final HBM
image).

The tiles, the bridges and the HBM channels are shared Verilog modules
(:mod:`rtl.lib.shared`): the Verilog holds one tile, written once whatever
``soc.tiles`` is (the pragma above: only the first of each is elaborated).
"""
from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, DomainRenamer, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tile import region_bytes
from rtl.lib.axi import AxiLiteSignature, AxiSignature
from rtl.lib.shared import param_summary, shared_instance
from rtl.mem.hbm import channel_backdoor
from rtl.noc.fabric import NocMemFabric
from rtl.soc.axi_noc import AxiToNoc, attach_hbm_channels, attach_initiator
from rtl.soc.cmdproc import CommandProcessor
from rtl.soc.moe_dispatch import MoeDispatch
from rtl.soc.tile import ComputeTile

__all__ = ["Soc", "LOAD_TAG", "STORE_TAG", "RESET_HOLD"]

#: Cycles the chip stays in reset after ``rst`` falls.
RESET_HOLD = 8

#: Descriptor tags the SoC gives a tile's loads and stores (they share one DMA engine;
#: the completion's tag says which queue it belongs to).
LOAD_TAG, STORE_TAG = 0, 1

def _log2(x: int) -> int:
    return x.bit_length() - 1


def _connect_axi(m, mgr, sub):
    """Manager -> subordinate AXI member by member (address widths may differ: the
    command processor's is ``noc.addr_bits``, the bridge's 32)."""
    for name, member in mgr.signature.members.items():
        if member.flow == Out:
            m.d.comb += getattr(sub, name).eq(getattr(mgr, name))
        else:
            m.d.comb += getattr(mgr, name).eq(getattr(sub, name))


class Soc(wiring.Component):
    """The chip top (``soc``).

    Command processor ↔ tiles (per tile ``t``):

    * ``o_load[t]`` and ``o_store[t]`` share the tile's DMA engine (round robin). The
      ISA command ``{sram, desc}`` becomes ``models.tile.tile_descriptor``: the
      SRAM-side address (``dst`` of a load, ``src`` of a store) plus
      ``sram * dma.sram_bytes``; the tag is :data:`LOAD_TAG` / :data:`STORE_TAG`, and the
      tile's completion goes to ``i_load_done[t]`` / ``i_store_done[t]`` by that tag
      (``err`` = the completion's :class:`models.dma.DmaError`).
    * ``o_compute[t]`` goes to the tensor core's ``i_cmd``; up to ``tensor.cmd_depth``
      commands are in flight (``rtl.soc.cmdproc_queues.inflight_limit``), each completed
      by one retirement of the core (``o_retire``; ``err`` = ``o_err_code`` if the core
      flagged one illegal, which the processor's own check makes unreachable).
    * ``o_unit_reset`` (soft reset) clears the cores' error flags. In-flight DMA bursts
      and tensor commands finish (AXI stays legal); their late completions are ignored.

    Parameters
    ----------
    config : JalapenoConfig
        A chip (``check_chip()``); every width comes from it.

    Members
    -------
    s_axil : In(AxiLiteSignature)
        The host registers (the command processor's, docs/registers.md).
    s_axi_host : In(AxiSignature(addr_width=32, data_width=8 * hbm.data_bytes,
        id_width=hbm.id_bits))
        The host's AXI4 port into HBM on global byte addresses (``models.hbm.route``),
        an :class:`rtl.soc.axi_noc.AxiToNoc` at ``soc.host_node``, so its contract is that
        bridge's (``models.axi_noc.bridge_route``): full-width INCR bursts of at most
        ``models.axi_noc.max_beats`` beats inside one ``hbm.interleave_bytes`` granule
        (any start byte, WSTRB honoured); a burst reaching past ``hbm.total_bytes`` or
        crossing a granule is answered DECERR, a narrow / FIXED / WRAP or longer one
        SLVERR, both locally (nothing reaches HBM, the port never hangs). R and B leave in
        AR / AW order. Not counted in BYTES_READ / BYTES_WRITTEN (the tiles' DMA traffic).
    o_irq : Out(1)
        Interrupt (OR of enabled INTR_STATUS bits).
    i_bd_addr : In(32); i_bd_wdata : In(8 * hbm.data_bytes); i_bd_we : In(1);
    o_bd_rdata : Out(8 * hbm.data_bytes)
        HBM backdoor on global byte addresses (``models.hbm.route``), word aligned, one
        cycle read latency: the host's bulk loads and reads in tests.
    o_noc_dropped : Out(32)
        Packets to nodes outside the mesh (stays 0).
    o_perf_rd_bytes, o_perf_wr_bytes, o_perf_busy, o_perf_stall : Out(32)
        HBM counters summed over channels.
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config.check_chip()
        W = config.hbm.data_bytes
        self._cp = CommandProcessor(config)
        super().__init__({
            "s_axil": In(AxiLiteSignature(addr_width=self._cp.s_axil.signature.addr_width,
                                          data_width=32)),
            "s_axi_host": In(AxiSignature(addr_width=32, data_width=8 * W,
                                          id_width=config.hbm.id_bits)),
            "o_irq": Out(1),
            "i_bd_addr": In(32), "i_bd_wdata": In(8 * W), "i_bd_we": In(1),
            "o_bd_rdata": Out(8 * W),
            "o_noc_dropped": Out(32),
            "o_perf_rd_bytes": Out(32), "o_perf_wr_bytes": Out(32),
            "o_perf_busy": Out(32), "o_perf_stall": Out(32),
        })

    def elaborate(self, platform):
        # The reset input goes through a flop (``core`` = ``sync`` with its own reset):
        # no next-state logic then depends on a top-level input, so Verilator leaves it
        # out of its input-change ("ico") pass that runs on every clock edge (the tiny
        # chip simulates ~1.8x faster). The chip's reset is held RESET_HOLD cycles after
        # ``rst`` falls, so registers without a reset value are defined from the ones
        # with it before anything runs (no X on Icarus after reset).
        m = Module()
        m.domains.core = core = ClockDomain("core", local=True)
        # init 0, not RESET_HOLD: the chip's reset must change when ``rst`` is asserted,
        # or Icarus never evaluates the ``always @*`` blocks that read it (X after reset)
        hold = Signal(range(RESET_HOLD + 1), init=0, reset_less=True)
        m.d.sync += hold.eq(Mux(ResetSignal("sync"), RESET_HOLD, Mux(hold != 0, hold - 1, 0)))
        m.d.comb += [core.clk.eq(ClockSignal("sync")), core.rst.eq(hold != 0)]
        m.submodules.chip = DomainRenamer("core")(self._chip())
        return m

    def _chip(self) -> Module:
        m = Module()
        cfg, h, soc = self.cfg, self.cfg.hbm, self.cfg.soc
        W = h.data_bytes
        m.submodules.fabric = fab = NocMemFabric(cfg.noc, shared=True)
        m.d.comb += self.o_noc_dropped.eq(fab.o_dropped)

        # --- command processor at the control node ---------------------------------------
        m.submodules.cp = cp = self._cp
        wiring.connect(m, wiring.flipped(self.s_axil), cp.s_axil)
        m.d.comb += self.o_irq.eq(cp.o_irq)
        cp_ini = self._bridge(m, "cp_ini")
        _connect_axi(m, cp.m_axi, cp_ini.s_axi)
        attach_initiator(m, fab, soc.ctrl_node, cp_ini)

        # --- the host's AXI4 port into HBM at its own node ------------------------------
        host_ini = self._bridge(m, "host_ini")
        wiring.connect(m, wiring.flipped(self.s_axi_host), host_ini.s_axi)
        attach_initiator(m, fab, soc.host_node, host_ini)

        # --- the MoE dispatch unit (DISPATCH) at its own node --------------------------
        m.submodules.dispatch = disp = MoeDispatch(cfg)
        disp_ini = self._bridge(m, "dispatch_ini")
        wiring.connect(m, disp.m_axi, disp_ini.s_axi)
        attach_initiator(m, fab, soc.dispatch_node, disp_ini)
        wiring.connect(m, cp.o_dispatch, disp.i_start)
        wiring.connect(m, disp.o_done, cp.i_dispatch_done)

        # --- tiles ---------------------------------------------------------------------------
        lrb = _log2(region_bytes(cfg))
        rd_beats, wr_beats = [], []
        for t, node in enumerate(soc.tile_nodes):
            tile = shared_instance(m, ComputeTile(cfg), f"tile{t}", key=cfg)
            ini = self._bridge(m, f"tile{t}_ini")
            wiring.connect(m, tile.m_axi, ini.s_axi)
            attach_initiator(m, fab, node, ini)
            m.d.comb += [tile.i_win_base.eq(0), tile.i_win_limit.eq(h.total_bytes),
                         tile.i_clear_err.eq(cp.o_unit_reset)]
            ax = tile.m_axi
            rd_beats.append(ax.rvalid & ax.rready)
            wr_beats.append(ax.wvalid & ax.wready)
            self._dma(m, t, cp, tile, lrb)
            self._compute(m, t, cp, tile, cfg.tensor.cmd_depth)
        incr = len(cp.i_bytes_read_incr)
        m.d.comb += [cp.i_bytes_read_incr.eq((sum(rd_beats) * W)[:incr]),
                     cp.i_bytes_written_incr.eq((sum(wr_beats) * W)[:incr])]

        # --- HBM channels at their nodes ---------------------------------------------------
        chans, _ = attach_hbm_channels(m, cfg, fab)

        # --- backdoor on global addresses (models.hbm.route), 1-cycle read latency ------
        channel_backdoor(m, h, self, chans)
        return m

    def _bridge(self, m, name):
        """An :class:`rtl.soc.axi_noc.AxiToNoc` (one shared module for all of them)."""
        return shared_instance(m, AxiToNoc(self.cfg), name, key=self.cfg,
                               summary=param_summary(self.cfg.noc))

    @staticmethod
    def _dma(m, t, cp, tile, lrb):
        """Load and store queues of tile ``t`` -> its DMA engine; completions back."""
        ld, st = cp.o_load[t], cp.o_store[t]
        last_load = Signal(name=f"t{t}_last_load")
        pick_load = Signal(name=f"t{t}_pick_load")
        m.d.comb += pick_load.eq(ld.valid & (~st.valid | ~last_load))
        d = tile.i_desc
        src = Mux(pick_load, ld.payload.as_value(), st.payload.as_value())
        pl = ld.payload.shape()(src)          # view of the picked {sram, desc}
        off = pl.sram << lrb                  # models.tile.sram_base
        m.d.comb += [d.payload.eq(pl.desc),
                     d.valid.eq(ld.valid | st.valid),
                     ld.ready.eq(pick_load & d.ready),
                     st.ready.eq(~pick_load & d.ready)]
        with m.If(pick_load):
            m.d.comb += [d.payload.dst.eq(pl.desc.dst + off), d.payload.tag.eq(LOAD_TAG)]
        with m.Else():
            m.d.comb += [d.payload.src.eq(pl.desc.src + off), d.payload.tag.eq(STORE_TAG)]
        with m.If(d.valid & d.ready):
            m.d.sync += last_load.eq(pick_load)
        done = tile.o_done
        is_store = done.payload.tag[0]
        m.d.comb += [done.ready.eq(1),
                     cp.i_load_done[t].valid.eq(done.valid & ~is_store),
                     cp.i_store_done[t].valid.eq(done.valid & is_store),
                     cp.i_load_done[t].payload.err.eq(done.payload.err),
                     cp.i_store_done[t].payload.err.eq(done.payload.err)]

    @staticmethod
    def _compute(m, t, cp, tile, cmd_depth):
        """Compute queue of tile ``t`` -> the tensor core (several commands in flight);
        one completion per command the core retires (``o_retire``), one per cycle.

        A soft reset does not stop the commands already in the core: their retirements
        are swallowed (``stale``), so none is taken for a command of the next program.
        """
        c = cp.o_compute[t]
        wiring.connect(m, c, tile.i_cmd)
        cap = 2 * cmd_depth + 4                           # commands in the core, at most
        in_core = Signal(range(cap), name=f"t{t}_in_core")
        stale = Signal(range(cap), name=f"t{t}_stale")
        pend = Signal(range(cap), name=f"t{t}_retired")  # completions not yet sent
        ret = tile.o_retire
        fresh = Signal(3, name=f"t{t}_fresh")               # retirements of this program
        m.d.comb += fresh.eq(Mux(stale >= ret, 0, ret - stale))
        done = cp.i_compute_done[t]
        m.d.comb += [done.valid.eq(pend != 0),
                     done.payload.err.eq(Mux(tile.o_error, tile.o_err_code, 0))]
        accepted = tile.i_cmd.valid & tile.i_cmd.ready
        m.d.sync += [in_core.eq(in_core + accepted - ret),
                     stale.eq(Mux(stale >= ret, stale - ret, 0)),
                     pend.eq(pend + fresh - done.valid)]
        with m.If(cp.o_unit_reset):
            m.d.sync += [stale.eq(in_core + accepted - ret), pend.eq(0)]
