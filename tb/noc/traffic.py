# amaranth: UnusedElaboratable=no
"""Test-only wrapper: the mesh with a synthesizable traffic generator and a checker at
every node, so that saturation runs and the bench cost no Python per cycle.

Per node (:class:`NocTrafficNode`, one shared Verilog module instantiated per node), a
generator creates packets of ``i_len`` flits as a Bernoulli process of rate
``i_rate / 65536`` per cycle (on/off bursts in the bursty pattern). Each packet gets its
VC when generated (0, 1 or random, ``i_vc_mode``) and waits in a source queue of up to
255 packets (packets generated while it is full are counted as refused), then one
injection engine sends it flit by flit. ``i_queues`` selects the source discipline:

* 1 (default): one queue and one engine per VC, like a network interface with separate
  request and response paths: a packet waiting for a full VC never holds up a packet
  of the other VC.
* 0: one queue and one engine for both VCs (the VC is drawn when the packet reaches
  the head of the queue): the packet at the head blocks the source while its VC is
  full, even when the other VC is free. Kept to measure that head-of-line blocking.

Destinations: uniform random, transpose ((x, y) -> (y, x)), hotspot (a fraction
``i_hot_frac / 256`` to ``(i_hot_x, i_hot_y)``, the rest uniform), bursty (uniform),
neighbour ((x, y) -> ((x + 1) mod k, (y + 1) mod m)). A fraction ``i_bad_frac / 256`` of
packets goes to a node outside the mesh (must be dropped).

Head payload = {timestamp[16], seq[16]} (timestamp = cycle the head is first offered to
the router; seq's top bit is the engine); body/tail payload = a function of (source,
seq, flit index). Per node and VC, a checker (randomly not ready with probability
``i_eject_stall / 256``) checks flit order (head, body..., tail), length, destination,
VC and payload, and accumulates latency.

Counters (``o_*``) are network totals read by cocotb at window boundaries (``o_lat_max``
is the largest latency since ``i_clear_max``); every
packet delivered exactly once is checked by ``o_id_sum_inj == o_id_sum_ej`` and packet
counts after the network drained.

(The pragma on the first line: every node creates a NocTrafficNode for its signature;
only the first is elaborated, :mod:`rtl.lib.shared`.)
"""
from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig, NocConfig
from rtl.lib.shared import shared_instance
from rtl.noc.flit import flit_layout
from rtl.noc.mesh import NocMesh

__all__ = ["NocTraffic", "NocTrafficNode", "noc_traffic", "PATTERNS"]

PATTERNS = {"uniform": 0, "transpose": 1, "hotspot": 2, "bursty": 3, "neighbour": 4}

# controls broadcast from the wrapper to every node
_CONTROLS = {"i_enable": 1, "i_rate": 17, "i_pattern": 3, "i_len": 4, "i_hot_frac": 9,
             "i_bad_frac": 9, "i_vc_mode": 2, "i_eject_stall": 8, "i_seed": 16, "i_load": 1,
             "i_queues": 1}


def _xorshift(m, state, name):
    """One xorshift32 step per cycle; returns the next state."""
    s1 = Signal(32, name=f"{name}_a")
    s2 = Signal(32, name=f"{name}_b")
    s3 = Signal(32, name=f"{name}_c")
    m.d.comb += [s1.eq(state ^ (state << 13)[:32]), s2.eq(s1 ^ (s1 >> 17)),
                 s3.eq(s2 ^ (s2 << 5)[:32])]
    return s3


def _scale(bits8, n):
    """Uniform-ish pick in [0, n) from 8 random bits: (r * n) >> 8."""
    return (bits8 * n)[8:]


def _body_payload(src, seq, idx, width):
    word = Cat(seq[:16], idx[:4], Const(0, 4), src[:8], ~seq[:16])
    reps = (width + len(word) - 1) // len(word)
    return Cat(*[word] * reps)[:width]


def _mod(value, n):
    """``value mod n`` for 0 <= value < 2 * n (a coordinate plus at most n - 1)."""
    return Mux(value >= n, value - n, value)


