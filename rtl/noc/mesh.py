# amaranth: UnusedElaboratable=no
"""k x m mesh of :class:`rtl.noc.router.NocRouter` built from the config.

(The pragma above: a shared mesh creates a router per position for its signature and
elaborates only the first, :mod:`rtl.lib.shared`.)
"""
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import NocConfig
from rtl.lib.shared import shared_instance
from rtl.noc.flit import Port, flit_layout
from rtl.noc.router import NocRouter

__all__ = ["NocMesh"]

_STEP = {Port.N: (0, -1), Port.E: (1, 0), Port.S: (0, 1), Port.W: (-1, 0)}
_OPPOSITE = {Port.N: Port.S, Port.S: Port.N, Port.E: Port.W, Port.W: Port.E}


class NocMesh(wiring.Component):
    """``cols x rows`` mesh: router (x, y) is node ``n = y * cols + x``.

    Neighbouring routers are joined by a pair of credit links; links at the mesh edge
    are tied off (never valid, no credits), and XY routing never selects them.

    Parameters
    ----------
    config : NocConfig
    shared : bool
        Instantiate every router as one shared Verilog module (``noc_router_<hash>``,
        position on ports; :func:`rtl.lib.shared.shared_instance` with the config as key)
        instead of one copy per position. Same logic; the Verilog is ~k^2 times smaller,
        so Verilator builds large meshes much faster (the 4x4 traffic wrapper: 112k ->
        19k lines). Write it with :func:`rtl.lib.verilog.convert`; Amaranth's own
        simulator cannot run it.

    Members
    -------
    i_inject : In(stream.Signature(flit_layout(config))).array(nodes, vcs)
        ``i_inject[n][v]``: node ``n`` injects flits on VC ``v`` (0 requests, 1 responses).
    o_eject : Out(stream.Signature(flit_layout(config))).array(nodes, vcs)
        ``o_eject[n][v]``: flits for node ``n`` on VC ``v``; packets arrive whole (the
        flits of one packet are contiguous on one ejection stream).
    o_dropped : Out(32)
        Packets addressed outside the mesh (and orphan flits) discarded since reset.
    o_overflow : Out(1)
        Sticky: some input buffer overflowed (a credit bug; never set in a correct mesh).

    Latency at zero load: ``2 * (hops + 1) + 1`` cycles from a head flit accepted on
    ``i_inject`` to it valid on ``o_eject``, plus one cycle per further flit
    (``models.noc.zero_load_latency``).
    """

    def __init__(self, config: NocConfig, *, shared: bool = False):
        if not isinstance(config, NocConfig):
            raise TypeError(f"NocMesh needs a NocConfig, got {config!r}")
        self._config = config
        self._shared = bool(shared)
        fl = flit_layout(config)
        super().__init__({
            "i_inject": In(stream.Signature(fl)).array(config.nodes, config.vcs),
            "o_eject": Out(stream.Signature(fl)).array(config.nodes, config.vcs),
            "o_dropped": Out(32),
            "o_overflow": Out(1),
        })

    @property
    def config(self) -> NocConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        routers = {}
        for y in range(cfg.rows):
            for x in range(cfg.cols):
                if self._shared:
                    r = shared_instance(m, NocRouter(cfg), f"router_{x}_{y}", key=cfg)
                    m.d.comb += [r.i_x.eq(x), r.i_y.eq(y)]
                else:
                    r = m.submodules[f"router_{x}_{y}"] = NocRouter(cfg, x, y)
                routers[x, y] = r
        for (x, y), r in routers.items():
            for d, (dx, dy) in _STEP.items():
                nb = routers.get((x + dx, y + dy))
                if nb is not None:
                    wiring.connect(m, r.o_link[d], nb.i_link[_OPPOSITE[d]])
            n = y * cfg.cols + x
            for v in range(cfg.vcs):
                wiring.connect(m, wiring.flipped(self.i_inject[n][v]), r.i_inject[v])
                wiring.connect(m, r.o_eject[v], wiring.flipped(self.o_eject[n][v]))
        dropped_now = sum(r.o_drop for r in routers.values())
        overflow = Signal()
        m.d.sync += [self.o_dropped.eq(self.o_dropped + dropped_now),
                     overflow.eq(overflow | sum(r.o_overflow for r in routers.values()).any())]
        m.d.comb += self.o_overflow.eq(overflow)
        return m
