"""Test-only wrapper: the mesh with a synthesizable traffic generator and a checker at
every node, so that saturation runs and the bench cost no Python per cycle.

Per node, one generator (two xorshift32 streams) creates packets of ``i_len`` flits as
a Bernoulli process of rate ``i_rate / 65536`` per cycle (on/off bursts in the bursty
pattern) into a source queue of up to 255 packets (packets generated while it is full
are counted as refused). Destinations: uniform random, transpose ((x, y) -> (y, x)),
hotspot (a fraction ``i_hot_frac / 256`` to ``(i_hot_x, i_hot_y)``, the rest uniform),
bursty (uniform). A fraction ``i_bad_frac / 256`` of packets goes to a node outside
the mesh (must be dropped). The VC is 0, 1 or random per packet (``i_vc_mode``).

Head payload = {timestamp[16], seq[16]} (timestamp = cycle the head is first offered);
body/tail payload = a function of (source, seq, flit index). Per node and VC, a checker
(randomly not ready with probability ``i_eject_stall / 256``) checks flit order
(head, body..., tail), length, destination, VC and payload, and accumulates latency.

Counters (``o_*``) are network totals read by cocotb at window boundaries; every
packet delivered exactly once is checked by ``o_id_sum_inj == o_id_sum_ej`` and packet
counts after the network drained.
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig, NocConfig
from rtl.noc.mesh import NocMesh

__all__ = ["NocTraffic", "noc_traffic", "PATTERNS"]

PATTERNS = {"uniform": 0, "transpose": 1, "hotspot": 2, "bursty": 3}


def _xorshift(m, state, name):
    """One xorshift32 step per cycle; returns the current state (32 random bits)."""
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


class NocTraffic(wiring.Component):
    """NocMesh + per-node traffic generators and ejection checkers (see module doc)."""

    def __init__(self, config: NocConfig):
        self._config = config
        cb = config.coord_bits
        super().__init__({
            "i_enable": In(1), "i_rate": In(17), "i_pattern": In(2), "i_len": In(4),
            "i_hot_x": In(cb), "i_hot_y": In(cb), "i_hot_frac": In(9), "i_bad_frac": In(9),
            "i_vc_mode": In(2), "i_eject_stall": In(8), "i_seed": In(16), "i_load": In(1),
            "o_cycle": Out(32), "o_generated": Out(32), "o_refused": Out(32),
            "o_injected_pkts": Out(32), "o_injected_flits": Out(32),
            "o_ejected_pkts": Out(32), "o_ejected_flits": Out(32),
            "o_lat_sum": Out(48), "o_lat_max": Out(16), "o_errors": Out(32),
            "o_bad_sent": Out(32), "o_dropped": Out(32), "o_overflow": Out(1),
            "o_busy": Out(1), "o_id_sum_inj": Out(32), "o_id_sum_ej": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        N, V = cfg.nodes, cfg.vcs
        m.submodules.mesh = mesh = NocMesh(cfg)
        cycle = self.o_cycle
        m.d.sync += cycle.eq(cycle + 1)
        ln = self.i_len
        gen_p, ref_p, inj_pk, inj_fl, bad_p, busy_any = [], [], [], [], [], []
        ej_pk, ej_fl, lat_v, err_p, id_inj, id_ej = [], [], [], [], [], []

        for n in range(N):
            x, y = n % cfg.cols, n // cfg.cols
            rng = [Signal(32, init=(0x9E3779B9 * (n * 3 + k + 1)) & 0xFFFFFFFF or 1,
                          name=f"rng{k}_{n}") for k in range(3)]
            rnd = []
            for k, st in enumerate(rng):
                nxt = _xorshift(m, st, f"xs{k}_{n}")
                with m.If(self.i_load):
                    m.d.sync += st.eq(Cat(self.i_seed ^ (n * 7 + k), Const(0x5A5A + n * 3 + k, 16)))
                with m.Else():
                    m.d.sync += st.eq(nxt)
                rnd.append(st)
            ra, rb, rc = rnd

            # --- generator -----------------------------------------------------------------
            burst_on = Signal(name=f"burst_on_{n}")
            with m.If(rb[17:21] == 0):
                m.d.sync += burst_on.eq(~burst_on)
            rate = Signal(17, name=f"rate_{n}")
            with m.If(self.i_pattern == PATTERNS["bursty"]):
                m.d.comb += rate.eq(Mux(burst_on, self.i_rate << 1, 0))
            with m.Else():
                m.d.comb += rate.eq(self.i_rate)
            gen = Signal(name=f"gen_{n}")
            m.d.comb += gen.eq(self.i_enable & (ra[:16] < rate))
            pending = Signal(8, name=f"pending_{n}")
            busy = Signal(name=f"busy_{n}")
            start = ~busy & (pending != 0)
            full = pending == 255
            m.d.sync += pending.eq(pending + (gen & ~full) - start)
            gen_p.append(gen)
            ref_p.append(gen & full)

            dx, dy = Signal(cfg.coord_bits, name=f"dx_{n}"), Signal(cfg.coord_bits, name=f"dy_{n}")
            ux, uy = _scale(ra[16:24], cfg.cols), _scale(ra[24:32], cfg.rows)
            with m.Switch(self.i_pattern):
                with m.Case(PATTERNS["transpose"]):
                    m.d.comb += [dx.eq(y % cfg.cols), dy.eq(x % cfg.rows)]
                with m.Case(PATTERNS["hotspot"]):
                    hot = rb[:8] < self.i_hot_frac
                    m.d.comb += [dx.eq(Mux(hot, self.i_hot_x, ux)), dy.eq(Mux(hot, self.i_hot_y, uy))]
                with m.Default():
                    m.d.comb += [dx.eq(ux), dy.eq(uy)]
            bad_now = rb[8:16] < self.i_bad_frac
            vc_now = Mux(self.i_vc_mode[1], rb[16], self.i_vc_mode[0])

            cur_x = Signal(cfg.coord_bits, name=f"cur_x_{n}")
            cur_y = Signal(cfg.coord_bits, name=f"cur_y_{n}")
            cur_vc = Signal(name=f"cur_vc_{n}")
            cur_bad = Signal(name=f"cur_bad_{n}")
            idx = Signal(4, name=f"idx_{n}")
            ts = Signal(16, name=f"ts_{n}")
            seq = Signal(16, name=f"seq_{n}")
            with m.If(start):
                m.d.sync += [busy.eq(1), idx.eq(0), cur_vc.eq(vc_now), cur_bad.eq(bad_now),
                             cur_x.eq(Mux(bad_now, cfg.cols, dx)), cur_y.eq(dy),
                             ts.eq(cycle[:16] + 1), seq.eq(seq + 1)]
            last = idx == ln - 1
            kind = Cat(idx == 0, last)
            payload = Mux(idx == 0, Cat(ts, seq),
                          _body_payload(Const(n, 8), seq, idx, cfg.data_bits))
            fires = []
            for v in range(V):
                port = mesh.i_inject[n][v]
                m.d.comb += [
                    port.valid.eq(busy & (cur_vc == v)),
                    port.payload.kind.eq(kind), port.payload.vc.eq(v),
                    port.payload.dst_x.eq(cur_x), port.payload.dst_y.eq(cur_y),
                    port.payload.src_x.eq(x), port.payload.src_y.eq(y),
                    port.payload.payload.eq(payload),
                ]
                fires.append(port.valid & port.ready)
            fire = Cat(*fires).any()
            with m.If(fire):
                m.d.sync += idx.eq(idx + 1)
                with m.If(last):
                    m.d.sync += busy.eq(0)
            done = fire & last
            inj_fl.append(fire)
            inj_pk.append(done & ~cur_bad)
            bad_p.append(done & cur_bad)
            id_inj.append(Mux(done & ~cur_bad, Cat(seq, Const(n, 8)), 0))
            busy_any.append(busy | (pending != 0))

            # --- checkers, one per VC ----------------------------------------------------------
            for v in range(V):
                port = mesh.o_eject[n][v]
                f = port.payload
                rbits = rc[v * 8:(v + 1) * 8] if v < 4 else rc[:8]
                m.d.comb += port.ready.eq(rbits >= self.i_eject_stall)
                efire = port.valid & port.ready
                fk = Cat(f.kind.as_value() if hasattr(f.kind, "as_value") else f.kind)
                is_head, is_tail = fk[0], fk[1]
                in_pkt = Signal(name=f"in_pkt_{n}_{v}")
                e_idx = Signal(4, name=f"e_idx_{n}_{v}")
                h_seq = Signal(16, name=f"h_seq_{n}_{v}")
                h_ts = Signal(16, name=f"h_ts_{n}_{v}")
                h_src = Signal(8, name=f"h_src_{n}_{v}")
                src_id = (f.src_y * cfg.cols + f.src_x)[:8]
                f_seq = Mux(in_pkt, h_seq, f.payload[16:32])
                f_ts = Mux(in_pkt, h_ts, f.payload[:16])
                f_src = Mux(in_pkt, h_src, src_id)
                bad = Signal(name=f"chk_err_{n}_{v}")
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
                lat = Signal(16, name=f"lat_{n}_{v}")
                m.d.comb += lat.eq(Mux(pkt_done, cycle[:16] - f_ts, 0))
                ej_fl.append(efire)
                ej_pk.append(pkt_done)
                lat_v.append(lat)
                err_p.append(bad)
                id_ej.append(Mux(pkt_done, Cat(f_seq, f_src), 0))

        def total(out, pulses):
            m.d.sync += out.eq(out + sum(pulses))

        for out, pulses in [(self.o_generated, gen_p), (self.o_refused, ref_p),
                            (self.o_injected_pkts, inj_pk), (self.o_injected_flits, inj_fl),
                            (self.o_bad_sent, bad_p), (self.o_ejected_pkts, ej_pk),
                            (self.o_ejected_flits, ej_fl), (self.o_lat_sum, lat_v),
                            (self.o_errors, err_p), (self.o_id_sum_inj, id_inj),
                            (self.o_id_sum_ej, id_ej)]:
            total(out, pulses)
        mx = lat_v[0]
        for i, lv in enumerate(lat_v[1:]):      # a signal per step keeps the tree linear
            nm = Signal(16, name=f"lat_max_{i}")
            m.d.comb += nm.eq(Mux(lv > mx, lv, mx))
            mx = nm
        with m.If(mx > self.o_lat_max):
            m.d.sync += self.o_lat_max.eq(mx)
        m.d.comb += [self.o_busy.eq(Cat(*busy_any).any()), self.o_dropped.eq(mesh.o_dropped),
                     self.o_overflow.eq(mesh.o_overflow)]
        return m


def noc_traffic(cfg: JalapenoConfig) -> NocTraffic:
    """Runner factory (``tb.runner.run(..., factory=noc_traffic, variant="traffic")``)."""
    return NocTraffic(cfg.noc)