class NocTrafficNode(wiring.Component):
    """Generator (with source queues and injection engines) and per-VC checkers of one
    node; position on ports so that one Verilog module serves every node.

    Members
    -------
    i_enable ... i_queues : In
        The wrapper's controls (see the module docstring).
    i_cycle : In(16)
        Low bits of the wrapper's cycle counter (timestamps).
    i_node : In(8), i_x, i_y : In(coord_bits)
        This node (held constant).
    i_hot_x, i_hot_y : In(coord_bits)
    o_inject : Out(stream.Signature(flit_layout)).array(vcs)
    i_eject : In(stream.Signature(flit_layout)).array(vcs)
    o_gen, o_refused, o_busy : Out(1)
        A packet generated / refused (queue full) this cycle; anything queued or in flight.
    o_inj_flits, o_inj_pkts, o_bad, o_ej_flits, o_ej_pkts, o_errors : Out(range(vcs + 1))
        Events this cycle (one per engine / checker at most).
    o_id_inj, o_id_ej : Out(26)
        Sums of {node, seq} of the packets injected / ejected this cycle.
    o_lat : Out(16).array(vcs)
        Latency of the packet whose tail the VC's checker accepted this cycle, else 0.
    """

    def __init__(self, config: NocConfig):
        self._config = config
        cb, V = config.coord_bits, config.vcs
        fl = flit_layout(config)
        cnt = range(V + 1)
        super().__init__({
            **{k: In(w) for k, w in _CONTROLS.items()},
            "i_cycle": In(16), "i_node": In(8), "i_x": In(cb), "i_y": In(cb),
            "i_hot_x": In(cb), "i_hot_y": In(cb),
            "o_inject": Out(stream.Signature(fl)).array(V),
            "i_eject": In(stream.Signature(fl)).array(V),
            "o_gen": Out(1), "o_refused": Out(1), "o_busy": Out(1),
            "o_inj_flits": Out(cnt), "o_inj_pkts": Out(cnt), "o_bad": Out(cnt),
            "o_ej_flits": Out(cnt), "o_ej_pkts": Out(cnt), "o_errors": Out(cnt),
            "o_id_inj": Out(26), "o_id_ej": Out(26), "o_lat": Out(16).array(V),
        })

    def elaborate(self, platform):
        m = Module()
        V = self._config.vcs
        ra, rc = self._rng(m, 0), self._rng(m, 1)   # generation / VC / bursts; ejection stalls
        gen, vc_draw, qsel = self._generator(m, ra)
        eng = [self._engine(m, e, gen, vc_draw, qsel) for e in range(V)]
        self._inject_ports(m, eng)
        m.d.comb += [
            self.o_gen.eq(gen), self.o_refused.eq(Cat(*[g["refused"] for g in eng]).any()),
            self.o_busy.eq(Cat(*[g["queued"] for g in eng]).any()),
            self.o_inj_flits.eq(sum(g["fire"] for g in eng)),
            self.o_inj_pkts.eq(sum(g["pkt"] for g in eng)),
            self.o_bad.eq(sum(g["bad"] for g in eng)),
            self.o_id_inj.eq(sum(g["id"] for g in eng)),
        ]
        self._checkers(m, rc)
        return m

    def _rng(self, m, k):
        """xorshift32 state ``k`` of this node (reseeded by ``i_load``)."""
        n = self.i_node
        st = Signal(32, init=0x9E3779B9 + k, name=f"rng{k}")
        with m.If(self.i_load):
            m.d.sync += st.eq(Cat(self.i_seed ^ (n * 7 + k)[:16], (n * 3 + 0x5A5A + k)[:16]))
        with m.Else():
            m.d.sync += st.eq(_xorshift(m, st, f"xs{k}"))
        return st

    def _generator(self, m, ra):
        """Packet generation: returns (generate this cycle, drawn VC, source queue)."""
        V = self._config.vcs
        burst_on = Signal()
        with m.If(ra[17:21] == 0):
            m.d.sync += burst_on.eq(~burst_on)
        rate = Signal(17)
        with m.If(self.i_pattern == PATTERNS["bursty"]):
            m.d.comb += rate.eq(Mux(burst_on, self.i_rate << 1, 0))
        with m.Else():
            m.d.comb += rate.eq(self.i_rate)
        gen = Signal()
        m.d.comb += gen.eq(self.i_enable & (ra[:16] < rate))
        vc_draw = Signal(range(V))
        m.d.comb += vc_draw.eq(Mux(self.i_vc_mode[1], ra[16], self.i_vc_mode[0]))
        return gen, vc_draw, Mux(self.i_queues, vc_draw, 0)

    def _engine(self, m, e, gen, vc_draw, qsel) -> dict:
        """Source queue ``e`` (a count of pending packets) and its injection engine."""
        cfg = self._config
        V, cb = cfg.vcs, cfg.coord_bits
        n, x, y, cycle, ln = self.i_node, self.i_x, self.i_y, self.i_cycle, self.i_len
        r = self._rng(m, 2 + e)              # this engine's destination draws
        pending = Signal(8, name=f"pending{e}")
        busy = Signal(name=f"busy{e}")
        cur_x, cur_y = Signal(cb, name=f"cur_x{e}"), Signal(cb, name=f"cur_y{e}")
        cur_vc = Signal(range(V), name=f"cur_vc{e}")
        cur_bad = Signal(name=f"cur_bad{e}")
        idx = Signal(4, name=f"idx{e}")
        ts = Signal(16, name=f"ts{e}")
        seq = Signal(15, name=f"seq{e}")
        last = idx == ln - 1
        ready = Signal(name=f"ready{e}")
        m.d.comb += ready.eq(Cat(*[self.o_inject[v].ready & (cur_vc == v)
                                   for v in range(V)]).any())
        fire = busy & ready
        done = fire & last
        # the next packet starts as the last flit leaves: packets back to back, as
        # the network interfaces send them (no idle cycle between packets)
        start = (~busy | done) & (pending != 0)
        full = pending == 255
        enq = gen & (qsel == e)
        m.d.sync += pending.eq(pending + (enq & ~full) - start)

        dx, dy = Signal(cb, name=f"dx{e}"), Signal(cb, name=f"dy{e}")
        ux, uy = _scale(r[16:24], cfg.cols), _scale(r[24:32], cfg.rows)
        with m.Switch(self.i_pattern):
            with m.Case(PATTERNS["transpose"]):
                m.d.comb += [dx.eq(y if cfg.rows <= cfg.cols else y % cfg.cols),
                             dy.eq(x if cfg.cols <= cfg.rows else x % cfg.rows)]
            with m.Case(PATTERNS["hotspot"]):
                hot = r[:8] < self.i_hot_frac
                m.d.comb += [dx.eq(Mux(hot, self.i_hot_x, ux)),
                             dy.eq(Mux(hot, self.i_hot_y, uy))]
            with m.Case(PATTERNS["neighbour"]):
                m.d.comb += [dx.eq(_mod(x + 1, cfg.cols)), dy.eq(_mod(y + 1, cfg.rows))]
            with m.Default():
                m.d.comb += [dx.eq(ux), dy.eq(uy)]
        bad_now = r[8:16] < self.i_bad_frac

        with m.If(fire):
            m.d.sync += idx.eq(idx + 1)
            with m.If(last):
                m.d.sync += busy.eq(0)
        with m.If(start):           # after the fire block: a start overrides its update
            # one queue: the VC is drawn at the head of the queue; per-VC queues: e
            m.d.sync += [busy.eq(1), idx.eq(0), cur_vc.eq(Mux(self.i_queues, e, vc_draw)),
                         cur_bad.eq(bad_now), cur_x.eq(Mux(bad_now, cfg.cols, dx)),
                         cur_y.eq(dy), ts.eq(cycle + 1), seq.eq(seq + 1)]
        sid = Cat(seq, Const(e, 1))
        kind = Cat(idx == 0, last)
        payload = Mux(idx == 0, Cat(ts, sid), _body_payload(n, sid, idx, cfg.data_bits))
        return dict(busy=busy, vc=cur_vc, x=cur_x, y=cur_y, kind=kind, payload=payload,
                    fire=fire, pkt=done & ~cur_bad, bad=done & cur_bad,
                    id=Mux(done & ~cur_bad, Cat(sid, n), 0), queued=busy | (pending != 0),
                    refused=enq & full)

    def _inject_ports(self, m, eng) -> None:
        """Each VC's injection stream from the engine that is on it."""
        V = self._config.vcs
        for v in range(V):
            port = self.o_inject[v]
            # at most one engine is on VC v: engine v (per-VC queues) or engine 0 (one
            # queue). Mux expressions, not m.If: Icarus in SystemVerilog mode never runs an
            # always @* block whose inputs do not change after time 0 (its output stays X).
            on = [g["busy"] & (g["vc"] == v) for g in eng]
            sel = {}
            for f in ("kind", "x", "y", "payload"):
                val = eng[0][f]
                for e in range(1, V):
                    val = Mux(on[e], eng[e][f], val)
                sel[f] = val
            m.d.comb += [port.valid.eq(Cat(*on).any()), port.payload.kind.eq(sel["kind"]),
                         port.payload.dst_x.eq(sel["x"]), port.payload.dst_y.eq(sel["y"]),
                         port.payload.payload.eq(sel["payload"]), port.payload.vc.eq(v),
                         port.payload.src_x.eq(self.i_x), port.payload.src_y.eq(self.i_y)]

    def _checkers(self, m, rc) -> None:
        """One checker per VC on the ejection streams (random stalls from ``rc``)."""
        cfg = self._config
        V = cfg.vcs
        x, y, cycle, ln = self.i_x, self.i_y, self.i_cycle, self.i_len
        ej_fl, ej_pk, errs, ids = [], [], [], []
        for v in range(V):
            port = self.i_eject[v]
            f = port.payload
            rbits = rc[v * 8:(v + 1) * 8] if v < 4 else rc[:8]
            m.d.comb += port.ready.eq(rbits >= self.i_eject_stall)
            efire = port.valid & port.ready
            fk = Value.cast(f.kind)
            is_head, is_tail = fk[0], fk[1]
            in_pkt = Signal(name=f"in_pkt{v}")
            e_idx = Signal(4, name=f"e_idx{v}")
            h_seq = Signal(16, name=f"h_seq{v}")
            h_ts = Signal(16, name=f"h_ts{v}")
            h_src = Signal(8, name=f"h_src{v}")
            src_id = (f.src_y * cfg.cols + f.src_x)[:8]
            f_seq = Mux(in_pkt, h_seq, f.payload[16:32])
            f_ts = Mux(in_pkt, h_ts, f.payload[:16])
            f_src = Mux(in_pkt, h_src, src_id)
            bad = Signal(name=f"chk_err{v}")
            exp_body = _body_payload(h_src, h_seq, e_idx, cfg.data_bits)
            m.d.comb += bad.eq(efire & (
                (f.dst_x != x) | (f.dst_y != y) | (f.vc != v)
                | Mux(in_pkt, is_head | (f.payload != exp_body) | (is_tail & (e_idx != ln - 1)),
                      ~is_head | (is_tail & (ln != 1)))))
            with m.If(efire):
                with m.If(is_tail):
                    m.d.sync += in_pkt.eq(0)
                with m.Elif(~in_pkt):
                    m.d.sync += [in_pkt.eq(1), e_idx.eq(1), h_seq.eq(f.payload[16:32]),
                                 h_ts.eq(f.payload[:16]), h_src.eq(src_id)]
                with m.Else():
                    m.d.sync += e_idx.eq(e_idx + 1)
            pkt_done = efire & is_tail
            m.d.comb += self.o_lat[v].eq(Mux(pkt_done, cycle - f_ts, 0))
            ej_fl.append(efire)
            ej_pk.append(pkt_done)
            errs.append(bad)
            ids.append(Mux(pkt_done, Cat(f_seq, f_src), 0))
        m.d.comb += [self.o_ej_flits.eq(sum(ej_fl)), self.o_ej_pkts.eq(sum(ej_pk)),
                     self.o_errors.eq(sum(errs)), self.o_id_ej.eq(sum(ids))]


