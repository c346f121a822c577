"""Five-port wormhole router: XY routing, two virtual channels, credit flow control."""
from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import NocConfig
from rtl.noc.fifo import FlitFifo
from rtl.noc.flit import LinkSignature, Port, flit_layout

__all__ = ["NocRouter", "xy_allowed", "rr_arbiter"]

DROP = 5          # pseudo output port: the flit is consumed and discarded


def xy_allowed(inp: int, out: int) -> bool:
    """Turns XY routing can make: X first, then Y, then eject; never a U-turn.

    A flit that entered from the north or south already finished its X leg, so it can
    only continue along Y or eject. Pruning the impossible requests keeps the
    allocators small.
    """
    if inp == Port.L:
        return True
    if out == Port.L:
        return True
    if inp in (Port.N, Port.S):
        return out == {Port.N: Port.S, Port.S: Port.N}[inp]
    return out != inp            # from E/W: straight on or turn onto Y


def rr_arbiter(m: Module, reqs: list, name: str) -> list:
    """Round-robin arbiter: one-hot grants for ``reqs``; the winner gets lowest priority next.

    A thermometer mask marks the requesters after the last winner; the lowest masked
    request wins, else the lowest request. Grants are combinational, the mask a register.
    """
    n = len(reqs)
    if n == 1:
        return [reqs[0]]
    req = Signal(n, name=f"{name}_req")
    mask = Signal(n, name=f"{name}_mask", init=(1 << n) - 1)
    sel = Signal(n, name=f"{name}_sel")
    grant = Signal(n, name=f"{name}_grant")
    m.d.comb += [
        req.eq(Cat(*reqs)),
        sel.eq(Mux((req & mask).any(), req & mask, req)),
        grant.eq(sel & (~sel + 1)[:n]),          # lowest set bit
    ]
    with m.If(req.any()):
        m.d.sync += mask.eq(~(grant | (grant - 1))[:n])   # requesters above the winner
    return [grant[i] for i in range(n)]