class NocTraffic(wiring.Component):
    """NocMesh (shared routers) + a :class:`NocTrafficNode` per node (see module doc).

    Routers and nodes are shared Verilog modules (:func:`rtl.lib.shared.shared_instance`):
    write it with :func:`rtl.lib.verilog.convert`.
    """

    def __init__(self, config: NocConfig):
        if config.nodes > 256:
            raise ValueError(f"NocTraffic numbers nodes with 8 bits, got {config.nodes} nodes")
        self._config = config
        cb = config.coord_bits
        super().__init__({
            **{k: In(w) for k, w in _CONTROLS.items()},
            "i_hot_x": In(cb), "i_hot_y": In(cb), "i_clear_max": In(1),
            "o_cycle": Out(32), "o_generated": Out(32), "o_refused": Out(32),
            "o_injected_pkts": Out(32), "o_injected_flits": Out(32),
            "o_ejected_pkts": Out(32), "o_ejected_flits": Out(32),
            "o_lat_sum": Out(48), "o_lat_max": Out(16), "o_errors": Out(32),
            "o_bad_sent": Out(32), "o_dropped": Out(32), "o_overflow": Out(1),
            "o_busy": Out(1), "o_id_sum_inj": Out(32), "o_id_sum_ej": Out(32),
        })
        self._mesh = NocMesh(config, shared=True)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.mesh = mesh = self._mesh
        cycle = self.o_cycle
        m.d.sync += cycle.eq(cycle + 1)
        nodes = []
        for n in range(cfg.nodes):
            x, y = n % cfg.cols, n // cfg.cols
            nd = shared_instance(m, NocTrafficNode(cfg), f"node{n}", key=cfg)
            m.d.comb += [getattr(nd, k).eq(getattr(self, k))
                         for k in (*_CONTROLS, "i_hot_x", "i_hot_y")]
            m.d.comb += [nd.i_cycle.eq(cycle[:16]), nd.i_node.eq(n), nd.i_x.eq(x), nd.i_y.eq(y)]
            for v in range(cfg.vcs):
                wiring.connect(m, nd.o_inject[v], mesh.i_inject[n][v])
                wiring.connect(m, mesh.o_eject[n][v], nd.i_eject[v])
            nodes.append(nd)

        def total(out, pulses):
            m.d.sync += out.eq(out + sum(pulses))

        for out, port in [(self.o_generated, "o_gen"), (self.o_refused, "o_refused"),
                          (self.o_injected_pkts, "o_inj_pkts"),
                          (self.o_injected_flits, "o_inj_flits"), (self.o_bad_sent, "o_bad"),
                          (self.o_ejected_pkts, "o_ej_pkts"), (self.o_ejected_flits, "o_ej_flits"),
                          (self.o_errors, "o_errors"), (self.o_id_sum_inj, "o_id_inj"),
                          (self.o_id_sum_ej, "o_id_ej")]:
            total(out, [getattr(nd, port) for nd in nodes])
        lat_v = [nd.o_lat[v] for nd in nodes for v in range(cfg.vcs)]
        total(self.o_lat_sum, lat_v)
        mx = lat_v[0]
        for i, lv in enumerate(lat_v[1:]):      # a signal per step keeps the tree linear
            nm = Signal(16, name=f"lat_max_{i}")
            m.d.comb += nm.eq(Mux(lv > mx, lv, mx))
            mx = nm
        with m.If(self.i_clear_max):          # start of a measurement window
            m.d.sync += self.o_lat_max.eq(0)
        with m.Elif(mx > self.o_lat_max):
            m.d.sync += self.o_lat_max.eq(mx)
        m.d.comb += [self.o_busy.eq(Cat(*[nd.o_busy for nd in nodes]).any()),
                     self.o_dropped.eq(mesh.o_dropped), self.o_overflow.eq(mesh.o_overflow)]
        return m


def noc_traffic(cfg: JalapenoConfig) -> NocTraffic:
    """Runner factory (``tb.runner.run(..., factory=noc_traffic, variant="traffic")``)."""
    return NocTraffic(cfg.noc)