class NocRouter(wiring.Component):
    """Input-buffered wormhole router of the mesh at ``(x, y)``.

    Each of the five inputs (N, E, S, W, local) has one FIFO of ``buffer_depth`` flits
    per virtual channel. Every cycle, for each output port, a round-robin arbiter picks
    one input VC whose front flit routes there, for which a credit of the same VC on
    that output is held, and which either continues the packet that owns this output
    VC or is a head and the output VC is free (VC allocation: a packet keeps its VC
    end to end, VC 0 = requests, VC 1 = responses; an output VC is owned by one packet
    from head to tail so flits of two packets never interleave on one VC, while the two
    VCs interleave freely on a link). The winner goes to the output register.

    Each input VC is its own crossbar input, so a blocked request never blocks a
    response behind it: the two VCs share only link bandwidth, never a buffer.

    Routing: dimension order (X then Y), computed from the head flit; body and tail
    flits follow the route their head took. A head whose destination is outside the
    mesh (``dst_x >= cols`` or ``dst_y >= rows``), and any body/tail flit that arrives
    on the local port without a head, is consumed and discarded; ``o_drop`` counts the
    packets (and orphan flits) discarded this cycle. Only the local port can carry such
    flits: routers never forward them.

    Parameters
    ----------
    config : NocConfig
    x, y : int or None
        Position of this router in the mesh. Both ``None``: a position-independent
        router whose position comes from the ports ``i_x``, ``i_y`` (one Verilog module
        shared by every router of a mesh, :func:`rtl.noc.shared.shared_instance`).

    Members
    -------
    i_link : In(LinkSignature(config)).array(4)
        Links from the N, E, S, W neighbours (tied off at mesh edges).
    o_link : Out(LinkSignature(config)).array(4)
        Links to the N, E, S, W neighbours.
    i_inject : In(stream.Signature(flit_layout(config))).array(vcs)
        Injection, one stream per VC. The router stamps ``vc`` (the stream's VC) and
        ``src_x``/``src_y`` (its own position) into every injected flit, so a node
        cannot send on the wrong VC or forge its source. ``ready`` = that VC's local
        input FIFO is not full.
    o_eject : Out(stream.Signature(flit_layout(config))).array(vcs)
        Ejection, one stream per VC, so that a consumer that stalls requests still
        receives responses. Backpressure holds flits in the network (credits).
    o_drop : Out(range(vcs + 1))
        Packets (or orphan flits) discarded this cycle (bad destination).
    o_overflow : Out(1)
        A flit reached a full input buffer (a credit bug; never set in a correct mesh).
    i_x, i_y : In(coord_bits)
        Only when ``x`` and ``y`` are ``None``: this router's position (must be held
        constant).

    Latency: 2 cycles per router at zero load (input buffer write, then allocation and
    switch traversal into the output register); ejection adds 1 (ejection buffer).
    Throughput: one flit per output port per cycle. Golden model: ``models.noc``.
    """

    def __init__(self, config: NocConfig, x: int | None = None, y: int | None = None):
        if not isinstance(config, NocConfig):
            raise TypeError(f"NocRouter needs a NocConfig, got {config!r}")
        if (x is None) != (y is None):
            raise ValueError(f"router position needs both x and y or neither, got ({x}, {y})")
        if x is not None and not (0 <= x < config.cols and 0 <= y < config.rows):
            raise ValueError(f"router position ({x}, {y}) is outside the "
                             f"{config.cols} x {config.rows} mesh")
        self._config, self.x, self.y = config, x, y
        fl = flit_layout(config)
        V = config.vcs
        members = {
            "i_link": In(LinkSignature(config)).array(4),
            "o_link": Out(LinkSignature(config)).array(4),
            "i_inject": In(stream.Signature(fl)).array(V),
            "o_eject": Out(stream.Signature(fl)).array(V),
            "o_drop": Out(range(V + 1)),
            "o_overflow": Out(1),
        }
        if x is None:
            members |= {"i_x": In(config.coord_bits), "i_y": In(config.coord_bits)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        V, D = cfg.vcs, cfg.buffer_depth
        fl = flit_layout(cfg)
        width = fl.size
        P = 5
        px, py = (self.i_x, self.i_y) if self.x is None else (self.x, self.y)

        # --- input buffers ---------------------------------------------------------------
        fifo = {}
        for p in range(P):
            for v in range(V):
                fifo[p, v] = m.submodules[f"in_{'NESWL'[p]}{v}"] = FlitFifo(fl, D)
        for p in range(4):
            link = self.i_link[p]
            for v in range(V):
                m.d.comb += [
                    fifo[p, v].w_en.eq(link.valid & (link.flit.vc == v)),
                    fifo[p, v].w_data.eq(link.flit),
                    link.credit[v].eq(fifo[p, v].r_en),
                ]
        for v in range(V):
            inj = self.i_inject[v]
            f = Signal(fl, name=f"inject{v}")
            m.d.comb += [f.eq(inj.payload), f.vc.eq(v), f.src_x.eq(px), f.src_y.eq(py)]
            m.d.comb += [
                fifo[Port.L, v].w_en.eq(inj.valid & fifo[Port.L, v].w_rdy),
                fifo[Port.L, v].w_data.eq(f),
                inj.ready.eq(fifo[Port.L, v].w_rdy),
            ]

        # --- route computation and per-input-VC packet state --------------------------------
        lock = {(o, v): Signal(name=f"lock_{'NESWL'[o]}{v}") for o in range(P) for v in range(V)}
        credit = {(o, v): Signal(range(D + 1), init=D, name=f"credit_{'NESWL'[o]}{v}")
                  for o in range(P) for v in range(V)}
        route, front, active, head, tail, drop = {}, {}, {}, {}, {}, {}
        for p in range(P):
            for v in range(V):
                tag = f"{'NESWL'[p]}{v}"
                q = fifo[p, v]
                fr = front[p, v] = q.r_data
                kind = Value.cast(fr.kind)
                head[p, v], tail[p, v] = kind[0], kind[1]
                act = active[p, v] = Signal(name=f"active_{tag}")
                rreg = Signal(range(DROP + 1), name=f"route_reg_{tag}")
                rxy = Signal(range(DROP + 1), name=f"route_xy_{tag}")
                with m.If(fr.dst_x > px):
                    m.d.comb += rxy.eq(Port.E)
                with m.Elif(fr.dst_x < px):
                    m.d.comb += rxy.eq(Port.W)
                with m.Elif(fr.dst_y > py):
                    m.d.comb += rxy.eq(Port.S)
                with m.Elif(fr.dst_y < py):
                    m.d.comb += rxy.eq(Port.N)
                with m.Else():
                    m.d.comb += rxy.eq(Port.L)
                r = route[p, v] = Signal(range(DROP + 1), name=f"route_{tag}")
                if p == Port.L:       # only injected flits can be malformed or misaddressed
                    bad = (fr.dst_x >= cfg.cols) | (fr.dst_y >= cfg.rows) | ~head[p, v]
                    m.d.comb += r.eq(Mux(act, rreg, Mux(bad, DROP, rxy)))
                    drop[p, v] = q.r_valid & (r == DROP)
                else:
                    m.d.comb += r.eq(Mux(act, rreg, rxy))
                    drop[p, v] = Const(0)
                route[p, v, "reg"] = rreg

        # --- switch + VC allocation: one round-robin arbiter per output -------------------
        grants = {}          # (o, p, v) -> grant signal
        for o in range(P):
            cands = [(p, v) for p in range(P) for v in range(V) if xy_allowed(p, o)]
            reqs = []
            for p, v in cands:
                req = Signal(name=f"req_{'NESWL'[p]}{v}_to_{'NESWL'[o]}")
                m.d.comb += req.eq(fifo[p, v].r_valid & (route[p, v] == o) & (credit[o, v] != 0)
                                   & (active[p, v] | ~lock[o, v]))
                reqs.append(req)
            for (p, v), g in zip(cands, rr_arbiter(m, reqs, f"arb_{'NESWL'[o]}")):
                grants[o, p, v] = g

        # --- crossbar into the output registers ----------------------------------------------
        out_valid = [Signal(name=f"out_valid_{'NESWL'[o]}") for o in range(P)]
        out_flit = [Signal(fl, name=f"out_flit_{'NESWL'[o]}") for o in range(P)]
        for o in range(P):
            gs = [(p, v, g) for (oo, p, v), g in grants.items() if oo == o]
            sel = 0
            for p, v, g in gs:
                sel = sel | (front[p, v].as_value() & g.replicate(width))
            m.d.sync += [out_valid[o].eq(Cat(*[g for _, _, g in gs]).any()), out_flit[o].eq(sel)]
            # the output VC is owned from a head's grant to its tail's grant
            for v in range(V):
                gv = [(p, g) for p, vv, g in gs if vv == v]
                won = Cat(*[g for _, g in gv]).any()
                w_tail = Cat(*[g & tail[p, v] for p, g in gv]).any()
                w_open = Cat(*[g & ~active[p, v] & ~tail[p, v] for p, g in gv]).any()
                with m.If(won & w_tail):
                    m.d.sync += lock[o, v].eq(0)
                with m.Elif(won & w_open):
                    m.d.sync += lock[o, v].eq(1)
                inc = self.o_link[o].credit[v] if o < 4 else Signal(name=f"eject_credit{v}")
                if o == 4:
                    route[("eject_credit", v)] = inc
                m.d.sync += credit[o, v].eq(credit[o, v] + inc - won)
        for o in range(4):
            m.d.comb += [self.o_link[o].valid.eq(out_valid[o]), self.o_link[o].flit.eq(out_flit[o])]

        # --- pops and packet state updates ------------------------------------------------------
        n_drop = []
        for p in range(P):
            for v in range(V):
                granted = Cat(*[g for (o, pp, vv), g in grants.items() if (pp, vv) == (p, v)]).any()
                pop = Signal(name=f"pop_{'NESWL'[p]}{v}")
                m.d.comb += [pop.eq(granted | drop[p, v]), fifo[p, v].r_en.eq(pop)]
                act = active[p, v]
                with m.If(pop):
                    with m.If(~act & head[p, v] & ~tail[p, v]):
                        m.d.sync += [act.eq(1), route[p, v, "reg"].eq(route[p, v])]
                    with m.Elif(act & tail[p, v]):
                        m.d.sync += act.eq(0)
                if p == Port.L:
                    n_drop.append(drop[p, v] & ~act)      # once per packet / orphan flit

        # --- ejection buffers ------------------------------------------------------------------
        for v in range(V):
            ej = m.submodules[f"eject{v}"] = FlitFifo(fl, D)
            out = self.o_eject[v]
            m.d.comb += [
                ej.w_en.eq(out_valid[Port.L] & (out_flit[Port.L].vc == v)),
                ej.w_data.eq(out_flit[Port.L]),
                out.valid.eq(ej.r_valid),
                out.payload.eq(ej.r_data),
                ej.r_en.eq(out.valid & out.ready),
                route[("eject_credit", v)].eq(ej.r_en),
            ]
        m.d.comb += [
            self.o_drop.eq(sum(n_drop)),
            self.o_overflow.eq(Cat(*[f.overflow for f in fifo.values()]).any()),
        ]
        return m
